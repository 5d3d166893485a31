package dns

import (
	"bytes"
	"context"
	"fmt"
	"net"
	"net/netip"
	"os"
	"os/exec"
	"path/filepath"
	"reflect"
	"regexp"
	"slices"
	"sort"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/arbo-project/arbo/internal/golden"

	"github.com/arbo-project/arbo/inventory"
	"github.com/arbo-project/arbo/templates"
)

var examples = []string{"arboreus", "single-host"}

// tool finds a validator: tests skip without it, except under CI=true,
// where a missing validator is a failure.
func tool(t *testing.T, name string) string {
	t.Helper()
	for _, p := range []string{name, "/usr/sbin/" + name, "/usr/bin/" + name} {
		if path, err := exec.LookPath(p); err == nil {
			return path
		}
	}
	if os.Getenv("CI") == "true" {
		t.Fatalf("%s is not installed (apt-get install unbound bind9-utils bind9-dnsutils)", name)
	}
	t.Skipf("%s is not installed", name)
	return ""
}

func TestGolden(t *testing.T) {
	for _, ex := range examples {
		c := golden.Example(t, ex)
		zones, err := ZoneFiles(c, templates.Default())
		if err != nil {
			t.Fatal(err)
		}
		for name, b := range zones {
			golden.Check(t, filepath.Join(ex, "zones", name), b)
		}
		for _, h := range c.Hosts {
			files, err := RenderResolver(c, h, templates.Default())
			if err != nil {
				t.Fatal(err)
			}
			for _, f := range files {
				golden.Check(t, filepath.Join(ex, h.Name, f.Path), f.Content)
				if f.Jail != c.DNS.ResolverJail || len(f.Reload) != 1 || f.Reload[0].Target != c.DNS.ResolverJail {
					t.Errorf("%s: jail %q reload %v", f.Path, f.Jail, f.Reload)
				}
			}
		}
		var b bytes.Buffer
		g := Gateway(c)
		for _, o := range g.Overrides {
			fmt.Fprintf(&b, "override %+v\n", o)
		}
		for _, l := range g.LocalData {
			fmt.Fprintln(&b, l)
		}
		golden.Check(t, filepath.Join(ex, "gateway.txt"), b.Bytes())
	}
}

func TestDeterministic(t *testing.T) {
	for _, ex := range examples {
		a, err1 := ZoneFiles(golden.Example(t, ex), templates.Default())
		b, err2 := ZoneFiles(golden.Example(t, ex), templates.Default())
		if err1 != nil || err2 != nil || !reflect.DeepEqual(a, b) {
			t.Errorf("%s: zone files differ between two renders (%v, %v)", ex, err1, err2)
		}
		if !reflect.DeepEqual(Gateway(golden.Example(t, ex)), Gateway(golden.Example(t, ex))) {
			t.Errorf("%s: Gateway differs between two calls", ex)
		}
	}
}

func TestBuild(t *testing.T) {
	c := golden.Example(t, "arboreus")
	z := Build(c)
	has := func(name, typ, data string) bool {
		return slices.Contains(z.Records, Record{Name: name, Type: typ, Data: data})
	}
	for _, r := range []Record{
		{"arboreus.internal", "NS", "ns.arboreus.internal."},
		{"ns.arboreus.internal", "A", "192.168.1.1"},
		{"app1.arboreus.internal", "A", "10.20.1.11"},
		{"app.arboreus.internal", "A", "10.20.1.11"},
		{"app.arboreus.internal", "A", "10.20.1.12"},
		{"data.arboreus.internal", "A", "10.20.2.12"},
	} {
		if !has(r.Name, r.Type, r.Data) {
			t.Errorf("missing %+v", r)
		}
	}
	for _, p := range z.PTRs {
		if !strings.HasPrefix(p.Name, "app") && !strings.HasPrefix(p.Name, "db") || strings.HasPrefix(p.Name, "app.") {
			t.Errorf("a PTR names a jail, never a tier: %+v", p)
		}
	}
	if len(z.PTRs) != 4 {
		t.Errorf("want one PTR per jail address, got %v", z.PTRs)
	}
}

func TestReverseZone(t *testing.T) {
	c, err := inventory.Parse("t.yaml", []byte(`
version: 1
cluster: t
domain: t.internal
networks:
  lan:  { cidr: 192.168.1.0/24 }
  n22:  { cidr: 10.4.0.0/22 }
  n16:  { cidr: 10.5.0.0/16 }
  n8:   { cidr: 11.0.0.0/8 }
  v64:  { cidr: "fd00:1:2:3::/64" }
  v62:  { cidr: "fd00:1:2:4::/62" }
tiers:
  app: { role: app, network: n22 }
hosts:
  - name: h1
    ssh: { address: 192.168.1.11 }
    interfaces: [{ device: em0, network: lan, address: 192.168.1.11 }]
`))
	if err != nil {
		t.Fatal(err)
	}
	tests := []struct{ addr, want string }{
		{"192.168.1.20", "1.168.192.in-addr.arpa"},
		{"10.4.1.7", "4.10.in-addr.arpa"}, // a /22 goes into its covering /16
		{"10.5.3.4", "5.10.in-addr.arpa"},
		{"11.2.3.4", "11.in-addr.arpa"},
		{"172.16.9.9", "9.16.172.in-addr.arpa"}, // in no network: /24
		{"fd00:1:2:3::5", "3.0.0.0.2.0.0.0.1.0.0.0.0.0.d.f.ip6.arpa"},
		{"fd00:1:2:5::5", "0.0.0.2.0.0.0.1.0.0.0.0.0.d.f.ip6.arpa"}, // /62 → /60
	}
	for _, tt := range tests {
		if got := ReverseZone(c, netip.MustParseAddr(tt.addr)); got != tt.want {
			t.Errorf("%s: %s, want %s", tt.addr, got, tt.want)
		}
	}
	if got := ReverseName(netip.MustParseAddr("10.20.1.11")); got != "11.1.20.10.in-addr.arpa" {
		t.Errorf("ReverseName: %s", got)
	}
}

// Reverse zones that nest (a /17, widened to its /16 zone, and a /24 inside
// that /16): the inner zone folds into the outer one.
func TestReverseZonesFold(t *testing.T) {
	c, err := inventory.Parse("t.yaml", []byte(`
version: 1
cluster: t
domain: t.internal
networks:
  lan:  { cidr: 192.168.1.0/24 }
  wide: { cidr: 10.5.0.0/17 }
  app:  { cidr: 10.5.200.0/24 }
tiers:
  app:  { role: app, network: app }
  wide: { role: infra, network: wide }
hosts:
  - name: h1
    ssh: { address: 192.168.1.11 }
    interfaces: [{ device: em0, network: lan, address: 192.168.1.11 }]
    jails:
      - { name: a1, tier: app, ip: 10.5.200.11 }
      - { name: w1, tier: wide, ip: 10.5.9.9 }
`))
	if err != nil {
		t.Fatal(err)
	}
	zones, err := ZoneFiles(c, templates.Default())
	if err != nil {
		t.Fatal(err)
	}
	var names []string
	for n := range zones {
		names = append(names, n)
	}
	sort.Strings(names)
	if !reflect.DeepEqual(names, []string{"5.10.in-addr.arpa.zone", "t.internal.zone"}) {
		t.Errorf("zones %v", names)
	}
	z := string(zones["5.10.in-addr.arpa.zone"])
	for _, want := range []string{"9.9\tIN\tPTR\tw1.t.internal.\n", "11.200\tIN\tPTR\ta1.t.internal.\n"} {
		if !strings.Contains(z, want) {
			t.Errorf("folded zone lacks %q:\n%s", want, z)
		}
	}
	if strings.Index(z, "9.9\t") > strings.Index(z, "11.200\t") {
		t.Errorf("PTRs not in address order:\n%s", z)
	}
}

func TestSerial(t *testing.T) {
	a := Serial("x", []ZoneRecord{{"a", "A", "10.0.0.1"}})
	b := Serial("x", []ZoneRecord{{"a", "A", "10.0.0.2"}})
	if a == b || a == 0 || a > 0x7fffffff {
		t.Errorf("serials %d %d", a, b)
	}
	if a != Serial("x", []ZoneRecord{{"a", "A", "10.0.0.1"}}) {
		t.Error("serial is not a function of the records")
	}
}

func TestNamedCheckzone(t *testing.T) {
	checkzone := tool(t, "named-checkzone")
	for _, ex := range examples {
		zones, err := ZoneFiles(golden.Example(t, ex), templates.Default())
		if err != nil {
			t.Fatal(err)
		}
		dir := t.TempDir()
		for name, b := range zones {
			p := filepath.Join(dir, name)
			if err := os.WriteFile(p, b, 0o644); err != nil {
				t.Fatal(err)
			}
			// Warnings about names, NS/MX/SRV targets and CNAMEs are failures.
			out, err := exec.Command(checkzone, "-k", "fail", "-n", "fail", "-m", "fail", "-M", "fail", "-S", "fail", "-i", "local",
				strings.TrimSuffix(name, ".zone"), p).CombinedOutput()
			if err != nil || !strings.Contains(string(out), "OK") {
				t.Errorf("%s/%s: named-checkzone: %v\n%s\n%s", ex, name, err, out, b)
			}
		}
	}
}

// testable rewrites a resolver configuration so that it runs here: no
// user, chroot, directory or pidfile, listening on 127.0.0.1:port.
func testable(conf []byte, port int) []byte {
	s := string(conf)
	for _, k := range []string{"username", "chroot", "directory", "pidfile"} {
		s = regexp.MustCompile(`(?m)^\t`+k+`: .*$`).ReplaceAllString(s, "\t"+k+`: ""`)
	}
	s = regexp.MustCompile(`(?m)^\tinterface: .*\n`).ReplaceAllString(s, "")
	s = strings.Replace(s, "server:\n", fmt.Sprintf("server:\n\tinterface: 127.0.0.1\n\tport: %d\n\tdo-daemonize: no\n\tuse-syslog: no\n\tlogfile: \"\"\n", port), 1)
	return []byte(s)
}

// resolverConf renders the resolver configuration of an example; for
// arboreus, which has none, app1 plays the resolver jail.
func resolverConf(t *testing.T, ex string) (*inventory.Cluster, []byte) {
	c := golden.Example(t, ex)
	if c.DNS.ResolverJail == "" {
		c.DNS.ResolverJail = "app1"
	}
	j := c.Jail(c.DNS.ResolverJail)
	files, err := RenderResolver(c, c.Host(j.Host), templates.Default())
	if err != nil {
		t.Fatal(err)
	}
	if len(files) != 2 || !strings.HasSuffix(files[0].Path, UnboundConf) {
		t.Fatalf("files %v", files)
	}
	if !strings.Contains(string(files[1].Content), "\nunbound_enable=\"YES\"\n") {
		t.Errorf("rc.conf.local: %s", files[1].Content)
	}
	return c, files[0].Content
}

func TestUnboundCheckconf(t *testing.T) {
	checkconf := tool(t, "unbound-checkconf")
	for _, ex := range examples {
		_, conf := resolverConf(t, ex)
		p := filepath.Join(t.TempDir(), "unbound.conf")
		if err := os.WriteFile(p, testable(conf, 5353), 0o644); err != nil {
			t.Fatal(err)
		}
		if out, err := exec.Command(checkconf, p).CombinedOutput(); err != nil {
			t.Errorf("%s: unbound-checkconf: %v\n%s\n%s", ex, err, out, testable(conf, 5353))
		}
	}
	// The checker is real: a broken record fails it.
	_, conf := resolverConf(t, "arboreus")
	bad := strings.Replace(string(conf), "IN A 10.20.1.11", "IN A 10.20.1.300", 1)
	p := filepath.Join(t.TempDir(), "bad.conf")
	if err := os.WriteFile(p, testable([]byte(bad), 5353), 0o644); err != nil {
		t.Fatal(err)
	}
	if err := exec.Command(checkconf, p).Run(); err == nil {
		t.Error("unbound-checkconf accepts a bad address")
	}
}

// freePort is a loopback port free for both UDP and TCP: unbound binds
// both (a port free for UDP only made TestUnboundServes fail now and then
// with "can't bind socket: Address already in use" on a busy box).
func freePort(t *testing.T) int {
	for range 50 {
		l, err := net.ListenPacket("udp", "127.0.0.1:0")
		if err != nil {
			t.Fatal(err)
		}
		port := l.LocalAddr().(*net.UDPAddr).Port
		tl, err := net.Listen("tcp", net.JoinHostPort("127.0.0.1", strconv.Itoa(port)))
		l.Close()
		if err == nil {
			tl.Close()
			return port
		}
	}
	t.Fatal("no loopback port free for both UDP and TCP")
	return 0
}

func TestUnboundServes(t *testing.T) {
	unbound := tool(t, "unbound")
	dig := tool(t, "dig")
	for _, tc := range []struct {
		ex, name string
		rr       []string
		ptrAddr  string
		ptrName  string
	}{
		{"arboreus", "app.arboreus.internal", []string{"10.20.1.11", "10.20.1.12"}, "10.20.2.12", "db2.arboreus.internal."},
		{"single-host", "app1.solo.internal", []string{"10.30.1.10"}, "10.30.3.10", "ns1.solo.internal."},
	} {
		t.Run(tc.ex, func(t *testing.T) {
			_, conf := resolverConf(t, tc.ex)
			port := freePort(t)
			p := filepath.Join(t.TempDir(), "unbound.conf")
			if err := os.WriteFile(p, testable(conf, port), 0o644); err != nil {
				t.Fatal(err)
			}
			ctx, cancel := context.WithCancel(context.Background())
			defer cancel()
			cmd := exec.CommandContext(ctx, unbound, "-d", "-c", p)
			var stderr bytes.Buffer
			cmd.Stderr = &stderr
			if err := cmd.Start(); err != nil {
				t.Fatal(err)
			}
			defer func() { cancel(); _ = cmd.Wait() }()

			query := func(args ...string) []string {
				full := append([]string{"@127.0.0.1", "-p", strconv.Itoa(port), "+short", "+time=1", "+tries=1"}, args...)
				out, err := exec.Command(dig, full...).Output()
				if err != nil {
					return nil
				}
				lines := strings.Fields(string(out))
				sort.Strings(lines)
				return lines
			}
			// Wait until unbound answers (readiness, not a timing assertion).
			var got []string
			for i := 0; i < 50; i++ {
				if got = query(tc.name, "A"); len(got) > 0 {
					break
				}
				time.Sleep(100 * time.Millisecond)
			}
			if !reflect.DeepEqual(got, tc.rr) {
				t.Fatalf("%s A: %v, want %v\nunbound: %s", tc.name, got, tc.rr, stderr.String())
			}
			if got := query("-x", tc.ptrAddr); !reflect.DeepEqual(got, []string{tc.ptrName}) {
				t.Errorf("PTR %s: %v, want %s", tc.ptrAddr, got, tc.ptrName)
			}
			jail := strings.TrimSuffix(tc.ptrName, ".")
			if got := query(jail, "A"); !reflect.DeepEqual(got, []string{tc.ptrAddr}) {
				t.Errorf("%s A: %v, want %s", jail, got, tc.ptrAddr)
			}
		})
	}
}

func TestGateway(t *testing.T) {
	c := golden.Example(t, "single-host")
	g := Gateway(c)
	if len(g.Overrides) != 3 || g.Overrides[1] != (HostOverride{Host: "app1", Domain: "solo.internal", IP: "10.30.1.10", Descr: "arbo:solo:jail:app1"}) {
		t.Errorf("overrides %+v", g.Overrides)
	}
	for _, l := range g.LocalData {
		if !strings.HasPrefix(l, `local-data: "`) || !strings.HasSuffix(l, `"`) {
			t.Errorf("not a local-data line: %s", l)
		}
		for _, j := range []string{"app1", "db1", "ns1"} {
			if strings.HasPrefix(l, `local-data: "`+j+".") {
				t.Errorf("jail record %q is a host override, not local-data", l)
			}
		}
	}
	for _, want := range []string{
		`local-data: "app.solo.internal. 60 IN A 10.30.1.10"`,
		`local-data: "www.solo.internal. 60 IN CNAME app1.solo.internal."`,
		`local-data: "_https._tcp.solo.internal. 60 IN SRV 10 5 8443 app1.solo.internal."`,
	} {
		if !slices.Contains(g.LocalData, want) {
			t.Errorf("missing %s in %q", want, g.LocalData)
		}
	}
}
