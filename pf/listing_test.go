package pf

import (
	"errors"
	"net/netip"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/arbo-project/arbo/internal/golden"
)

// TestParseListingCorpus reads every .ok file of the shared pfctl corpus:
// what pfctl printed for each regress case (pfctl -nv; FreeBSD's and
// OpenBSD's), the same print_rule() form as pfctl -sr. Every one must
// parse.
func TestParseListingCorpus(t *testing.T) {
	dir := golden.Shared(t, "fixtures", "pfctl")
	files, _ := filepath.Glob(filepath.Join(dir, "*", "*.ok"))
	if len(files) < 59 {
		t.Fatalf("%d .ok files in %s, want the corpus's 59", len(files), dir)
	}
	rules, opaque := 0, 0
	for _, f := range files {
		b, err := os.ReadFile(f)
		if err != nil {
			t.Fatal(err)
		}
		r, err := ParseListing(filepath.Base(f), b)
		if err != nil {
			t.Errorf("%v", err)
			continue
		}
		for _, rule := range r.Rules {
			rules++
			if rule.Opaque != "" {
				opaque++
			}
		}
	}
	t.Logf("%d .ok files, %d rules, %d opaque", len(files), rules, opaque)
}

func TestParseListingCorpusCounts(t *testing.T) {
	dir := golden.Shared(t, "fixtures", "pfctl")
	files, _ := filepath.Glob(filepath.Join(dir, "*", "*.ok"))
	rules, opaque := 0, 0
	for _, f := range files {
		b, _ := os.ReadFile(f)
		r, err := ParseListing(filepath.Base(f), b)
		if err != nil {
			t.Fatal(err)
		}
		for _, rule := range r.Rules {
			rules++
			if rule.Opaque != "" {
				opaque++
			}
		}
	}
	// 167 = the lines of the 59 .ok files that start (after "@N ") with
	// pass, block, match, anchor, load or antispoof; 11 of them use what
	// arbo cannot judge (nat-to, af-to, received-on, a state limiter, an
	// anchor).
	if rules != 167 || opaque != 11 {
		t.Errorf("%d rules, %d opaque; want 167 and 11", rules, opaque)
	}
}

func readListing(t *testing.T, stem string) *Ruleset {
	t.Helper()
	sr, err := os.ReadFile("testdata/listing/" + stem + ".sr")
	if err != nil {
		t.Fatal(err)
	}
	sn, err := os.ReadFile("testdata/listing/" + stem + ".sn")
	if err != nil {
		t.Fatal(err)
	}
	r, err := ParseListing(stem, append(sn, sr...))
	if err != nil {
		t.Fatal(err)
	}
	return r
}

// TestListingJudgesLikeTheFile: the listing pfctl -v -sr/-sn prints for
// arboreus's server1 (written by hand after print_rule: inet added for
// IPv4 addresses, flags S/SA keep state on TCP passes, lists expanded,
// ports as = N) answers every probe as the pf.conf it came from, once its
// tables are filled as pfctl -T show prints them.
func TestListingJudgesLikeTheFile(t *testing.T) {
	src, err := os.ReadFile("testdata/golden/arboreus.server1.pf.conf")
	if err != nil {
		t.Fatal(err)
	}
	file := mustParse(t, string(src))
	live := readListing(t, "arboreus.server1")
	if u := live.Unknowns(); len(u) == 0 {
		t.Fatal("tables not filled yet, but no unknowns")
	}
	for _, name := range live.TablesUsed() {
		var show strings.Builder
		for _, e := range file.Tables[name].Entries {
			s := e.Prefix.String()
			if e.Prefix.IsSingleIP() {
				s = e.Prefix.Addr().String()
			}
			show.WriteString("   " + s + "\n")
		}
		if err := live.SetTable(name, []byte(show.String())); err != nil {
			t.Fatal(err)
		}
	}
	live.Skip = file.Skip // pfctl -v -s Interfaces, in a live read
	if u := live.Unknowns(); len(u) != 0 {
		t.Fatalf("unknowns %v", u)
	}
	addrs := []string{"192.168.1.5", "192.168.1.11", "192.168.2.11", "10.20.1.11", "10.20.1.12", "10.20.2.11", "10.20.2.12", "198.51.100.10", "192.168.1.1", "8.8.8.8"}
	ports := []int{22, 53, 80, 4369, 8443, 9100, 9107, 9115, 9116}
	n, differ := 0, 0
	for _, s := range addrs {
		for _, d := range addrs {
			for _, proto := range []string{"tcp", "udp"} {
				for _, port := range ports {
					a, b := netip.MustParseAddr(s), netip.MustParseAddr(d)
					n++
					if file.Allows(a, b, proto, port) != live.Allows(a, b, proto, port) || file.FirstMatchPasses(a, b, proto, port) != live.FirstMatchPasses(a, b, proto, port) {
						differ++
						t.Errorf("%s -> %s %s/%d: file %v, listing %v", s, d, proto, port, file.Allows(a, b, proto, port), live.Allows(a, b, proto, port))
					}
				}
			}
		}
	}
	if n != 1800 || differ != 0 {
		t.Errorf("%d probes, %d differ", n, differ)
	}
}

func TestParseListingErrors(t *testing.T) {
	tests := []struct{ src, want string }{
		{"pass all\npass in quick frobnicate\n", "m1:2: unknown word"},
		{"pass all\n\n@x pass all\n", "m1:3: rule number"},
		{"block all\n  [ Evaluations: 0\n", "m1:2: unterminated"},
		{"pass from $lan to any\n", "m1:1: \"$lan\": a listing holds no macros"},
		{"pass all\nwhatever\n", "m1:2: unknown statement"},
		{"pass proto tcp to port = 70000\n", "m1:1:"},
	}
	for _, tc := range tests {
		_, err := ParseListing("m1", []byte(tc.src))
		if err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("%q: err %v, want %q", tc.src, err, tc.want)
		}
	}
}

func TestParseListingOpaque(t *testing.T) {
	r, err := ParseListing("gw", []byte("anchor \"userrules/*\" all\npass in quick on em0 inet from any to any received-on em1 flags S/SA keep state\n"))
	if err != nil {
		t.Fatal(err)
	}
	if len(r.Rules) != 2 || r.Rules[0].Opaque != "anchor" || r.Rules[1].Opaque != "received-on" {
		t.Fatalf("rules %+v", r.Rules)
	}
	if u := r.Unknowns(); len(u) != 2 || !strings.Contains(u[0], "gw:1:") {
		t.Errorf("unknowns %v", u)
	}
}

func TestParseInfo(t *testing.T) {
	tests := []struct {
		out     string
		enabled bool
		err     string
	}{
		{"Status: Enabled for 0 days 00:12:03           Debug: Urgent\n\nState Table                          Total             Rate\n", true, ""},
		{"Status: Disabled for 0 days 00:00:04          Debug: Urgent\n", false, ""},
		{"Status: Disabled                              Debug: None\n", false, ""},
		{"\n", false, "h:1: empty"},
		{"pfctl: /dev/pf: No such file or directory\n", false, "h:1: expected"},
		{"Status: Sleeping\n", false, "neither"},
	}
	for _, tc := range tests {
		i, err := ParseInfo("h", []byte(tc.out))
		if tc.err != "" {
			if err == nil || !strings.Contains(err.Error(), tc.err) {
				t.Errorf("%q: err %v, want %q", tc.out, err, tc.err)
			}
			continue
		}
		if err != nil || i.Enabled != tc.enabled {
			t.Errorf("%q: %+v %v", tc.out, i, err)
		}
	}
}

func TestParseSkips(t *testing.T) {
	s, err := ParseSkips("h", []byte("all\nem0\nlo\nlo0 (skip)\nlo1\n\tCleared:     Thu Jan  1 00:00:00 1970\n"))
	if err != nil || len(s) != 1 || s[0] != "lo0" {
		t.Errorf("%v %v", s, err)
	}
	if _, err := ParseSkips("h", []byte("lo0 (skip) extra\n")); err == nil || !strings.Contains(err.Error(), "h:1:") {
		t.Errorf("err %v", err)
	}
}

func TestSetTable(t *testing.T) {
	r := &Ruleset{Name: "h"}
	if err := r.SetTable("t", []byte("   10.0.0.1\n   10.1.0.0/16\n  !10.1.2.0/24\n   2001:db8::1\n")); err != nil {
		t.Fatal(err)
	}
	if e := r.Tables["t"].Entries; len(e) != 4 || !e[2].Neg || e[3].Prefix.Bits() != 128 {
		t.Errorf("%+v", e)
	}
	if err := r.SetTable("u", []byte("   not-an-address\n")); err == nil || !strings.Contains(err.Error(), "table <u>, line 1") {
		t.Errorf("err %v", err)
	}
}

func TestListingDigest(t *testing.T) {
	a := ListingDigest([]byte("nat on em0 inet from 10.0.0.1 to any -> (em0) round-robin\n"), []byte("@0 pass all flags S/SA keep state\n  [ Evaluations: 3 ]\n@1 block drop all\n"))
	b := ListingDigest([]byte("nat on em0 inet from 10.0.0.1 to any -> (em0) round-robin"), []byte("pass all flags S/SA keep state\nblock drop all\n\n"))
	c := ListingDigest(nil, []byte("pass all flags S/SA keep state\nblock drop all\npass quick all flags S/SA keep state\n"))
	d := ListingDigest([]byte("pass all flags S/SA keep state\nblock drop all\n"), nil)
	if a != b {
		t.Error("counters and rule numbers change the digest")
	}
	if a == c || c == d {
		t.Error("different listings, same digest")
	}
}

func FuzzParseListing(f *testing.F) {
	f.Add([]byte("@0 pass in quick inet proto tcp from 192.168.1.0/24 to ! <t> port = 22 flags any keep state\n  [ Evaluations: 1 ]\n"))
	f.Add([]byte("nat on em0 inet from 10.20.1.11 to ! <arbo_cluster> tag x -> (em0) round-robin\n"))
	if dir, err := filepath.Abs("../../shared/fixtures/pfctl"); err == nil {
		files, _ := filepath.Glob(filepath.Join(dir, "*", "*.ok"))
		for _, p := range files {
			if b, err := os.ReadFile(p); err == nil {
				f.Add(b)
			}
		}
	}
	f.Fuzz(func(t *testing.T, b []byte) {
		r, err := ParseListing("fuzz", b)
		if err != nil {
			var pe *ParseError
			if !errors.As(err, &pe) || pe.Line < 1 {
				t.Fatalf("error without a line: %v", err)
			}
			return
		}
		_ = r.Unknowns()
		_ = NormalizeListing(b)
	})
}
