package plan

import (
	"context"
	"slices"
	"strings"
	"testing"

	"github.com/arbo-project/arbo/inventory"
	"github.com/arbo-project/arbo/jail"
	"github.com/arbo-project/arbo/remote"
	"github.com/arbo-project/arbo/state"
)

// applyMachine plans d against m and applies the plan, as planAndApply does
// for desired().
func applyMachine(t *testing.T, m *memTarget, d *state.Machine) (MachinePlan, *Result, error) {
	t.Helper()
	return applyMachineWith(t, m, d, Options{})
}

func applyMachineWith(t *testing.T, m *memTarget, d *state.Machine, o Options) (MachinePlan, *Result, error) {
	t.Helper()
	ctx := context.Background()
	snap, err := Read(ctx, m, d)
	if err != nil {
		t.Fatal(err)
	}
	Settle(d, snap)
	mp := Diff(d, snap, o)
	if mp.Error != "" {
		t.Fatal(mp.Error)
	}
	p := &Plan{FormatVersion: 1, Kind: PlanKind, Options: o, Machines: []MachinePlan{mp}}
	sess := &Session{Targets: map[string]Target{d.Name: m}, Desired: map[string]*state.Machine{d.Name: d}}
	c := (&inventory.Cluster{Name: "x"}).Finish()
	res, err := Apply(ctx, c, p, sess, applyEnv(nil))
	return mp, res, err
}

// threeJails is desired() with db1 and web1 besides app1, app1 declared
// first but starting after db1 (start_after).
func threeJails() *state.Machine {
	d := desired()
	d.Jails[0].StartAfter = []string{"db1"}
	for _, n := range []string{"db1", "web1"} {
		d.Jails = append(d.Jails, state.Jail{Name: n, SafeName: n, Hostname: n + ".x.internal", IP: "lo1|10.0.0.9", Tier: "x", Root: "/usr/jails/" + n})
		d.Files = append(d.Files, state.File{Path: EzjailCfgDir + "/" + n, Mode: 0o644, Owner: "root", Group: "wheel",
			Content: []byte("export jail_" + n + "_hostname=\"" + n + ".x.internal\"\n")})
	}
	return d
}

// Issue 10 item 6: apply starts jails in rcorder's order, as ezjail's rc
// script does at boot (ezjail.sh:51 `ls | xargs rcorder`; each config
// REQUIREs its start_after jails), not in the topology's order.
func TestStartAfterOrdersApply(t *testing.T) {
	m := newMem()
	fakeHost(m)
	mp, res, err := applyMachine(t, m, threeJails())
	if err != nil || res.Failed() {
		t.Fatalf("apply: %v %+v", err, res)
	}
	var starts []string
	for _, a := range mp.Actions {
		if a.Op == OpStart {
			starts = append(starts, a.Target)
			if a.Target == "app1" && !strings.Contains(a.Reason, "after db1") {
				t.Errorf("the plan does not say app1 starts after db1: %q", a.Reason)
			}
		}
	}
	if want := []string{"db1", "app1", "web1"}; !slices.Equal(starts, want) {
		t.Errorf("planned starts %v, want %v", starts, want)
	}
	db, app := m.callIndex(jail.EzjailAdmin, "onestart", "db1"), m.callIndex(jail.EzjailAdmin, "onestart", "app1")
	if db < 0 || app < 0 || db > app {
		t.Errorf("onestart db1 is call %d, onestart app1 call %d: app1 must start after db1", db, app)
	}
}

func TestStartOrder(t *testing.T) {
	j := func(n string, after ...string) state.Jail { return state.Jail{Name: n, StartAfter: after} }
	tests := []struct {
		in   []state.Jail
		want string
	}{
		{[]state.Jail{j("a"), j("b")}, "a b"},
		{[]state.Jail{j("c", "b"), j("b", "a"), j("a")}, "a b c"},
		{[]state.Jail{j("x", "z", "y"), j("y"), j("z")}, "z y x"},
		{[]state.Jail{j("a", "gone"), j("b", "a")}, "a b"},
		{[]state.Jail{j("a", "b"), j("b", "a")}, "b a"}, // a cycle (refused at load) still ends
	}
	for _, tt := range tests {
		var got []string
		for _, x := range StartOrder(tt.in) {
			got = append(got, x.Name)
		}
		if strings.Join(got, " ") != tt.want {
			t.Errorf("StartOrder(%v) = %v, want %s", tt.in, got, tt.want)
		}
	}
}

// Issue 10 item 7: ezjail-admin onestart of a jail ezjail skips exits 0
// (ezjail-admin:148 leaves .norun jails out of its success check). arbo
// proves the start with jls and never reports it done otherwise.
func TestApplyNeverReportsASkippedStart(t *testing.T) {
	m := newMem()
	fakeHost(m)
	run := m.run
	m.run = func(argv []string, stdin string) remote.Result {
		if strings.HasSuffix(argv[0], "ezjail-admin") && argv[1] == "onestart" {
			return remote.Result{Stdout: []byte(" skipping " + argv[2])} // exit 0, nothing started
		}
		return run(argv, stdin)
	}
	res, err := planAndApply(t, m, applyEnv(nil))
	if err != nil {
		t.Fatal(err)
	}
	if !res.Failed() {
		t.Fatalf("apply succeeded although the jail never started: %+v", res.Machines)
	}
	mr := res.Machines[0]
	if slices.Contains(mr.Done, "start jail app1") || !slices.Contains(mr.NotDone, "start jail app1") {
		t.Errorf("start jail app1 is reported done: done %v, not done %v", mr.Done, mr.NotDone)
	}
	if !strings.Contains(mr.Error, "does not run") || !strings.Contains(mr.Error, "ezjail-admin config -r run app1") {
		t.Errorf("error does not say why: %q", mr.Error)
	}
}

// Issue 10 item 7: a retired jail (its config <safename>.norun, kept when a
// data jail left the topology) that comes back is made runnable by a
// planned action of its own, before arbo writes its config and starts it.
func TestRetiredJailIsEnabledExplicitly(t *testing.T) {
	m := newMem()
	fakeHost(m)
	old := []byte("export jail_app1_hostname=\"app1.x.internal\"\nexport jail_app1_ip=\"lo1|10.0.0.1\"\nexport jail_app1_old=\"YES\"\n")
	m.files[EzjailCfgDir+"/app1"+NoRunSuffix] = memFile{content: old, mode: 0o644}
	m.dirs["/usr/jails/app1"] = true
	man := &Manifest{FormatVersion: 1, Cluster: "x", Machine: "h1", Jails: []ManifestJail{{Name: "app1", Tier: "app", Data: true, Retired: true}}}
	m.files[ManifestPath] = memFile{content: man.encode(), mode: 0o600}

	mp, res, err := applyMachine(t, m, desired())
	if err != nil || res.Failed() {
		t.Fatalf("apply: %v %+v", err, res)
	}
	if has(mp, "create jail app1") || has(mp, "create file "+EzjailCfgDir+"/app1") {
		t.Errorf("a retired jail is created again: %v", ops(mp))
	}
	if !has(mp, "enable jail app1") || !has(mp, "start jail app1") {
		t.Fatalf("want enable, then start jail app1: %v", ops(mp))
	}
	for _, a := range mp.Actions {
		if a.Op == OpEnable && (!strings.Contains(a.Reason, "retired") || !strings.Contains(a.Reason, "ezjail-admin config -r run app1")) {
			t.Errorf("the enable action does not say what it does: %q", a.Reason)
		}
	}
	if r, s := m.callIndex(jail.EzjailAdmin, "config", "-r", "run", "app1"), m.callIndex(jail.EzjailAdmin, "onestart", "app1"); r < 0 || s < r {
		t.Errorf("config -r run is call %d, onestart call %d", r, s)
	}
	if got := string(m.files[EzjailCfgDir+"/app1"].content); !strings.Contains(got, "app1.x.internal") || strings.Contains(got, "old") {
		t.Errorf("arbo's config is not the one in place after the enable: %q", got)
	}
	if _, ok := m.files[EzjailCfgDir+"/app1"+NoRunSuffix]; ok {
		t.Error("the .norun config is still there")
	}
	snap, err := Read(context.Background(), m, desired())
	if err != nil {
		t.Fatal(err)
	}
	if mj := snap.Manifest.jail("app1"); mj == nil || mj.Retired || !mj.Data {
		t.Errorf("manifest: %+v, want app1 not retired, still data", mj)
	}
	if mp := Diff(desired(), snap, Options{}); len(mp.Actions) != 0 {
		t.Errorf("second plan not empty: %v", ops(mp))
	}
}

// A disabled jail arbo does not own and whose config is another jail's is
// not enabled: a conflict, as for a runnable one.
func TestForeignNoRunJailConflicts(t *testing.T) {
	d := desired()
	s := converged(d)
	s.Manifest.Jails = nil
	delete(s.Files, EzjailCfgDir+"/app1")
	s.Files[EzjailCfgDir+"/app1"+NoRunSuffix] = FileState{Exists: true, Content: []byte("export jail_app1_ip=\"lo1|10.9.9.9\"\n")}
	mp := Diff(d, s, Options{})
	if mp.Error == "" || has(mp, "enable jail app1") || !strings.Contains(mp.Error, "disabled") {
		t.Errorf("want a conflict for a foreign disabled jail: error %q, %v", mp.Error, ops(mp))
	}
}
