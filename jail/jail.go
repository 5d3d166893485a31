// Package jail renders what a FreeBSD host needs for its ezjail jails: ezjail.conf,
// one ezjail config file per jail (in the exact format ezjail-admin writes),
// the flavour directories, the host's /etc/rc.conf.local and each jail's
// resolv.conf. It also builds the argument lists of the ezjail and pkg
// commands that create and manage the jails. Rendering is pure.
package jail

import (
	"fmt"
	"net/netip"
	"path"
	"regexp"
	"slices"
	"strings"

	"github.com/arbo-project/arbo/inventory"
	"github.com/arbo-project/arbo/pf"
	"github.com/arbo-project/arbo/state"
	"github.com/arbo-project/arbo/templates"
)

// Paths and values on the host. ezjail's defaults, except ExecStop.
const (
	JailDir      = "/usr/jails"
	FlavoursDir  = JailDir + "/flavours"
	EzjailConf   = "/usr/local/etc/ezjail.conf"
	EzjailCfgDir = "/usr/local/etc/ezjail"
	RCConfLocal  = "/etc/rc.conf.local"
	// FallbackConf is the ruleset rc.d/pf loads when /etc/pf.conf does not
	// (pf_fallback_rules_file, FreeBSD libexec/rc/rc.conf:252).
	FallbackConf = "/etc/pf-fallback.conf"
	// ExecStop makes jail(8) run rc.shutdown on stop (freebsd.md §1.4): ezjail
	// leaves exec_stop empty by default, so a stopping DB jail would only be
	// signalled.
	ExecStop = "/bin/sh /etc/rc.shutdown jail"
)

// EzjailConfData is what ezjail.conf.tmpl receives.
type EzjailConfData struct {
	Path       string // /usr/local/etc/ezjail.conf
	Cluster    string
	JailDir    string // ezjail_jaildir
	ExecStop   string // ezjail_exec_stop
	ZFSDataset string // ezjail_jailzfs; empty: no ZFS settings at all
	// UseZFS: basejail and newjail are ZFS datasets, or ezjail-admin
	// install is about to make them (ezjail_use_zfs). False where they are
	// plain directories: ezjail's create would copy newjail by zfs send of
	// a newjail@ snapshot (ezjail-admin:747-752) and fail there.
	UseZFS bool
}

// JailConfData is what ezjail-jail.tmpl receives: one jail's
// /usr/local/etc/ezjail/<safename>.
type JailConfData struct {
	SafeName string
	Provide  string // rcorder PROVIDE: "standard_ezjail ezjail_<safename>"
	Require  string // rcorder REQUIRE: "ezjail_<safename of dep> …", or ""
	Before   string // rcorder BEFORE: always "" (ezjail's default)
	// Vars are ezjail's 22 variables in writejailinfo's order; Name is the
	// part after jail_<safename>_.
	Vars []Var
}

// Var is one shell variable assignment.
type Var struct {
	Name  string
	Value string // written inside double quotes as is
	// Comment, when set, is written as a "# …" line (after an empty line)
	// before the variable (rc.conf.local.tmpl only).
	Comment string
}

// RCConfData is what rc.conf.local.tmpl receives.
type RCConfData struct {
	Host    string
	Cluster string
	Vars    []Var // in the order written; values may hold newlines (pf_fallback_rules)
}

// ResolvConfData is what resolv.conf.tmpl receives.
type ResolvConfData struct {
	Jail        string
	Domain      string
	Nameservers []string
}

// Root is a jail's root directory on its host.
func Root(name string) string { return JailDir + "/" + name }

// Provides is the rcorder name arbo gives a jail, which other jails'
// REQUIRE lines name.
func Provides(name string) string { return "ezjail_" + inventory.SafeName(name) }

// IPString is ezjail's address list for a jail: iface|addr[,iface|addr…],
// with lo1 for host-local addresses and the host's device on attached
// networks. No /prefix: jail(8) then adds /32 or /128 aliases.
func IPString(c *inventory.Cluster, h *inventory.Host, j *inventory.Jail) string {
	parts := make([]string, 0, len(j.IPs))
	for _, a := range j.IPs {
		parts = append(parts, c.JailInterface(h, a)+"|"+a.String())
	}
	return strings.Join(parts, ",")
}

// Render returns the host files for h and the jails h must have.
func Render(c *inventory.Cluster, h *inventory.Host, ts *templates.Set) ([]state.File, []state.Jail, error) {
	var files []state.File
	add := func(p, tmpl string, data any, f state.File) error {
		b, err := ts.Execute(tmpl, data)
		if err != nil {
			return fmt.Errorf("host %s: %s: %w", h.Name, p, err)
		}
		f.Path, f.Content, f.Source = p, b, tmpl
		if f.Mode == 0 {
			f.Mode = 0o644
		}
		if f.Owner == "" {
			f.Owner, f.Group = "root", "wheel"
		}
		files = append(files, f)
		return nil
	}

	ez := EzjailConfData{Path: EzjailConf, Cluster: c.Name, JailDir: JailDir, ExecStop: ExecStop}
	if h.ZFS != nil {
		ez.ZFSDataset, ez.UseZFS = h.ZFS.Dataset, true
	}
	if err := add(EzjailConf, "ezjail.conf.tmpl", ez, state.File{}); err != nil {
		return nil, nil, err
	}
	if h.ZFS != nil {
		// The form for a basejail of plain directories, which plan picks
		// when it finds one on the host.
		ez.UseZFS = false
		plain, err := ts.Execute("ezjail.conf.tmpl", ez)
		if err != nil {
			return nil, nil, fmt.Errorf("host %s: %s: %w", h.Name, EzjailConf, err)
		}
		f := &files[len(files)-1]
		f.Variants = &state.BaseVariants{Datasets: f.Content, Plain: plain}
	}

	var jails []state.Jail
	flavours := map[string]bool{}
	for _, j := range h.Jails {
		data, err := jailConf(c, h, j)
		if err != nil {
			return nil, nil, err
		}
		p := EzjailCfgDir + "/" + data.SafeName
		if err := add(p, "ezjail-jail.tmpl", data, state.File{Reload: []state.Reload{{Kind: state.ReloadJail, Target: j.Name}}}); err != nil {
			return nil, nil, err
		}
		rc := ResolvConfData{Jail: j.Name, Domain: c.Domain}
		for _, a := range c.Resolvers() {
			rc.Nameservers = append(rc.Nameservers, a.String())
		}
		if err := add(Root(j.Name)+"/etc/resolv.conf", "resolv.conf.tmpl", rc, state.File{Jail: j.Name}); err != nil {
			return nil, nil, err
		}
		sj := state.Jail{
			Name:       j.Name,
			SafeName:   data.SafeName,
			Hostname:   j.Name + "." + c.Domain,
			IP:         IPString(c, h, j),
			Tier:       j.Tier,
			StartAfter: slices.Clone(j.StartAfter),
			Root:       Root(j.Name),
		}
		if t := c.Tier(j.Tier); t != nil {
			sj.Data = t.Role == inventory.RoleData
		}
		if h.ZFS != nil {
			// ezjail's dataset of a jail: <parentzfs>/<hostname>, its
			// hostname the jail's name with / and ~ made _
			// (ezjail-admin:594,716).
			sj.ZFS = h.ZFS.Dataset + "/" + strings.NewReplacer("/", "_", "~", "_").Replace(j.Name)
			if j.ZFS != nil {
				sj.Quota = j.ZFS.Quota
			}
		}
		if f := c.Flavour(j.Flavour); f != nil {
			sj.Packages = slices.Clone(f.Packages)
			slices.Sort(sj.Packages)
			sj.Packages = slices.Compact(sj.Packages)
			// ezjail-admin create -f refuses a flavour whose directory does
			// not exist, and arbo only makes the directory by writing files
			// into it: a flavour of packages alone is installed with pkg.
			if len(f.Files) > 0 {
				sj.Flavour = f.Name
				flavours[f.Name] = true
			}
		} else if j.Flavour != "" {
			return nil, nil, fmt.Errorf("host %s: jail %s: flavour %q is not declared", h.Name, j.Name, j.Flavour)
		}
		jails = append(jails, sj)
	}

	for _, f := range c.Flavours { // declaration order: deterministic
		if !flavours[f.Name] {
			continue
		}
		for _, ff := range f.Files {
			if !strings.HasPrefix(ff.Path, "/") || path.Clean(ff.Path) != ff.Path || ff.Path == "/" {
				return nil, nil, fmt.Errorf("host %s: flavour %s: file path %q is not a clean absolute path", h.Name, f.Name, ff.Path)
			}
			files = append(files, state.File{
				Path: FlavoursDir + "/" + f.Name + ff.Path, Mode: 0o644, Owner: "root", Group: "wheel",
				Content: []byte(ff.Content), Source: "flavours." + f.Name,
			})
		}
	}

	vars, err := RCConfVars(c, h)
	if err != nil {
		return nil, nil, err
	}
	if err := add(RCConfLocal, "rc.conf.local.tmpl", RCConfData{Host: h.Name, Cluster: c.Name, Vars: vars},
		state.File{Reload: []state.Reload{{Kind: state.ReloadNetif}, {Kind: state.ReloadRoutes}}}); err != nil {
		return nil, nil, err
	}
	fb, err := FallbackFile(c, h)
	if err != nil {
		return nil, nil, err
	}
	files = append(files, fb)
	return files, jails, nil
}

// FallbackFile is h's /etc/pf-fallback.conf: FallbackRules under a header,
// linted like pf.conf. It needs no reload: rc.d/pf reads it only when
// /etc/pf.conf fails to load.
func FallbackFile(c *inventory.Cluster, h *inventory.Host) (state.File, error) {
	b := []byte(fmt.Sprintf("# %s on %s: generated by arbo for cluster %s.\n"+
		"# Do not edit: arbo rewrites this whole file. rc.d/pf loads it only when\n"+
		"# /etc/pf.conf fails to load: SSH from management stays open, the rest is blocked.\n",
		FallbackConf, h.Name, c.Name) + FallbackRules(c, h) + "\n")
	if probs := pf.Lint(b); len(probs) > 0 {
		return state.File{}, fmt.Errorf("host %s: the rendered %s fails the lint: %w", h.Name, FallbackConf, probs[0])
	}
	return state.File{Path: FallbackConf, Mode: 0o644, Owner: "root", Group: "wheel", Content: b, Source: "jail.FallbackRules"}, nil
}

func jailConf(c *inventory.Cluster, h *inventory.Host, j *inventory.Jail) (JailConfData, error) {
	safe := inventory.SafeName(j.Name)
	d := JailConfData{SafeName: safe, Provide: "standard_ezjail " + Provides(j.Name)}
	var req []string
	for _, dep := range j.StartAfter {
		if dj := c.Jail(dep); dj == nil || dj.Host != h.Name {
			return d, fmt.Errorf("host %s: jail %s: start_after %q is no jail on this host", h.Name, j.Name, dep)
		}
		req = append(req, Provides(dep))
	}
	d.Require = strings.Join(req, " ")
	var imagetype, parentzfs string
	if h.ZFS != nil {
		imagetype, parentzfs = "zfs", h.ZFS.Dataset
	}
	d.Vars = []Var{
		{Name: "hostname", Value: j.Name + "." + c.Domain},
		{Name: "ip", Value: IPString(c, h, j)},
		{Name: "rootdir", Value: Root(j.Name)},
		{Name: "exec_start", Value: "/bin/sh /etc/rc"},
		{Name: "exec_stop", Value: ExecStop},
		{Name: "mount_enable", Value: "YES"},
		{Name: "devfs_enable", Value: "YES"},
		{Name: "devfs_ruleset", Value: "devfsrules_jail"},
		{Name: "procfs_enable", Value: "YES"},
		{Name: "fdescfs_enable", Value: "YES"},
		{Name: "image"},
		{Name: "imagetype", Value: imagetype},
		{Name: "attachparams"},
		{Name: "attachblocking"},
		{Name: "forceblocking"},
		{Name: "zfs_datasets"},
		{Name: "cpuset"},
		{Name: "fib"},
		{Name: "parentzfs", Value: parentzfs},
		{Name: "parameters"},
		{Name: "post_start_script"},
		{Name: "retention_policy"},
	}
	for _, v := range d.Vars {
		if strings.ContainsAny(v.Value, "\"\\$`\n") {
			return d, fmt.Errorf("host %s: jail %s: %s %q cannot be written in double quotes", h.Name, j.Name, v.Name, v.Value)
		}
	}
	return d, nil
}

var rcName = regexp.MustCompile(`^[A-Za-z_][A-Za-z0-9_]*$`)

// RouteName is the static_routes name of the n-th route (n from 0) to the
// jails of peer host: arbo_<safename>, then arbo_<safename>_2, _3 …
func RouteName(host string, n int) string {
	if n == 0 {
		return "arbo_" + inventory.SafeName(host)
	}
	return fmt.Sprintf("arbo_%s_%d", inventory.SafeName(host), n+1)
}

// LiveRoutes are the static routes of h as dest/via pairs, for bringing
// them live without a routing restart.
func LiveRoutes(c *inventory.Cluster, h *inventory.Host) []state.Route {
	var out []state.Route
	for _, r := range c.Routes(h.Name) {
		out = append(out, state.Route{Dest: r.Dest.String(), Via: r.Via.String()})
	}
	return out
}

// RCConfVars are the variables of h's /etc/rc.conf.local, in order: the
// services arbo needs, pf's fallback rules, lo1, the default router, the
// static routes, then the rc_conf extras (top level, overridden by the
// host's by name). An extra may not name a variable arbo writes or relies
// on (inventory.RCConfOwned; the load refuses it with its position, and
// render refuses a cluster built without loading).
func RCConfVars(c *inventory.Cluster, h *inventory.Host) ([]Var, error) {
	vars := []Var{
		{Name: "ezjail_enable", Value: "YES", Comment: "jails (ezjail), the packet filter and its log"},
		{Name: "pf_enable", Value: "YES"},
		{Name: "pflog_enable", Value: "YES"},
		// A file, not pf_fallback_rules: rc.d/pf loads that variable with an
		// unquoted `echo $pf_fallback_rules | pfctl -f -`
		// (freebsd/libexec/rc/rc.d/pf:41), which joins a multi-line ruleset
		// into one line that pfctl refuses, and pf then runs with no rules.
		// The file is loaded as is when it exists (rc.d/pf:36-38).
		{Name: "pf_fallback_rules_enable", Value: "YES",
			Comment: "when /etc/pf.conf fails to load, rc.d/pf loads " + FallbackConf + ": SSH stays open from management, everything else is blocked"},
		{Name: "pf_fallback_rules_file", Value: FallbackConf},
	}
	if c.HasHostLocalJails(h) {
		vars = append(vars, Var{Name: "cloned_interfaces", Value: "lo1",
			Comment: "host-local jail addresses live on lo1; ezjail adds each one (lo1|addr) when its jail starts"})
	}
	if _, router, ok := c.WayOut(h); ok {
		name := "defaultrouter"
		if router.Is6() {
			name = "ipv6_defaultrouter"
		}
		vars = append(vars, Var{Name: name, Value: router.String(), Comment: "the way out"})
	}
	var v4, v6 []string
	var v4vars, v6vars []Var
	seen := map[string]int{}
	for _, r := range c.Routes(h.Name) {
		name := RouteName(r.Host, seen[r.Host])
		seen[r.Host]++
		if r.Dest.Addr().Is4() != r.Via.Is4() {
			return nil, fmt.Errorf("host %s: route to %s (jails of host %s) via %s: address families differ", h.Name, r.Dest, r.Host, r.Via)
		}
		// route(8) syntax as rc.d/routing passes it (`route add $args`).
		args := "-net " + r.Dest.String() + " " + r.Via.String()
		if r.Dest.IsSingleIP() {
			args = "-host " + r.Dest.Addr().String() + " " + r.Via.String()
		}
		if r.Dest.Addr().Is4() {
			v4 = append(v4, name)
			v4vars = append(v4vars, Var{Name: "route_" + name, Value: args})
		} else {
			v6 = append(v6, name)
			v6vars = append(v6vars, Var{Name: "ipv6_route_" + name, Value: args})
		}
	}
	if len(v4) > 0 {
		vars = append(vars, Var{Name: "static_routes", Value: strings.Join(v4, " "),
			Comment: "other hosts' host-local jail addresses, one block per host where they aggregate, through those hosts"})
		vars = append(vars, v4vars...)
	}
	if len(v6) > 0 {
		vars = append(vars, Var{Name: "ipv6_static_routes", Value: strings.Join(v6, " "),
			Comment: "other hosts' host-local jail addresses (IPv6), through those hosts"})
		vars = append(vars, v6vars...)
	}

	// Extras: top level, then the host's; the host wins by name.
	var extras []inventory.KV
	at := map[string]int{}
	for _, list := range [][]inventory.KV{c.RCConf, h.RCConf} {
		for _, kv := range list {
			if i, ok := at[kv.Name]; ok {
				extras[i].Value = kv.Value
				continue
			}
			at[kv.Name] = len(extras)
			extras = append(extras, kv)
		}
	}
	first := true
	for _, kv := range extras {
		if !rcName.MatchString(kv.Name) {
			return nil, fmt.Errorf("host %s: rc_conf: %q is not an rc.conf variable name", h.Name, kv.Name)
		}
		if strings.ContainsAny(kv.Value, "\"\\$`\n\r") {
			return nil, fmt.Errorf("host %s: rc_conf: %s: the value cannot be written in double quotes", h.Name, kv.Name)
		}
		if why, owned := inventory.RCConfOwned(kv.Name); owned {
			return nil, fmt.Errorf("host %s: rc_conf: %s is arbo's (%s); remove it from rc_conf", h.Name, kv.Name, why)
		}
		v := Var{Name: kv.Name, Value: kv.Value}
		if first {
			v.Comment = "rc_conf: of the topology"
			first = false
		}
		vars = append(vars, v)
	}
	return vars, nil
}

// FallbackRules is the pf ruleset of /etc/pf-fallback.conf, which rc.d/pf
// loads when /etc/pf.conf does not load: everything blocked except SSH from the management networks (from
// anywhere when there are none, so that a broken ruleset never locks arbo
// out), the host's own traffic to itself on lo0, and the host's own
// outbound connections. lo0 is not skipped: a jail's packets to its host's
// own addresses cross lo0 (ARBO012, pf.Render's comments), so only what
// does not come from a jail of the host passes there. The jails' addresses
// are a table, since pf expands a negated list `! { a, b }` into rules that
// each let the other address through.
func FallbackRules(c *inventory.Cluster, h *inventory.Host) string {
	port := c.MachineSSH(h.Name).Port
	if port == 0 {
		port = 22
	}
	var jails []string
	for _, j := range h.Jails {
		for _, a := range j.IPs {
			jails = append(jails, a.String())
		}
	}
	var lines []string
	lo0 := "pass quick on lo0 all keep state"
	if len(jails) > 0 {
		lines = append(lines, "table <arbo_local_jails> const { "+strings.Join(jails, ", ")+" }")
		lo0 = "pass quick on lo0 from ! <arbo_local_jails> to any keep state"
	}
	lines = append(lines, "block drop log all", lo0)
	mgmt := c.ManagementPrefixes(h.Name)
	if len(mgmt) == 0 {
		mgmt = []netip.Prefix{{}}
	}
	for _, p := range mgmt {
		from := "any"
		if p.IsValid() {
			from = p.Masked().String()
		}
		lines = append(lines, fmt.Sprintf("pass in quick proto tcp from %s to any port %d flags S/SA keep state", from, port))
	}
	lines = append(lines, "pass out quick all keep state")
	return strings.Join(lines, "\n")
}
