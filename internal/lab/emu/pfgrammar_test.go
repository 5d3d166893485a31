package emu

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// TestPFGrammarNegatives: rulesets FreeBSD's pfctl refuses, each with the
// parse.y message it prints (sbin/pfctl/parse.y, freebsd/freebsd-src at
// 8a8af94240084a091a1c048da027f80ee37937e7), and a near twin it accepts, so
// every row proves both the refusal and that the check is not too broad.
func TestPFGrammarNegatives(t *testing.T) {
	cases := []struct {
		name, bad, want, good string
	}{
		// rc.d/pf line 41: echo $pf_fallback_rules | pfctl -f - (unquoted:
		// the lines arrive joined); defaults/rc.conf line 250's multi-rule example.
		{"joined fallback", "block drop log all pass quick on em4\n", "syntax error", "block drop log all\npass quick on em4\n"},
		{"two rules one line", "pass in all block out all\n", "syntax error", "pass in all\nblock out all\n"},
		{"table after rule", "pass all table <t> { 10.0.0.1 }\n", "syntax error", "table <t> { 10.0.0.1 }\npass all\n"},
		{"flags on udp", "pass in proto udp to port 53 flags S/SA\n", "flags only apply to tcp", "pass in proto tcp to port 53 flags S/SA\n"},
		{"flags on udp list", "pass in proto { udp icmp } flags S/SA\n", "flags only apply to tcp", "pass in proto { udp tcp } flags S/SA\n"},
		{"port above 65535", "pass in proto tcp to port 65536\n", "illegal port value 65536", "pass in proto tcp to port 65535\n"},
		{"range above 65535", "pass in proto tcp to port 1000:70000\n", "illegal port value 70000", "pass in proto tcp to port 1000:7000\n"},
		{"descending range", "pass in proto tcp from any port 500:100\n", "invalid port range", "pass in proto tcp from any port 100:500\n"},
		{"port on icmp", "pass in proto icmp to port 22\n", "port only applies to tcp/udp/sctp", "pass in proto udp to port 22\n"},
		{"tag 64 chars", "pass in tag " + strings.Repeat("a", 64) + "\n", "tag too long, max 63 chars", "pass in tag " + strings.Repeat("a", 63) + "\n"},
		{"tagged 64 chars", "pass in tagged " + strings.Repeat("b", 64) + "\n", "tag too long", "pass in tagged " + strings.Repeat("b", 63) + "\n"},
		{"label 64 chars", "pass in label \"" + strings.Repeat("c", 64) + "\"\n", "label too long", "pass in label \"" + strings.Repeat("c", 63) + "\"\n"},
		{"return-rst on udp", "block return-rst in proto udp\n", "return-rst can only be applied to TCP rules", "block return-rst in proto tcp\n"},
		{"return-rst no proto", "block return-rst in all\n", "return-rst can only be applied to TCP rules", "block return in all\n"},
		{"route-to no direction", "pass route-to (em1 10.0.0.1) all\n", "direction must be explicit with rules that specify routing", "pass in route-to (em1 10.0.0.1) all\n"},
		{"reply-to no direction", "pass reply-to (em1 10.0.0.1) all\n", "direction must be explicit", "pass out reply-to (em1 10.0.0.1) all\n"},
		{"route family", "pass in on em0 route-to (em1 10.0.0.1) inet6\n", "no routing address with matching address family found.", "pass in on em0 route-to (em1 10.0.0.1) inet\n"},
		{"undefined macro", "pass in on $ext\n", "macro 'ext' not defined", "ext = \"em0\"\npass in on $ext\n"},
		{"empty list", "pass in proto tcp to port { }\n", "syntax error", "pass in proto tcp to port { 22 }\n"},
		{"unclosed list", "pass in proto tcp to port { 22\n", "syntax error", "pass in proto tcp to port { 22 }\n"},
		{"table name 32", "table <" + strings.Repeat("t", 32) + "> persist\n", "table name too long", "table <" + strings.Repeat("t", 31) + "> persist\n"},
		{"table without brackets", "table t persist\n", "syntax error", "table <t> persist\n"},
		{"reserved anchor", "anchor \"_x\"\n", "reserved for internal use", "anchor \"x\"\n"},
		{"load anchor no file", "load anchor foo\n", "syntax error", "anchor foo\nload anchor foo from \"/etc/pf.foo\"\n"},
		{"unknown statement", "allow in all\n", "syntax error", "pass in all\n"},
		{"order", "pass all\nset skip on lo0\n", "Rules must be in order", "set skip on lo0\npass all\n"},
		{"static-port with port", "nat on em0 from 10.0.0.0/8 -> 192.0.2.1 port 1006 static-port\n", "static-port", "nat on em0 from 10.0.0.0/8 -> 192.0.2.1 static-port\n"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			_, _, err := parsePF("pf.conf", []byte(c.bad), nil)
			if err == nil || !strings.Contains(err.Error(), c.want) {
				t.Errorf("%q: err = %v, want %q", c.bad, err, c.want)
			}
			if _, _, err := parsePF("pf.conf", []byte(c.good), nil); err != nil {
				t.Errorf("twin %q refused: %v", c.good, err)
			}
		})
	}
}

// TestPFFallbackJoined runs rc.d/pf's fallback path as the lab runs it:
// the multi-line value, echoed unquoted, reaches pfctl -f - as one line and
// is refused, so nothing is loaded (issue 9, "Why").
func TestPFFallbackJoined(t *testing.T) {
	l := newLab(t, "")
	multi := "block drop log all\npass quick on em4"
	joined := strings.Join(strings.Fields(multi), " ") + "\n" // what `echo $v` prints
	code, _, errs := l.runIn(joined, "pfctl", "-f", "-")
	if code != 1 || !strings.Contains(errs, "syntax error") {
		t.Fatalf("joined fallback: exit %d, stderr %q", code, errs)
	}
	if out := l.must("pfctl", "-sr"); out != "" {
		t.Errorf("a refused fallback loaded rules: %q", out)
	}
	code, _, errs = l.runIn(multi+"\n", "pfctl", "-f", "-")
	if code != 0 {
		t.Fatalf("the same rules one per line: exit %d, %s", code, errs)
	}
}

// FuzzParsePF: the parser never panics, whatever the input; seeds in
// testdata/fuzz/FuzzParsePF plus the negatives above.
func FuzzParsePF(f *testing.F) {
	for _, s := range []string{"pass in all\n", "block return-rst in proto { tcp udp } port 1:2\n", "a = \"{ x\"\npass on $a\n", "table <t> { 1.2.3.4 }\nload anchor x from \"y\"\n", "pass in route-to ( em1 ) inet6 port { }\n"} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		read := func(string) ([]byte, error) { return data, nil } // an include of itself: the depth limit must hold
		_, _, _ = parsePF("pf.conf", data, read)
	})
}

// TestPFGrammarArboGoldens: the pf.conf arbo renders (its golden files) is
// accepted by the strict check; a refusal here is an arbo defect.
func TestPFGrammarArboGoldens(t *testing.T) {
	files, _ := filepath.Glob("../../../pf/testdata/golden/*.pf.conf")
	if len(files) == 0 {
		t.Fatal("no pf goldens found under pf/testdata/golden")
	}
	for _, f := range files {
		data, err := os.ReadFile(f)
		if err != nil {
			t.Fatal(err)
		}
		if _, _, err := parsePF(filepath.Base(f), data, pfFileReader(&env{}, filepath.Dir(f))); err != nil {
			t.Errorf("%s: %v", f, err)
		}
	}
}
