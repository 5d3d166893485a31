package pf

import (
	"strings"
	"testing"
)

// squeeze must read as strings.Join(strings.Fields(t), " "), which it
// replaces for speed.
func TestSqueezeIsJoinFields(t *testing.T) {
	for _, s := range []string{"", " ", "a", " a  b\t\tc \n", "table <x> const {  1.2.3.4,\t5.6.7.8 }", "\u00a0x\u2003y\u0085", "a\xffb  \xfe", "é  è"} {
		if got, want := squeeze(s), strings.Join(strings.Fields(s), " "); got != want {
			t.Errorf("squeeze(%q) = %q, want %q", s, got, want)
		}
	}
}
