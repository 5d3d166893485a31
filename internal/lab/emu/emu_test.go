package emu

import (
	"bytes"
	sharedfix "github.com/arbo-project/arbo/internal/golden"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// update is golden's -update flag (one per test binary).
var update = sharedfix.Update

// lab is a machine root in a temp dir.
type lab struct {
	t    *testing.T
	root string
}

func newLab(t *testing.T, machine string) *lab {
	t.Helper()
	root := t.TempDir()
	t.Setenv(RootEnv, root)
	t.Setenv(LogRootEnv, "")
	t.Setenv(JailEnv, "")
	l := &lab{t: t, root: root}
	if machine == "" {
		machine = "name=host1\nkind=host\nrelease=14.2-RELEASE\niface=em0 192.168.1.11/24\n"
	}
	l.write(MachineFile, machine)
	// The lab's default machine has pf.ko loaded (machine.go); hostReal
	// in host_test.go starts without it, as a fresh FreeBSD host does.
	l.write(PFDevice, "")
	l.write(KLDFile, "pf\npflog\n")
	return l
}

func (l *lab) path(p string) string { return Path(l.root, p) }

func (l *lab) write(p, content string) {
	l.t.Helper()
	if err := os.MkdirAll(filepath.Dir(l.path(p)), 0o755); err != nil {
		l.t.Fatal(err)
	}
	if err := os.WriteFile(l.path(p), []byte(content), 0o644); err != nil {
		l.t.Fatal(err)
	}
}

func (l *lab) read(p string) string {
	l.t.Helper()
	b, err := os.ReadFile(l.path(p))
	if err != nil {
		l.t.Fatalf("read %s: %v", p, err)
	}
	return string(b)
}

// run calls Main with args and returns exit code, stdout and stderr.
func (l *lab) run(args ...string) (int, string, string) {
	return l.runIn("", args...)
}

func (l *lab) runIn(stdin string, args ...string) (int, string, string) {
	var out, errb bytes.Buffer
	code := Main(args, strings.NewReader(stdin), &out, &errb)
	return code, out.String(), errb.String()
}

// must runs a command that must succeed.
func (l *lab) must(args ...string) string {
	l.t.Helper()
	code, out, errs := l.run(args...)
	if code != 0 {
		l.t.Fatalf("%v: exit %d\nstdout: %s\nstderr: %s", args, code, out, errs)
	}
	return out
}

// fails runs a command that must exit with want and returns its stderr.
func (l *lab) fails(want int, args ...string) string {
	l.t.Helper()
	code, out, errs := l.run(args...)
	if code != want {
		l.t.Fatalf("%v: exit %d, want %d\nstdout: %s\nstderr: %s", args, code, want, out, errs)
	}
	return errs
}

func golden(t *testing.T, name, got string) {
	t.Helper()
	path := filepath.Join("testdata", name)
	if *update {
		if err := os.WriteFile(path, []byte(got), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	want, err := os.ReadFile(path)
	if err != nil {
		t.Fatalf("golden %s: %v (run with -update)", name, err)
	}
	if got != string(want) {
		t.Errorf("%s differs:\n--- got\n%s\n--- want\n%s", name, got, want)
	}
}

func TestPathMapping(t *testing.T) {
	tests := []struct{ root, p, want string }{
		{"", "/etc/rc.conf", "/etc/rc.conf"},
		{"/", "/etc/rc.conf", "/etc/rc.conf"},
		{"/tmp/m", "/etc/rc.conf", "/tmp/m/etc/rc.conf"},
		{"/tmp/m/", "/usr/jails/a", "/tmp/m/usr/jails/a"},
	}
	for _, tt := range tests {
		if got := Path(tt.root, tt.p); got != tt.want {
			t.Errorf("Path(%q, %q) = %q, want %q", tt.root, tt.p, got, tt.want)
		}
	}
}

func TestDispatchThroughLabEmuName(t *testing.T) {
	l := newLab(t, "")
	if out := l.must("lab-emu", "uname"); out != "FreeBSD\n" {
		t.Errorf("lab-emu uname = %q", out)
	}
	if out := l.must("/usr/bin/uname", "-r"); out != "14.2-RELEASE\n" {
		t.Errorf("uname -r = %q", out)
	}
	l.fails(127, "lab-emu", "no-such-command")
}

func TestEveryLinkIsEmulated(t *testing.T) {
	for _, m := range []map[string][]string{Links, GatewayLinks, HostLinks} {
		for name, paths := range m {
			if _, ok := lookup(name); !ok {
				t.Errorf("%s is linked but not emulated", name)
			}
			for _, p := range paths {
				if filepath.Base(p) != name || !filepath.IsAbs(p) {
					t.Errorf("%s: bad link path %s", name, p)
				}
			}
		}
	}
}

func TestFaultSwitch(t *testing.T) {
	l := newLab(t, "")
	l.write(FailDir+"/pfctl", "pfctl: DIOCADDRULE: Device busy")
	errs := l.fails(1, "pfctl", "-sr")
	if errs != "pfctl: DIOCADDRULE: Device busy\n" {
		t.Errorf("stderr = %q", errs)
	}
	l.must("uname") // other commands unaffected
	calls, err := ReadCalls(l.root)
	if err != nil {
		t.Fatal(err)
	}
	if len(calls) != 2 || calls[0].Exit != 1 || calls[0].Argv[0] != "pfctl" || calls[1].Exit != 0 {
		t.Errorf("calls = %+v", calls)
	}
}

func TestCallsLog(t *testing.T) {
	l := newLab(t, "")
	l.must("sysrc", "-f", "/etc/rc.conf.local", "a=b")
	l.fails(1, "sysrc", "-c", "a=c")
	calls, err := ReadCalls(l.root)
	if err != nil {
		t.Fatal(err)
	}
	want := []Call{{Argv: []string{"sysrc", "-f", "/etc/rc.conf.local", "a=b"}, Exit: 0}, {Argv: []string{"sysrc", "-c", "a=c"}, Exit: 1}}
	if len(calls) != 2 || strings.Join(calls[0].Argv, " ") != strings.Join(want[0].Argv, " ") || calls[1].Exit != 1 {
		t.Errorf("calls = %+v, want %+v", calls, want)
	}
	raw := l.read(CallsLog)
	if !strings.HasPrefix(raw, `{"argv":["sysrc","-f","/etc/rc.conf.local","a=b"],"jail":"","exit":0}`+"\n") {
		t.Errorf("log format: %q", raw)
	}
}
