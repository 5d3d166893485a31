//go:build linux

package emu

import (
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"
)

func TestDaemonDetaches(t *testing.T) {
	l := newLab(t, "")
	marker := filepath.Join(l.root, "marker")
	l.must("daemon", "-f", "-p", "/var/run/job.pid", "sh", "-c", "sleep 1; echo done > "+marker+"; sleep 30")
	b, err := os.ReadFile(l.path("/var/run/job.pid"))
	if err != nil {
		t.Fatalf("pidfile: %v", err)
	}
	pid, err := strconv.Atoi(strings.TrimSpace(string(b)))
	if err != nil {
		t.Fatal(err)
	}
	defer syscall.Kill(pid, syscall.SIGKILL)
	// Main has returned; the child keeps running in its own session.
	if sid, err := getsid(pid); err != nil || sid != pid {
		t.Errorf("child session id %d (err %v), want its own (%d)", sid, err, pid)
	}
	deadline := time.Now().Add(10 * time.Second)
	for !exists(marker) && time.Now().Before(deadline) {
		time.Sleep(50 * time.Millisecond)
	}
	if !exists(marker) {
		t.Fatal("the detached child did not run after Main returned")
	}
	if err := syscall.Kill(pid, 0); err != nil {
		t.Errorf("child not alive: %v", err)
	}
}

// getsid reads the session id from /proc (Linux) so the test needs no cgo.
func getsid(pid int) (int, error) {
	b, err := os.ReadFile("/proc/" + strconv.Itoa(pid) + "/stat")
	if err != nil {
		return 0, err
	}
	s := string(b)
	f := strings.Fields(s[strings.LastIndexByte(s, ')')+2:])
	return strconv.Atoi(f[3]) // state ppid pgrp session
}
