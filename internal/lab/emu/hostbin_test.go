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

// TestPaxEzjailArchive runs pax with ezjail-admin's own arguments: archive
// (ezjail-admin:1446), find the properties (1481), extract them (1506) and
// the tree (741).
func TestPaxEzjailArchive(t *testing.T) {
	l := newLab(t, "")
	l.write("/usr/jails/web/etc/rc.conf", "x=1\n")
	l.write("/usr/local/etc/ezjail/web", "export jail_web_hostname=\"web\"\n")
	l.write("/etc/fstab.web", "/usr/jails/basejail /usr/jails/web/basejail nullfs ro 0 0\n")
	os.Symlink("/basejail/bin", l.path("/usr/jails/web/bin"))
	t.Chdir(l.path("/usr/jails/web"))
	tag := "web-202601010000.00-box-14.2_RELEASE-amd64"
	l.must("pax", "-wzXt", "-x", "cpio", "-f", "/a.tar.gz",
		`-s:^[^\.].*/web$:prop.ezjail-`+tag+`:`, `-s:^[^\.].*/web.norun$:prop.ezjail-`+tag+`.norun:`,
		`-s:etc/fstab.web$:fstab.ezjail:`, `-s:^\.:ezjail:`,
		"/usr/local/etc/ezjail/web", "/etc/fstab.web", ".")
	if out := l.must("pax", "-zn", "-f", "/a.tar.gz", "prop.ezjail-*"); out != "prop.ezjail-"+tag+"\n" {
		t.Errorf("pax -zn prop.ezjail-* = %q", out)
	}
	list := l.must("pax", "-z", "-f", "/a.tar.gz")
	for _, want := range []string{"/fstab.ezjail\n", "ezjail\n", "ezjail/etc/rc.conf\n", "ezjail/bin\n"} {
		if !strings.Contains(list, want) {
			t.Errorf("archive lacks %q:\n%s", want, list)
		}
	}
	os.MkdirAll(l.path("/restore"), 0o755)
	t.Chdir(l.path("/restore"))
	l.must("pax", "-rzn", "-s:prop.ezjail-"+tag+":/tmp/prop:", "-f", "/a.tar.gz", "prop.ezjail-"+tag)
	if got := l.read("/tmp/prop"); !strings.Contains(got, "jail_web_hostname") {
		t.Errorf("extracted properties: %q", got)
	}
	l.must("pax", "-rz", "-pe", "-f", "/a.tar.gz", "-s:^ezjail:.:", "ezjail/*")
	if got := l.read("/restore/etc/rc.conf"); got != "x=1\n" {
		t.Errorf("restored tree: %q", got)
	}
	if l, err := os.Readlink(l.path("/restore/bin")); err != nil || l != "/basejail/bin" {
		t.Errorf("restored symlink: %q %v", l, err)
	}
	l.fails(1, "pax", "-zn", "-f", "/a.tar.gz", "nothing-*")
}
