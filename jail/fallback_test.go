package jail

import (
	"bytes"
	"net/netip"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"testing"

	"github.com/arbo-project/arbo/internal/golden"
	"github.com/arbo-project/arbo/pf"
	"github.com/arbo-project/arbo/templates"
)

// rcdPFFallback is pf_fallback() of FreeBSD's real rc.d/pf, read from
// ../shared/fixtures/upstream/freebsd/libexec/rc/rc.d/pf (lines 28-43).
func rcdPFFallback(t *testing.T) string {
	t.Helper()
	p := filepath.Join("..", "..", "shared", "fixtures", "upstream", "freebsd", "libexec", "rc", "rc.d", "pf")
	b, err := os.ReadFile(p)
	if err != nil {
		if os.Getenv("CI") == "true" {
			t.Fatalf("upstream rc.d/pf: %v", err)
		}
		t.Skipf("upstream rc.d/pf not found (%v): ../shared is not next to the module", err)
	}
	m := regexp.MustCompile(`(?ms)^pf_fallback\(\)\n\{\n.*?^\}\n`).Find(b)
	if m == nil {
		t.Fatal("no pf_fallback() in upstream rc.d/pf")
	}
	return string(m)
}

// runFallback runs the real pf_fallback() after /etc/defaults/rc.conf's
// values (freebsd/libexec/rc/rc.conf:248-252) and rc.conf.local, with a
// pfctl stand-in that keeps what it was asked to load; the ruleset file, if
// any, is at dir/pf-fallback.conf (for /etc/pf-fallback.conf).
func runFallback(t *testing.T, rcConfLocal []byte, dir string) []byte {
	t.Helper()
	sh, err := exec.LookPath("sh")
	if err != nil {
		t.Skip("sh not found")
	}
	if err := os.WriteFile(filepath.Join(dir, "rc.conf.local"), rcConfLocal, 0o644); err != nil {
		t.Fatal(err)
	}
	pfctl := filepath.Join(dir, "pfctl")
	if err := os.WriteFile(pfctl, []byte("#!/bin/sh\n[ \"$2\" = - ] && exec cat > \"$LOADED\"\nexec cp \"$2\" \"$LOADED\"\n"), 0o755); err != nil {
		t.Fatal(err)
	}
	loaded := filepath.Join(dir, "loaded")
	script := `warn() { echo "$*" >&2; }
checkyesno() { eval "case \$$1 in [Yy][Ee][Ss]) return 0;; esac"; return 1; }
pf_rules=/etc/pf.conf
pf_fallback_rules_enable="NO"
pf_fallback_rules="block drop log all"
pf_fallback_rules_file="/etc/pf-fallback.conf"
. "$DIR/rc.conf.local"
[ "$pf_fallback_rules_file" = /etc/pf-fallback.conf ] && pf_fallback_rules_file="$DIR/pf-fallback.conf"
pf_program="$DIR/pfctl"
pf_flags=""
` + rcdPFFallback(t) + "pf_fallback\n"
	c := exec.Command(sh, "-c", script)
	c.Env = append(os.Environ(), "DIR="+dir, "LOADED="+loaded)
	var stderr bytes.Buffer
	c.Stderr = &stderr
	if err := c.Run(); err != nil {
		t.Fatalf("pf_fallback: %v: %s", err, stderr.String())
	}
	b, err := os.ReadFile(loaded)
	if err != nil {
		t.Fatalf("pf_fallback loaded nothing: %v (%s)", err, stderr.String())
	}
	return b
}

// Issue 10 item 2: rc.d/pf:41 loads pf_fallback_rules with an unquoted
// `echo $pf_fallback_rules | pfctl -f -`, which joins a multi-line ruleset
// into one line that pfctl refuses (pf then runs with no rules). arbo
// writes /etc/pf-fallback.conf, which rc.d/pf:36-38 loads as it is.
func TestFallbackThroughRealRCdPF(t *testing.T) {
	c := golden.Example(t, "single-host")
	h := c.Hosts[0]
	files, _, err := Render(c, h, templates.Default())
	if err != nil {
		t.Fatal(err)
	}
	var rc, fb []byte
	for _, f := range files {
		switch f.Path {
		case RCConfLocal:
			rc = f.Content
		case FallbackConf:
			fb = f.Content
		}
	}
	dir := t.TempDir()
	if err := os.WriteFile(filepath.Join(dir, "pf-fallback.conf"), fb, 0o644); err != nil {
		t.Fatal(err)
	}
	got := runFallback(t, rc, dir)
	if !bytes.Equal(got, fb) {
		t.Errorf("rc.d/pf loaded %q, want the rendered %s", got, FallbackConf)
	}
	rs, err := pf.Parse(FallbackConf, got)
	if err != nil {
		t.Fatalf("the loaded fallback ruleset does not parse: %v", err)
	}
	// Management SSH open, everything else blocked (inbound on em0).
	mgmt, other, host := netip.MustParseAddr("192.168.10.5"), netip.MustParseAddr("203.0.113.9"), netip.MustParseAddr("192.168.10.20")
	in := pf.Crossing{Iface: "em0", Dir: "in"}
	for _, tc := range []struct {
		src   netip.Addr
		proto string
		port  int
		pass  bool
	}{
		{mgmt, "tcp", 22, true},
		{other, "tcp", 22, false},
		{mgmt, "tcp", 80, false},
		{mgmt, "udp", 53, false},
		{other, "tcp", 443, false},
	} {
		if pass, _ := rs.Decide(tc.src, host, tc.proto, tc.port, in); pass != tc.pass {
			t.Errorf("fallback: %s %s/%d in: pass=%v, want %v", tc.src, tc.proto, tc.port, pass, tc.pass)
		}
	}

	// lo0 is filtered (ARBO012): the host reaches itself, a jail does not
	// reach the host (its packets cross lo0 out, then in: both must pass).
	lo, jail := netip.MustParseAddr("127.0.0.1"), netip.MustParseAddr("10.30.1.10")
	for _, tc := range []struct {
		what     string
		src, dst netip.Addr
		port     int
		pass     bool
	}{
		{"the host to itself", lo, lo, 25, true},
		{"the host to its own address", mgmt, mgmt, 22, true},
		{"jail app1 to the host's sshd", jail, mgmt, 22, false},
		{"jail app1 to a host daemon", jail, mgmt, 8080, false},
	} {
		pass := true
		for _, dir := range []string{"out", "in"} {
			if ok, _ := rs.Decide(tc.src, tc.dst, "tcp", tc.port, pf.Crossing{Iface: "lo0", Dir: dir}); !ok {
				pass = false
			}
		}
		if pass != tc.pass {
			t.Errorf("fallback on lo0: %s (tcp %d): pass=%v, want %v", tc.what, tc.port, pass, tc.pass)
		}
	}

	// What arbo wrote before: the multi-line variable, no file. rc.d/pf
	// joins it into one line, and pfctl refuses that.
	old := "pf_fallback_rules_enable=\"YES\"\npf_fallback_rules=\"" + FallbackRules(c, h) + "\"\n"
	joined := runFallback(t, []byte(old), t.TempDir())
	if strings.Count(strings.TrimSpace(string(joined)), "\n") != 0 {
		t.Fatalf("rc.d/pf did not join the lines: %q", joined)
	}
	if _, err := pf.Parse("joined", joined); err == nil {
		t.Errorf("the joined ruleset parses: %q", joined)
	}
}
