package policy

import (
	"net/netip"
	"slices"
	"strconv"

	"github.com/arbo-project/arbo/inventory"
)

// Derive lists every flow the topology allows, in this order:
//
//  1. for each tier (declaration order), the flows into it: each service's
//     `from` entries in order (WhyService), then same-tier traffic on each
//     of its own services (WhyReplication), then, for an Erlang tier
//     without an erlang service (whose replication flow is the same),
//     same-tier TCP 4369 and erlang.dist_ports (WhyErlang);
//  2. for each tier with jails, DNS (udp and tcp 53) to the resolvers;
//  3. for each tier, its egress toward destinations outside the cluster's
//     networks (`any`: one flow of any protocol; a list: one flow per entry;
//     `none`: nothing);
//  4. management SSH (tcp 22, or the machine's ssh.port) from the management prefixes to the machines,
//     one flow per distinct set of management prefixes (machines in
//     Cluster.Machines order).
//
// A `from` entry naming a tier without jails still yields a flow, with no
// addresses, so that the policy mirrors the file; it matches nothing.
func Derive(c *inventory.Cluster) *Policy {
	p := &Policy{Cluster: c.ClusterPrefixes()}
	tierEP := map[string]Endpoint{}
	for _, t := range c.Tiers {
		tierEP[t.Name] = Endpoint{Kind: KindTier, Tier: t.Name}
	}
	for _, j := range c.Jails() {
		e, ok := tierEP[j.Tier]
		if !ok {
			continue
		}
		e.Prefixes = append(e.Prefixes, single(j.IPs...)...)
		tierEP[j.Tier] = e
	}
	for name, e := range tierEP {
		e.Prefixes = uniqPrefixes(e.Prefixes)
		tierEP[name] = e
	}
	gw := gatewayEndpoint(c)

	for _, t := range c.Tiers {
		to := tierEP[t.Name]
		for _, s := range t.Services {
			proto, ports := serviceProtoPorts(c, s)
			for _, src := range s.From {
				var from Endpoint
				switch src.Kind {
				case inventory.SourceTier:
					from = tierEP[src.Name]
					if from.Kind == "" {
						from = Endpoint{Kind: KindTier, Tier: src.Name}
					}
				case inventory.SourceGateway:
					from = gw
				case inventory.SourceCIDR:
					from = Endpoint{Kind: KindCIDR, Prefixes: []netip.Prefix{src.CIDR}}
				default:
					continue
				}
				p.Flows = append(p.Flows, Flow{From: from, To: to, Proto: proto, Ports: ports,
					Why: WhyService, Service: s.Name, Pos: firstPos(src.Pos, s.Pos)})
			}
		}
		for _, s := range t.Services {
			proto, ports := serviceProtoPorts(c, s)
			p.Flows = append(p.Flows, Flow{From: to, To: to, Proto: proto, Ports: ports,
				Why: WhyReplication, Service: s.Name, Pos: s.Pos})
		}
		// an Erlang service's replication flow above already is exactly
		// this one; listing it twice would only double pf rules.
		if c.IsErlangTier(t.Name) && !slices.ContainsFunc(t.Services, func(s inventory.Service) bool { return s.Erlang }) {
			p.Flows = append(p.Flows, Flow{From: to, To: to, Proto: "tcp", Ports: c.ErlangPorts(),
				Why: WhyErlang, Pos: c.Erlang.Pos})
		}
	}

	if res := c.Resolvers(); len(res) > 0 {
		to := Endpoint{Kind: KindResolver, Prefixes: single(res...)}
		pos := c.Pos("dns.resolver_jail")
		if pos.Line == 0 && c.Gateway != nil {
			pos = firstPos(c.Pos("gateway.dns"), c.Gateway.Pos)
		}
		for _, t := range c.Tiers {
			from := tierEP[t.Name]
			if len(from.Prefixes) == 0 {
				continue
			}
			for _, proto := range []string{"udp", "tcp"} {
				p.Flows = append(p.Flows, Flow{From: from, To: to, Proto: proto,
					Ports: []inventory.PortRange{{Min: 53, Max: 53}}, Why: WhyDNS, Pos: pos})
			}
		}
	}

	for _, t := range c.Tiers {
		from := tierEP[t.Name]
		switch t.Egress.Mode {
		case inventory.EgressAny:
			p.Flows = append(p.Flows, Flow{From: from, To: Endpoint{Kind: KindOutside, Outside: true},
				Why: WhyEgress, Pos: firstPos(t.Egress.Pos, t.Pos)})
		case inventory.EgressList:
			for _, r := range t.Egress.Rules {
				var ports []inventory.PortRange
				if r.Ports.Min > 0 {
					ports = []inventory.PortRange{r.Ports}
				}
				p.Flows = append(p.Flows, Flow{From: from,
					To:    Endpoint{Kind: KindOutside, Prefixes: []netip.Prefix{r.To}, Outside: true},
					Proto: r.Proto, Ports: ports, Why: WhyEgress, Pos: r.Pos})
			}
		}
	}

	p.Flows = append(p.Flows, managementFlows(c)...)
	return p
}

// serviceProtoPorts is what a service listens on: an Erlang service is TCP
// 4369 plus the distribution range.
func serviceProtoPorts(c *inventory.Cluster, s inventory.Service) (string, []inventory.PortRange) {
	if s.Erlang {
		return "tcp", c.ErlangPorts()
	}
	return s.Proto, []inventory.PortRange{s.Ports}
}

func gatewayEndpoint(c *inventory.Cluster) Endpoint {
	e := Endpoint{Kind: KindGateway}
	if g := c.Gateway; g != nil {
		for _, gi := range g.Interfaces {
			e.Prefixes = append(e.Prefixes, single(gi.Address)...)
		}
		e.Prefixes = uniqPrefixes(e.Prefixes)
		e.Outside = true
	}
	return e
}

// MachineAddrs lists a machine's own addresses: its interface addresses and
// its ssh.address when that is an IP, sorted.
func MachineAddrs(c *inventory.Cluster, machine string) []netip.Addr {
	var out []netip.Addr
	if c.IsGateway(machine) {
		for _, gi := range c.Gateway.Interfaces {
			out = append(out, gi.Address)
		}
	} else if h := c.Host(machine); h != nil {
		for _, hi := range h.Interfaces {
			out = append(out, hi.Address)
		}
	}
	if a, err := netip.ParseAddr(c.MachineSSH(machine).Address); err == nil {
		out = append(out, a)
	}
	out = slices.DeleteFunc(out, func(a netip.Addr) bool { return !a.IsValid() })
	slices.SortFunc(out, netip.Addr.Compare)
	return slices.Compact(out)
}

func managementFlows(c *inventory.Cluster) []Flow {
	type group struct {
		from     []netip.Prefix
		port     int
		machines []string
		addrs    []netip.Prefix
	}
	var groups []*group
	byKey := map[string]*group{}
	for _, m := range c.Machines() {
		from := uniqPrefixes(c.ManagementPrefixes(m))
		if len(from) == 0 {
			continue
		}
		// SSH may listen elsewhere than 22 (ssh.port); the firewall must
		// keep the port arbo itself connects to open.
		port := c.MachineSSH(m).Port
		if port == 0 {
			port = 22
		}
		key := joinPrefixes(from) + " " + strconv.Itoa(port)
		g := byKey[key]
		if g == nil {
			g = &group{from: from, port: port}
			byKey[key] = g
			groups = append(groups, g)
		}
		g.machines = append(g.machines, m)
		g.addrs = append(g.addrs, single(MachineAddrs(c, m)...)...)
	}
	pos := c.Pos("management")
	out := make([]Flow, 0, len(groups))
	for _, g := range groups {
		out = append(out, Flow{
			From:  Endpoint{Kind: KindManagement, Prefixes: g.from},
			To:    Endpoint{Kind: KindMachine, Machines: g.machines, Prefixes: uniqPrefixes(g.addrs)},
			Proto: "tcp", Ports: []inventory.PortRange{{Min: g.port, Max: g.port}},
			Why: WhyManagement, Pos: pos,
		})
	}
	return out
}

func firstPos(ps ...inventory.Pos) inventory.Pos {
	for _, p := range ps {
		if p.Line > 0 {
			return p
		}
	}
	return inventory.Pos{}
}
