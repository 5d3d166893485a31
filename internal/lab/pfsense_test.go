//go:build linux

package lab

import (
	"bytes"
	"context"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/arbo-project/arbo/internal/lab/emu"
)

// These tests reproduce pfSense 2.7.2 behaviours on the lab's gateway
// directly (not through arbo), by running pfSense's own PHP
// (../shared/fixtures/upstream/pfsense-2.7.2) as the lab installs it.

// labGatewayConfig is pfSense's factory config.xml (testdata) with its
// interfaces moved to the Arboreus gateway's devices (igb0 WAN, igb2 LAN,
// examples/arboreus/topology.yaml) and extra XML before </pfsense>'s
// <filter>.
func labGatewayConfig(t *testing.T, filterRules, aliases, extra string) []byte {
	t.Helper()
	s := string(defaultGatewayConfig)
	for _, r := range [][2]string{
		{"<if>em0</if>", "<if>igb0</if>"},
		{"<if>em1</if>", "<if>igb2</if>"},
		{"<ipaddr>dhcp</ipaddr>", "<ipaddr>203.0.113.10</ipaddr>"},
		{"<ipaddr>192.168.1.1</ipaddr>", "<ipaddr>192.168.1.1</ipaddr>"},
		{"<filter>\n", "<filter>\n" + filterRules},
		// SSH enabled, as on a gateway arbo manages: the anti-lockout rule
		// then passes port 22 on LAN (filter.inc:4905, 4219).
		{"</system>", "<ssh><enable>enabled</enable></ssh></system>"},
		{"</pfsense>", extra + "</pfsense>"},
		{"<aliases>\n", "<aliases>\n" + aliases},
	} {
		if !strings.Contains(s, r[0]) {
			t.Fatalf("factory config.xml lacks %q", r[0])
		}
		s = strings.Replace(s, r[0], r[1], 1)
	}
	return []byte(s)
}

// probeRule is a LAN pass rule to port 8443 from the alias labprobe.
func probeRule(port string) string {
	return `		<rule>
			<type>pass</type>
			<ipprotocol>inet</ipprotocol>
			<protocol>tcp</protocol>
			<interface>lan</interface>
			<tracker>1770000001</tracker>
			<descr><![CDATA[lab probe]]></descr>
			<source><address>labprobe</address></source>
			<destination><any></any><port>` + port + `</port></destination>
		</rule>
`
}

const probeAlias = `<alias><name>labprobe</name><type>host</type><address>198.51.100.77</address><descr></descr><detail></detail></alias>`

func startPfSense(t *testing.T, conf []byte, opts ...Option) (*Lab, *Machine) {
	t.Helper()
	opts = append([]Option{WithPfSense(), WithGatewayConfig(conf)}, opts...)
	l := Start(t, loadExample(t), opts...)
	gate := l.Machine("gate")
	if gate == nil {
		t.Fatal("no gateway")
	}
	return l, gate
}

func readRoot(t *testing.T, m *Machine, p string) string {
	t.Helper()
	b, err := os.ReadFile(emu.Path(m.Root, p))
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}

// reload runs pfSense's rc.filter_configure_sync over SSH as arbo does,
// after removing the config cache (config.lib.inc:111 prefers it).
func reload(t *testing.T, l *Lab) (stdout, stderr string) {
	t.Helper()
	out, errOut, err := runSSH(t, l, "gate", "rm -f /tmp/config.cache; /etc/rc.filter_configure_sync")
	if err != nil {
		t.Fatalf("rc.filter_configure_sync: %v\nstdout:\n%s\nstderr:\n%s", err, out, errOut)
	}
	return out, errOut
}

func TestPfSenseReloadLoadsRulesFromConfig(t *testing.T) {
	t.Parallel()
	l, gate := startPfSense(t, labGatewayConfig(t, probeRule("8443"), "", ""))
	// Without the alias the rule's source is unknown to pfSense; add it to
	// config.xml after up, as arbo writes config.xml.
	conf := strings.Replace(readRoot(t, gate, "/cf/conf/config.xml"), "<aliases>\n", "<aliases>\n"+probeAlias, 1)
	if err := os.WriteFile(emu.Path(gate.Root, "/cf/conf/config.xml"), []byte(conf), 0o644); err != nil {
		t.Fatal(err)
	}
	reload(t, l)
	rules := readRoot(t, gate, "/tmp/rules.debug")
	for _, want := range []string{
		"table <labprobe> {   198.51.100.77 }", // filter.inc: filter_generate_aliases
		"from $labprobe to any port 8443",
		`label "USER_RULE: lab probe"`,
	} {
		if !strings.Contains(rules, want) {
			t.Errorf("/tmp/rules.debug lacks %q:\n%s", want, rules)
		}
	}
	if loaded := readRoot(t, gate, emu.PFLoadedFile); loaded != rules {
		t.Errorf("pf loaded something else than /tmp/rules.debug:\n%s", loaded)
	}
	if old := readRoot(t, gate, "/cf/conf/rules.debug.old"); old != rules {
		t.Errorf("rules.debug.old is not the ruleset that loaded (filter.inc:570)")
	}
	calls, err := gate.Calls()
	if err != nil {
		t.Fatal(err)
	}
	var sawLoad bool
	for _, c := range calls {
		if strings.Join(c.Argv, " ") == "/sbin/pfctl -o basic -f /tmp/rules.debug" && c.Exit == 0 {
			sawLoad = true
		}
	}
	if !sawLoad {
		t.Errorf("no `pfctl -o basic -f /tmp/rules.debug` (filter.inc:515) in the call log: %v", calls)
	}
}

func TestPfSenseRefusedRulesetKeepsOldAndExitsZero(t *testing.T) {
	t.Parallel()
	l, gate := startPfSense(t, labGatewayConfig(t, probeRule("8443"), probeAlias, ""))
	reload(t, l)
	good := readRoot(t, gate, emu.PFLoadedFile)
	// A tag pfctl cannot parse: pfSense writes it into rules.debug as it is
	// (filter.inc:3469; only the GUI validates it), and the unbalanced
	// quote is a syntax error (pfctl parse.y).
	conf := strings.Replace(readRoot(t, gate, "/cf/conf/config.xml"), "<descr><![CDATA[lab probe]]>", "<tag>x\" y</tag><descr><![CDATA[lab probe]]>", 1)
	if err := os.WriteFile(emu.Path(gate.Root, "/cf/conf/config.xml"), []byte(conf), 0o644); err != nil {
		t.Fatal(err)
	}
	out, errOut, err := runSSH(t, l, "gate", "rm -f /tmp/config.cache; /etc/rc.filter_configure_sync; echo exit=$?")
	if err != nil || !strings.HasSuffix(out, "exit=0\n") {
		t.Fatalf("rc.filter_configure_sync: %v, want exit 0 (filter.inc:561-564: a notice, then return)\nstdout:\n%s\nstderr:\n%s", err, out, errOut)
	}
	if rules := readRoot(t, gate, "/tmp/rules.debug"); !strings.Contains(rules, `tag "x" y"`) {
		t.Fatalf("/tmp/rules.debug is not the new ruleset:\n%s", rules)
	}
	if loaded := readRoot(t, gate, emu.PFLoadedFile); loaded != good {
		t.Errorf("the refused ruleset replaced the loaded one:\n%s", loaded)
	}
	notices := readRoot(t, gate, "/tmp/notices/notices.serial")
	if !strings.Contains(notices, "There were error(s) loading the rules") {
		t.Errorf("no filter_load notice (filter.inc:561, notices.inc:32): %q", notices)
	}
}

func TestPfSenseReloadAppliesNoStaticRoutes(t *testing.T) {
	t.Parallel()
	routes := `	<gateways>
		<gateway_item><interface>lan</interface><gateway>192.168.1.254</gateway><name>LABGW</name><weight>1</weight><ipprotocol>inet</ipprotocol><descr></descr></gateway_item>
	</gateways>
`
	conf := labGatewayConfig(t, "", "", routes)
	conf = bytes.Replace(conf, []byte("<staticroutes></staticroutes>"),
		[]byte("<staticroutes><route><network>10.99.0.0/24</network><gateway>LABGW</gateway><descr></descr></route></staticroutes>"), 1)
	l, gate := startPfSense(t, conf)
	reload(t, l)
	routeCalls := func() []string {
		calls, err := gate.Calls()
		if err != nil {
			t.Fatal(err)
		}
		var out []string
		for _, c := range calls {
			if len(c.Argv) > 1 && c.Argv[0] == "/sbin/route" && c.Argv[1] != "-n4" && c.Argv[1] != "-n6" {
				out = append(out, strings.Join(c.Argv, " "))
			}
		}
		return out
	}
	if rc := routeCalls(); len(rc) != 0 {
		t.Errorf("rc.filter_configure_sync changed routes: %v", rc)
	}
	// What pfSense's GUI does to apply them (system_routes.php:
	// system_routing_configure()).
	out, errOut, err := runSSH(t, l, "gate", `php -r 'require_once("config.inc"); require_once("system.inc"); system_routing_configure();'`)
	if err != nil {
		t.Fatalf("system_routing_configure: %v\n%s\n%s", err, out, errOut)
	}
	var added bool
	for _, c := range routeCalls() {
		if strings.Contains(c, "10.99.0.0/24") && strings.Contains(c, "192.168.1.254") {
			added = true
		}
	}
	if !added {
		t.Errorf("system_routing_configure added no route to 10.99.0.0/24: %v\nstderr:\n%s", routeCalls(), errOut)
	}
}

func TestPfSenseLoginShell(t *testing.T) {
	t.Parallel()
	l, _ := startPfSense(t, labGatewayConfig(t, "", "", ""), WithFile("gate", "/etc/rc.local", []byte("true\n"), 0o644))
	// rc.initial:35-36 prints this to stdout before running the command
	// (rc.initial:53-57, /bin/sh -c).
	out, errOut, err := runSSH(t, l, "gate", "echo hello")
	if err != nil {
		t.Fatalf("ssh gate: %v\n%s", err, errOut)
	}
	if want := ">>> Launching rc.local in background...\nhello\n"; out != want {
		t.Errorf("stdout = %q, want %q", out, want)
	}
	out, _, err = runSSH(t, l, "gate", "rm /etc/rc.local; echo gone")
	if err != nil {
		t.Fatal(err)
	}
	out, _, err = runSSH(t, l, "gate", "echo hello; exit 3")
	if out != "hello\n" {
		t.Errorf("without /etc/rc.local stdout = %q, want %q", out, "hello\n")
	}
	if err == nil || !strings.Contains(err.Error(), "exit status 3") {
		t.Errorf("exit status through rc.initial: %v", err)
	}
	pw := readRoot(t, l.Machine("gate"), "/etc/passwd")
	if !strings.HasPrefix(pw, "root:*:0:0:Charlie &:/root:/etc/rc.initial\n") {
		t.Errorf("root's shell on the gateway:\n%s", pw)
	}
}

func TestPfSenseCodeIsUpstream(t *testing.T) {
	t.Parallel()
	_, gate := startPfSense(t, labGatewayConfig(t, "", "", ""))
	up, err := PfSenseUpstream()
	if err != nil {
		t.Fatal(err)
	}
	for _, p := range pfSensePins {
		if strings.HasPrefix(p.src, "pear-") {
			continue // installed with the PHP 8 changes of netIPv6ForPHP8
		}
		want, err := os.ReadFile(filepath.Join(up, p.src))
		if err != nil {
			t.Fatal(err)
		}
		got, err := os.ReadFile(emu.Path(gate.Root, pfSenseMachinePath(p.src)))
		if err != nil {
			t.Errorf("%s: %v", p.src, err)
			continue
		}
		if !bytes.Equal(got, want) {
			t.Errorf("%s differs from upstream", pfSenseMachinePath(p.src))
		}
	}
	if _, err := os.Stat(emu.Path(gate.Root, "/etc/inc/filter.inc")); err != nil {
		t.Errorf("no /etc/inc/filter.inc: %v", err)
	}
}

func TestPfSenseChangedUpstreamRefused(t *testing.T) {
	if err := Requirements(); err != nil {
		t.Skip("lab: " + err.Error())
	}
	up, err := PfSenseUpstream()
	if err != nil {
		if os.Getenv("CI") == "true" {
			t.Fatal(err)
		}
		t.Skip(err)
	}
	dir := t.TempDir()
	for _, p := range pfSensePins {
		b, err := os.ReadFile(filepath.Join(up, p.src))
		if err != nil {
			t.Fatal(err)
		}
		if strings.HasSuffix(p.src, "/filter.inc") {
			b = append(b, "\n// changed\n"...)
		}
		if err := os.MkdirAll(filepath.Dir(filepath.Join(dir, p.src)), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(filepath.Join(dir, p.src), b, 0o644); err != nil {
			t.Fatal(err)
		}
	}
	t.Setenv(pfSenseUpstreamEnvs[0], dir)
	_, err = Up(context.Background(), loadExample(t), Options{Dir: t.TempDir(), PfSense: true})
	if err == nil || !strings.Contains(err.Error(), "filter.inc: sha256") {
		t.Fatalf("Up with a changed filter.inc: %v", err)
	}
	t.Setenv(pfSenseUpstreamEnvs[0], filepath.Join(dir, "missing"))
	if _, err := PfSenseUpstream(); err == nil {
		t.Error("a missing upstream folder is accepted")
	}
}

// TestPfSenseInstalledConfigLoads: the gateway's own first config.xml (the
// console's assignment for the topology, installedGatewayConfig) is read by
// pfSense's parser, its ruleset names the topology's NICs, the anti-lockout
// rule passes SSH on LAN (filter.inc:4219, 4905), and after the reload a
// new SSH connection still gets in: the lab does not lock itself out.
func TestPfSenseInstalledConfigLoads(t *testing.T) {
	t.Parallel()
	l := Start(t, loadExample(t), WithPfSense())
	gate := l.Machine("gate")
	reload(t, l)
	rules := readRoot(t, gate, "/tmp/rules.debug")
	for _, want := range []string{
		"WAN = \"{ igb0 }\"", "LAN = \"{ igb2 }\"", "OPT1 = \"{ igb1 }\"",
		"pass in  quick on igb2 proto tcp from any to (igb2) port { 443 80 22 }",
	} {
		if !strings.Contains(rules, want) {
			t.Errorf("/tmp/rules.debug lacks %q:\n%s", want, rules)
		}
	}
	if readRoot(t, gate, emu.PFLoadedFile) != rules {
		t.Error("pf did not load pfSense's ruleset")
	}
	if fw := readRoot(t, gate, emu.FirewallFile); fw != "open\n" {
		t.Errorf("firewall verdict after the reload: %q, want open", fw)
	}
	if out, errOut, err := runSSH(t, l, "gate", "echo", "in"); err != nil || !strings.Contains(out, "in") {
		t.Errorf("a new SSH connection after the reload: %v\n%s%s", err, out, errOut)
	}
}
