package emu

import (
	"os"
	"os/exec"
	"strings"
	"testing"
)

// TestHostStandIns checks the FreeBSD semantics the upstream scripts rely
// on, each against the manual page its stand-in cites.
func TestHostStandIns(t *testing.T) {
	l := newLab(t, "")
	dir := t.TempDir()
	t.Chdir(dir)
	os.WriteFile("in", []byte("a\nb\nc\n"), 0o644)
	if out := l.must("tail", "-r", "in"); out != "c\nb\na\n" {
		t.Errorf("tail -r = %q", out)
	}
	if out := l.must("tail", "-n", "2", "in"); out != "b\nc\n" {
		t.Errorf("tail -n 2 = %q", out)
	}
	// rc.d/jail:275 splits an address from its mask.
	if out := l.must("expr", "--", "10.0.0.5/24", ":", "10.0.0.5\\(.*\\)"); out != "/24\n" {
		t.Errorf("expr -- : = %q", out)
	}
	if code, out, _ := l.run("expr", "--", "10.0.0.5", ":", "10.0.0.5\\(.*\\)"); code != 1 || out != "\n" {
		t.Errorf("expr empty match: %d %q", code, out)
	}
	if out := l.must("expr", "3", "+", "4", "*", "2"); out != "11\n" {
		t.Errorf("expr arithmetic = %q", out)
	}
	// rcorder: REQUIRE first; otherwise the last file given comes first.
	os.WriteFile("a", []byte("# PROVIDE: a\n# REQUIRE: c\n"), 0o644)
	os.WriteFile("b", []byte("# PROVIDE: b\n"), 0o644)
	os.WriteFile("c", []byte("# PROVIDE: c\n"), 0o644)
	if out := l.must("rcorder", "a", "b", "c"); out != "c\nb\na\n" {
		t.Errorf("rcorder = %q", out)
	}
	os.WriteFile("c", []byte("# PROVIDE: c\n# REQUIRE: a\n"), 0o644)
	if code, _, errs := l.run("rcorder", "a", "c"); code != 1 || !strings.Contains(errs, "Circular dependency") {
		t.Errorf("rcorder cycle: %d %q", code, errs)
	}
	t.Setenv("TMPDIR", "/tmp")
	os.MkdirAll(l.path("/tmp"), 0o755)
	if out := l.must("mktemp", "-t", "jail"); !strings.HasPrefix(out, "/tmp/jail.") || len(out) != len("/tmp/jail.XXXXXXXX\n") || !exists(l.path(strings.TrimSpace(out))) {
		t.Errorf("mktemp -t jail = %q", out)
	}
	os.Symlink("/dev/md0", "link")
	if out := l.must("stat", "-f", "%Y", "link"); out != "/dev/md0\n" {
		t.Errorf("stat -f %%Y = %q", out)
	}
	if out := l.must("stat", "-f", "%z %OLp", "in"); out != "6 644\n" {
		t.Errorf("stat -f '%%z %%OLp' = %q", out)
	}
	l.fails(1, "chflags", "-R", "noschg", "nonexistent")
	l.fails(1, "chflags", "nosuchflag", "in")
	l.must("chflags", "-R", "noschg", "in")
	// An unknown jail parameter is refused, as jail(8) refuses it.
	l.write("/etc/j.conf", "web {\n\tpath = \"/j\";\n\tcolour = red;\n}\n")
	if errs := l.fails(1, "jail", "-f", "/etc/j.conf", "-c", "web"); !strings.Contains(errs, "unknown parameter: colour") {
		t.Errorf("jail -f unknown parameter: %q", errs)
	}
}

// TestXZStoreDecodes: the distribution sets are .xz files a real decoder
// reads.
func TestXZStoreDecodes(t *testing.T) {
	if _, err := exec.LookPath("busybox"); err != nil {
		t.Skip("busybox: " + err.Error())
	}
	data := []byte(strings.Repeat("FreeBSD distribution set\n", 5000))
	c := exec.Command("busybox", "xzcat")
	c.Stdin = strings.NewReader(string(xzStore(data)))
	out, err := c.Output()
	if err != nil || string(out) != string(data) {
		t.Errorf("xzcat: err %v, %d bytes back of %d", err, len(out), len(data))
	}
}
