//go:build linux

package e2e

import (
	"crypto/sha256"
	"encoding/hex"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/arbo-project/arbo/internal/lab"
)

// TestLifecycle runs one cluster through what happens after the first
// apply: drift, saved plans, secrets in every output, symlinks planted in
// jail roots, and removing a data jail. The steps run in order, each on
// the state the previous one left.
func TestLifecycle(t *testing.T) {
	t.Parallel()
	e := newEnv(t, exampleTopology(t), lab.WithBasejail())
	var outputs []result // everything arbo printed, for the secrets check

	// Outputs of a plan that creates the cookie files: if it leaked
	// anywhere, it would be here.
	r := e.run("plan", "--format", "json", e.topo)
	e.want(r, 0, `"sensitive": true`)
	outputs = append(outputs, r)
	first := filepath.Join(e.dir, "first-plan.json")
	r = e.run("plan", "--out", first, e.topo)
	e.want(r, 0, "(sensitive)")
	outputs = append(outputs, r)
	outputs = append(outputs, e.applyOK())

	t.Run("drift", func(t *testing.T) {
		e := e.with(t)
		const rc = "/etc/rc.conf.local"
		good := e.read("server1", rc)
		if err := os.WriteFile(e.path("server1", rc), []byte(good+"sshd_enable=\"NO\"\n"), 0o644); err != nil {
			t.Fatal(err)
		}
		r := e.run("plan", "--detailed-exitcode", e.topo)
		e.want(r, 2, "server1", "update file "+rc, `-sshd_enable="NO"`)
		if strings.Contains(r.stdout, "# server2") {
			t.Errorf("only server1 drifted, the plan shows server2:\n%s", r)
		}
		outputs = append(outputs, r, e.applyOK())
		if got := e.read("server1", rc); got != good {
			t.Errorf("apply did not repair %s:\n%s", rc, got)
		}
		e.converged()
	})

	t.Run("saved plans", func(t *testing.T) {
		e := e.with(t)
		const rc = "/etc/rc.conf.local"
		good := e.read("server2", rc)
		drift := func(s string) {
			if err := os.WriteFile(e.path("server2", rc), []byte(good+s), 0o644); err != nil {
				t.Fatal(err)
			}
		}
		drift("# one\n")
		// A plan file is known by its content, not its name.
		saved := filepath.Join(e.dir, "whatever.txt")
		r := e.run("plan", "--out", saved, e.topo)
		e.want(r, 0, "# one", "arbo apply "+saved)
		outputs = append(outputs, r)
		show := e.runWith("", "show", saved)
		e.want(show, 0)
		planText, _, _ := strings.Cut(r.stdout, "\nSaved the plan to")
		if strings.TrimSpace(show.stdout) != strings.TrimSpace(planText) {
			t.Errorf("show does not print the plan as plan did:\n--- plan\n%s\n--- show\n%s", planText, show.stdout)
		}

		// The machine changes after the plan: the plan is refused.
		drift("# two\n")
		before := e.snapshotAll()
		r = e.run("apply", "--confirm-timeout", confirmTimeout, saved)
		e.want(r, 1, "stale", rc)
		e.unchangedSince(before)
		outputs = append(outputs, r)

		// Unchanged since the plan: applied exactly.
		r = e.run("plan", "--out", saved, e.topo)
		e.want(r, 0, "# two")
		r = e.run("apply", "--confirm-timeout", confirmTimeout, saved)
		e.want(r, 0)
		outputs = append(outputs, r)
		if got := e.read("server2", rc); got != good {
			t.Errorf("the saved plan did not repair %s", rc)
		}
		e.converged()

		// A topology changed since the plan is stale too.
		e.want(e.run("plan", "--out", saved, e.topo), 0)
		top, _ := os.ReadFile(e.topo)
		e.writeTopology(string(top) + "\n# edited\n")
		e.want(e.run("apply", saved), 1, "stale")
		e.writeTopology(string(top))

		// A saved plan that changes the gateway, applied more than a second
		// later: config.xml's <revision> carries the plan's time, so the
		// re-render under the locks gives the reviewed bytes (it used to
		// carry the apply's clock, and every such plan was "stale").
		e.writeTopology(edit(t, string(top), "{ proto: tcp, port: 443, to: app, to_port: 8443 }", "{ proto: tcp, port: 4443, to: app, to_port: 8443 }"))
		e.want(e.run("plan", "--out", saved, e.topo), 0, "update file /cf/conf/config.xml")
		time.Sleep(1100 * time.Millisecond)
		e.want(e.run("apply", "--confirm-timeout", confirmTimeout, saved), 0, "Apply complete")
		if !strings.Contains(e.read("gate", "/cf/conf/config.xml"), "<port>4443</port>") {
			t.Error("the saved plan's gateway change is not in config.xml")
		}
		e.converged()
		e.writeTopology(string(top))
		e.applyOK()
	})

	t.Run("symlink in a jail root", func(t *testing.T) {
		e := e.with(t)
		// The jail's resolv.conf becomes a link to a host file, as a
		// compromised jail could make it.
		const inJail = "/usr/jails/app1/etc/resolv.conf"
		hostFile := e.read("server1", "/etc/rc.conf")
		if err := os.Remove(e.path("server1", inJail)); err != nil {
			t.Fatal(err)
		}
		if err := os.Symlink("/etc/rc.conf", e.path("server1", inJail)); err != nil {
			t.Fatal(err)
		}
		r := e.run("plan", "--detailed-exitcode", e.topo)
		e.want(r, 1, inJail, "symlink")
		r = e.run("apply", "--auto-approve", "--confirm-timeout", confirmTimeout, e.topo)
		e.want(r, 1, "symlink")
		if got := e.read("server1", "/etc/rc.conf"); got != hostFile {
			t.Errorf("the host's /etc/rc.conf was written through the jail's symlink")
		}

		// A symlinked directory above the file: the file itself is no
		// link, so only apply's walk of every component can refuse it.
		os.Remove(e.path("server1", inJail))
		etc := e.path("server1", "/usr/jails/app1/etc")
		if err := os.Rename(etc, etc+".real"); err != nil {
			t.Fatal(err)
		}
		if err := os.Symlink("/etc", etc); err != nil {
			t.Fatal(err)
		}
		hostEtc := snapshot(t, e.path("server1", "/etc"))
		r = e.run("apply", "--auto-approve", "--confirm-timeout", confirmTimeout, e.topo)
		e.want(r, 1, "symlink")
		sameFiles(t, "server1 /etc", hostEtc, snapshot(t, e.path("server1", "/etc")))

		// Take the links away: arbo puts its files back.
		if err := os.Remove(etc); err != nil {
			t.Fatal(err)
		}
		if err := os.Rename(etc+".real", etc); err != nil {
			t.Fatal(err)
		}
		e.applyOK()
		if fi, err := os.Lstat(e.path("server1", inJail)); err != nil || !fi.Mode().IsRegular() {
			t.Errorf("%s is not a regular file again: %v", inJail, err)
		}
		e.converged()
	})

	t.Run("destroy", func(t *testing.T) {
		e := e.with(t)
		top := exampleTopology(t)
		e.writeTopology(edit(t, top, "      - { name: db1,  tier: data, ip: 10.20.2.11 }\n", ""))
		r := e.run("plan", "--detailed-exitcode", e.topo)
		e.want(r, 2, "archive jail db1", "--allow-destroy")
		if strings.Contains(r.stdout, "destroy jail db1") {
			t.Errorf("a data jail is destroyed without --allow-destroy:\n%s", r)
		}
		e.applyOK()
		if !e.exists("server1", "/usr/jails/db1") {
			t.Error("the data jail's root was deleted without --allow-destroy")
		}
		if e.exists("server1", "/var/run/lab/jails/db1") {
			t.Error("the removed jail still runs")
		}
		archives, _ := filepath.Glob(e.path("server1", "/usr/jails/ezjail_archives/db1-*.tar.gz"))
		if len(archives) != 1 {
			t.Errorf("want one archive of db1, have %v", archives)
		}
		// Kept, but never started again at boot: ezjail's norun config.
		if e.exists("server1", "/usr/local/etc/ezjail/db1") || !e.exists("server1", "/usr/local/etc/ezjail/db1.norun") {
			t.Error("the retired data jail is still runnable at boot (want ezjail config -r norun)")
		}
		e.converged() // retired: not archived again

		r = e.run("plan", "--detailed-exitcode", "--allow-destroy", e.topo)
		e.want(r, 2, "destroy jail db1")
		e.applyOK("--allow-destroy")
		if e.exists("server1", "/usr/jails/db1") {
			t.Error("--allow-destroy left the data jail's root")
		}
		if e.exists("server1", "/usr/local/etc/ezjail/db1") {
			t.Error("--allow-destroy left the data jail's ezjail config")
		}
		e.converged()
	})

	t.Run("secrets", func(t *testing.T) {
		e := e.with(t)
		// Nor the cookie's digest: a saved plan is an archived artifact, and
		// a weak cookie could be guessed from its sha256 offline.
		sum := sha256.Sum256([]byte(e.cookie))
		digest := hex.EncodeToString(sum[:])
		for _, r := range outputs {
			if strings.Contains(r.stdout+r.stderr, e.cookie) {
				t.Errorf("the cookie is in the output of arbo %s", strings.Join(r.args, " "))
			}
			if strings.Contains(r.stdout+r.stderr, digest) {
				t.Errorf("the cookie's sha256 is in the output of arbo %s", strings.Join(r.args, " "))
			}
		}
		files, _ := filepath.Glob(filepath.Join(e.dir, "*"))
		for _, f := range files {
			if b, err := os.ReadFile(f); err == nil && strings.Contains(string(b), e.cookie) {
				t.Errorf("the cookie is in %s", f)
			} else if err == nil && strings.Contains(string(b), digest) {
				t.Errorf("the cookie's sha256 is in %s", f)
			}
		}
		for _, m := range e.machines() {
			for _, c := range e.calls(m) {
				if strings.Contains(strings.Join(c.Argv, " "), e.cookie) {
					t.Errorf("%s: the cookie is on a command line: %v", m, c.Argv)
				}
			}
			if strings.Contains(e.lab.Machine(m).SSHDLog(), e.cookie) {
				t.Errorf("%s: the cookie is in sshd's log", m)
			}
			if strings.Contains(e.read(m, "/var/db/arbo/manifest.json"), e.cookie) {
				t.Errorf("%s: the cookie is in arbo's manifest", m)
			}
		}
		// The cookie did reach the jails (else this test proves nothing).
		if !strings.Contains(e.read("server1", "/usr/jails/app1/root/.erlang.cookie"), e.cookie) {
			t.Error("the cookie file in app1 does not hold the cookie")
		}
	})
}
