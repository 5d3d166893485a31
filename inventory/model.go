// Package inventory is arbo's topology model: it loads a topology file
// (TOPOLOGY.md), applies defaults in one place, validates it, and hands the
// rest of arbo an immutable, typed Cluster in which every value still knows
// the file position it came from.
package inventory

import (
	"fmt"
	"net/netip"
	"time"
)

// Pos is a position in the topology file, 1-based as editors show it.
type Pos struct {
	Line, Col int
}

func (p Pos) String() string { return fmt.Sprintf("%d:%d", p.Line, p.Col) }

// Roles of a tier. The separation rules are about RoleApp vs RoleData.
const (
	RoleApp   = "app"
	RoleData  = "data"
	RoleInfra = "infra"
)

// Egress modes of a tier.
const (
	EgressNone = "none"
	EgressAny  = "any"
	EgressList = "list"
)

// Node host forms for Erlang node names.
const (
	NodeHostAddress = "address"
	NodeHostFQDN    = "fqdn"
)

// Cluster is a loaded, defaulted and validated topology. Treat it as
// read-only: renderers and checks share one value.
type Cluster struct {
	File string // the topology file as given on the command line
	Dir  string // its directory: relative paths (cookie_file) resolve here

	Version        int
	Name           string // `cluster`
	Domain         string // without a trailing dot
	SSH            SSH
	Management     []Source // networks (Kind SourceNetwork) or CIDRs; empty means the per-machine default
	FreeBSDRelease string
	Networks       []*Network // declaration order
	Gateway        *Gateway   // nil when the cluster has none
	Tiers          []*Tier    // declaration order
	Erlang         *Erlang    // nil when absent
	DNS            DNS
	Hosts          []*Host // declaration order
	Flavours       []*Flavour
	RCConf         []KV // declaration order
	Accept         []Accept

	// Positions maps a key path ("hosts[0].jails[1].ip") to where its value
	// starts in the file, for findings and errors that point at a key.
	Positions map[string]Pos

	netByName  map[string]*Network
	tierByName map[string]*Tier
	hostByName map[string]*Host
	jailByName map[string]*Jail
	flavByName map[string]*Flavour
	tierJails  map[string][]*Jail // declaration order: TierJails is asked per host, per tier
	routes     *routeCache
}

// SSH holds connection settings. A zero field means "not set here": the next
// source in TOPOLOGY.md's precedence decides.
type SSH struct {
	Address      string
	User         string
	Port         int
	IdentityFile string
	KnownHosts   string
	Jump         string
	Timeout      time.Duration
}

// Network is a declared network.
type Network struct {
	Name         string
	CIDR         netip.Prefix
	Interconnect bool
	// Attached is derived: some host or gateway interface names it. A network
	// that is not attached is host-local: its jail addresses live on lo1.
	Attached bool
	// WAN is derived: it holds the address of a gateway uplink.
	WAN bool
	Pos Pos
}

// HostLocal reports whether jail addresses in n live on the holding host's lo1.
func (n *Network) HostLocal() bool { return !n.Attached }

// Gateway is the pfSense box.
type Gateway struct {
	Name       string
	Kind       string // "pfsense"
	SSH        SSH
	Interfaces []GatewayInterface
	Forwards   []Forward
	DNS        bool
	Pos        Pos
}

// GatewayInterface is an interface as assigned on the pfSense box.
type GatewayInterface struct {
	Name    string // pfSense key: wan, lan, optN
	Device  string
	Address netip.Addr
	// Prefix is the interface's subnet: the network's CIDR on an attached
	// network, the written /prefix on an uplink.
	Prefix   netip.Prefix
	Network  string     // declared network name; empty on an uplink
	Gateway  netip.Addr // next hop; valid only on an uplink
	Failover bool
	Pos      Pos
}

// Uplink reports whether the interface is a way to the internet.
func (gi GatewayInterface) Uplink() bool { return gi.Gateway.IsValid() }

// Forward is a public entry point on every uplink to a tier's jails.
type Forward struct {
	Proto  string // tcp | udp
	Port   PortRange
	To     string // tier name
	ToPort PortRange
	Pos    Pos
}

// PortRange is an inclusive range; a single port has Min == Max.
type PortRange struct {
	Min, Max int
}

func (r PortRange) Single() bool { return r.Min == r.Max }

func (r PortRange) String() string {
	if r.Single() {
		return fmt.Sprint(r.Min)
	}
	return fmt.Sprintf("%d-%d", r.Min, r.Max)
}

// Contains reports whether port p is in r.
func (r PortRange) Contains(p int) bool { return p >= r.Min && p <= r.Max }

// Overlaps reports whether r and o share a port.
func (r PortRange) Overlaps(o PortRange) bool { return r.Min <= o.Max && o.Min <= r.Max }

// Tier is a set of jails with one role and one policy.
type Tier struct {
	Name     string
	Role     string // RoleApp | RoleData | RoleInfra
	Network  string
	Services []Service
	Egress   Egress
	Flavour  string
	Pos      Pos
}

// Service is something a tier's jails listen on.
type Service struct {
	Name   string
	Proto  string // tcp | udp; "tcp" for Erlang services
	Ports  PortRange
	From   []Source
	Erlang bool // TCP 4369 plus erlang.dist_ports; Ports is zero then
	Pos    Pos
}

// Source kinds: who may connect to a service, or where management SSH comes from.
const (
	SourceTier    = "tier"
	SourceGateway = "gateway"
	SourceCIDR    = "cidr"
	SourceNetwork = "network" // management entries only
)

// Source is one `from` (or `management`) entry.
type Source struct {
	Kind string
	Name string       // tier or network name
	CIDR netip.Prefix // for SourceCIDR, and resolved for SourceNetwork
	Pos  Pos
}

func (s Source) String() string {
	switch s.Kind {
	case SourceCIDR:
		return s.CIDR.String()
	case SourceGateway:
		return "gateway"
	}
	return s.Name
}

// Egress is what a tier's jails may open toward destinations outside the
// cluster's networks.
type Egress struct {
	Mode  string // EgressNone | EgressAny | EgressList
	Rules []EgressRule
	Pos   Pos
}

// EgressRule allows one destination.
type EgressRule struct {
	To    netip.Prefix
	Proto string // tcp | udp | "" (any)
	Ports PortRange
	Pos   Pos
}

// Erlang is the Erlang cluster that runs inside the jails.
type Erlang struct {
	Tiers      []string
	Basename   string
	NodeHost   string // NodeHostAddress | NodeHostFQDN
	User       string // default "root"
	DistPorts  PortRange
	CookieFile string // as written (or as given with --cookie-file)
	CookiePath string // resolved against Cluster.Dir, or --cookie-file
	// CookieFromFlag: CookiePath came from the command line (--cookie-file),
	// not from the topology, and may lie outside its directory.
	CookieFromFlag bool
	CookiePos      Pos // where cookie_file is written
	Discovery      string
	Hidden         []string
	Consensus      int
	Service        string
	TLS            bool // distribution over TLS (inet_tls_dist) with the cluster CA
	// NoEPMD is `epmd: false`: no epmd; every node listens on the one port
	// of dist_ports (ERL_DIST_PORT) and finds its peers there.
	NoEPMD bool
	Pos    Pos
}

// DNS holds extra records and the resolver jail.
type DNS struct {
	Records      []Record
	ResolverJail string
}

// Record is an extra name in the zone, relative to the domain.
type Record struct {
	Name  string
	A     []netip.Addr
	AAAA  []netip.Addr
	CNAME string // relative to the domain, or absolute with a final dot
	SRV   []SRV
	Pos   Pos
}

// SRV is one SRV target: {priority, weight, port, target}.
type SRV struct {
	Priority, Weight, Port int
	Target                 string // as CNAME: relative, or absolute with a final dot
}

// Host is a FreeBSD server.
type Host struct {
	Name           string
	SSH            SSH
	Interfaces     []HostInterface
	RCConf         []KV
	Uplink         *Uplink
	ZFS            *HostZFS
	FreeBSDRelease string
	Jails          []*Jail
	Pos            Pos
	Index          int // position in Cluster.Hosts, for key paths
}

// HostInterface is a host's interface on a declared network.
type HostInterface struct {
	Device  string
	Network string
	Address netip.Addr
	Pos     Pos
}

// Uplink is a host's way out in a cluster without a gateway.
type Uplink struct {
	Device string
	Router netip.Addr
}

// HostZFS puts jails in ZFS datasets under Dataset.
type HostZFS struct {
	Dataset string
}

// Jail is an ezjail jail.
type Jail struct {
	Name       string
	Host       string // the host that holds it
	Tier       string
	IPs        []netip.Addr
	Flavour    string // resolved: the jail's own, else its tier's; may be empty
	ZFS        *JailZFS
	StartAfter []string
	Pos        Pos
}

// JailZFS holds dataset options.
type JailZFS struct {
	Quota string
}

// Flavour is what a new jail of that flavour gets.
type Flavour struct {
	Name     string
	Packages []string
	Files    []FlavourFile // sorted by Path
	Pos      Pos
}

// FlavourFile is one file of a flavour directory.
type FlavourFile struct {
	Path    string // absolute path inside the jail
	Content string
}

// KV is an rc.conf pair.
type KV struct {
	Name, Value string
	Pos         Pos
}

// Accept is an accepted check finding.
type Accept struct {
	ID      string
	Machine string // a machine name, "cluster", or "" for every machine
	// Subject narrows the entry to findings about one tier, jail, service
	// (tier/service) or flow ("src -> tier"), as the finding names it; ""
	// matches every subject. ARBO005 and ARBO006 need one.
	Subject string
	Reason  string
	Pos     Pos
}

// MachineCluster names findings and objects that belong to no one machine.
const MachineCluster = "cluster"
