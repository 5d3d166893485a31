//go:build linux

package lab

import (
	"bytes"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"

	"github.com/arbo-project/arbo/inventory"
)

// upstreamDir returns the shared upstream folder, skipping the test when it
// is absent (failing under CI=true, where a skip would hide a broken set-up).
func upstreamDir(t *testing.T) string {
	t.Helper()
	dir, why := FindUpstream(".")
	if dir == "" {
		if os.Getenv("CI") == "true" {
			t.Fatal("upstream: " + why)
		}
		t.Skip("upstream: " + why)
	}
	return dir
}

// TestFidelityHost runs FreeBSD's and ezjail's own code on a lab host (the
// real-code mode) and checks the behaviours of issue 9's "Why" that need a
// host, directly against the lab (no arbo).
func TestFidelityHost(t *testing.T) {
	t.Parallel()
	up := upstreamDir(t)
	c, err := inventory.Load("../../examples/single-host/topology.yaml")
	if err != nil {
		t.Fatal(err)
	}
	l := Start(t, c, WithUpstream(up), WithRealCode())
	var host *Machine
	for _, n := range c.Machines() {
		if !c.IsGateway(n) && host == nil {
			host = l.Machine(n)
		}
	}
	if host == nil {
		t.Fatalf("no host in %v", l.Machines())
	}
	run := func(cmd string) (string, string, error) {
		t.Helper()
		return runSSH(t, l, host.Name, cmd)
	}

	t.Run("upstream files installed unchanged", func(t *testing.T) {
		for src, dst := range map[string]string{
			"freebsd/libexec/rc/rc.subr":          "/etc/rc.subr",
			"freebsd/libexec/rc/rc.d/pf":          "/etc/rc.d/pf",
			"freebsd/libexec/rc/rc.conf":          "/etc/defaults/rc.conf",
			"freebsd/usr.sbin/service/service.sh": "/usr/sbin/service",
		} {
			want, err := os.ReadFile(filepath.Join(up, src))
			if err != nil {
				t.Fatal(err)
			}
			got, err := os.ReadFile(filepath.Join(host.Root, dst))
			if err != nil || !bytes.Equal(got, want) {
				t.Errorf("%s is not %s byte for byte (err %v)", dst, src, err)
			}
		}
		// ezjail's Makefile: sed s:EZJAIL_PREFIX:${PREFIX}: ezjail-admin.
		want, _ := os.ReadFile(filepath.Join(up, "ezjail-3.4.2/ezjail-admin"))
		want = bytes.ReplaceAll(want, []byte("EZJAIL_PREFIX"), []byte("/usr/local"))
		got, err := os.ReadFile(filepath.Join(host.Root, "/usr/local/bin/ezjail-admin"))
		if err != nil || !bytes.Equal(got, want) {
			t.Errorf("ezjail-admin is not the installed ezjail 3.4.2 (err %v)", err)
		}
	})

	t.Run("root's shell is /bin/sh", func(t *testing.T) {
		// sshd runs `SHELL -c CMD` with argv[0] the shell's base name.
		out, _, err := run(`echo "$0"; set -o | grep '^posix'`)
		if err != nil || !regexp.MustCompile(`^sh\nposix\s+on\n$`).MatchString(out) {
			t.Errorf("login shell: %q, %v; want sh in POSIX mode", out, err)
		}
	})

	// FreeBSD sh's setvar builtin (network.subr's clone_up uses it).
	t.Run("setvar", func(t *testing.T) {
		if out, e, err := run(`f() { local v; setvar v "a b"; echo "[$v]"; }; f; env -i /bin/sh -c 'setvar w 1; echo $w'`); err != nil || out != "[a b]\n1\n" {
			t.Errorf("setvar: %q %q %v", out, e, err)
		}
	})

	// A command the lab does not provide fails as on FreeBSD (127) and the
	// call log shows it, also from a script under service(8)'s env -i.
	t.Run("unknown command: 127 and logged", func(t *testing.T) {
		_, e, err := run("nosuchcmd -x 1")
		if x, ok := err.(interface{ ExitCode() int }); !ok || x.ExitCode() != 127 || !strings.Contains(e, "nosuchcmd: not found") {
			t.Errorf("nosuchcmd: err %v, stderr %q", err, e)
		}
		run("env -i PATH=/bin /bin/sh -c 'otherunknown'")
		calls, err := host.Calls()
		if err != nil {
			t.Fatal(err)
		}
		seen := map[string]bool{}
		for _, c := range calls {
			if c.Exit == 127 {
				seen[strings.Join(c.Argv, " ")] = true
			}
		}
		if !seen["nosuchcmd -x 1"] || !seen["otherunknown"] {
			t.Errorf("127 calls logged: %v", seen)
		}
	})

	// pfctl(8) needs /dev/pf, which pf.ko makes: on a fresh host pfctl -f
	// fails until kldload pf; pfctl -n parses without it.
	t.Run("pfctl fails before kldload pf", func(t *testing.T) {
		if _, e, err := run("echo 'pass all' > /tmp/t.conf && pfctl -f /tmp/t.conf"); err == nil || !strings.Contains(e, "/dev/pf") {
			t.Errorf("pfctl -f on a fresh host: err %v, stderr %q", err, e)
		}
		if _, e, err := run("pfctl -n -f /tmp/t.conf"); err != nil {
			t.Errorf("pfctl -n: %v %s", err, e)
		}
		if _, e, err := run("kldload pf && pfctl -f /tmp/t.conf && kldstat -q -m pf"); err != nil {
			t.Errorf("after kldload pf: %v %s", err, e)
		}
	})

	// rc.d/pf loads a pf_fallback_rules value without a file with an
	// unquoted `echo $pf_fallback_rules | $pf_program -f -` (rc.d/pf:41):
	// the shell joins a multi-line value into one line, pfctl refuses it,
	// and pf_start enables pf anyway (rc.d/pf:50-52): filtering on, no rules.
	// /etc/defaults/rc.conf:250-251 shows the multi-line form as an example.
	t.Run("multi-line pf_fallback_rules loads nothing", func(t *testing.T) {
		rc := "pf_enable=\"YES\"\npf_rules=\"/etc/pf.broken\"\npf_fallback_rules_enable=\"YES\"\n" +
			"pf_fallback_rules_file=\"/etc/no-such-fallback.conf\"\n" +
			"pf_fallback_rules=\"block drop log all\npass in quick proto tcp to port 22 keep state\"\n"
		if err := os.WriteFile(filepath.Join(host.Root, "/etc/rc.conf.d-pf-fidelity"), []byte(rc), 0o644); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(filepath.Join(host.Root, "/etc/pf.broken"), []byte("this is not pf.conf\n"), 0o644); err != nil {
			t.Fatal(err)
		}
		// rc.subr reads /etc/rc.conf.d/<name> after rc.conf (load_rc_config).
		if _, e, err := run("mkdir -p /etc/rc.conf.d && cp /etc/rc.conf.d-pf-fidelity /etc/rc.conf.d/pf"); err != nil {
			t.Fatalf("rc.conf.d: %v %s", err, e)
		}
		_, e, _ := run("service pf start")
		// The two rules are valid one per line; joined, pfctl refuses line 1
		// of its standard input.
		if !strings.Contains(e, "Loading fallback rules:") || !strings.Contains(e, "-:1: syntax error") {
			t.Errorf("rc.d/pf's fallback was not refused as one joined line; stderr %q", e)
		}
		if out, _, err := run("pfctl -sr"); err != nil || strings.TrimSpace(out) != "" {
			t.Errorf("pfctl -sr after the fallback: %q, %v; want no rules", out, err)
		}
		if out, _, err := run("pfctl -s info"); err != nil || !strings.Contains(out, "Enabled") {
			t.Errorf("pf is not enabled after pf_start: %q, %v", out, err)
		}
		run("pfctl -d; rm -f /etc/rc.conf.d/pf")
	})

	// The dns/unbound port's rc script has no configtest (files/unbound.in:
	// extra_commands="reload"); rc.subr's run_rc_command answers "unknown
	// directive" and exits 1 (rc.subr: `echo 1>&2 "$0: unknown directive
	// '$rc_arg'."`, then rc_usage, which exits 1).
	t.Run("unbound port has no configtest", func(t *testing.T) {
		if _, e, err := run("pkg install -y unbound >/dev/null && test -x /usr/local/etc/rc.d/unbound"); err != nil {
			t.Fatalf("pkg install unbound: %v %s", err, e)
		}
		_, e, err := run("service unbound configtest")
		if err == nil || !strings.Contains(e, "unknown directive 'configtest'") {
			t.Errorf("service unbound configtest: err %v, stderr %q", err, e)
		}
	})

	// ezjail's rc script skips a jail whose config ends in .norun when it
	// starts jails (ezjail.sh:59,66: `ezjail_norun="YES"` then `echo -n "
	// skipping ${ezjail}"; continue`): `ezjail-admin onestart` of a retired
	// jail exits 0 and starts nothing.
	t.Run("norun jail stays down", func(t *testing.T) {
		conf := "export jail_retired_hostname=\"retired\"\nexport jail_retired_ip=\"lo1|10.9.9.9\"\nexport jail_retired_rootdir=\"/usr/jails/retired\"\n"
		if err := os.WriteFile(filepath.Join(host.Root, "/usr/local/etc/ezjail/retired.norun"), []byte(conf), 0o644); err != nil {
			t.Fatal(err)
		}
		out, e, err := run("ezjail-admin onestart retired")
		if err != nil || !strings.Contains(out, "skipping retired") {
			t.Errorf("ezjail-admin onestart retired: err %v, stdout %q, stderr %q", err, out, e)
		}
		calls, err := host.Calls()
		if err != nil {
			t.Fatal(err)
		}
		for _, c := range calls {
			if len(c.Argv) > 0 && filepath.Base(c.Argv[0]) == "jail" {
				t.Errorf("a .norun jail reached jail(8): %v", c.Argv)
			}
		}
		if out, _, _ := run("jls -n name"); strings.Contains(out, "retired") {
			t.Errorf("jls lists the retired jail: %q", out)
		}
	})
}

// TestFidelityZFS runs ezjail 3.4.2's own ZFS paths (ezjail_use_zfs,
// ezjail_use_zfs_for_jails) on a lab host: install makes the jail
// datasets (ensure_jailzfs, ezjail_splitworld: ezjail-admin:423-431,
// 268-290), create -s makes a dataset with a quota and fills it from
// newjail by snapshot, send and receive (ezjail-admin:735-752), delete -w
// destroys it (ezjail-admin:903-913); no command the lab lacks is called.
// It also shows issue 10 item 5: a basejail installed before ezjail.conf
// asks for ZFS is a plain directory, and the first ZFS create fails.
func TestFidelityZFS(t *testing.T) {
	t.Parallel()
	up := upstreamDir(t)
	c, err := inventory.Load("../../examples/single-host/topology.yaml")
	if err != nil {
		t.Fatal(err)
	}
	l := Start(t, c, WithUpstream(up), WithRealCode())
	host := l.Machine(c.Hosts[0].Name)
	run := func(cmd string) (string, string, error) {
		t.Helper()
		return runSSH(t, l, host.Name, cmd)
	}
	must := func(cmd string) string {
		t.Helper()
		out, e, err := run(cmd)
		if err != nil {
			t.Fatalf("%s: %v\nstdout: %s\nstderr: %s", cmd, err, out, e)
		}
		return out
	}
	conf := "ezjail_use_zfs=\"YES\"\nezjail_use_zfs_for_jails=\"YES\"\nezjail_jailzfs=\"zroot/usr/jails\"\n"

	t.Run("install before ezjail.conf: the first ZFS create fails", func(t *testing.T) {
		must("ezjail-admin install -r 14.2-RELEASE >/dev/null 2>&1; ifconfig lo1 create")
		if err := os.WriteFile(filepath.Join(host.Root, "/usr/local/etc/ezjail.conf"), []byte(conf), 0o644); err != nil {
			t.Fatal(err)
		}
		// zroot/usr/jails does not exist: create refuses before touching anything.
		_, e, err := run("ezjail-admin create db0 'lo1|10.30.2.9'")
		if err == nil || !strings.Contains(e, "parent zfs dataset does not exist") {
			t.Errorf("ZFS create over a plain basejail: err %v, stderr %q", err, e)
		}
		must("rm -rf /usr/jails/* /usr/local/etc/ezjail/*")
	})

	t.Run("install makes the datasets", func(t *testing.T) {
		must("ezjail-admin install -r 14.2-RELEASE >/dev/null 2>&1")
		got := must("zfs list -H -o name -r zroot/usr/jails")
		if got != "zroot/usr/jails\nzroot/usr/jails/basejail\nzroot/usr/jails/newjail\n" {
			t.Errorf("datasets after install:\n%s", got)
		}
		if out := must("zfs list -H -t snapshot -o name -r zroot/usr/jails/basejail"); !strings.HasPrefix(out, "zroot/usr/jails/basejail@") {
			t.Errorf("splitworld's basejail snapshot: %q", out)
		}
		if out := must("readlink /usr/jails/newjail/bin; ls /usr/jails/flavours"); out != "/basejail/bin\nexample\n" {
			t.Errorf("newjail and flavours: %q", out)
		}
	})

	t.Run("create -s gives a dataset with a quota", func(t *testing.T) {
		must("ezjail-admin create -s 2G db1 'lo1|10.30.2.10' >/dev/null 2>&1")
		if out := must("zfs get -H -o value quota,mountpoint zroot/usr/jails/db1"); out != "2G\n/usr/jails/db1\n" {
			t.Errorf("quota, mountpoint: %q", out)
		}
		if out := must("zfs list -H -t snapshot -o name"); strings.Contains(out, "_vanilla_newjail_") {
			t.Errorf("create left its snapshots: %q", out)
		}
		if _, err := os.Stat(filepath.Join(host.Root, "/usr/jails/db1/etc/passwd")); err != nil {
			t.Errorf("the jail's tree did not come from newjail: %v", err)
		}
		if out := must("ezjail-admin list | tail -1"); !strings.HasPrefix(out, "ZS ") {
			t.Errorf("ezjail-admin list: %q, want a stopped ZFS jail", out)
		}
	})

	t.Run("a running jail's dataset is busy, delete -w destroys it", func(t *testing.T) {
		must("ezjail-admin onestart db1 >/dev/null 2>&1; jls -j db1 >/dev/null")
		if _, e, err := run("zfs destroy -r zroot/usr/jails/db1"); err == nil || !strings.Contains(e, "busy") {
			t.Errorf("destroy under a running jail: err %v, stderr %q", err, e)
		}
		must("ezjail-admin onestop db1 >/dev/null 2>&1; ezjail-admin delete -w db1")
		if _, _, err := run("zfs list zroot/usr/jails/db1"); err == nil {
			t.Error("delete -w left the dataset")
		}
		if _, err := os.Stat(filepath.Join(host.Root, "/usr/jails/db1")); !os.IsNotExist(err) {
			t.Errorf("delete -w left the root: %v", err)
		}
	})

	calls, err := host.Calls()
	if err != nil {
		t.Fatal(err)
	}
	for _, c := range calls {
		if c.Exit == 127 {
			t.Errorf("a command the lab does not provide was called: %v", c.Argv)
		}
	}
}
