// Package dns builds the cluster's internal zone from the topology (a name
// and a PTR for every jail, a round-robin name per tier, the NS and the
// extra records) and renders it three ways: RFC 1035 zone files, the
// unbound configuration of a resolver jail, and the host overrides plus
// local-data lines the pfSense DNS Resolver takes. Rendering is pure.
package dns

import (
	"crypto/sha256"
	"encoding/binary"
	"fmt"
	"net/netip"
	"slices"
	"strconv"
	"strings"

	"github.com/arbo-project/arbo/inventory"
	"github.com/arbo-project/arbo/jail"
	"github.com/arbo-project/arbo/state"
	"github.com/arbo-project/arbo/templates"
)

// ResolverPackage is the package the resolver jail needs; the render
// composition adds it to the jail's packages.
const ResolverPackage = "unbound"

// Paths of the unbound package inside the resolver jail (FreeBSD port
// dns/unbound: rc.d script "unbound", config in /usr/local/etc/unbound).
const (
	UnboundDir  = "/usr/local/etc/unbound"
	UnboundConf = UnboundDir + "/unbound.conf"
)

// Zone timers, in seconds. One TTL for everything: discovery (DNSPoll,
// Cloister) must see a changed tier quickly.
const (
	TTL     = 60
	Refresh = 3600
	Retry   = 600
	Expire  = 1209600
	Minimum = 60
)

// Record is one resource record of the forward zone.
type Record struct {
	Name string // fully qualified, without the final dot
	Type string // A, AAAA, CNAME, SRV or NS
	Data string // RDATA as written in a zone file; names end with a dot
}

// PTR maps an address to the jail that holds it.
type PTR struct {
	Addr netip.Addr
	Name string // <jail>.<domain>, without the final dot
}

// Zone is the cluster's zone.
type Zone struct {
	Domain string
	NS     string // ns.<domain>
	// Records in a fixed order: the NS, ns's addresses, every jail (host
	// and jail declaration order), every tier's round-robin name (tier
	// order), then dns.records in file order.
	Records []Record
	PTRs    []PTR // jail declaration order, each jail's addresses in order
}

func fq(name string) string { return name + "." }

func addrType(a netip.Addr) string {
	if a.Is4() {
		return "A"
	}
	return "AAAA"
}

// target makes a cname or srv target absolute: a final dot marks a name
// outside the zone, anything else is relative to the domain.
func target(c *inventory.Cluster, t string) string {
	if strings.HasSuffix(t, ".") {
		return t
	}
	return t + "." + c.Domain + "."
}

// Build collects the zone's records.
func Build(c *inventory.Cluster) *Zone {
	z := &Zone{Domain: c.Domain, NS: "ns." + c.Domain}
	seen := map[Record]bool{}
	add := func(r Record) {
		if !seen[r] {
			seen[r] = true
			z.Records = append(z.Records, r)
		}
	}
	add(Record{Name: c.Domain, Type: "NS", Data: fq(z.NS)})
	for _, a := range c.Resolvers() {
		add(Record{Name: z.NS, Type: addrType(a), Data: a.String()})
	}
	for _, j := range c.Jails() {
		name := j.Name + "." + c.Domain
		for _, a := range j.IPs {
			add(Record{Name: name, Type: addrType(a), Data: a.String()})
			z.PTRs = append(z.PTRs, PTR{Addr: a, Name: name})
		}
	}
	for _, t := range c.Tiers {
		name := t.Name + "." + c.Domain
		n := c.Network(t.Network)
		for _, j := range c.TierJails(t.Name) {
			for _, a := range j.IPs {
				if n == nil || n.CIDR.Contains(a) {
					add(Record{Name: name, Type: addrType(a), Data: a.String()})
				}
			}
		}
	}
	for _, r := range c.DNS.Records {
		name := r.Name + "." + c.Domain
		for _, a := range r.A {
			add(Record{Name: name, Type: "A", Data: a.String()})
		}
		for _, a := range r.AAAA {
			add(Record{Name: name, Type: "AAAA", Data: a.String()})
		}
		if r.CNAME != "" {
			add(Record{Name: name, Type: "CNAME", Data: target(c, r.CNAME)})
		}
		for _, s := range r.SRV {
			add(Record{Name: name, Type: "SRV", Data: fmt.Sprintf("%d %d %d %s", s.Priority, s.Weight, s.Port, target(c, s.Target))})
		}
	}
	return z
}

// ZoneData is what zone.tmpl receives (forward and reverse zones alike).
type ZoneData struct {
	File                            string // the file name, e.g. arboreus.internal.zone
	Cluster                         string
	Origin                          string // without the final dot
	TTL                             int
	MName                           string // ns.<domain>.
	RName                           string // hostmaster.<domain>.
	Serial                          uint32
	Refresh, Retry, Expire, Minimum int
	NS                              string // ns.<domain>.
	Records                         []ZoneRecord
}

// ZoneRecord is a record relative to the zone's origin.
type ZoneRecord struct {
	Owner string // relative to the origin; "@" for the origin itself
	Type  string
	Data  string
}

// Serial derives the SOA serial from the records: the first 31 bits of a
// SHA-256 of the origin and the records, never 0. It changes whenever the
// content changes and never otherwise, without a clock. It does not grow
// monotonically, so secondaries that compare serials (RFC 1982) are not
// supported: arbo's zones are served from local-data, never transferred.
func Serial(origin string, recs []ZoneRecord) uint32 {
	h := sha256.New()
	h.Write([]byte(origin + "\n"))
	for _, r := range recs {
		fmt.Fprintf(h, "%s\t%s\t%s\n", r.Owner, r.Type, r.Data)
	}
	s := binary.BigEndian.Uint32(h.Sum(nil)) & 0x7fffffff
	if s == 0 {
		s = 1
	}
	return s
}

// forward is the forward zone's records but the apex NS, which the
// template writes.
func forward(z *Zone) []ZoneRecord {
	var out []ZoneRecord
	for _, r := range z.Records {
		if r.Type == "NS" && r.Name == z.Domain {
			continue
		}
		out = append(out, ZoneRecord{Owner: relative(r.Name, z.Domain), Type: r.Type, Data: r.Data})
	}
	return out
}

func relative(name, origin string) string {
	if name == origin {
		return "@"
	}
	return strings.TrimSuffix(name, "."+origin)
}

// ReverseName is the in-addr.arpa or ip6.arpa name of a, without the
// final dot.
func ReverseName(a netip.Addr) string {
	if a.Is4() {
		b := a.As4()
		return fmt.Sprintf("%d.%d.%d.%d.in-addr.arpa", b[3], b[2], b[1], b[0])
	}
	b := a.As16()
	var parts []string
	for i := 15; i >= 0; i-- {
		parts = append(parts, strconv.FormatUint(uint64(b[i]&0xf), 16), strconv.FormatUint(uint64(b[i]>>4), 16))
	}
	return strings.Join(parts, ".") + ".ip6.arpa"
}

// ReverseZone is the reverse zone holding a's PTR: the zone of a's
// network, widened to the covering octet (IPv4) or nibble (IPv6) boundary
// when the prefix is not aligned (a /22 goes into its /16 zone); /24 or
// /64 when a lies in no declared network.
func ReverseZone(c *inventory.Cluster, a netip.Addr) string {
	bits := 24
	if !a.Is4() {
		bits = 64
	}
	if n := c.NetworkOf(a); n != nil {
		bits = n.CIDR.Bits()
	}
	full := strings.Split(ReverseName(a), ".")
	if a.Is4() {
		keep := max(bits/8, 1) // labels of the address kept, from the top
		return strings.Join(full[4-keep:], ".")
	}
	keep := max(bits/4, 1)
	return strings.Join(full[32-keep:], ".")
}

// ZoneFiles renders the forward zone (<domain>.zone) and every reverse
// zone (<reverse zone>.zone). A reverse zone inside another one (a /24
// network inside a declared /16) is folded into the outer one.
func ZoneFiles(c *inventory.Cluster, ts *templates.Set) (map[string][]byte, error) {
	z := Build(c)
	out := map[string][]byte{}
	render := func(origin string, recs []ZoneRecord) error {
		file := origin + ".zone"
		d := ZoneData{
			File: file, Cluster: c.Name, Origin: origin, TTL: TTL,
			MName: fq(z.NS), RName: "hostmaster." + c.Domain + ".",
			Refresh: Refresh, Retry: Retry, Expire: Expire, Minimum: Minimum,
			NS: fq(z.NS), Records: recs,
		}
		d.Serial = Serial(origin, recs)
		b, err := ts.Execute("zone.tmpl", d)
		if err != nil {
			return fmt.Errorf("zone %s: %w", origin, err)
		}
		out[file] = b
		return nil
	}

	if err := render(c.Domain, forward(z)); err != nil {
		return nil, err
	}

	zones := map[string][]PTR{}
	for _, p := range z.PTRs {
		rz := ReverseZone(c, p.Addr)
		zones[rz] = append(zones[rz], p)
	}
	names := make([]string, 0, len(zones))
	for n := range zones {
		names = append(names, n)
	}
	// Shortest first, so that an outer zone exists before its inner ones
	// are folded into it.
	slices.SortFunc(names, func(a, b string) int {
		if d := len(a) - len(b); d != 0 {
			return d
		}
		return strings.Compare(a, b)
	})
	var kept []string
	for _, n := range names {
		outer := ""
		for _, k := range kept {
			if strings.HasSuffix(n, "."+k) {
				outer = k
				break
			}
		}
		if outer != "" {
			zones[outer] = append(zones[outer], zones[n]...)
			delete(zones, n)
			continue
		}
		kept = append(kept, n)
	}
	for _, n := range kept {
		ptrs := zones[n]
		slices.SortStableFunc(ptrs, func(a, b PTR) int { return a.Addr.Compare(b.Addr) })
		var recs []ZoneRecord
		seen := map[netip.Addr]bool{}
		for _, p := range ptrs {
			if seen[p.Addr] {
				continue
			}
			seen[p.Addr] = true
			recs = append(recs, ZoneRecord{Owner: relative(ReverseName(p.Addr), n), Type: "PTR", Data: fq(p.Name)})
		}
		if err := render(n, recs); err != nil {
			return nil, err
		}
	}
	return out, nil
}

// LocalData returns the zone as unbound local-data record strings (without
// the local-data: keyword or quotes), SOA first, and the PTRs as
// local-data-ptr strings.
func LocalData(c *inventory.Cluster) (data, ptrs []string) {
	z := Build(c)
	// The same serial as the zone file's.
	data = append(data, fmt.Sprintf("%s. %d IN SOA %s hostmaster.%s. %d %d %d %d %d",
		c.Domain, TTL, fq(z.NS), c.Domain, Serial(c.Domain, forward(z)), Refresh, Retry, Expire, Minimum))
	for _, r := range z.Records {
		data = append(data, rr(r))
	}
	for _, p := range z.PTRs {
		ptrs = append(ptrs, fmt.Sprintf("%s %d %s", p.Addr, TTL, fq(p.Name)))
	}
	return data, ptrs
}

func rr(r Record) string { return fmt.Sprintf("%s. %d IN %s %s", r.Name, TTL, r.Type, r.Data) }

// UnboundData is what unbound.conf.tmpl receives.
type UnboundData struct {
	Path         string // on the host: /usr/jails/<jail>/usr/local/etc/unbound/unbound.conf
	Cluster      string
	Jail         string
	Domain       string
	ConfDir      string   // /usr/local/etc/unbound: directory, chroot, pidfile
	Interfaces   []string // the resolver jail's addresses
	Allow        []string // the cluster's networks (access-control allow)
	LocalData    []string // record strings for local-data:
	LocalDataPTR []string // "addr ttl name." strings for local-data-ptr:
}

// ResolverRCData is what resolver-rc.conf.local.tmpl receives.
type ResolverRCData struct {
	Cluster string
	Jail    string
}

// RenderResolver renders the resolver jail's unbound.conf and rc.conf.local
// when dns.resolver_jail is a jail on h; nothing otherwise.
func RenderResolver(c *inventory.Cluster, h *inventory.Host, ts *templates.Set) ([]state.File, error) {
	j := c.Jail(c.DNS.ResolverJail)
	if j == nil || j.Host != h.Name {
		return nil, nil
	}
	root := jail.Root(j.Name)
	d := UnboundData{Path: root + UnboundConf, Cluster: c.Name, Jail: j.Name, Domain: c.Domain, ConfDir: UnboundDir}
	for _, a := range j.IPs {
		d.Interfaces = append(d.Interfaces, a.String())
	}
	for _, p := range c.ClusterPrefixes() {
		d.Allow = append(d.Allow, p.Masked().String())
	}
	d.LocalData, d.LocalDataPTR = LocalData(c)
	for _, s := range append(slices.Clone(d.LocalData), d.LocalDataPTR...) {
		if strings.ContainsAny(s, "\"\n") {
			return nil, fmt.Errorf("resolver %s: record %q cannot be written in double quotes", j.Name, s)
		}
	}
	reload := []state.Reload{{Kind: state.ReloadUnbound, Target: j.Name}}
	conf, err := ts.Execute("unbound.conf.tmpl", d)
	if err != nil {
		return nil, fmt.Errorf("resolver %s: unbound.conf: %w", j.Name, err)
	}
	rc, err := ts.Execute("resolver-rc.conf.local.tmpl", ResolverRCData{Cluster: c.Name, Jail: j.Name})
	if err != nil {
		return nil, fmt.Errorf("resolver %s: rc.conf.local: %w", j.Name, err)
	}
	return []state.File{
		{Path: d.Path, Mode: 0o644, Owner: "root", Group: "wheel", Content: conf, Jail: j.Name, Reload: reload, Source: "unbound.conf.tmpl"},
		{Path: root + "/etc/rc.conf.local", Mode: 0o644, Owner: "root", Group: "wheel", Content: rc, Jail: j.Name, Reload: reload, Source: "resolver-rc.conf.local.tmpl"},
	}, nil
}

// HostOverride is one pfSense DNS Resolver host override.
type HostOverride struct {
	Host   string // the jail
	Domain string
	IP     string // the jail's addresses, comma-separated (pfSense makes one A/AAAA and PTR of each)
	Descr  string // arbo:<cluster>:jail:<name>
}

// GatewayDNS is what the pfSense merge needs to serve the zone.
type GatewayDNS struct {
	Overrides []HostOverride
	// LocalData are complete unbound lines (local-data: "…") for the
	// resolver's custom options: ns, the round-robin and the extra records,
	// which must not be host overrides (an override also makes a PTR, and a
	// PTR always names a jail).
	LocalData []string
}

// Gateway returns the host overrides (one per jail) and local-data lines
// for the pfSense DNS Resolver.
func Gateway(c *inventory.Cluster) GatewayDNS {
	var g GatewayDNS
	jailNames := map[string]bool{}
	for _, j := range c.Jails() {
		jailNames[j.Name+"."+c.Domain] = true
		ips := make([]string, 0, len(j.IPs))
		for _, a := range j.IPs {
			ips = append(ips, a.String())
		}
		g.Overrides = append(g.Overrides, HostOverride{Host: j.Name, Domain: c.Domain, IP: strings.Join(ips, ","),
			Descr: "arbo:" + c.Name + ":jail:" + j.Name})
	}
	for _, r := range Build(c).Records {
		if jailNames[r.Name] || r.Type == "NS" {
			continue
		}
		g.LocalData = append(g.LocalData, `local-data: "`+rr(r)+`"`)
	}
	return g
}
