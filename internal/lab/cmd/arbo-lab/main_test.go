//go:build linux

package main

import (
	"bytes"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/arbo-project/arbo/internal/lab"
)

func TestParseSize(t *testing.T) {
	for _, tc := range []struct {
		in   string
		want int64
		bad  bool
	}{
		{"100", 100, false}, {"64k", 64 << 10, false}, {"2M", 2 << 20, false},
		{"1G", 1 << 30, false}, {"3KiB", 3 << 10, false}, {"x", 0, true}, {"-1", 0, true}, {"", 0, true},
	} {
		got, err := parseSize(tc.in)
		if (err != nil) != tc.bad || got != tc.want {
			t.Errorf("parseSize(%q) = %d, %v; want %d, bad %v", tc.in, got, err, tc.want, tc.bad)
		}
	}
}

// TestCLI drives the built command as a person would: up, a fault, down.
// The proxies then run in a detached process that outlives `up`.
func TestCLI(t *testing.T) {
	if err := lab.Requirements(); err != nil {
		if os.Getenv("CI") == "true" {
			t.Fatal(err)
		}
		t.Skip(err)
	}
	bin := t.TempDir()
	for _, b := range [][]string{
		{"go", "build", "-o", filepath.Join(bin, "arbo-lab"), "."},
		{"go", "build", "-o", filepath.Join(bin, "lab-emu"), "../lab-emu"},
	} {
		cmd := exec.Command(b[0], b[1:]...)
		cmd.Env = append(os.Environ(), "CGO_ENABLED=0")
		if out, err := cmd.CombinedOutput(); err != nil {
			t.Fatalf("%v: %v\n%s", b, err, out)
		}
	}
	dir := t.TempDir()
	run := func(args ...string) (string, error) {
		cmd := exec.Command(filepath.Join(bin, "arbo-lab"), args...)
		out, err := cmd.CombinedOutput()
		return string(out), err
	}
	t.Cleanup(func() { _, _ = run("down", "--dir", dir) })
	if out, err := run("up", "../../../../examples/arboreus/topology.yaml", "--dir", dir, "--emu", filepath.Join(bin, "lab-emu")); err != nil {
		t.Fatalf("up: %v\n%s", err, out)
	}
	l, err := lab.Open(dir)
	if err != nil {
		t.Fatal(err)
	}
	ssh := func(args ...string) (string, error) {
		cmd := exec.Command("ssh", append([]string{"-F", filepath.Join(dir, "ssh_config"), "-o", "BatchMode=yes"}, args...)...)
		cmd.Env = append(os.Environ(), "HOME="+dir)
		var o, e bytes.Buffer
		cmd.Stdout, cmd.Stderr = &o, &e
		err := cmd.Run()
		return o.String() + e.String(), err
	}
	if out, err := ssh("192.168.1.11", "uname"); err != nil || out != "FreeBSD\n" {
		t.Fatalf("ssh after up returned: %q, %v", out, err)
	}
	if out, err := run("fault", "firewall", "blocked", "--dir", dir, "server1"); err != nil {
		t.Fatalf("fault firewall: %v\n%s", err, out)
	}
	if _, err := ssh("192.168.1.11", "true"); err == nil {
		t.Errorf("connected through a blocked firewall")
	}
	if out, err := run("fault", "firewall", "open", "--dir", dir, "server1"); err != nil {
		t.Fatalf("fault firewall: %v\n%s", err, out)
	}
	// cut goes through the proxy process's control socket.
	sess := exec.Command("ssh", "-F", filepath.Join(dir, "ssh_config"), "-o", "BatchMode=yes", "192.168.1.12", "echo started; sleep 30")
	sess.Env = append(os.Environ(), "HOME="+dir)
	stdout, err := sess.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := sess.Start(); err != nil {
		t.Fatal(err)
	}
	if _, err := stdout.Read(make([]byte, 8)); err != nil {
		t.Fatalf("session did not start: %v", err)
	}
	if out, err := run("fault", "cut", "--dir", dir, "server2"); err != nil {
		t.Fatalf("fault cut: %v\n%s", err, out)
	}
	waited := make(chan error, 1)
	go func() { waited <- sess.Wait() }()
	select {
	case err := <-waited:
		if err == nil {
			t.Errorf("ssh session ended well after a cut")
		}
	case <-time.After(10 * time.Second):
		_ = sess.Process.Kill()
		t.Errorf("ssh session survived a cut")
	}
	if out, err := run("fault", "stop-sshd", "--dir", dir, "gate"); err != nil {
		t.Fatalf("fault stop-sshd: %v\n%s", err, out)
	}
	if _, err := ssh("192.168.1.1", "true"); err == nil {
		t.Errorf("connected to a stopped sshd")
	}
	if out, err := run("fault", "start-sshd", "--dir", dir, "gate"); err != nil {
		t.Fatalf("fault start-sshd: %v\n%s", err, out)
	}
	if out, err := ssh("192.168.1.1", "true"); err != nil {
		t.Errorf("after start-sshd: %v\n%s", err, out)
	}
	if out, err := run("fault", "bogus", "--dir", dir, "gate"); err == nil {
		t.Errorf("unknown fault accepted: %s", out)
	}

	var addrs []string
	for _, m := range l.Machines() {
		addrs = append(addrs, m.Addr.String())
	}
	if out, err := run("down", "--dir", dir); err != nil {
		t.Fatalf("down: %v\n%s", err, out)
	}
	for _, a := range addrs {
		if c, err := net.DialTimeout("tcp", a, time.Second); err == nil {
			c.Close()
			t.Errorf("%s still listens after down", a)
		}
	}
	for _, m := range l.Machines() {
		if _, err := os.Stat(m.Root); !os.IsNotExist(err) {
			t.Errorf("root %s still there: %v", m.Root, err)
		}
	}
	if out, err := run("down", "--dir", dir); err != nil {
		t.Errorf("second down: %v\n%s", err, out)
	}
	if out, err := run("up", "nonexistent.yaml", "--dir", t.TempDir()); err == nil || !strings.Contains(out, "nonexistent.yaml") {
		t.Errorf("up with a missing topology: %v\n%s", err, out)
	}
}
