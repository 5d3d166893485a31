package check

import (
	"fmt"
	"net/netip"
	"slices"
	"strings"

	"github.com/arbo-project/arbo/inventory"
	"github.com/arbo-project/arbo/policy"
)

// checkSeparateNetworks (ARBO003): on each host, no network holds both an
// app-role jail address and a data-role jail address, so that the host's
// firewall and routes can tell the two apart by network. One finding per
// shared network per host.
func checkSeparateNetworks(x *env) []Finding {
	var out []Finding
	for _, h := range x.c.Hosts {
		type seen struct{ app, data *inventory.Jail }
		nets := map[string]*seen{}
		var order []string
		for _, j := range h.Jails {
			role := x.role(j.Tier)
			if role != inventory.RoleApp && role != inventory.RoleData {
				continue
			}
			for _, a := range j.IPs {
				name := a.String() // an address in no declared network is its own "network"
				if n := x.c.NetworkOf(a); n != nil {
					name = n.Name
				}
				s := nets[name]
				if s == nil {
					s = &seen{}
					nets[name] = s
					order = append(order, name)
				}
				if role == inventory.RoleApp && s.app == nil {
					s.app = j
				}
				if role == inventory.RoleData && s.data == nil {
					s.data = j
				}
			}
		}
		for _, name := range order {
			s := nets[name]
			if s.app == nil || s.data == nil {
				continue
			}
			later := s.data
			if later.Pos.Line < s.app.Pos.Line {
				later = s.app
			}
			out = append(out, Finding{Machine: h.Name, Subject: name,
				Message: fmt.Sprintf("app jail %s (tier %s) and data jail %s (tier %s) share network %s; put data jails on their own network",
					s.app.Name, s.app.Tier, s.data.Name, s.data.Tier, name),
				Pos: later.Pos})
		}
	}
	return out
}

// probe is one protocol and port a firewall rule is asked about.
type probe struct {
	proto string
	port  int
}

func (p probe) String() string { return fmt.Sprintf("%s %d", p.proto, p.port) }

// probePorts are the ports worth asking a firewall about: every port the
// topology names (services, Erlang, DNS, SSH, forwards, egress), the edges
// just outside each range, and two ports nobody names. Between two named
// ports a ruleset built from ranges cannot change its mind, so these stand
// for all 65,535 without scanning them.
func probePorts(c *inventory.Cluster) []probe {
	ports := []int{1, 22, 53, 65535}
	add := func(r inventory.PortRange) {
		if r.Min > 0 {
			ports = append(ports, r.Min-1, r.Min, r.Max, r.Max+1)
		}
	}
	for _, r := range c.ErlangPorts() {
		add(r)
	}
	for _, t := range c.Tiers {
		for _, s := range t.Services {
			add(s.Ports)
		}
		for _, e := range t.Egress.Rules {
			add(e.Ports)
		}
	}
	if g := c.Gateway; g != nil {
		for _, f := range g.Forwards {
			add(f.Port)
			add(f.ToPort)
		}
	}
	for _, m := range c.Machines() {
		if p := c.MachineSSH(m).Port; p > 0 {
			ports = append(ports, p)
		}
	}
	ports = slices.DeleteFunc(ports, func(p int) bool { return p < 1 || p > 65535 })
	slices.Sort(ports)
	ports = slices.Compact(ports)
	out := make([]probe, 0, 2*len(ports))
	for _, proto := range []string{"tcp", "udp"} {
		for _, p := range ports {
			out = append(out, probe{proto, p})
		}
	}
	return out
}

// withPorts adds ports (for tcp and udp) to a probe list, without repeats.
func withPorts(probes []probe, ports []int) []probe {
	seen := map[probe]bool{}
	for _, p := range probes {
		seen[p] = true
	}
	out := slices.Clone(probes)
	for _, port := range ports {
		for _, proto := range []string{"tcp", "udp"} {
			if p := (probe{proto, port}); !seen[p] {
				seen[p] = true
				out = append(out, p)
			}
		}
	}
	return out
}

// source is a probe source: a jail of a tier (local to the host or not),
// the gateway, or an address outside the cluster.
type source struct {
	label string // "tier data (db1, same host)"
	kind  string // for subjects: the tier's name, "gateway" or "outside"
	tier  string // "" when not a jail
	addr  netip.Addr
}

// justified says whether services.from and the "Always allowed" paragraph
// of TOPOLOGY.md allow src to reach a jail of tier dst on proto/port. It
// reads the topology directly, not the policy, so that it can judge the
// policy and any parsed ruleset alike.
func (x *env) justified(src source, dstTier string, dst netip.Addr, pr probe) bool {
	if src.tier != "" && x.resolvers[dst] && pr.port == 53 {
		return true
	}
	t := x.c.Tier(dstTier)
	if t == nil {
		return false
	}
	for _, s := range t.Services {
		if !serviceMatches(x.c, s, pr.proto, pr.port) {
			continue
		}
		if src.tier == dstTier {
			return true
		}
		for _, f := range s.From {
			switch f.Kind {
			case inventory.SourceTier:
				if f.Name == src.tier && src.tier != "" {
					return true
				}
			case inventory.SourceCIDR:
				if f.CIDR.Contains(src.addr) {
					return true
				}
			case inventory.SourceGateway:
				if x.c.Gateway != nil && (x.gwAddrs[src.addr] || x.p.IsOutside(src.addr)) {
					return true
				}
			}
		}
	}
	return src.tier == dstTier && x.c.IsErlangTier(dstTier) && pr.proto == "tcp" && inErlangPorts(x.c, pr.port)
}

// sources are the probe sources for host h: for each tier with jails, one
// on h and one elsewhere (a host firewall sees both), the gateway, and an
// address outside the cluster.
func (x *env) sources(h *inventory.Host) []source {
	var out []source
	local := map[string]*inventory.Jail{}
	for _, j := range h.Jails {
		if local[j.Tier] == nil {
			local[j.Tier] = j
		}
	}
	for _, t := range x.c.Tiers {
		if j := local[t.Name]; j != nil {
			out = append(out, source{fmt.Sprintf("tier %s (%s, same host)", t.Name, j.Name), t.Name, t.Name, x.c.TierAddr(j)})
		}
		if j := x.remoteJail(t.Name, h.Name); j != nil {
			out = append(out, source{fmt.Sprintf("tier %s (%s on %s)", t.Name, j.Name, j.Host), t.Name, t.Name, x.c.TierAddr(j)})
		}
	}
	if a, ok := x.gatewayAddr(); ok {
		out = append(out, source{"the gateway (" + a.String() + ")", "gateway", "", a})
	}
	if x.outside4.IsValid() {
		out = append(out, source{"outside the cluster (" + x.outside4.String() + ")", "outside", "", x.outside4})
	}
	if x.outside6.IsValid() {
		out = append(out, source{"outside the cluster (" + x.outside6.String() + ")", "outside", "", x.outside6})
	}
	return out
}

// checkHostFirewall (ARBO004): on each host, the firewall lets no
// connection reach a jail of the host unless services.from (or the
// "Always allowed" paragraph: same-tier, Erlang among an Erlang tier, DNS
// to the resolvers) allows it. Sources are a jail of every tier on the
// same host and on another host, the gateway, and an address outside the
// cluster; ports are every port the topology names and their edges. A
// firewall that skips the loopback group (`set skip on lo`) or an
// interface jails of the host sit on fails outright, since jail-to-jail
// traffic on the host then passes unfiltered.
//
// On the topology's own policy the answer depends only on the tier pair,
// so it is computed once per (source tier, destination tier); a given
// ruleset is asked about every jail of the host.
func checkHostFirewall(x *env) []Finding {
	var out []Finding
	probes := probePorts(x.c)
	type pairKey struct{ src, dst string }
	cache := map[pairKey][]probe{}
	for _, h := range x.c.Hosts {
		if len(h.Jails) == 0 {
			continue
		}
		rs, given := x.ruleset(h.Name)
		ifaces := map[string]bool{"lo": true}
		for _, j := range h.Jails {
			for _, a := range j.IPs {
				ifaces[x.c.JailInterface(h, a)] = true
			}
		}
		for _, s := range rs.Skips() {
			if ifaces[s] {
				out = append(out, Finding{Machine: h.Name, Subject: "set skip on " + s,
					Message: fmt.Sprintf("the firewall skips %s, so traffic between the jails of %s is not filtered; skip no loopback interface (lo0 carries a jail's traffic to its host: ARBO012)", s, h.Name),
					Pos:     h.Pos})
			}
		}
		var dsts []*inventory.Jail
		if given {
			dsts = h.Jails
		} else {
			for _, t := range x.hostTiers[h.Name] {
				for _, j := range h.Jails {
					if j.Tier == t {
						dsts = append(dsts, j)
						break
					}
				}
			}
		}
		// A ruleset that can list its own ports (a parsed pf.conf) is also
		// asked about those: a hand-written rule on a port the topology never
		// names would otherwise go unseen.
		hostProbes := probes
		if lp, ok := rs.(interface{ Ports() []int }); ok && given {
			hostProbes = withPorts(probes, lp.Ports())
		}
		srcs := x.sources(h)
		for _, j := range dsts {
			dst := x.c.TierAddr(j)
			for _, src := range srcs {
				if src.addr == dst || src.addr.Is4() != dst.Is4() {
					continue
				}
				var bad []probe
				// The gateway and the outside probe are the same address on
				// every host; a jail stands for its whole tier.
				key := pairKey{src.tier, j.Tier}
				if src.tier == "" {
					key.src = "addr " + src.addr.String()
				}
				if cached, ok := cache[key]; ok && !given {
					bad = cached
				} else {
					for _, pr := range hostProbes {
						if rs.Allows(src.addr, dst, pr.proto, pr.port) && !x.justified(src, j.Tier, dst, pr) {
							bad = append(bad, pr)
						}
					}
					if !given {
						cache[key] = bad
					}
				}
				if len(bad) == 0 {
					continue
				}
				subject := src.kind + " -> " + j.Tier
				t := x.c.Tier(j.Tier)
				out = append(out, Finding{Machine: h.Name, Subject: subject,
					Message: fmt.Sprintf("the firewall lets %s reach tier %s (%s) on %s, which services.from does not allow",
						src.label, j.Tier, j.Name, joinProbes(bad)),
					Pos: t.Pos})
			}
		}
	}
	return out
}

func joinProbes(ps []probe) string {
	const most = 6
	s := make([]string, 0, most)
	for i, p := range ps {
		if i == most {
			s = append(s, fmt.Sprintf("and %d more", len(ps)-most))
			break
		}
		s = append(s, p.String())
	}
	return strings.Join(s, ", ")
}

// checkDataUnreachable (ARBO005): nothing from outside reaches a data-role
// tier: no gateway forward to one (on the gateway); no data jail address on
// a WAN network (on its host); no data service open to `gateway` or to a
// CIDR outside the cluster's networks (on every host holding the tier).
func checkDataUnreachable(x *env) []Finding {
	var out []Finding
	if g := x.c.Gateway; g != nil {
		for _, f := range g.Forwards {
			if x.role(f.To) == inventory.RoleData {
				out = append(out, Finding{Machine: g.Name, Subject: f.To,
					Message: fmt.Sprintf("forward %s %s on the gateway leads to data tier %s; only app or infra tiers take outside traffic", f.Proto, f.Port, f.To),
					Pos:     f.Pos})
			}
		}
	}
	for _, h := range x.c.Hosts {
		for _, j := range h.Jails {
			if x.role(j.Tier) != inventory.RoleData {
				continue
			}
			for _, a := range j.IPs {
				if n := x.c.NetworkOf(a); n != nil && n.WAN {
					out = append(out, Finding{Machine: h.Name, Subject: j.Name,
						Message: fmt.Sprintf("data jail %s has address %s on WAN network %s", j.Name, a, n.Name),
						Pos:     j.Pos})
				}
			}
		}
	}
	for _, t := range x.c.TiersWithRole(inventory.RoleData) {
		for _, s := range t.Services {
			for _, f := range s.From {
				var why string
				switch {
				case f.Kind == inventory.SourceGateway:
					why = "gateway (clients from outside)"
				case f.Kind == inventory.SourceCIDR && !x.c.InsideCluster(f.CIDR):
					why = f.CIDR.String() + ", outside the cluster's networks"
				default:
					continue
				}
				for _, hn := range x.tierHosts[t.Name] {
					out = append(out, Finding{Machine: hn, Subject: t.Name + "/" + s.Name,
						Message: fmt.Sprintf("service %s of data tier %s is open from %s", s.Name, t.Name, why),
						Pos:     firstPos(f.Pos, s.Pos)})
				}
			}
		}
	}
	return out
}

// checkDataEgress (ARBO006, cluster): a data-role tier opens nothing
// outside the cluster: `egress: any` fails, and so does each egress entry
// whose CIDR is not inside the cluster's networks.
func checkDataEgress(x *env) []Finding {
	var out []Finding
	for _, t := range x.c.TiersWithRole(inventory.RoleData) {
		switch t.Egress.Mode {
		case inventory.EgressAny:
			out = append(out, Finding{Machine: inventory.MachineCluster, Subject: t.Name,
				Message: fmt.Sprintf("data tier %s has egress: any; data jails must not reach outside the cluster (use none)", t.Name),
				Pos:     firstPos(t.Egress.Pos, t.Pos)})
		case inventory.EgressList:
			for _, r := range t.Egress.Rules {
				if !x.c.InsideCluster(r.To) {
					out = append(out, Finding{Machine: inventory.MachineCluster, Subject: t.Name,
						Message: fmt.Sprintf("data tier %s has egress to %s, outside the cluster's networks", t.Name, r.To),
						Pos:     firstPos(r.Pos, t.Egress.Pos, t.Pos)})
				}
			}
		}
	}
	return out
}

// checkErlangPorts (ARBO007): TCP 4369 and erlang.dist_ports are open only
// from Erlang tiers to Erlang tiers. On every host holding jails of the
// tier at fault: an `erlang: true` service on a tier that is not an Erlang
// tier; an `erlang: true` service open to a non-Erlang tier, the gateway or
// a CIDR; a TCP service whose ports overlap the Erlang ports. With a given
// ruleset, the host's firewall is also asked whether a non-Erlang tier, the
// gateway or an outside address reaches the Erlang ports of its jails.
func checkErlangPorts(x *env) []Finding {
	c := x.c
	var out []Finding
	ports := c.ErlangPorts()
	portsText := make([]string, len(ports))
	for i, r := range ports {
		portsText[i] = r.String()
	}
	erlangPorts := strings.Join(portsText, ",")
	for _, h := range c.Hosts {
		for _, tn := range x.hostTiers[h.Name] {
			t := c.Tier(tn)
			for _, s := range t.Services {
				subject := tn + "/" + s.Name
				add := func(pos inventory.Pos, format string, args ...any) {
					out = append(out, Finding{Machine: h.Name, Subject: subject, Message: fmt.Sprintf(format, args...), Pos: pos})
				}
				switch {
				case s.Erlang && !c.IsErlangTier(tn):
					add(s.Pos, "service %s opens the Erlang ports (tcp %s) on tier %s, which is not in erlang.tiers", s.Name, erlangPorts, tn)
				case s.Erlang:
					for _, f := range s.From {
						switch {
						case f.Kind == inventory.SourceTier && !c.IsErlangTier(f.Name):
							add(firstPos(f.Pos, s.Pos), "service %s opens the Erlang ports of tier %s to tier %s, which is not in erlang.tiers", s.Name, tn, f.Name)
						case f.Kind == inventory.SourceGateway || f.Kind == inventory.SourceCIDR:
							add(firstPos(f.Pos, s.Pos), "service %s opens the Erlang ports of tier %s to %s; only Erlang tiers may reach them", s.Name, tn, f)
						}
					}
				case s.Proto == "tcp" && overlapsErlangPorts(c, s.Ports):
					add(s.Pos, "service %s (tcp %s) overlaps the Erlang ports (tcp %s)", s.Name, s.Ports, erlangPorts)
				}
			}
		}
		rs, given := x.ruleset(h.Name)
		if !given {
			continue // the model's own flows are judged above, with positions
		}
		var edges []probe
		for _, r := range ports {
			edges = append(edges, probe{"tcp", r.Min}, probe{"tcp", r.Max})
		}
		edges = slices.Compact(edges)
		for _, j := range h.Jails {
			dst := c.TierAddr(j)
			for _, src := range x.sources(h) {
				if src.addr == dst || src.addr.Is4() != dst.Is4() {
					continue
				}
				if src.tier != "" && c.IsErlangTier(src.tier) && c.IsErlangTier(j.Tier) {
					continue
				}
				var bad []probe
				for _, pr := range edges {
					if rs.Allows(src.addr, dst, pr.proto, pr.port) {
						bad = append(bad, pr)
					}
				}
				if len(bad) > 0 {
					out = append(out, Finding{Machine: h.Name, Subject: j.Name,
						Message: fmt.Sprintf("the firewall lets %s reach the Erlang ports of %s (tier %s) on %s", src.label, j.Name, j.Tier, joinProbes(bad)),
						Pos:     j.Pos})
				}
			}
		}
	}
	return out
}

// checkRedundancy (ARBO008, cluster): every tier has at least two jails on
// at least two hosts.
func checkRedundancy(x *env) []Finding {
	var out []Finding
	for _, t := range x.c.Tiers {
		jails, hosts := len(x.tierJails[t.Name]), len(x.tierHosts[t.Name])
		var msg string
		switch {
		case jails == 0:
			msg = fmt.Sprintf("tier %s has no jails", t.Name)
		case jails < 2:
			msg = fmt.Sprintf("tier %s has one jail (%s); give it at least two, on two hosts", t.Name, x.tierJails[t.Name][0].Name)
		case hosts < 2:
			msg = fmt.Sprintf("tier %s has %d jails, all on %s; spread them over at least two hosts", t.Name, jails, x.tierHosts[t.Name][0])
		default:
			continue
		}
		out = append(out, Finding{Machine: inventory.MachineCluster, Subject: t.Name, Message: msg, Pos: t.Pos})
	}
	return out
}

// checkHostLoss (ARBO009, cluster): with any one host down, every tier that
// has jails keeps one, and the Erlang discovery tier keeps at least
// erlang.consensus nodes. One finding per tier, naming the hosts whose
// loss breaks it.
func checkHostLoss(x *env) []Finding {
	c := x.c
	var out []Finding
	lost := map[string]bool{}
	for _, t := range c.Tiers {
		if hs := x.tierHosts[t.Name]; len(hs) == 1 {
			lost[t.Name] = true
			out = append(out, Finding{Machine: inventory.MachineCluster, Subject: t.Name,
				Message: fmt.Sprintf("with %s down, tier %s has no jail left", hs[0], t.Name),
				Pos:     t.Pos})
		}
	}
	e := c.Erlang
	if e == nil || e.Discovery == "" || e.Consensus < 1 || lost[e.Discovery] {
		return out
	}
	nodes := x.tierJails[e.Discovery]
	if len(nodes) == 0 {
		return out
	}
	perHost := map[string]int{}
	for _, j := range nodes {
		perHost[j.Host]++
	}
	var breaking []string
	left := len(nodes)
	for _, h := range x.tierHosts[e.Discovery] {
		if n := len(nodes) - perHost[h]; n < e.Consensus {
			breaking = append(breaking, h)
			left = min(left, n)
		}
	}
	if len(breaking) == 0 {
		return out
	}
	out = append(out, Finding{Machine: inventory.MachineCluster, Subject: e.Discovery,
		Message: fmt.Sprintf("with %s down, tier %s keeps %d of %d Erlang nodes, fewer than erlang.consensus (%d): the cluster cannot report itself up",
			orList(breaking), e.Discovery, left, len(nodes), e.Consensus),
		Pos: firstPos(c.Pos("erlang.consensus"), e.Pos)})
	return out
}

// orList writes "a", "a or b", "a, b or c", "a, b, c or 7 more".
func orList(s []string) string {
	const most = 3
	if len(s) > most+1 {
		return strings.Join(s[:most], ", ") + fmt.Sprintf(" or %d other hosts", len(s)-most)
	}
	if len(s) == 1 {
		return s[0]
	}
	return strings.Join(s[:len(s)-1], ", ") + " or " + s[len(s)-1]
}

// checkManagement (ARBO010, every machine): the machine has management
// networks, and its firewall's first rule matching SSH from each of them
// to the machine's ssh address (or every address of it, when ssh.address is
// a name) passes it for good.
func checkManagement(x *env) []Finding {
	c := x.c
	var out []Finding
	for _, m := range c.Machines() {
		pos := c.Pos("management")
		if pos.Line == 0 {
			if c.IsGateway(m) {
				pos = c.Gateway.Pos
			} else if h := c.Host(m); h != nil {
				pos = h.Pos
			}
		}
		prefixes := c.ManagementPrefixes(m)
		if len(prefixes) == 0 {
			out = append(out, Finding{Machine: m, Subject: m,
				Message: fmt.Sprintf("no management network covers %s (its ssh.address is in no declared network); set `management`", m),
				Pos:     pos})
			continue
		}
		ssh := c.MachineSSH(m)
		port := ssh.Port
		if port == 0 {
			port = 22
		}
		var dsts []netip.Addr
		if a, err := netip.ParseAddr(ssh.Address); err == nil {
			dsts = []netip.Addr{a}
		} else {
			dsts = policy.MachineAddrs(c, m)
		}
		rs, _ := x.ruleset(m)
		for _, p := range prefixes {
			src := repAddr(p)
			for _, dst := range dsts {
				if src.Is4() != dst.Is4() {
					continue
				}
				if !rs.FirstMatchPasses(src, dst, "tcp", port) {
					out = append(out, Finding{Machine: m, Subject: p.String(),
						Message: fmt.Sprintf("SSH from management network %s to %s (%s tcp %d) is not passed by the first matching rule; arbo could lock itself out", p, m, dst, port),
						Pos:     pos})
				}
			}
		}
	}
	return out
}

// checkGatewaySPOF (ARBO011, on the gateway): a gateway without a CARP peer
// is a single point of failure; arbo does not support CARP pairs yet, so
// every cluster with a gateway gets this as information.
func checkGatewaySPOF(x *env) []Finding {
	g := x.c.Gateway
	if g == nil {
		return nil
	}
	return []Finding{{Machine: g.Name, Subject: g.Name,
		Message: fmt.Sprintf("gateway %s has no CARP peer: while it is down the cluster has no way out and no public entry point (CARP pairs are planned)", g.Name),
		Pos:     g.Pos}}
}

func firstPos(ps ...inventory.Pos) inventory.Pos {
	for _, p := range ps {
		if p.Line > 0 {
			return p
		}
	}
	return inventory.Pos{}
}

// liveMachines: ARBO015 applies to the machines check --live read, and to
// none in a plain check.
func liveMachines(x *env) []string {
	var out []string
	for _, m := range x.c.Machines() {
		if _, ok := x.o.Live[m]; ok {
			out = append(out, m)
		}
	}
	return out
}

// checkLive (ARBO015, check --live): each machine could be read, pf
// filters on it, its loaded rules are the ones arbo loaded (the digest of
// pfctl's listing recorded in the manifest by apply), and on the gateway
// every arbo filter rule's tracker is in the loaded rules.
func checkLive(x *env) []Finding {
	var out []Finding
	for _, m := range liveMachines(x) {
		l := x.o.Live[m]
		pos := x.machinePos(m)
		if l.Err != "" {
			out = append(out, Finding{Machine: m, Subject: m, Pos: pos,
				Message: "cannot read the machine's live state (" + l.Err + "): it is unknown, not judged safe"})
			continue
		}
		if l.PFOff != "" {
			out = append(out, Finding{Machine: m, Subject: "pf", Pos: pos,
				Message: "pf does not filter (" + l.PFOff + "): every flow passes; arbo apply loads and enables it"})
		}
		if l.Drift != "" {
			out = append(out, Finding{Machine: m, Subject: "loaded rules", Pos: pos,
				Message: l.Drift + "; arbo apply loads /etc/pf.conf again"})
		}
		if len(l.MissingTrackers) > 0 {
			out = append(out, Finding{Machine: m, Subject: "trackers", Pos: pos,
				Message: fmt.Sprintf("pfSense has not loaded arbo's rules: tracker(s) %s not in pfctl -sr (ridentifier); arbo apply reloads the filter", strings.Join(l.MissingTrackers, ", "))})
		}
	}
	return out
}

// machinePos is where the topology declares machine m.
func (x *env) machinePos(m string) inventory.Pos {
	if x.c.IsGateway(m) {
		return x.c.Gateway.Pos
	}
	if h := x.c.Host(m); h != nil {
		return h.Pos
	}
	return inventory.Pos{}
}
