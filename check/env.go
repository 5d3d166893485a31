package check

import (
	"net/netip"
	"slices"

	"github.com/arbo-project/arbo/inventory"
	"github.com/arbo-project/arbo/policy"
)

// env is what the rules share: the topology, its policy, and indexes built
// once so that every rule stays linear in the number of jails.
type env struct {
	c     *inventory.Cluster
	o     Options
	p     *policy.Policy
	model Ruleset

	tierJails map[string][]*inventory.Jail  // declaration order
	tierHosts map[string][]string           // distinct hosts holding the tier, declaration order
	hostTiers map[string][]string           // tiers with jails on the host, tier declaration order
	firstOn   map[[2]string]*inventory.Jail // {host, tier} → its first jail there
	gwAddrs   map[netip.Addr]bool
	resolvers map[netip.Addr]bool
	outside4  netip.Addr // probe sources outside the cluster's networks
	outside6  netip.Addr
}

func newEnv(c *inventory.Cluster, o Options) *env {
	x := &env{c: c, o: o, p: policy.Derive(c),
		tierJails: map[string][]*inventory.Jail{},
		tierHosts: map[string][]string{},
		hostTiers: map[string][]string{},
		firstOn:   map[[2]string]*inventory.Jail{},
		gwAddrs:   map[netip.Addr]bool{},
		resolvers: map[netip.Addr]bool{},
	}
	x.model = PolicyRuleset{x.p}
	present := map[[2]string]bool{}
	for _, h := range c.Hosts {
		for _, j := range h.Jails {
			x.tierJails[j.Tier] = append(x.tierJails[j.Tier], j)
			if !present[[2]string{h.Name, j.Tier}] {
				present[[2]string{h.Name, j.Tier}] = true
				x.firstOn[[2]string{h.Name, j.Tier}] = j
				x.tierHosts[j.Tier] = append(x.tierHosts[j.Tier], h.Name)
			}
		}
		for _, t := range c.Tiers {
			if present[[2]string{h.Name, t.Name}] {
				x.hostTiers[h.Name] = append(x.hostTiers[h.Name], t.Name)
			}
		}
	}
	if g := c.Gateway; g != nil {
		for _, gi := range g.Interfaces {
			x.gwAddrs[gi.Address] = true
		}
	}
	for _, a := range c.Resolvers() {
		x.resolvers[a] = true
	}
	// Documentation and benchmarking ranges first: they are the least
	// likely to be a cluster's own.
	for _, s := range []string{"192.0.2.200", "198.18.0.200", "203.0.113.200", "100.64.0.200", "8.8.8.8"} {
		a := netip.MustParseAddr(s)
		if x.p.IsOutside(a) && !x.gwAddrs[a] {
			x.outside4 = a
			break
		}
	}
	for _, s := range []string{"2001:db8::200", "2001:4860:4860::8888"} {
		a := netip.MustParseAddr(s)
		if x.p.IsOutside(a) && !x.gwAddrs[a] {
			x.outside6 = a
			break
		}
	}
	return x
}

// remoteJail is the first jail of tier on a host other than host, found
// without scanning the tier: only the first jail of the tier's first two
// hosts can be it.
func (x *env) remoteJail(tier, host string) *inventory.Jail {
	hs := x.tierHosts[tier]
	var other string
	switch {
	case len(hs) > 0 && hs[0] != host:
		other = hs[0]
	case len(hs) > 1:
		other = hs[1]
	default:
		return nil
	}
	return x.firstOn[[2]string{other, tier}]
}

// ruleset is the firewall of machine m: the one given in Options, else the
// topology's own policy.
func (x *env) ruleset(m string) (rs Ruleset, given bool) {
	if rs, ok := x.o.Rulesets[m]; ok && rs != nil {
		return rs, true
	}
	return x.model, false
}

// gatewayAddr is the gateway's address on the first cluster network it is
// attached to: where the traffic it originates comes from.
func (x *env) gatewayAddr() (netip.Addr, bool) {
	if g := x.c.Gateway; g != nil {
		for _, gi := range g.Interfaces {
			if gi.Network != "" {
				return gi.Address, true
			}
		}
	}
	return netip.Addr{}, false
}

func (x *env) role(tier string) string {
	if t := x.c.Tier(tier); t != nil {
		return t.Role
	}
	return ""
}

// Machine lists for the rule table.

func hosts(x *env) []string {
	out := make([]string, len(x.c.Hosts))
	for i, h := range x.c.Hosts {
		out[i] = h.Name
	}
	return out
}

func machines(x *env) []string { return x.c.Machines() }

func cluster(*env) []string { return []string{inventory.MachineCluster} }

func gateway(x *env) []string {
	if x.c.Gateway == nil {
		return nil
	}
	return []string{x.c.Gateway.Name}
}

// serviceMatches reports whether service s of a tier listens on proto/port.
func serviceMatches(c *inventory.Cluster, s inventory.Service, proto string, port int) bool {
	if s.Erlang {
		return proto == "tcp" && inErlangPorts(c, port)
	}
	return s.Proto == proto && s.Ports.Contains(port)
}

func inErlangPorts(c *inventory.Cluster, port int) bool {
	return slices.ContainsFunc(c.ErlangPorts(), func(r inventory.PortRange) bool { return r.Contains(port) })
}

func overlapsErlangPorts(c *inventory.Cluster, r inventory.PortRange) bool {
	return slices.ContainsFunc(c.ErlangPorts(), r.Overlaps)
}

// repAddr is an address inside p to probe with: p itself when it is one
// address, else the first host address after the network address.
func repAddr(p netip.Prefix) netip.Addr {
	p = p.Masked()
	if p.IsSingleIP() {
		return p.Addr()
	}
	if a := p.Addr().Next(); p.Contains(a) {
		return a
	}
	return p.Addr()
}
