package inventory

import (
	"net/netip"
	"sort"
	"strings"
)

// What render needs, checked at load (validate ⇔ render): every name in
// the zone fits a DNS name, every path arbo writes fits the file system,
// and every route arbo writes joins addresses of one family.
const (
	// maxFQDN is a DNS name's length without the final dot (RFC 1035
	// 3.1: 255 octets on the wire, i.e. 253 characters written).
	maxFQDN = 253
	// maxComponent is NAME_MAX on FreeBSD and Linux.
	maxComponent = 255
	// maxFileName is the longest last component arbo can write: remote
	// writes go through ".<name>.arbo-tmp-<12 hex>" (remote.TempMarker),
	// 23 bytes more.
	maxFileName = maxComponent - 23
	// maxPath is PATH_MAX on FreeBSD (1024, with its NUL).
	maxPath = 1023
)

// fqdns refuses a name of the zone that would be longer than a DNS name can
// be once the domain is appended: machines, jails, tiers, records and
// ns.<domain>. (Labels are at most 63 characters by their patterns.)
func (v *validator) fqdns() {
	d := v.c.Domain
	if d == "" || v.reported("domain") {
		return
	}
	if n := len("ns.") + len(d); n > maxFQDN {
		v.at("domain", Pos{}, "domain is %d characters: the zone's name server ns.%s would be %d, and a DNS name has at most %d; shorten the domain to at most %d characters",
			len(d), d, n, maxFQDN, maxFQDN-len("ns."))
		return
	}
	names := make([]string, 0, len(v.zone))
	for n := range v.zone {
		if len(n)+1+len(d) > maxFQDN {
			names = append(names, n)
		}
	}
	sort.Slice(names, func(i, j int) bool { return v.zone[names[i]].path < v.zone[names[j]].path })
	for _, n := range names {
		z := v.zone[n]
		v.at(z.path, Pos{}, "%s.%s would be %d characters, and a DNS name has at most %d: shorten the name of %s or the domain",
			n, d, len(n)+1+len(d), maxFQDN, z.what)
	}
}

// flavourPath refuses a flavour file path that the file systems of a host
// cannot hold under the flavour directory or a jail root.
func (v *validator) flavourPath(fp string, f *Flavour, file FlavourFile) {
	parts := strings.Split(strings.TrimPrefix(file.Path, "/"), "/")
	for i, comp := range parts {
		if i < len(parts)-1 && len(comp) > maxComponent {
			v.at(fp, f.Pos, "file path component %q is %d bytes; a path component is at most %d (NAME_MAX)", comp[:20]+"…", len(comp), maxComponent)
			return
		}
		if i == len(parts)-1 && len(comp) > maxFileName {
			v.at(fp, f.Pos, "file name %q is %d bytes; at most %d here: NAME_MAX is %d, and arbo writes the file through a temporary name 23 bytes longer", comp[:20]+"…", len(comp), maxFileName, maxComponent)
			return
		}
	}
	// The longest root the file lands under: the flavour directory, or the
	// root of a jail of this flavour.
	root := "/usr/jails/flavours/" + f.Name
	for _, j := range v.c.Jails() {
		if j.Flavour == f.Name && len("/usr/jails/"+j.Name) > len(root) {
			root = "/usr/jails/" + j.Name
		}
	}
	if n := len(root) + len(file.Path); n > maxPath {
		v.at(fp, f.Pos, "file path is %d bytes under %s; a path is at most %d bytes on FreeBSD (PATH_MAX)", n, root, maxPath)
	}
}

// routeFamilies refuses a host-local jail address that another machine
// can reach only through addresses of the other family: render writes
// `route -host <jail address> <via>`, and the two must be of one family
// (RouteViaFor). Whether a shared network of the family exists depends
// only on the two machines' sets of networks, so the work grows with the
// number of distinct sets, not with the square of the hosts.
func (v *validator) routeFamilies() {
	c := v.c
	if v.badNets {
		return
	}
	type group struct {
		nets    map[string]bool
		members []string // the first two: one that is not the host at hand
	}
	var groups []*group
	byKey := map[string]*group{}
	netsOf := map[string]*group{}
	add := func(machine string, names []string) {
		sorted := append([]string(nil), names...)
		sort.Strings(sorted)
		k := strings.Join(sorted, ",")
		g := byKey[k]
		if g == nil {
			g = &group{nets: map[string]bool{}}
			for _, n := range names {
				g.nets[n] = true
			}
			byKey[k] = g
			groups = append(groups, g)
		}
		if len(g.members) < 2 {
			g.members = append(g.members, machine)
		}
		netsOf[machine] = g
	}
	for _, m := range c.Machines() {
		var names []string
		for n := range c.MachineNetworks(m) {
			if c.Network(n) != nil {
				names = append(names, n)
			}
		}
		add(m, names)
	}
	if len(groups) > 64 {
		return // as routes(): no cluster arbo is meant for
	}
	// shared is a network the two groups share of a's family (RouteViaFor
	// takes the next hop there), and any shared network, for the message.
	shared := func(from, to *group, a netip.Addr) (same, any *Network) {
		for _, n := range c.Networks {
			if from.nets[n.Name] && to.nets[n.Name] && n.CIDR.IsValid() {
				if n.CIDR.Addr().Is4() == a.Is4() {
					return n, n
				}
				if any == nil {
					any = n
				}
			}
		}
		return nil, any
	}
	for _, h := range c.Hosts {
		to := netsOf[h.Name]
		if to == nil {
			continue
		}
		reported := map[bool]bool{}
		for k, j := range h.Jails {
			for _, a := range j.IPs {
				if !a.IsValid() || c.JailInterface(h, a) != "lo1" || reported[a.Is4()] {
					continue
				}
				for _, from := range groups {
					other := from.members[0]
					if other == h.Name {
						if len(from.members) < 2 {
							continue
						}
						other = from.members[1]
					}
					same, n := shared(from, to, a)
					if same != nil || n == nil {
						continue // routed, or reported by routes()
					}
					reported[a.Is4()] = true
					v.at(idx(idx("hosts", h.Index)+".jails", k)+".ip", j.Pos,
						"jail %s's %s address %s lives on host %s's lo1, and %s shares no %s network with %s (it shares %s, %s), so no route to it can be written: give the two an %s network they share, or put the jail on an %s network",
						j.Name, family(a), a, h.Name, other, family(a), h.Name, n.Name, n.CIDR, family(a), family(n.CIDR.Addr()))
					break
				}
			}
		}
	}
}

func family(a netip.Addr) string {
	if a.Is4() {
		return "IPv4"
	}
	return "IPv6"
}
