//go:build linux

package e2e

import (
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"github.com/arbo-project/arbo/internal/lab"
	"github.com/arbo-project/arbo/internal/lab/emu"
)

// callIndex is the index of the first call whose argv starts with prefix
// (argv[0] by its base name), or -1. With the real code on, a command arbo
// runs that is an upstream script, not a stand-in (ezjail-admin), is logged
// by the login shell with its words as argv (a `sh -c LINE` entry counts
// LINE's words).
func callIndex(calls []emu.Call, prefix ...string) int {
	return callIndexAfter(calls, -1, prefix...)
}

// callIndexAfter is callIndex among the calls after index from. A script's
// own entry is logged when it ends, after the calls it made.
func callIndexAfter(calls []emu.Call, from int, prefix ...string) int {
	for i, c := range calls {
		if i <= from {
			continue
		}
		argv := c.Argv
		if len(argv) == 3 && (filepath.Base(argv[0]) == "bash" || filepath.Base(argv[0]) == "sh") && argv[1] == "-c" {
			// arbo's command line starts with `echo <marker>;` (remote.Run
			// frames the output after a login banner).
			line := argv[2]
			if strings.HasPrefix(line, "echo arbo-start-") {
				if _, rest, ok := strings.Cut(line, ";"); ok {
					line = rest
				}
			}
			argv = shellWords(line)
		}
		if len(argv) < len(prefix) {
			continue
		}
		argv = append([]string{filepath.Base(argv[0])}, argv[1:len(prefix)]...)
		if strings.Join(argv, " ") == strings.Join(prefix, " ") {
			return i
		}
	}
	return -1
}

// shellWords splits a command line as arbo quotes one (plain words and
// single-quoted ones).
func shellWords(line string) []string {
	var out []string
	var w strings.Builder
	in, any := false, false
	for _, r := range line {
		switch {
		case r == '\'':
			in, any = !in, true
		case r == ' ' && !in:
			if any {
				out = append(out, w.String())
			}
			w.Reset()
			any = false
		default:
			w.WriteRune(r)
			any = true
		}
	}
	if any {
		out = append(out, w.String())
	}
	return out
}

// TestRetiredJailComesBack (issue 10 item 7): a data jail removed from the
// topology is archived and kept with its config renamed <safename>.norun
// (ezjail-admin config -r norun). ezjail's rc script skips such a jail
// (ezjail.sh:59,66) and `ezjail-admin onestart` of it exits 0 without
// starting it (ezjail-admin:148). When the jail comes back into the
// topology, re-enabling it is an action of the plan, done before arbo
// writes its config and starts it, and the start is proven with jls. On
// ezjail's own code.
func TestRetiredJailComesBack(t *testing.T) {
	t.Parallel()
	top := exampleTopology(t)
	const db1 = "      - { name: db1,  tier: data, ip: 10.20.2.11 }\n"
	e := newEnv(t, top, append(realCode(t), lab.WithBasejail())...)
	e.applyOK()

	e.writeTopology(edit(t, top, db1, ""))
	e.applyOK()
	if !e.exists("server1", "/usr/local/etc/ezjail/db1.norun") || e.exists("server1", "/var/run/lab/jails/db1") {
		t.Fatal("db1 was not retired (want db1.norun, not running)")
	}
	e.converged()

	e.writeTopology(top)
	r := e.run("plan", "--detailed-exitcode", e.topo)
	e.want(r, 2, "enable jail db1", "retired", "ezjail-admin config -r run db1", "start jail db1")
	if strings.Contains(r.stdout, "create jail db1") {
		t.Errorf("the retired jail is planned to be created again:\n%s", r)
	}
	mark := len(e.calls("server1"))
	e.applyOK()
	calls := e.calls("server1")[mark:]
	run, start := callIndex(calls, "ezjail-admin", "config", "-r", "run", "db1"), callIndex(calls, "ezjail-admin", "onestart", "db1")
	if run < 0 || start < run {
		t.Errorf("config -r run db1 is call %d, onestart db1 call %d (want run first)", run, start)
	}
	if jls := callIndexAfter(calls, start, "jls", "-j", "db1", "jid"); jls < 0 {
		t.Errorf("the start of db1 (call %d) was not checked with jls -j db1 jid after it", start)
	}
	if e.exists("server1", "/usr/local/etc/ezjail/db1.norun") || !strings.Contains(e.read("server1", "/usr/local/etc/ezjail/db1"), `export jail_db1_hostname="db1.`) {
		t.Error("db1's config is not arbo's runnable one")
	}
	if !e.exists("server1", "/var/run/lab/jails/db1") {
		t.Error("db1 does not run")
	}
	e.converged()

	// Disabled by hand: the same planned enable, which says so.
	e.ssh("server1", "ezjail-admin onestop db1 && ezjail-admin config -r norun db1")
	r = e.run("plan", "--detailed-exitcode", e.topo)
	e.want(r, 2, "enable jail db1", "disabled by hand", "start jail db1")
	e.applyOK()
	if !e.exists("server1", "/var/run/lab/jails/db1") || e.exists("server1", "/usr/local/etc/ezjail/db1.norun") {
		t.Error("db1 disabled by hand was not enabled and started")
	}
	e.converged()
}

// realCode returns the lab options that run the upstream code (ezjail's
// own ezjail-admin and rc script, FreeBSD's rc.d/jail) on the hosts,
// skipping the test without the upstream folder (failing under CI=true).
func realCode(t *testing.T) []lab.Option {
	t.Helper()
	up, why := lab.FindUpstream(".")
	if up == "" {
		if os.Getenv("CI") == "true" {
			t.Fatal("upstream: " + why)
		}
		t.Skip("upstream: " + why)
	}
	return []lab.Option{lab.WithUpstream(up), lab.WithRealCode()}
}

// ssh runs a command on a machine of the lab as root.
func (e *env) ssh(machine, command string) string {
	e.t.Helper()
	out, err := exec.Command("ssh", "-F", e.lab.SSHConfig(), "-o", "BatchMode=yes", e.c.MachineSSH(machine).Address, command).CombinedOutput()
	if err != nil {
		e.t.Fatalf("%s: %s: %v\n%s", machine, command, err, out)
	}
	return strings.TrimSpace(string(out))
}

// TestSingleHostBootstrap applies the single-host example (ZFS, start_after)
// to a fresh host with --bootstrap, on ezjail's own code.
//
// Issue 10 item 5: arbo's ezjail.conf and the jails' parent dataset exist
// before ezjail-admin install, which reads ezjail.conf (ezjail-admin:14)
// and with ezjail_use_zfs makes basejail and newjail datasets
// (ezjail-admin:277,1048,298); the parent is made as ezjail's
// ensure_jailzfs makes it (ezjail-admin:444-448); db1's zfs.quota goes to
// create -s (ezjail-admin:711), and a changed quota to zfs set quota.
//
// Issue 10 item 6: apply starts jails in the order ezjail's rc script
// starts them at boot (ezjail.sh:51: rcorder over the configs, whose
// REQUIRE lines carry start_after). The example declares app1 (start_after
// ns1, db1) before db1.
func TestSingleHostBootstrap(t *testing.T) {
	t.Parallel()
	b, err := os.ReadFile("../examples/single-host/topology.yaml")
	if err != nil {
		t.Fatal(err)
	}
	// newEnv writes the cookie under secrets/, as the Arboreus example has it.
	top := edit(t, string(b), "cookie_file: erlang.cookie ", "cookie_file: secrets/erlang.cookie ")
	e := newEnv(t, top, realCode(t)...)
	r := e.run("plan", "--bootstrap", e.topo)
	e.want(r, 0, "create zfs zroot/usr/jails: zfs create -p zroot/usr, then zfs create -o mountpoint=/usr/jails zroot/usr/jails",
		"ezjail-admin create -f erlang -s 20G db1",
		"start jail app1: ezjail-admin onestart app1 (after ns1, db1: start_after)")
	ns, db, app := strings.Index(r.stdout, "start jail ns1"), strings.Index(r.stdout, "start jail db1"), strings.Index(r.stdout, "start jail app1")
	if ns < 0 || db < ns || app < db {
		t.Errorf("the plan does not start ns1, db1, app1 in this order:\n%s", r)
	}
	e.applyOK("--bootstrap")
	calls := e.calls("box")
	zc, inst := callIndex(calls, "zfs", "create", "-o", "mountpoint=/usr/jails", "zroot/usr/jails"), callIndex(calls, "ezjail-admin", "install")
	if zc < 0 || inst < zc {
		t.Errorf("zfs create of the parent dataset is call %d, ezjail-admin install call %d: want the dataset first", zc, inst)
	}
	if conf := e.read("box", "/usr/local/etc/ezjail.conf"); !strings.Contains(conf, `ezjail_use_zfs_for_jails="YES"`) || !strings.Contains(conf, `ezjail_use_zfs="YES"`) {
		t.Errorf("ezjail.conf of a fresh ZFS host:\n%s", conf)
	}
	if callIndex(calls, "ezjail-admin", "create", "-f", "erlang", "-s", "20G", "db1") < 0 {
		t.Error("db1 was not created with its quota (create -s 20G)")
	}
	ins, idb, iapp := callIndex(calls, "ezjail-admin", "onestart", "ns1"), callIndex(calls, "ezjail-admin", "onestart", "db1"), callIndex(calls, "ezjail-admin", "onestart", "app1")
	if ins < 0 || idb < ins || iapp < idb {
		t.Errorf("onestart calls ns1 %d, db1 %d, app1 %d: want ns1, db1, then app1", ins, idb, iapp)
	}
	// install made basejail and newjail datasets, each jail is one.
	if got := e.ssh("box", "zfs list -H -o name -r zroot/usr/jails"); got != "zroot/usr/jails\nzroot/usr/jails/app1\nzroot/usr/jails/basejail\nzroot/usr/jails/db1\nzroot/usr/jails/newjail\nzroot/usr/jails/ns1" {
		t.Errorf("datasets:\n%s", got)
	}
	if got := e.ssh("box", "zfs get -H -p -o value quota zroot/usr/jails/db1"); got != "21474836480" {
		t.Errorf("db1's quota: %s, want 20G", got)
	}
	e.converged()

	// A changed quota, one ezjail's -s could not take: zfs set quota.
	e.writeTopology(edit(t, top, "zfs: { quota: 20G }", "zfs: { quota: 1.5T }"))
	r = e.run("plan", "--detailed-exitcode", e.topo)
	e.want(r, 2, "update zfs zroot/usr/jails/db1", "zfs set quota=1.5T zroot/usr/jails/db1 (now 20G)")
	e.applyOK()
	if got := e.ssh("box", "zfs get -H -p -o value quota zroot/usr/jails/db1"); got != "1649267441664" {
		t.Errorf("db1's quota: %s, want 1.5T", got)
	}
	e.converged()
}

// TestZFSPlainBasejail (issue 10 item 5): a ZFS host whose basejail and
// newjail are plain directories (ezjail-admin install ran without
// ezjail_use_zfs, as arbo's bootstrap ran it before it wrote ezjail.conf
// first). With ezjail_use_zfs, ezjail-admin create copies newjail by zfs
// snapshot/send of <jailzfs>/newjail (ezjail-admin:747-752), which does not
// exist: "Could not copy template jail" (ezjail-admin:757). arbo leaves
// ezjail_use_zfs out there: each jail is still a dataset, filled with a copy
// of newjail's files (ezjail-admin:754). On ezjail's own code.
func TestZFSPlainBasejail(t *testing.T) {
	t.Parallel()
	b, err := os.ReadFile("../examples/single-host/topology.yaml")
	if err != nil {
		t.Fatal(err)
	}
	top := edit(t, string(b), "cookie_file: erlang.cookie ", "cookie_file: secrets/erlang.cookie ")
	e := newEnv(t, top, append(realCode(t), lab.WithBasejail())...)
	// The parent dataset is missing: refused, with the command that makes it.
	r := e.run("plan", e.topo)
	e.want(r, 1, "zfs.dataset zroot/usr/jails does not exist", "zfs create -o mountpoint=none zroot/usr/jails")
	e.ssh("box", "zfs create -o mountpoint=none zroot/usr/jails")
	e.applyOK()
	if conf := e.read("box", "/usr/local/etc/ezjail.conf"); strings.Contains(conf, "ezjail_use_zfs=") || !strings.Contains(conf, `ezjail_use_zfs_for_jails="YES"`) {
		t.Errorf("ezjail.conf on a plain basejail:\n%s", conf)
	}
	if got := e.ssh("box", "zfs list -H -o name,quota -r zroot/usr/jails"); got != "zroot/usr/jails\tnone\nzroot/usr/jails/app1\tnone\nzroot/usr/jails/db1\t20G\nzroot/usr/jails/ns1\tnone" {
		t.Errorf("datasets:\n%s", got)
	}
	if !e.exists("box", "/usr/jails/db1/etc/passwd") {
		t.Error("db1's dataset holds no copy of newjail")
	}
	e.converged()
}
