//go:build unix

package emu

import (
	"os"
	"os/exec"
	"syscall"
)

// chrootInto makes c run chrooted into root when we may (euid 0).
func chrootInto(c *exec.Cmd, root string) bool {
	if os.Geteuid() != 0 {
		return false
	}
	if c.SysProcAttr == nil {
		c.SysProcAttr = &syscall.SysProcAttr{}
	}
	c.SysProcAttr.Chroot = root
	return true
}

// detach puts c in a new session, so that it survives the SSH session's
// hangup, as daemon(8) does with setsid(2).
func detach(c *exec.Cmd) {
	if c.SysProcAttr == nil {
		c.SysProcAttr = &syscall.SysProcAttr{}
	}
	c.SysProcAttr.Setsid = true
}

// statInfo is what stat(1)'s fields need from a file's inode.
type statInfo struct{ uid, gid, mode, ino, nlink uint64 }

func statSys(fi os.FileInfo) statInfo {
	st, ok := fi.Sys().(*syscall.Stat_t)
	if !ok {
		return statInfo{mode: uint64(fi.Mode().Perm())}
	}
	return statInfo{uid: uint64(st.Uid), gid: uint64(st.Gid), mode: uint64(st.Mode), ino: uint64(st.Ino), nlink: uint64(st.Nlink)}
}
