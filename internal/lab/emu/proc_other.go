//go:build !unix

package emu

import (
	"os"
	"os/exec"
)

func chrootInto(c *exec.Cmd, root string) bool { return false }

func detach(c *exec.Cmd) {}

type statInfo struct{ uid, gid, mode, ino, nlink uint64 }

func statSys(fi os.FileInfo) statInfo { return statInfo{mode: uint64(fi.Mode().Perm())} }
