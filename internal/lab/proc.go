//go:build linux

package lab

import (
	"bytes"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"time"
)

var execCommand = exec.Command

// startDetached starts a process in a session of its own, so that it
// outlives the command that started it (arbo-lab up returns; sshd and the
// proxy keep running) and a Ctrl-C in that terminal does not reach it. The
// process is reaped in the background while this process lives.
func startDetached(cmd *exec.Cmd, logPath string) (int, error) {
	logf, err := os.OpenFile(logPath, os.O_WRONLY|os.O_CREATE|os.O_APPEND, 0o644)
	if err != nil {
		return 0, fmt.Errorf("start %s: %w", cmd.Path, err)
	}
	defer logf.Close()
	cmd.Stdout, cmd.Stderr = logf, logf
	cmd.SysProcAttr = &syscall.SysProcAttr{Setsid: true}
	if err := cmd.Start(); err != nil {
		return 0, fmt.Errorf("start %s: %w", cmd.Path, err)
	}
	go func() { _ = cmd.Wait() }()
	return cmd.Process.Pid, nil
}

// running reports whether pid exists and is not a zombie. It is the check
// for a child the lab just started: between fork and exec the child's
// command line is still the parent's, so alive's mark would not match yet.
func running(pid int) bool {
	if pid <= 0 {
		return false
	}
	stat, err := os.ReadFile("/proc/" + strconv.Itoa(pid) + "/stat")
	if err != nil {
		return false
	}
	i := bytes.LastIndexByte(stat, ')')
	return !(i >= 0 && i+2 < len(stat) && stat[i+2] == 'Z')
}

// alive reports whether pid runs (a zombie does not count) and its command
// line contains mark, so that a recycled pid is never taken for ours.
func alive(pid int, mark string) bool {
	if !running(pid) {
		return false
	}
	cmdline, err := os.ReadFile("/proc/" + strconv.Itoa(pid) + "/cmdline")
	if err != nil {
		return false
	}
	return bytes.Contains(cmdline, []byte(mark))
}

// stop ends pid if it is still ours: SIGTERM, then SIGKILL after a grace
// period. It returns once the process is gone.
func stop(pid int, mark string) error {
	if !alive(pid, mark) {
		return nil
	}
	_ = syscall.Kill(pid, syscall.SIGTERM)
	deadline := time.Now().Add(3 * time.Second)
	for alive(pid, mark) {
		if time.Now().After(deadline) {
			_ = syscall.Kill(pid, syscall.SIGKILL)
			deadline = time.Now().Add(3 * time.Second)
		}
		time.Sleep(10 * time.Millisecond)
	}
	return nil
}

// killUnder ends every process whose root directory lies under dir (shells
// and sessions chrooted into a machine) and the sshd session processes
// above them, which outlive their listener when it is stopped.
func killUnder(dir string) {
	dir = filepath.Clean(dir) + "/"
	for round := 0; round < 50; round++ {
		found := false
		ents, _ := os.ReadDir("/proc")
		for _, e := range ents {
			pid, err := strconv.Atoi(e.Name())
			if err != nil || pid == os.Getpid() {
				continue
			}
			root, err := os.Readlink("/proc/" + e.Name() + "/root")
			if err != nil || !strings.HasPrefix(root+"/", dir) {
				continue
			}
			if !alive(pid, "") {
				continue
			}
			found = true
			if pp := parent(pid); pp > 1 && alive(pp, "sshd:") {
				_ = syscall.Kill(pp, syscall.SIGKILL)
			}
			_ = syscall.Kill(pid, syscall.SIGKILL)
		}
		if !found {
			return
		}
		time.Sleep(20 * time.Millisecond)
	}
}

func parent(pid int) int {
	stat, err := os.ReadFile("/proc/" + strconv.Itoa(pid) + "/stat")
	if err != nil {
		return 0
	}
	i := bytes.LastIndexByte(stat, ')')
	if i < 0 {
		return 0
	}
	f := strings.Fields(string(stat[i+1:]))
	if len(f) < 2 {
		return 0
	}
	pp, _ := strconv.Atoi(f[1])
	return pp
}

// children lists the processes whose parent is pid.
func children(pid int) []int {
	var out []int
	ents, _ := os.ReadDir("/proc")
	for _, e := range ents {
		c, err := strconv.Atoi(e.Name())
		if err != nil {
			continue
		}
		if parent(c) == pid {
			out = append(out, c)
		}
	}
	return out
}
