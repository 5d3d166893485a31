package pf

import (
	"net/netip"
	"slices"
	"strings"
	"testing"

	"github.com/arbo-project/arbo/inventory"
	"github.com/arbo-project/arbo/policy"
	"github.com/arbo-project/arbo/templates"
)

// parsed renders host h's pf.conf and parses it, bound to the host's
// addresses the way check/rendered binds it: interface addresses on their
// devices, jail addresses on lo1 (or their attached device).
func parsed(t *testing.T, c *inventory.Cluster, h *inventory.Host, ts *templates.Set) *Ruleset {
	t.Helper()
	f, err := Render(c, h, ts)
	if err != nil {
		t.Fatal(err)
	}
	r, err := Parse(h.Name+":"+Path, f.Content)
	if err != nil {
		t.Fatal(err)
	}
	n := &Network{Local: map[netip.Addr]string{}}
	for _, hi := range h.Interfaces {
		n.Local[hi.Address] = hi.Device
		if nw := c.Network(hi.Network); nw != nil {
			n.Attached = append(n.Attached, Attached{Iface: hi.Device, Prefix: nw.CIDR})
		}
	}
	for _, j := range h.Jails {
		for _, a := range j.IPs {
			n.Local[a] = c.JailInterface(h, a)
		}
	}
	if dev, _, ok := c.WayOut(h); ok {
		n.Default = dev
	}
	r.Net = n
	return r
}

// ARBO012 (issue 10 item 4): a jail's packets to its host's own addresses
// cross lo0 (sys/netinet/in.c: every interface address has a loopback
// route through lo0), so lo0 is filtered: the host still reaches itself
// and its jails, the jails reach the host only where the topology allows,
// and jail-to-jail traffic keeps the tier policy.
func TestLoopbackFiltered(t *testing.T) {
	c := twoHosts()
	h := c.Hosts[0]
	r := parsed(t, c, h, templates.Default())
	if len(r.Skips()) != 0 {
		t.Fatalf("set skip on %v: lo0 must be filtered", r.Skips())
	}
	app1, db1, ns1 := ip("10.20.1.11"), ip("10.20.2.11"), ip("10.20.3.11")
	lo, em0, em1 := ip("127.0.0.1"), ip("192.168.1.11"), ip("192.168.2.11")
	r.Net.Local[lo] = "lo0"
	for _, tc := range []struct {
		name     string
		src, dst netip.Addr
		proto    string
		port     int
		want     bool
	}{
		{"jail to the host's sshd", app1, em0, "tcp", 22, false},
		{"jail to the host's sshd on its second interface", db1, em1, "tcp", 22, false},
		{"jail to a host daemon bound to *", ns1, em0, "udp", 53, false},
		{"egress-any jail to the host (the host is no outside address)", app1, em0, "tcp", 443, false},
		{"host to itself on 127.0.0.1", lo, lo, "tcp", 25, true},
		{"host to its own interface address", em0, em0, "tcp", 22, true},
		// The host's unjailed socket to a lo1 jail takes the jail's own
		// address as its source (sys/netinet/in_pcb.c in_pcbladdr, loopback
		// route case), so that is the jail-to-itself rule.
		{"jail to itself, or the host to its jail", app1, app1, "tcp", 8443, true},
		{"jail to jail, allowed by services.from", app1, db1, "tcp", 4369, true},
		{"jail to jail, not allowed", db1, app1, "tcp", 8443, false},
	} {
		if got := r.Allows(tc.src, tc.dst, tc.proto, tc.port); got != tc.want {
			t.Errorf("%s: %s -> %s %s %d: passes %v, want %v (crossings %v)", tc.name, tc.src, tc.dst, tc.proto, tc.port, got, tc.want, r.Net.Crossings(tc.src, tc.dst))
		}
	}
	// SSH from the management network still gets in first (ARBO010).
	if !r.FirstMatchPasses(ip("192.168.1.50"), em0, "tcp", 22) {
		t.Error("management SSH is no longer passed by the first matching rule")
	}
}

// Before the fix: the same file with `set skip on lo0` put back (a
// template override, or arbo before issue 10 item 4) lets a jail reach the
// host's sshd. This is what ARBO012 must catch.
func TestLoopbackSkippedLetsJailsIn(t *testing.T) {
	c := twoHosts()
	h := c.Hosts[0]
	r := parsed(t, c, h, templates.Default())
	r.Skip = append(r.Skip, "lo0")
	r.memo.valid = false
	if !r.Allows(ip("10.20.1.11"), ip("192.168.1.11"), "tcp", 22) {
		t.Error("with lo0 skipped a jail should reach the host's sshd unfiltered; the model lost the lo0 crossing")
	}
}

// A jail whose address is on an attached network (not lo1) reaches its own
// address over lo0, like the host's; that keeps working, and so does the
// host without jails, whose lo0 passes whole.
func TestLoopbackAttachedJailAndNoJails(t *testing.T) {
	c := twoHosts()
	h := c.Hosts[0]
	h.Jails = append(h.Jails, &inventory.Jail{Name: "web1", Tier: "app", IPs: []netip.Addr{ip("192.168.2.50")}})
	c.Finish()
	f, err := Render(c, h, templates.Default())
	if err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(string(f.Content), "\npass quick on lo0 from 192.168.2.50 to 192.168.2.50 keep state\n") {
		t.Errorf("no lo0 self rule for a jail on an attached network:\n%s", f.Content)
	}
	r := parsed(t, c, h, templates.Default())
	web1 := ip("192.168.2.50")
	if !r.Allows(web1, web1, "tcp", 8443) {
		t.Error("a jail on an attached network cannot reach itself")
	}
	if r.Allows(web1, ip("192.168.1.11"), "tcp", 22) {
		t.Error("a jail on an attached network reaches its host's sshd")
	}
	if !r.Allows(web1, ip("10.20.1.11"), "tcp", 8443) {
		t.Error("same-tier traffic between an attached jail and a lo1 jail of the host no longer passes")
	}

	h2 := c.Hosts[1]
	h2.Jails = nil
	c.Finish()
	f, err = Render(c, h2, templates.Default())
	if err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(string(f.Content), "\npass quick on lo0 all keep state\n") {
		t.Errorf("a host without jails must pass its lo0 whole:\n%s", f.Content)
	}
}

// Where the topology does allow a jail to reach its host (here: the
// management networks include the jails' network, so SSH from them to
// every machine is allowed), that flow, and only it, passes.
func TestLoopbackAllowedFlow(t *testing.T) {
	c := twoHosts()
	c.Management = append(c.Management, inventory.Source{Kind: inventory.SourceNetwork, Name: "app", CIDR: pfx("10.20.1.0/24")})
	c.Finish()
	h := c.Hosts[0]
	d, err := Build(c, h, policy.Derive(c))
	if err != nil {
		t.Fatal(err)
	}
	if !slices.ContainsFunc(d.Filter, func(s Statement) bool {
		return s.Text == "pass quick proto tcp from 10.20.1.11 to { 192.168.1.11, 192.168.2.11 } port 22 keep state"
	}) {
		t.Errorf("no pass rule for the allowed jail-to-host flow: %+v", d.Filter)
	}
	r := parsed(t, c, h, templates.Default())
	if !r.Allows(ip("10.20.1.11"), ip("192.168.1.11"), "tcp", 22) {
		t.Error("the management flow from the app network to the host is not passed")
	}
	if r.Allows(ip("10.20.1.11"), ip("192.168.1.11"), "tcp", 25) {
		t.Error("a port the flow does not name passes")
	}
	if r.Allows(ip("10.20.2.11"), ip("192.168.1.11"), "tcp", 22) {
		t.Error("a jail outside the management networks reaches the host's sshd")
	}
}
