package pf

import (
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"net/netip"
	"slices"
	"strings"
	"sync"

	"github.com/arbo-project/arbo/inventory"
	"github.com/arbo-project/arbo/policy"
)

// Names of the structural tables. "cluster", "gateway" and "ns" are reserved
// words that no tier may take (TOPOLOGY.md "Names"), so these can never
// collide with a tier's table.
const (
	TableCluster = "arbo_cluster"
	TableGateway = "arbo_gateway"
	TableNS      = "arbo_ns"
	// TableLocalJails holds this host's own jail addresses: the management
	// SSH rule excludes them, so that it opens sshd on the host, not on
	// every jail (ARBO004).
	TableLocalJails = "arbo_local_jails"
)

// maxTableName is PF_TABLE_NAME_SIZE (32) less the terminating NUL.
const maxTableName = 31

// TierTable is the pf table that holds a tier's jail addresses:
// arbo_<tier> with "-" as "_", shortened with a stable hash suffix when it
// would exceed pf's 31 characters.
func TierTable(tier string) string {
	return shorten("arbo_"+strings.ReplaceAll(tier, "-", "_"), maxTableName)
}

// NatTag is the tag the nat rule of a tier puts on its jails' translated
// packets, so that filter rules can still tell the tier after NAT rewrote
// the source address to the host's own.
func NatTag(tier string) string {
	return shorten("arbo_nat_"+strings.ReplaceAll(tier, "-", "_"), 63)
}

func shorten(s string, max int) string {
	if len(s) <= max {
		return s
	}
	sum := sha256.Sum256([]byte(s))
	h := hex.EncodeToString(sum[:])[:8]
	return s[:max-len(h)-1] + "_" + h
}

// hostView is what one host's file is about: its jails' addresses by tier
// and which of them are NATed on the way out.
type hostView struct {
	c       *inventory.Cluster
	h       *inventory.Host
	wayOut  string
	local   map[string][]netip.Addr // tier → addresses of this host's jails
	natted  map[string][]netip.Addr // tier → the local addresses NATed on the way out
	direct  map[string][]netip.Addr // tier → the local addresses that leave untranslated
	tierHas map[string]bool         // tier → it has at least one address cluster-wide
	tiers   []string                // tiers with jails on this host, declaration order
	allLoc  []netip.Addr            // every local jail address
	hostLoc []netip.Addr            // host-local (lo1) jail addresses of this host, for no nat
}

func newHostView(c *inventory.Cluster, h *inventory.Host) *hostView {
	v := &hostView{c: c, h: h, local: map[string][]netip.Addr{}, natted: map[string][]netip.Addr{},
		direct: map[string][]netip.Addr{}, tierHas: map[string]bool{}}
	dev, _, ok := c.WayOut(h)
	if ok {
		v.wayOut = dev
	}
	for _, t := range tierTablesOf(c) {
		v.tierHas[t.tier] = true
	}
	for _, j := range h.Jails {
		t := c.Tier(j.Tier)
		for _, a := range j.IPs {
			v.local[j.Tier] = append(v.local[j.Tier], a)
			v.allLoc = append(v.allLoc, a)
			hostLocal := c.JailInterface(h, a) == "lo1"
			if hostLocal && a.Is4() {
				v.hostLoc = append(v.hostLoc, a)
			}
			// Only tiers that may leave the cluster are NATed: a tier with
			// egress none keeps its private source address, so that even a
			// filter mistake would get it no replies from outside.
			if hostLocal && a.Is4() && ok && t != nil && t.Egress.Mode != inventory.EgressNone {
				v.natted[j.Tier] = append(v.natted[j.Tier], a)
			} else {
				v.direct[j.Tier] = append(v.direct[j.Tier], a)
			}
		}
	}
	for _, t := range c.Tiers {
		if len(v.local[t.Name]) > 0 {
			v.tiers = append(v.tiers, t.Name)
		}
	}
	return v
}

// tierTable is a tier's table: every jail address of the tier, on every
// host. It is the same on every host of a cluster.
type tierTable struct {
	Table
	tier string
}

// tierMemo keeps the last cluster's tier tables: rendering asks for them
// once per host, and sorting and formatting every address of the cluster
// for every host made rendering (and arbo check, which renders) grow with
// hosts squared.
var tierMemo struct {
	sync.Mutex
	c      *inventory.Cluster
	tables []tierTable
}

func tierTablesOf(c *inventory.Cluster) []tierTable {
	tierMemo.Lock()
	defer tierMemo.Unlock()
	if tierMemo.c == c {
		return tierMemo.tables
	}
	var out []tierTable
	for _, t := range c.Tiers {
		var addrs []netip.Addr
		for _, j := range c.TierJails(t.Name) {
			addrs = append(addrs, j.IPs...)
		}
		if len(addrs) == 0 {
			continue
		}
		out = append(out, tierTable{tier: t.Name, Table: Table{Name: TierTable(t.Name), Addrs: addrStrings(sortedAddrs(addrs)),
			Why: fmt.Sprintf("tier %s (role %s): every jail address of the tier, on every host", t.Name, t.Role)}})
	}
	tierMemo.c, tierMemo.tables = c, out
	return out
}

// Build computes the template data for host h from the model and the
// policy. It is exported for tests and for tools that want the rules
// without the layout.
func Build(c *inventory.Cluster, h *inventory.Host, p *policy.Policy) (*Data, error) {
	if c == nil || h == nil || p == nil {
		return nil, errors.New("pf: Build needs a cluster, a host and a policy")
	}
	v := newHostView(c, h)
	d := &Data{Cluster: c.Name, Domain: c.Domain, Host: h.Name, WayOut: v.wayOut}

	mgmt := c.ManagementPrefixes(h.Name)
	if len(mgmt) == 0 {
		return nil, fmt.Errorf("pf: host %s: no management network to keep SSH open from (ARBO010); set `management`", h.Name)
	}
	hostAddrs := policy.MachineAddrs(c, h.Name)

	// Macros.
	if v.wayOut != "" {
		d.Macros = append(d.Macros, Macro{Name: "wayout", Value: v.wayOut,
			Why: "the host's way out: its interface toward the gateway (or its uplink); NAT happens here"})
	}
	d.Macros = append(d.Macros, Macro{Name: "mgmt_nets", Value: braceList(prefixStrings(mgmt)),
		Why: "management networks: SSH from here always gets in (ARBO010)"})
	if len(hostAddrs) > 0 {
		d.Macros = append(d.Macros, Macro{Name: "host_addrs", Value: braceList(addrStrings(hostAddrs)),
			Why: "this host's own addresses, for its own outbound traffic"})
	}
	d.Macros = append(d.Macros, Macro{Name: "ssh_port", Value: fmt.Sprint(sshPort(c, h.Name)),
		Why: "sshd's port, as the topology's ssh settings give it"})

	// Tables: explicit addresses from the model, never lo1:network, which
	// expands when the file loads and fails while lo1 has no address yet.
	d.Tables = append(d.Tables, Table{Name: TableCluster, Addrs: prefixStrings(c.ClusterPrefixes()),
		Why: "the cluster's own networks (every declared network but the WAN ones): never NATed; \"outside\" means outside these"})
	if g := c.Gateway; g != nil {
		var ga []netip.Addr
		for _, gi := range g.Interfaces {
			ga = append(ga, gi.Address)
		}
		slices.SortFunc(ga, netip.Addr.Compare)
		ga = slices.Compact(ga)
		if len(ga) > 0 {
			d.Tables = append(d.Tables, Table{Name: TableGateway, Addrs: addrStrings(ga),
				Why: "the gateway's own addresses (services `from: gateway`)"})
		}
	}
	if res := c.Resolvers(); len(res) > 0 {
		d.Tables = append(d.Tables, Table{Name: TableNS, Addrs: addrStrings(sortedAddrs(res)),
			Why: "the cluster's DNS resolvers: every jail may ask them (udp/tcp 53)"})
	}
	for _, t := range tierTablesOf(c) {
		d.Tables = append(d.Tables, t.Table) // a copy: the address list itself is shared, read-only
	}

	if len(v.allLoc) > 0 {
		for _, t := range c.Tiers {
			if TierTable(t.Name) == TableLocalJails {
				return nil, fmt.Errorf("pf: tier %s's table would be <%s>, which arbo uses for the host's jails; rename the tier", t.Name, TableLocalJails)
			}
		}
		d.Tables = append(d.Tables, Table{Name: TableLocalJails, Addrs: addrStrings(sortedAddrs(v.allLoc)),
			Why: "this host's own jail addresses: management SSH reaches the host, not them"})
	}

	// Options: none. lo0 is filtered like every other interface (ARBO012):
	// see loopbackRules.

	// Normalization.
	d.Scrub = append(d.Scrub, Statement{Text: "scrub in all", Why: []string{
		"Reassemble fragments before filtering, so that rules see whole packets.",
	}})

	// Translation.
	if v.wayOut != "" && len(v.hostLoc) > 0 {
		d.Translation = append(d.Translation, Statement{
			Text: fmt.Sprintf("no nat on $wayout from %s to <%s>", braceList(addrStrings(sortedAddrs(v.hostLoc))), TableCluster),
			Why: []string{
				"Traffic between the cluster's networks keeps its jail source address,",
				"so that the far side's rules see the tier. The first matching nat rule",
				"wins, so this stays above every nat rule, even one widened by hand.",
			}})
		for _, t := range v.tiers {
			addrs := v.natted[t]
			if len(addrs) == 0 {
				continue
			}
			d.Translation = append(d.Translation, Statement{
				Text: fmt.Sprintf("nat on $wayout inet from %s to ! <%s> tag %s -> ($wayout)",
					braceList(addrStrings(sortedAddrs(addrs))), TableCluster, NatTag(t)),
				Why: []string{
					fmt.Sprintf("Tier %s's jails here live on lo1 and leave the cluster under the host's", t),
					fmt.Sprintf("address. Filter rules see the translated packet, so the tag %s", NatTag(t)),
					"is what still tells them the tier.",
				}})
		}
	}

	// Filter: management first (ARBO010), then default deny.
	mgmtTo := "any"
	if len(v.allLoc) > 0 {
		mgmtTo = "! <" + TableLocalJails + ">"
	}
	d.Management = Statement{
		Text: "pass in quick proto tcp from $mgmt_nets to " + mgmtTo + " port $ssh_port flags any keep state",
		Why: []string{
			"FIRST: SSH from the management networks (ARBO010). `flags any` lets a session",
			"older than this ruleset (the one applying it) create state mid-stream and survive.",
			"To every address but this host's jails, not to the declared addresses, so that an",
			"address the topology does not know (a second NIC, a NAT in front) cannot lock the",
			"operator out, while the jails' own sshd stays behind the tier policy (ARBO004).",
		}}
	d.Default = Statement{
		Text: "block drop log all",
		Why: []string{
			"Default deny, in both directions and on every interface, lo0 included. Drop, not return:",
			"nothing outside learns what is here; `log` sends every denied packet to pflog0",
			"(`tcpdump -n -e -ttt -i pflog0`) to show which flow the topology does not allow.",
			"Every rule below is `quick`: the first match decides.",
		}}

	d.Filter = append(d.Filter, v.selfRules()...)
	d.Filter = append(d.Filter, v.loopbackRules(p, hostAddrs)...)

	for _, f := range p.Flows {
		if f.Why == policy.WhyManagement {
			continue // the Management rule above, from c.ManagementPrefixes
		}
		if !v.involves(f, hostAddrs) {
			continue
		}
		d.Filter = append(d.Filter, v.flowRules(f)...)
	}

	// NATed jail packets carry the host's address after translation, so the
	// host's own outbound rule would pass them: stop every tagged packet
	// that no egress rule above passed.
	for _, t := range v.tiers {
		if len(v.natted[t]) == 0 {
			continue
		}
		d.Filter = append(d.Filter, Statement{
			Text: fmt.Sprintf("block drop log quick on $wayout tagged %s", NatTag(t)),
			Why: []string{
				fmt.Sprintf("Tier %s's NATed packets that no egress rule passed stop here, before the", t),
				"host's own outbound rule below could pass them under the host's address.",
			}})
	}
	if len(hostAddrs) > 0 {
		d.Filter = append(d.Filter, Statement{
			Text: "pass out quick from $host_addrs to any keep state",
			Why: []string{
				"The host's own outbound traffic: pkg and freebsd-update downloads (packages for",
				"jails are fetched by the host: `pkg -r`), DNS, NTP, SSH through this host.",
				"The host is where pf is configured; limiting its ports would add no safety.",
			}})
	}
	return d, nil
}

// involves reports whether traffic of flow f can cross this host: a jail of
// the host, or the host itself, at either end.
func (v *hostView) involves(f policy.Flow, hostAddrs []netip.Addr) bool {
	return v.endpointLocal(f.From, hostAddrs) || v.endpointLocal(f.To, hostAddrs)
}

func (v *hostView) endpointLocal(e policy.Endpoint, hostAddrs []netip.Addr) bool {
	switch e.Kind {
	case policy.KindTier:
		return len(v.local[e.Tier]) > 0
	case policy.KindMachine:
		return slices.Contains(e.Machines, v.h.Name)
	}
	for _, p := range e.Prefixes {
		for _, a := range v.allLoc {
			if p.Contains(a) {
				return true
			}
		}
		for _, a := range hostAddrs {
			if p.Contains(a) {
				return true
			}
		}
	}
	return false
}

// flowRules turns one policy flow into pf rules. Rules between jails carry
// no direction and no interface: a packet between two jails of this host
// crosses lo1 twice (out, then in) and each pass must match, and a packet
// to or from another host crosses the wire interface once. One undirected
// rule covers all of them.
func (v *hostView) flowRules(f policy.Flow) []Statement {
	why := []string{describe(f)}
	proto, ports := protoPorts(f)
	if f.To.Kind == policy.KindOutside {
		return v.egressRules(f, why, proto, ports)
	}
	froms := v.addrExprs(f.From)
	tos := v.addrExprs(f.To)
	if len(froms) == 0 || len(tos) == 0 {
		return nil // a tier without jails: nothing to allow
	}
	var out []Statement
	for _, from := range froms {
		for _, to := range tos {
			out = append(out, Statement{Why: why,
				Text: joinWords("pass quick", proto, "from", from, "to", to, ports, "keep state")})
			why = nil
		}
	}
	return out
}

// egressRules render a tier's flow toward outside the cluster: a tagged
// rule for its NATed jails here (the source is the host's address by the
// time filter rules see the packet), and an untranslated rule for its jails
// here that leave with their own address.
func (v *hostView) egressRules(f policy.Flow, why []string, proto, ports string) []Statement {
	if f.From.Kind != policy.KindTier {
		return nil
	}
	t := f.From.Tier
	var dst []string // destinations outside the cluster
	if len(f.To.Prefixes) == 0 {
		dst = []string{"! <" + TableCluster + ">"}
	} else {
		var parts []netip.Prefix
		for _, p := range f.To.Prefixes {
			parts = append(parts, subtractAll(p, v.c.ClusterPrefixes())...)
		}
		if len(parts) == 0 {
			return nil
		}
		dst = []string{braceList(prefixStrings(parts))}
	}
	var out []Statement
	if len(v.natted[t]) > 0 {
		to := ""
		if len(f.To.Prefixes) > 0 {
			// A tagged packet was NATed, so it already goes outside the
			// cluster (nat ... to ! <arbo_cluster>): the raw prefixes do.
			to = "to " + braceList(prefixStrings(f.To.Prefixes))
		}
		out = append(out, Statement{Why: why,
			Text: joinWords("pass out quick on $wayout", proto, to, ports, "tagged", NatTag(t), "keep state")})
		why = nil
	}
	if len(v.direct[t]) > 0 && len(dst) > 0 {
		for _, d := range dst {
			out = append(out, Statement{Why: why,
				Text: joinWords("pass quick", proto, "from", "<"+TierTable(t)+">", "to", d, ports, "keep state")})
			why = nil
		}
	}
	return out
}

// addrExprs is the pf address forms of an endpoint; several forms become
// several rules (pf lists cannot mix a table negation with addresses).
func (v *hostView) addrExprs(e policy.Endpoint) []string {
	switch e.Kind {
	case policy.KindTier:
		if !v.tierHas[e.Tier] {
			return nil
		}
		return []string{"<" + TierTable(e.Tier) + ">"}
	case policy.KindResolver:
		return []string{"<" + TableNS + ">"}
	case policy.KindGateway:
		var out []string
		if len(e.Prefixes) > 0 {
			out = append(out, "<"+TableGateway+">")
		}
		if e.Outside {
			// A pfSense port forward keeps the client's source address.
			out = append(out, "! <"+TableCluster+">")
		}
		return out
	case policy.KindOutside:
		if len(e.Prefixes) == 0 {
			return []string{"! <" + TableCluster + ">"}
		}
	}
	if len(e.Prefixes) == 0 {
		return nil
	}
	return []string{braceList(prefixStrings(e.Prefixes))}
}

func describe(f policy.Flow) string {
	switch f.Why {
	case policy.WhyService:
		return fmt.Sprintf("service %s of %s, from %s", f.Service, f.To, f.From)
	case policy.WhyReplication:
		return fmt.Sprintf("%s to itself on its service %s (same-tier replication)", f.From, f.Service)
	case policy.WhyErlang:
		if !slices.ContainsFunc(f.Ports, func(r inventory.PortRange) bool { return r.Contains(4369) }) {
			return fmt.Sprintf("%s to itself: Erlang distribution (its one port, no epmd)", f.From)
		}
		return fmt.Sprintf("%s to itself: Erlang distribution (epmd 4369 and dist_ports)", f.From)
	case policy.WhyDNS:
		return fmt.Sprintf("%s asks the cluster's resolvers (%s 53)", f.From, f.Proto)
	case policy.WhyEgress:
		return fmt.Sprintf("egress of %s toward %s", f.From, f.To)
	}
	return f.String()
}

// protoPorts are the pf `proto` and `port` clauses of a flow. pf accepts
// `port` only with tcp or udp, so a port without a protocol means both.
func protoPorts(f policy.Flow) (proto, ports string) {
	switch {
	case f.Proto != "":
		proto = "proto " + f.Proto
	case len(f.Ports) > 0:
		proto = "proto { tcp, udp }"
	}
	if len(f.Ports) > 0 {
		ps := make([]string, len(f.Ports))
		for i, r := range f.Ports {
			if r.Single() {
				ps[i] = fmt.Sprint(r.Min)
			} else {
				ps[i] = fmt.Sprintf("%d:%d", r.Min, r.Max) // pf's inclusive range
			}
		}
		ports = "port " + braceList(ps)
	}
	return proto, ports
}

func sshPort(c *inventory.Cluster, machine string) int {
	if p := c.MachineSSH(machine).Port; p > 0 {
		return p
	}
	return 22
}

func joinWords(ws ...string) string {
	var out []string
	for _, w := range ws {
		if w != "" {
			out = append(out, w)
		}
	}
	return strings.Join(out, " ")
}

// braceList is one item bare, several as a pf list.
func braceList(items []string) string {
	if len(items) == 1 {
		return items[0]
	}
	return "{ " + strings.Join(items, ", ") + " }"
}

func sortedAddrs(in []netip.Addr) []netip.Addr {
	out := slices.Clone(in)
	slices.SortFunc(out, netip.Addr.Compare)
	return slices.Compact(out)
}

func addrStrings(as []netip.Addr) []string {
	out := make([]string, len(as))
	for i, a := range as {
		out[i] = a.String()
	}
	return out
}

// prefixStrings writes single-address prefixes as bare addresses.
func prefixStrings(ps []netip.Prefix) []string {
	out := make([]string, len(ps))
	for i, p := range ps {
		if p.IsSingleIP() {
			out[i] = p.Addr().String()
		} else {
			out[i] = p.Masked().String()
		}
	}
	return out
}

// subtractAll returns the parts of p outside every prefix of cut, as
// prefixes, so that an egress CIDR that overlaps the cluster's networks
// allows only its outside part.
func subtractAll(p netip.Prefix, cut []netip.Prefix) []netip.Prefix {
	parts := []netip.Prefix{p.Masked()}
	for _, q := range cut {
		var next []netip.Prefix
		for _, x := range parts {
			next = append(next, subtract(x, q.Masked())...)
		}
		parts = next
	}
	return parts
}

func subtract(p, q netip.Prefix) []netip.Prefix {
	if p.Addr().Is4() != q.Addr().Is4() || !p.Overlaps(q) {
		return []netip.Prefix{p}
	}
	if q.Bits() <= p.Bits() {
		return nil // q covers p
	}
	// q lies inside p: split p in halves and keep the half without q whole.
	lo := netip.PrefixFrom(p.Addr(), p.Bits()+1)
	hi := netip.PrefixFrom(lastHalf(p), p.Bits()+1)
	if lo.Overlaps(q) {
		return append(subtract(lo, q), hi)
	}
	return append([]netip.Prefix{lo}, subtract(hi, q)...)
}

// lastHalf is the first address of p's upper half.
func lastHalf(p netip.Prefix) netip.Addr {
	b := p.Addr().AsSlice()
	bit := p.Bits()
	b[bit/8] |= 0x80 >> (bit % 8)
	a, _ := netip.AddrFromSlice(b)
	return a
}
