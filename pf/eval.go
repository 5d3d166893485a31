package pf

import (
	"fmt"
	"net/netip"
	"slices"
	"strings"
)

// This file evaluates a parsed ruleset for one new connection, the way pf
// does on the host whose file it is. The model:
//
//   - A connection is judged by its first packet (a TCP SYN, or the first
//     UDP datagram), carrying no tag: the flows arbo checks stay inside the
//     cluster's networks, where no nat rule applies, so only a tag set by
//     an earlier matching rule of the same pass can satisfy `tagged`.
//   - The packet crosses the host's pf once or twice (Network.Crossings):
//     in on the interface it arrives by when it comes from elsewhere; out
//     then in on the loopback interface when both ends are addresses of the
//     host (jails on lo1 talk over lo1; an address on any other interface
//     is reached through lo0). Every crossing must pass: a state made going
//     out does not match the same packet coming back in.
//   - On each crossing, an interface named in `set skip` passes everything;
//     otherwise rules are read in order, the last matching one decides, a
//     matching `quick` rule decides at once, and no match passes.

// Network is what pf on the host knows of its own addresses and routes.
type Network struct {
	// Local maps each address of the host (its interfaces' and its jails')
	// to the interface it is configured on.
	Local map[netip.Addr]string
	// Attached lists the networks each interface is attached to, in route
	// order: a packet from an address in one arrives on that interface.
	Attached []Attached
	// Default is the interface of the default route ("" if none): where
	// packets from anywhere else arrive.
	Default string
	// Static, when set, gives the interface of a static route to a single
	// address (another host's lo1 jail), ahead of Attached.
	Static func(netip.Addr) (iface string, ok bool)
}

// Attached is one interface's network.
type Attached struct {
	Iface  string
	Prefix netip.Prefix
}

// Crossing is one pass of a packet through pf.
type Crossing struct {
	Dir   string // "in" or "out"
	Iface string
}

func isLoopback(iface string) bool { return strings.HasPrefix(iface, "lo") }

// Crossings returns the passes through pf of a packet src → dst.
func (n *Network) Crossings(src, dst netip.Addr) []Crossing {
	if n == nil {
		return []Crossing{{"in", ""}}
	}
	srcIf, srcLocal := n.Local[src]
	dstIf, dstLocal := n.Local[dst]
	switch {
	case srcLocal && dstLocal:
		lo := "lo0"
		if isLoopback(dstIf) {
			lo = dstIf
		}
		_ = srcIf
		return []Crossing{{"out", lo}, {"in", lo}}
	case dstLocal:
		return []Crossing{{"in", n.route(src)}}
	case srcLocal:
		return []Crossing{{"out", n.route(dst)}}
	default:
		return []Crossing{{"in", n.route(src)}, {"out", n.route(dst)}}
	}
}

func (n *Network) route(a netip.Addr) string {
	if n.Static != nil {
		if i, ok := n.Static(a); ok {
			return i
		}
	}
	best, bits := n.Default, -1
	for _, at := range n.Attached {
		if at.Prefix.Contains(a) && at.Prefix.Bits() > bits {
			best, bits = at.Iface, at.Prefix.Bits()
		}
	}
	return best
}

// packet is what a rule is matched against.
type packet struct {
	src, dst netip.Addr
	proto    string
	port     int
	cross    Crossing
	tag      string
}

// Allows reports whether a new connection src → dst proto/port passes
// every crossing of the host's pf.
//
// A checker asks about many ports between the same two addresses, so the
// rules that can match on the addresses and crossings are remembered for
// the last pair asked about.
func (r *Ruleset) Allows(src, dst netip.Addr, proto string, port int) bool {
	r.mu.Lock()
	defer r.mu.Unlock()
	m := &r.memo
	if !m.valid || m.src != src || m.dst != dst {
		*m = pathMemo{valid: true, src: src, dst: dst}
		for _, x := range r.Net.Crossings(src, dst) {
			if r.skipped(x.Iface) {
				continue
			}
			p := packet{src: src, dst: dst, cross: x}
			var cands []int32
			for i := range r.Rules {
				if r.matchesPath(&r.Rules[i], &p) {
					cands = append(cands, int32(i))
				}
			}
			m.cands = append(m.cands, cands)
		}
	}
	for _, cands := range m.cands {
		p := packet{src: src, dst: dst, proto: proto, port: port}
		pass := true
		for _, i := range cands {
			rule := &r.Rules[i]
			if !matchesProbe(rule, &p) {
				continue
			}
			if rule.Action == Match {
				if rule.Tag != "" {
					p.tag = rule.Tag
				}
				continue
			}
			pass = rule.Action == Pass
			if rule.Quick {
				break
			}
		}
		if !pass {
			return false
		}
	}
	return true
}

// pathMemo is the candidate rules, per unskipped crossing, for one pair of
// addresses.
type pathMemo struct {
	valid    bool
	src, dst netip.Addr
	cands    [][]int32
}

// FirstMatchPasses reports whether, on every crossing, the first rule that
// matches the connection is a `pass quick`: the rule that decides at once,
// before any later rule can lock it out (ARBO010). A skipped interface
// counts as passing; a crossing that no rule matches does not.
func (r *Ruleset) FirstMatchPasses(src, dst netip.Addr, proto string, port int) bool {
	for _, x := range r.Net.Crossings(src, dst) {
		if r.skipped(x.Iface) {
			continue
		}
		p := packet{src: src, dst: dst, proto: proto, port: port, cross: x}
		found := false
		for i := range r.Rules {
			rule := &r.Rules[i]
			if !r.matches(rule, &p) {
				continue
			}
			if rule.Action == Match {
				if rule.Tag != "" {
					p.tag = rule.Tag
				}
				continue
			}
			if rule.Action != Pass || !rule.Quick {
				return false
			}
			found = true
			break
		}
		if !found {
			return false
		}
	}
	return true
}

// Skips lists the interfaces and groups of `set skip on`.
func (r *Ruleset) Skips() []string { return slices.Clone(r.Skip) }

// Decide returns whether pf passes the packet on one crossing, and the
// line of the deciding rule (0: no rule matched, pf's default pass).
func (r *Ruleset) Decide(src, dst netip.Addr, proto string, port int, x Crossing) (bool, int) {
	if r.skipped(x.Iface) {
		return true, 0
	}
	return r.decide(packet{src: src, dst: dst, proto: proto, port: port, cross: x})
}

func (r *Ruleset) decide(p packet) (bool, int) {
	pass, line := true, 0
	for i := range r.Rules {
		rule := &r.Rules[i]
		if !r.matches(rule, &p) {
			continue
		}
		if rule.Action == Match {
			if rule.Tag != "" {
				p.tag = rule.Tag
			}
			continue
		}
		pass, line = rule.Action == Pass, rule.Line
		if rule.Quick {
			break
		}
	}
	return pass, line
}

func (r *Ruleset) skipped(iface string) bool {
	for _, s := range r.Skip {
		if ifaceIn(iface, s) {
			return true
		}
	}
	return false
}

// ifaceIn reports whether interface iface is spec or belongs to group spec
// (an interface's driver name is a group of it: lo holds lo0 and lo1).
func ifaceIn(iface, spec string) bool {
	if iface == spec {
		return true
	}
	if iface == "" || strings.ContainsAny(spec[len(spec)-1:], "0123456789") {
		return false
	}
	rest, ok := strings.CutPrefix(iface, spec)
	return ok && rest != "" && strings.Trim(rest, "0123456789") == ""
}

func (r *Ruleset) matches(rule *Rule, p *packet) bool {
	return r.matchesPath(rule, p) && matchesProbe(rule, p)
}

// matchesPath is the part of a rule's match that depends only on the
// addresses and the crossing, not on the protocol, port or tag.
func (r *Ruleset) matchesPath(rule *Rule, p *packet) bool {
	if rule.Dir != "" && rule.Dir != p.cross.Dir {
		return false
	}
	if len(rule.On) > 0 && !slices.ContainsFunc(rule.On, func(i Iface) bool { return ifaceIn(p.cross.Iface, i.Name) != i.Neg }) {
		return false
	}
	switch rule.Family {
	case "inet":
		if !p.src.Is4() {
			return false
		}
	case "inet6":
		if p.src.Is4() {
			return false
		}
	}
	if rule.ICMPType {
		return false // only ICMP, never a tcp/udp probe
	}
	return r.hostsMatch(rule.From, p.src) && r.hostsMatch(rule.To, p.dst)
}

func matchesProbe(rule *Rule, p *packet) bool {
	if len(rule.Protos) > 0 && !slices.Contains(rule.Protos, p.proto) {
		return false
	}
	if len(rule.FromPorts) > 0 {
		// A new connection's source port is ephemeral: pf's default range
		// 49152-65535 on FreeBSD; judge by its lowest port.
		if !portsMatch(rule.FromPorts, 49152) || !isOneOf(p.proto, "tcp", "udp") {
			return false
		}
	}
	if len(rule.ToPorts) > 0 && (!isOneOf(p.proto, "tcp", "udp") || !portsMatch(rule.ToPorts, p.port)) {
		return false
	}
	if p.proto == "tcp" {
		f := rule.Flags
		if f == nil && rule.Action == Pass {
			f = &TCPFlags{Set: 0x02, Mask: 0x12} // S/SA, pf's default for stateful pass rules
		}
		if f != nil && !f.Any && 0x02&f.Mask != f.Set {
			return false
		}
	}
	if rule.Tagged != "" && (p.tag == rule.Tagged) == rule.NotTagged {
		return false
	}
	return true
}

// hostsMatch: an empty list is any; otherwise any entry matches (a
// negated entry matches every address it does not name).
func (r *Ruleset) hostsMatch(hs []Host, a netip.Addr) bool {
	if len(hs) == 0 {
		return true
	}
	for i := range hs {
		if r.hostMatch(&hs[i], a) != hs[i].Neg {
			return true
		}
	}
	return false
}

func (r *Ruleset) hostMatch(h *Host, a netip.Addr) bool {
	switch h.Kind {
	case HostPrefix:
		return h.Prefix.Contains(a)
	case HostTable:
		t := r.Tables[h.Name]
		if t == nil {
			return false
		}
		if t.single != nil {
			return t.single[a]
		}
		// pf tables: the most specific entry decides; a negated entry
		// excludes.
		best, in := -1, false
		for _, e := range t.Entries {
			if e.Kind == HostPrefix && e.Prefix.Contains(a) && e.Prefix.Bits() > best {
				best, in = e.Prefix.Bits(), !e.Neg
			} else if e.Kind != HostPrefix && r.hostMatch(&e, a) && best < 0 {
				in = !e.Neg
			}
		}
		return in
	case HostSelf:
		if r.Net == nil {
			return false
		}
		_, ok := r.Net.Local[a]
		return ok
	case HostIface:
		if r.Net == nil {
			return false
		}
		if h.Network {
			for _, at := range r.Net.Attached {
				if at.Iface == h.Name && at.Prefix.Contains(a) {
					return true
				}
			}
			return false
		}
		return r.Net.Local[a] == h.Name
	}
	return false // no-route, urpf-failed: a probe always has a route
}

func portsMatch(ops []PortOp, port int) bool {
	for _, o := range ops {
		var ok bool
		switch o.Op {
		case "=":
			ok = port == o.Lo
		case "!=":
			ok = port != o.Lo
		case "<":
			ok = port < o.Lo
		case "<=":
			ok = port <= o.Lo
		case ">":
			ok = port > o.Lo
		case ">=":
			ok = port >= o.Lo
		case ":":
			ok = port >= o.Lo && port <= o.Hi
		case "><":
			ok = port > o.Lo && port < o.Hi
		case "<>":
			ok = port < o.Lo || port > o.Hi
		}
		if ok {
			return true
		}
	}
	return false
}

// Unknowns lists what evaluation cannot know from the file and Net: tables
// used but never defined (filled at run time by pfctl -T), tables read from
// files, and interfaces used as addresses that Net does not describe. A
// checker must treat a non-empty list as "cannot judge".
func (r *Ruleset) Unknowns() []string {
	var out []string
	seen := map[string]bool{}
	add := func(s string) {
		if !seen[s] {
			seen[s] = true
			out = append(out, s)
		}
	}
	known := map[string]bool{}
	if r.Net != nil {
		for _, i := range r.Net.Local {
			known[i] = true
		}
		for _, at := range r.Net.Attached {
			known[at.Iface] = true
		}
	}
	check := func(line int, hs []Host) {
		for _, h := range hs {
			switch h.Kind {
			case HostTable:
				t := r.Tables[h.Name]
				switch {
				case t == nil:
					add(fmt.Sprintf("%s:%d: table <%s> is not defined in the file", r.Name, line, h.Name))
				case t.File:
					add(fmt.Sprintf("%s:%d: table <%s> is read from a file", r.Name, t.Line, h.Name))
				case t.single != nil:
					// only addresses
				default:
					for _, e := range t.Entries {
						if e.Kind == HostIface && !known[e.Name] {
							add(fmt.Sprintf("%s:%d: interface %s in table <%s> has no known address", r.Name, t.Line, e.Name, h.Name))
						}
					}
				}
			case HostIface:
				if !known[h.Name] {
					add(fmt.Sprintf("%s:%d: interface %s has no known address", r.Name, line, h.Name))
				}
			case HostSelf:
				if r.Net == nil {
					add(fmt.Sprintf("%s:%d: self needs the host's addresses", r.Name, line))
				}
			}
		}
	}
	for _, rule := range r.Rules {
		if rule.Opaque != "" {
			add(fmt.Sprintf("%s:%d: %q cannot be judged off the host: %s", r.Name, rule.Line, rule.Opaque, rule.Text))
		}
		check(rule.Line, rule.From)
		check(rule.Line, rule.To)
	}
	return out
}

// Ports lists the destination ports the filter rules name, each with its
// neighbours, so that a checker probing a hand-written ruleset can ask
// about the ports it opens and not only those the topology names.
func (r *Ruleset) Ports() []int {
	var out []int
	for _, rule := range r.Rules {
		for _, o := range rule.ToPorts {
			for _, p := range []int{o.Lo - 1, o.Lo, o.Lo + 1, o.Hi - 1, o.Hi, o.Hi + 1} {
				if p >= 1 && p <= 65535 {
					out = append(out, p)
				}
			}
		}
	}
	slices.Sort(out)
	return slices.Compact(out)
}
