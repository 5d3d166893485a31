package emu

import (
	sharedfix "github.com/arbo-project/arbo/internal/golden"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
)

func TestPfctlParseCheck(t *testing.T) {
	tests := []struct {
		name, conf string
		ok         bool
		msg        string
	}{
		{"skeleton of freebsd.md §4.3", `ext_if = "vtnet0"
jail_net = "10.0.0.0/16"
mgmt_net = "192.168.10.0/24"
table <arbo_web> persist { 10.0.1.10 }
set skip on lo0
set block-policy return
scrub in on $ext_if all fragment reassemble
no nat on $ext_if from $jail_net to 10.1.0.0/16
nat on $ext_if inet from $jail_net to any -> ($ext_if)
rdr on $ext_if inet proto tcp from any to ($ext_if) port { 80, 443 } -> 10.0.1.10
block in log all
pass out quick on $ext_if keep state
antispoof quick for $ext_if inet
pass in quick on $ext_if inet proto tcp from $mgmt_net to ($ext_if) port ssh flags S/SA keep state
pass in on $ext_if inet proto tcp to <arbo_web> port { 80, 443 } flags S/SA keep state
anchor "arbo/*"
load anchor "arbo/x" from "/etc/pf.arbo"
`, true, ""},
		{"multi-line list and continuation", "pass in proto tcp to port {\n 80,\n 443 }\npass out \\\n all\n", true, ""},
		{"unbalanced brace", "pass in proto tcp to port { 80, 443\n", false, "syntax error"},
		{"unbalanced close", "pass in all }\n", false, "syntax error"},
		{"unterminated quote", "anchor \"arbo/*\n", false, "unterminated quoted string"},
		{"unknown keyword", "permit in all\n", false, "syntax error"},
		{"macro used before definition", "pass in on $ext_if all\next_if = \"em0\"\n", false, "macro 'ext_if' not defined"},
		{"translation after filter", "pass in all\nnat on em0 from any to any -> (em0)\n", false, "Rules must be in order"},
		{"options after scrub", "scrub in all\nset skip on lo0\n", false, "Rules must be in order"},
		{"descending port range", "pass in proto tcp from any port 500:100 to any\n", false, "invalid port range"},
		{"-> in a filter rule", "pass in on em0 -> 10.0.0.1\n", false, "syntax error"},
		{"from without operand", "pass in from\n", false, "syntax error"},
		{"comment only", "# nothing\n\n", true, ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			l := newLab(t, "")
			l.write("/etc/pf.conf", tt.conf)
			code, _, errs := l.run("pfctl", "-nf", "/etc/pf.conf")
			if (code == 0) != tt.ok {
				t.Fatalf("exit %d, want ok=%v; stderr %q", code, tt.ok, errs)
			}
			if !strings.Contains(errs, tt.msg) {
				t.Errorf("stderr %q lacks %q", errs, tt.msg)
			}
			if exists(l.path(PFLoadedFile)) {
				t.Error("-n loaded the rules")
			}
		})
	}
}

func TestPfctlFirewallState(t *testing.T) {
	tests := []struct {
		name, conf, want string
		enable           bool
	}{
		{"blocks ssh", "block in all\npass out all keep state\n", "blocked", true},
		{"block with ssh pass", "block in log all\npass in proto tcp to port ssh\n", "open", true},
		{"block with port 22 in a macro list", "ports = \"{ 22, 80 }\"\nblock all\npass in proto tcp to port $ports\n", "open", true},
		{"block drop on interface", "block drop in on em0\n", "blocked", true},
		{"only out blocked", "block out all\n", "open", true},
		{"restricted block is not default", "block in proto udp from any to any port 53\n", "open", true},
		{"disabled pf is open", "block in all\n", "open", false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			l := newLab(t, "")
			l.write("/etc/pf.conf", tt.conf)
			l.must("pfctl", "-f", "/etc/pf.conf")
			if tt.enable {
				l.must("pfctl", "-e")
			}
			if got := strings.TrimSpace(l.read(FirewallFile)); got != tt.want {
				t.Errorf("firewall = %q, want %q", got, tt.want)
			}
		})
	}
}

func TestPfctlStatesAndEnable(t *testing.T) {
	l := newLab(t, "")
	l.write("/etc/pf.conf", "block in all\n")
	l.write("/etc/rc.conf", "pf_enable=YES\n")
	l.must("pfctl", "-e")
	if errs := l.fails(1, "pfctl", "-e"); !strings.Contains(errs, "pf already enabled") {
		t.Errorf("second -e: %q", errs)
	}
	flush := func() string {
		b, _ := os.ReadFile(l.path(FlushFile))
		return strings.TrimSpace(string(b))
	}
	l.must("pfctl", "-f", "/etc/pf.conf")
	if flush() != "" {
		t.Errorf("pfctl -f flushed states (flush=%q)", flush())
	}
	if got := strings.TrimSpace(l.read(FirewallFile)); got != "blocked" {
		t.Errorf("firewall %q", got)
	}
	l.must("service", "pf", "reload")
	if flush() != "" {
		t.Error("service pf reload flushed states")
	}
	l.must("service", "pf", "restart")
	if flush() != "1" {
		t.Errorf("service pf restart: flush=%q, want 1", flush())
	}
	l.must("pfctl", "-F", "states")
	if flush() != "2" {
		t.Errorf("pfctl -F states: flush=%q", flush())
	}
	if out := l.must("pfctl", "-sr"); out != "block drop in all\n" { // FreeBSD's listing form (pflisting.go)
		t.Errorf("-sr = %q", out)
	}
	if out := l.must("pfctl", "-si"); !strings.HasPrefix(out, "Status: Enabled") {
		t.Errorf("-si = %q", out)
	}
	l.must("pfctl", "-d")
	if got := strings.TrimSpace(l.read(FirewallFile)); got != "open" {
		t.Errorf("after -d firewall %q", got)
	}
	l.fails(1, "pfctl", "-d")
	// service pf check fails on a bad file without touching the loaded rules.
	l.write("/etc/pf.conf", "pass in on $nope\n")
	l.fails(1, "service", "pf", "check")
	l.fails(1, "service", "pf", "reload")
	if out := l.must("pfctl", "-sr"); out != "block drop in all\n" { // FreeBSD's listing form (pflisting.go)
		t.Errorf("failed reload changed rules: %q", out)
	}
}

func TestPfctlTables(t *testing.T) {
	l := newLab(t, "")
	l.write("/etc/pf.conf", "table <arbo_db> persist { 10.0.2.10, 10.0.2.11 }\ntable <keep> persist\n")
	l.must("pfctl", "-t", "keep", "-T", "add", "10.9.9.9")
	l.must("pfctl", "-f", "/etc/pf.conf")
	if out := l.must("pfctl", "-t", "arbo_db", "-T", "show"); out != "   10.0.2.10\n   10.0.2.11\n" {
		t.Errorf("show = %q", out)
	}
	if out := l.must("pfctl", "-t", "keep", "-T", "show"); out != "   10.9.9.9\n" {
		t.Errorf("table without list lost its contents: %q", out)
	}
	l.write("/etc/pf.arbo_db", "# db tier\n10.0.2.12\n")
	l.must("pfctl", "-t", "arbo_db", "-T", "replace", "-f", "/etc/pf.arbo_db")
	if out := l.must("pfctl", "-t", "arbo_db", "-T", "show"); out != "   10.0.2.12\n" {
		t.Errorf("after replace = %q", out)
	}
	l.fails(1, "pfctl", "-t", "nosuch", "-T", "show")
}

// TestPfctlCorpus measures -nf against FreeBSD's and OpenBSD's pfctl test
// files (shared/fixtures/pfctl/README.md): every pass case (.in with a .ok)
// must be accepted, and FreeBSD's .ok files too (upstream's selfpfNNNN test
// loads each .ok again); every FreeBSD .fail case must be rejected with an
// error the .fail pattern matches (pfctl_test.c: ATF_CHECK_MATCH, a POSIX
// extended regexp).
func TestPfctlCorpus(t *testing.T) {
	// The shared pfctl corpus, beside the module root (skips with the
	// reason without it, fails under CI=true).
	base := sharedfix.Shared(t, "fixtures", "pfctl")
	manifest, err := os.ReadFile(filepath.Join(base, "MANIFEST.tsv"))
	if err != nil {
		t.Fatal(err)
	}
	kinds := map[string]string{} // file -> pass | pass-iface | fail
	for _, row := range strings.Split(string(manifest), "\n")[1:] {
		if f := strings.Split(row, "\t"); len(f) > 3 {
			kinds[f[3]] = f[2]
		}
	}
	parse := func(path string) error {
		data, err := os.ReadFile(path)
		if err != nil {
			t.Fatal(err)
		}
		_, _, perr := parsePF(filepath.Base(path), data, pfFileReader(&env{}, filepath.Dir(path)))
		return perr
	}
	passOK, passN, failOK, failN, selfOK, selfN := 0, 0, 0, 0, 0, 0
	ins, _ := filepath.Glob(filepath.Join(base, "*", "*.in"))
	for _, in := range ins {
		perr := parse(in)
		if pat, err := os.ReadFile(strings.TrimSuffix(in, ".in") + ".fail"); err == nil {
			failN++
			re := regexp.MustCompile(string(pat))
			if perr != nil && re.MatchString(perr.Error()+"\n") {
				failOK++
			} else {
				t.Errorf("%s: want an error matching %q, got %v", in, pat, perr)
			}
			continue
		}
		passN++
		if perr == nil {
			passOK++
		} else {
			t.Errorf("%s: rejected valid ruleset: %v", in, perr)
		}
	}
	oks, _ := filepath.Glob(filepath.Join(base, "freebsd", "*.ok"))
	for _, ok := range oks {
		rel, _ := filepath.Rel(base, ok)
		if kinds[rel] != "pass" {
			continue // pass-iface cases have no selfpf test upstream
		}
		selfN++
		if perr := parse(ok); perr == nil {
			selfOK++
		} else {
			t.Errorf("%s: rejected pfctl's own output: %v", ok, perr)
		}
	}
	t.Logf("pfctl corpus: accepted pass cases %d/%d, rejected fail cases %d/%d, accepted FreeBSD .ok (selfpf) %d/%d", passOK, passN, failOK, failN, selfOK, selfN)
	if passN < 59 || failN < 7 || selfN < 20 {
		t.Errorf("corpus smaller than expected (%d pass, %d fail, %d selfpf): was it moved?", passN, failN, selfN)
	}
}

func TestPfctlIncludeAndAnchor(t *testing.T) {
	l := newLab(t, "")
	l.write("/etc/pf.arbo.conf", "block in all\n")
	l.write("/etc/pf.conf", "ext = \"em0\"\ninclude \"/etc/pf.arbo.conf\"\npass out on $ext all\n")
	l.must("pfctl", "-e", "-f", "/etc/pf.conf")
	if got := strings.TrimSpace(l.read(FirewallFile)); got != "blocked" {
		t.Errorf("firewall %q", got)
	}
	if out := l.must("pfctl", "-sr"); out != "block drop in all\npass out on em0 all flags S/SA keep state\n" {
		t.Errorf("-sr = %q", out)
	}
	if got := l.read(PFLoadedFile); !strings.HasPrefix(got, "ext = ") {
		t.Errorf("pf.loaded is not a copy of the file: %q", got)
	}
	// Rules in an anchor do not change the main ruleset's verdict.
	l.write("/etc/pf.ssh", "pass in proto tcp to port 22\n")
	l.must("pfctl", "-a", "arbo/ssh", "-f", "/etc/pf.ssh")
	if got := strings.TrimSpace(l.read(FirewallFile)); got != "blocked" {
		t.Errorf("anchor load changed the verdict: %q", got)
	}
	if out := l.must("pfctl", "-a", "arbo/ssh", "-sr"); out != "pass in proto tcp from any to any port = ssh flags S/SA keep state\n" {
		t.Errorf("anchor -sr = %q", out)
	}
	l.must("pfctl", "-F", "all")
	if got := strings.TrimSpace(l.read(FirewallFile)); got != "open" {
		t.Errorf("after -F all: %q", got)
	}
	l.write("/etc/pf.conf", "include \"/etc/nope.conf\"\n")
	l.fails(1, "pfctl", "-nf", "/etc/pf.conf")
}
