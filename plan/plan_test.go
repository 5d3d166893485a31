package plan

import (
	"context"
	"errors"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/arbo-project/arbo/remote"
	"github.com/arbo-project/arbo/state"
)

const cookie = "S3CRETCOOKIEVALUE"

func desired() *state.Machine {
	return &state.Machine{
		Name: "h1", Kind: state.KindHost,
		Files: []state.File{
			{Path: "/etc/pf.conf", Mode: 0o644, Owner: "root", Group: "wheel", Content: []byte("block all\n"), Reload: []state.Reload{{Kind: state.ReloadPF}}},
			{Path: "/etc/rc.conf.local", Mode: 0o644, Owner: "root", Group: "wheel", Content: []byte("cloned_interfaces=\"lo1\"\n"), Reload: []state.Reload{{Kind: state.ReloadNetif}}},
			{Path: "/usr/jails/app1/etc/resolv.conf", Mode: 0o644, Owner: "root", Group: "wheel", Jail: "app1", Content: []byte("search x.internal\n")},
			{Path: "/usr/jails/app1/root/.erlang.cookie", Mode: 0o400, Owner: "root", Group: "wheel", Jail: "app1", Sensitive: true, Content: []byte(cookie)},
			{Path: "/usr/local/etc/ezjail/app1", Mode: 0o644, Owner: "root", Group: "wheel", Content: []byte("export jail_app1_hostname=\"app1.x.internal\"\nexport jail_app1_ip=\"lo1|10.0.0.1\"\n"), Reload: []state.Reload{{Kind: state.ReloadJail, Target: "app1"}}},
		},
		Jails:  []state.Jail{{Name: "app1", SafeName: "app1", Hostname: "app1.x.internal", IP: "lo1|10.0.0.1", Tier: "app", Root: "/usr/jails/app1", Packages: []string{"erlang"}}},
		Routes: []state.Route{{Dest: "10.0.1.1/32", Via: "192.168.2.2"}},
	}
}

// converged is the snapshot of a machine that matches desired() after an apply.
func converged(d *state.Machine) *Snapshot {
	s := &Snapshot{Machine: d.Name, Files: map[string]FileState{}, HasEzjail: true, HasBasejail: true,
		Running: map[string]bool{"app1": true}, Interfaces: map[string]bool{"lo0": true, "lo1": true},
		Routes: map[string]string{"10.0.1.1": "192.168.2.2"}, Users: map[string]map[string]int{"": {"root": 0}}, Groups: map[string]map[string]int{"": {"wheel": 0}}}
	m := &Manifest{FormatVersion: 1, Machine: d.Name, Jails: []ManifestJail{{Name: "app1", Tier: "app"}}}
	for _, f := range d.Files {
		s.Files[f.Path] = FileState{Exists: true, Digest: digestOf(f.Content), Content: f.Content, Mode: f.Mode}
		m.Files = append(m.Files, ManifestFile{Path: f.Path, SHA256: digestOf(f.Content), Jail: f.Jail})
	}
	m.Activated.PF = digestOf(d.File("/etc/pf.conf").Content)
	s.Manifest = m
	return s
}

func ops(mp MachinePlan) []string {
	var out []string
	for _, a := range mp.Actions {
		out = append(out, a.Op+" "+a.Kind+" "+a.Target)
	}
	return out
}

func has(mp MachinePlan, want string) bool {
	for _, o := range ops(mp) {
		if o == want {
			return true
		}
	}
	return false
}

func TestDiff(t *testing.T) {
	tests := []struct {
		name    string
		opts    Options
		mutate  func(d *state.Machine, s *Snapshot)
		want    []string // actions that must be there
		notWant []string
		wantErr string // in MachinePlan.Error
		empty   bool
	}{
		{name: "converged machine: nothing to do", empty: true},
		{
			name: "drift in a host file: update with the reload it triggers",
			mutate: func(d *state.Machine, s *Snapshot) {
				s.Files["/etc/pf.conf"] = FileState{Exists: true, Digest: digestOf([]byte("pass all\n")), Content: []byte("pass all\n"), Mode: 0o644}
			},
			want: []string{"update file /etc/pf.conf", "reload pf /etc/pf.conf"},
		},
		{
			name: "mode drift alone is a change",
			mutate: func(d *state.Machine, s *Snapshot) {
				f := s.Files["/etc/rc.conf.local"]
				f.Mode = 0o666
				s.Files["/etc/rc.conf.local"] = f
			},
			want: []string{"update file /etc/rc.conf.local"},
		},
		{
			name:    "pf written but never confirmed live (a cut run): reload",
			mutate:  func(d *state.Machine, s *Snapshot) { s.Manifest.Activated.PF = "" },
			want:    []string{"reload pf /etc/pf.conf"},
			notWant: []string{"update file /etc/pf.conf"},
		},
		{
			name:   "a file arbo owned that the topology dropped is deleted",
			mutate: func(d *state.Machine, s *Snapshot) { d.Files = d.Files[1:] },
			want:   []string{"delete file /etc/pf.conf"},
		},
		{
			name: "the jail does not exist: create, packages, start; its config is folded into the create",
			mutate: func(d *state.Machine, s *Snapshot) {
				s.Files["/usr/local/etc/ezjail/app1"] = FileState{}
				delete(s.Running, "app1")
				s.Manifest.Jails = nil
			},
			want:    []string{"create jail app1", "install packages app1", "start jail app1"},
			notWant: []string{"create file /usr/local/etc/ezjail/app1", "update file /usr/local/etc/ezjail/app1"},
		},
		{
			name: "no basejail: refused without --bootstrap, naming the fix",
			mutate: func(d *state.Machine, s *Snapshot) {
				s.Files["/usr/local/etc/ezjail/app1"] = FileState{}
				s.HasBasejail = false
			},
			wantErr: "--bootstrap",
		},
		{
			name: "no basejail with --bootstrap: installed first",
			opts: Options{Bootstrap: true},
			mutate: func(d *state.Machine, s *Snapshot) {
				s.Files["/usr/local/etc/ezjail/app1"] = FileState{}
				s.HasBasejail = false
			},
			want: []string{"install basejail ezjail", "create jail app1"},
		},
		{
			name:   "a stopped jail is started",
			mutate: func(d *state.Machine, s *Snapshot) { delete(s.Running, "app1") },
			want:   []string{"start jail app1"},
		},
		{
			name: "a changed jail config restarts the jail",
			mutate: func(d *state.Machine, s *Snapshot) {
				s.Files["/usr/local/etc/ezjail/app1"] = FileState{Exists: true, Digest: "x", Content: []byte("old"), Mode: 0o644}
			},
			want: []string{"update file /usr/local/etc/ezjail/app1", "restart jail app1"},
		},
		{
			name:   "an unowned jail whose config matches (ezjail's bare hostname) is adopted",
			mutate: func(d *state.Machine, s *Snapshot) { s.Manifest.Jails = nil; setCfg(s, "app1", "lo1|10.0.0.1") },
			want:   []string{"adopt jail app1"},
		},
		{
			name:    "an unowned jail that does not match is a conflict, and nothing is done to it",
			mutate:  func(d *state.Machine, s *Snapshot) { s.Manifest.Jails = nil; setCfg(s, "app1", "lo1|10.9.9.9") },
			wantErr: "arbo does not own it",
			notWant: []string{"adopt jail app1", "restart jail app1"},
		},
		{
			name: "a symlink inside a jail root is refused",
			mutate: func(d *state.Machine, s *Snapshot) {
				s.Files["/usr/jails/app1/etc/resolv.conf"] = FileState{Exists: true, Symlink: true, Digest: "y"}
			},
			wantErr: "symlink",
		},
		{
			name: "missing lo1 and a missing route are brought live",
			mutate: func(d *state.Machine, s *Snapshot) {
				delete(s.Interfaces, "lo1")
				s.Routes = map[string]string{}
			},
			want: []string{"cloneup net lo1", "route net 10.0.1.1/32"},
		},
		{
			name:   "a route via another gateway is changed",
			mutate: func(d *state.Machine, s *Snapshot) { s.Routes["10.0.1.1"] = "192.168.9.9" },
			want:   []string{"route net 10.0.1.1/32"},
		},
		{
			name: "a data jail removed from the topology is archived, not destroyed",
			mutate: func(d *state.Machine, s *Snapshot) {
				s.Manifest.Jails = append(s.Manifest.Jails, ManifestJail{Name: "db1", Data: true})
			},
			want:    []string{"archive jail db1"},
			notWant: []string{"destroy jail db1"},
		},
		{
			name: "with --allow-destroy it is archived, then destroyed",
			opts: Options{AllowDestroy: true},
			mutate: func(d *state.Machine, s *Snapshot) {
				s.Manifest.Jails = append(s.Manifest.Jails, ManifestJail{Name: "db1", Data: true})
			},
			want: []string{"archive jail db1", "destroy jail db1"},
		},
		{
			name: "a retired data jail is not archived again",
			mutate: func(d *state.Machine, s *Snapshot) {
				s.Manifest.Jails = append(s.Manifest.Jails, ManifestJail{Name: "db1", Data: true, Retired: true})
			},
			empty: true,
		},
		{
			name: "an app jail removed is archived and destroyed",
			mutate: func(d *state.Machine, s *Snapshot) {
				s.Manifest.Jails = append(s.Manifest.Jails, ManifestJail{Name: "old", Tier: "app"})
			},
			want: []string{"archive jail old", "destroy jail old"},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			d := desired()
			s := converged(d)
			if tt.mutate != nil {
				tt.mutate(d, s)
			}
			mp := Diff(d, s, tt.opts)
			if tt.empty && len(mp.Actions) != 0 {
				t.Fatalf("want no actions, got %v", ops(mp))
			}
			for _, w := range tt.want {
				if !has(mp, w) {
					t.Errorf("missing %q in %v", w, ops(mp))
				}
			}
			for _, w := range tt.notWant {
				if has(mp, w) {
					t.Errorf("unexpected %q in %v", w, ops(mp))
				}
			}
			if tt.wantErr == "" && mp.Error != "" {
				t.Errorf("unexpected error %q", mp.Error)
			}
			if tt.wantErr != "" && !strings.Contains(mp.Error, tt.wantErr) {
				t.Errorf("error %q does not say %q", mp.Error, tt.wantErr)
			}
		})
	}
}

func setCfg(s *Snapshot, name, ip string) {
	c := []byte("export jail_" + name + "_hostname=\"" + name + "\"\nexport jail_" + name + "_ip=\"" + ip + "\"\n")
	s.Files["/usr/local/etc/ezjail/"+name] = FileState{Exists: true, Digest: digestOf(c), Content: c, Mode: 0o644}
}

func TestDiffTakeOverAndDiffs(t *testing.T) {
	d := desired()
	s := converged(d)
	s.Manifest.Files = nil // a machine arbo has never written to
	s.Files["/etc/rc.conf.local"] = FileState{Exists: true, Digest: "z", Content: []byte("hand made\n"), Mode: 0o644}
	s.Files["/usr/jails/app1/root/.erlang.cookie"] = FileState{Exists: true, Digest: "old", Mode: 0o400}
	mp := Diff(d, s, Options{})
	var rc, ck *Action
	for i := range mp.Actions {
		switch mp.Actions[i].Target {
		case "/etc/rc.conf.local":
			rc = &mp.Actions[i]
		case "/usr/jails/app1/root/.erlang.cookie":
			ck = &mp.Actions[i]
		}
	}
	if rc == nil || !rc.TakeOver || !strings.Contains(rc.Diff, "-hand made") || !strings.Contains(rc.Diff, "+cloned_interfaces") {
		t.Fatalf("taking over rc.conf.local: %+v", rc)
	}
	if ck == nil || !ck.Sensitive || ck.Diff != "" {
		t.Fatalf("a sensitive file must change without a diff: %+v", ck)
	}
}

func TestPlanFileNeverHoldsSecrets(t *testing.T) {
	d := desired()
	s := Fresh(d, nil)
	s.HasEzjail, s.HasBasejail = true, true
	p := &Plan{FormatVersion: 1, Kind: PlanKind, Machines: []MachinePlan{Diff(d, s, Options{})}}
	b, err := p.Encode()
	if err != nil {
		t.Fatal(err)
	}
	if strings.Contains(string(b), cookie) {
		t.Fatal("the plan file holds the cookie")
	}
	// Nor its digest, from which a weak cookie could be guessed offline.
	if strings.Contains(string(b), digestOf([]byte(cookie))) {
		t.Fatal("the plan file holds the cookie's sha256")
	}
	// Also when the machine already has a (different) cookie: no before digest.
	s2 := converged(d)
	s2.Files["/usr/jails/app1/root/.erlang.cookie"] = FileState{Exists: true, Sensitive: true, Digest: digestOf([]byte("OLDCOOKIE")), Mode: 0o400}
	p2 := &Plan{FormatVersion: 1, Kind: PlanKind, Machines: []MachinePlan{Diff(d, s2, Options{})}}
	b2, _ := p2.Encode()
	if !strings.Contains(string(b2), ".erlang.cookie") || strings.Contains(string(b2), digestOf([]byte("OLDCOOKIE"))) || strings.Contains(string(b2), digestOf([]byte(cookie))) {
		t.Fatal("a saved plan names a sensitive file's digest (before or after)")
	}
	if !IsPlan(b) || IsPlan([]byte("version: 1\n")) || IsPlan([]byte(`{"kind":"other"}`)) {
		t.Fatal("IsPlan does not recognise plans by content")
	}
	q, err := Decode(b)
	if err != nil || len(q.Machines) != 1 || len(q.Machines[0].Actions) != len(p.Machines[0].Actions) {
		t.Fatalf("round trip: %v", err)
	}
	if _, err := Decode([]byte(`{"kind":"arbo-plan","format_version":9}`)); err == nil {
		t.Fatal("a plan of an unknown format version was accepted")
	}
}

func TestCounts(t *testing.T) {
	p := &Plan{Machines: []MachinePlan{{Actions: []Action{{Op: OpCreate}, {Op: OpCreate}, {Op: OpUpdate}, {Op: OpArchive}, {Op: OpDestroy}, {Op: OpStart}}}}}
	if c := p.Count(); c != (Counts{Add: 2, Change: 1, Destroy: 2, Other: 1}) {
		t.Fatalf("counts %+v", c)
	}
}

func TestLock(t *testing.T) {
	ctx := context.Background()
	m := newMem()
	m.run = func(argv []string, stdin string) remote.Result {
		if argv[0] == "mkdir" {
			m.mu.Lock()
			defer m.mu.Unlock()
			if m.dirs[argv[1]] {
				return remote.Result{Exit: 1, Stderr: []byte("mkdir: File exists")}
			}
			m.dirs[argv[1]] = true
		}
		return remote.Result{}
	}
	now := time.Unix(1_800_000_000, 0)
	if err := Lock(ctx, m, "h1", "alice@ci pid 1", now, time.Hour); err != nil {
		t.Fatal(err)
	}
	err := Lock(ctx, m, "h1", "bob@ci pid 2", now.Add(time.Minute), time.Hour)
	var lh *LockHeldError
	if !errors.As(err, &lh) || !strings.Contains(lh.Owner, "alice@ci pid 1") {
		t.Fatalf("second lock: %v", err)
	}
	// A lock older than the stale limit belongs to a dead run: taken over.
	if err := Lock(ctx, m, "h1", "bob@ci pid 2", now.Add(2*time.Hour), time.Hour); err != nil {
		t.Fatalf("stale lock not taken over: %v", err)
	}
	if b := m.files[LockPath+"/owner"].content; !strings.HasPrefix(string(b), "bob@ci") {
		t.Fatalf("owner file: %q", b)
	}
	if err := Unlock(ctx, m); err != nil || m.dirs[LockPath] {
		t.Fatalf("unlock: %v", err)
	}

	// Disk full: the owner write fails after mkdir succeeded. The lock
	// directory must not be left behind, or every later run exits 4.
	m.writeErr = func(p string) error {
		if strings.HasPrefix(p, LockPath+"/") {
			return errors.New("no space left on device")
		}
		return nil
	}
	err = Lock(ctx, m, "h1", "carol@ci pid 3", now, time.Hour)
	if err == nil || errors.As(err, &lh) || !strings.Contains(err.Error(), "no space left") {
		t.Fatalf("failed owner write: %v", err)
	}
	if m.dirs[LockPath] {
		t.Fatal("a failed owner write left the lock directory behind")
	}
	m.writeErr = nil

	// An owner-less lock (or one whose owner file is half-written) is dated
	// by the directory's mtime: held while young, reported with its age,
	// taken over once stale.
	for _, owner := range []*string{nil, ptr("dave@ci pid 4\n17")} {
		m.dirs[LockPath] = true
		delete(m.files, LockPath+"/owner")
		if owner != nil {
			m.files[LockPath+"/owner"] = memFile{content: []byte(*owner)}
		}
		m.mtimes = map[string]time.Time{LockPath: now}
		err = Lock(ctx, m, "h1", "erin@ci pid 5", now.Add(10*time.Minute), time.Hour)
		if !errors.As(err, &lh) || !strings.Contains(lh.Owner, "(10m0s ago)") {
			t.Fatalf("young owner-less lock: %v", err)
		}
		if err := Lock(ctx, m, "h1", "erin@ci pid 5", now.Add(2*time.Hour), time.Hour); err != nil {
			t.Fatalf("stale owner-less lock not taken over: %v", err)
		}
		if b := m.files[LockPath+"/owner"].content; !strings.HasPrefix(string(b), "erin@ci") {
			t.Fatalf("owner file after takeover: %q", b)
		}
		if err := Unlock(ctx, m); err != nil {
			t.Fatal(err)
		}
	}
}

func ptr[T any](v T) *T { return &v }

func TestStaleness(t *testing.T) {
	p := &Plan{Machines: []MachinePlan{{Name: "h1", Reads: map[string]string{"/etc/a": "1", "/etc/b": ""}, Actions: []Action{{Op: OpUpdate, Kind: KindFile, Target: "/etc/a", After: "2"}}}}}
	same := map[string]MachinePlan{"h1": p.Machines[0]}
	if r := staleness(p, same); len(r) != 0 {
		t.Fatalf("unchanged machine reported stale: %v", r)
	}
	changed := map[string]MachinePlan{"h1": {Name: "h1", Reads: map[string]string{"/etc/a": "9", "/etc/b": ""}, Actions: p.Machines[0].Actions}}
	if r := staleness(p, changed); len(r) != 1 || !strings.Contains(r[0], "/etc/a changed") {
		t.Fatalf("a changed file was not reported: %v", r)
	}
}

func TestLockWait(t *testing.T) {
	ctx := context.Background()
	m := newMem()
	tries := 0
	m.run = func(argv []string, stdin string) remote.Result {
		if argv[0] == "mkdir" {
			tries++
			if tries < 3 { // held by another run for the first two tries
				return remote.Result{Exit: 1}
			}
		}
		return remote.Result{}
	}
	m.files[LockPath+"/owner"] = memFile{content: []byte("other pid 1\n" + "9999999999\n")}
	if err := LockWait(ctx, m, "h1", "me", time.Now, time.Hour, 0); err == nil {
		t.Fatal("without --lock-timeout a held lock must fail at once")
	}
	tries = 0
	if err := LockWait(ctx, m, "h1", "me", time.Now, time.Hour, 5*time.Second); err != nil {
		t.Fatalf("with a timeout the lock should be taken once released: %v", err)
	}
	if tries != 3 {
		t.Fatalf("tries = %d, want 3", tries)
	}
}

// TestRoutesScript runs the constant routes script through a real sh with a
// stand-in route(8): every line is added, an existing route is changed, and
// a route that can be neither fails the script naming it.
func TestRoutesScript(t *testing.T) {
	dir := t.TempDir()
	log := filepath.Join(dir, "log")
	fake := "#!/bin/sh\necho \"$*\" >> " + log + "\n" +
		"case \"$*\" in\n" +
		"  '-q add -inet -host 10.0.0.2 192.168.2.2') exit 1 ;;\n" + // exists already
		"  *10.0.0.9*) exit 1 ;;\n" + // neither works
		"esac\n"
	if err := os.WriteFile(filepath.Join(dir, "route"), []byte(fake), 0o755); err != nil {
		t.Fatal(err)
	}
	run := func(stdin string) (string, error) {
		cmd := exec.Command("/bin/sh", "-c", routesScript)
		cmd.Env = append(os.Environ(), "PATH="+dir+":"+os.Getenv("PATH"))
		cmd.Stdin = strings.NewReader(stdin)
		out, err := cmd.CombinedOutput()
		return string(out), err
	}
	if out, err := run("-inet -host 10.0.0.1 192.168.2.2\n-inet -host 10.0.0.2 192.168.2.2\n-inet6 -host fd00::1 fd00::2\n"); err != nil {
		t.Fatalf("script failed: %v %s", err, out)
	}
	got, _ := os.ReadFile(log)
	want := "-q add -inet -host 10.0.0.1 192.168.2.2\n" +
		"-q add -inet -host 10.0.0.2 192.168.2.2\n" +
		"-q change -inet -host 10.0.0.2 192.168.2.2\n" +
		"-q add -inet6 -host fd00::1 fd00::2\n"
	if string(got) != want {
		t.Fatalf("route calls:\n%s\nwant:\n%s", got, want)
	}
	out, err := run("-inet -host 10.0.0.9 192.168.2.2\n")
	if err == nil || !strings.Contains(out, "route to 10.0.0.9 via 192.168.2.2") {
		t.Fatalf("a failing route must fail the script, naming it: %v %q", err, out)
	}
}

// The constant scripts arbo runs must pass remote's quoting, which refuses
// what csh cannot take (a newline, a "!").
func TestScriptsQuote(t *testing.T) {
	for _, s := range []string{routesScript, unroutesScript, factsScript} {
		if _, err := remote.Quote([]string{"/bin/sh", "-c", s}); err != nil {
			t.Errorf("%v", err)
		}
	}
}

// TestGuardScripts runs both commit-confirmed guard scripts through a real
// sh, with stand-ins for pfctl, logger, cp and daemon (which records the
// waiter instead of starting it; the test runs it by hand): generations
// (issue 11, item 2). A guard acts only while the state file names it
// armed: a newer run's guard takes over and inherits what to restore; a
// confirmed or taken-over guard stands down; an unconfirmed one that
// nobody took over still rolls back; a run waits instead of taking over a
// guard about to act; a confirmation too close to the deadline, or after a
// takeover, is refused.
func TestGuardScripts(t *testing.T) {
	dir := t.TempDir()
	log := filepath.Join(dir, "log")
	for _, name := range []string{"pfctl", "logger", "cp", "daemon"} {
		stub := "#!/bin/sh\necho \"" + name + " $*\" >> " + log + "\n"
		if err := os.WriteFile(filepath.Join(dir, name), []byte(stub), 0o755); err != nil {
			t.Fatal(err)
		}
	}
	scripts := map[string]string{"pf": filepath.Join(dir, "pf-guard.sh"), "config": filepath.Join(dir, "config-guard.sh")}
	for k, s := range map[string]string{"pf": pfGuardScript, "config": configGuardScript} {
		if err := os.WriteFile(scripts[k], []byte(s), 0o700); err != nil {
			t.Fatal(err)
		}
	}
	state := filepath.Join(dir, "state")
	// run runs the guard and returns its exit code, stdout and what the
	// stand-ins logged.
	run := func(kind string, args ...string) (int, string, string) {
		t.Helper()
		os.Remove(log)
		cmd := exec.Command("/bin/sh", append([]string{scripts[kind]}, args...)...)
		cmd.Env = append(os.Environ(), "PATH="+dir+":"+os.Getenv("PATH"))
		out, err := cmd.Output()
		code := 0
		if ee, ok := err.(*exec.ExitError); ok {
			code = ee.ExitCode()
		} else if err != nil {
			t.Fatal(err)
		}
		b, _ := os.ReadFile(log)
		return code, strings.TrimSpace(string(out)), string(b)
	}
	arm := func(kind, tok, secs, arg string) (int, string) {
		t.Helper()
		code, out, logged := run(kind, "arm", state, tok, secs, arg, filepath.Join(dir, tok+".pid"))
		if code == 0 && !strings.Contains(logged, "daemon -f -p "+filepath.Join(dir, tok+".pid")+" /bin/sh "+scripts[kind]+" wait "+state+" "+tok+" "+secs) {
			t.Errorf("arm %s did not start its waiter: %q", tok, logged)
		}
		return code, out
	}
	fields := func() []string {
		b, _ := os.ReadFile(state)
		return strings.Fields(string(b))
	}
	type step struct {
		what     string
		args     []string // kind, verb, token[, secs[, arg]]
		code     int
		out      string // stdout has this
		logged   string // the stand-ins logged this ("" = nothing)
		stateTok string // then the state file names this token…
		state    string // …in this state
	}
	tests := []struct {
		name  string
		steps []step
	}{
		{"unconfirmed rolls back", []step{
			{what: "arm", args: []string{"pf", "arm", "t1", "0", "disabled"}, out: "armed disabled", stateTok: "t1", state: "armed"},
			{what: "wait", args: []string{"pf", "wait", "t1", "0"}, logged: "pfctl -d", stateTok: "t1", state: "rolledback"},
		}},
		{"confirmed stands down", []step{
			{what: "arm", args: []string{"pf", "arm", "t1", "100", "disabled"}, out: "armed disabled", stateTok: "t1", state: "armed"},
			{what: "confirm", args: []string{"pf", "confirm", "t1"}, stateTok: "t1", state: "confirmed"},
			{what: "wait", args: []string{"pf", "wait", "t1", "0"}, stateTok: "t1", state: "confirmed"},
		}},
		{"a newer run takes over a stale guard and inherits what it restores", []step{
			{what: "arm", args: []string{"pf", "arm", "old", "100", "disabled"}, out: "armed disabled", stateTok: "old", state: "armed"},
			// The killed run had enabled pf: the new run sees it enabled,
			// but must restore the state before the unconfirmed change.
			{what: "arm", args: []string{"pf", "arm", "new", "100", "enabled"}, out: "armed disabled", logged: "stands down", stateTok: "new", state: "armed"},
			{what: "wait", args: []string{"pf", "wait", "old", "0"}, stateTok: "new", state: "armed"},
			{what: "confirm", args: []string{"pf", "confirm", "old"}, code: 3, out: "armed by new", stateTok: "new", state: "armed"},
			{what: "confirm", args: []string{"pf", "confirm", "new"}, stateTok: "new", state: "confirmed"},
			{what: "wait", args: []string{"pf", "wait", "new", "0"}, stateTok: "new", state: "confirmed"},
		}},
		{"an old guard after a newer confirmed run does nothing", []step{
			{what: "arm", args: []string{"pf", "arm", "old", "100", "disabled"}, stateTok: "old", state: "armed", out: "armed"},
			{what: "arm", args: []string{"pf", "arm", "new", "100", "enabled"}, stateTok: "new", state: "armed", out: "armed disabled", logged: "stands down"},
			{what: "confirm", args: []string{"pf", "confirm", "new"}, stateTok: "new", state: "confirmed"},
			{what: "wait", args: []string{"pf", "wait", "old", "0"}, stateTok: "new", state: "confirmed"},
		}},
		{"a guard about to act is waited for, not taken over", []step{
			{what: "arm", args: []string{"pf", "arm", "old", "5", "disabled"}, stateTok: "old", state: "armed", out: "armed"},
			{what: "arm", args: []string{"pf", "arm", "new", "100", "enabled"}, code: 75, out: "wait ", stateTok: "old", state: "armed"},
			{what: "wait", args: []string{"pf", "wait", "old", "0"}, logged: "pfctl -d", stateTok: "old", state: "rolledback"},
			{what: "arm", args: []string{"pf", "arm", "new", "100", "enabled"}, out: "armed enabled", stateTok: "new", state: "armed"},
		}},
		{"a confirmation too close to the deadline is refused", []step{
			{what: "arm", args: []string{"pf", "arm", "t1", "1", "enabled"}, stateTok: "t1", state: "armed", out: "armed"},
			{what: "confirm", args: []string{"pf", "confirm", "t1"}, code: 4, out: "deadline", stateTok: "t1", state: "armed"},
		}},
		{"stand down (pfSense restored its backup)", []step{
			{what: "arm", args: []string{"config", "arm", "t1", "100", "/cf/conf/backup/config-1.xml"}, stateTok: "t1", state: "armed", out: "armed /cf/conf/backup/config-1.xml"},
			{what: "standdown", args: []string{"config", "standdown", "t1"}, stateTok: "t1", state: "stooddown"},
			{what: "wait", args: []string{"config", "wait", "t1", "0"}, stateTok: "t1", state: "stooddown"},
		}},
		{"the gateway's stale guard: the new one restores the old backup", []step{
			{what: "arm", args: []string{"config", "arm", "old", "100", "/cf/conf/backup/config-1.xml"}, stateTok: "old", state: "armed", out: "armed"},
			{what: "arm", args: []string{"config", "arm", "new", "100", "/cf/conf/backup/config-2.xml"}, out: "armed /cf/conf/backup/config-1.xml", logged: "stands down", stateTok: "new", state: "armed"},
			{what: "wait", args: []string{"config", "wait", "new", "0"}, logged: "cp /cf/conf/backup/config-1.xml /cf/conf/config.xml", stateTok: "new", state: "rolledback"},
		}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			os.Remove(state)
			for i, s := range tt.steps {
				var code int
				var out, logged string
				if s.what == "arm" {
					code, out = arm(s.args[0], s.args[2], s.args[3], s.args[4])
					b, _ := os.ReadFile(log)
					logged = string(b)
				} else {
					code, out, logged = run(s.args[0], append([]string{s.args[1], state}, s.args[2:]...)...)
				}
				if code != s.code || !strings.Contains(out, s.out) {
					t.Fatalf("step %d (%s %v): exit %d, stdout %q; want exit %d with %q", i, s.what, s.args[2:], code, out, s.code, s.out)
				}
				rolled := strings.Contains(logged, "pfctl") || strings.Contains(logged, "cp ")
				if s.logged == "" && rolled || s.logged != "" && !strings.Contains(logged, s.logged) {
					t.Fatalf("step %d (%s %v): logged %q, want %q", i, s.what, s.args[2:], logged, s.logged)
				}
				if f := fields(); len(f) != 4 || f[0] != s.stateTok || f[1] != s.state {
					t.Fatalf("step %d (%s %v): state %q, want %s %s", i, s.what, s.args[2:], f, s.stateTok, s.state)
				}
			}
		})
	}
}
