//go:build linux

package e2e

import (
	"os/exec"
	"strings"
	"testing"

	"github.com/arbo-project/arbo/internal/lab"
)

// sh runs a shell command on a lab machine as its operator would, over
// OpenSSH with the lab's ssh_config: the drift arbo must notice.
func (e *env) sh(machine, command string) string {
	e.t.Helper()
	addr := e.c.MachineSSH(machine).Address
	out, err := exec.Command("ssh", "-F", e.lab.SSHConfig(), "-o", "BatchMode=yes", addr, command).CombinedOutput()
	if err != nil {
		e.t.Fatalf("ssh %s %q: %v\n%s", machine, command, err, out)
	}
	return string(out)
}

// TestLiveDrift (issue 13): after an apply, pf disabled, a ruleset loaded
// by hand, a route removed, a jail stopped and a jail's lo1 address
// removed are each caught by plan
// (exit 2 with the repair) and, where unsafe, by check --live (exit 3), and
// repaired by apply.
func TestLiveDrift(t *testing.T) {
	t.Parallel()
	if _, err := exec.LookPath("ssh"); err != nil {
		t.Skip("no OpenSSH client to act on the machines by hand")
	}
	e := newEnv(t, exampleTopology(t), lab.WithBasejail())
	e.applyOK()
	e.converged()
	// The lab's gateway stand-in loads no pf rules (only the real pfSense
	// PHP does, lab.WithPfSense): check --live judges the hosts here.
	live := func(code int, contains ...string) {
		t.Helper()
		e.want(e.run("check", "--live", "--host", "server1", "--host", "server2", e.topo), code, contains...)
	}
	live(0)
	// A route server1 has toward server2's host-local jails.
	var route string
	for _, l := range strings.Split(e.sh("server1", "netstat -rn"), "\n") {
		if f := strings.Fields(l); len(f) >= 2 && strings.HasPrefix(f[0], "10.") {
			route = f[0]
			break
		}
	}
	if route == "" {
		t.Fatal("no static route to a jail network on server1")
	}
	for _, tc := range []struct {
		name, command string
		plan          []string // what plan must say (exit 2)
		check         []string // what check --live must say (exit 3); nil: safe, exit 0
	}{
		{"pfctl -d", "pfctl -d",
			[]string{"> reload pf /etc/pf.conf: pf is disabled"},
			[]string{"ARBO015", "pf does not filter", "ARBO004"}},
		{"pass quick all", "echo 'pass quick all' > /tmp/hand.conf && pfctl -f /tmp/hand.conf",
			[]string{"> reload pf /etc/pf.conf: the loaded rules differ from what arbo loaded"},
			[]string{"ARBO015", "the loaded rules are not the ones arbo loaded", "ARBO004"}},
		{"route removed", "route delete " + route,
			[]string{"route to " + route},
			nil},
		{"jail stopped", "ezjail-admin stop app1",
			[]string{"> start jail app1"},
			nil},
		{"lo1 alias removed", "ifconfig lo1 inet 10.20.1.11 -alias",
			[]string{"> restart jail app1: its lo1 address 10.20.1.11 is missing"},
			nil},
	} {
		t.Run(tc.name, func(t *testing.T) {
			e := e.with(t)
			e.sh("server1", tc.command)
			e.want(e.run("plan", "--detailed-exitcode", e.topo), 2, tc.plan...)
			if tc.check != nil {
				e.want(e.run("check", "--live", "--host", "server1", e.topo), 3, tc.check...)
			} else {
				e.want(e.run("check", "--live", "--host", "server1", e.topo), 0)
			}
			e.applyOK()
			e.converged()
			e.want(e.run("check", "--live", "--host", "server1", "--host", "server2", e.topo), 0)
		})
	}
}

// TestLiveUnreachable: a machine check --live cannot reach is an error
// finding for it, never "no drift"; the others are still judged.
func TestLiveUnreachable(t *testing.T) {
	t.Parallel()
	e := newEnv(t, exampleTopology(t), lab.WithBasejail())
	e.applyOK()
	if err := e.lab.Machine("server2").StopSSHD(); err != nil {
		t.Fatal(err)
	}
	r := e.run("check", "--live", "--host", "server1", "--host", "server2", "--format", "json", e.topo)
	e.want(r, 3, `"id": "ARBO015"`, `"machine": "server2"`, "cannot read the machine's live state")
	if strings.Contains(r.stdout, `"machine": "server1",
      "subject": "pf"`) {
		t.Errorf("server1 judged drifted:\n%s", r)
	}
}

// TestVerifyPlumbing: arbo verify reaches every jail through the real sshd
// and jexec, one command per jail, read-only. The lab's jails have no
// userland (jexec: "the lab jail has no /bin/sh"), and there are no
// stand-ins for host(1), nc(1) or epmd yet (they would need the other
// machines' loaded rules and the served zone), so every probe is reported
// unknown with the reason, and verify exits 3: never a pass it did not
// prove.
func TestVerifyPlumbing(t *testing.T) {
	t.Parallel()
	e := newEnv(t, exampleTopology(t), lab.WithBasejail())
	e.applyOK()
	before := e.snapshotAll()
	r := e.run("verify", "--wait", "1s", "--format", "json", e.topo)
	e.want(r, 3, `"outcome": "unknown"`, `"failing": true`, "no /bin/sh")
	if strings.Contains(r.stdout, `"outcome": "passed"`) {
		t.Errorf("a probe passed without a probe tool:\n%s", r)
	}
	e.unchangedSince(before)
	for _, m := range []string{"server1", "server2"} {
		n := 0
		for _, c := range e.calls(m) {
			if c.Argv[0] == "jexec" && len(c.Argv) > 2 && c.Argv[2] == "/bin/sh" {
				n++
			}
		}
		if n != 2 {
			t.Errorf("%s: %d probe commands, want one per jail (2)", m, n)
		}
	}
}

// TestLiveGateway: with pfSense's own PHP on the gateway (lab.WithPfSense),
// check --live finds arbo's filter rules loaded (each tracker as a
// ridentifier in pfctl -sr); rules loaded by hand without them, or pf
// disabled, are ARBO015 errors on the gateway.
func TestLiveGateway(t *testing.T) {
	t.Parallel()
	if _, err := exec.LookPath("ssh"); err != nil {
		t.Skip("no OpenSSH client to act on the machines by hand")
	}
	e := newEnv(t, exampleTopology(t), lab.WithBasejail(), lab.WithPfSense())
	e.applyOK()
	gate := func(code int, contains ...string) {
		t.Helper()
		e.want(e.run("check", "--live", "--host", "gate", e.topo), code, contains...)
	}
	gate(0)
	if !strings.Contains(e.sh("gate", "pfctl -sr"), "ridentifier 5") {
		t.Fatal("no arbo tracker (5xxxxxxxx) in the gateway's loaded rules")
	}
	e.sh("gate", "echo 'pass quick all' > /tmp/hand.conf && pfctl -f /tmp/hand.conf")
	gate(3, "error ARBO015 trackers: pfSense has not loaded arbo's rules: tracker(s) 5")
	e.sh("gate", "pfctl -d")
	gate(3, "error ARBO015 pf: pf does not filter")
}
