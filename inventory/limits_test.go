package inventory

import (
	"net/netip"
	"testing"
)

// A host-local jail address is routed through a next hop of its own family:
// alpha and beta share an IPv4 interconnect and an IPv6 lan, and beta's IPv6
// jail is reached through beta's lan address, its IPv4 one through link.
func TestRoutesTakeTheJailsFamily(t *testing.T) {
	c, err := Load("testdata/good/ipv6-two-hosts.yaml")
	if err != nil {
		t.Fatal(err)
	}
	want := map[string]string{
		"fd00:20::10/128": "2001:db8:1::10",
		"10.40.9.10/32":   "192.168.50.10",
		"10.40.2.10/32":   "192.168.50.10",
	}
	got := map[string]string{}
	for _, r := range c.Routes("beta") {
		got[r.Dest.String()] = r.Via.String()
		if r.Dest.Addr().Is4() != r.Via.Is4() {
			t.Errorf("route to %s via %s: families differ", r.Dest, r.Via)
		}
	}
	for d, v := range want {
		if got[d] != v {
			t.Errorf("beta's route to %s: via %q, want %s (all: %v)", d, got[d], v, got)
		}
	}
	if via, ok := c.RouteViaFor("alpha", c.Host("beta"), netip.MustParseAddr("fd00:20::11")); !ok || via.String() != "2001:db8:1::11" {
		t.Errorf("RouteViaFor = %s %v", via, ok)
	}
}
