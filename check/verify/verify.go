// Package verify proves, after an apply, that the cluster works as the
// topology says (`arbo verify`): probes run inside each jail with FreeBSD's
// base tools, over the same SSH settings as plan. Every jail name and tier
// name resolves to its addresses from every jail (host(1)); the allowed
// TCP flows of the policy connect (nc -z), a missing listener being
// reported as such and not as a block; a sample of forbidden flows (each
// tier pair no service allows, each host's jail to its own host) is
// refused; each Erlang jail's epmd answers with a registered node.
//
// Probes are planned from the topology alone (Plan, pure) and run one
// command per source jail, in parallel, bounded, each with a timeout, so a
// hung jail cannot hang verify (Run).
package verify

import (
	"fmt"
	"net/netip"
	"slices"
	"strconv"

	"github.com/arbo-project/arbo/dns"
	"github.com/arbo-project/arbo/inventory"
	"github.com/arbo-project/arbo/policy"
)

// Kinds of probe.
const (
	Resolve = "resolve" // Name resolves to exactly Want
	Connect = "connect" // an allowed flow: From reaches To:Port
	Refuse  = "refuse"  // a forbidden flow: From does not reach To:Port
	EPMD    = "epmd"    // epmd in From answers and lists a node
)

// Probe is one question asked from inside a jail.
type Probe struct {
	Kind string   `json:"kind"`
	Host string   `json:"host"` // the machine From runs on
	From string   `json:"from"` // the source jail
	Name string   `json:"name,omitempty"`
	Want []string `json:"want,omitempty"` // Resolve: the addresses, sorted
	To   string   `json:"to,omitempty"`   // Connect, Refuse: the address
	Port int      `json:"port,omitempty"`
	// Flow says why: the policy flow a Connect proves, the tier pair a
	// Refuse proves apart, the jail and tier a name belongs to.
	Flow string `json:"flow"`
}

// maxPairs bounds the jail pairs a flow is probed between: beyond it each
// source jail probes one destination (chosen in turn), so that the number
// of probes grows with the jails, not with their square.
const maxPairs = 64

// maxNames bounds the jail names each jail resolves: beyond it, the first
// jail of each tier on each host, then others in order up to the bound.
const maxNames = 64

// Plan lists the probes for cluster c: pure, deterministic, in host and
// jail declaration order.
func Plan(c *inventory.Cluster) []Probe {
	var out []Probe
	p := policy.Derive(c)
	z := dns.Build(c)
	want := map[string][]string{}
	for _, r := range z.Records {
		if r.Type == "A" || r.Type == "AAAA" {
			want[r.Name] = append(want[r.Name], r.Data)
		}
	}
	var names []string
	var why = map[string]string{}
	for _, t := range c.Tiers {
		n := t.Name + "." + c.Domain
		if len(want[n]) > 0 {
			names = append(names, n)
			why[n] = "tier " + t.Name
		}
	}
	jails := c.Jails()
	picked := jails
	if len(jails) > maxNames {
		picked = sampleJails(c, maxNames)
	}
	for _, j := range picked {
		n := j.Name + "." + c.Domain
		names = append(names, n)
		why[n] = "jail " + j.Name + " (tier " + j.Tier + ")"
	}
	for _, j := range jails {
		for _, n := range names {
			w := slices.Clone(want[n])
			slices.Sort(w)
			out = append(out, Probe{Kind: Resolve, Host: j.Host, From: j.Name, Name: n, Want: w, Flow: why[n]})
		}
	}

	// Allowed flows between tiers.
	allowedPair := map[[2]string]bool{}
	for _, f := range p.Flows {
		if f.From.Kind != policy.KindTier || f.To.Kind != policy.KindTier {
			continue
		}
		if f.Proto == "tcp" || f.Proto == "" {
			allowedPair[[2]string{f.From.Tier, f.To.Tier}] = true
		}
		if f.Proto != "tcp" {
			continue // UDP has no connection to prove; "" is any port
		}
		src, dst := c.TierJails(f.From.Tier), c.TierJails(f.To.Tier)
		for _, r := range f.Ports {
			port := r.Min
			pairs(src, dst, func(s, d *inventory.Jail) {
				if a, ok := tierAddr(c, d); ok {
					out = append(out, Probe{Kind: Connect, Host: s.Host, From: s.Name, To: a.String(), Port: port, Flow: f.String()})
				}
			})
		}
	}
	// A sample of forbidden flows: each ordered tier pair no TCP flow
	// allows, from the first jail of one to the first of the other, on a
	// port the destination serves (so that only the firewall can refuse).
	for _, a := range c.Tiers {
		for _, b := range c.Tiers {
			if allowedPair[[2]string{a.Name, b.Name}] {
				continue
			}
			src, dst := c.TierJails(a.Name), c.TierJails(b.Name)
			if len(src) == 0 || len(dst) == 0 {
				continue
			}
			s, d := src[0], dst[0]
			if s == d && len(dst) > 1 {
				d = dst[1]
			}
			if s == d {
				continue
			}
			port := servedPort(p, b.Name)
			addr, ok := tierAddr(c, d)
			if !ok {
				continue
			}
			if _, allowed := p.Allows(firstIP(s), addr, "tcp", port); allowed {
				continue
			}
			out = append(out, Probe{Kind: Refuse, Host: s.Host, From: s.Name, To: addr.String(), Port: port,
				Flow: fmt.Sprintf("tier %s -> tier %s: no service allows it", a.Name, b.Name)})
		}
	}
	// Each host's first jail to its own host's SSH port.
	for _, h := range c.Hosts {
		if len(h.Jails) == 0 || len(h.Interfaces) == 0 {
			continue
		}
		j := h.Jails[0]
		dst := h.Interfaces[0].Address
		if _, allowed := p.Allows(firstIP(j), dst, "tcp", 22); allowed {
			continue
		}
		out = append(out, Probe{Kind: Refuse, Host: h.Name, From: j.Name, To: dst.String(), Port: 22,
			Flow: fmt.Sprintf("jail %s -> its own host %s: no service allows it", j.Name, h.Name)})
	}
	// Erlang: epmd in every jail of an Erlang tier lists the jail's node,
	// RELEASE_NODE = <basename>@<host> (erlang.go), registered under its
	// name part.
	for _, j := range jails {
		if c.Erlang != nil && !c.Erlang.NoEPMD && slices.Contains(c.Erlang.Tiers, j.Tier) {
			out = append(out, Probe{Kind: EPMD, Host: j.Host, From: j.Name, Name: c.Erlang.Basename, Port: 4369, Flow: "tier " + j.Tier + " is an Erlang tier"})
		}
	}
	return out
}

// pairs calls f for the source/destination jail pairs of a flow: all of
// them up to maxPairs, else each source jail with one destination in turn.
func pairs(src, dst []*inventory.Jail, f func(s, d *inventory.Jail)) {
	if len(src)*len(dst) <= maxPairs {
		for _, s := range src {
			for _, d := range dst {
				if s != d {
					f(s, d)
				}
			}
		}
		return
	}
	for i, s := range src {
		d := dst[i%len(dst)]
		if d == s {
			d = dst[(i+1)%len(dst)]
		}
		if d != s {
			f(s, d)
		}
	}
}

func sampleJails(c *inventory.Cluster, n int) []*inventory.Jail {
	var out []*inventory.Jail
	seen := map[*inventory.Jail]bool{}
	for _, h := range c.Hosts {
		tiers := map[string]bool{}
		for _, j := range h.Jails {
			if !tiers[j.Tier] && len(out) < n {
				tiers[j.Tier] = true
				seen[j] = true
				out = append(out, j)
			}
		}
	}
	for _, j := range c.Jails() {
		if len(out) >= n {
			break
		}
		if !seen[j] {
			out = append(out, j)
		}
	}
	return out
}

func firstIP(j *inventory.Jail) netip.Addr {
	if len(j.IPs) == 0 {
		return netip.Addr{}
	}
	return j.IPs[0]
}

// tierAddr is the address of j in its tier's network (the one services
// listen on), else its first.
func tierAddr(c *inventory.Cluster, j *inventory.Jail) (netip.Addr, bool) {
	if len(j.IPs) == 0 {
		return netip.Addr{}, false
	}
	return c.TierAddr(j), true
}

// servedPort is a TCP port tier t serves to someone (its first service
// port), else 22.
func servedPort(p *policy.Policy, t string) int {
	for _, f := range p.Into(t) {
		if f.Proto == "tcp" && len(f.Ports) > 0 && f.To.Kind == policy.KindTier {
			return f.Ports[0].Min
		}
	}
	return 22
}

// label names a probe in one line: "app1 -> 10.20.2.11 tcp/4369".
func (p Probe) label() string {
	switch p.Kind {
	case Resolve:
		return p.From + ": " + p.Name
	case EPMD:
		return p.From + ": epmd -names"
	}
	return p.From + " -> " + p.To + " tcp/" + strconv.Itoa(p.Port)
}
