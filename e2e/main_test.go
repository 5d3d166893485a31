//go:build linux

// Package e2e runs the arbo binary against the lab (internal/lab): real
// OpenSSH servers in front of chroot machines whose FreeBSD and pfSense
// commands are emulated. Each test builds its own lab, so that the state one
// test leaves never explains another's result; the steps inside a test run in
// order on purpose, each starting from the state the previous one left.
package e2e

import (
	"bytes"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/arbo-project/arbo/internal/lab"
	"github.com/arbo-project/arbo/internal/lab/emu"
	"github.com/arbo-project/arbo/inventory"
)

// arboBin is the arbo binary TestMain builds: the tests run what users run.
var arboBin string

func TestMain(m *testing.M) {
	dir, err := os.MkdirTemp("", "arbo-e2e-")
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
	arboBin = filepath.Join(dir, "arbo")
	build := exec.Command("go", "build", "-o", arboBin, "github.com/arbo-project/arbo/cmd/arbo")
	if out, err := build.CombinedOutput(); err != nil {
		fmt.Fprintf(os.Stderr, "build arbo: %v\n%s", err, out)
		os.RemoveAll(dir)
		os.Exit(1)
	}
	code := m.Run()
	os.RemoveAll(dir)
	os.Exit(code)
}

// confirmTimeout keeps the pf rollback timer short: a test that makes arbo
// wait for it then takes seconds, not a minute. It must outlast the
// gateway's guarded load (pfSense's own PHP reloads in about two seconds,
// then arbo reads back, checks the loaded rules and proves a new SSH
// connection): a confirmation that comes less than two seconds before the
// deadline is refused (plan/guard.go), where it used to race the guard.
const confirmTimeout = "6s"

// env is one lab with a topology of its own beside a cookie.
type env struct {
	t      *testing.T
	dir    string // holds topology.yaml and secrets/
	topo   string
	cookie string
	lab    *lab.Lab
	c      *inventory.Cluster
}

// exampleTopology is the Arboreus example, the topology users start from.
func exampleTopology(t *testing.T) string {
	t.Helper()
	b, err := os.ReadFile("../examples/arboreus/topology.yaml")
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}

// edit replaces old by new in s, and fails when old is not there: an edit
// that silently does nothing would make a test prove nothing.
func edit(t *testing.T, s, old, new string) string {
	t.Helper()
	if !strings.Contains(s, old) {
		t.Fatalf("topology edit: %q not found", old)
	}
	return strings.Replace(s, old, new, 1)
}

// newEnv writes the topology and a fresh cookie to a temporary directory and
// starts a lab for it.
func newEnv(t *testing.T, topology string, opts ...lab.Option) *env {
	t.Helper()
	e := &env{t: t, dir: t.TempDir()}
	e.topo = filepath.Join(e.dir, "topology.yaml")
	e.writeTopology(topology)
	b := make([]byte, 32)
	if _, err := rand.Read(b); err != nil {
		t.Fatal(err)
	}
	e.cookie = hex.EncodeToString(b)
	if err := os.MkdirAll(filepath.Join(e.dir, "secrets"), 0o700); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(e.dir, "secrets", "erlang.cookie"), []byte(e.cookie+"\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	c, err := inventory.Load(e.topo)
	if err != nil {
		t.Fatal(err)
	}
	e.c = c
	e.lab = lab.Start(t, c, opts...)
	return e
}

// with returns the env for a subtest: its helpers must fail the subtest,
// not the parent.
func (e *env) with(t *testing.T) *env {
	c := *e
	c.t = t
	return &c
}

func (e *env) writeTopology(s string) {
	e.t.Helper()
	if err := os.WriteFile(e.topo, []byte(s), 0o644); err != nil {
		e.t.Fatal(err)
	}
}

// result is one run of arbo.
type result struct {
	args   []string
	code   int
	stdout string
	stderr string
}

func (r result) String() string {
	return fmt.Sprintf("arbo %s: exit %d\n--- stdout\n%s--- stderr\n%s", strings.Join(r.args, " "), r.code, r.stdout, r.stderr)
}

// run runs arbo in the topology's directory with the lab's ssh_config.
func (e *env) run(args ...string) result {
	e.t.Helper()
	return e.runWith(e.lab.SSHConfig(), args...)
}

// runWith runs arbo with this ssh_config ("" = none); the verb comes first.
func (e *env) runWith(sshConfig string, args ...string) result {
	e.t.Helper()
	full := args
	if sshConfig != "" && len(args) > 0 && (args[0] == "plan" || args[0] == "apply" || args[0] == "verify" || args[0] == "check" && slices.Contains(args, "--live")) {
		full = append([]string{args[0], "--ssh-config", sshConfig}, args[1:]...)
	}
	cmd := exec.Command(arboBin, full...)
	cmd.Dir = e.dir
	cmd.Env = cleanEnv()
	var out, errb bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &errb
	err := cmd.Run()
	r := result{args: full, stdout: out.String(), stderr: errb.String()}
	var ee *exec.ExitError
	switch {
	case errors.As(err, &ee):
		r.code = ee.ExitCode()
	case err != nil:
		e.t.Fatalf("arbo %v: %v", full, err)
	}
	e.t.Logf("arbo %s: exit %d", strings.Join(full, " "), r.code)
	return r
}

// cleanEnv is the environment without an ssh-agent or colours: the lab's
// key file is the only identity, and output is plain text.
func cleanEnv() []string {
	var out []string
	for _, kv := range os.Environ() {
		if strings.HasPrefix(kv, "SSH_AUTH_SOCK=") {
			continue
		}
		out = append(out, kv)
	}
	return append(out, "NO_COLOR=1")
}

// want fails the test unless arbo exited with code and its output has every
// string of contains.
func (e *env) want(r result, code int, contains ...string) {
	e.t.Helper()
	if r.code != code {
		e.t.Fatalf("want exit %d\n%s", code, r)
	}
	for _, s := range contains {
		if !strings.Contains(r.stdout+r.stderr, s) {
			e.t.Fatalf("output lacks %q\n%s", s, r)
		}
	}
}

// applyOK applies the topology and fails the test unless it succeeds.
func (e *env) applyOK(extra ...string) result {
	e.t.Helper()
	r := e.run(append([]string{"apply", "--auto-approve", "--confirm-timeout", confirmTimeout}, append(extra, e.topo)...)...)
	e.want(r, 0)
	return r
}

// converged fails the test unless a plan finds nothing to do.
func (e *env) converged() {
	e.t.Helper()
	r := e.run("plan", "--detailed-exitcode", e.topo)
	e.want(r, 0, "No changes.")
}

// path is a machine path on this box.
func (e *env) path(machine, p string) string {
	m := e.lab.Machine(machine)
	if m == nil {
		e.t.Fatalf("no machine %s in the lab", machine)
	}
	return filepath.Join(m.Root, filepath.Clean("/"+p))
}

func (e *env) read(machine, p string) string {
	e.t.Helper()
	b, err := os.ReadFile(e.path(machine, p))
	if err != nil {
		e.t.Fatal(err)
	}
	return string(b)
}

func (e *env) exists(machine, p string) bool {
	_, err := os.Lstat(e.path(machine, p))
	return !errors.Is(err, fs.ErrNotExist)
}

// calls returns the emulated commands run on a machine.
func (e *env) calls(machine string) []emu.Call {
	e.t.Helper()
	cs, err := e.lab.Machine(machine).Calls()
	if err != nil {
		e.t.Fatal(err)
	}
	return cs
}

// machines lists the lab's machine names, hosts then the gateway.
func (e *env) machines() []string { return e.c.Machines() }

// snapshot is every regular file under a machine root, by path, with its
// content, mode and modification time: what "nothing changed" compares.
func snapshot(t *testing.T, root string) map[string]string {
	t.Helper()
	out := map[string]string{}
	err := filepath.WalkDir(root, func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		rel := strings.TrimPrefix(p, root)
		// The emulator's own runtime state and logs are not the machine's files.
		if rel == emu.CallsLog || strings.HasPrefix(rel, emu.StateDir+"/") || strings.HasPrefix(rel, "/dev/") || strings.HasPrefix(rel, "/proc/") {
			if d.IsDir() {
				return fs.SkipDir
			}
			return nil
		}
		if d.Type()&fs.ModeSymlink != 0 {
			target, _ := os.Readlink(p)
			out[rel] = "-> " + target
			return nil
		}
		if !d.Type().IsRegular() {
			return nil
		}
		// A commit-confirmed guard of an earlier apply sleeps out its timeout
		// in the background and may then write its state file: timer state
		// that changes by design, not a file an apply or a refusal touched.
		if strings.HasPrefix(rel, "/var/db/arbo/pf-guard") || strings.HasPrefix(rel, "/var/db/arbo/config-guard") {
			return nil
		}
		fi, err := d.Info()
		if err != nil {
			return err
		}
		b, err := os.ReadFile(p)
		if err != nil {
			return err
		}
		out[rel] = fmt.Sprintf("%v %s %x", fi.Mode(), fi.ModTime().Format(time.RFC3339Nano), b)
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	return out
}

// sameFiles fails unless two snapshots are equal, naming the differences.
func sameFiles(t *testing.T, machine string, before, after map[string]string) {
	t.Helper()
	for p, b := range before {
		a, ok := after[p]
		switch {
		case !ok:
			t.Errorf("%s: %s was removed", machine, p)
		case a != b:
			t.Errorf("%s: %s changed", machine, p)
		}
	}
	for p := range after {
		if _, ok := before[p]; !ok {
			t.Errorf("%s: %s was created", machine, p)
		}
	}
}

type emuCall = emu.Call

func containsAll(s string, subs ...string) bool {
	for _, sub := range subs {
		if !strings.Contains(s, sub) {
			return false
		}
	}
	return true
}
