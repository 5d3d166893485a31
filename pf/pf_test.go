package pf

import (
	"net/netip"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/arbo-project/arbo/internal/golden"
	"github.com/arbo-project/arbo/inventory"
	"github.com/arbo-project/arbo/policy"
	"github.com/arbo-project/arbo/state"
	"github.com/arbo-project/arbo/templates"
)

func pfx(s string) netip.Prefix { return netip.MustParsePrefix(s) }
func ip(s string) netip.Addr    { return netip.MustParseAddr(s) }

// twoHosts is a hand-built cluster like the Arboreus example, with an
// egress list on a third, infra tier so that every kind of flow appears.
func twoHosts() *inventory.Cluster {
	c := &inventory.Cluster{
		Name: "t", Domain: "t.internal",
		Management: []inventory.Source{{Kind: inventory.SourceNetwork, Name: "seg1", CIDR: pfx("192.168.1.0/24")}},
		Networks: []*inventory.Network{
			{Name: "seg1", CIDR: pfx("192.168.1.0/24")},
			{Name: "seg2", CIDR: pfx("192.168.2.0/24"), Interconnect: true},
			{Name: "app", CIDR: pfx("10.20.1.0/24")},
			{Name: "data", CIDR: pfx("10.20.2.0/24")},
			{Name: "infra", CIDR: pfx("10.20.3.0/24")},
		},
		Gateway: &inventory.Gateway{Name: "gate", Kind: "pfsense", DNS: true, Interfaces: []inventory.GatewayInterface{
			{Name: "wan", Device: "igb0", Address: ip("203.0.113.10"), Prefix: pfx("203.0.113.0/24"), Gateway: ip("203.0.113.1")},
			{Name: "lan", Device: "igb2", Network: "seg1", Address: ip("192.168.1.1"), Prefix: pfx("192.168.1.0/24")},
		}},
		Tiers: []*inventory.Tier{
			{Name: "app", Role: inventory.RoleApp, Network: "app", Egress: inventory.Egress{Mode: inventory.EgressAny},
				Services: []inventory.Service{{Name: "https", Proto: "tcp", Ports: inventory.PortRange{Min: 8443, Max: 8443},
					From: []inventory.Source{{Kind: inventory.SourceGateway}, {Kind: inventory.SourceCIDR, CIDR: pfx("198.51.100.0/24")}}}}},
			{Name: "data", Role: inventory.RoleData, Network: "data", Egress: inventory.Egress{Mode: inventory.EgressNone},
				Services: []inventory.Service{{Name: "mnesia", Proto: "tcp", Erlang: true,
					From: []inventory.Source{{Kind: inventory.SourceTier, Name: "app"}}}}},
			{Name: "infra", Role: inventory.RoleInfra, Network: "infra", Egress: inventory.Egress{Mode: inventory.EgressList,
				Rules: []inventory.EgressRule{
					{To: pfx("0.0.0.0/0"), Proto: "udp", Ports: inventory.PortRange{Min: 123, Max: 123}},
					{To: pfx("192.0.2.0/24"), Proto: "tcp", Ports: inventory.PortRange{Min: 443, Max: 443}},
				}}},
		},
		Erlang: &inventory.Erlang{Tiers: []string{"app", "data"}, Basename: "t", DistPorts: inventory.PortRange{Min: 9100, Max: 9115}},
		Hosts: []*inventory.Host{
			{Name: "s1", SSH: inventory.SSH{Address: "192.168.1.11"},
				Interfaces: []inventory.HostInterface{{Device: "em0", Network: "seg1", Address: ip("192.168.1.11")}, {Device: "em1", Network: "seg2", Address: ip("192.168.2.11")}},
				Jails: []*inventory.Jail{
					{Name: "app1", Tier: "app", IPs: []netip.Addr{ip("10.20.1.11")}},
					{Name: "db1", Tier: "data", IPs: []netip.Addr{ip("10.20.2.11")}},
					{Name: "ns1", Tier: "infra", IPs: []netip.Addr{ip("10.20.3.11")}},
				}},
			{Name: "s2", SSH: inventory.SSH{Address: "192.168.1.12"},
				Interfaces: []inventory.HostInterface{{Device: "em0", Network: "seg1", Address: ip("192.168.1.12")}, {Device: "em1", Network: "seg2", Address: ip("192.168.2.12")}},
				Jails: []*inventory.Jail{
					{Name: "app2", Tier: "app", IPs: []netip.Addr{ip("10.20.1.12")}},
				}},
		},
	}
	return c.Finish()
}

func findFlow(t *testing.T, p *policy.Policy, match func(policy.Flow) bool) policy.Flow {
	t.Helper()
	for _, f := range p.Flows {
		if match(f) {
			return f
		}
	}
	t.Fatal("no such flow in the policy")
	return policy.Flow{}
}

func TestFlowRules(t *testing.T) {
	c := twoHosts()
	p := policy.Derive(c)
	v1 := newHostView(c, c.Hosts[0])
	v2 := newHostView(c, c.Hosts[1])
	tier := func(to, why string) func(policy.Flow) bool {
		return func(f policy.Flow) bool { return f.To.Kind == policy.KindTier && f.To.Tier == to && f.Why == why }
	}
	cases := []struct {
		name string
		v    *hostView
		flow func(policy.Flow) bool
		want []string
	}{
		{"service from gateway keeps the client's address", v1,
			func(f policy.Flow) bool { return f.From.Kind == policy.KindGateway },
			[]string{
				"pass quick proto tcp from <arbo_gateway> to <arbo_app> port 8443 keep state",
				"pass quick proto tcp from ! <arbo_cluster> to <arbo_app> port 8443 keep state",
			}},
		{"service from a CIDR", v1,
			func(f policy.Flow) bool { return f.From.Kind == policy.KindCIDR },
			[]string{"pass quick proto tcp from 198.51.100.0/24 to <arbo_app> port 8443 keep state"}},
		{"service from a tier: Erlang ports, no direction", v1,
			func(f policy.Flow) bool { return f.Why == policy.WhyService && f.To.Tier == "data" },
			[]string{"pass quick proto tcp from <arbo_app> to <arbo_data> port { 4369, 9100:9115 } keep state"}},
		{"same-tier replication", v1, tier("app", policy.WhyReplication),
			[]string{"pass quick proto tcp from <arbo_app> to <arbo_app> port 8443 keep state"}},
		{"same-tier Erlang", v1, tier("app", policy.WhyErlang),
			[]string{"pass quick proto tcp from <arbo_app> to <arbo_app> port { 4369, 9100:9115 } keep state"}},
		{"dns to the resolvers", v1,
			func(f policy.Flow) bool { return f.Why == policy.WhyDNS && f.Proto == "udp" && f.From.Tier == "data" },
			[]string{"pass quick proto udp from <arbo_data> to <arbo_ns> port 53 keep state"}},
		{"egress any of a NATed tier: tagged", v1,
			func(f policy.Flow) bool { return f.Why == policy.WhyEgress && f.From.Tier == "app" },
			[]string{"pass out quick on $wayout tagged arbo_nat_app keep state"}},
		{"egress list entry to everything: tagged, raw prefix", v1,
			func(f policy.Flow) bool { return f.Why == policy.WhyEgress && f.Proto == "udp" },
			[]string{"pass out quick on $wayout proto udp to 0.0.0.0/0 port 123 tagged arbo_nat_infra keep state"}},
		{"egress list entry to a CIDR", v1,
			func(f policy.Flow) bool {
				return f.Why == policy.WhyEgress && f.Proto == "tcp" && f.From.Tier == "infra"
			},
			[]string{"pass out quick on $wayout proto tcp to 192.0.2.0/24 port 443 tagged arbo_nat_infra keep state"}},
		{"egress of a tier with no jail on the host: nothing", v2,
			func(f policy.Flow) bool {
				return f.Why == policy.WhyEgress && f.From.Tier == "infra" && f.Proto == "udp"
			},
			nil},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			f := findFlow(t, p, tc.flow)
			var got []string
			if tc.v.involves(f, policy.MachineAddrs(c, tc.v.h.Name)) {
				for _, s := range tc.v.flowRules(f) {
					got = append(got, s.Text)
				}
			}
			if strings.Join(got, "\n") != strings.Join(tc.want, "\n") {
				t.Errorf("flow %s:\n got %q\nwant %q", f, got, tc.want)
			}
		})
	}
}

// An egress entry whose CIDR overlaps the cluster's networks allows only
// the part outside them to jails that leave untranslated.
func TestEgressDirectSubtractsCluster(t *testing.T) {
	c := twoHosts()
	c.Hosts[0].Jails[2].IPs = []netip.Addr{ip("192.168.1.53")} // infra jail on an attached network: no NAT
	c.Finish()
	v := newHostView(c, c.Hosts[0])
	f := policy.Flow{From: policy.Endpoint{Kind: policy.KindTier, Tier: "infra"},
		To:    policy.Endpoint{Kind: policy.KindOutside, Outside: true, Prefixes: []netip.Prefix{pfx("192.168.0.0/22")}},
		Proto: "tcp", Ports: []inventory.PortRange{{Min: 443, Max: 443}}, Why: policy.WhyEgress}
	var got []string
	for _, s := range v.flowRules(f) {
		got = append(got, s.Text)
	}
	want := "pass quick proto tcp from <arbo_infra> to { 192.168.0.0/24, 192.168.3.0/24 } port 443 keep state"
	if len(got) != 1 || got[0] != want {
		t.Errorf("got %q, want %q", got, want)
	}
}

func TestSubtract(t *testing.T) {
	cases := []struct {
		p    string
		cut  []string
		want string
	}{
		{"10.0.0.0/8", []string{"192.168.0.0/16"}, "10.0.0.0/8"},
		{"10.1.0.0/16", []string{"10.0.0.0/8"}, ""},
		{"10.0.0.0/30", []string{"10.0.0.1/32"}, "10.0.0.0/32,10.0.0.2/31"},
		{"0.0.0.0/0", []string{"128.0.0.0/1"}, "0.0.0.0/1"},
		{"2001:db8::/32", []string{"10.0.0.0/8"}, "2001:db8::/32"},
	}
	for _, tc := range cases {
		var cut []netip.Prefix
		for _, s := range tc.cut {
			cut = append(cut, pfx(s))
		}
		var got []string
		for _, p := range subtractAll(pfx(tc.p), cut) {
			got = append(got, p.String())
		}
		if strings.Join(got, ",") != tc.want {
			t.Errorf("%s - %v = %v, want %s", tc.p, tc.cut, got, tc.want)
		}
	}
}

func render(t *testing.T, c *inventory.Cluster, h *inventory.Host) state.File {
	t.Helper()
	f, err := Render(c, h, templates.Default())
	if err != nil {
		t.Fatal(err)
	}
	return f
}

// filterRules returns the filter statements of a rendered file, in order.
func filterRules(conf []byte) []string {
	var out []string
	for _, s := range statements(string(conf)) {
		w := strings.Fields(s.text)[0]
		if w == "pass" || w == "block" {
			out = append(out, s.text)
		}
	}
	return out
}

// ARBO004 on one host: every rule that lets one tier reach a tier with a
// jail on this host carries no direction and no interface, or names lo1,
// so that both passes of a lo1 packet (out, then in) match.
func TestSameHostTiersUndirected(t *testing.T) {
	c := twoHosts()
	f := render(t, c, c.Hosts[0])
	n := 0
	for _, r := range filterRules(f.Content) {
		if !strings.HasPrefix(r, "pass") || !strings.Contains(r, "from <arbo_") {
			continue
		}
		to := r[strings.Index(r, " to "):]
		if !strings.Contains(to, "<arbo_") || strings.Contains(to, "<arbo_cluster>") {
			continue
		}
		n++
		undirected := !strings.Contains(r, " in ") && !strings.Contains(r, " out ") && !strings.Contains(r, " on ")
		if !undirected && !strings.Contains(r, " on lo1 ") {
			t.Errorf("jail-to-jail rule with a direction or a wire interface: %s", r)
		}
	}
	if n < 4 {
		t.Errorf("only %d jail-to-jail rules found; the test looks at nothing", n)
	}
}

func TestStructure(t *testing.T) {
	c := twoHosts()
	f := render(t, c, c.Hosts[0])
	if f.Path != "/etc/pf.conf" || f.Mode != 0o644 || f.Owner != "root" || f.Group != "wheel" || len(f.Reload) != 1 || f.Reload[0].Kind != state.ReloadPF {
		t.Errorf("file metadata: %+v", f)
	}
	rules := filterRules(f.Content)
	if len(rules) < 2 || rules[0] != "pass in quick proto tcp from $mgmt_nets to ! <arbo_local_jails> port $ssh_port flags any keep state" {
		t.Errorf("first filter rule must be management SSH with flags any (ARBO010), got %q", rules[0])
	}
	if rules[1] != "block drop log all" {
		t.Errorf("second filter rule must be the default deny, got %q", rules[1])
	}
	for _, r := range rules[2:] {
		if !strings.Contains(r, " quick ") {
			t.Errorf("after the default deny every rule must be quick: %s", r)
		}
	}
	s := string(f.Content)
	if strings.Contains(s, "\nset skip") {
		t.Error("no interface may be skipped: lo0 carries a jail's packets to its own host (ARBO012)")
	}
	for _, want := range []string{
		"\npass quick on lo0 from ! <arbo_local_jails> to any keep state\n",
		"\nblock drop log quick on lo0 from <arbo_local_jails> to ! <arbo_local_jails>\n",
		"\nscrub in all\n",
		"\nmgmt_nets = \"192.168.1.0/24\"\n",
		"\ntable <arbo_app> const { 10.20.1.11, 10.20.1.12 }\n",
		"\nno nat on $wayout from { 10.20.1.11, 10.20.2.11, 10.20.3.11 } to <arbo_cluster>\n",
		"\nnat on $wayout inet from 10.20.1.11 to ! <arbo_cluster> tag arbo_nat_app -> ($wayout)\n",
	} {
		if !strings.Contains(s, want) {
			t.Errorf("missing %q", strings.TrimSpace(want))
		}
	}
	if strings.Contains(s, "tag arbo_nat_data") {
		t.Error("a tier with egress none must not be NATed")
	}
	if strings.Index(s, "\nno nat ") > strings.Index(s, "\nnat on ") {
		t.Error("no nat must come before nat (first matching nat rule wins)")
	}
	// NATed jail packets carry the host's address: the tagged block must
	// come before the host's own outbound rule, or that rule would pass them.
	blk := strings.Index(s, "\nblock drop log quick on $wayout tagged arbo_nat_infra\n")
	host := strings.Index(s, "\npass out quick from $host_addrs to any keep state\n")
	if blk < 0 || host < 0 || blk > host {
		t.Errorf("tagged block (%d) must precede the host outbound rule (%d)", blk, host)
	}
	if probs := Lint(f.Content); len(probs) != 0 {
		t.Errorf("lint: %v", probs)
	}
}

func TestNoWayOutNoNat(t *testing.T) {
	c := twoHosts()
	c.Gateway = nil
	c.Finish()
	f := render(t, c, c.Hosts[0])
	s := string(f.Content)
	if strings.Contains(s, "\nnat ") || strings.Contains(s, "$wayout") || strings.Contains(s, "tagged") {
		t.Errorf("a host without a way out must get no NAT and no wayout macro:\n%s", s)
	}
}

func TestNoManagementIsAnError(t *testing.T) {
	c := twoHosts()
	c.Management = nil
	c.Hosts[0].SSH.Address = "server1.example" // a name: no default management network
	c.Finish()
	if _, err := Render(c, c.Hosts[0], templates.Default()); err == nil || !strings.Contains(err.Error(), "ARBO010") {
		t.Errorf("want an ARBO010 error, got %v", err)
	}
}

func TestTierTable(t *testing.T) {
	if got := TierTable("web-front"); got != "arbo_web_front" {
		t.Errorf("TierTable = %q", got)
	}
	long := TierTable(strings.Repeat("a", 32))
	if len(long) > 31 || long != TierTable(strings.Repeat("a", 32)) || long == TierTable(strings.Repeat("a", 31)+"b") {
		t.Errorf("shortened table name %q is too long, unstable or colliding", long)
	}
}

func TestTemplateOverride(t *testing.T) {
	dir := t.TempDir()
	// An override that puts the filter before the translation fails the lint.
	bad := "wayout = \"em0\"\npass all\nblock drop log all\nnat on $wayout from 10.0.0.1 to any -> ($wayout)\n"
	if err := os.WriteFile(filepath.Join(dir, TemplateName), []byte(bad), 0o644); err != nil {
		t.Fatal(err)
	}
	ts, err := templates.Load(dir)
	if err != nil {
		t.Fatal(err)
	}
	c := twoHosts()
	if _, err := Render(c, c.Hosts[0], ts); err == nil || !strings.Contains(err.Error(), "lint") {
		t.Errorf("want a lint error for an out-of-order override, got %v", err)
	}
}

func TestGolden(t *testing.T) {
	for _, ex := range []string{"arboreus", "single-host"} {
		c := golden.Example(t, ex)
		for _, h := range c.Hosts {
			golden.Check(t, ex+"."+h.Name+".pf.conf", render(t, c, h).Content)
		}
	}
}
