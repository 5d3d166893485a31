package pf

import (
	"fmt"
	"net/netip"
	"slices"

	"github.com/arbo-project/arbo/policy"
)

// Why lo0 is filtered (ARBO012, issue 10 item 4), from FreeBSD's source (a
// FreeBSD 14 era copy of sys/netinet, read through the reference corpus;
// function names rather than line numbers, which move between releases):
//
//   - Every address on a non-loopback interface gets a "loopback route to
//     self" through lo0: sys/netinet/in.c, in_aifaddr_ioctl() ("Add a
//     loopback route to self", when ia_need_loopback_route() holds), and the
//     table comment above ia_need_loopback_route(), case 1: "add "loopback"
//     route towards 192.0.2.1 via V_loif". An address on a loopback
//     interface (lo1, case 4) gets only a host route through that interface.
//   - sys/netinet/in_pcb.c, in_pcbladdr(): when the route's interface is a
//     loopback one ("The outgoing interface is marked with 'loopback net',
//     so a route to ourselves is here"), a jailed socket whose destination
//     is not one of its jail's addresses falls back to the jail's own
//     address as the source.
//   - sys/netinet/ip_output.c, ip_output_pfil(): the pfil output hooks
//     (pf) run on the interface the route gives, lo0 here; looutput() then
//     hands the packet back to the stack as received on lo0 (if_loop.c,
//     if_simloop(); not read here, assumed).
//   - pf.conf(5), `set skip on ifspec`: "List interfaces for which packets
//     should not be filtered."
//
// So a jail on lo1 (say 10.20.1.11) connecting to its host's 192.168.1.11
// sends 10.20.1.11 → 192.168.1.11 out on lo0 and in on lo0, and with `set
// skip on lo0` nothing filtered it: every jail reached the host's sshd and
// every daemon bound to `*`. The rules below filter lo0 instead: the host's
// own traffic passes, a jail reaches its host only by a flow of the
// topology that names the host, and jail-to-jail traffic that crosses lo0
// (jails on an attached network) is left to the tier policy below.

// selfRules pass a jail's traffic to its own addresses: inside a jail
// without its own loopback address, 127.0.0.1 is the jail's first address,
// so that traffic crosses lo1 (jails on lo1) or lo0 (jails on an attached
// network, whose addresses are reached through lo0 like the host's).
func (v *hostView) selfRules() []Statement {
	var out []Statement
	for _, j := range v.h.Jails {
		var lo1, lo0 []netip.Addr
		for _, a := range j.IPs {
			if v.c.JailInterface(v.h, a) == "lo1" {
				lo1 = append(lo1, a)
			} else {
				lo0 = append(lo0, a)
			}
		}
		for _, x := range []struct {
			iface string
			addrs []netip.Addr
		}{{"lo1", lo1}, {"lo0", lo0}} {
			if len(x.addrs) == 0 {
				continue
			}
			l := braceList(addrStrings(sortedAddrs(x.addrs)))
			out = append(out, Statement{
				Text: fmt.Sprintf("pass quick on %s from %s to %s keep state", x.iface, l, l),
				Why:  []string{fmt.Sprintf("jail %s to itself: inside a jail 127.0.0.1 is the jail's own address, and that traffic crosses %s", j.Name, x.iface)},
			})
		}
	}
	return out
}

// loopbackRules filter lo0 (ARBO012): the host's own traffic to itself
// passes; a jail of this host reaches the host's own addresses only by a
// flow of the topology whose destination names them; every other packet
// from a jail of this host to a non-jail address on lo0 (which only carries
// traffic to this host's own addresses) is dropped before the tier policy,
// whose egress rules (`to ! <arbo_cluster>`) would otherwise pass a jail to
// a host address outside the cluster's networks (an uplink).
//
// pf keeps states floating by default (pf.conf(5) `set state-policy`), so
// the replies of the host's own connections to its jails, which come back
// over lo0 when the host's source address is on a wire interface, match
// the state the connection made.
func (v *hostView) loopbackRules(p *policy.Policy, hostAddrs []netip.Addr) []Statement {
	if len(v.allLoc) == 0 {
		return []Statement{{Text: "pass quick on lo0 all keep state", Why: []string{
			"lo0 carries only this host's traffic to its own addresses (127.0.0.1, ::1 and",
			"the loopback routes of its interface addresses); no jail lives here, so all of it passes.",
		}}}
	}
	jails := "<" + TableLocalJails + ">"
	out := []Statement{{
		Text: fmt.Sprintf("pass quick on lo0 from ! %s to any keep state", jails),
		Why: []string{
			"The host's own traffic to itself: lo0 carries every packet to this host's own",
			"addresses (127.0.0.1, ::1, and every interface address through its loopback route,",
			"sys/netinet/in.c \"Add a loopback route to self\"). Not the jails': see below.",
			"No `set skip on lo0`: a jail's packets to this host cross lo0 too, and skipping",
			"it would let every jail reach the host's sshd and every daemon bound to `*` (ARBO012).",
		},
	}}
	for _, f := range p.Flows {
		if f.To.Kind == policy.KindOutside || f.To.Kind == policy.KindTier {
			continue
		}
		var to []netip.Addr
		for _, a := range hostAddrs {
			if slices.ContainsFunc(f.To.Prefixes, func(q netip.Prefix) bool { return q.Contains(a) }) {
				to = append(to, a)
			}
		}
		if len(to) == 0 {
			continue // most flows: checked first, since a tier's From holds every jail of the tier
		}
		var from []netip.Addr
		for _, a := range v.allLoc {
			if p.Contains(f.From, a) {
				from = append(from, a)
			}
		}
		if len(from) == 0 {
			continue
		}
		// Per address family: pf refuses a rule whose from and to can
		// never share one.
		for _, is4 := range []bool{true, false} {
			fa := slices.DeleteFunc(slices.Clone(from), func(a netip.Addr) bool { return a.Is4() != is4 })
			ta := slices.DeleteFunc(slices.Clone(to), func(a netip.Addr) bool { return a.Is4() != is4 })
			if len(fa) == 0 || len(ta) == 0 {
				continue
			}
			proto, ports := protoPorts(f)
			out = append(out, Statement{
				Why: []string{fmt.Sprintf("jails of this host to the host itself, as the topology allows: %s", describe(f))},
				Text: joinWords("pass quick", proto, "from", braceList(addrStrings(sortedAddrs(fa))),
					"to", braceList(addrStrings(sortedAddrs(ta))), ports, "keep state"),
			})
		}
	}
	out = append(out, Statement{
		Text: fmt.Sprintf("block drop log quick on lo0 from %s to ! %s", jails, jails),
		Why: []string{
			"A jail reaches its own host only where the topology allows (ARBO012): nothing",
			"else from a jail of this host to the host's own addresses, which it reaches over lo0",
			"(sys/netinet/in_pcb.c in_pcbladdr: a jailed socket keeps its jail's address).",
			"Jail-to-jail traffic on lo0 (jails on an attached network) is judged below.",
		},
	})
	return out
}
