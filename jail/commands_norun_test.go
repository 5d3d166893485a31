package jail

import (
	"slices"
	"testing"

	"github.com/arbo-project/arbo/state"
)

func TestNoRunArgs(t *testing.T) {
	got := NoRunArgs(state.Jail{Name: "db-1"})
	if !slices.Equal(got, []string{EzjailAdmin, "config", "-r", "norun", "db-1"}) {
		t.Fatalf("NoRunArgs = %v", got)
	}
}
