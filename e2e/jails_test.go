//go:build linux

package e2e

import (
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/arbo-project/arbo/internal/lab"
	"github.com/arbo-project/arbo/internal/lab/emu"
)

// callIndex is the index of the first call whose argv starts with prefix
// (argv[0] by its base name), or -1.
func callIndex(calls []emu.Call, prefix ...string) int {
	for i, c := range calls {
		if len(c.Argv) < len(prefix) {
			continue
		}
		argv := append([]string{filepath.Base(c.Argv[0])}, c.Argv[1:len(prefix)]...)
		if strings.Join(argv, " ") == strings.Join(prefix, " ") {
			return i
		}
	}
	return -1
}

// TestRetiredJailComesBack (issue 10 item 7): a data jail removed from the
// topology is archived and kept with its config renamed <safename>.norun
// (ezjail-admin config -r norun). ezjail's rc script skips such a jail
// (ezjail.sh:59,66) and `ezjail-admin onestart` of it exits 0 without
// starting it (ezjail-admin:148). When the jail comes back into the
// topology, re-enabling it is an action of the plan, done before arbo
// writes its config and starts it, and the start is proven with jls.
func TestRetiredJailComesBack(t *testing.T) {
	t.Parallel()
	top := exampleTopology(t)
	const db1 = "      - { name: db1,  tier: data, ip: 10.20.2.11 }\n"
	e := newEnv(t, top, lab.WithBasejail())
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
	if jls := callIndex(calls, "jls", "-j", "db1"); jls < start {
		t.Errorf("the start of db1 was not checked with jls -j db1 (call %d, start %d)", jls, start)
	}
	if e.exists("server1", "/usr/local/etc/ezjail/db1.norun") || !strings.Contains(e.read("server1", "/usr/local/etc/ezjail/db1"), `export jail_db1_hostname="db1.`) {
		t.Error("db1's config is not arbo's runnable one")
	}
	if !e.exists("server1", "/var/run/lab/jails/db1") {
		t.Error("db1 does not run")
	}
	e.converged()
}

// TestSingleHostBootstrap applies the single-host example (ZFS, start_after)
// to a fresh host with --bootstrap.
//
// Issue 10 item 5: arbo's ezjail.conf and the jails' parent dataset exist
// before ezjail-admin install, which reads ezjail.conf (ezjail-admin:14);
// the parent is made as ezjail's ensure_jailzfs makes it (ezjail-admin:
// 444-448); db1's zfs.quota goes to create -s (ezjail-admin:711).
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
	e := newEnv(t, top)
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
	if !strings.Contains(e.read("box", "/usr/local/etc/ezjail.conf"), `ezjail_use_zfs_for_jails="YES"`) {
		t.Error("ezjail.conf does not make ZFS jails")
	}
	if callIndex(calls, "ezjail-admin", "create", "-f", "erlang", "-s", "20G", "db1") < 0 {
		t.Error("db1 was not created with its quota (create -s 20G)")
	}
	ins, idb, iapp := callIndex(calls, "ezjail-admin", "onestart", "ns1"), callIndex(calls, "ezjail-admin", "onestart", "db1"), callIndex(calls, "ezjail-admin", "onestart", "app1")
	if ins < 0 || idb < ins || iapp < idb {
		t.Errorf("onestart calls ns1 %d, db1 %d, app1 %d: want ns1, db1, then app1", ins, idb, iapp)
	}
	e.converged()
}
