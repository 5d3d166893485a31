//go:build linux

package e2e

import (
	"errors"
	"net"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"golang.org/x/crypto/ssh"
	"golang.org/x/crypto/ssh/knownhosts"

	"github.com/arbo-project/arbo/internal/lab"
)

// TestOwnership: files and jails that exist before arbo's first apply.
func TestOwnership(t *testing.T) {
	t.Parallel()
	const operatorPF = "# the operator's own rules\npass all\n"
	// A jail of a name the topology uses, made by someone else, with
	// another address.
	stranger := "export jail_app2_hostname=\"app2\"\nexport jail_app2_ip=\"lo1|10.99.0.2\"\nexport jail_app2_rootdir=\"/usr/jails/app2\"\n"
	e := newEnv(t, exampleTopology(t), lab.WithBasejail(),
		lab.WithFile("server1", "/etc/pf.conf", []byte(operatorPF), 0o644),
		lab.WithFile("server2", "/usr/local/etc/ezjail/app2", []byte(stranger), 0o644))

	r := e.run("plan", e.topo)
	e.want(r, 1, "/etc/pf.conf.arbo-orig", "jail app2 exists but arbo does not own it", "10.99.0.2")
	// apply refuses on that machine only (exit 1, naming it); the others
	// are applied, and server2 is left alone.
	r = e.run("apply", "--auto-approve", "--confirm-timeout", confirmTimeout, e.topo)
	e.want(r, 1, "jail app2", "server2: FAILED", "refused, nothing done", "server1: ok", "gate: ok")
	if got := e.read("server1", "/etc/pf.conf.arbo-orig"); got != operatorPF {
		t.Errorf("/etc/pf.conf.arbo-orig = %q, want the operator's file", got)
	}
	if got := e.read("server1", "/etc/pf.conf"); got == operatorPF {
		t.Error("/etc/pf.conf was not taken over")
	}
	if got := e.read("server2", "/usr/local/etc/ezjail/app2"); got != stranger {
		t.Errorf("the stranger's jail config was changed:\n%s", got)
	}
	if e.exists("server2", "/usr/jails/app2") {
		t.Error("arbo made a jail root for app2")
	}
	for _, c := range e.calls("server2") {
		if !slices.Contains([]string{"jls", "ifconfig", "netstat"}, c.Argv[0]) && !pfctlShows(c.Argv) {
			t.Errorf("arbo acted on server2: %v", c.Argv)
		}
	}
	// A second apply keeps the original, not arbo's own previous version.
	e.applyOK("--host", "server1")
	if got := e.read("server1", "/etc/pf.conf.arbo-orig"); got != operatorPF {
		t.Errorf("/etc/pf.conf.arbo-orig was overwritten: %q", got)
	}
}

// TestGatewayRejectsConfig: pfSense restores a backup when it rejects
// config.xml, and exits 0; arbo must notice by reading the file back.
func TestGatewayRejectsConfig(t *testing.T) {
	t.Parallel()
	e := newEnv(t, exampleTopology(t), lab.WithBasejail())
	factory := e.read("gate", "/cf/conf/config.xml")
	// pfctl refuses the ruleset pfSense generates from arbo's config.xml:
	// pfSense loads its previous rules again and its reload exits 0
	// (filter.inc:515-564); arbo sees that pf does not run its rules, fails
	// the gateway and puts the previous config.xml back (issue 10 item 10).
	if err := e.lab.Machine("gate").RejectNextRuleset(); err != nil {
		t.Fatal(err)
	}
	r := e.run("apply", "--auto-approve", "--confirm-timeout", confirmTimeout, e.topo)
	e.want(r, 1, "# gate: FAILED", "did not load the ruleset", "put the previous /cf/conf/config.xml back", "# server1: ok", "# server2: ok")
	if rules := e.read("gate", "/var/run/lab/pf.loaded"); rules != e.read("gate", "/cf/conf/rules.debug.old") || strings.Contains(rules, "arbo:") {
		t.Errorf("gate: pf does not run the previous (pre-arbo) ruleset after the rollback:\n%s", rules)
	}
	if got := e.read("gate", "/cf/conf/config.xml"); got != factory {
		t.Error("gate: config.xml is not the restored previous version")
	}
	for _, h := range []string{"server1", "server2"} {
		if e.exists(h, "/etc/pf.conf.arbo-new") || !e.exists(h, "/var/run/lab/pf.enabled") {
			t.Errorf("%s: the hosts' apply did not finish", h)
		}
	}
	// The fault was one shot: the next apply finishes the gateway.
	r = e.applyOK()
	if strings.Contains(r.stdout, "# server1") && !strings.Contains(r.stdout, "# server1: ok (0 steps done)") {
		t.Errorf("the re-apply worked on server1 again:\n%s", r)
	}
	if e.read("gate", "/cf/conf/config.xml") == factory {
		t.Error("gate: config.xml still the factory one")
	}
	e.converged()
}

// TestSSH: host keys are verified, new ones recorded only when asked, and
// jump hosts work.
func TestSSH(t *testing.T) {
	t.Parallel()
	jump := edit(t, exampleTopology(t), "ssh:                                 # defaults for every machine; each may override any key\n  user: root\n",
		"ssh:\n  user: root\n  jump: gate\n")
	e := newEnv(t, exampleTopology(t), lab.WithBasejail())

	t.Run("trust new hosts", func(t *testing.T) {
		e := e.with(t)
		kh := filepath.Join(e.dir, "known_hosts.empty")
		if err := os.WriteFile(kh, nil, 0o644); err != nil {
			t.Fatal(err)
		}
		cfg, err := os.ReadFile(e.lab.SSHConfig())
		if err != nil {
			t.Fatal(err)
		}
		own := filepath.Join(e.dir, "ssh_config.empty-known-hosts")
		if err := os.WriteFile(own, []byte(strings.ReplaceAll(string(cfg), e.lab.KnownHosts(), kh)), 0o644); err != nil {
			t.Fatal(err)
		}
		e.want(e.runWith(own, "plan", e.topo), 1, "known_hosts")
		if b, _ := os.ReadFile(kh); len(b) != 0 {
			t.Errorf("known_hosts written without --trust-new-hosts:\n%s", b)
		}
		e.want(e.runWith(own, "plan", "--trust-new-hosts", e.topo), 0)
		b, _ := os.ReadFile(kh)
		for _, name := range e.machines() {
			addr := e.lab.Machine(name).Addr
			if !strings.Contains("\n"+string(b), "\n"+knownhosts.Normalize(addr.String())+" ") {
				t.Errorf("known_hosts lacks %s (%s):\n%s", name, addr, b)
			}
		}
		e.want(e.runWith(own, "plan", e.topo), 0) // now known
	})

	t.Run("jump", func(t *testing.T) {
		e := e.with(t)
		jumpFile := filepath.Join(e.dir, "jump.yaml")
		if err := os.WriteFile(jumpFile, []byte(jump), 0o644); err != nil {
			t.Fatal(err)
		}
		e.want(e.run("plan", jumpFile), 0)
		log := e.lab.Machine("gate").SSHDLog()
		for _, h := range []string{"server1", "server2"} {
			a := e.lab.Machine(h).Addr
			if want := "target " + a.Addr().String() + " port " + strconv.Itoa(int(a.Port())); !strings.Contains(log, want) {
				t.Errorf("%s was not reached through the gateway: its sshd log lacks %q", h, want)
			}
		}
	})

	t.Run("saved plan without ssh settings", func(t *testing.T) {
		e := e.with(t)
		saved := filepath.Join(e.dir, "saved-plan.json")
		e.want(e.run("plan", "--out", saved, e.topo), 0)
		b, err := os.ReadFile(saved)
		if err != nil {
			t.Fatal(err)
		}
		if !strings.Contains(string(b), `"config_file": "`+e.lab.SSHConfig()+`"`) {
			t.Fatalf("the saved plan does not record --ssh-config %s:\n%.600s", e.lab.SSHConfig(), b)
		}
		// The plan records the SSH options it was made with: applied
		// without them, from another directory, it reaches the machines
		// the same way.
		moved := filepath.Join(t.TempDir(), "plan.json")
		if err := os.WriteFile(moved, b, 0o600); err != nil {
			t.Fatal(err)
		}
		e.want(e.runWith("", "apply", "--confirm-timeout", confirmTimeout, moved), 0, "Apply complete")

		// A recorded file that is gone: refused before dialling anything,
		// naming the option and the file.
		e.want(e.run("plan", "--out", saved, e.topo), 0)
		b, _ = os.ReadFile(saved)
		gone := filepath.Join(e.dir, "gone-ssh_config")
		b = []byte(strings.ReplaceAll(string(b), `"config_file": "`+e.lab.SSHConfig()+`"`, `"config_file": "`+gone+`"`))
		if err := os.WriteFile(saved, b, 0o600); err != nil {
			t.Fatal(err)
		}
		before := e.snapshotAll()
		r := e.runWith("", "apply", saved)
		e.want(r, 1, "--ssh-config "+gone, "give --ssh-config")
		if strings.Contains(r.String(), "not connected") {
			t.Errorf("unhelpful hint:\n%s", r)
		}
		e.unchangedSince(before)
	})

	t.Run("changed host key", func(t *testing.T) {
		e := e.with(t)
		m := e.lab.Machine("server1")
		if err := m.ChangeHostKey(); err != nil {
			t.Fatal(err)
		}
		fp := hostKeyFingerprint(t, m.Addr.String())
		r := e.run("plan", e.topo)
		e.want(r, 1, "server1", fp)
		// --trust-new-hosts never replaces a key.
		r = e.run("plan", "--trust-new-hosts", e.topo)
		e.want(r, 1, fp)
		// apply refuses server1 and touches nothing there; the machines whose
		// keys check out are applied.
		before := e.snapshotAll()
		e.want(e.run("apply", "--auto-approve", "--trust-new-hosts", e.topo), 1, fp, "server1: FAILED")
		e.unchangedSince(before, "server1")
		// The others are done now: nothing left to change anywhere else is
		// still a failure with server1's cause, never "No changes" exit 0.
		r = e.run("apply", "--auto-approve", e.topo)
		e.want(r, 1, fp, "server1: FAILED")
		if strings.Contains(r.String(), "No changes") {
			t.Errorf("apply said No changes with server1 unreachable:\n%s", r)
		}
		e.want(e.run("apply", "--auto-approve", "--format", "json", e.topo), 1, `"failed": true`, `"machine": "server1"`)
	})
}

// hostKeyFingerprint asks an SSH server for its host key, as an attacker's
// server would show it.
func hostKeyFingerprint(t *testing.T, addr string) string {
	t.Helper()
	var fp string
	errSeen := errors.New("seen")
	cfg := &ssh.ClientConfig{User: "root", Timeout: 10 * time.Second,
		HostKeyCallback: func(_ string, _ net.Addr, key ssh.PublicKey) error {
			fp = ssh.FingerprintSHA256(key)
			return errSeen
		}}
	_, err := ssh.Dial("tcp", addr, cfg)
	if fp == "" {
		t.Fatalf("no host key from %s: %v", addr, err)
	}
	return fp
}

// pfctlShows: a pfctl call that only shows state (-s …, -T show), as plan
// reads pf's live state.
func pfctlShows(argv []string) bool {
	if len(argv) < 2 || argv[0] != "pfctl" {
		return false
	}
	shows := false
	for i, a := range argv[1:] {
		switch a {
		case "-s":
			shows = true
		case "-T":
			shows = i+2 < len(argv) && argv[i+2] == "show"
		case "-f", "-e", "-d", "-F", "-k", "-K":
			return false
		}
	}
	return shows
}

// TestGatewayLoginBanner: with /etc/rc.local on pfSense, root's shell
// (/etc/rc.initial) prints ">>> Launching rc.local in background..." to
// stdout before every command and before the sftp-server pfSense's sshd runs
// as a command (pfsense-2.7.2 src/etc/rc.initial:33-37, 52). arbo still
// applies the gateway (SFTP reads and writes, commands' output parsed) and
// finds nothing to change afterwards (issue 10 item 14).
func TestGatewayLoginBanner(t *testing.T) {
	t.Parallel()
	e := newEnv(t, exampleTopology(t), lab.WithBasejail(), lab.WithFile("gate", "/etc/rc.local", []byte("true\n"), 0o644))
	if out := e.sh("gate", "echo hi"); !strings.HasPrefix(out, ">>> Launching rc.local in background...\n") {
		t.Fatalf("the lab gateway prints no rc.local banner: %q", out)
	}
	e.applyOK()
	e.converged()
	if !strings.Contains(e.read("gate", "/tmp/rules.debug"), "USER_RULE: arbo:arboreus:") {
		t.Error("gate: pfSense's ruleset lacks arbo's rules")
	}
}

// TestGatewayRoutesLive: pfSense's reload (rc.filter_configure_sync) only
// rebuilds pf; arbo applies its static routes as System > Routing's Apply
// does (system_routes.php:45-62, system_routing_configure()), and a route of
// a removed jail leaves the kernel through pfSense's own
// delete_static_route() (system.inc:1573-1617), as the GUI deletes one
// (issue 10 item 8). The lab's route table is the emulator's state.
func TestGatewayRoutesLive(t *testing.T) {
	t.Parallel()
	top := exampleTopology(t)
	e := newEnv(t, top, lab.WithBasejail())
	e.applyOK()
	want := []string{"10.20.1.11/32 192.168.1.11", "10.20.2.11/32 192.168.1.11", "10.20.1.12/32 192.168.1.12", "10.20.2.12/32 192.168.1.12"}
	got := e.lines("gate", "/var/run/lab/routes")
	for _, w := range want {
		if !slices.Contains(got, w) {
			t.Errorf("gate: route %q is not live after the apply; routes: %q", w, got)
		}
	}
	top = edit(t, top, "      - { name: app2, tier: app,  ip: 10.20.1.12 }\n", "")
	top = edit(t, top, "consensus: 2 ", "consensus: 1 ")
	e.writeTopology(top)
	e.applyOK()
	got = e.lines("gate", "/var/run/lab/routes")
	if slices.Contains(got, "10.20.1.12/32 192.168.1.12") {
		t.Errorf("gate: the route of the removed jail app2 is still live: %q", got)
	}
	for _, w := range []string{"10.20.1.11/32 192.168.1.11", "10.20.2.12/32 192.168.1.12"} {
		if !slices.Contains(got, w) {
			t.Errorf("gate: route %q went away with app2's; routes: %q", w, got)
		}
	}
	if callIndex(e.calls("gate"), "route", "delete", "-inet", "10.20.1.12/32", "192.168.1.12") < 0 {
		t.Error("gate: no `route delete -inet 10.20.1.12/32 192.168.1.12` queued by delete_static_route")
	}
	e.converged()
}
