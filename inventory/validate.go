package inventory

import (
	"fmt"
	"net/netip"
	"path"
	"path/filepath"
	"regexp"
	"sort"
	"strings"
)

// Patterns of TOPOLOGY.md "Names" and of every other string that reaches a
// shell, a configuration file or a DNS zone. Each comes with the words that
// tell the user what is allowed.
type pattern struct {
	re   *regexp.Regexp
	says string
}

func pat(re, says string) pattern { return pattern{regexp.MustCompile(re), says} }

var (
	clusterName  = pat(`^[a-z][a-z0-9-]{0,15}$`, "a lower-case letter, then up to 15 of a-z, 0-9, -")
	machineName  = pat(`^[a-z][a-z0-9-]{0,62}$`, "a lower-case letter, then up to 62 of a-z, 0-9, -")
	shortName    = pat(`^[a-z][a-z0-9-]{0,31}$`, "a lower-case letter, then up to 31 of a-z, 0-9, -")
	deviceName   = pat(`^[a-z][a-z0-9_.]{0,13}[0-9]$`, "a FreeBSD interface name such as em0, igb1, vlan20, lagg0 (at most 15 characters)")
	packageName  = pat(`^[A-Za-z0-9][A-Za-z0-9_.+@-]{0,127}$`, "a pkg name such as erlang-runtime27 (letters, digits, _ . + @ -)")
	rcName       = pat(`^[A-Za-z_][A-Za-z0-9_]{0,127}$`, "a shell variable name: letters, digits, _, not starting with a digit")
	datasetName  = pat(`^[A-Za-z0-9][A-Za-z0-9_.:-]*(/[A-Za-z0-9][A-Za-z0-9_.:-]*)*$`, "a ZFS dataset such as zroot/usr/jails (components of letters, digits, _ . : -, separated by /)")
	quotaValue   = pat(`^([0-9]+(\.[0-9]+)?[KMGTPE]?|none)$`, "a ZFS size such as 10G, 512M or none")
	unixUser     = pat(`^[a-z_][a-z0-9_.-]{0,31}$`, "a user name: a lower-case letter or _, then up to 31 of a-z, 0-9, _ . -")
	erlangBase   = pat(`^[a-z][a-z0-9_-]{0,62}$`, "a lower-case letter, then up to 62 of a-z, 0-9, _, -")
	rcdService   = pat(`^[a-z][a-z0-9_-]{0,62}$`, "an rc.d script name: a lower-case letter, then a-z, 0-9, _, -")
	releaseName  = pat(`^[0-9]{1,3}\.[0-9]{1,2}-(RELEASE|STABLE|CURRENT|BETA[0-9]{0,2}|RC[0-9]{0,2}|ALPHA[0-9]{0,2})$`, "a FreeBSD release such as 14.2-RELEASE")
	gwIfName     = pat(`^(wan|lan|opt[1-9][0-9]{0,2})$`, "pfSense's key: wan, lan or optN")
	dnsLabel     = regexp.MustCompile(`^[a-z0-9_]([a-z0-9_-]{0,61}[a-z0-9_])?$`)
	sshHost      = regexp.MustCompile(`^[A-Za-z0-9]([A-Za-z0-9._-]{0,251}[A-Za-z0-9])?$`)
	acceptableID = regexp.MustCompile(`^ARBO0(0[3-9]|1[0-6])$`)
)

var ezjailReserved = map[string]bool{"basejail": true, "newjail": true, "fulljail": true,
	"flavours": true, "ezjailtemp": true, "ezjail_archives": true}

func (l *loader) at(path string, fallback Pos, format string, args ...any) {
	p, ok := l.pos[path]
	if !ok {
		p = fallback
	}
	l.add(p, path, format, args...)
}

func (l *loader) match(path string, fallback Pos, what, s string, p pattern) bool {
	if p.re.MatchString(s) {
		return true
	}
	l.at(path, fallback, "%s %q is not allowed: expected %s", what, s, p.says)
	return false
}

// plain refuses characters that would end a line or a quoted string in a
// file arbo writes.
func (l *loader) plain(path string, fallback Pos, what, s string) {
	for _, r := range s {
		if r < 0x20 || r == 0x7f {
			l.at(path, fallback, "%s contains a control character (newline, tab, …)", what)
			return
		}
	}
}

// zone names: machines, jails, tiers and records share one namespace.
type zoneName struct {
	what, path string
}

type validator struct {
	*loader
	c    *Cluster
	zone map[string]zoneName
	// ifaceAddrs holds every host and gateway interface address.
	ifaceAddrs map[netip.Addr]string
	netTiers   map[string][]string
	// badNets is set when a network did not decode: address checks against
	// networks would then only repeat that problem in other words.
	badNets bool
}

// reported tells whether decoding already found a problem at path.
func (l *loader) reported(path string) bool {
	for _, p := range l.probs {
		if p.Path == path {
			return true
		}
	}
	return false
}

func (l *loader) validate(c *Cluster) {
	v := &validator{loader: l, c: c, zone: map[string]zoneName{},
		ifaceAddrs: map[netip.Addr]string{}, netTiers: map[string][]string{}}
	v.top()
	v.networks()
	v.tiers()
	v.gateway()
	v.hosts()
	v.erlang()
	v.dns()
	v.flavours()
	v.accept()
	v.management()
	v.routes()
	v.routeFamilies()
	v.fqdns()
}

func (v *validator) claim(name, what, path string, p Pos) {
	if name == "" {
		return
	}
	if name == "ns" {
		v.at(path, p, "the name \"ns\" is reserved: ns.<domain> is the zone's name server")
		return
	}
	if prev, ok := v.zone[name]; ok {
		v.at(path, p, "name %q is already the name of %s %s; machines, jails, tiers and dns records share one namespace", name, prev.what, prev.path)
		return
	}
	v.zone[name] = zoneName{what, path}
}

func (v *validator) name(path string, p Pos, what, s string, pt pattern) bool {
	if s == "" {
		return false
	}
	if !v.match(path, p, what, s, pt) {
		return false
	}
	if strings.HasSuffix(s, "-") {
		v.at(path, p, "%s %q ends with -, which a DNS name cannot", what, s)
		return false
	}
	return true
}

func (v *validator) top() {
	c := v.c
	if c.Name != "" {
		v.name("cluster", Pos{}, "cluster name", c.Name, clusterName)
	}
	if c.Domain != "" {
		v.domain("domain", c.Domain)
	}
	if c.FreeBSDRelease != "" {
		v.match("freebsd_release", Pos{}, "release", c.FreeBSDRelease, releaseName)
	}
	v.ssh("ssh", c.SSH)
	if c.SSH.Address != "" {
		v.at("ssh.address", Pos{}, "address is per machine (gateway.ssh, hosts[].ssh)")
	}
	v.rcConf("rc_conf", c.RCConf)
}

func (v *validator) domain(path, d string) {
	if len(d) > 253 {
		v.at(path, Pos{}, "domain is longer than 253 characters")
		return
	}
	labels := strings.Split(d, ".")
	for _, lab := range labels {
		if lab == "" || !dnsLabel.MatchString(lab) || strings.Contains(lab, "_") {
			v.at(path, Pos{}, "domain %q is not a valid DNS name: labels of a-z, 0-9 and - (not at either end), separated by dots, e.g. arboreus.internal", d)
			return
		}
	}
	if labels[len(labels)-1] == "local" {
		v.at(path, Pos{}, "domain %q: .local belongs to mDNS; use .internal", d)
		return
	}
	if len(labels) < 2 {
		v.at(path, Pos{}, "domain %q: a zone of one label would shadow a top-level domain; use e.g. %s.internal", d, d)
	}
}

func (v *validator) ssh(path string, s SSH) {
	if s.Address != "" {
		if _, err := netip.ParseAddr(s.Address); err != nil && !sshHost.MatchString(s.Address) {
			v.at(path+".address", Pos{}, "address %q is neither an IP address nor a host name", s.Address)
		}
	}
	if s.User != "" {
		v.match(path+".user", Pos{}, "ssh user", s.User, unixUser)
	}
	if s.Jump != "" && v.c.Host(s.Jump) == nil && !v.c.IsGateway(s.Jump) {
		v.at(path+".jump", Pos{}, "ARBO001: jump %q is not a machine of this cluster (the gateway or a host)", s.Jump)
	}
	v.plain(path+".identity_file", Pos{}, "identity_file", s.IdentityFile)
	v.plain(path+".known_hosts", Pos{}, "known_hosts", s.KnownHosts)
}

func (v *validator) rcConf(path string, kvs []KV) {
	for _, kv := range kvs {
		p := path + "." + kv.Name
		if _, ok := v.pos[p]; !ok {
			p = path
		}
		v.match(p, kv.Pos, "rc.conf name", kv.Name, rcName)
		if why, owned := RCConfOwned(kv.Name); owned {
			v.at(p, kv.Pos, "%s is arbo's (%s); remove it from rc_conf", kv.Name, why)
		}
		if i := strings.IndexAny(kv.Value, "\n\r\"\\$`"); i >= 0 || strings.ContainsRune(kv.Value, 0) {
			v.at(p, kv.Pos, "rc.conf value %q is not allowed: no newline, \", \\, $ or backtick (arbo writes it in double quotes)", kv.Value)
		}
	}
}

func (v *validator) networks() {
	var valid []*Network
	for _, n := range v.c.Networks {
		p := "networks." + n.Name
		v.match(p, n.Pos, "network name", n.Name, shortName)
		if n.CIDR.IsValid() {
			valid = append(valid, n)
		} else {
			v.badNets = true
		}
	}
	// Overlaps: sorted by address, a prefix overlaps an earlier one exactly
	// when one of the prefixes still "open" on the stack contains it.
	sort.SliceStable(valid, func(i, j int) bool {
		a, b := valid[i].CIDR, valid[j].CIDR
		if c := a.Addr().Compare(b.Addr()); c != 0 {
			return c < 0
		}
		return a.Bits() < b.Bits()
	})
	var stack []*Network
	for _, n := range valid {
		for len(stack) > 0 && !stack[len(stack)-1].CIDR.Overlaps(n.CIDR) {
			stack = stack[:len(stack)-1]
		}
		if len(stack) > 0 {
			o := stack[len(stack)-1]
			first, second := o, n
			if less(n.Pos, o.Pos) {
				first, second = n, o
			}
			v.at("networks."+second.Name+".cidr", second.Pos, "network %s (%s) overlaps network %s (%s)", second.Name, second.CIDR, first.Name, first.CIDR)
		}
		stack = append(stack, n)
	}
}

func less(a, b Pos) bool { return a.Line < b.Line || a.Line == b.Line && a.Col < b.Col }

// inside checks that addr lies in prefix and is neither its network nor
// (IPv4) its broadcast address.
func (v *validator) inside(path string, p Pos, addr netip.Addr, pf netip.Prefix, netName string) bool {
	if !addr.IsValid() || !pf.IsValid() {
		return false
	}
	if !pf.Contains(addr) {
		v.at(path, p, "address %s is not inside network %s (%s)", addr, netName, pf)
		return false
	}
	if pf.Bits() >= addr.BitLen()-1 {
		return true // /31, /32, /127, /128: every address is usable
	}
	if addr == pf.Addr() {
		v.at(path, p, "address %s is the network address of %s (%s)", addr, netName, pf)
		return false
	}
	if addr.Is4() && addr == broadcast(pf) {
		v.at(path, p, "address %s is the broadcast address of %s (%s)", addr, netName, pf)
		return false
	}
	return true
}

func broadcast(p netip.Prefix) netip.Addr {
	b := p.Addr().As4()
	host := uint32(1)<<(32-p.Bits()) - 1
	x := uint32(b[0])<<24 | uint32(b[1])<<16 | uint32(b[2])<<8 | uint32(b[3])
	x |= host
	return netip.AddrFrom4([4]byte{byte(x >> 24), byte(x >> 16), byte(x >> 8), byte(x)})
}

var reservedTiers = map[string]bool{"gateway": true, "cluster": true, "ns": true}

func (v *validator) tiers() {
	c := v.c
	for _, t := range c.Tiers {
		p := "tiers." + t.Name
		if v.name(p, t.Pos, "tier name", t.Name, shortName) {
			if reservedTiers[t.Name] {
				v.at(p, t.Pos, "%q is reserved and not a tier name (gateway, cluster and ns are)", t.Name)
			} else {
				v.claim(t.Name, "tier", p, t.Pos)
			}
		}
		switch t.Role {
		case RoleApp, RoleData, RoleInfra, "":
		default:
			v.at(p+".role", t.Pos, "role %q: expected app, data or infra", t.Role)
		}
		if t.Network != "" {
			if c.Network(t.Network) == nil {
				v.at(p+".network", t.Pos, "ARBO001: network %q is not declared under networks", t.Network)
			} else {
				v.netTiers[t.Network] = append(v.netTiers[t.Network], t.Name)
			}
		}
		if t.Flavour != "" && c.Flavour(t.Flavour) == nil {
			v.at(p+".flavour", t.Pos, "ARBO001: flavour %q is not declared under flavours", t.Flavour)
		}
		names := map[string]bool{}
		for i, s := range t.Services {
			sp := idx(p+".services", i)
			if s.Name != "" {
				v.match(sp+".name", s.Pos, "service name", s.Name, shortName)
				if names[s.Name] {
					v.at(sp+".name", s.Pos, "service %q is already declared in tier %s", s.Name, t.Name)
				}
				names[s.Name] = true
			}
			if s.Proto != "" && s.Proto != "tcp" && s.Proto != "udp" {
				v.at(sp+".proto", s.Pos, "proto %q: expected tcp or udp", s.Proto)
			}
			if s.Erlang && c.Erlang == nil {
				v.at(sp+".erlang", s.Pos, "erlang: true needs the erlang section (its dist_ports)")
			}
			for k, src := range s.From {
				if src.Kind == SourceTier && c.Tier(src.Name) == nil {
					v.at(idx(sp+".from", k), src.Pos, "ARBO001: %q is not a tier; from lists tier names, gateway, or CIDRs", src.Name)
				}
			}
		}
		for i, r := range t.Egress.Rules {
			rp := idx(p+".egress", i)
			if r.Proto != "" && r.Proto != "tcp" && r.Proto != "udp" {
				v.at(rp+".proto", r.Pos, "proto %q: expected tcp or udp", r.Proto)
			}
		}
	}
}

func (v *validator) iface(path string, p Pos, a netip.Addr) {
	if !a.IsValid() {
		return
	}
	if prev, ok := v.ifaceAddrs[a]; ok {
		v.at(path, p, "ARBO002: address %s is already held by %s", a, prev)
		return
	}
	v.ifaceAddrs[a] = path
}

func (v *validator) gateway() {
	c := v.c
	g := c.Gateway
	if g == nil {
		return
	}
	if v.name("gateway.name", g.Pos, "gateway name", g.Name, machineName) {
		if ezjailReserved[g.Name] {
			v.at("gateway.name", g.Pos, "%q is reserved by ezjail", g.Name)
		}
		v.claim(g.Name, "the gateway", "gateway.name", g.Pos)
	}
	if g.Kind != "" && g.Kind != "pfsense" {
		v.at("gateway.kind", g.Pos, "kind %q: pfsense is the only kind", g.Kind)
	}
	v.ssh("gateway.ssh", g.SSH)
	names := map[string]bool{}
	devices := map[string]bool{}
	for i, gi := range g.Interfaces {
		p := idx("gateway.interfaces", i)
		if gi.Name != "" && v.match(p+".name", gi.Pos, "interface name", gi.Name, gwIfName) {
			if names[gi.Name] {
				v.at(p+".name", gi.Pos, "interface %s is already declared", gi.Name)
			}
			names[gi.Name] = true
		}
		if gi.Device != "" && v.match(p+".device", gi.Pos, "device", gi.Device, deviceName) {
			if devices[gi.Device] {
				v.at(p+".device", gi.Pos, "device %s is already declared", gi.Device)
			}
			devices[gi.Device] = true
		}
		if gi.Uplink() {
			if gi.Network != "" {
				v.at(p+".network", gi.Pos, "an uplink (with gateway:) is on no declared network; drop network: or gateway:")
			}
			if !v.gwPrefix[i] {
				v.at(p+".address", gi.Pos, "an uplink's address is written address/prefix, e.g. 203.0.113.10/24")
			} else if gi.Prefix.Bits() == 0 {
				v.at(p+".address", gi.Pos, "an uplink's subnet cannot be /0 (every address of the internet would be on the link, and the gateway's rules would treat it as local): write the uplink's own prefix, e.g. 203.0.113.10/24")
			} else if gi.Address.IsValid() && gi.Prefix.Contains(gi.Address) {
				v.inside(p+".address", gi.Pos, gi.Address, gi.Prefix, "its uplink")
				if !gi.Prefix.Contains(gi.Gateway) {
					v.at(p+".gateway", gi.Pos, "gateway %s is not inside the uplink's subnet %s", gi.Gateway, gi.Prefix)
				} else if gi.Gateway == gi.Address {
					v.at(p+".gateway", gi.Pos, "gateway %s is the interface's own address", gi.Gateway)
				}
			}
			v.iface(p+".address", gi.Pos, gi.Address)
			continue
		}
		if gi.Failover {
			v.at(p+".failover", gi.Pos, "failover marks an uplink; this interface has no gateway:")
		}
		if gi.Network == "" {
			v.at(p, gi.Pos, "missing key \"network\" (an interface that is not an uplink, i.e. has no gateway:, is on a declared network)")
			continue
		}
		n := c.Network(gi.Network)
		if n == nil {
			v.at(p+".network", gi.Pos, "ARBO001: network %q is not declared under networks", gi.Network)
			continue
		}
		if v.gwPrefix[i] {
			v.at(p+".address", gi.Pos, "write the address alone: on a declared network the prefix is the network's (%s)", n.CIDR)
			continue
		}
		v.inside(p+".address", gi.Pos, gi.Address, n.CIDR, n.Name)
		v.iface(p+".address", gi.Pos, gi.Address)
	}
	for i, f := range g.Forwards {
		p := idx("gateway.forwards", i)
		if f.Proto != "" && f.Proto != "tcp" && f.Proto != "udp" {
			v.at(p+".proto", f.Pos, "proto %q: expected tcp or udp", f.Proto)
		}
		if f.To != "" && c.Tier(f.To) == nil {
			v.at(p+".to", f.Pos, "ARBO001: %q is not a tier", f.To)
		}
		if f.Port.Min > 0 && f.ToPort.Min > 0 && f.Port.Max-f.Port.Min != f.ToPort.Max-f.ToPort.Min && !f.ToPort.Single() {
			v.at(p+".to_port", f.Pos, "to_port %s and port %s differ in length", f.ToPort, f.Port)
		}
		v.forwardTarget(p, f)
	}
}

// forwardTarget refuses a forward whose to_port is no port of a service of
// its tier: the host firewall passes only services, so the public traffic
// would be dropped without a word.
func (v *validator) forwardTarget(p string, f Forward) {
	t := v.c.Tier(f.To)
	if t == nil || f.ToPort.Min < 1 || f.ToPort.Max > 65535 || (f.Proto != "tcp" && f.Proto != "udp") {
		return
	}
	path := p + ".to_port"
	if _, ok := v.pos[path]; !ok {
		path = p + ".port" // to_port defaults to port
	}
	var offered []string
	for _, s := range t.Services {
		if !s.Erlang && s.Ports.Min > 0 {
			offered = append(offered, fmt.Sprintf("%s %s %s", s.Name, s.Proto, s.Ports))
		}
	}
	for port := f.ToPort.Min; port <= f.ToPort.Max; port++ {
		var served *Service
		for i, s := range t.Services {
			if !s.Erlang && s.Proto == f.Proto && s.Ports.Contains(port) {
				served = &t.Services[i]
				if fromOutside(v.c, s) {
					break
				}
			}
		}
		if served != nil && !fromOutside(v.c, *served) {
			v.at(path, f.Pos, "forward to tier %s: %s %d is service %s, whose from does not list gateway: its jails' firewall would drop this public traffic; add gateway to its from",
				f.To, f.Proto, port, served.Name)
			return
		}
		if served != nil {
			continue
		}
		has := "it has no service with a port"
		if len(offered) > 0 {
			has = "its services: " + strings.Join(offered, ", ")
		}
		v.at(path, f.Pos, "forward to tier %s: %s %d is no port of a service of tier %s (%s); its jails' firewall would drop this public traffic: add a service with from: [gateway], or forward to_port to one of its ports",
			f.To, f.Proto, port, f.To, has)
		return
	}
}

// fromOutside reports whether a service takes clients from outside the
// cluster: `gateway`, or a CIDR that is not inside the cluster's networks.
func fromOutside(c *Cluster, s Service) bool {
	for _, f := range s.From {
		if f.Kind == SourceGateway || (f.Kind == SourceCIDR && f.CIDR.IsValid() && !c.InsideCluster(f.CIDR)) {
			return true
		}
	}
	return false
}

func (v *validator) hosts() {
	c := v.c
	if len(c.Hosts) == 0 && v.pos["hosts"] != (Pos{}) {
		v.at("hosts", Pos{}, "a cluster needs at least one host")
	}
	jailAddrs := map[netip.Addr]string{}
	// Host interfaces first: a jail address equal to any interface address
	// is wrong wherever the interface is declared.
	for _, h := range c.Hosts {
		hp := idx("hosts", h.Index)
		onNet := map[string]bool{}
		devices := map[string]bool{}
		for i, hi := range h.Interfaces {
			p := idx(hp+".interfaces", i)
			if hi.Device != "" && v.match(p+".device", hi.Pos, "device", hi.Device, deviceName) {
				if devices[hi.Device] {
					v.at(p+".device", hi.Pos, "device %s is already declared on this host", hi.Device)
				}
				devices[hi.Device] = true
			}
			if hi.Network == "" {
				continue
			}
			n := c.Network(hi.Network)
			if n == nil {
				v.at(p+".network", hi.Pos, "ARBO001: network %q is not declared under networks", hi.Network)
				continue
			}
			if onNet[hi.Network] {
				v.at(p+".network", hi.Pos, "this host already has an interface on network %s", hi.Network)
			}
			onNet[hi.Network] = true
			v.inside(p+".address", hi.Pos, hi.Address, n.CIDR, n.Name)
			v.iface(p+".address", hi.Pos, hi.Address)
		}
	}
	for _, h := range c.Hosts {
		hp := idx("hosts", h.Index)
		if v.name(hp+".name", h.Pos, "host name", h.Name, machineName) {
			if ezjailReserved[h.Name] {
				v.at(hp+".name", h.Pos, "%q is reserved by ezjail", h.Name)
			}
			v.claim(h.Name, "host", hp+".name", h.Pos)
		}
		v.ssh(hp+".ssh", h.SSH)
		v.rcConf(hp+".rc_conf", h.RCConf)
		if h.FreeBSDRelease != "" {
			v.match(hp+".freebsd_release", h.Pos, "release", h.FreeBSDRelease, releaseName)
		}
		if u := h.Uplink; u != nil {
			if c.Gateway != nil {
				v.at(hp+".uplink", h.Pos, "uplink is only for a cluster without a gateway (here the gateway is the way out)")
			}
			if u.Device != "" {
				v.match(hp+".uplink.device", h.Pos, "device", u.Device, deviceName)
			}
		}
		if h.ZFS != nil && h.ZFS.Dataset != "" {
			v.match(hp+".zfs.dataset", h.Pos, "dataset", h.ZFS.Dataset, datasetName)
		}
		onNet := map[string]bool{}
		for _, hi := range h.Interfaces {
			onNet[hi.Network] = true
		}
		local := map[string]*Jail{}
		for _, j := range h.Jails {
			local[j.Name] = j
		}
		for k, j := range h.Jails {
			v.jail(h, idx(hp+".jails", k), j, onNet, local, jailAddrs)
		}
		v.startOrder(h, hp)
	}
}

func (v *validator) jail(h *Host, jp string, j *Jail, onNet map[string]bool, local map[string]*Jail, jailAddrs map[netip.Addr]string) {
	c := v.c
	if v.name(jp+".name", j.Pos, "jail name", j.Name, machineName) {
		if ezjailReserved[j.Name] {
			v.at(jp+".name", j.Pos, "%q is reserved by ezjail", j.Name)
		} else {
			v.claim(j.Name, "jail", jp+".name", j.Pos)
		}
	}
	var tier *Tier
	if j.Tier != "" {
		if tier = c.Tier(j.Tier); tier == nil {
			v.at(jp+".tier", j.Pos, "ARBO001: tier %q is not declared under tiers", j.Tier)
		}
	}
	if _, own := v.pos[jp+".flavour"]; own && j.Flavour != "" && c.Flavour(j.Flavour) == nil {
		v.at(jp+".flavour", j.Pos, "ARBO001: flavour %q is not declared under flavours", j.Flavour)
	}
	if j.ZFS != nil {
		if h.ZFS == nil {
			v.at(jp+".zfs", j.Pos, "jail zfs options need the host's zfs: {dataset: …}")
		}
		if j.ZFS.Quota != "" {
			v.match(jp+".zfs.quota", j.Pos, "quota", j.ZFS.Quota, quotaValue)
		}
	}
	ipPath := jp + ".ip"
	_, listed := v.pos[ipPath+"[0]"]
	inTier := false
	otherTier := ""
	for k, a := range j.IPs {
		p := ipPath
		if listed {
			p = idx(ipPath, k)
		}
		if !a.IsValid() {
			continue
		}
		if prev, ok := jailAddrs[a]; ok {
			v.at(p, j.Pos, "ARBO002: address %s is already held by %s", a, prev)
		} else {
			jailAddrs[a] = fmt.Sprintf("jail %s (%s)", j.Name, p)
		}
		if prev, ok := v.ifaceAddrs[a]; ok {
			v.at(p, j.Pos, "ARBO002: address %s is already held by interface %s", a, prev)
		}
		n := c.NetworkOf(a)
		if n == nil {
			if !v.badNets {
				v.at(p, j.Pos, "address %s lies in no declared network", a)
			}
			continue
		}
		v.inside(p, j.Pos, a, n.CIDR, n.Name)
		if n.Attached && !onNet[n.Name] {
			v.at(p, j.Pos, "address %s is on network %s, which host %s has no interface on", a, n.Name, h.Name)
		}
		if tier != nil && n.Name == tier.Network {
			inTier = true
		}
		if ts := v.netTiers[n.Name]; len(ts) > 0 && tier != nil && !contains(ts, tier.Name) && otherTier == "" {
			otherTier = ts[0]
			v.at(p, j.Pos, "ARBO002: address %s is in network %s of tier %s, but jail %s is of tier %s; no jail holds addresses of two tiers", a, n.Name, ts[0], j.Name, tier.Name)
		}
	}
	if tier != nil && !inTier && len(j.IPs) > 0 {
		if n := c.Network(tier.Network); n != nil && n.CIDR.IsValid() {
			v.at(ipPath, j.Pos, "jail %s has no address in its tier's network %s (%s)", j.Name, n.Name, n.CIDR)
		}
	}
	for k, s := range j.StartAfter {
		p := idx(jp+".start_after", k)
		switch {
		case s == j.Name:
			v.at(p, j.Pos, "a jail cannot start after itself")
		case local[s] == nil:
			v.at(p, j.Pos, "ARBO001: %q is not a jail on host %s (start_after names jails on the same host)", s, h.Name)
		}
	}
}

// startOrder refuses a cycle in start_after, which ezjail's rcorder would
// break arbitrarily.
func (v *validator) startOrder(h *Host, hp string) {
	byName := map[string]int{}
	for i, j := range h.Jails {
		byName[j.Name] = i
	}
	state := make([]byte, len(h.Jails)) // 0 new, 1 on the path, 2 done
	var visit func(i int) bool
	visit = func(i int) bool {
		state[i] = 1
		for _, s := range h.Jails[i].StartAfter {
			k, ok := byName[s]
			if !ok || k == i {
				continue
			}
			if state[k] == 1 {
				return true
			}
			if state[k] == 0 && visit(k) {
				return true
			}
		}
		state[i] = 2
		return false
	}
	for i, j := range h.Jails {
		if state[i] == 0 && visit(i) {
			v.at(idx(hp+".jails", i)+".start_after", j.Pos, "start_after forms a cycle through jail %s", j.Name)
			return
		}
	}
}

func (v *validator) erlang() {
	c := v.c
	e := c.Erlang
	if e == nil {
		return
	}
	isErl := map[string]bool{}
	for i, t := range e.Tiers {
		if t == "" {
			continue
		}
		if c.Tier(t) == nil {
			v.at(idx("erlang.tiers", i), e.Pos, "ARBO001: %q is not a tier", t)
		}
		isErl[t] = true
	}
	if e.Basename != "" {
		v.match("erlang.basename", e.Pos, "basename", e.Basename, erlangBase)
	}
	if e.NodeHost != NodeHostAddress && e.NodeHost != NodeHostFQDN {
		v.at("erlang.node_host", e.Pos, "node_host %q: expected address or fqdn", e.NodeHost)
	}
	v.match("erlang.user", e.Pos, "erlang user", e.User, unixUser)
	if e.Service != "" {
		v.match("erlang.service", e.Pos, "service", e.Service, rcdService)
	}
	if e.DistPorts.Contains(4369) {
		v.at("erlang.dist_ports", e.Pos, "dist_ports %s holds 4369, epmd's port", e.DistPorts)
	}
	if e.NoEPMD && e.DistPorts.Min != e.DistPorts.Max && e.DistPorts.Min != 0 {
		v.at("erlang.dist_ports", e.Pos, "with epmd: false every node listens on one port (-erl_epmd_port) and dials its peers there: dist_ports must be one port, not %s", e.DistPorts)
	}
	if e.CookieFile != "" {
		v.plain("erlang.cookie_file", e.Pos, "cookie_file", e.CookieFile)
		if !CookieInside(e.CookieFile) {
			v.at("erlang.cookie_file", e.Pos, "cookie_file %q is outside the topology's directory: keep the cookie beside the topology (e.g. secrets/erlang.cookie, mode 600, not in git), or give a cookie kept elsewhere (a CI credential) on the command line with --cookie-file", e.CookieFile)
		}
	}
	for i, t := range e.Hidden {
		p := idx("erlang.hidden", i)
		switch {
		case t == "":
		case c.Tier(t) == nil:
			v.at(p, e.Pos, "ARBO001: %q is not a tier", t)
		case !isErl[t]:
			v.at(p, e.Pos, "tier %s is hidden but not in erlang.tiers", t)
		case t == e.Discovery:
			v.at(p, e.Pos, "tier %s is the discovery tier; its nodes cannot start -hidden", t)
		}
	}
	if e.Discovery != "" {
		switch {
		case c.Tier(e.Discovery) == nil:
			v.at("erlang.discovery", e.Pos, "ARBO001: %q is not a tier", e.Discovery)
		case !isErl[e.Discovery]:
			v.at("erlang.discovery", e.Pos, "discovery tier %s is not in erlang.tiers", e.Discovery)
		default:
			nodes := 0
			for _, h := range c.Hosts {
				for _, j := range h.Jails {
					if j.Tier == e.Discovery {
						nodes++
					}
				}
			}
			if _, set := v.pos["erlang.consensus"]; !set {
				v.at("erlang", e.Pos, "missing key \"consensus\" (nodes the discovery tier %s needs before it reports itself up: 1 to %d)", e.Discovery, nodes)
			} else if e.Consensus < 1 || e.Consensus > nodes {
				v.at("erlang.consensus", e.Pos, "consensus %d: expected 1 to %d, the discovery tier %s's node count", e.Consensus, nodes, e.Discovery)
			}
		}
	} else if _, set := v.pos["erlang.consensus"]; set {
		v.at("erlang.consensus", e.Pos, "consensus needs erlang.discovery, the tier it counts")
	}
}

func (v *validator) dns() {
	c := v.c
	if r := c.DNS.ResolverJail; r != "" && c.Jail(r) == nil {
		v.at("dns.resolver_jail", Pos{}, "ARBO001: %q is not a jail", r)
	}
	for i, r := range c.DNS.Records {
		p := idx("dns.records", i)
		if r.Name != "" && v.relName(p+".name", r.Pos, "record name", r.Name) {
			v.claim(r.Name, "dns record", p+".name", r.Pos)
		}
		for k, a := range r.A {
			if a.IsValid() && !a.Is4() {
				v.at(idx(p+".a", k), r.Pos, "%s is not an IPv4 address; put it under aaaa", a)
			}
		}
		for k, a := range r.AAAA {
			if a.IsValid() && !a.Is6() {
				v.at(idx(p+".aaaa", k), r.Pos, "%s is not an IPv6 address; put it under a", a)
			}
		}
		if r.CNAME != "" && len(r.A)+len(r.AAAA)+len(r.SRV) > 0 {
			v.at(p+".cname", r.Pos, "a name with a cname has no other records")
		}
		for k, s := range r.SRV {
			sp := idx(p+".srv", k)
			for _, f := range []struct {
				key string
				n   int
			}{{"priority", s.Priority}, {"weight", s.Weight}, {"port", s.Port}} {
				if f.n < 0 || f.n > 65535 {
					v.at(sp+"."+f.key, r.Pos, "%s %d: expected 0-65535", f.key, f.n)
				}
			}
		}
	}
	// Targets may name records declared further down: check them once every
	// name is known.
	for i, r := range c.DNS.Records {
		p := idx("dns.records", i)
		if r.CNAME != "" {
			v.target(p+".cname", r.Pos, r.CNAME)
		}
		for k, s := range r.SRV {
			if s.Target != "" {
				v.target(idx(p+".srv", k)+".target", r.Pos, s.Target)
			}
		}
	}
}

// relName checks a name relative to the domain: DNS labels, where _ is
// allowed for SRV owner names such as _epmd._tcp.
func (v *validator) relName(path string, p Pos, what, s string) bool {
	if len(s) > 200 {
		v.at(path, p, "%s is too long", what)
		return false
	}
	for _, lab := range strings.Split(s, ".") {
		if !dnsLabel.MatchString(lab) {
			v.at(path, p, "%s %q is not allowed: DNS labels of a-z, 0-9, - and _ (not - at either end), separated by dots, relative to the domain", what, s)
			return false
		}
	}
	return true
}

// target checks a cname or srv target: a name in the zone (relative, no
// final dot) or a fully qualified name ending in a dot.
func (v *validator) target(path string, p Pos, s string) {
	if abs, ok := strings.CutSuffix(s, "."); ok {
		v.relName(path, p, "target", abs)
		return
	}
	if !v.relName(path, p, "target", s) {
		return
	}
	if d := v.c.Domain; d != "" && strings.HasSuffix(s, "."+d) {
		v.at(path, p, "target %q: a name without a final dot is relative to the domain; write %s or %s.", s, strings.TrimSuffix(s, "."+d), s)
		return
	}
	if _, ok := v.zone[s]; !ok {
		v.at(path, p, "ARBO001: target %q is no name in the zone (a jail, tier, machine or record); a name outside it ends with a dot", s)
	}
}

func (v *validator) flavours() {
	for _, f := range v.c.Flavours {
		p := "flavours." + f.Name
		v.match(p, f.Pos, "flavour name", f.Name, shortName)
		for i, pk := range f.Packages {
			if pk != "" {
				v.match(idx(p+".packages", i), f.Pos, "package", pk, packageName)
			}
		}
		for _, file := range f.Files {
			fp := p + ".files[" + fmt.Sprintf("%q", file.Path) + "]"
			switch {
			case !strings.HasPrefix(file.Path, "/"):
				v.at(fp, f.Pos, "file path %q is not absolute (a path inside the jail, e.g. /usr/local/etc/app.conf)", file.Path)
			case file.Path == "/" || path.Clean(file.Path) != file.Path || strings.Contains(file.Path, ".."):
				v.at(fp, f.Pos, "file path %q is not allowed: a clean absolute path, no .. and no trailing /", file.Path)
			case strings.ContainsAny(file.Path, "\x00\n\r\t\"'\\$`*?[]{};|&<> "):
				v.at(fp, f.Pos, "file path %q is not allowed: no spaces, quotes or shell metacharacters", file.Path)
			default:
				v.flavourPath(fp, f, file)
			}
		}
	}
}

func (v *validator) accept() {
	for i, a := range v.c.Accept {
		p := idx("accept", i)
		switch {
		case a.ID == "":
		case a.ID == "ARBO001" || a.ID == "ARBO002":
			v.at(p+".id", a.Pos, "%s cannot be accepted: it is a load error", a.ID)
		case !acceptableID.MatchString(a.ID):
			v.at(p+".id", a.Pos, "id %q: expected a check ID from ARBO003 to ARBO016", a.ID)
		case a.Subject == "" && subjectRequired[a.ID] && !v.reported(p+".subject"):
			v.at(p, a.Pos, "accepting %s needs a subject: the tier, jail or tier/service it is about (as the finding names it); a data exposure is never waived for a whole cluster", a.ID)
		}
		if a.Subject != "" {
			v.plain(p+".subject", a.Pos, "subject", a.Subject)
			if !v.knownSubject(a.Subject) {
				v.at(p+".subject", a.Pos, "subject %q names nothing in this topology: expected a tier, jail, machine or network name, tier/service, a flow \"SOURCE -> TIER\", a CIDR or management", a.Subject)
			}
		}
		if a.Machine != "" && a.Machine != MachineCluster && v.c.Host(a.Machine) == nil && !v.c.IsGateway(a.Machine) {
			v.at(p+".machine", a.Pos, "ARBO001: %q is not a machine (the gateway, a host, or cluster)", a.Machine)
		}
		if _, set := v.pos[p+".reason"]; set && a.Reason == "" && !v.reported(p+".reason") {
			v.at(p+".reason", a.Pos, "reason is empty; say why the finding is accepted")
		}
	}
}

// subjectRequired lists the rules whose findings can only be accepted one
// subject at a time (TOPOLOGY.md: a data tier reachable from outside, or
// reaching outside, is too grave to waive for a whole cluster).
var subjectRequired = map[string]bool{"ARBO005": true, "ARBO006": true}

// knownSubject reports whether s can be the subject of a finding of this
// topology (check names them so): a name (tier, jail, machine, network), a
// tier/service, a flow "SOURCE -> TIER" (SOURCE a tier, gateway or
// outside), a CIDR, "management", or a skipped interface.
func (v *validator) knownSubject(s string) bool {
	c := v.c
	name := func(n string) bool {
		return c.Tier(n) != nil || c.Jail(n) != nil || c.Host(n) != nil || c.IsGateway(n) || c.Network(n) != nil
	}
	if name(s) || s == "management" || strings.HasPrefix(s, "set skip on ") {
		return true
	}
	if _, err := netip.ParsePrefix(s); err == nil {
		return true
	}
	if tn, svc, ok := strings.Cut(s, "/"); ok {
		if t := c.Tier(tn); t != nil {
			for _, sv := range t.Services {
				if sv.Name == svc {
					return true
				}
			}
		}
		return false
	}
	if src, dst, ok := strings.Cut(s, " -> "); ok {
		return c.Tier(dst) != nil && (c.Tier(src) != nil || src == "gateway" || src == "outside")
	}
	return false
}

func (v *validator) management() {
	c := v.c
	for i, s := range c.Management {
		if s.Kind == SourceNetwork && c.Network(s.Name) == nil {
			v.at(idx("management", i), s.Pos, "ARBO001: %q is not a declared network (management lists network names or CIDRs)", s.Name)
		}
	}
	if _, set := v.pos["management"]; set {
		if len(c.Management) == 0 && !v.reported("management") {
			v.at("management", Pos{}, "management is empty; list the networks or CIDRs SSH comes from, or leave the key out")
		}
		return
	}
	if v.badNets {
		return
	}
	for _, m := range c.Machines() {
		ssh := c.MachineSSH(m)
		if ssh.Address == "" {
			continue
		}
		path, pos := "gateway.ssh.address", Pos{}
		if h := c.Host(m); h != nil && !c.IsGateway(m) {
			path, pos = idx("hosts", h.Index)+".ssh.address", h.Pos
		}
		a, err := netip.ParseAddr(ssh.Address)
		if err != nil {
			v.at(path, pos, "management is required: ssh.address %q of %s is a name, so arbo cannot tell which network SSH comes from", ssh.Address, m)
			return
		}
		if c.NetworkOf(a) == nil {
			v.at(path, pos, "management is required: ssh.address %s of %s lies in no declared network", a, m)
			return
		}
	}
}

// routes makes sure that every machine can reach every host's host-local
// jail addresses: that the two share a network. Hosts are grouped by the
// set of networks they are on, so the work grows with the number of
// distinct sets, not with the square of the hosts.
func (v *validator) routes() {
	c := v.c
	type group struct {
		nets    map[string]bool
		first   string // a member, for the message
		local   string // a member with host-local jail addresses
		localAt string
		pos     Pos
	}
	groups := map[string]*group{}
	var order []string
	key := func(nets []string) string {
		sort.Strings(nets)
		return strings.Join(nets, ",")
	}
	add := func(machine string, nets []string, hostLocal bool, path string, p Pos) {
		k := key(nets)
		g := groups[k]
		if g == nil {
			g = &group{nets: map[string]bool{}, first: machine, pos: p}
			for _, n := range nets {
				g.nets[n] = true
			}
			groups[k] = g
			order = append(order, k)
		}
		if hostLocal && g.local == "" {
			g.local, g.localAt, g.pos = machine, path, p
		}
	}
	if gw := c.Gateway; gw != nil {
		var nets []string
		for _, gi := range gw.Interfaces {
			if gi.Network != "" && c.Network(gi.Network) != nil {
				nets = append(nets, gi.Network)
			}
		}
		add(gw.Name, nets, false, "gateway", gw.Pos)
	}
	for _, h := range c.Hosts {
		var nets []string
		for _, hi := range h.Interfaces {
			if c.Network(hi.Network) != nil {
				nets = append(nets, hi.Network)
			}
		}
		add(h.Name, nets, c.HasHostLocalJails(h), idx("hosts", h.Index), h.Pos)
	}
	if len(groups) > 64 {
		// So many distinct network sets is no cluster arbo is meant for;
		// derive.Routes leaves unreachable addresses out in any case.
		return
	}
	for _, tk := range order {
		to := groups[tk]
		if to.local == "" {
			continue
		}
		for _, fk := range order {
			from := groups[fk]
			shared := false
			for n := range from.nets {
				if to.nets[n] {
					shared = true
					break
				}
			}
			if shared {
				continue
			}
			other := from.first
			if other == to.local {
				continue // alone in its group, with no network
			}
			v.at(to.localAt, to.pos, "host %s shares no network with %s, which then cannot reach its host-local jail addresses", to.local, other)
		}
	}
}

// suggest returns the known key closest to s, when it is close enough to be
// a likely typo.
func suggest(s string, known []string) string {
	best, bestD := "", 1<<30
	for _, k := range known {
		if d := editDistance(s, k); d < bestD {
			best, bestD = k, d
		}
	}
	limit := 2
	if len(s) <= 3 {
		limit = 1
	}
	if bestD <= limit {
		return best
	}
	return ""
}

// editDistance is the Damerau-Levenshtein (optimal string alignment)
// distance, so that a swap of two letters ("jials") costs one.
func editDistance(a, b string) int {
	if len(a) > 64 || len(b) > 64 {
		return 1 << 20 // a key this long is no typo of a known one
	}
	d := make([][]int, len(a)+1)
	for i := range d {
		d[i] = make([]int, len(b)+1)
		d[i][0] = i
	}
	for j := 0; j <= len(b); j++ {
		d[0][j] = j
	}
	for i := 1; i <= len(a); i++ {
		for j := 1; j <= len(b); j++ {
			cost := 1
			if a[i-1] == b[j-1] {
				cost = 0
			}
			d[i][j] = min(d[i-1][j]+1, d[i][j-1]+1, d[i-1][j-1]+cost)
			if i > 1 && j > 1 && a[i-1] == b[j-2] && a[i-2] == b[j-1] {
				d[i][j] = min(d[i][j], d[i-2][j-2]+1)
			}
		}
	}
	return d[len(a)][len(b)]
}

// CookieInside says whether a cookie_file as written stays under the
// topology's directory: relative, and not climbing out with "..". Any file
// the user running arbo can read would otherwise be deployed into every
// Erlang jail (issue 11, item 5); a cookie kept elsewhere comes from the
// command line (--cookie-file), where the person running arbo chose it.
func CookieInside(p string) bool {
	if p == "" || filepath.IsAbs(p) || strings.HasPrefix(p, "/") || strings.HasPrefix(p, `\`) {
		return false
	}
	c := filepath.Clean(p)
	return c != "." && c != ".." && !strings.HasPrefix(c, "../")
}
