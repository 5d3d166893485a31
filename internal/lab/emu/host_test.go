package emu

import (
	"os"
	"strings"
	"testing"
)

// freshHost is a host as FreeBSD boots it before rc.d/pf: no pf.ko, so no
// /dev/pf.
func freshHost(t *testing.T) *lab {
	l := newLab(t, "")
	if err := os.Remove(l.path(PFDevice)); err != nil {
		t.Fatal(err)
	}
	l.write(KLDFile, "")
	return l
}

// pfctl without -n needs /dev/pf (pfctl.c main: err(1, "%s", pf_device));
// with -n it parses without it. kldload pf makes it.
func TestPfctlNeedsPFModule(t *testing.T) {
	l := freshHost(t)
	l.write("/etc/pf.conf", "pass all\n")
	if e := l.fails(1, "pfctl", "-f", "/etc/pf.conf"); !strings.Contains(e, "pfctl: /dev/pf: No such file or directory") {
		t.Errorf("stderr %q", e)
	}
	l.fails(1, "pfctl", "-e")
	l.must("pfctl", "-n", "-f", "/etc/pf.conf")
	l.fails(1, "kldstat", "-q", "-m", "pf")
	l.must("kldload", "pf")
	l.must("kldstat", "-q", "-m", "pf")
	l.must("pfctl", "-f", "/etc/pf.conf")
	if e := l.fails(1, "kldload", "pf"); !strings.Contains(e, "module already loaded") {
		t.Errorf("second kldload pf: %q", e)
	}
	l.must("kldload", "-n", "pf", "pflog")
	l.fails(1, "kldload", "nosuchmodule")
	l.must("kldunload", "pf")
	l.fails(1, "pfctl", "-s", "rules")
}

func TestSysctl(t *testing.T) {
	l := newLab(t, "")
	if out := l.must("sysctl", "-n", "security.jail.jailed"); out != "0\n" {
		t.Errorf("host jailed = %q", out)
	}
	t.Setenv(JailEnv, "ns")
	if out := l.must("sysctl", "-n", "security.jail.jailed"); out != "1\n" {
		t.Errorf("jail jailed = %q", out)
	}
	if e := l.fails(1, "sysctl", "-n", "vfs.nosuch"); !strings.Contains(e, "unknown oid 'vfs.nosuch'") {
		t.Errorf("unknown oid: %q", e)
	}
}

// env -i -L -/daemon VAR=x prog (service.sh's exec line): -L takes an
// argument, -i empties the environment, the utility runs with VAR.
func TestEnvFreeBSD(t *testing.T) {
	l := newLab(t, "")
	t.Setenv("KEEP_OUT", "1")
	code, out, errs := l.run("env", "-i", "-L", "-/daemon", "HOME=/", "PATH=/usr/bin:/bin", "sh", "-c", `echo "$HOME ${KEEP_OUT:-unset}"`)
	if code != 0 || out != "/ unset\n" {
		t.Errorf("env: exit %d, out %q, err %q", code, out, errs)
	}
	if code, _, _ := l.run("env", "-i", "PATH=/nonexistent", "nosuchprogram"); code != 127 {
		t.Errorf("missing utility: exit %d, want 127", code)
	}
}

// TestSessionCommandWords: the login shell logs a session's upstream
// program with the words arbo's remote.Quote wrote, and nothing for a
// compound command line.
func TestSessionCommandWords(t *testing.T) {
	for _, tt := range []struct {
		line string
		want []string
	}{
		{"ezjail-admin create -f erlang db1 'lo1|10.0.0.1'", []string{"ezjail-admin", "create", "-f", "erlang", "db1", "lo1|10.0.0.1"}},
		{`service -j ns1 unbound 'it'\''s'`, []string{"service", "-j", "ns1", "unbound", "it's"}},
		{"ezjail-admin onestart a; jls", nil},
		{"ezjail-admin start $x", nil},
	} {
		got, ok := simpleCommand(tt.line)
		if ok != (tt.want != nil) || strings.Join(got, "\x00") != strings.Join(tt.want, "\x00") {
			t.Errorf("simpleCommand(%q) = %q, %v; want %q", tt.line, got, ok, tt.want)
		}
	}
	if !upstreamProgram("/usr/local/bin/ezjail-admin") || !upstreamProgram("/etc/rc.d/pf") || upstreamProgram("jls") {
		t.Error("upstreamProgram")
	}
}
