// Package pfsense merges the objects arbo owns into a pfSense config.xml and
// leaves everything else as it was: aliases of tier addresses, port forwards
// with their filter rules, a management SSH rule, gateways and static routes
// to host-local jail addresses, and the DNS Resolver's host overrides,
// local-data and access list. arbo finds its own objects by a description
// that starts with "arbo:<cluster>:"; it never touches any other object.
package pfsense

import (
	"encoding/base64"
	"fmt"
	"net/netip"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/arbo-project/arbo/inventory"
)

// Options are what Merge needs beyond the topology. The renderer is pure:
// the caller reads the clock (SOURCE_DATE_EPOCH) and builds the DNS data.
type Options struct {
	// Revision stamps <revision><time> when the merge changes something.
	// Zero leaves <revision> alone, for apply to stamp.
	Revision time.Time
	// DNS is what the gateway's Resolver serves when gateway.dns is set
	// (the render package fills it from dns.Gateway).
	DNS DNSData
}

// DNSData is the gateway's share of the cluster zone.
type DNSData struct {
	// Overrides become Resolver host overrides (<unbound><hosts>): one per
	// jail name, which also gives pfSense the PTR records.
	Overrides []HostOverride
	// LocalData are complete unbound lines (`local-data: "app.x.internal. A 10.0.0.1"`)
	// for names host overrides cannot express (round robin, extra records);
	// they go into an arbo-owned block of the Resolver's custom options.
	LocalData []string
}

// HostOverride is one Resolver host override.
type HostOverride struct {
	Host   string
	Domain string
	IP     string // one address, or a comma-separated list as pfSense allows
	Descr  string // optional; arbo prefixes it with "arbo:<cluster>:"
}

type merger struct {
	c      *inventory.Cluster
	g      *inventory.Gateway
	o      Options
	root   *node
	prefix string // "arbo:<cluster>:"
	warn   []string
	// present holds the interface keys config.xml assigns.
	present map[string]bool
	// disabled holds the assigned interfaces without <enable>.
	disabled map[string]bool
	fwds     *[]forward // computed once: nat and filter share them
}

// Merge returns base with arbo's objects for cluster c brought up to date.
// Warnings report differences between the topology and config.xml that arbo
// does not fix (it never assigns interfaces); objects on an interface the
// base config lacks are left out, and the warning says so. A base that
// pfSense itself would refuse is an error. When nothing but formatting would
// change, base comes back byte for byte.
func Merge(c *inventory.Cluster, base []byte, o Options) (out []byte, warnings []string, err error) {
	if c == nil || c.Gateway == nil {
		return nil, nil, fmt.Errorf("pfsense: the cluster has no gateway")
	}
	d, err := parseValid(base)
	if err != nil {
		return nil, nil, fmt.Errorf("pfsense: base config: %w", err)
	}
	before := canonical(d)
	m := &merger{c: c, g: c.Gateway, o: o, root: d.root, prefix: "arbo:" + c.Name + ":",
		present: map[string]bool{}, disabled: map[string]bool{}}
	m.checkInterfaces()
	if err := m.aliases(); err != nil {
		return nil, m.warn, err
	}
	if err := m.nat(); err != nil {
		return nil, m.warn, err
	}
	m.filter()
	if err := m.routes(); err != nil {
		return nil, m.warn, err
	}
	if err := m.dns(); err != nil {
		return nil, m.warn, err
	}
	if canonical(d) == before {
		return base, m.warn, nil
	}
	if !o.Revision.IsZero() {
		m.revision()
	}
	out = d.bytes()
	if err := Validate(out); err != nil {
		return nil, m.warn, fmt.Errorf("pfsense: merged config would be refused (a bug in arbo): %w", err)
	}
	return out, m.warn, nil
}

func (m *merger) warnf(format string, args ...any) {
	m.warn = append(m.warn, fmt.Sprintf(format, args...))
}

// owns reports whether element n is arbo's for this cluster.
func (m *merger) owns(field string) func(*node) bool {
	return func(n *node) bool { return strings.HasPrefix(n.childValue(field), m.prefix) }
}

func (m *merger) descr(kind, key string) string { return m.prefix + kind + ":" + key }

// checkInterfaces compares the topology's gateway interfaces with
// config.xml's <interfaces>. Every difference is a warning.
func (m *merger) checkInterfaces() {
	ifs := m.root.child("interfaces")
	known := map[string]bool{}
	for _, gi := range m.g.Interfaces {
		known[gi.Name] = true
		var n *node
		if ifs != nil {
			n = ifs.child(strings.ToLower(gi.Name))
		}
		if n == nil {
			m.warnf("gateway interface %s (%s) is not assigned in config.xml; arbo renders no rules, forwards or routes on it (arbo never assigns interfaces)", gi.Name, gi.Device)
			continue
		}
		m.present[gi.Name] = true
		if dev := n.childValue("if"); dev != gi.Device {
			m.warnf("gateway interface %s: config.xml has device %q, the topology says %q", gi.Name, dev, gi.Device)
		}
		if a := n.childValue("ipaddr"); a != gi.Address.String() {
			m.warnf("gateway interface %s: config.xml has address %q, the topology says %q", gi.Name, a, gi.Address)
		} else if s := n.childValue("subnet"); s != strconv.Itoa(gi.Prefix.Bits()) {
			m.warnf("gateway interface %s: config.xml has prefix length %q, the topology says %d", gi.Name, s, gi.Prefix.Bits())
		}
		if n.child("enable") == nil {
			// filter_generate_optcfg_array (pfsense-2.7.2 filter.inc:1327)
			// lists interfaces through get_configured_interface_with_descr,
			// which skips those without <enable> (util.inc:1680): no rule
			// or port forward on it is ever loaded.
			m.disabled[gi.Name] = true
			m.warnf("gateway interface %s is disabled in config.xml (no <enable>); pfSense loads no rule or port forward on it, so arbo writes none there: enable it in pfSense (Interfaces) to get them", gi.Name)
		}
	}
	if ifs == nil {
		return
	}
	for _, k := range ifs.kids {
		if k.kind == kElem && !known[k.name] {
			m.warnf("config.xml assigns interface %s (%s), which the topology does not list", k.name, k.childValue("if"))
		}
	}
}

func (m *merger) tierAddrs(tier string) ([]string, []string) {
	var addrs, names []string
	for _, j := range m.c.TierJails(tier) {
		if a := m.c.TierAddr(j); a.IsValid() {
			addrs = append(addrs, a.String())
			names = append(names, j.Name)
		}
	}
	return addrs, names
}

// aliases writes one host alias per tier that has jails: the targets of
// port forwards, and names a user's own rules can use.
func (m *merger) aliases() error {
	var fresh []el
	names := map[string]bool{}
	for _, t := range m.c.Tiers {
		addrs, jails := m.tierAddrs(t.Name)
		if len(addrs) == 0 {
			continue
		}
		name := ObjectName(m.c.Name, t.Name)
		names[name] = true
		fresh = append(fresh, elem("alias",
			leaf("name", name),
			leaf("type", "host"),
			leaf("address", strings.Join(addrs, " ")),
			leaf("descr", m.descr("tier", t.Name)),
			leaf("detail", strings.Join(jails, "||")),
		))
	}
	al := m.root.child("aliases")
	if al == nil && len(fresh) == 0 {
		return nil
	}
	if al == nil {
		al = m.root.ensure("aliases", 0)
	}
	owned := m.owns("descr")
	for _, a := range al.elems("alias") {
		if !owned(a) && names[a.childValue("name")] {
			return fmt.Errorf("pfsense: alias %s already exists in config.xml and is not arbo's (its descr does not start with %q); rename it or remove it", a.childValue("name"), m.prefix)
		}
	}
	if ifs := m.root.child("interfaces"); ifs != nil {
		for _, k := range ifs.kids {
			if k.kind == kElem && names[k.childValue("descr")] {
				return fmt.Errorf("pfsense: interface %s is named %s, like an arbo alias; pfSense refuses an alias named like an interface", k.name, k.childValue("descr"))
			}
		}
	}
	al.replaceOwned(1, "alias", owned, fresh)
	return nil
}

func (m *merger) uplinks() []inventory.GatewayInterface {
	var out []inventory.GatewayInterface
	for _, gi := range m.g.Interfaces {
		if gi.Uplink() {
			out = append(out, gi)
		}
	}
	return out
}

func ipProto(a netip.Addr) string {
	if a.Is4() {
		return "inet"
	}
	return "inet6"
}

type forward struct {
	key   string
	gi    inventory.GatewayInterface
	f     inventory.Forward
	alias string
}

func (m *merger) forwards() []forward {
	if m.fwds != nil {
		return *m.fwds
	}
	out := []forward{}
	defer func() { m.fwds = &out }()
	for _, f := range m.g.Forwards {
		addrs, _ := m.tierAddrs(f.To)
		if len(addrs) == 0 {
			m.warnf("forward %s/%s to tier %s: the tier has no jails; no port forward written", f.Proto, f.Port, f.To)
			continue
		}
		for _, gi := range m.uplinks() {
			if !m.present[gi.Name] || m.disabled[gi.Name] {
				continue // warned in checkInterfaces
			}
			out = append(out, forward{
				key: fmt.Sprintf("%s:%s:%s", gi.Name, f.Proto, f.Port),
				gi:  gi, f: f, alias: ObjectName(m.c.Name, f.To),
			})
		}
	}
	return out
}

// nat writes a port forward per forward and uplink. Its target is the
// tier's host alias: pfSense accepts "a valid redirect target IP address or
// host alias" (firewall_nat.inc), and pf balances a redirection to a table
// round robin.
func (m *merger) nat() error {
	var fresh []el
	nat := m.root.child("nat")
	for _, fw := range m.forwards() {
		if nat != nil {
			if err := m.natOverlap(nat, fw); err != nil {
				return err
			}
		}
		fresh = append(fresh, elem("rule",
			elem("source", presence("any")),
			elem("destination", leaf("network", fw.gi.Name+"ip"), leaf("port", fw.f.Port.String())),
			leaf("ipprotocol", ipProto(fw.gi.Address)),
			leaf("protocol", fw.f.Proto),
			leaf("target", fw.alias),
			leaf("local-port", strconv.Itoa(fw.f.ToPort.Min)),
			leaf("interface", fw.gi.Name),
			leaf("descr", m.descr("fwd", fw.key)),
			leaf("associated-rule-id", AssociatedID(m.c.Name, fw.key)),
		))
	}
	if nat == nil && len(fresh) == 0 {
		return nil
	}
	if nat == nil {
		nat = m.root.ensure("nat", 0)
	}
	nat.replaceOwned(1, "rule", m.owns("descr"), fresh)
	return nil
}

// natOverlap refuses a forward whose port range overlaps a port forward
// that is not this cluster's (another cluster's, or the user's) on the same
// interface, destination and protocol: pfSense's own page refuses it ("The
// destination port range overlaps with an existing entry",
// pfsense-2.7.2 src/usr/local/pfSense/include/www/firewall_nat.inc:384-415),
// and pf would send the traffic to whichever rule comes first.
func (m *merger) natOverlap(nat *node, fw forward) error {
	owned := m.owns("descr")
	for _, r := range nat.elems("rule") {
		if owned(r) || r.child("disabled") != nil || r.childValue("interface") != fw.gi.Name {
			continue
		}
		if dst := r.child("destination"); dst == nil || dst.childValue("network") != fw.gi.Name+"ip" {
			continue
		}
		p := strings.ToLower(r.childValue("protocol"))
		if p != fw.f.Proto && p != "tcp/udp" {
			continue
		}
		lo, hi, ok := strings.Cut(r.child("destination").childValue("port"), "-")
		b, err1 := strconv.Atoi(lo)
		e, err2 := strconv.Atoi(hi)
		if !ok {
			e, err2 = b, err1
		}
		if err1 != nil || err2 != nil || fw.f.Port.Max < b || fw.f.Port.Min > e {
			continue
		}
		who := "a port forward of yours"
		if d := r.childValue("descr"); strings.HasPrefix(d, "arbo:") {
			who = "cluster " + strings.SplitN(d, ":", 3)[1] + "'s port forward"
		}
		return fmt.Errorf("pfsense: forward %s/%s to tier %s (topology line %d) overlaps %s %q (%s port %s on %s) in config.xml; pfSense refuses overlapping port forwards on one interface: change one of the ports",
			fw.f.Proto, fw.f.Port, fw.f.To, fw.f.Pos.Line, who, r.childValue("descr"), p, r.child("destination").childValue("port"), fw.gi.Name)
	}
	return nil
}

type rule struct {
	iface string
	e     el
}

func (m *merger) tracker(kind, key string, used map[string]bool) string {
	for salt := 0; ; salt++ {
		t := strconv.FormatUint(uint64(Tracker(m.c.Name, kind, key, salt)), 10)
		if !used[t] {
			used[t] = true
			return t
		}
	}
}

// mgmtInterfaces are the gateway interfaces SSH from prefix p arrives on:
// those whose subnet overlaps p, else the uplinks.
func (m *merger) mgmtInterfaces(p netip.Prefix) []inventory.GatewayInterface {
	var out []inventory.GatewayInterface
	for _, gi := range m.g.Interfaces {
		if gi.Prefix.IsValid() && gi.Prefix.Overlaps(p) {
			out = append(out, gi)
		}
	}
	if len(out) == 0 {
		out = m.uplinks()
	}
	return out
}

func (m *merger) rules(used map[string]bool) []rule {
	var out []rule
	port := m.c.MachineSSH(m.g.Name).Port
	if port == 0 {
		port = 22
	}
	for _, p := range m.c.ManagementPrefixes(m.g.Name) {
		for _, gi := range m.mgmtInterfaces(p) {
			if !m.present[gi.Name] {
				continue
			}
			key := fmt.Sprintf("%s:%s", gi.Name, p)
			out = append(out, rule{gi.Name, elem("rule",
				leaf("tracker", m.tracker("ssh", key, used)),
				leaf("type", "pass"),
				leaf("interface", gi.Name),
				leaf("ipprotocol", ipProto(p.Addr())),
				leaf("protocol", "tcp"),
				elem("source", leaf("address", p.String())),
				elem("destination", leaf("network", "(self)"), leaf("port", strconv.Itoa(port))),
				leaf("descr", m.descr("ssh", key)),
			)})
		}
	}
	for _, d := range m.dnsSources() {
		key := fmt.Sprintf("%s:%s", d.gi.Name, d.src)
		out = append(out, rule{d.gi.Name, elem("rule",
			leaf("tracker", m.tracker("dns", key, used)),
			leaf("type", "pass"),
			leaf("interface", d.gi.Name),
			leaf("ipprotocol", ipProto(d.src.Addr())),
			leaf("protocol", "tcp/udp"),
			elem("source", leaf("address", d.src.String())),
			elem("destination", leaf("network", "(self)"), leaf("port", "53")),
			leaf("descr", m.descr("dns", key)),
		)})
	}
	for _, fw := range m.forwards() {
		toPort := fw.f.ToPort.String()
		if !fw.f.ToPort.Single() || !fw.f.Port.Single() {
			// pfSense maps a range onto a range of the same length starting at local-port.
			toPort = fmt.Sprintf("%d-%d", fw.f.ToPort.Min, fw.f.ToPort.Min+fw.f.Port.Max-fw.f.Port.Min)
		}
		out = append(out, rule{fw.gi.Name, elem("rule",
			elem("source", presence("any")),
			leaf("interface", fw.gi.Name),
			leaf("ipprotocol", ipProto(fw.gi.Address)),
			leaf("protocol", fw.f.Proto),
			elem("destination", leaf("address", fw.alias), leaf("port", toPort)),
			leaf("descr", m.descr("fwd", fw.key)),
			leaf("associated-rule-id", AssociatedID(m.c.Name, fw.key)),
			leaf("tracker", m.tracker("fwd", fw.key, used)),
			leaf("type", "pass"),
		)})
	}
	return out
}

type dnsSource struct {
	gi  inventory.GatewayInterface
	src netip.Prefix
}

// dnsSources are the jail networks whose queries reach the gateway's DNS
// Resolver, each with the interface they arrive by, when gateway.dns is
// set. Host-local jail addresses are routed through their host (the static
// routes below), not NATed, so queries come from the jail network; the
// rules pfSense's factory config has on LAN pass only the LAN subnet
// ("Default allow LAN to any rule", source lan), and every interface's
// rules end in pfSense's default deny (filter.inc:3782). One pass rule per
// (interface, jail network) to (self) port 53, tcp and udp (issue 10
// item 9).
func (m *merger) dnsSources() []dnsSource {
	if !m.g.DNS {
		return nil
	}
	var out []dnsSource
	seen := map[string]bool{}
	for _, r := range m.c.Routes(m.g.Name) {
		n := m.c.NetworkOf(r.Dest.Addr())
		if n == nil {
			continue
		}
		for _, gi := range m.g.Interfaces {
			if !gi.Prefix.IsValid() || !gi.Prefix.Contains(r.Via) {
				continue
			}
			if k := gi.Name + " " + n.CIDR.String(); m.present[gi.Name] && !m.disabled[gi.Name] && !seen[k] {
				seen[k] = true
				out = append(out, dnsSource{gi, n.CIDR})
			}
			break
		}
	}
	return out
}

func floating(r *node) bool { return r.child("floating") != nil }

// filter puts arbo's rules at the top of each interface's rules (the
// management rule first, ARBO010), after the floating rules, and moves the
// GUI separators of those interfaces so they stay above the same rules.
func (m *merger) filter() {
	f := m.root.child("filter")
	owned := m.owns("descr")
	used := map[string]bool{}
	if f != nil {
		for _, r := range f.elems("rule") {
			if !owned(r) {
				used[r.childValue("tracker")] = true
			}
		}
	}
	fresh := m.rules(used)
	if f == nil && len(fresh) == 0 {
		return
	}
	if f == nil {
		f = m.root.ensure("filter", 0)
	}
	oldOrder := ruleOrder(f)
	for _, r := range f.elems("rule") {
		if owned(r) {
			f.remove(r)
		}
	}
	var ifaces []string
	byIf := map[string][]el{}
	for _, r := range fresh {
		if _, ok := byIf[r.iface]; !ok {
			ifaces = append(ifaces, r.iface)
		}
		byIf[r.iface] = append(byIf[r.iface], r.e)
	}
	for _, iface := range ifaces {
		at := -1
		rules := f.elems("rule")
		for _, r := range rules {
			if !floating(r) && r.childValue("interface") == iface {
				at = f.before(r)
				break
			}
		}
		if at < 0 {
			if len(rules) > 0 {
				at = f.index(rules[len(rules)-1]) + 1
			} else {
				at = f.endIndex(1)
			}
		}
		for _, e := range byIf[iface] {
			at = f.insert(at, e.node(2), 1)
		}
	}
	m.shiftSeparators(f, oldOrder, ruleOrder(f), owned)
}

// ruleOrder lists each interface's non-floating rules in order: what the
// separators' "fr<N>" rows count.
func ruleOrder(f *node) map[string][]*node {
	out := map[string][]*node{}
	for _, r := range f.elems("rule") {
		if !floating(r) {
			i := r.childValue("interface")
			out[i] = append(out[i], r)
		}
	}
	return out
}

func (m *merger) shiftSeparators(f *node, oldOrder, newOrder map[string][]*node, owned func(*node) bool) {
	sep := f.child("separator")
	if sep == nil {
		return
	}
	for _, ifn := range sep.kids {
		if ifn.kind != kElem {
			continue
		}
		oldRules, newRules := oldOrder[ifn.name], newOrder[ifn.name]
		for _, s := range ifn.kids {
			if s.kind != kElem {
				continue
			}
			row := s.childValue("row")
			k, err := strconv.Atoi(strings.TrimPrefix(row, "fr"))
			if !strings.HasPrefix(row, "fr") || err != nil || k < 0 {
				continue
			}
			// The separator sits above the first surviving user rule at or
			// after its old place; with none, at the end.
			n := len(newRules)
			for i := k; i < len(oldRules); i++ {
				if !owned(oldRules[i]) {
					n = slices.Index(newRules, oldRules[i])
					break
				}
			}
			if n >= 0 && n != k {
				s.setLeaf("row", "fr"+strconv.Itoa(n), 4)
			}
		}
	}
}

// routes writes a gateway per host that holds host-local jail addresses
// (its address on the network it shares with the pfSense box) and a static
// route per such address through it.
func (m *merger) routes() error {
	var gws, routes []el
	gwNames := map[string]bool{}
	dests := map[string]bool{}
	done := map[string]bool{}
	for _, r := range m.c.Routes(m.g.Name) {
		var gi *inventory.GatewayInterface
		for i := range m.g.Interfaces {
			if p := m.g.Interfaces[i].Prefix; p.IsValid() && p.Contains(r.Via) {
				gi = &m.g.Interfaces[i]
				break
			}
		}
		if gi == nil || !m.present[gi.Name] {
			if !done[r.Host] {
				m.warnf("host %s: no assigned gateway interface reaches %s; routes to its jails are not rendered", r.Host, r.Via)
				done[r.Host] = true
			}
			continue
		}
		name := ObjectName(m.c.Name, r.Host)
		if !done[r.Host] {
			done[r.Host] = true
			gwNames[name] = true
			gws = append(gws, elem("gateway_item",
				leaf("interface", gi.Name),
				leaf("gateway", r.Via.String()),
				leaf("name", name),
				leaf("weight", "1"),
				leaf("ipprotocol", ipProto(r.Via)),
				leaf("descr", m.descr("gw", r.Host)),
				// Monitoring a host with dpinger only adds alarms: a host
				// that is down takes its jails with it anyway.
				presence("monitor_disable"),
				// Never the default route. With the default gateway on
				// "automatic" (defaultgw4 empty, as in pfSense's factory
				// config), fixup_default_gateway picks the first gateway
				// that is unmonitored or up (gwlb.inc:1145-1160), which an
				// arbo gateway always is; only force_down excludes it
				// (gwlb.inc:1150). force_down does not touch its static
				// routes: system_staticroutes_configure (system.inc:1410-
				// 1480) never reads it. It only reports the gateway as
				// "down" (gwlb.inc:418-420) and drops route-to from GW
				// macros (filter.inc:1042), which arbo's rules do not use.
				presence("force_down"),
			))
		}
		dests[r.Dest.String()] = true
		routes = append(routes, elem("route",
			leaf("network", r.Dest.String()),
			leaf("gateway", name),
			leaf("descr", m.descr("route", r.Dest.String()+":"+r.Host)),
		))
	}
	owned := m.owns("descr")
	if g := m.root.child("gateways"); g != nil || len(gws) > 0 {
		g = m.root.ensure("gateways", 0)
		for _, it := range g.elems("gateway_item") {
			if !owned(it) && gwNames[it.childValue("name")] {
				return fmt.Errorf("pfsense: gateway %s already exists in config.xml and is not arbo's; rename it or remove it", it.childValue("name"))
			}
		}
		g.replaceOwned(1, "gateway_item", owned, gws)
	}
	if s := m.root.child("staticroutes"); s != nil || len(routes) > 0 {
		s = m.root.ensure("staticroutes", 0)
		var keep []el
		taken := map[string]bool{}
		for _, r := range s.elems("route") {
			if !owned(r) {
				taken[r.childValue("network")] = true
			}
		}
		for _, r := range routes {
			if net := r.kids[0].val; taken[net] {
				m.warnf("static route to %s already exists in config.xml and is not arbo's; arbo's route is not written", net)
				continue
			}
			keep = append(keep, r)
		}
		s.replaceOwned(1, "route", owned, keep)
	}
	return nil
}

// jailNetworks are the declared networks that hold jail addresses, in
// declaration order: the Resolver must answer them.
func (m *merger) jailNetworks() []*inventory.Network {
	held := map[string]bool{}
	for _, j := range m.c.Jails() {
		for _, a := range j.IPs {
			if n := m.c.NetworkOf(a); n != nil {
				held[n.Name] = true
			}
		}
	}
	var out []*inventory.Network
	for _, n := range m.c.Networks {
		if held[n.Name] {
			out = append(out, n)
		}
	}
	return out
}

func (m *merger) dns() error {
	ub := m.root.child("unbound")
	on := m.g.DNS
	if on && len(m.o.DNS.Overrides) == 0 && len(m.o.DNS.LocalData) == 0 {
		m.warnf("gateway.dns is set but no DNS data was given to the pfSense merge; no host overrides written")
	}
	if !on && ub == nil {
		return nil
	}
	if ub == nil {
		ub = m.root.ensure("unbound", 0)
	}
	if on && ub.child("enable") == nil {
		m.warnf("the DNS Resolver is disabled in config.xml (no <unbound><enable>); arbo's host overrides take effect once it is enabled")
	}
	owned := m.owns("descr")

	// Host overrides, kept sorted by host as the GUI keeps them.
	var fresh []el
	taken := map[string]bool{}
	for _, h := range ub.elems("hosts") {
		if !owned(h) {
			taken[strings.ToLower(h.childValue("host")+"."+h.childValue("domain"))] = true
		}
	}
	if on {
		ovs := slices.Clone(m.o.DNS.Overrides)
		slices.SortStableFunc(ovs, func(a, b HostOverride) int {
			return strings.Compare(strings.ToLower(a.Host), strings.ToLower(b.Host))
		})
		for _, h := range ovs {
			fq := h.Host + "." + h.Domain
			if taken[strings.ToLower(fq)] {
				m.warnf("Resolver host override %s already exists in config.xml and is not arbo's; left as it is, arbo's is not written", fq)
				continue
			}
			// The prefix goes on once: dns.Gateway already writes
			// "arbo:<cluster>:jail:<name>" (issue 10 item 11).
			d := strings.TrimPrefix(h.Descr, m.prefix)
			if d == "" {
				d = "host:" + fq
			}
			fresh = append(fresh, elem("hosts",
				leaf("host", h.Host), leaf("domain", h.Domain), leaf("ip", h.IP),
				leaf("descr", m.prefix+d), leaf("aliases", "")))
		}
	}
	first := -1
	for _, h := range ub.elems("hosts") {
		if owned(h) {
			if i := ub.remove(h); first < 0 || i < first {
				first = i
			}
		}
	}
	// fresh is sorted, so one cursor over the user's overrides finds each
	// place: before the first user entry whose host sorts after it, else
	// after the last entry (a rescan per override was quadratic: 30% of a
	// 2,000-jail render).
	others := ub.elems("hosts")
	keys := make([]string, len(others))
	for i, h := range others {
		keys[i] = strings.ToLower(h.childValue("host"))
	}
	var tail *node
	if len(others) > 0 {
		tail = others[len(others)-1]
	}
	i := 0
	for _, e := range fresh {
		name := strings.ToLower(e.kids[0].val)
		for i < len(keys) && keys[i] <= name {
			i++
		}
		var at int
		switch {
		case i < len(others):
			at = ub.before(others[i])
		case tail != nil:
			at = ub.index(tail) + 1
		case first >= 0:
			at = first // where arbo's overrides were last time
		default:
			at = ub.endIndex(1)
		}
		n := e.node(2)
		ub.insert(at, n, 1)
		if i == len(others) {
			tail = n
		}
	}

	// Access list for the jail networks: pfSense only lets in the subnets
	// of its own interfaces by itself, and host-local jail networks are not.
	aclOwned := m.owns("description")
	var acls []el
	if on {
		id, maxID := "", -1
		for _, a := range ub.elems("acls") {
			v := a.childValue("aclid")
			if aclOwned(a) && id == "" {
				id = v
			} else if n, err := strconv.Atoi(v); err == nil && n > maxID {
				maxID = n
			}
		}
		if id == "" {
			id = strconv.Itoa(maxID + 1)
		}
		var rows []el
		for _, n := range m.jailNetworks() {
			rows = append(rows, elem("row",
				leaf("acl_network", n.CIDR.Addr().String()),
				leaf("mask", strconv.Itoa(n.CIDR.Bits())),
				leaf("description", n.Name)))
		}
		if len(rows) > 0 {
			acls = append(acls, elem("acls", append([]el{
				leaf("aclid", id),
				leaf("aclname", ObjectName(m.c.Name, "jails")),
				leaf("aclaction", "allow"),
				leaf("description", m.descr("acl", "jails")),
			}, rows...)...))
		}
	}
	ub.replaceOwned(1, "acls", aclOwned, acls)

	var lines []string
	if on {
		lines = m.o.DNS.LocalData
	}
	return m.customOptions(ub, lines)
}

// customOptions keeps arbo's local-data between marker lines in the
// Resolver's custom options, which pfSense stores base64-encoded
// (services_unbound.php). The user's own lines stay as they are.
func (m *merger) customOptions(ub *node, lines []string) error {
	begin, end := "# arbo:"+m.c.Name+" begin", "# arbo:"+m.c.Name+" end"
	co := ub.child("custom_options")
	cur := ""
	if co != nil {
		raw := strings.Join(strings.Fields(co.value()), "")
		b, err := base64.StdEncoding.DecodeString(raw)
		if err != nil {
			return fmt.Errorf("pfsense: <unbound><custom_options> is not base64 as pfSense writes it: %w", err)
		}
		cur = string(b)
	}
	var block []string
	if len(lines) > 0 {
		block = append(block, begin, "server:")
		for _, l := range lines {
			l = strings.TrimSpace(l)
			if strings.ContainsAny(l, "\r\n") || l == begin || l == end {
				return fmt.Errorf("pfsense: local-data line %q would break arbo's block in the custom options", l)
			}
			block = append(block, l)
		}
		block = append(block, end)
	}
	all := strings.Split(cur, "\n")
	b, e := -1, -1
	for i, l := range all {
		switch strings.TrimSpace(l) {
		case begin:
			if b < 0 {
				b = i
			}
		case end:
			if b >= 0 && e < 0 {
				e = i
			}
		}
	}
	if b >= 0 && e < 0 {
		return fmt.Errorf("pfsense: the Resolver's custom options have %q without %q; fix them by hand", begin, end)
	}
	var next string
	switch {
	case b >= 0:
		rest := append(append(slices.Clone(all[:b]), block...), all[e+1:]...)
		next = strings.Join(rest, "\n")
	case len(block) == 0:
		next = cur
	case cur == "":
		next = strings.Join(block, "\n") + "\n"
	default:
		sep := "\n"
		if strings.HasSuffix(cur, "\n") {
			sep = ""
		}
		next = cur + sep + strings.Join(block, "\n") + "\n"
	}
	if next == cur {
		return nil
	}
	enc := ""
	if next != "" {
		enc = base64.StdEncoding.EncodeToString([]byte(next))
	}
	ub.setLeaf("custom_options", enc, 1)
	return nil
}

// revision records the change as pfSense's write_config() does.
func (m *merger) revision() {
	r := elem("revision",
		leaf("time", strconv.FormatInt(m.o.Revision.Unix(), 10)),
		leaf("description", "arbo: cluster "+m.c.Name),
		leaf("username", "arbo"),
	).node(1)
	for i, k := range m.root.kids {
		if k.kind == kElem && k.name == "revision" {
			m.root.kids[i] = r
			return
		}
	}
	m.root.insert(m.root.endIndex(0), r, 0)
}
