package plan

import (
	"context"
	"fmt"
	"slices"
	"strings"
	"testing"

	"github.com/arbo-project/arbo/jail"
	"github.com/arbo-project/arbo/remote"
	"github.com/arbo-project/arbo/state"
)

// zfsHost is fakeHost on a fresh ZFS host (no ezjail, no basejail, pool
// zroot without zroot/usr/jails), with the zfs(8) calls arbo and
// ezjail-admin make. installSaw records, at ezjail-admin install, whether
// arbo's ezjail.conf and the jails' parent dataset were already there.
type zfsHost struct {
	m          *memTarget
	datasets   map[string]uint64 // name → quota in bytes
	installSaw string
}

func newZFSHost() *zfsHost {
	h := &zfsHost{m: newMem(), datasets: map[string]uint64{"zroot": 0, "zroot/usr": 0}}
	fakeHost(h.m)
	delete(h.m.files, EzjailAdmin)
	delete(h.m.dirs, BasejailDir)
	run := h.m.run
	h.m.run = func(argv []string, stdin string) remote.Result {
		switch {
		case argv[0] == "zfs" && argv[1] == "list":
			ds := argv[len(argv)-1]
			if _, ok := h.datasets[ds]; !ok {
				return remote.Result{Exit: 1, Stderr: []byte("cannot open '" + ds + "': dataset does not exist\n")}
			}
			var b strings.Builder
			for _, n := range sortedKeys(h.datasets) {
				if n == ds || strings.HasPrefix(n, ds+"/") && !strings.Contains(n[len(ds)+1:], "/") {
					fmt.Fprintf(&b, "%s\t%d\n", n, h.datasets[n])
				}
			}
			return remote.Result{Stdout: []byte(b.String())}
		case argv[0] == "zfs" && argv[1] == "create":
			h.datasets[argv[len(argv)-1]] = 0
		case argv[0] == "zfs" && argv[1] == "set":
			q, _ := strings.CutPrefix(argv[2], "quota=")
			n, err := jail.QuotaBytes(q)
			if err != nil {
				return remote.Result{Exit: 1, Stderr: []byte(err.Error())}
			}
			h.datasets[argv[3]] = n
		case argv[0] == "pkg" && argv[1] == "install":
			h.m.files[EzjailAdmin] = memFile{mode: 0o755}
		case argv[0] == jail.EzjailAdmin && argv[1] == "install":
			conf, ok := h.m.files[jail.EzjailConf]
			_, parent := h.datasets["zroot/usr/jails"]
			useZFS := strings.Contains(string(conf.content), `ezjail_use_zfs="YES"`)
			h.installSaw = fmt.Sprintf("ezjail.conf %v (use_zfs %v), parent dataset %v", ok, useZFS, parent)
			h.m.dirs[BasejailDir] = true
			if useZFS { // ezjail-admin:277 (basejail), 1048 and 298 (fulljail, renamed newjail)
				h.datasets["zroot/usr/jails/basejail"] = 0
				h.datasets["zroot/usr/jails/newjail"] = 0
			}
		case argv[0] == jail.EzjailAdmin && argv[1] == "create":
			// ezjail-admin:711,716: zfs create -o quota=<-s> <parentzfs>/<name>.
			var q uint64
			if i := slices.Index(argv, "-s"); i > 0 {
				q, _ = jail.QuotaBytes(argv[i+1])
			}
			h.datasets["zroot/usr/jails/"+argv[len(argv)-2]] = q
		}
		return run(argv, stdin)
	}
	return h
}

// zfsDesired is desired() on a ZFS host, app1 with a quota.
func zfsDesired(quota string) *state.Machine {
	d := desired()
	d.ZFSDataset = "zroot/usr/jails"
	d.Jails[0].ZFS, d.Jails[0].Quota = "zroot/usr/jails/app1", quota
	plain := []byte("ezjail_use_zfs_for_jails=\"YES\"\nezjail_jailzfs=\"zroot/usr/jails\"\n")
	datasets := append(slices.Clone(plain), "ezjail_use_zfs=\"YES\"\n"...)
	d.Files = append(d.Files, state.File{Path: jail.EzjailConf, Mode: 0o644, Owner: "root", Group: "wheel",
		Content: datasets, Variants: &state.BaseVariants{Datasets: datasets, Plain: plain}})
	return d
}

// Issue 10 item 5: --bootstrap on a ZFS host writes arbo's ezjail.conf and
// makes the jails' parent dataset before ezjail-admin install (which reads
// ezjail.conf, ezjail-admin:14), creates a jail with its quota (create -s,
// ezjail-admin:711), and sets a changed quota with zfs set quota.
func TestZFSBootstrapAndQuota(t *testing.T) {
	h := newZFSHost()
	mp, res, err := applyMachineWith(t, h.m, zfsDesired("20G"), Options{Bootstrap: true})
	if err != nil || res.Failed() {
		t.Fatalf("apply: %v %+v", err, res)
	}
	for _, want := range []string{"create zfs zroot/usr/jails", "install basejail ezjail", "create jail app1"} {
		if !has(mp, want) {
			t.Errorf("plan lacks %q: %v", want, ops(mp))
		}
	}
	for _, a := range mp.Actions {
		if a.Op == OpCreate && a.Kind == KindJail && !strings.Contains(a.Reason, "ezjail-admin create -s 20G app1") {
			t.Errorf("the plan does not show the create with its quota: %q", a.Reason)
		}
	}
	if want := "ezjail.conf true (use_zfs true), parent dataset true"; h.installSaw != want {
		t.Errorf("at ezjail-admin install: %s; want %s", h.installSaw, want)
	}
	if q := h.datasets["zroot/usr/jails/app1"]; q != 20<<30 {
		t.Errorf("app1's quota is %d, want 20G", q)
	}
	if mp := replan(t, h.m, zfsDesired("20G")); len(mp.Actions) != 0 {
		t.Fatalf("second plan not empty: %v", ops(mp))
	}

	// A quota ezjail's -s cannot take, on an existing jail: zfs set.
	mp, res, err = applyMachineWith(t, h.m, zfsDesired("1.5T"), Options{})
	if err != nil || res.Failed() {
		t.Fatalf("apply: %v %+v", err, res)
	}
	if !has(mp, "update zfs zroot/usr/jails/app1") || !strings.Contains(mp.Actions[0].Reason, "zfs set quota=1.5T zroot/usr/jails/app1 (now 20G)") {
		t.Errorf("plan: %v %+v", ops(mp), mp.Actions)
	}
	if q := h.datasets["zroot/usr/jails/app1"]; q != 3<<39 {
		t.Errorf("app1's quota is %d, want 1.5T", q)
	}
	if mp := replan(t, h.m, zfsDesired("1.5T")); len(mp.Actions) != 0 {
		t.Fatalf("plan after the quota change not empty: %v", ops(mp))
	}
	// No zfs.quota: arbo leaves the quota alone.
	if mp := replan(t, h.m, zfsDesired("")); len(mp.Actions) != 0 {
		t.Errorf("a jail without zfs.quota gets quota actions: %v", ops(mp))
	}
}

// A jail created with a size ezjail's create -s cannot take gets its quota
// with zfs set right after the create, and the plan says so.
func TestZFSQuotaAfterCreate(t *testing.T) {
	h := newZFSHost()
	mp, res, err := applyMachineWith(t, h.m, zfsDesired("1.5T"), Options{Bootstrap: true})
	if err != nil || res.Failed() {
		t.Fatalf("apply: %v %+v", err, res)
	}
	for _, a := range mp.Actions {
		if a.Op == OpCreate && a.Kind == KindJail && !strings.Contains(a.Reason, "then zfs set quota=1.5T zroot/usr/jails/app1") {
			t.Errorf("the plan does not show the quota after the create: %q", a.Reason)
		}
	}
	if q := h.datasets["zroot/usr/jails/app1"]; q != 3<<39 {
		t.Errorf("app1's quota is %d, want 1.5T", q)
	}
}

// Without --bootstrap, arbo does not make a missing parent dataset on a
// host that has its basejail: ezjail-admin create would refuse every ZFS
// jail (ezjail-admin:714); the plan says what to do.
func TestZFSMissingParentRefused(t *testing.T) {
	h := newZFSHost()
	h.m.files[EzjailAdmin] = memFile{mode: 0o755}
	h.m.dirs[BasejailDir] = true
	snap, err := Read(context.Background(), h.m, zfsDesired("20G"))
	if err != nil {
		t.Fatal(err)
	}
	mp := Diff(zfsDesired("20G"), snap, Options{})
	if !strings.Contains(mp.Error, "zfs.dataset zroot/usr/jails does not exist") || has(mp, "create zfs zroot/usr/jails") {
		t.Errorf("want a refusal naming the dataset: error %q, %v", mp.Error, ops(mp))
	}
}

// replan reads m and plans d as Make does (Settle, then Diff).
func replan(t *testing.T, m *memTarget, d *state.Machine) MachinePlan {
	t.Helper()
	snap, err := Read(context.Background(), m, d)
	if err != nil {
		t.Fatal(err)
	}
	Settle(d, snap)
	return Diff(d, snap, Options{})
}

// Issue 10 item 5: on a host whose basejail and newjail are plain
// directories, ezjail.conf must not set ezjail_use_zfs: ezjail-admin create
// would copy newjail with zfs snapshot/send of <jailzfs>/newjail
// (ezjail-admin:747-752) and fail ("Could not copy template jail",
// ezjail-admin:757). A base of datasets keeps it.
func TestSettleEzjailConf(t *testing.T) {
	tests := []struct {
		name     string
		basejail bool
		zfs      map[string]uint64
		useZFS   bool
	}{
		{"fresh host (install makes datasets)", false, map[string]uint64{}, true},
		{"base of plain directories", true, map[string]uint64{"zroot/usr/jails": 0}, false},
		{"base of plain directories, no parent dataset", true, map[string]uint64{}, false},
		{"base of datasets", true, map[string]uint64{"zroot/usr/jails": 0, "zroot/usr/jails/basejail": 0, "zroot/usr/jails/newjail": 0}, true},
		{"offline", false, nil, true},
	}
	for _, tt := range tests {
		d := zfsDesired("")
		s := &Snapshot{HasBasejail: tt.basejail, ZFS: tt.zfs}
		Settle(d, s)
		Settle(d, s) // again: the same
		got := strings.Contains(string(d.File(jail.EzjailConf).Content), `ezjail_use_zfs="YES"`)
		if got != tt.useZFS {
			t.Errorf("%s: ezjail_use_zfs %v, want %v", tt.name, got, tt.useZFS)
		}
	}
}

// The whole cycle on a base of plain directories: the plan rewrites
// ezjail.conf without ezjail_use_zfs before the create.
func TestZFSPlainBase(t *testing.T) {
	h := newZFSHost()
	h.m.files[EzjailAdmin] = memFile{mode: 0o755}
	h.m.dirs[BasejailDir] = true
	h.datasets["zroot/usr/jails"] = 0
	d := zfsDesired("20G")
	snap, err := Read(context.Background(), h.m, d)
	if err != nil {
		t.Fatal(err)
	}
	Settle(d, snap)
	mp, res, err := applyMachineWith(t, h.m, d, Options{})
	if err != nil || res.Failed() {
		t.Fatalf("apply: %v %+v", err, res)
	}
	if !has(mp, "create file "+jail.EzjailConf) || !has(mp, "create jail app1") {
		t.Errorf("plan: %v", ops(mp))
	}
	if got := string(h.m.files[jail.EzjailConf].content); strings.Contains(got, "ezjail_use_zfs=") {
		t.Errorf("ezjail.conf on a plain base sets ezjail_use_zfs:\n%s", got)
	}
	if mp := replan(t, h.m, zfsDesired("20G")); len(mp.Actions) != 0 {
		t.Errorf("second plan not empty: %v", ops(mp))
	}
}
