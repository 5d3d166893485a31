package plan

import (
	"context"
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/arbo-project/arbo/inventory"
	"github.com/arbo-project/arbo/remote"
	"github.com/arbo-project/arbo/state"
)

// fakeHost answers the commands apply runs on a FreeBSD host, keeping the
// little state the order of steps depends on.
func fakeHost(m *memTarget) {
	m.files["/etc/passwd"] = memFile{content: []byte("root:*:0:0::0:0:Charlie &:/root:/bin/sh\n"), mode: 0o644}
	m.files["/etc/group"] = memFile{content: []byte("wheel:*:0:root\n"), mode: 0o644}
	m.files[EzjailAdmin] = memFile{mode: 0o755}
	m.dirs[BasejailDir] = true
	running := map[string]bool{}
	ifaces := "lo0 em0"
	routes := ""
	m.pfOn = true // as its pfctl -s info below says
	m.run = func(argv []string, stdin string) remote.Result {
		switch {
		case argv[0] == "/bin/sh" && argv[2] == routesScript:
			for _, l := range strings.Split(strings.TrimSpace(stdin), "\n") {
				f := strings.Fields(l) // family kind dest gateway
				routes += f[2] + " " + f[3] + " UGHS\n"
			}
		case argv[0] == "/bin/sh" && argv[2] == unroutesScript:
			for _, l := range strings.Split(strings.TrimSpace(stdin), "\n") {
				f := strings.Fields(l)
				var kept []string
				for _, r := range strings.SplitAfter(routes, "\n") {
					if g := strings.Fields(r); len(g) > 0 && g[0] != f[2] {
						kept = append(kept, r)
					}
				}
				routes = strings.Join(kept, "")
			}
		case argv[0] == "/bin/sh":
			var names []string
			for n := range running {
				names = append(names, n)
			}
			return remote.Result{Stdout: []byte(strings.Join(names, "\n") + "\n--arbo--\n" + ifaces + "\n--arbo--\n" + routes)}
		case strings.Join(argv, " ") == "service netif cloneup":
			ifaces += " lo1"
		case argv[0] == "mkdir":
			if m.dirs[argv[1]] {
				return remote.Result{Exit: 1}
			}
			m.dirs[argv[1]] = true
		case argv[0] == "pfctl" && len(argv) > 2 && argv[1] == "-s":
			return remote.Result{Stdout: []byte("Status: Enabled for 1 days\n")}
		case strings.HasSuffix(argv[0], "ezjail-admin") && argv[1] == "create":
			// ezjail-admin create writes its own config and the jail root.
			name := argv[len(argv)-2]
			m.files[EzjailCfgDir+"/"+name] = memFile{content: []byte("ezjail's own\n"), mode: 0o644}
			m.dirs[JailDir+"/"+name] = true
		case strings.HasSuffix(argv[0], "ezjail-admin") && argv[1] == "onestart":
			// ezjail.sh:59,66: a .norun jail is skipped, and onestart
			// still exits 0 (ezjail-admin:148).
			if _, norun := m.files[EzjailCfgDir+"/"+argv[2]+NoRunSuffix]; !norun {
				running[argv[2]] = true
			}
		case strings.HasSuffix(argv[0], "ezjail-admin") && len(argv) == 5 && strings.Join(argv[1:4], " ") == "config -r run":
			// ezjail-admin:1637: <safename>.norun back to <safename>.
			cfg := EzjailCfgDir + "/" + argv[4]
			if f, ok := m.files[cfg+NoRunSuffix]; ok {
				m.files[cfg] = f
				delete(m.files, cfg+NoRunSuffix)
			}
		case argv[0] == "jls" && len(argv) == 4 && argv[1] == "-j":
			if !running[argv[2]] {
				return remote.Result{Exit: 1, Stderr: []byte("jls: jail \"" + argv[2] + "\" not found\n")}
			}
			return remote.Result{Stdout: []byte("1\n")}
		}
		return remote.Result{}
	}
}

func applyEnv(probe error) ApplyEnv {
	return ApplyEnv{
		Env:            Env{Parallel: 2},
		Now:            func() time.Time { return time.Unix(1_800_000_000, 0) },
		Owner:          "test",
		ConfirmTimeout: time.Second,
		StaleLock:      time.Hour,
		Redial: func(ctx context.Context, machine string) (Target, error) {
			if probe != nil {
				return nil, probe
			}
			return newMem(), nil
		},
	}
}

func planAndApply(t *testing.T, m *memTarget, env ApplyEnv) (*Result, error) {
	t.Helper()
	ctx := context.Background()
	d := desired()
	snap, err := Read(ctx, m, d)
	if err != nil {
		t.Fatal(err)
	}
	p := &Plan{FormatVersion: 1, Kind: PlanKind, Machines: []MachinePlan{Diff(d, snap, Options{})}}
	if p.Machines[0].Error != "" {
		t.Fatal(p.Machines[0].Error)
	}
	sess := &Session{Targets: map[string]Target{"h1": m}, Desired: map[string]*state.Machine{"h1": d}}
	c := (&inventory.Cluster{Name: "x"}).Finish()
	return Apply(ctx, c, p, sess, env)
}

func TestApplyInMemory(t *testing.T) {
	m := newMem()
	fakeHost(m)
	res, err := planAndApply(t, m, applyEnv(nil))
	if err != nil || res.Failed() {
		t.Fatalf("apply: %v %+v", err, res)
	}
	// arbo's jail config replaced ezjail's before the first start.
	if got := string(m.files[EzjailCfgDir+"/app1"].content); !strings.Contains(got, "app1.x.internal") {
		t.Errorf("ezjail config not replaced: %q", got)
	}
	// pf: promoted after the probe, staged file gone, previous kept.
	if string(m.files[PFPath].content) != "block all\n" {
		t.Errorf("pf.conf not promoted: %q", m.files[PFPath].content)
	}
	if _, ok := m.files[PFStaged]; ok {
		t.Error("the staged pf file is still there")
	}
	if !m.ran("pfctl", "-nf", PFStaged) || !m.ran("pfctl", "-f", PFStaged) || !m.ran("/bin/sh", pfGuard.path, "arm") || !m.ran("/bin/sh", pfGuard.path, "confirm") {
		t.Error("pf was not validated, guarded and loaded from the staged file")
	}
	if m.ran("service", "pf", "restart") {
		t.Error("service pf restart ran over SSH")
	}
	// pf.ko and pflog.ko before the first pfctl that needs /dev/pf
	// (freebsd/libexec/rc/rc.d/pf:23 required_modules="pf": only rc.d/pf
	// loads it, and arbo does not go through rc.d/pf).
	if k, p := m.callIndex("kldload", "-n", "pf", "pflog"), m.callIndex("pfctl", "-s", "info"); k < 0 || p < 0 || k > p {
		t.Errorf("kldload -n pf pflog (call %d) not before pfctl -s info (call %d)", k, p)
	}
	// Secrets: written with their mode, and the lock is released.
	if f := m.files["/usr/jails/app1/root/.erlang.cookie"]; string(f.content) != cookie || f.mode != 0o400 {
		t.Errorf("cookie: %+v", f)
	}
	if m.dirs[LockPath] {
		t.Error("the lock was not released")
	}
	// The manifest makes the next plan empty.
	snap, err := Read(context.Background(), m, desired())
	if err != nil {
		t.Fatal(err)
	}
	if mp := Diff(desired(), snap, Options{}); len(mp.Actions) != 0 {
		t.Fatalf("second plan not empty: %v", ops(mp))
	}
}

func TestApplyRollsBackALockout(t *testing.T) {
	m := newMem()
	fakeHost(m)
	res, err := planAndApply(t, m, applyEnv(errors.New("connection refused")))
	if err != nil {
		t.Fatal(err)
	}
	if !res.Failed() || !strings.Contains(res.Machines[0].Error, "lock SSH out") && !strings.Contains(res.Machines[0].Error, "still fails") {
		t.Fatalf("a lockout was not reported: %+v", res.Machines)
	}
	// Never promoted: /etc/pf.conf still holds what was there (nothing).
	if _, ok := m.files[PFPath]; ok {
		t.Error("pf.conf was promoted although the probe failed")
	}
	// What was done is still recorded: the jail arbo created is arbo's.
	man, err := parseManifest(m.files[ManifestPath].content)
	if err != nil || man.jail("app1") == nil || man.Activated.PF != "" {
		t.Fatalf("manifest after a failed run: %v %+v", err, man)
	}
}

func TestApplyRefusesAStalePlan(t *testing.T) {
	m := newMem()
	fakeHost(m)
	ctx := context.Background()
	d := desired()
	snap, _ := Read(ctx, m, d)
	p := &Plan{FormatVersion: 1, Kind: PlanKind, Machines: []MachinePlan{Diff(d, snap, Options{})}}
	m.files["/etc/rc.conf.local"] = memFile{content: []byte("edited meanwhile\n"), mode: 0o644}
	sess := &Session{Targets: map[string]Target{"h1": m}, Desired: map[string]*state.Machine{"h1": d}}
	res, err := Apply(ctx, (&inventory.Cluster{Name: "x"}).Finish(), p, sess, applyEnv(nil))
	var se *StaleError
	if !errors.As(err, &se) || !res.Stale {
		t.Fatalf("want a stale plan error, got %v", err)
	}
	if string(m.files["/etc/rc.conf.local"].content) != "edited meanwhile\n" || m.ran("pfctl", "-f", PFStaged) {
		t.Fatal("a stale plan changed the machine")
	}
	if m.dirs[LockPath] {
		t.Error("the lock was not released after the refusal")
	}
}

func TestApplyHeldLock(t *testing.T) {
	m := newMem()
	fakeHost(m)
	m.dirs[LockPath] = true
	m.files[LockPath+"/owner"] = memFile{content: []byte("other@ci pid 9\n1799999990\n")}
	_, err := planAndApply(t, m, applyEnv(nil))
	var lh *LockHeldError
	if !errors.As(err, &lh) || !strings.Contains(err.Error(), "other@ci") {
		t.Fatalf("want a held lock, got %v", err)
	}
	if m.ran("pfctl", "-f", PFStaged) {
		t.Fatal("changed a machine without its lock")
	}
}

// gatewayMachine is a desired gateway with a new config.xml.
func gatewayMachine() *state.Machine {
	return &state.Machine{Name: "gate", Kind: state.KindGateway, Files: []state.File{
		{Path: ConfigXML, Mode: 0o644, Owner: "root", Group: "wheel", Content: []byte("<pfsense><new/></pfsense>\n"),
			Reload: []state.Reload{{Kind: state.ReloadPfSense}}},
	}}
}

func applyGateway(t *testing.T, env ApplyEnv) (*memTarget, *Result) {
	t.Helper()
	return applyGatewayWith(t, env, nil, nil)
}

// applyGatewayWith applies newConf (nil: gatewayMachine's) to a gateway
// whose commands answer with run (nil: exit 0, no output).
func applyGatewayWith(t *testing.T, env ApplyEnv, newConf []byte, run func(argv []string) remote.Result) (*memTarget, *Result) {
	t.Helper()
	m := newMem()
	m.files["/etc/passwd"] = memFile{content: []byte("root:*:0:0::0:0::/root:/bin/sh\n")}
	m.files["/etc/group"] = memFile{content: []byte("wheel:*:0:root\n")}
	m.files[ConfigXML] = memFile{content: []byte("<pfsense><old/></pfsense>\n"), mode: 0o644}
	m.run = func(argv []string, stdin string) remote.Result {
		if argv[0] == "mkdir" {
			m.dirs[argv[1]] = true
		}
		if run != nil {
			return run(argv)
		}
		return remote.Result{}
	}
	ctx := context.Background()
	d := gatewayMachine()
	if newConf != nil {
		d.Files[0].Content = newConf
	}
	snap, err := Read(ctx, m, d)
	if err != nil {
		t.Fatal(err)
	}
	p := &Plan{FormatVersion: 1, Kind: PlanKind, Machines: []MachinePlan{Diff(d, snap, Options{})}}
	sess := &Session{Targets: map[string]Target{"gate": m}, Desired: map[string]*state.Machine{"gate": d}}
	res, err := Apply(ctx, (&inventory.Cluster{Name: "x"}).Finish(), p, sess, env)
	if err != nil {
		t.Fatal(err)
	}
	return m, res
}

func TestGatewayCommitConfirmed(t *testing.T) {
	m, res := applyGateway(t, applyEnv(nil))
	if res.Failed() {
		t.Fatalf("apply: %+v", res.Machines)
	}
	// The guard was armed before config.xml changed, with the backup to restore.
	var guard []string
	for _, c := range m.calls {
		if len(c) > 6 && c[1] == configGuard.path && c[2] == "arm" {
			guard = c
		}
	}
	if guard == nil {
		t.Fatal("no rollback guard was armed for the gateway")
	}
	backup := guard[6]
	if string(m.files[backup].content) != "<pfsense><old/></pfsense>\n" {
		t.Fatalf("the guard would restore %s, which does not hold the previous config", backup)
	}
	if got := strings.Fields(string(m.files[configGuard.state].content)); len(got) != 4 || got[0] != guard[4] || got[1] != "confirmed" {
		t.Fatalf("a confirmed change was not settled (%q): the guard would roll it back", got)
	}
	if !m.ran("/etc/rc.filter_configure_sync") {
		t.Fatal("pfSense was not made to load the new config")
	}
}

// TestGatewayRulesetNotLoaded: pfctl refused the ruleset pfSense generated,
// pfSense loaded the previous one again and its reload exited 0
// (pfsense-2.7.2 filter.inc:515-564). arbo sees that its rule's tracker is
// not among the loaded rules' ridentifiers (filter.inc:3688), fails the
// gateway, and puts the previous config.xml back and loads it (issue 10
// item 10). When pf runs the new rules the apply succeeds.
func TestGatewayRulesetNotLoaded(t *testing.T) {
	conf := []byte("<pfsense><filter><rule><tracker>4242</tracker><descr>arbo:x:ssh:lan</descr></rule>" +
		"<rule><tracker>7</tracker><descr>user</descr></rule></filter></pfsense>\n")
	for _, tc := range []struct {
		name, sr string
		ok       bool
	}{
		{"loaded", "pass in quick on igb2 inet proto tcp from 192.168.1.0/24 to (self) port = ssh flags S/SA keep state ridentifier 4242 label \"USER_RULE: arbo:x:ssh:lan\"\n", true},
		{"previous rules", "pass in quick on igb2 proto tcp from any to (igb2) port { 443 80 22 } ridentifier 10000 keep state label \"anti-lockout rule\"\n", false},
		{"tracker in a label only", "pass all label \"ridentifier4242\"\n", false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			m, res := applyGatewayWith(t, applyEnv(nil), conf, func(argv []string) remote.Result {
				switch strings.Join(argv, " ") {
				case "/sbin/pfctl -sr":
					return remote.Result{Stdout: []byte(tc.sr)}
				case "/sbin/pfctl -n -o basic -f /tmp/rules.debug":
					return remote.Result{Exit: 1, Stderr: []byte("/tmp/rules.debug:42: syntax error\n")}
				}
				return remote.Result{}
			})
			if tc.ok {
				if res.Failed() || string(m.files[ConfigXML].content) != string(conf) {
					t.Fatalf("apply with the new rules loaded: %+v", res.Machines)
				}
				return
			}
			if !res.Failed() {
				t.Fatal("a ruleset pf does not run was reported as applied")
			}
			msg := res.Machines[0].Error
			for _, want := range []string{"did not load the ruleset", "[4242]", "/tmp/rules.debug:42: syntax error", "put the previous /cf/conf/config.xml back"} {
				if !strings.Contains(msg, want) {
					t.Errorf("error lacks %q: %s", want, msg)
				}
			}
			if got := string(m.files[ConfigXML].content); got != "<pfsense><old/></pfsense>\n" {
				t.Errorf("config.xml after the failure = %q, want the previous one back", got)
			}
			var reloads int
			for _, c := range m.calls {
				if c[0] == "/etc/rc.filter_configure_sync" {
					reloads++
				}
			}
			if reloads != 2 {
				t.Errorf("pfSense reloaded %d times, want 2 (the new config, then the previous one)", reloads)
			}
		})
	}
}

func TestGatewayLockoutLeftToTheTimer(t *testing.T) {
	// The first new connection fails; after the timer restored the previous
	// config (as the on-box script does), one gets in again.
	env := applyEnv(nil)
	probes := 0
	env.Redial = func(ctx context.Context, machine string) (Target, error) {
		if probes++; probes == 1 {
			return nil, errors.New("connection refused")
		}
		return newMem(), nil
	}
	m, res := applyGateway(t, env)
	if !res.Failed() || !strings.Contains(res.Machines[0].Error, "would lock SSH out") {
		t.Fatalf("a gateway lockout was not reported: %+v", res.Machines)
	}
	if got := strings.Fields(string(m.files[configGuard.state].content)); len(got) != 4 || got[1] != "armed" {
		t.Fatalf("an unconfirmed gateway change was settled (%q): the guard would not restore it", got)
	}
	if man, _ := parseManifest(m.files[ManifestPath].content); man == nil || man.Activated.Config != "" {
		t.Fatal("an unconfirmed config was recorded as activated")
	}
}

// TestInterrupt: Ctrl-C in the middle of an apply (here: while a jail is
// being created) stops new steps from starting; what was written is whole.
func TestInterrupt(t *testing.T) {
	m := newMem()
	fakeHost(m)
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	inner := m.run
	m.run = func(argv []string, stdin string) remote.Result {
		r := inner(argv, stdin)
		if strings.HasSuffix(argv[0], "ezjail-admin") && argv[1] == "create" {
			cancel() // the operator presses Ctrl-C now
		}
		return r
	}
	d := desired()
	snap, err := Read(ctx, m, d) // a fresh host: the jail is created, so the interrupt lands mid-run
	if err != nil {
		t.Fatal(err)
	}
	p := &Plan{FormatVersion: 1, Kind: PlanKind, Machines: []MachinePlan{Diff(d, snap, Options{})}}
	sess := &Session{Targets: map[string]Target{"h1": m}, Desired: map[string]*state.Machine{"h1": d}}
	res, err := Apply(ctx, (&inventory.Cluster{Name: "x"}).Finish(), p, sess, applyEnv(nil))
	if err != nil {
		t.Fatal(err)
	}
	if !res.Failed() || !strings.Contains(res.Machines[0].Error, "interrupted") {
		t.Fatalf("want the machine to stop as interrupted, got %+v", res.Machines)
	}
	for _, after := range [][]string{{"pfctl", "-f", PFStaged}, {EzjailAdmin, "onestart"}} {
		if m.ran(after...) {
			t.Errorf("%v ran after the interrupt", after)
		}
	}
	if len(res.Machines[0].NotDone) == 0 {
		t.Error("the summary does not say what was not done")
	}
}

// The dns/unbound port's rc script has no configtest
// (../shared/fixtures/upstream/freebsd-ports/dns/unbound/files/unbound.in:85
// extra_commands="reload"; rc.subr:1709 answers "unknown directive" and exit
// 1): apply checks with unbound-checkconf inside the jail, then restarts.
func TestApplyChecksUnboundWithCheckconf(t *testing.T) {
	m := newMem()
	fakeHost(m)
	inner := m.run
	m.run = func(argv []string, stdin string) remote.Result {
		if len(argv) >= 4 && argv[0] == "service" && argv[len(argv)-2] == "unbound" && argv[len(argv)-1] == "configtest" {
			return remote.Result{Exit: 1, Stderr: []byte("/usr/local/etc/rc.d/unbound: unknown directive 'configtest'.\n")}
		}
		return inner(argv, stdin)
	}
	d := desired()
	d.Files = append(d.Files, state.File{Path: "/usr/jails/app1/usr/local/etc/unbound/unbound.conf", Mode: 0o644, Owner: "root", Group: "wheel", Jail: "app1",
		Content: []byte("server:\n"), Reload: []state.Reload{{Kind: state.ReloadUnbound, Target: "app1"}}})
	ctx := context.Background()
	snap, err := Read(ctx, m, d)
	if err != nil {
		t.Fatal(err)
	}
	p := &Plan{FormatVersion: 1, Kind: PlanKind, Machines: []MachinePlan{Diff(d, snap, Options{})}}
	sess := &Session{Targets: map[string]Target{"h1": m}, Desired: map[string]*state.Machine{"h1": d}}
	res, err := Apply(ctx, (&inventory.Cluster{Name: "x"}).Finish(), p, sess, applyEnv(nil))
	if err != nil || res.Failed() {
		t.Fatalf("apply: %v %+v", err, res)
	}
	c, r := m.callIndex(UnboundCheckArgs("app1")...), m.callIndex("service", "-j", "app1", "unbound", "restart")
	if c < 0 || r < 0 || c > r {
		t.Errorf("unbound-checkconf in the jail (call %d) not before service -j app1 unbound restart (call %d)", c, r)
	}
}

// A machine that could not be planned is a failure with its cause even when
// nothing else changes (issue 11 item 6: no "No changes" exit 0).
func TestRefusedWithoutChanges(t *testing.T) {
	p := &Plan{Machines: []MachinePlan{{Name: "h1"}, {Name: "fw", Error: "ssh: connect: connection refused"}}}
	res := &Result{Machines: Refused(p)}
	if !res.Failed() || len(res.Machines) != 1 || res.Machines[0].Machine != "fw" || !strings.Contains(res.Machines[0].Error, "connection refused") {
		t.Fatalf("refused: %+v", res)
	}
	if r := Refused(&Plan{Machines: []MachinePlan{{Name: "h1"}}}); len(r) != 0 {
		t.Fatalf("a clean plan refused: %+v", r)
	}
	// A saved plan takes the causes of machines that cannot be reached now.
	saved := &Plan{Machines: []MachinePlan{{Name: "fw", Actions: []Action{{Op: OpUpdate}}}, {Name: "h1"}}}
	got := saved.WithErrorsFrom(&Plan{Machines: []MachinePlan{{Name: "fw", Error: "no SSH key to log in with"}, {Name: "h1"}}})
	if got.Machines[0].Error != "no SSH key to log in with" || got.Machines[1].Error != "" || saved.Machines[0].Error != "" {
		t.Fatalf("WithErrorsFrom: %+v (saved %+v)", got.Machines, saved.Machines)
	}
}
