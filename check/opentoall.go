package check

import (
	"fmt"

	"github.com/arbo-project/arbo/inventory"
)

// checkOpenToAll (ARBO013, cluster): neither a management entry nor a
// service's `from` is 0.0.0.0/0 or ::/0. Management SSH from everywhere
// leaves every machine's login to its password or key alone; a service
// from everywhere bypasses the gateway, whose forwards are the one reviewed
// way in (`from: [gateway]`).
func checkOpenToAll(x *env) []Finding {
	c := x.c
	var out []Finding
	for _, s := range c.Management {
		if s.CIDR.IsValid() && s.CIDR.Bits() == 0 {
			what := s.CIDR.String()
			if s.Kind == inventory.SourceNetwork {
				what = fmt.Sprintf("network %s (%s)", s.Name, s.CIDR)
			}
			out = append(out, Finding{Machine: inventory.MachineCluster, Subject: "management",
				Message: fmt.Sprintf("management lists %s: SSH to every machine stays open from the whole internet; list the networks the operators come from", what),
				Pos:     firstPos(s.Pos, c.Pos("management"))})
		}
	}
	for _, t := range c.Tiers {
		for _, s := range t.Services {
			for _, f := range s.From {
				if f.Kind == inventory.SourceCIDR && f.CIDR.IsValid() && f.CIDR.Bits() == 0 {
					out = append(out, Finding{Machine: inventory.MachineCluster, Subject: t.Name + "/" + s.Name,
						Message: fmt.Sprintf("service %s of tier %s is open from %s, every address there is; for public traffic use from: [gateway] and a gateway forward, else list the networks its clients are on", s.Name, t.Name, f.CIDR),
						Pos:     firstPos(f.Pos, s.Pos, t.Pos)})
				}
			}
		}
	}
	return out
}
