package inventory

import (
	"math/bits"
	"net/netip"
	"slices"
	"sync"
)

// routeCache holds the per-host route prefixes, computed once per cluster.
// A pointer, so that a Cluster stays copyable; index() resets it.
type routeCache struct {
	once sync.Once
	t    map[string][]netip.Prefix
}

// routeTable returns, per host, the prefixes that cover its host-local
// (lo1) jail addresses.
//
// Within a network that no machine attaches (host-local: its addresses live
// only on lo1 aliases, so no machine has a connected route into it), a
// host's addresses aggregate into the largest aligned prefixes inside the
// network that contain no address of anything else the topology knows (other
// hosts' jails, jails on an interface, machine interfaces). Such a prefix may
// cover unused addresses: nothing answers there either way. It never covers
// another host's jail, so no route relies on longest-prefix match to be
// right, and a jail numbered inside a peer's block (a moved jail keeps its
// address) simply splits that block.
//
// Addresses in an attached network, or in no declared network, stay /32
// (/128): a prefix there would shadow the connected route for addresses the
// topology does not know (other devices on that LAN).
//
// Cost: O(addresses × address bits), once; no object per (host, jail) pair
// beyond the addresses themselves.
func (c *Cluster) routeTable() map[string][]netip.Prefix {
	if c.routes == nil { // a Cluster built without index (defensive)
		c.routes = &routeCache{}
	}
	c.routes.once.Do(func() { c.routes.t = c.buildRouteTable() })
	return c.routes.t
}

type owned struct {
	a     netip.Addr
	owner string // host name; "" for anything that is not a host's lo1 jail
}

func (c *Cluster) buildRouteTable() map[string][]netip.Prefix {
	owner := map[netip.Addr]string{}
	claim := func(a netip.Addr, who string) {
		if !a.IsValid() {
			return
		}
		if prev, ok := owner[a]; ok && prev != who {
			who = "" // claimed twice (validation reports it): route to no one
		}
		owner[a] = who
	}
	for _, h := range c.Hosts {
		for _, j := range h.Jails {
			for _, a := range j.IPs {
				if c.JailInterface(h, a) == "lo1" {
					claim(a, h.Name)
				} else {
					claim(a, "")
				}
			}
		}
		for _, hi := range h.Interfaces {
			claim(hi.Address, "")
		}
	}
	if g := c.Gateway; g != nil {
		for _, gi := range g.Interfaces {
			claim(gi.Address, "")
		}
	}

	out := map[string][]netip.Prefix{}
	var all []owned
	for a, who := range owner {
		all = append(all, owned{a, who})
	}
	slices.SortFunc(all, func(x, y owned) int { return x.a.Compare(y.a) })
	aggregated := map[netip.Addr]bool{}
	for _, n := range c.Networks {
		if !n.HostLocal() || !n.CIDR.IsValid() {
			continue
		}
		p := n.CIDR.Masked()
		lo, _ := slices.BinarySearchFunc(all, p.Addr(), func(e owned, a netip.Addr) int { return e.a.Compare(a) })
		hi := lo
		for hi < len(all) && p.Contains(all[hi].a) {
			hi++
		}
		aggregate(p, all[lo:hi], out)
		for _, e := range all[lo:hi] {
			aggregated[e.a] = true
		}
	}
	for _, e := range all {
		if e.owner != "" && !aggregated[e.a] {
			out[e.owner] = append(out[e.owner], netip.PrefixFrom(e.a, e.a.BitLen()))
		}
	}
	for h, ps := range out {
		slices.SortFunc(ps, func(x, y netip.Prefix) int {
			if c := x.Addr().Compare(y.Addr()); c != 0 {
				return c
			}
			return x.Bits() - y.Bits()
		})
		out[h] = slices.Compact(ps)
	}
	return out
}

// aggregate assigns p to the one host that owns every address in it, or
// splits p in halves until each half has one owner. es is sorted and inside
// p.
func aggregate(p netip.Prefix, es []owned, out map[string][]netip.Prefix) {
	if len(es) == 0 {
		return
	}
	one := es[0].owner
	for _, e := range es[1:] {
		if e.owner != one {
			one = "\x00"
			break
		}
	}
	switch {
	case one == "":
		return // nothing of a host's here
	case one != "\x00":
		// The smallest prefix around the same addresses: the route claims
		// no more unused space than it must (so a jail added next door on
		// another host does not split it), at the same count.
		first, last := es[0].a, es[len(es)-1].a
		out[one] = append(out[one], netip.PrefixFrom(first, commonBits(first, last)).Masked())
		return
	}
	// Two owners are inside p, so p holds two addresses and is not a single one.
	lower := netip.PrefixFrom(p.Addr(), p.Bits()+1)
	upper := netip.PrefixFrom(setBit(p.Addr(), p.Bits()), p.Bits()+1)
	i := 0
	for i < len(es) && lower.Contains(es[i].a) {
		i++
	}
	aggregate(lower, es[:i], out)
	aggregate(upper, es[i:], out)
}

// setBit returns a with bit n (0 = the most significant) set.
func setBit(a netip.Addr, n int) netip.Addr {
	if a.Is4() {
		b := a.As4()
		b[n/8] |= 0x80 >> (n % 8)
		return netip.AddrFrom4(b)
	}
	b := a.As16()
	b[n/8] |= 0x80 >> (n % 8)
	return netip.AddrFrom16(b).WithZone(a.Zone())
}

// commonBits is the length of the longest prefix shared by a and b (same family).
func commonBits(a, b netip.Addr) int {
	x, y := a.As16(), b.As16()
	n := 0
	for i := range x {
		d := x[i] ^ y[i]
		if d == 0 {
			n += 8
			continue
		}
		n += bits.LeadingZeros8(d)
		break
	}
	if a.Is4() {
		return n - 96
	}
	return n
}
