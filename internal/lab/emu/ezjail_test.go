package emu

import (
	"os"
	"strings"
	"testing"
)

func TestSafeName(t *testing.T) {
	tests := []struct{ in, safe, host string }{
		{"www.example.com", "www_example_com", "www.example.com"},
		{"app-1", "app_1", "app-1"},
		{"a b+c", "a_b_c", "a b+c"},
		{"é", "__", "é"},
		{"x/y~z", "x_y_z", "x_y_z"},
	}
	for _, tt := range tests {
		if got := safeName(tt.in); got != tt.safe {
			t.Errorf("safeName(%q) = %q, want %q", tt.in, got, tt.safe)
		}
		if got := ezHostname(tt.in); got != tt.host {
			t.Errorf("ezHostname(%q) = %q, want %q", tt.in, got, tt.host)
		}
	}
}

func TestEzjailCreate(t *testing.T) {
	l := newLab(t, "")
	// No basejail yet: create refuses (freebsd.md §1.1).
	if errs := l.fails(1, "ezjail-admin", "create", "web.example.com", "lo1|10.0.1.10"); !strings.Contains(errs, "basejail") {
		t.Errorf("stderr = %q", errs)
	}
	l.must("ezjail-admin", "install", "-r", "14.2-RELEASE")
	l.write("/usr/jails/flavours/arbo/etc/motd", "hello\n")
	l.must("ezjail-admin", "create", "-f", "arbo", "web.example.com", "lo1|10.0.1.10,vtnet0|2001:db8::10/64")
	if got := l.read("/usr/jails/web.example.com/etc/motd"); got != "hello\n" {
		t.Errorf("flavour not applied: %q", got)
	}
	if !isDir(l.path("/usr/jails/web.example.com/var/run")) {
		t.Error("newjail skeleton not copied")
	}
	// A jail has the base system's accounts: arbo resolves owners there.
	if got := l.read("/usr/jails/web.example.com/etc/passwd"); !strings.HasPrefix(got, "root:*:0:0:") {
		t.Errorf("jail /etc/passwd = %q, want root with uid 0 first", got)
	}
	if got := l.read("/usr/jails/web.example.com/etc/group"); !strings.HasPrefix(got, "wheel:*:0:") {
		t.Errorf("jail /etc/group = %q, want wheel with gid 0 first", got)
	}
	golden(t, "ezjail-config.golden", l.read("/usr/local/etc/ezjail/web_example_com"))
	if got := l.read("/etc/fstab.web_example_com"); got != "/usr/jails/basejail /usr/jails/web.example.com/basejail nullfs ro 0 0\n" {
		t.Errorf("fstab = %q", got)
	}

	tests := []struct {
		name string
		args []string
		want int
	}{
		{"second create of the same jail", []string{"create", "web.example.com", "lo1|10.0.1.11"}, 1},
		{"safename collision", []string{"create", "web-example.com", "lo1|10.0.1.12"}, 1},
		{"reserved name", []string{"create", "basejail", "lo1|10.0.1.13"}, 1},
		{"missing flavour", []string{"create", "-f", "nope", "other", "lo1|10.0.1.14"}, 1},
		{"wrong arg count", []string{"create", "onlyname"}, 1},
		{"config test unknown", []string{"config", "-r", "test", "nosuch"}, 1},
		{"config test known", []string{"config", "-r", "test", "web.example.com"}, 0},
		{"delete unknown", []string{"delete", "nosuch"}, 1},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			code, _, errs := l.run(append([]string{"ezjail-admin"}, tt.args...)...)
			if code != tt.want {
				t.Errorf("exit %d, want %d (%s)", code, tt.want, errs)
			}
		})
	}
	// A root dir left behind (delete without -w) blocks a new create.
	l.must("ezjail-admin", "delete", "web.example.com")
	if !isDir(l.path("/usr/jails/web.example.com")) {
		t.Fatal("delete without -w removed the root")
	}
	l.fails(1, "ezjail-admin", "create", "web.example.com", "lo1|10.0.1.10")
	l.must("ezjail-admin", "create", "-x", "web.example.com", "lo1|10.0.1.10")
	l.must("ezjail-admin", "delete", "-w", "web.example.com")
	if exists(l.path("/usr/jails/web.example.com")) || exists(l.path("/usr/local/etc/ezjail/web_example_com")) {
		t.Error("delete -w left files behind")
	}
}

func TestEzjailJaildirFromConf(t *testing.T) {
	l := newLab(t, "")
	l.write("/usr/local/etc/ezjail.conf", "ezjail_jaildir=/local/jails\nezjail_exec_stop=\"/bin/sh /etc/rc.shutdown jail\"\n")
	l.must("ezjail-admin", "install")
	l.must("ezjail-admin", "create", "db", "lo1|10.0.2.10")
	cfg := l.read("/usr/local/etc/ezjail/db")
	for _, want := range []string{`export jail_db_rootdir="/local/jails/db"`, `export jail_db_exec_stop="/bin/sh /etc/rc.shutdown jail"`} {
		if !strings.Contains(cfg, want) {
			t.Errorf("config lacks %s:\n%s", want, cfg)
		}
	}
}

// setupJail makes a host with a basejail and one lo1 jail.
func setupJail(t *testing.T) *lab {
	l := newLab(t, "")
	l.write("/etc/rc.conf", "ezjail_enable=\"YES\"\ncloned_interfaces=\"lo1\"\n")
	l.must("ezjail-admin", "install")
	l.must("ezjail-admin", "create", "web", "lo1|10.0.1.10")
	return l
}

func TestEzjailStartNeedsLo1(t *testing.T) {
	l := setupJail(t)
	// lo1 is not there at boot: jail(8) cannot add the alias (freebsd.md §1.6).
	errs := l.fails(1, "ezjail-admin", "start", "web")
	if !strings.Contains(errs, "Could not start") {
		t.Errorf("stderr = %q", errs)
	}
	if out := l.must("jls"); strings.Count(out, "\n") != 1 {
		t.Errorf("jls after failed start:\n%s", out)
	}
	l.fails(1, "ifconfig", "lo1")
	if out := l.must("service", "netif", "cloneup"); !strings.Contains(out, "lo1") {
		t.Errorf("cloneup output %q", out)
	}
	l.must("ezjail-admin", "start", "web")
	if out := l.must("ifconfig", "lo1"); !strings.Contains(out, "inet 10.0.1.10 netmask 0xffffffff") {
		t.Errorf("alias missing:\n%s", out)
	}
	if out := l.must("jls"); !strings.Contains(out, "     1  10.0.1.10       web                           /usr/jails/web\n") {
		t.Errorf("jls:\n%q", out)
	}
	if got := strings.TrimSpace(l.read("/var/run/jail_web.id")); got != "1" {
		t.Errorf("jail id file = %q", got)
	}
	// Running jails cannot be deleted or archived without -f.
	l.fails(1, "ezjail-admin", "delete", "web")
	l.fails(1, "ezjail-admin", "archive", "web")
	l.must("ezjail-admin", "stop", "web")
	if out := l.must("ifconfig", "lo1"); strings.Contains(out, "10.0.1.10") {
		t.Errorf("alias not removed on stop:\n%s", out)
	}
}

func TestEzjailStartNeedsEnable(t *testing.T) {
	l := newLab(t, "")
	l.write(InterfacesFile, "lo0 127.0.0.1/8\nlo1\n")
	l.must("ezjail-admin", "install")
	l.must("ezjail-admin", "create", "web", "lo1|10.0.1.10")
	// Plain start needs ezjail_enable=YES; onestart skips the check
	// (freebsd.md §1.1, rc.subr(8)).
	code, out, _ := l.run("ezjail-admin", "start", "web")
	if code != 1 || !strings.Contains(out, "Set ezjail_enable to YES") {
		t.Errorf("start without enable: exit %d, %q", code, out)
	}
	l.must("ezjail-admin", "onestart", "web")
	if l.findRunningName("web") == "" {
		t.Error("onestart did not start the jail")
	}
}

func (l *lab) findRunningName(name string) string {
	e := &env{root: l.root, logRoot: l.root}
	if r := e.findRunning(name); r != nil {
		return r.jid
	}
	return ""
}

func TestEzjailListAndConfig(t *testing.T) {
	l := setupJail(t)
	l.must("service", "netif", "cloneup")
	l.must("ezjail-admin", "create", "db.example.com", "lo1|10.0.2.10,lo1|10.0.2.11")
	l.must("ezjail-admin", "create", "-c", "zfs", "-z", "tank/jails", "cache", "")
	l.must("ezjail-admin", "start", "web")
	l.must("ezjail-admin", "config", "-r", "norun", "db.example.com")
	if out := l.must("ezjail-admin", "config", "-r", "test", "db.example.com"); out != "Jail db.example.com is not runnable.\n" {
		t.Errorf("test output %q", out)
	}
	golden(t, "ezjail-list.golden", l.must("ezjail-admin", "list"))
	l.must("ezjail-admin", "config", "-r", "run", "db.example.com")
	if !exists(l.path("/usr/local/etc/ezjail/db_example_com")) {
		t.Error("config -r run did not rename back")
	}
}

func TestEzjailArchiveRestore(t *testing.T) {
	l := setupJail(t)
	l.write("/usr/jails/web/etc/data", "keep me\n")
	l.must("ezjail-admin", "archive", "web")
	ents, _ := os.ReadDir(l.path("/usr/jails/ezjail_archives"))
	if len(ents) != 1 || !strings.HasPrefix(ents[0].Name(), "web-") || !strings.HasSuffix(ents[0].Name(), ".tar.gz") {
		t.Fatalf("archives: %v", ents)
	}
	l.fails(1, "ezjail-admin", "restore", "web") // the jail still exists
	l.must("ezjail-admin", "delete", "-w", "web")
	l.must("ezjail-admin", "restore", "web")
	if got := l.read("/usr/jails/web/etc/data"); got != "keep me\n" {
		t.Errorf("restored data = %q", got)
	}
	l.must("ezjail-admin", "config", "-r", "test", "web")
}

func TestEzjailConfigRewriteKeepsHeaders(t *testing.T) {
	l := setupJail(t)
	path := "/usr/local/etc/ezjail/web"
	cfg := strings.Replace(l.read(path), "# REQUIRE: \n", "# REQUIRE: db_db\n", 1) + "export jail_web_exec_prestart0=\"x\"\n"
	l.write(path, cfg)
	l.must("ezjail-admin", "config", "-c", "1", "web")
	got := l.read(path)
	if !strings.Contains(got, "# REQUIRE: db_db\n") || !strings.Contains(got, `export jail_web_cpuset="1"`) {
		t.Errorf("rewrite lost headers or the change:\n%s", got)
	}
	if strings.Contains(got, "exec_prestart0") {
		t.Error("rewrite kept an unknown variable; ezjail drops it")
	}
}
