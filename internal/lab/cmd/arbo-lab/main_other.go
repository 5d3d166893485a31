//go:build !linux

package main

import (
	"fmt"
	"os"
)

// The lab needs Linux (chroot, loopback addresses, OpenSSH as packaged by
// Debian); elsewhere the command only says so.
func main() {
	fmt.Fprintln(os.Stderr, "arbo-lab: the lab runs on Linux only (see docs/lab.md)")
	os.Exit(1)
}
