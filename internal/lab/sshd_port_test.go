//go:build linux

package lab

import (
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
)

// TestSSHDTakesAnotherPort: the port chosen for sshd is taken by someone
// else before sshd binds it (the race a busy CI box runs into): sshd must
// come up on another port rather than fail the lab.
func TestSSHDTakesAnotherPort(t *testing.T) {
	if err := Requirements(); err != nil {
		if os.Getenv("CI") == "true" {
			t.Fatal(err)
		}
		t.Skip(err)
	}
	state := t.TempDir()
	if _, err := newKey(filepath.Join(state, hostKeyName), "root@porttest"); err != nil {
		t.Fatal(err)
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	busy := ln.Addr().(*net.TCPAddr).Port
	m := &machineState{Name: "porttest", Kind: kindHost, State: state, Root: "/", SSHDPort: busy}
	if err := startSSHDOnFreePort(m, filepath.Join(state, "authorized_keys"), false); err != nil {
		t.Fatalf("sshd did not come up on another port: %v", err)
	}
	defer stopSSHDAndSessions(m)
	if m.SSHDPort == busy {
		t.Fatalf("sshd claims the taken port %d", busy)
	}
	c, err := net.Dial("tcp", fmt.Sprintf("127.0.0.1:%d", m.SSHDPort))
	if err != nil {
		t.Fatalf("nothing listens on the new port %d: %v", m.SSHDPort, err)
	}
	c.Close()
	// The first attempt really met the taken port (the test proves the retry).
	if log, _ := os.ReadFile(m.sshdLogPath()); !strings.Contains(string(log), "Address already in use") {
		t.Fatalf("sshd's log does not show the lost bind:\n%s", log)
	}
}

// running is the startup check: true for a live process whatever its
// command line says (between fork and exec it is still the parent's), false
// once the process has exited.
func TestRunning(t *testing.T) {
	if !running(os.Getpid()) {
		t.Fatal("this process is not running?")
	}
	if alive(os.Getpid(), "no such mark in this command line") {
		t.Fatal("alive ignores its mark")
	}
	cmd := exec.Command("true")
	if err := cmd.Run(); err != nil {
		t.Fatal(err)
	}
	if running(cmd.Process.Pid) {
		t.Fatal("an exited, reaped process counts as running")
	}
}
