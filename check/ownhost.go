package check

import (
	"fmt"
	"net/netip"
	"slices"

	"github.com/arbo-project/arbo/policy"
)

// checkOwnHost (ARBO012): on each host, a jail reaches the host's own
// addresses only by a flow of the topology whose destination names them
// (today: management SSH, when the management networks hold the jail's
// address). A jail's packets to its host cross lo0 on FreeBSD (every
// interface address has a loopback route through lo0: sys/netinet/in.c
// in_aifaddr_ioctl, "Add a loopback route to self"), so a firewall that
// skips lo0 lets every jail reach the host's sshd and every daemon bound to
// `*`. Egress does not count: a host's own address is a machine of the
// cluster, never "outside", even on an uplink outside the cluster's
// networks.
//
// The rule judges a given ruleset (the rendered or live pf.conf): every
// address of every jail of the host against every address of the host, on
// every port the topology names (and those the ruleset names). The
// topology's own policy has no notion of lo0, so without a ruleset there is
// nothing to judge: arbo renders this rule as a block on lo0.
func checkOwnHost(x *env) []Finding {
	var out []Finding
	probes := probePorts(x.c)
	for _, h := range x.c.Hosts {
		if len(h.Jails) == 0 {
			continue
		}
		rs, given := x.ruleset(h.Name)
		if !given {
			continue
		}
		hostAddrs := policy.MachineAddrs(x.c, h.Name)
		hostProbes := probes
		if lp, ok := rs.(interface{ Ports() []int }); ok {
			hostProbes = withPorts(probes, lp.Ports())
		}
		for _, j := range h.Jails {
			for _, src := range j.IPs {
				for _, dst := range hostAddrs {
					if src.Is4() != dst.Is4() || src == dst {
						continue
					}
					var bad []probe
					for _, pr := range hostProbes {
						if rs.Allows(src, dst, pr.proto, pr.port) && !x.toOwnHostAllowed(src, dst, pr) {
							bad = append(bad, pr)
						}
					}
					if len(bad) == 0 {
						continue
					}
					out = append(out, Finding{Machine: h.Name, Subject: j.Name, // a jail: a subject `accept` knows
						Message: fmt.Sprintf("the firewall lets jail %s (%s, tier %s) reach its own host %s at %s on %s, which no flow of the topology allows; filter lo0 (no `set skip on lo0`)",
							j.Name, src, j.Tier, h.Name, dst, joinProbes(bad)),
						Pos: firstPos(j.Pos, h.Pos)})
				}
			}
		}
	}
	return out
}

// toOwnHostAllowed reports whether a flow of the topology lets jail address
// src reach address dst of its own host on pr: a flow whose destination
// names dst itself (not by "outside"), whose source holds src, and whose
// protocol and ports cover pr.
func (x *env) toOwnHostAllowed(src, dst netip.Addr, pr probe) bool {
	for _, f := range x.p.Flows {
		if f.To.Kind == policy.KindOutside || !f.MatchesPort(pr.proto, pr.port) {
			continue
		}
		if !slices.ContainsFunc(f.To.Prefixes, func(p netip.Prefix) bool { return p.Contains(dst) }) {
			continue
		}
		if x.p.Contains(f.From, src) {
			return true
		}
	}
	return false
}
