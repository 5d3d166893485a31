// Package render composes every renderer (jail, erlang, dns, pf, pfsense)
// into the desired state of each machine, and writes that state to a
// directory for `arbo render FILE -o DIR`. Cluster is pure like the
// renderers it calls: whatever comes from disk or the environment (the
// Erlang cookie, the pfSense base config, SOURCE_DATE_EPOCH) arrives in
// Options.
package render

import (
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"slices"
	"sort"
	"time"

	"github.com/arbo-project/arbo/dns"
	"github.com/arbo-project/arbo/erlang"
	"github.com/arbo-project/arbo/inventory"
	"github.com/arbo-project/arbo/jail"
	"github.com/arbo-project/arbo/pf"
	"github.com/arbo-project/arbo/pfsense"
	"github.com/arbo-project/arbo/policy"
	"github.com/arbo-project/arbo/state"
	"github.com/arbo-project/arbo/templates"
)

// ConfigXML is pfSense's configuration file.
const ConfigXML = "/cf/conf/config.xml"

// PlaceholderCookie stands in for the Erlang cookie when it was not read
// (an offline render or plan without the secrets). Files that hold it stay
// Sensitive; they must never be applied, and the manifest says so.
const PlaceholderCookie = "ARBO_COOKIE_NOT_READ"

// PlaceholderTLS stands in for the TLS distribution certificates and keys
// when they were not read, as PlaceholderCookie does for the cookie.
const PlaceholderTLS = "ARBO_TLS_NOT_READ"

// Options are what Cluster needs beyond the topology.
type Options struct {
	// Templates is the template set (--templates DIR); nil means the
	// embedded one.
	Templates *templates.Set
	// PfSenseBase is the gateway's current config.xml; nil means pfSense's
	// factory default (pfsense.Factory()).
	PfSenseBase []byte
	// Cookie is the content of erlang.cookie_file.
	Cookie []byte
	// CookieMissing renders PlaceholderCookie instead of Cookie.
	CookieMissing bool
	// TLS holds, with erlang.tls, each Erlang jail's CA certificate, node
	// certificate and key (tlsca.Load), by jail name.
	TLS map[string]erlang.TLSFiles
	// TLSMissing renders PlaceholderTLS instead of TLS (offline).
	TLSMissing bool
	// Revision stamps config.xml's <revision> when the merge changes
	// something; the CLI takes it from SOURCE_DATE_EPOCH, else the clock.
	// Zero leaves <revision> alone.
	Revision time.Time
}

// Cluster renders every machine of c: one Machine per host and one for the
// gateway, sorted by name, each with its files sorted by path.
func Cluster(c *inventory.Cluster, o Options) ([]state.Machine, error) {
	ts := o.Templates
	if ts == nil {
		ts = templates.Default()
	}
	cookie := o.Cookie
	if o.CookieMissing {
		cookie = []byte(PlaceholderCookie)
	}
	tls := o.TLS
	if o.TLSMissing && c.Erlang != nil {
		tls = map[string]erlang.TLSFiles{}
		for _, j := range c.ErlangJails() {
			p := []byte(PlaceholderTLS)
			tls[j.Name] = erlang.TLSFiles{CA: p, Cert: p, Key: p}
		}
	}
	var out []state.Machine
	pol := policy.Derive(c) // once for the cluster, not once per host
	for _, h := range c.Hosts {
		m, err := host(c, h, pol, ts, cookie, tls)
		if err != nil {
			return nil, err
		}
		out = append(out, m)
	}
	if c.Gateway != nil {
		m, err := gateway(c, o)
		if err != nil {
			return nil, err
		}
		out = append(out, m)
	}
	sort.SliceStable(out, func(i, j int) bool { return out[i].Name < out[j].Name })
	return out, nil
}

func host(c *inventory.Cluster, h *inventory.Host, pol *policy.Policy, ts *templates.Set, cookie []byte, tls map[string]erlang.TLSFiles) (state.Machine, error) {
	m := state.Machine{Name: h.Name, Kind: state.KindHost}
	if h.ZFS != nil {
		m.ZFSDataset = h.ZFS.Dataset
	}
	files, jails, err := jail.Render(c, h, ts)
	if err != nil {
		return m, fmt.Errorf("render %s: jails: %w", h.Name, err)
	}
	m.Files = append(m.Files, files...)
	ef, err := erlang.Render(c, h, ts, cookie)
	if err != nil {
		return m, fmt.Errorf("render %s: erlang: %w", h.Name, err)
	}
	m.Files = append(m.Files, ef...)
	tf, err := erlang.RenderTLS(c, h, ts, tls)
	if err != nil {
		return m, fmt.Errorf("render %s: erlang: %w", h.Name, err)
	}
	m.Files = append(m.Files, tf...)
	df, err := dns.RenderResolver(c, h, ts)
	if err != nil {
		return m, fmt.Errorf("render %s: dns: %w", h.Name, err)
	}
	m.Files = append(m.Files, df...)
	pff, err := pf.RenderPolicy(c, h, pol, ts)
	if err != nil {
		return m, fmt.Errorf("render %s: %w", h.Name, err)
	}
	m.Files = append(m.Files, pff)

	for i := range jails {
		if jails[i].Name == c.DNS.ResolverJail && !slices.Contains(jails[i].Packages, dns.ResolverPackage) {
			jails[i].Packages = append(slices.Clone(jails[i].Packages), dns.ResolverPackage)
		}
	}
	sort.SliceStable(jails, func(i, j int) bool { return jails[i].Name < jails[j].Name })
	m.Jails = jails
	m.Routes = jail.LiveRoutes(c, h)
	if err := checkPaths(m); err != nil {
		return m, err
	}
	m.Sort()
	return m, nil
}

func gateway(c *inventory.Cluster, o Options) (state.Machine, error) {
	g := c.Gateway
	m := state.Machine{Name: g.Name, Kind: state.KindGateway}
	base := o.PfSenseBase
	if base == nil {
		base = pfsense.Factory()
	}
	po := pfsense.Options{Revision: o.Revision}
	if g.DNS {
		gd := dns.Gateway(c)
		for _, h := range gd.Overrides {
			po.DNS.Overrides = append(po.DNS.Overrides, pfsense.HostOverride{Host: h.Host, Domain: h.Domain, IP: h.IP, Descr: h.Descr})
		}
		po.DNS.LocalData = gd.LocalData
	}
	out, warnings, err := pfsense.Merge(c, base, po)
	if err != nil {
		return m, fmt.Errorf("render %s: config.xml: %w", g.Name, err)
	}
	reload := []state.Reload{{Kind: state.ReloadPfSense}}
	if g.DNS {
		// The file carries the DNS objects; plan narrows this to changes
		// that touch them. Restarting the Resolver when only rules changed
		// costs a second of DNS, never correctness.
		reload = append(reload, state.Reload{Kind: state.ReloadPfSenseNS})
	}
	m.Files = []state.File{{Path: ConfigXML, Mode: 0o644, Owner: "root", Group: "wheel", Content: out,
		Reload: reload, Source: "pfsense.Merge"}}
	m.Warnings = warnings
	m.Sort()
	return m, nil
}

// checkPaths refuses a file path that is not absolute and clean: WriteDir
// and apply join it under a root, and ".." there would escape it.
func checkPaths(m state.Machine) error {
	seen := map[string]bool{}
	for _, f := range m.Files {
		if !filepath.IsAbs(f.Path) || filepath.Clean(f.Path) != f.Path {
			return fmt.Errorf("render %s: file path %q is not absolute and clean", m.Name, f.Path)
		}
		if seen[f.Path] {
			return fmt.Errorf("render %s: two renderers produce %s", m.Name, f.Path)
		}
		seen[f.Path] = true
	}
	return nil
}

// CookieCommand is how a user creates a cookie file at path (as written in
// the topology, relative to it).
func CookieCommand(path string) string {
	return fmt.Sprintf("openssl rand -hex 32 > %s && chmod 600 %s", path, path)
}

// MaxCookieFile bounds what ReadCookie reads: a cookie is one line.
const MaxCookieFile = 4096

// ReadCookie reads erlang.cookie_file. A missing file is an error that
// names it and gives the command that creates one. A file that its group
// or others can read is refused, as ssh refuses such a private key: the
// cookie is the whole of Erlang distribution's authentication. The file
// must lie under the topology's directory, also after following symlinks,
// unless it came from the command line (--cookie-file): otherwise any
// one-line secret the user can read (a git credential) could be deployed
// into every Erlang jail. Its content must look like a cookie
// (erlang.CheckCookie): one line of printable ASCII, at most
// erlang.MaxCookie characters. Errors never show the content. A cluster
// without `erlang` needs no cookie: nil, nil.
func ReadCookie(c *inventory.Cluster) ([]byte, error) {
	e := c.Erlang
	if e == nil {
		return nil, nil
	}
	// where: the topology position of cookie_file, or the flag.
	where := fmt.Sprintf("%s:%d:%d: erlang.cookie_file", c.File, e.CookiePos.Line, e.CookiePos.Col)
	if e.CookieFromFlag {
		where = "--cookie-file"
	}
	st, err := os.Stat(e.CookiePath)
	if errors.Is(err, fs.ErrNotExist) {
		dir := ""
		if c.Dir != "" && c.Dir != "." && !e.CookieFromFlag {
			dir = fmt.Sprintf(" (in %s)", c.Dir)
		}
		return nil, fmt.Errorf("%s %s does not exist; create one%s: %s", where, e.CookiePath, dir, CookieCommand(e.CookieFile))
	}
	if err != nil {
		return nil, fmt.Errorf("%s: %w", where, err)
	}
	if !st.Mode().IsRegular() {
		return nil, fmt.Errorf("%s %s is not a regular file", where, e.CookiePath)
	}
	if !e.CookieFromFlag {
		if err := cookieUnder(c.Dir, e.CookiePath); err != nil {
			return nil, fmt.Errorf("%s %s: %w", where, e.CookieFile, err)
		}
	}
	if st.Mode().Perm()&0o077 != 0 {
		return nil, fmt.Errorf("%s %s is readable by others (mode %04o); the cookie is the cluster's only authentication: chmod 600 %s",
			where, e.CookiePath, st.Mode().Perm(), e.CookiePath)
	}
	if st.Size() > MaxCookieFile {
		return nil, fmt.Errorf("%s %s is %d bytes: an Erlang cookie is one line of at most %d characters; is this the right file?", where, e.CookiePath, st.Size(), erlang.MaxCookie)
	}
	f, err := os.Open(e.CookiePath)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", where, err)
	}
	defer f.Close()
	b, err := io.ReadAll(io.LimitReader(f, MaxCookieFile+1))
	if err != nil {
		return nil, fmt.Errorf("%s: %w", where, err)
	}
	if len(b) > MaxCookieFile {
		return nil, fmt.Errorf("%s %s grew past %d bytes while read", where, e.CookiePath, MaxCookieFile)
	}
	if _, err := erlang.CheckCookie(b); err != nil {
		return nil, fmt.Errorf("%s %s: %w", where, e.CookiePath, err)
	}
	return b, nil
}

// cookieUnder refuses a cookie file that, once symlinks are followed, is
// not under the topology's directory dir.
func cookieUnder(dir, p string) error {
	if dir == "" {
		dir = "."
	}
	rd, err := filepath.EvalSymlinks(dir)
	if err != nil {
		return err
	}
	if rd, err = filepath.Abs(rd); err != nil {
		return err
	}
	rp, err := filepath.EvalSymlinks(p)
	if err != nil {
		return err
	}
	if rp, err = filepath.Abs(rp); err != nil {
		return err
	}
	rel, err := filepath.Rel(rd, rp)
	if err != nil || !inventory.CookieInside(rel) {
		return fmt.Errorf("leads to %s, outside the topology's directory %s (through a symlink): keep the cookie beside the topology, or give a cookie kept elsewhere with --cookie-file", rp, rd)
	}
	return nil
}

// UseCookieFile makes the cookie come from path (--cookie-file) instead of
// the topology's cookie_file.
func UseCookieFile(c *inventory.Cluster, path string) error {
	if path == "" {
		return nil
	}
	if c.Erlang == nil {
		return fmt.Errorf("--cookie-file %s: the topology has no erlang section, so no cookie is deployed", path)
	}
	abs, err := filepath.Abs(path)
	if err != nil {
		return fmt.Errorf("--cookie-file: %w", err)
	}
	// CookieFile becomes the path as given: plans name it.
	c.Erlang.CookieFile, c.Erlang.CookiePath, c.Erlang.CookieFromFlag = path, abs, true
	return nil
}
