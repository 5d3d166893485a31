// Package rendered runs arbo check on the pf.conf arbo would write to each
// host: it renders every host's file (with any template overrides),
// parses it with package pf, and hands the parsed rulesets to check.Run,
// so that ARBO004, ARBO007 and ARBO010 judge the rules as written rather
// than the policy they were derived from. It sits apart from check so that
// check does not import pf (pf's renderer imports policy, as check does).
package rendered

import (
	"errors"
	"fmt"
	"net/netip"

	"github.com/arbo-project/arbo/check"
	"github.com/arbo-project/arbo/inventory"
	"github.com/arbo-project/arbo/pf"
	"github.com/arbo-project/arbo/policy"
	"github.com/arbo-project/arbo/templates"
)

// Run renders and parses every host's pf.conf and checks the topology
// against them. A file that does not render or parse, or that uses what
// the parser cannot resolve from the topology (a table filled at run time,
// an interface's address), is an error, not a finding: arbo cannot judge a
// file it does not understand, and passing it on the topology's policy
// instead would report a firewall safer than the one it would install.
func Run(c *inventory.Cluster, ts *templates.Set, o check.Options) (*check.Report, error) {
	rs, err := Rulesets(c, ts)
	if err != nil {
		return nil, err
	}
	if o.Rulesets == nil {
		o.Rulesets = map[string]check.Ruleset{}
	}
	for m, r := range rs {
		if _, given := o.Rulesets[m]; !given {
			o.Rulesets[m] = r
		}
	}
	return check.Run(c, o), nil
}

// Rulesets renders and parses the pf.conf of every host, each bound to the
// host's addresses and routes.
func Rulesets(c *inventory.Cluster, ts *templates.Set) (map[string]*pf.Ruleset, error) {
	// Which host holds each host-local (lo1) jail address: a packet from
	// one arrives by the route toward that host.
	holder := map[netip.Addr]*inventory.Host{}
	for _, h := range c.Hosts {
		for _, j := range h.Jails {
			for _, a := range j.IPs {
				holder[a] = h
			}
		}
	}
	out := make(map[string]*pf.Ruleset, len(c.Hosts))
	var errs []error
	// Tables repeat on every host: each distinct address list is parsed
	// once (pf.SharedRender), and the policy is derived once.
	shared := pf.NewSharedTables()
	p := policy.Derive(c)
	for _, h := range c.Hosts {
		text, err := pf.SharedRender(c, h, p, ts, shared)
		if err != nil {
			errs = append(errs, err)
			continue
		}
		name := h.Name + ":" + pf.Path
		r, err := pf.ParseShared(name, text, shared)
		if err != nil {
			errs = append(errs, fmt.Errorf("the rendered pf.conf cannot be checked: %w", err))
			continue
		}
		r.Net = network(c, h, holder)
		if u := r.Unknowns(); len(u) > 0 {
			errs = append(errs, fmt.Errorf("the rendered pf.conf cannot be checked: %s", u[0]))
			continue
		}
		out[h.Name] = r
	}
	if len(errs) > 0 {
		return nil, errors.Join(errs...)
	}
	return out, nil
}

// Networks is what pf on each host knows of addresses and routes (see
// network), for judging rules read from elsewhere (check --live).
func Networks(c *inventory.Cluster) map[string]*pf.Network {
	holder := map[netip.Addr]*inventory.Host{}
	for _, h := range c.Hosts {
		for _, j := range h.Jails {
			for _, a := range j.IPs {
				holder[a] = h
			}
		}
	}
	out := make(map[string]*pf.Network, len(c.Hosts))
	for _, h := range c.Hosts {
		out[h.Name] = network(c, h, holder)
	}
	return out
}

// network is what pf on host h knows of addresses and routes: its own
// interface and jail addresses, its attached networks, its static routes
// to other hosts' lo1 jails, and its way out as the default route.
func network(c *inventory.Cluster, h *inventory.Host, holder map[netip.Addr]*inventory.Host) *pf.Network {
	n := &pf.Network{Local: map[netip.Addr]string{}}
	devOf := map[string]string{} // network name → device
	for _, hi := range h.Interfaces {
		n.Local[hi.Address] = hi.Device
		devOf[hi.Network] = hi.Device
		if nw := c.Network(hi.Network); nw != nil {
			n.Attached = append(n.Attached, pf.Attached{Iface: hi.Device, Prefix: nw.CIDR})
		}
	}
	for _, j := range h.Jails {
		for _, a := range j.IPs {
			n.Local[a] = c.JailInterface(h, a)
		}
	}
	if dev, _, ok := c.WayOut(h); ok {
		n.Default = dev
	}
	n.Static = func(a netip.Addr) (string, bool) {
		other := holder[a]
		if other == nil || other == h || c.JailInterface(other, a) != "lo1" {
			return "", false
		}
		via, ok := c.RouteViaFor(h.Name, other, a)
		if !ok {
			return "", false
		}
		nw := c.NetworkOf(via)
		if nw == nil {
			return "", false
		}
		dev, ok := devOf[nw.Name]
		return dev, ok
	}
	return n
}
