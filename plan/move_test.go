package plan

import (
	"context"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/arbo-project/arbo/inventory"
	"github.com/arbo-project/arbo/remote"
	"github.com/arbo-project/arbo/state"
)

// hostWith is desired() as host name, with its jail app1 or without it
// (then neither the jail's files nor its ezjail config).
func hostWith(name string, app1 bool, data bool) *state.Machine {
	d := desired()
	d.Name = name
	if !app1 {
		d.Jails = nil
		d.Files = slices.DeleteFunc(d.Files, func(f state.File) bool { return f.Jail != "" || strings.HasPrefix(f.Path, EzjailCfgDir+"/") })
		return d
	}
	if data {
		d.Jails[0].Tier, d.Jails[0].Data = "data", true
	}
	return d
}

// cluster is two in-memory hosts whose commands go to one log, in the
// order they ran across both machines.
type cluster struct {
	mu      sync.Mutex
	log     []string // "machine argv…"
	targets map[string]*memTarget
}

func newCluster(names ...string) *cluster {
	c := &cluster{targets: map[string]*memTarget{}}
	for _, n := range names {
		m := newMem()
		fakeHost(m)
		inner := m.run
		m.run = func(argv []string, stdin string) remote.Result {
			c.mu.Lock()
			c.log = append(c.log, n+" "+strings.Join(argv, " "))
			c.mu.Unlock()
			return inner(argv, stdin)
		}
		c.targets[n] = m
	}
	return c
}

// index is the position of the first logged call with this prefix, or -1.
func (c *cluster) index(prefix string) int {
	c.mu.Lock()
	defer c.mu.Unlock()
	return slices.IndexFunc(c.log, func(l string) bool { return strings.HasPrefix(l, prefix) })
}

// plan plans every machine, as Make does after reading them.
func (c *cluster) plan(t *testing.T, o Options, ds ...*state.Machine) (*Plan, *Session) {
	t.Helper()
	p := &Plan{FormatVersion: 1, Kind: PlanKind, Options: o}
	sess := &Session{Targets: map[string]Target{}, Desired: map[string]*state.Machine{}}
	for _, d := range ds {
		snap, err := Read(context.Background(), c.targets[d.Name], d)
		if err != nil {
			t.Fatal(err)
		}
		Settle(d, snap)
		p.Machines = append(p.Machines, Diff(d, snap, o))
		sess.Targets[d.Name] = c.targets[d.Name]
		sess.Desired[d.Name] = d
	}
	LinkMoves(p)
	return p, sess
}

func (c *cluster) apply(t *testing.T, p *Plan, sess *Session) *Result {
	t.Helper()
	res, err := Apply(context.Background(), (&inventory.Cluster{Name: "x"}).Finish(), p, sess, applyEnv(nil))
	if err != nil {
		t.Fatal(err)
	}
	return res
}

// Issue 14 items 1 and 2: a jail whose host changed is one move in the
// plan, and apply stops, archives and retires the old copy before the new
// one starts (the address is never up on two hosts); the old copy is never
// destroyed without --allow-destroy, even for an app jail.
func TestMoveStopsTheOldCopyFirst(t *testing.T) {
	c := newCluster("h1", "h2")
	p, sess := c.plan(t, Options{}, hostWith("h1", true, false), hostWith("h2", false, false))
	if res := c.apply(t, p, sess); res.Failed() {
		t.Fatalf("first apply: %+v", res)
	}
	c.log = nil
	// A slow stop on the old host: were both hosts applied side by side,
	// the new copy would start meanwhile.
	slow := c.targets["h1"].run
	c.targets["h1"].run = func(argv []string, stdin string) remote.Result {
		if len(argv) > 1 && argv[1] == "onestop" {
			time.Sleep(100 * time.Millisecond)
		}
		return slow(argv, stdin)
	}

	p, sess = c.plan(t, Options{}, hostWith("h1", false, false), hostWith("h2", true, false))
	if len(p.Moves) != 1 || p.Moves[0].Jail != "app1" || p.Moves[0].From != "h1" || p.Moves[0].To != "h2" || p.Moves[0].Refused != "" {
		t.Fatalf("moves = %+v, want app1 h1 → h2", p.Moves)
	}
	h1, h2 := p.Machine("h1"), p.Machine("h2")
	if a := archiveOf(h1, "app1"); a == nil || a.MoveTo != "h2" {
		t.Fatalf("h1: no archive of app1 tied to the move: %v", ops(*h1))
	}
	if has(*h1, "destroy jail app1") {
		t.Fatalf("h1: the old copy of a moved jail is destroyed without --allow-destroy: %v", ops(*h1))
	}
	if a := arrivalOf(h2, "app1"); a == nil || a.MoveFrom != "h1" {
		t.Fatalf("h2: no create of app1 tied to the move: %v", ops(*h2))
	}
	if cnt := p.Count(); cnt.Destroy != 0 || cnt.Change < 1 {
		t.Fatalf("a move counts as one change, not an archive and a create: %+v", cnt)
	}
	res := c.apply(t, p, sess)
	if res.Failed() {
		t.Fatalf("move apply: %+v", res)
	}
	stop, retire, start := c.index("h1 ezjail-admin onestop app1"), c.index("h1 ezjail-admin config -r norun app1"), c.index("h2 ezjail-admin onestart app1")
	if stop < 0 || retire < 0 || start < 0 || stop > start || retire > start {
		t.Fatalf("calls: h1 stop %d, h1 retire %d, h2 start %d: the old copy must stop and retire before the new one starts\n%s", stop, retire, start, strings.Join(c.log, "\n"))
	}
	if i := c.index("h1 ezjail-admin delete"); i >= 0 {
		t.Fatalf("h1: the old copy was deleted: %s", c.log[i])
	}
	man := readManifest(t, c.targets["h1"])
	if mj := man.jail("app1"); mj == nil || !mj.Retired {
		t.Fatalf("h1's manifest does not keep app1 as retired: %+v", man.Jails)
	}
	// Done: a second plan has no move and nothing for either jail.
	p, _ = c.plan(t, Options{}, hostWith("h1", false, false), hostWith("h2", true, false))
	if len(p.Moves) != 0 {
		t.Fatalf("moved again: %+v", p.Moves)
	}
	for _, m := range p.Machines {
		for _, a := range m.Actions {
			if a.Kind == KindJail {
				t.Errorf("%s: %s after the move", m.Name, describe(a))
			}
		}
	}
}

// A jail that ever held data is refused at plan time on both machines
// (nothing stops, nothing starts empty) unless --allow-empty is given.
func TestMoveOfADataJail(t *testing.T) {
	c := newCluster("h1", "h2")
	p, sess := c.plan(t, Options{}, hostWith("h1", true, true), hostWith("h2", false, false))
	if res := c.apply(t, p, sess); res.Failed() {
		t.Fatalf("first apply: %+v", res)
	}
	// The topology moves db and, on the way, puts it in an app tier: the
	// manifest's data flag is sticky, so the move is refused all the same.
	p, sess = c.plan(t, Options{}, hostWith("h1", false, false), hostWith("h2", true, false))
	if len(p.Moves) != 1 || !p.Moves[0].Data || p.Moves[0].Refused == "" {
		t.Fatalf("moves = %+v, want app1 refused as a data jail", p.Moves)
	}
	for _, n := range []string{"h1", "h2"} {
		m := p.Machine(n)
		if !strings.Contains(m.Error, "jail app1 moves from h1 to h2 and has held data") || !strings.Contains(m.Error, "--allow-empty") {
			t.Fatalf("%s: error %q", n, m.Error)
		}
	}
	c.log = nil
	res := c.apply(t, p, sess)
	if !res.Failed() {
		t.Fatal("apply of a refused move did not fail")
	}
	for _, l := range c.log {
		if strings.Contains(l, "ezjail-admin") {
			t.Errorf("a refused move acted: %s", l)
		}
	}

	p, sess = c.plan(t, Options{AllowEmpty: true}, hostWith("h1", false, false), hostWith("h2", true, false))
	if len(p.Moves) != 1 || p.Moves[0].Refused != "" || p.HasErrors() {
		t.Fatalf("--allow-empty: moves %+v, errors %v", p.Moves, p.HasErrors())
	}
	if !strings.Contains(strings.Join(p.Moves[0].Steps, "\n"), "starts empty") {
		t.Fatalf("the steps do not say the jail starts empty: %q", p.Moves[0].Steps)
	}
	if res := c.apply(t, p, sess); res.Failed() {
		t.Fatalf("--allow-empty apply: %+v", res)
	}
	if stop, start := c.index("h1 ezjail-admin onestop app1"), c.index("h2 ezjail-admin onestart app1"); stop < 0 || start < stop {
		t.Fatalf("h1 stop %d, h2 start %d\n%s\n%+v", stop, start, strings.Join(c.log, "\n"), p.Machines)
	}
	if mj := readManifest(t, c.targets["h1"]).jail("app1"); mj == nil || !mj.Retired || !mj.Data {
		t.Fatalf("h1 must keep the data jail retired: %+v", mj)
	}
}

// When the old copy cannot be stopped, the new host is not applied at all.
func TestMoveBlockedWhenTheOldCopyDoesNotStop(t *testing.T) {
	c := newCluster("h1", "h2")
	p, sess := c.plan(t, Options{}, hostWith("h1", true, false), hostWith("h2", false, false))
	if res := c.apply(t, p, sess); res.Failed() {
		t.Fatalf("first apply: %+v", res)
	}
	inner := c.targets["h1"].run
	c.targets["h1"].run = func(argv []string, stdin string) remote.Result {
		if len(argv) > 1 && argv[1] == "archive" {
			return remote.Result{Exit: 1, Stderr: []byte("archive failed")}
		}
		return inner(argv, stdin)
	}
	c.log = nil
	p, sess = c.plan(t, Options{}, hostWith("h1", false, false), hostWith("h2", true, false))
	res := c.apply(t, p, sess)
	var h2 *MachineResult
	for i := range res.Machines {
		if res.Machines[i].Machine == "h2" {
			h2 = &res.Machines[i]
		}
	}
	if h2 == nil || !strings.Contains(h2.Error, "did not stop and retire") || len(h2.Done) != 0 {
		t.Fatalf("h2: %+v", h2)
	}
	if i := c.index("h2 ezjail-admin"); i >= 0 {
		t.Fatalf("h2 acted: %s", c.log[i])
	}
}
