//go:build linux

package e2e

import (
	"bytes"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/arbo-project/arbo/internal/lab"
)

// TestFaults: connections cut mid-run, a run stopped between writing and
// activating, pf rules that lock SSH out, and two applies at once.
func TestFaults(t *testing.T) {
	t.Parallel()
	oldTopo := exampleTopology(t)
	newTopo := edit(t, oldTopo, "dist_ports: 9100-9115", "dist_ports: 9200-9215")
	e := newEnv(t, oldTopo, lab.WithBasejail())
	e.applyOK()
	oldDir, oldMachines := e.render()
	e.writeTopology(newTopo)
	newDir, _ := e.render()

	// versions maps each managed file of server1 to its old and new content.
	type versions struct{ old, new []byte }
	files := map[string]versions{}
	for _, m := range oldMachines {
		if m.Name != "server1" {
			continue
		}
		for _, f := range m.Files {
			o, err1 := os.ReadFile(filepath.Join(oldDir, f.Local))
			n, err2 := os.ReadFile(filepath.Join(newDir, f.Local))
			if err1 != nil || err2 != nil {
				t.Fatal(err1, err2)
			}
			files[f.Path] = versions{o, n}
		}
	}
	// oldOrNew checks every file of server1, and counts the new ones.
	oldOrNew := func(t *testing.T) (changed, total int) {
		t.Helper()
		for p, v := range files {
			if bytes.Equal(v.old, v.new) {
				continue
			}
			total++
			got, err := os.ReadFile(e.path("server1", p))
			switch {
			case err != nil:
				t.Errorf("server1: %s: %v", p, err)
			case bytes.Equal(got, v.new):
				changed++
			case !bytes.Equal(got, v.old):
				t.Errorf("server1: %s is neither the old nor the new version (%d bytes)", p, len(got))
			}
		}
		// pf's staged file, when a cut leaves it, is the whole new ruleset.
		if b, err := os.ReadFile(e.path("server1", "/etc/pf.conf.arbo-new")); err == nil && !bytes.Equal(b, files["/etc/pf.conf"].new) {
			t.Errorf("server1: /etc/pf.conf.arbo-new is not the new ruleset (%d bytes)", len(b))
		}
		return changed, total
	}

	t.Run("cut mid-upload", func(t *testing.T) {
		e := e.with(t)
		partial := 0
		for _, n := range cutPoints() {
			e.writeTopology(oldTopo)
			e.applyOK()
			e.writeTopology(newTopo)
			if err := e.lab.Machine("server1").CutAfterBytes(n); err != nil {
				t.Fatal(err)
			}
			r := e.run("apply", "--auto-approve", "--confirm-timeout", confirmTimeout, e.topo)
			changed, total := oldOrNew(t)
			t.Logf("cut after %d bytes: exit %d, %d of %d files new", n, r.code, changed, total)
			if r.code == 0 {
				// The run ended before the cut: the one-shot fault is still
				// armed, and a plan of server1 alone takes it.
				e.want(e.run("plan", "--host", "server1", e.topo), 1)
			}
			if r.code != 0 && changed > 0 && changed < total {
				partial++
			}
			// Whatever the cut left, a new apply converges.
			e.applyOK()
			if changed, total := oldOrNew(t); changed != total {
				t.Errorf("after the re-apply %d of %d files are new", changed, total)
			}
			e.converged()
			if t.Failed() {
				t.Log(r)
				return
			}
			if partial > 0 || r.code == 0 {
				break // a cut fell between two writes, or no later cut can
			}
		}
		if partial == 0 {
			t.Error("no cut fell between two file writes: the cut points prove nothing")
		}
	})

	t.Run("stopped between writing and activating", func(t *testing.T) {
		e := e.with(t)
		e.writeTopology(oldTopo)
		e.applyOK()
		oldPF := e.read("server1", "/etc/pf.conf")
		e.writeTopology(newTopo)
		m := e.lab.Machine("server1")
		if err := m.FailCommand("pfctl", "pfctl: injected failure"); err != nil {
			t.Fatal(err)
		}
		r := e.run("apply", "--auto-approve", "--confirm-timeout", confirmTimeout, e.topo)
		e.want(r, 1, "# server1: FAILED", "injected failure")
		if got := e.read("server1", "/etc/pf.conf"); got != oldPF {
			t.Error("/etc/pf.conf was promoted although pf never loaded it")
		}
		if got := e.read("server1", "/etc/pf.conf.arbo-new"); got != string(files["/etc/pf.conf"].new) {
			t.Error("the new rules are not staged")
		}
		if err := m.ClearFail("pfctl"); err != nil {
			t.Fatal(err)
		}
		// The next plan finishes the activation, and the next apply does.
		e.want(e.run("plan", "--detailed-exitcode", e.topo), 2, "reload pf /etc/pf.conf")
		e.applyOK()
		if got := e.read("server1", "/etc/pf.conf"); got != string(files["/etc/pf.conf"].new) {
			t.Error("/etc/pf.conf is not the new ruleset after the re-apply")
		}
		if e.exists("server1", "/etc/pf.conf.arbo-new") {
			t.Error("/etc/pf.conf.arbo-new left after the re-apply")
		}
		e.converged()
	})

	t.Run("lock-out rolled back, a second apply locked out", func(t *testing.T) {
		e := e.with(t)
		// An operator's pf template without the management SSH rule: the
		// rendered rules block inbound and pass nothing on port 22.
		tmpl, err := os.ReadFile("../templates/files/pf.conf.tmpl")
		if err != nil {
			t.Fatal(err)
		}
		mgmt := "{{- with .Management}}\n{{- range .Why}}\n# {{.}}\n{{- end}}\n{{.Text}}\n{{- end}}\n"
		tdir := filepath.Join(e.dir, "templates")
		if err := os.MkdirAll(tdir, 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(filepath.Join(tdir, "pf.conf.tmpl"), []byte(edit(t, string(tmpl), mgmt, "")), 0o644); err != nil {
			t.Fatal(err)
		}
		// plan and apply judge the rendered rules (ARBO010 would refuse
		// this template before any machine changes): accepted here, so that
		// the guard behind the check, the on-box rollback, is what is tested.
		e.writeTopology(newTopo + `
accept:
  - { id: ARBO010, reason: "e2e: the template drops the management rule on purpose, to prove the rollback" }
`)
		goodPF := e.read("server1", "/etc/pf.conf")
		vmArgs := e.read("server1", "/usr/jails/app1/usr/local/etc/arbo/vm.args")
		other := filepath.Join(e.dir, "other.yaml")
		if err := os.WriteFile(other, []byte(edit(t, newTopo, "dist_ports: 9200-9215", "dist_ports: 9300-9315")), 0o644); err != nil {
			t.Fatal(err)
		}

		// The first apply holds the locks while it waits for the rollback.
		first := e.start("apply", "--auto-approve", "--confirm-timeout", confirmTimeout, "--templates", tdir, e.topo)
		waitFor(t, func() bool { return e.exists("server2", "/var/db/arbo/lock") })
		second := e.run("apply", "--auto-approve", "--confirm-timeout", confirmTimeout, other)
		r := first.wait()
		e.want(second, 4, "locked by")
		e.want(r, 1, "would lock SSH out", "restored the previous rules")

		if got := e.read("server1", "/etc/pf.conf"); got != goodPF {
			t.Error("/etc/pf.conf is not the previous ruleset")
		}
		if got := e.read("server1", "/var/run/lab/pf.loaded"); got != goodPF {
			t.Error("the previous rules are not the loaded ones after the rollback")
		}
		if got := strings.TrimSpace(e.read("server1", "/var/run/lab/firewall")); got != "open" {
			t.Errorf("firewall verdict %q after the rollback", got)
		}
		if got := e.read("server1", "/usr/jails/app1/usr/local/etc/arbo/vm.args"); got != vmArgs {
			t.Error("the locked-out second apply changed vm.args")
		}
		for _, m := range e.machines() {
			if e.exists(m, "/var/db/arbo/lock") {
				t.Errorf("%s: a lock was left behind", m)
			}
		}
		// The operator still gets in, and arbo with the right template
		// has nothing to redo.
		e.converged()
	})
}

// started is an arbo run in the background.
type started struct {
	e   *env
	cmd *exec.Cmd
	out *bytes.Buffer
	err *bytes.Buffer
}

func (e *env) start(args ...string) *started {
	e.t.Helper()
	full := append([]string{args[0], "--ssh-config", e.lab.SSHConfig()}, args[1:]...)
	cmd := exec.Command(arboBin, full...)
	cmd.Dir, cmd.Env = e.dir, cleanEnv()
	s := &started{e: e, cmd: cmd, out: &bytes.Buffer{}, err: &bytes.Buffer{}}
	cmd.Stdout, cmd.Stderr = s.out, s.err
	if err := cmd.Start(); err != nil {
		e.t.Fatal(err)
	}
	e.t.Cleanup(func() {
		if cmd.ProcessState == nil {
			_ = cmd.Process.Kill()
			_ = cmd.Wait()
		}
	})
	return s
}

func (s *started) wait() result {
	err := s.cmd.Wait()
	r := result{args: s.cmd.Args[1:], stdout: s.out.String(), stderr: s.err.String()}
	if ee, ok := err.(*exec.ExitError); ok {
		r.code = ee.ExitCode()
	} else if err != nil {
		s.e.t.Fatal(err)
	}
	return r
}

// waitFor polls cond for up to 20 s.
func waitFor(t *testing.T, cond func() bool) {
	t.Helper()
	for deadline := time.Now().Add(20 * time.Second); time.Now().Before(deadline); time.Sleep(20 * time.Millisecond) {
		if cond() {
			return
		}
	}
	t.Fatal(fmt.Errorf("timed out waiting"))
}

// cutPoints are bytes let through to server1 before the cut: a sweep from
// the reads of the plan to past the last write, since the exact counts
// move with every change to what arbo sends.
func cutPoints() []int64 {
	var out []int64
	for n := int64(16 << 10); n <= 96<<10; n += 3 << 10 {
		out = append(out, n)
	}
	return out
}
