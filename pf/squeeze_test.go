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

// The interface-address check still finds each form after its quick test.
func TestLintInterfaceAddress(t *testing.T) {
	for _, addr := range []string{"em0:network", "lo1:broadcast", "tun0:peer", "em0:network:0"} {
		conf := "block all\npass in on em0 from " + addr + " to any\n"
		found := false
		for _, p := range Lint([]byte(conf)) {
			found = found || strings.Contains(p.Msg, "interface-derived")
		}
		if !found {
			t.Errorf("Lint(%q) does not find the interface-derived address", conf)
		}
	}
	for _, p := range Lint([]byte("table <t> const { 10.0.0.1, 10.0.0.2 }\nblock all\npass in from <t> to any\n")) {
		if strings.Contains(p.Msg, "interface-derived") {
			t.Errorf("a table of addresses: %v", p)
		}
	}
}
