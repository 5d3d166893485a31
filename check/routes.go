package check

import (
	"fmt"
)

// routeCostLimit is how many routes per host-local network a host's jails
// may cost every other machine before ARBO016 speaks: two leave room for
// one jail numbered outside the host's block.
const routeCostLimit = 2

// checkRouteCost (ARBO016, per host): every other machine reaches a host's
// lo1 jail addresses through the prefixes inventory.HostPrefixes finds.
// Numbered from one aligned block per network, that is one route per
// network; numbered at random, one per jail on every peer and on the
// gateway, and the cluster's routing tables grow with the square of its
// size.
func checkRouteCost(x *env) []Finding {
	if len(x.c.Hosts) < 2 && x.c.Gateway == nil {
		return nil // nobody routes to this host
	}
	var out []Finding
	for _, h := range x.c.Hosts {
		ps := x.c.HostPrefixes(h)
		nets := map[string]bool{}
		addrs := 0
		for _, j := range h.Jails {
			for _, a := range j.IPs {
				if x.c.JailInterface(h, a) != "lo1" {
					continue
				}
				addrs++
				if n := x.c.NetworkOf(a); n != nil {
					nets[n.Name] = true
				}
			}
		}
		if len(nets) == 0 || len(ps) <= routeCostLimit*len(nets) {
			continue
		}
		out = append(out, Finding{Machine: h.Name, Subject: h.Name,
			Message: fmt.Sprintf("the %d host-local jail addresses of %s cost every other machine %d static routes (%d network(s)): number each host's jails from one aligned block per network so that they aggregate (docs/topology.md, \"Numbering jails\")",
				addrs, h.Name, len(ps), len(nets)),
			Pos: h.Pos})
	}
	return out
}
