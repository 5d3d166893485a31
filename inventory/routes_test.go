package inventory_test

import (
	"fmt"
	"math/rand/v2"
	"net/netip"
	"strings"
	"testing"

	"github.com/arbo-project/arbo/examples/gen"
	"github.com/arbo-project/arbo/inventory"
)

// lookup is the kernel's choice: the longest prefix among rs that holds a.
func lookup(rs []inventory.Route, a netip.Addr) (inventory.Route, bool) {
	var best inventory.Route
	found := false
	for _, r := range rs {
		if r.Dest.Contains(a) && (!found || r.Dest.Bits() > best.Dest.Bits()) {
			best, found = r, true
		}
	}
	return best, found
}

// checkRoutes proves the routing table of every machine right: each peer's
// host-local jail address leads to that peer, no route covers an address
// the topology gives to anything else, and no machine routes to itself.
func checkRoutes(t *testing.T, c *inventory.Cluster) {
	t.Helper()
	type who struct {
		host string
		lo1  bool
	}
	owner := map[netip.Addr]who{}
	for _, h := range c.Hosts {
		for _, j := range h.Jails {
			for _, a := range j.IPs {
				owner[a] = who{h.Name, c.JailInterface(h, a) == "lo1"}
			}
		}
		for _, hi := range h.Interfaces {
			owner[hi.Address] = who{}
		}
	}
	for _, m := range c.Machines() {
		rs := c.Routes(m)
		for _, r := range rs {
			if r.Host == m {
				t.Errorf("%s routes %s to itself", m, r.Dest)
			}
			for a, w := range owner {
				if r.Dest.Contains(a) && (!w.lo1 || w.host != r.Host) {
					t.Errorf("%s: route %s via %s (%s) covers %s, which belongs to %q", m, r.Dest, r.Via, r.Host, a, w.host)
				}
			}
		}
		for a, w := range owner {
			if !w.lo1 || w.host == m {
				continue
			}
			via, ok := c.RouteViaFor(m, c.Host(w.host), a)
			if !ok {
				continue
			}
			r, found := lookup(rs, a)
			if !found || r.Via != via || r.Host != w.host {
				t.Errorf("%s: %s (on %s) resolves to %v (found %v), want via %s", m, a, w.host, r, found, via)
			}
		}
	}
}

func TestRoutesAggregatePerHost(t *testing.T) {
	// arbo-gen numbers each host's jails from a block of 32 per tier network:
	// two routes per peer (one per tier), whatever the number of jails.
	c, err := inventory.Parse("gen.yaml", gen.Topology(12, 20))
	if err != nil {
		t.Fatal(err)
	}
	checkRoutes(t, c)
	for _, m := range c.Machines() {
		rs := c.Routes(m)
		peers := map[string]int{}
		for _, r := range rs {
			peers[r.Host]++
		}
		for p, n := range peers {
			if n != 2 {
				t.Errorf("%s has %d routes to %s's jails, want 2", m, n, p)
			}
		}
		want := 12
		if m != "gate" {
			want = 11
		}
		if len(peers) != want {
			t.Errorf("%s reaches %d peers, want %d", m, len(peers), want)
		}
	}
	if got := c.HostPrefixes(c.Host("host2")); fmt.Sprint(got) != "[10.64.0.32/27 10.80.0.32/27]" {
		t.Errorf("host2's prefixes = %v", got)
	}
}

const routesBase = `
version: 1
cluster: t
domain: t.internal
networks:
  lan:  { cidr: 192.168.1.0/24 }
  lan6: { cidr: 'fd00:ff::/64' }
  app:  { cidr: 10.1.0.0/16 }
  data: { cidr: 10.2.0.0/24 }
  v6:   { cidr: fd00:1::/64 }
tiers:
  app:  { role: app, network: app }
  data: { role: data, network: data }
  six:  { role: app, network: v6 }
hosts:
`

func host(n int, jails string) string {
	return fmt.Sprintf(`  - name: h%d
    ssh: { address: 192.168.1.%d }
    interfaces:
      - { device: em0, network: lan, address: 192.168.1.%d }
      - { device: em1, network: lan6, address: 'fd00:ff::%d' }
    jails: [%s]
`, n, 10+n, 10+n, n, jails)
}

func TestRoutesTable(t *testing.T) {
	tests := []struct {
		name  string
		hosts string
		want  map[string]string // host → its prefixes
	}{
		{
			name: "a block each",
			hosts: host(1, "{name: a1, tier: app, ip: 10.1.0.1}, {name: a2, tier: app, ip: 10.1.0.2}, {name: a3, tier: app, ip: 10.1.0.3}") +
				host(2, "{name: b1, tier: app, ip: 10.1.0.33}, {name: b2, tier: app, ip: 10.1.0.40}"),
			want: map[string]string{"h1": "[10.1.0.0/30]", "h2": "[10.1.0.32/28]"},
		},
		{
			// A jail numbered inside a peer's block (a moved jail keeps its
			// address): the block splits around it, nobody relies on
			// longest-prefix match.
			name: "a foreign jail inside a block",
			hosts: host(1, "{name: a1, tier: app, ip: 10.1.0.1}, {name: a2, tier: app, ip: 10.1.0.6}") +
				host(2, "{name: b1, tier: app, ip: 10.1.0.4}, {name: b2, tier: app, ip: 10.1.0.33}"),
			want: map[string]string{"h1": "[10.1.0.1/32 10.1.0.6/32]", "h2": "[10.1.0.4/32 10.1.0.33/32]"},
		},
		{
			name:  "IPv6",
			hosts: host(1, "{name: s1, tier: six, ip: 'fd00:1::1'}, {name: s2, tier: six, ip: 'fd00:1::2'}") + host(2, "{name: s3, tier: six, ip: 'fd00:1::1:5'}"),
			want:  map[string]string{"h1": "[fd00:1::/126]", "h2": "[fd00:1::1:5/128]"},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c, err := inventory.Parse("t.yaml", []byte(routesBase+tt.hosts))
			if err != nil {
				t.Fatal(err)
			}
			checkRoutes(t, c)
			for h, want := range tt.want {
				if got := fmt.Sprint(c.HostPrefixes(c.Host(h))); got != want {
					t.Errorf("%s: prefixes %s, want %s", h, got, want)
				}
			}
		})
	}
}

// Jails in a network a machine attaches live on that interface, not on
// lo1: nobody routes to them, and no prefix of a host-local network reaches
// into an attached one.
func TestRoutesAttachedNetworkNeedsNoRoutes(t *testing.T) {
	att := func(n int, jails string) string {
		return fmt.Sprintf(`  - name: h%d
    ssh: { address: 192.168.1.%d }
    interfaces:
      - { device: em0, network: lan, address: 192.168.1.%d }
      - { device: em1, network: data, address: 10.2.0.%d }
    jails: [%s]
`, n, 10+n, 10+n, 200+n, jails)
	}
	y := routesBase + att(1, "{name: d1, tier: data, ip: 10.2.0.1}, {name: a1, tier: app, ip: 10.1.0.1}") + att(2, "{name: d3, tier: data, ip: 10.2.0.9}")
	c, err := inventory.Parse("t.yaml", []byte(y))
	if err != nil {
		t.Fatal(err)
	}
	checkRoutes(t, c)
	if got := fmt.Sprint(c.HostPrefixes(c.Host("h1"))); got != "[10.1.0.1/32]" {
		t.Errorf("h1: %s, want only its app jail", got)
	}
	if got := c.HostPrefixes(c.Host("h2")); len(got) != 0 {
		t.Errorf("h2 has prefixes %v for a jail on an attached network", got)
	}
}

// Random numbering, many seeds: the tables stay right whatever the layout.
func TestRoutesRandomLayouts(t *testing.T) {
	for seed := uint64(1); seed <= 200; seed++ {
		r := rand.New(rand.NewPCG(seed, 7))
		used := map[int]bool{}
		var b strings.Builder
		n := 1 + r.IntN(5)
		for h := 1; h <= n; h++ {
			var js []string
			for k := 0; k < 1+r.IntN(6); k++ {
				o := 1 + r.IntN(60)
				if used[o] {
					continue
				}
				used[o] = true
				js = append(js, fmt.Sprintf("{name: j%d-%d, tier: app, ip: 10.1.0.%d}", h, k, o))
			}
			if len(js) == 0 {
				js = append(js, fmt.Sprintf("{name: j%d-x, tier: app, ip: 10.1.1.%d}", h, h))
			}
			b.WriteString(host(h, strings.Join(js, ", ")))
		}
		c, err := inventory.Parse("t.yaml", []byte(routesBase+b.String()))
		if err != nil {
			t.Fatalf("seed %d: %v", seed, err)
		}
		checkRoutes(t, c)
		if t.Failed() {
			t.Fatalf("seed %d:\n%s", seed, b.String())
		}
	}
}
