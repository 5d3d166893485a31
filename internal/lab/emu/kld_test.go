package emu

import "testing"

func TestKldload(t *testing.T) {
	l := newLab(t, "")
	l.must("kldload", "-n", "pf", "pflog")
	l.must("kldload", "-n", "pf", "pflog") // -n: already loaded is not an error
	l.fails(1, "kldload", "pf")            // without -n it is
	l.fails(1, "kldload", "-n", "nosuch")
}
