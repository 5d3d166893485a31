//go:build !unix

package emu

import "os/exec"

func chrootInto(c *exec.Cmd, root string) bool { return false }

func detach(c *exec.Cmd) {}
