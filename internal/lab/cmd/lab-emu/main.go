// Command lab-emu is the lab machines' multi-call binary emulating FreeBSD
// and pfSense commands; see package emu and docs/lab-emulation.md.
package main

import (
	"os"

	"github.com/arbo-project/arbo/internal/lab/emu"
)

func main() {
	os.Exit(emu.Main(os.Args, os.Stdin, os.Stdout, os.Stderr))
}
