//go:build linux

package e2e

import (
	"os"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/arbo-project/arbo/internal/lab"
)

// guardTimeout is the first run's confirmation time in TestGuardGenerations:
// long enough that the second run finds its guard far from acting and takes
// over (plan/guard.go, guardMargin 10 s).
const guardTimeout = 20 * time.Second

// TestGuardGenerations: a run is killed (kill -9) or cut off at each step of
// a guarded firewall load, on a host (pf) and on the gateway (config.xml);
// a second run then applies the same topology. Its guard takes over the
// stale one, which must stand down when its time comes: the firewall keeps
// the second run's confirmed state, and the next plan has nothing to do.
// Without a second run, the stale guard rolls its own unconfirmed change
// back (issue 11, item 2).
func TestGuardGenerations(t *testing.T) {
	t.Parallel()
	oldTopo := exampleTopology(t)
	newTopo := edit(t, edit(t, oldTopo, "dist_ports: 9100-9115", "dist_ports: 9200-9215"),
		"{ proto: tcp, port: 443, to: app, to_port: 8443 }", "{ proto: tcp, port: 4443, to: app, to_port: 8443 }")
	groups := []struct {
		name    string
		machine string
		state   string // the guard's state file
		trials  []guardTrial
	}{
		{"pf", "server1", "/var/db/arbo/pf-guard", []guardTrial{
			{point: "armed", fault: "kill"},
			{point: "loaded", fault: "kill"},
			{point: "loaded", fault: "cut"},
			{point: "confirmed", fault: "kill"},
			{point: "loaded", fault: "kill", alone: true},
		}},
		{"gateway", "gate", "/var/db/arbo/config-guard", []guardTrial{
			{point: "armed", fault: "kill"},
			{point: "loaded", fault: "kill"},
			{point: "loaded", fault: "cut"},
			{point: "loaded", fault: "kill", alone: true},
		}},
	}
	for _, g := range groups {
		t.Run(g.name, func(t *testing.T) {
			t.Parallel()
			e := newEnv(t, oldTopo, lab.WithBasejail())
			e.applyOK()
			start := time.Now()
			for _, tr := range g.trials {
				tr.run(e.with(t), g.machine, g.state, oldTopo, newTopo)
				if t.Failed() {
					return
				}
			}
			t.Logf("%s guard: %d fault trials (kill -9 or cut at armed/loaded/confirmed, then a second run or none) in %s, every one converged",
				g.name, len(g.trials), time.Since(start).Round(time.Second))
		})
	}
}

type guardTrial struct {
	point string // armed, loaded, confirmed
	fault string // kill, cut
	alone bool   // no second run: the stale guard must roll back its own change
}

func (tr guardTrial) run(e *env, machine, statePath, oldTopo, newTopo string) {
	t := e.t
	t.Helper()
	name := tr.fault + " at " + tr.point
	if tr.alone {
		name += ", no second run"
	}
	// From the old topology, every guard settled.
	e.writeTopology(oldTopo)
	e.applyOK()
	waitSettled(e, statePath, machine)
	oldState := e.read(machine, statePath)
	oldPF := e.read("server1", "/etc/pf.conf")
	oldConf := e.read("gate", "/cf/conf/config.xml")
	calls := len(e.calls(machine))

	e.writeTopology(newTopo)
	secs := guardTimeout
	if tr.alone {
		secs = 5 * time.Second
	}
	a := e.start("apply", "--auto-approve", "--confirm-timeout", secs.String(), e.topo)
	token := ""
	reached := func() bool {
		st := strings.Fields(readOr(e, machine, statePath))
		if len(st) != 4 || strings.Join(st, " ") == strings.TrimSpace(oldState) {
			return false
		}
		token = st[0]
		switch tr.point {
		case "armed":
			return st[1] == "armed"
		case "confirmed":
			return st[1] == "confirmed"
		}
		if st[1] != "armed" {
			return false
		}
		if machine == "gate" {
			return e.read("gate", "/cf/conf/config.xml") != oldConf
		}
		for _, c := range e.calls(machine)[calls:] {
			if strings.Join(c.Argv, " ") == "pfctl -f /etc/pf.conf.arbo-new" {
				return true
			}
		}
		return false
	}
	waitFor(t, reached)
	switch tr.fault {
	case "kill":
		if err := a.cmd.Process.Signal(syscall.SIGKILL); err != nil {
			t.Fatal(err)
		}
		_ = a.cmd.Wait()
		// kill -9 leaves the run's locks: the operator removes them, as
		// arbo's "locked by" message says (after the commands the run had
		// in flight have ended on the machines).
		time.Sleep(1500 * time.Millisecond)
		for _, m := range e.machines() {
			_ = os.RemoveAll(e.path(m, "/var/db/arbo/lock"))
		}
	case "cut":
		if err := e.lab.Machine(machine).CutConnections(); err != nil {
			t.Fatal(err)
		}
		a.wait()
	}
	armedAt := time.Now()
	if !tr.alone {
		e.applyOK()
	}
	// Past the first run's deadline: its guard has acted or stood down.
	time.Sleep(time.Until(armedAt.Add(secs + 4*time.Second)))
	st := strings.Fields(readOr(e, machine, statePath))
	t.Logf("%s (%s): guard %s, state now %v", name, machine, token, st)
	switch {
	case tr.alone && tr.point != "confirmed":
		// Nobody took over: the first run's guard rolled its change back.
		if len(st) != 4 || st[0] != token || st[1] != "rolledback" {
			t.Errorf("%s: the stale guard did not roll back its unconfirmed change: state %v", name, st)
		}
		if machine == "gate" {
			if got := e.read("gate", "/cf/conf/config.xml"); got != oldConf {
				t.Errorf("%s: config.xml is not the previous configuration after the rollback", name)
			}
		} else if got := e.read("server1", "/var/run/lab/pf.loaded"); got != oldPF {
			t.Errorf("%s: the loaded rules are not the previous ones after the rollback", name)
		}
		if !e.exists("server1", "/var/run/lab/pf.enabled") {
			t.Errorf("%s: pf is disabled", name)
		}
		// The next run finishes the change.
		e.applyOK()
		time.Sleep(4 * time.Second)
	default:
		if len(st) != 4 || st[1] != "confirmed" {
			t.Errorf("%s: after the second run the guard state is %v, want a confirmed newer guard", name, st)
		}
		if tr.point != "confirmed" && len(st) == 4 && st[0] == token {
			t.Errorf("%s: the stale guard %s still owns the firewall", name, token)
		}
	}
	// Nothing undone behind the second run's back: pf on, the new rules
	// loaded and promoted, the new config.xml kept, and nothing to do.
	for _, m := range []string{"server1", "server2"} {
		if !e.exists(m, "/var/run/lab/pf.enabled") {
			t.Errorf("%s: %s: pf is disabled", name, m)
		}
		if e.read(m, "/var/run/lab/pf.loaded") != e.read(m, "/etc/pf.conf") || e.read(m, "/etc/pf.conf") == oldPF && m == "server1" {
			t.Errorf("%s: %s: the loaded rules are not the new /etc/pf.conf", name, m)
		}
	}
	if got := e.read("gate", "/cf/conf/config.xml"); got == oldConf {
		t.Errorf("%s: the gateway runs the previous config.xml: a stale guard put it back", name)
	}
	if msgs, _ := os.ReadFile(e.path(machine, "/var/log/messages")); strings.Contains(string(msgs), "guard of an unconfirmed earlier run") {
		t.Logf("%s: %s", name, lastLine(string(msgs), "stands down"))
	}
	e.converged()
}

// waitSettled waits until no guard is armed on machine.
func waitSettled(e *env, statePath, machine string) {
	e.t.Helper()
	deadline := time.Now().Add(guardTimeout + 15*time.Second)
	for time.Now().Before(deadline) {
		st := strings.Fields(readOr(e, machine, statePath))
		if len(st) != 4 || st[1] != "armed" {
			return
		}
		time.Sleep(200 * time.Millisecond)
	}
	e.t.Fatalf("a guard on %s stayed armed", machine)
}

func readOr(e *env, machine, p string) string {
	b, _ := os.ReadFile(e.path(machine, p))
	return string(b)
}

func lastLine(s, has string) string {
	out := ""
	for _, l := range strings.Split(s, "\n") {
		if strings.Contains(l, has) {
			out = l
		}
	}
	return out
}
