package inventory

import (
	"net/netip"
	"slices"
)

// This file holds the facts that TOPOLOGY.md derives from the keys
// ("Networks and addresses"), so that renderers, checks and the lab compute
// them one way only.

// index builds the lookup maps and derived network flags. The loader calls it
// once; tests that build a Cluster by hand call Finish.
func (c *Cluster) index() {
	c.netByName = map[string]*Network{}
	c.tierByName = map[string]*Tier{}
	c.hostByName = map[string]*Host{}
	c.jailByName = map[string]*Jail{}
	c.flavByName = map[string]*Flavour{}
	c.tierJails = map[string][]*Jail{}
	c.routes = &routeCache{}
	for _, n := range c.Networks {
		c.netByName[n.Name] = n
		n.Attached, n.WAN = false, false
	}
	for _, t := range c.Tiers {
		c.tierByName[t.Name] = t
	}
	for _, f := range c.Flavours {
		c.flavByName[f.Name] = f
	}
	for i, h := range c.Hosts {
		h.Index = i
		c.hostByName[h.Name] = h
		for _, j := range h.Jails {
			j.Host = h.Name
			c.jailByName[j.Name] = j
			c.tierJails[j.Tier] = append(c.tierJails[j.Tier], j)
		}
		for _, hi := range h.Interfaces {
			if n := c.netByName[hi.Network]; n != nil {
				n.Attached = true
			}
		}
	}
	if g := c.Gateway; g != nil {
		for _, gi := range g.Interfaces {
			if n := c.netByName[gi.Network]; n != nil {
				n.Attached = true
			}
			if gi.Uplink() {
				for _, n := range c.Networks {
					if n.CIDR.Contains(gi.Address) {
						n.WAN = true
					}
				}
			}
		}
	}
}

// Finish indexes a Cluster built by hand (in tests). Load does this itself.
func (c *Cluster) Finish() *Cluster {
	if c.Positions == nil {
		c.Positions = map[string]Pos{}
	}
	c.index()
	return c
}

// Pos returns the position of a key path, or the zero Pos.
func (c *Cluster) Pos(path string) Pos { return c.Positions[path] }

func (c *Cluster) Network(name string) *Network { return c.netByName[name] }
func (c *Cluster) Tier(name string) *Tier       { return c.tierByName[name] }
func (c *Cluster) Host(name string) *Host       { return c.hostByName[name] }
func (c *Cluster) Jail(name string) *Jail       { return c.jailByName[name] }
func (c *Cluster) Flavour(name string) *Flavour { return c.flavByName[name] }

// Machines lists every machine name: the gateway first, then the hosts in
// declaration order.
func (c *Cluster) Machines() []string {
	var out []string
	if c.Gateway != nil {
		out = append(out, c.Gateway.Name)
	}
	for _, h := range c.Hosts {
		out = append(out, h.Name)
	}
	return out
}

// IsGateway reports whether name is the gateway's.
func (c *Cluster) IsGateway(name string) bool { return c.Gateway != nil && c.Gateway.Name == name }

// Jails lists every jail, host by host, in declaration order.
func (c *Cluster) Jails() []*Jail {
	var out []*Jail
	for _, h := range c.Hosts {
		out = append(out, h.Jails...)
	}
	return out
}

// TierJails lists the jails of a tier in declaration order. Renderers ask
// it for every host, so it is indexed at load rather than scanned.
func (c *Cluster) TierJails(tier string) []*Jail {
	return slices.Clone(c.tierJails[tier])
}

// TiersWithRole lists the tiers of one role.
func (c *Cluster) TiersWithRole(role string) []*Tier {
	var out []*Tier
	for _, t := range c.Tiers {
		if t.Role == role {
			out = append(out, t)
		}
	}
	return out
}

// IsErlangTier reports whether jails of the tier run Erlang nodes.
func (c *Cluster) IsErlangTier(tier string) bool {
	return c.Erlang != nil && slices.Contains(c.Erlang.Tiers, tier)
}

// IsHiddenTier reports whether the tier's Erlang nodes start -hidden.
func (c *Cluster) IsHiddenTier(tier string) bool {
	return c.Erlang != nil && slices.Contains(c.Erlang.Hidden, tier)
}

// TierAddr is the jail's first address in its tier's network: its Erlang
// node address and the address its tier's policy is about.
func (c *Cluster) TierAddr(j *Jail) netip.Addr {
	if t := c.Tier(j.Tier); t != nil {
		if n := c.Network(t.Network); n != nil {
			for _, a := range j.IPs {
				if n.CIDR.Contains(a) {
					return a
				}
			}
		}
	}
	if len(j.IPs) > 0 {
		return j.IPs[0]
	}
	return netip.Addr{}
}

// NetworkOf returns the declared network holding addr, or nil.
func (c *Cluster) NetworkOf(addr netip.Addr) *Network {
	for _, n := range c.Networks {
		if n.CIDR.Contains(addr) {
			return n
		}
	}
	return nil
}

// JailInterface is the interface ezjail puts a jail address on: lo1 for a
// host-local network, the host's device on an attached one.
func (c *Cluster) JailInterface(h *Host, addr netip.Addr) string {
	n := c.NetworkOf(addr)
	if n == nil || n.HostLocal() {
		return "lo1"
	}
	for _, hi := range h.Interfaces {
		if hi.Network == n.Name {
			return hi.Device
		}
	}
	return "lo1"
}

// HasHostLocalJails reports whether any jail of h needs lo1.
func (c *Cluster) HasHostLocalJails(h *Host) bool {
	for _, j := range h.Jails {
		for _, a := range j.IPs {
			if c.JailInterface(h, a) == "lo1" {
				return true
			}
		}
	}
	return false
}

// MachineNetworks lists the declared networks a machine has an interface on,
// with its address there, in the machine's interface order.
func (c *Cluster) MachineNetworks(machine string) map[string]netip.Addr {
	out := map[string]netip.Addr{}
	if c.IsGateway(machine) {
		for _, gi := range c.Gateway.Interfaces {
			if gi.Network != "" {
				out[gi.Network] = gi.Address
			}
		}
		return out
	}
	if h := c.Host(machine); h != nil {
		for _, hi := range h.Interfaces {
			out[hi.Network] = hi.Address
		}
	}
	return out
}

// RouteVia is the address of host `to` through which machine `from` reaches
// to's host-local jail addresses: to's address on the interconnect network
// when both are on it, else on the first shared attached network in
// declaration order.
func (c *Cluster) RouteVia(from string, to *Host) (netip.Addr, bool) {
	return c.routeVia(from, to, func(netip.Addr) bool { return true })
}

// RouteViaFor is RouteVia for one jail address: the next hop must be of
// its family (a route joins addresses of one family), so the interconnect
// and the shared networks are taken among those of that family.
func (c *Cluster) RouteViaFor(from string, to *Host, dest netip.Addr) (netip.Addr, bool) {
	return c.routeVia(from, to, func(a netip.Addr) bool { return a.Is4() == dest.Is4() })
}

func (c *Cluster) routeVia(from string, to *Host, ok func(netip.Addr) bool) (netip.Addr, bool) {
	mine := c.MachineNetworks(from)
	theirs := c.MachineNetworks(to.Name)
	for _, inter := range []bool{true, false} {
		for _, n := range c.Networks {
			if inter && !n.Interconnect {
				continue
			}
			if _, shared := mine[n.Name]; shared {
				if a, there := theirs[n.Name]; there && ok(a) {
					return a, true
				}
			}
		}
	}
	return netip.Addr{}, false
}

// Route is a static route to a peer host's host-local jail addresses: a
// prefix that covers some of them and no address of anything else.
type Route struct {
	Dest netip.Prefix
	Via  netip.Addr
	Host string // the holding host
}

// Routes lists the static routes machine needs to reach other hosts'
// host-local jail addresses: per peer host (declaration order) its prefixes
// (address order; see routeTable for how they aggregate). Hosts that cannot
// be reached (no shared network) are left out; validation reports them.
// The list grows with the number of peers, not with their jails.
func (c *Cluster) Routes(machine string) []Route {
	var out []Route
	t := c.routeTable()
	for _, h := range c.Hosts {
		if h.Name == machine || len(t[h.Name]) == 0 {
			continue
		}
		if _, ok := c.RouteVia(machine, h); !ok {
			continue
		}
		// One next hop per family (a route joins addresses of one family),
		// asked for once per host.
		type hop struct {
			via netip.Addr
			ok  bool
		}
		hops := map[bool]*hop{}
		for _, p := range t[h.Name] {
			hp := hops[p.Addr().Is4()]
			if hp == nil {
				hp = &hop{}
				hp.via, hp.ok = c.RouteViaFor(machine, h, p.Addr())
				hops[p.Addr().Is4()] = hp
			}
			if hp.ok {
				out = append(out, Route{Dest: p, Via: hp.via, Host: h.Name})
			}
		}
	}
	return out
}

// HostPrefixes are the prefixes through which every other machine reaches
// h's host-local jail addresses.
func (c *Cluster) HostPrefixes(h *Host) []netip.Prefix { return c.routeTable()[h.Name] }

// WayOut is a host's route to the internet: the device it leaves by and the
// next hop. ok is false when the host has none (then arbo writes no
// defaultrouter and no NAT for it).
func (c *Cluster) WayOut(h *Host) (device string, router netip.Addr, ok bool) {
	if g := c.Gateway; g != nil {
		for _, hi := range h.Interfaces {
			for _, gi := range g.Interfaces {
				if gi.Network != "" && gi.Network == hi.Network {
					return hi.Device, gi.Address, true
				}
			}
		}
		return "", netip.Addr{}, false
	}
	if h.Uplink != nil {
		return h.Uplink.Device, h.Uplink.Router, true
	}
	return "", netip.Addr{}, false
}

// MachineSSH merges a machine's own ssh settings over the top-level ones.
// ssh_config and the command line are remote/'s business.
func (c *Cluster) MachineSSH(machine string) SSH {
	var own SSH
	if c.IsGateway(machine) {
		own = c.Gateway.SSH
	} else if h := c.Host(machine); h != nil {
		own = h.SSH
	}
	m := c.SSH
	if own.Address != "" {
		m.Address = own.Address
	}
	if own.User != "" {
		m.User = own.User
	}
	if own.Port != 0 {
		m.Port = own.Port
	}
	if own.IdentityFile != "" {
		m.IdentityFile = own.IdentityFile
	}
	if own.KnownHosts != "" {
		m.KnownHosts = own.KnownHosts
	}
	if own.Jump != "" {
		m.Jump = own.Jump
	}
	if own.Timeout != 0 {
		m.Timeout = own.Timeout
	}
	if m.Jump == machine {
		m.Jump = "" // the top-level jump host does not jump through itself
	}
	return m
}

// ManagementPrefixes are the sources from which SSH to machine must stay
// open (ARBO010): the `management` entries, else the declared network that
// holds the machine's ssh.address. Empty when neither applies (validation
// then requires `management`).
func (c *Cluster) ManagementPrefixes(machine string) []netip.Prefix {
	var out []netip.Prefix
	if len(c.Management) > 0 {
		for _, s := range c.Management {
			if s.CIDR.IsValid() {
				out = append(out, s.CIDR)
			}
		}
		return out
	}
	if a, err := netip.ParseAddr(c.MachineSSH(machine).Address); err == nil {
		if n := c.NetworkOf(a); n != nil {
			out = append(out, n.CIDR)
		}
	}
	return out
}

// ClusterPrefixes are the cluster's own networks: every declared network
// that is not a WAN network. "Outside the cluster" means outside these.
func (c *Cluster) ClusterPrefixes() []netip.Prefix {
	var out []netip.Prefix
	for _, n := range c.Networks {
		if !n.WAN {
			out = append(out, n.CIDR)
		}
	}
	return out
}

// InsideCluster reports whether every address of p lies in one of the
// cluster's networks.
func (c *Cluster) InsideCluster(p netip.Prefix) bool {
	for _, n := range c.ClusterPrefixes() {
		if n.Bits() <= p.Bits() && n.Contains(p.Addr()) {
			return true
		}
	}
	return false
}

// Resolvers are the addresses every jail's resolv.conf names: the resolver
// jail's tier address, then the gateway's address on each jail network's
// way (its first attached-network address) when gateway.dns is set.
func (c *Cluster) Resolvers() []netip.Addr {
	var out []netip.Addr
	if c.DNS.ResolverJail != "" {
		if j := c.Jail(c.DNS.ResolverJail); j != nil {
			out = append(out, c.TierAddr(j))
		}
	}
	if g := c.Gateway; g != nil && g.DNS {
		for _, gi := range g.Interfaces {
			if gi.Network != "" {
				out = append(out, gi.Address)
				break
			}
		}
	}
	return out
}

// ErlangJails lists the jails that run Erlang nodes.
func (c *Cluster) ErlangJails() []*Jail {
	var out []*Jail
	for _, j := range c.Jails() {
		if c.IsErlangTier(j.Tier) {
			out = append(out, j)
		}
	}
	return out
}

// ErlangPorts are the ports an Erlang service opens: epmd and the
// distribution range; with epmd: false, the distribution port alone.
func (c *Cluster) ErlangPorts() []PortRange {
	if c.Erlang == nil {
		return []PortRange{{4369, 4369}}
	}
	if c.Erlang.NoEPMD {
		return []PortRange{c.Erlang.DistPorts}
	}
	return []PortRange{{4369, 4369}, c.Erlang.DistPorts}
}

// SafeName is ezjail's name for a jail in file and variable names: every
// character outside [A-Za-z0-9] becomes "_" (ezjail-admin: tr -c '[:alnum:]' _).
func SafeName(name string) string {
	b := []byte(name)
	for i, ch := range b {
		if !(ch >= 'a' && ch <= 'z' || ch >= 'A' && ch <= 'Z' || ch >= '0' && ch <= '9') {
			b[i] = '_'
		}
	}
	return string(b)
}
