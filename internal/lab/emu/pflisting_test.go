package emu

import (
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"

	shared "github.com/arbo-project/arbo/internal/golden"
	"github.com/arbo-project/arbo/pf"
)

// TestListingOfArbosRules: the lab lists arboreus's server1 pf.conf as
// pf/testdata/listing/arboreus.server1.{sn,sr} (written after FreeBSD's
// print_rule, see pflisting.go), and arbo's listing parser reads it.
func TestListingOfArbosRules(t *testing.T) {
	src, err := os.ReadFile("../../../pf/testdata/golden/arboreus.server1.pf.conf")
	if err != nil {
		t.Fatal(err)
	}
	stmts, _, err := parsePF("pf.conf", src, nil)
	if err != nil {
		t.Fatal(err)
	}
	for _, c := range []struct {
		file string
		cats []string
	}{
		{"arboreus.server1.sn", []string{"translation"}},
		{"arboreus.server1.sr", []string{"normalization", "filter"}},
	} {
		want, err := os.ReadFile("../../../pf/testdata/listing/" + c.file)
		if err != nil {
			t.Fatal(err)
		}
		got := strings.Join(pfListing(stmts, true, c.cats...), "\n") + "\n"
		if string(pf.NormalizeListing([]byte(got))) != string(pf.NormalizeListing(want)) {
			t.Errorf("%s:\n%s\nwant:\n%s", c.file, got, pf.NormalizeListing(want))
		}
		if _, err := pf.ParseListing(c.file, []byte(got)); err != nil {
			t.Error(err)
		}
	}
	if s := pfSkipped(stmts); len(s) != 0 {
		t.Errorf("skipped %v: arbo filters on lo0 (ARBO012)", s)
	}
	stmts, _, _ = parsePF("t", []byte("set skip on { lo0 lo2 }\npass\n"), nil)
	if s := pfSkipped(stmts); len(s) != 2 || s[0] != "lo0" || s[1] != "lo2" {
		t.Errorf("skipped %v", s)
	}
}

func TestListingForms(t *testing.T) {
	tests := []struct{ in, want string }{
		{"pass quick all", "pass quick all flags S/SA keep state"},
		{"pass", "pass all flags S/SA keep state"},
		{"block", "block drop all"},
		{"block return in log on em0 proto { tcp udp } to port ssh", "block return in log on em0 proto tcp from any to any port = 22\nblock return in log on em0 proto udp from any to any port = 22"},
		{"pass proto udp from 10.0.0.1 to ::1 no state", "pass inet proto udp from 10.0.0.1 to ::1 no state"},
		{"pass in proto tcp to port { 22, > 1024, 10 >< 20 } flags S/SA keep state (max 10)", "pass in proto tcp from any to any port = 22 flags S/SA keep state (max 10)\npass in proto tcp from any to any port > 1024 flags S/SA keep state (max 10)\npass in proto tcp from any to any port 10 >< 20 flags S/SA keep state (max 10)"},
		{"pass from { 10.0.0.1, ! 10.0.0.2 } label \"x y\"", "pass inet from 10.0.0.1 to any flags S/SA keep state label \"x y\"\npass inet from ! 10.0.0.2 to any flags S/SA keep state label \"x y\""},
		{"scrub in all", "scrub in all fragment reassemble"},
		{"nat on em0 from 10.0.0.0/24 to any -> (em0)", "nat on em0 inet from 10.0.0.0/24 to any -> (em0) round-robin"},
	}
	for _, tc := range tests {
		stmts, _, err := parsePF("t", []byte(tc.in+"\n"), nil)
		if err != nil {
			t.Fatalf("%q: %v", tc.in, err)
		}
		got := strings.Join(pfListing(stmts, true, "normalization", "filter", "translation"), "\n")
		if got != tc.want {
			t.Errorf("%q:\n got %q\nwant %q", tc.in, got, tc.want)
		}
	}
}

// TestListingAgainstTheCorpus prints each FreeBSD pass case of the shared
// pfctl corpus that the stand-in's grammar loads, and compares its rules
// with what FreeBSD's pfctl printed for it (the .ok files; table, set,
// altq, queue, ether and state limiter lines and echoed macros set aside:
// -sr does not print them). The count of exact matches is pinned, so that
// a change to the printer that loses fidelity shows. Known differences:
// interface addresses (vlanNNNN, lo0) the lab does not resolve,
// af-to/route-to pools, `port N:*`.
func TestListingAgainstTheCorpus(t *testing.T) {
	dir := shared.Shared(t, "fixtures", "pfctl", "freebsd")
	files, _ := filepath.Glob(filepath.Join(dir, "*.in"))
	macro := regexp.MustCompile(`^[A-Za-z_][A-Za-z0-9_]* = `)
	match, total := 0, 0
	for _, f := range files {
		ok, err := os.ReadFile(strings.TrimSuffix(f, ".in") + ".ok")
		if err != nil {
			continue // a fail case
		}
		src, err := os.ReadFile(f)
		if err != nil {
			t.Fatal(err)
		}
		stmts, _, err := parsePF(filepath.Base(f), src, func(p string) ([]byte, error) { return os.ReadFile(filepath.Join(dir, p)) })
		if err != nil {
			continue
		}
		total++
		var want []string
		for _, l := range strings.Split(string(ok), "\n") {
			if l == "" || macro.MatchString(l) || strings.HasPrefix(l, "state limiter") {
				continue
			}
			if w := strings.Fields(l)[0]; isOneOfStr(w, "table", "set", "altq", "queue", "ether") {
				continue
			}
			want = append(want, l)
		}
		got := pfListing(stmts, false, "normalization", "filter", "translation")
		if strings.Join(got, "\n") == strings.Join(want, "\n") {
			match++
		} else {
			t.Logf("%s:\n got %q\nwant %q", filepath.Base(f), got, want)
		}
	}
	t.Logf("%d of %d FreeBSD pass cases listed exactly as pfctl printed them", match, total)
	if total < 30 || match < 24 {
		t.Errorf("%d of %d cases match, want at least 24 of 30 or more", match, total)
	}
}
