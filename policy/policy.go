// Package policy derives, from a topology, every network flow the cluster
// allows (TOPOLOGY.md, "Tiers": services.from, the "Always allowed"
// paragraph, egress; and management SSH), as data that both the pf renderer
// and the checks read. Everything not listed is denied.
//
// The rules (which flows a topology implies) live in Derive; the model they
// produce (Policy, Flow, Endpoint) knows nothing of the topology, so that a
// pf.conf parser can later produce a Policy from a rendered or live ruleset
// and the same checks can run on it.
package policy

import (
	"net/netip"
	"slices"
	"strings"
	"sync"

	"github.com/arbo-project/arbo/inventory"
)

// Endpoint kinds.
const (
	// KindTier is the jails of one tier: Prefixes are their addresses.
	KindTier = "tier"
	// KindGateway is `from: gateway`: the gateway's own addresses
	// (Prefixes) and, because a pfSense port forward keeps the client's
	// source address, every address outside the cluster's networks when
	// the cluster has a gateway (Outside).
	KindGateway = "gateway"
	// KindCIDR is a CIDR written in a `from` list.
	KindCIDR = "cidr"
	// KindManagement is the management networks SSH comes from.
	KindManagement = "management"
	// KindOutside is anything outside the cluster's networks, optionally
	// narrowed to Prefixes (an egress list entry).
	KindOutside = "outside"
	// KindResolver is the cluster's DNS resolvers.
	KindResolver = "resolver"
	// KindMachine is machines themselves (hosts, gateway): the target of
	// management SSH. Machines names them; Prefixes are their addresses.
	KindMachine = "machine"
)

// Why values: the reason a flow exists, for pf comments and check messages.
const (
	WhyService     = "service"
	WhyReplication = "same-tier replication"
	WhyErlang      = "erlang distribution"
	WhyDNS         = "dns"
	WhyEgress      = "egress"
	WhyManagement  = "management ssh"
)

// Endpoint is one side of a flow.
type Endpoint struct {
	Kind     string
	Tier     string   // KindTier
	Machines []string // KindMachine
	// Prefixes are the concrete addresses: a tier's jail addresses as
	// single-address prefixes, the CIDR, the management prefixes, the
	// resolvers, the gateway's addresses, a machine's interface addresses.
	Prefixes []netip.Prefix
	// Outside widens the endpoint to every address outside the cluster's
	// networks (Policy.Cluster). For KindOutside with Prefixes, an address
	// must be both outside the cluster and in Prefixes; for KindGateway it
	// is the gateway's addresses or any outside address.
	Outside bool
}

// String names the endpoint for messages: "tier app", "gateway", a CIDR.
func (e Endpoint) String() string {
	switch e.Kind {
	case KindTier:
		return "tier " + e.Tier
	case KindCIDR, KindManagement:
		return joinPrefixes(e.Prefixes)
	case KindMachine:
		return strings.Join(e.Machines, ",")
	case KindOutside:
		if len(e.Prefixes) > 0 {
			return "outside " + joinPrefixes(e.Prefixes)
		}
		return "outside"
	}
	return e.Kind
}

func joinPrefixes(ps []netip.Prefix) string {
	s := make([]string, len(ps))
	for i, p := range ps {
		s[i] = p.String()
	}
	return strings.Join(s, ",")
}

// Flow is one allowed connection: From may open Proto connections to To's
// Ports. Firewalls are stateful, so replies are implied.
type Flow struct {
	From, To Endpoint
	Proto    string                // "tcp" | "udp" | "" (any protocol: egress any, an egress entry without proto)
	Ports    []inventory.PortRange // empty: any port
	Why      string                // one of the Why* constants
	Service  string                // the service's name, for WhyService and WhyReplication
	Pos      inventory.Pos         // where in the topology this flow comes from
}

// String describes the flow in one line: "tier app -> tier data tcp 4369,9100-9115 (service mnesia)".
func (f Flow) String() string {
	var b strings.Builder
	b.WriteString(f.From.String())
	b.WriteString(" -> ")
	b.WriteString(f.To.String())
	b.WriteString(" ")
	if f.Proto == "" {
		b.WriteString("any")
	} else {
		b.WriteString(f.Proto)
	}
	if len(f.Ports) > 0 {
		b.WriteString(" ")
		for i, r := range f.Ports {
			if i > 0 {
				b.WriteString(",")
			}
			b.WriteString(r.String())
		}
	}
	b.WriteString(" (")
	b.WriteString(f.Why)
	if f.Service != "" {
		b.WriteString(" ")
		b.WriteString(f.Service)
	}
	b.WriteString(")")
	return b.String()
}

// MatchesPort reports whether the flow covers proto/port.
func (f Flow) MatchesPort(proto string, port int) bool {
	if f.Proto != "" && f.Proto != proto {
		return false
	}
	if len(f.Ports) == 0 {
		return true
	}
	for _, r := range f.Ports {
		if r.Contains(port) {
			return true
		}
	}
	return false
}

// Policy is the complete list of allowed flows, in a deterministic order.
// Do not change Flows or Cluster after the first call to Allows: the
// address index is built once.
type Policy struct {
	Flows []Flow
	// Cluster is the cluster's own networks: Outside endpoints mean
	// addresses outside all of these.
	Cluster []netip.Prefix

	once sync.Once
	idx  []endpointIndex // per flow: From, To
}

// set answers "is this address in these prefixes" in O(log n) for the
// single-address prefixes that make up most endpoints: a sorted slice
// builds faster and weighs less than a map at 100,000 jails.
type set struct {
	addrs []netip.Addr // sorted
	wide  []netip.Prefix
}

func newSet(ps []netip.Prefix) set {
	s := set{addrs: make([]netip.Addr, 0, len(ps))}
	for _, p := range ps {
		if p.IsSingleIP() {
			s.addrs = append(s.addrs, p.Addr())
		} else {
			s.wide = append(s.wide, p)
		}
	}
	if !slices.IsSortedFunc(s.addrs, netip.Addr.Compare) {
		slices.SortFunc(s.addrs, netip.Addr.Compare)
	}
	return s
}

func (s set) has(a netip.Addr) bool {
	if _, ok := slices.BinarySearchFunc(s.addrs, a, netip.Addr.Compare); ok {
		return true
	}
	for _, p := range s.wide {
		if p.Contains(a) {
			return true
		}
	}
	return false
}

func (s set) empty() bool { return len(s.addrs) == 0 && len(s.wide) == 0 }

type endpointIndex struct{ from, to set }

func (p *Policy) build() {
	p.idx = make([]endpointIndex, len(p.Flows))
	for i, f := range p.Flows {
		p.idx[i] = endpointIndex{from: newSet(f.From.Prefixes), to: newSet(f.To.Prefixes)}
	}
}

// IsOutside reports whether a lies outside the cluster's networks.
func (p *Policy) IsOutside(a netip.Addr) bool {
	for _, c := range p.Cluster {
		if c.Contains(a) {
			return false
		}
	}
	return true
}

func (p *Policy) contains(e Endpoint, s set, a netip.Addr) bool {
	if e.Kind == KindOutside {
		return p.IsOutside(a) && (s.empty() || s.has(a))
	}
	if s.has(a) {
		return true
	}
	return e.Outside && p.IsOutside(a)
}

// Contains reports whether address a belongs to endpoint e under this
// policy's notion of "outside".
func (p *Policy) Contains(e Endpoint, a netip.Addr) bool {
	return p.contains(e, newSet(e.Prefixes), a)
}

// Allows reports whether a connection from src to dst on proto/port is
// allowed, and the first flow that allows it.
func (p *Policy) Allows(src, dst netip.Addr, proto string, port int) (Flow, bool) {
	p.once.Do(p.build)
	for i, f := range p.Flows {
		if !f.MatchesPort(proto, port) {
			continue
		}
		if p.contains(f.From, p.idx[i].from, src) && p.contains(f.To, p.idx[i].to, dst) {
			return f, true
		}
	}
	return Flow{}, false
}

// Into lists the flows toward tier t, in policy order.
func (p *Policy) Into(t string) []Flow {
	var out []Flow
	for _, f := range p.Flows {
		if f.To.Kind == KindTier && f.To.Tier == t {
			out = append(out, f)
		}
	}
	return out
}

// OutOf lists the flows from tier t, in policy order.
func (p *Policy) OutOf(t string) []Flow {
	var out []Flow
	for _, f := range p.Flows {
		if f.From.Kind == KindTier && f.From.Tier == t {
			out = append(out, f)
		}
	}
	return out
}

// single turns addresses into single-address prefixes.
func single(addrs ...netip.Addr) []netip.Prefix {
	out := make([]netip.Prefix, 0, len(addrs))
	for _, a := range addrs {
		if a.IsValid() {
			out = append(out, netip.PrefixFrom(a, a.BitLen()))
		}
	}
	return out
}

func uniqPrefixes(ps []netip.Prefix) []netip.Prefix {
	slices.SortFunc(ps, func(a, b netip.Prefix) int {
		if c := a.Addr().Compare(b.Addr()); c != 0 {
			return c
		}
		return a.Bits() - b.Bits()
	})
	return slices.Compact(ps)
}
