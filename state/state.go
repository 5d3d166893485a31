// Package state is the desired state of one machine, as renderers produce it
// and plan compares it with what a machine really has. It holds data only:
// no I/O, so that renderers stay pure.
package state

import (
	"io/fs"
	"sort"
)

// Kinds of machine.
const (
	KindHost    = "host"
	KindGateway = "gateway"
)

// File is one file arbo owns on a machine.
type File struct {
	Path    string      // absolute path on the machine
	Mode    fs.FileMode // permission bits
	Owner   string      // user name, e.g. "root"
	Group   string      // group name, e.g. "wheel"
	Content []byte
	// Sensitive files (cookies, release env) never show their content in a
	// diff, a plan, a log or JSON output.
	Sensitive bool
	// Jail names the jail whose root holds the file ("" for host files). Such
	// files are written only after the jail exists, and never through a
	// symlink under the jail root.
	Jail string
	// Reload lists what must happen when this file changes (see Reload*).
	Reload []Reload
	// Source names the template or renderer that produced it, for people.
	Source string
	// From names the local file a sensitive file's secret comes from (the
	// Erlang cookie file), so that a plan says which file it deploys
	// without showing what it holds.
	From string
	// Variants, when set, are the file's two forms on a ZFS host whose
	// basejail and newjail are datasets or plain directories (ezjail.conf:
	// ezjail_use_zfs or not); plan picks one as Content once it has read
	// the machine. Content is the datasets form until then.
	Variants *BaseVariants `json:"-"`
}

// BaseVariants are ezjail.conf's forms for the two kinds of basejail.
type BaseVariants struct {
	Datasets []byte // basejail and newjail are ZFS datasets (or are about to be made)
	Plain    []byte // basejail and newjail are plain directories
}

// Kinds of reload action, in the order apply runs them.
const (
	ReloadNetif     = "netif"      // service netif cloneup: lo1 from rc.conf
	ReloadRoutes    = "routes"     // route add/change for static routes
	ReloadPF        = "pf"         // pfctl -nf, then commit-confirmed pfctl -f
	ReloadJail      = "jail"       // restart the jail named in Target
	ReloadUnbound   = "unbound"    // unbound-checkconf + restart (in jail Target, or the gateway)
	ReloadErlang    = "erlang"     // service -j Target <erlang.service> restart
	ReloadPfSense   = "pfsense"    // rc.filter_configure_sync + read-back
	ReloadPfSenseNS = "pfsense-ns" // pfSsh.php playback svc restart unbound
)

// Reload is an action that follows a file change.
type Reload struct {
	Kind   string `json:"kind"`
	Target string `json:"target,omitempty"` // a jail name or service name, when the kind needs one
}

// Jail is a jail a host must have.
type Jail struct {
	Name       string   `json:"name"`
	SafeName   string   `json:"safename"`
	Hostname   string   `json:"hostname"` // <name>.<domain>
	IP         string   `json:"ip"`       // ezjail's iface|addr[,iface|addr…]
	Tier       string   `json:"tier"`
	Data       bool     `json:"data,omitempty"` // a data-tier jail: never deleted without --allow-destroy
	Flavour    string   `json:"flavour,omitempty"`
	Packages   []string `json:"packages,omitempty"` // installed from the host into the jail root
	StartAfter []string `json:"start_after,omitempty"`
	Root       string   `json:"root"` // /usr/jails/<name>
	// ZFS is the jail's dataset on a host with zfs (ezjail's
	// <parentzfs>/<name>, ezjail-admin:716), Quota its zfs.quota ("" = not
	// managed by arbo).
	ZFS   string `json:"zfs,omitempty"`
	Quota string `json:"zfs_quota,omitempty"`
}

// Machine is everything one machine must look like.
type Machine struct {
	Name  string
	Kind  string
	Files []File
	Jails []Jail
	// Routes the host must have live, as "dest via" pairs, for route add/change.
	Routes []Route
	// ZFSDataset is a host's zfs.dataset: the parent of its jails' datasets
	// (ezjail_jailzfs); "" without zfs.
	ZFSDataset string
	// Warnings found while rendering (e.g. gateway interfaces that disagree
	// with config.xml). Never errors.
	Warnings []string
}

// Route is a static route to bring live.
type Route struct {
	Dest string `json:"dest"` // e.g. 10.20.1.12/32
	Via  string `json:"via"`
}

// Sort puts files in path order and jails in name order so that output is
// deterministic whatever order renderers appended in.
func (m *Machine) Sort() {
	sort.SliceStable(m.Files, func(i, j int) bool { return m.Files[i].Path < m.Files[j].Path })
}

// File returns the file at path, or nil.
func (m *Machine) File(path string) *File {
	for i := range m.Files {
		if m.Files[i].Path == path {
			return &m.Files[i]
		}
	}
	return nil
}
