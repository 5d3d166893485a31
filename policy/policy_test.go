package policy

import (
	"net/netip"
	"strings"
	"testing"

	"github.com/arbo-project/arbo/internal/golden"

	"github.com/arbo-project/arbo/inventory"
)

func arboreus(t testing.TB) *inventory.Cluster {
	t.Helper()
	return golden.Example(t, "arboreus")
}

func TestDeriveArboreusFlows(t *testing.T) {
	p := Derive(arboreus(t))
	var got []string
	for _, f := range p.Flows {
		got = append(got, f.String())
	}
	want := []string{
		"gateway -> tier app tcp 8443 (service https)",
		"tier app -> tier app tcp 8443 (same-tier replication https)",
		"tier app -> tier app tcp 4369,9100-9115 (erlang distribution)",
		"tier app -> tier data tcp 4369,9100-9115 (service mnesia)",
		"tier data -> tier data tcp 4369,9100-9115 (same-tier replication mnesia)",
		"tier app -> resolver udp 53 (dns)",
		"tier app -> resolver tcp 53 (dns)",
		"tier data -> resolver udp 53 (dns)",
		"tier data -> resolver tcp 53 (dns)",
		"tier app -> outside any (egress)",
		"192.168.1.0/24 -> gate,server1,server2 tcp 22 (management ssh)",
	}
	if g, w := strings.Join(got, "\n"), strings.Join(want, "\n"); g != w {
		t.Fatalf("flows:\n%s\nwant:\n%s", g, w)
	}
	if p.Flows[0].Pos.Line != 48 {
		t.Errorf("https flow at %v, want line 48 (its from entry)", p.Flows[0].Pos)
	}
}

func TestAllowsArboreus(t *testing.T) {
	p := Derive(arboreus(t))
	const (
		app1     = "10.20.1.11"
		app2     = "10.20.1.12"
		db1      = "10.20.2.11"
		db2      = "10.20.2.12"
		gate     = "192.168.1.1"
		server1  = "192.168.1.11"
		internet = "8.8.8.8"
		laptop   = "192.168.1.50"
	)
	tests := []struct {
		src, dst, proto string
		port            int
		want            string // the flow's Why, "" for denied
	}{
		{internet, app1, "tcp", 8443, WhyService},   // forwarded clients keep their address
		{gate, app2, "tcp", 8443, WhyService},       // the gateway itself
		{internet, app1, "tcp", 8444, ""},           // not a service port
		{internet, db1, "tcp", 4369, ""},            // data never from outside
		{db1, app1, "tcp", 8443, ""},                // data is not in https's from
		{laptop, app1, "tcp", 8443, ""},             // inside the cluster, neither gateway nor a tier
		{app1, app2, "tcp", 8443, WhyReplication},   // same tier, own service
		{app1, app2, "tcp", 9105, WhyErlang},        // Erlang tier among itself
		{app1, db2, "tcp", 4369, WhyService},        // mnesia from app
		{app1, db2, "tcp", 9115, WhyService},        // top of dist_ports
		{app1, db2, "tcp", 9116, ""},                // just above
		{app1, db2, "udp", 4369, ""},                // wrong proto
		{db1, db2, "tcp", 9100, WhyReplication},     // data replication
		{db1, app1, "tcp", 4369, ""},                // not from data to app
		{db1, gate, "udp", 53, WhyDNS},              // resolver
		{db1, gate, "tcp", 53, WhyDNS},              // resolver
		{db1, gate, "tcp", 80, ""},                  // nothing else to the gateway
		{db1, internet, "tcp", 443, ""},             // data egress none
		{app1, internet, "tcp", 443, WhyEgress},     // app egress any
		{app1, internet, "icmp", 0, WhyEgress},      // any protocol
		{app1, db1, "tcp", 5432, ""},                // egress never reaches inside the cluster
		{laptop, server1, "tcp", 22, WhyManagement}, // management
		{laptop, gate, "tcp", 22, WhyManagement},
		{internet, server1, "tcp", 22, ""},
		{laptop, app1, "tcp", 22, ""}, // SSH into jails is not management
	}
	for _, tt := range tests {
		f, ok := p.Allows(netip.MustParseAddr(tt.src), netip.MustParseAddr(tt.dst), tt.proto, tt.port)
		got := ""
		if ok {
			got = f.Why
		}
		if got != tt.want {
			t.Errorf("%s -> %s %s/%d: got %q (%v), want %q", tt.src, tt.dst, tt.proto, tt.port, got, f, tt.want)
		}
	}
}

// variant loads the example and lets a test change it before Finish.
func variant(t *testing.T, change func(c *inventory.Cluster)) *Policy {
	t.Helper()
	c := arboreus(t)
	change(c)
	return Derive(c.Finish())
}

func TestAllowsVariants(t *testing.T) {
	a := netip.MustParseAddr
	tests := []struct {
		name     string
		change   func(c *inventory.Cluster)
		src, dst string
		proto    string
		port     int
		want     bool
	}{
		{"cidr source", func(c *inventory.Cluster) {
			c.Tier("data").Services = append(c.Tier("data").Services, inventory.Service{Name: "pg", Proto: "tcp",
				Ports: inventory.PortRange{Min: 5432, Max: 5432},
				From:  []inventory.Source{{Kind: inventory.SourceCIDR, CIDR: netip.MustParsePrefix("192.168.1.0/28")}}})
		}, "192.168.1.5", "10.20.2.11", "tcp", 5432, true},
		{"cidr source, outside the cidr", func(c *inventory.Cluster) {
			c.Tier("data").Services = append(c.Tier("data").Services, inventory.Service{Name: "pg", Proto: "tcp",
				Ports: inventory.PortRange{Min: 5432, Max: 5432},
				From:  []inventory.Source{{Kind: inventory.SourceCIDR, CIDR: netip.MustParsePrefix("192.168.1.0/28")}}})
		}, "192.168.1.50", "10.20.2.11", "tcp", 5432, false},
		{"egress list inside the entry", func(c *inventory.Cluster) {
			c.Tier("data").Egress = inventory.Egress{Mode: inventory.EgressList, Rules: []inventory.EgressRule{
				{To: netip.MustParsePrefix("203.0.113.0/24"), Proto: "tcp", Ports: inventory.PortRange{Min: 443, Max: 443}}}}
		}, "10.20.2.11", "203.0.113.7", "tcp", 443, true},
		{"egress list other port", func(c *inventory.Cluster) {
			c.Tier("data").Egress = inventory.Egress{Mode: inventory.EgressList, Rules: []inventory.EgressRule{
				{To: netip.MustParsePrefix("203.0.113.0/24"), Proto: "tcp", Ports: inventory.PortRange{Min: 443, Max: 443}}}}
		}, "10.20.2.11", "203.0.113.7", "tcp", 80, false},
		{"egress list entry covering a cluster network stays outside", func(c *inventory.Cluster) {
			c.Tier("data").Egress = inventory.Egress{Mode: inventory.EgressList, Rules: []inventory.EgressRule{
				{To: netip.MustParsePrefix("0.0.0.0/0")}}}
		}, "10.20.2.11", "10.20.1.11", "tcp", 8443, false},
		{"egress list entry without proto: any protocol", func(c *inventory.Cluster) {
			c.Tier("data").Egress = inventory.Egress{Mode: inventory.EgressList, Rules: []inventory.EgressRule{
				{To: netip.MustParsePrefix("0.0.0.0/0")}}}
		}, "10.20.2.11", "1.1.1.1", "udp", 123, true},
		{"no gateway: gateway source matches nothing outside", func(c *inventory.Cluster) {
			c.Gateway = nil
			c.Management = nil
		}, "8.8.8.8", "10.20.1.11", "tcp", 8443, false},
		{"default management: the network of ssh.address", func(c *inventory.Cluster) {
			c.Management = nil
		}, "192.168.1.77", "192.168.1.12", "tcp", 22, true},
		{"ssh.port is the management port", func(c *inventory.Cluster) {
			c.Host("server2").SSH.Port = 2222
		}, "192.168.1.77", "192.168.1.12", "tcp", 2222, true},
		{"ssh.port replaces 22", func(c *inventory.Cluster) {
			c.Host("server2").SSH.Port = 2222
		}, "192.168.1.77", "192.168.1.12", "tcp", 22, false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			p := variant(t, tt.change)
			f, ok := p.Allows(a(tt.src), a(tt.dst), tt.proto, tt.port)
			if ok != tt.want {
				t.Fatalf("Allows = %v (%v), want %v", ok, f, tt.want)
			}
		})
	}
}

func TestIntoOutOf(t *testing.T) {
	p := Derive(arboreus(t))
	if n := len(p.Into("data")); n != 2 {
		t.Errorf("Into(data) = %d flows, want 2 (mnesia from app, replication)", n)
	}
	if n := len(p.OutOf("data")); n != 3 {
		t.Errorf("OutOf(data) = %d flows, want 3 (replication, dns udp/tcp)", n)
	}
}

func TestDeriveDeterministic(t *testing.T) {
	a, b := Derive(arboreus(t)), Derive(arboreus(t))
	if len(a.Flows) != len(b.Flows) {
		t.Fatal("flow count differs")
	}
	for i := range a.Flows {
		if a.Flows[i].String() != b.Flows[i].String() || joinPrefixes(a.Flows[i].To.Prefixes) != joinPrefixes(b.Flows[i].To.Prefixes) {
			t.Fatalf("flow %d differs: %v vs %v", i, a.Flows[i], b.Flows[i])
		}
	}
}
