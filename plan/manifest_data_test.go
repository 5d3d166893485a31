package plan

import (
	"testing"

	"github.com/arbo-project/arbo/state"
)

// A jail created outside a data tier and later moved into one must be
// recorded as data, and stay so when moved out again (issue 11, item 3):
// before, addJail kept the flag from the jail's creation only.
func TestAddJailDataFlagSticks(t *testing.T) {
	a := &applier{man: &Manifest{}}
	a.addJail(state.Jail{Name: "db1", Tier: "web", Data: false})
	a.addJail(state.Jail{Name: "db1", Tier: "db", Data: true})
	if mj := a.man.jail("db1"); mj == nil || !mj.Data || mj.Tier != "db" {
		t.Fatalf("after moving to a data tier: %+v, want Data true, Tier db", mj)
	}
	a.addJail(state.Jail{Name: "db1", Tier: "web", Data: false})
	if mj := a.man.jail("db1"); !mj.Data || mj.Tier != "web" {
		t.Fatalf("after moving out of the data tier: %+v, want Data still true, Tier web", mj)
	}
	if len(a.man.Jails) != 1 {
		t.Fatalf("manifest jails %+v, want one", a.man.Jails)
	}
}
