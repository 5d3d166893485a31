// Package erlang renders the files an Erlang/Elixir release inside a jail
// needs to join the cluster: vm.args (distribution ports, -hidden, IPv6
// distribution), a shell-sourceable env file (RELEASE_DISTRIBUTION,
// RELEASE_NODE, RELEASE_COOKIE and the discovery settings) and the user's
// ~/.erlang.cookie. Rendering is pure: the caller reads the cookie file.
package erlang

import (
	"errors"
	"fmt"
	"strconv"
	"strings"

	"github.com/arbo-project/arbo/inventory"
	"github.com/arbo-project/arbo/jail"
	"github.com/arbo-project/arbo/state"
	"github.com/arbo-project/arbo/templates"
)

// Paths inside a jail.
const (
	Dir         = "/usr/local/etc/arbo"
	VMArgsPath  = Dir + "/vm.args"
	EnvPath     = Dir + "/env"
	CookieName  = ".erlang.cookie"
	DefaultUser = "root"

	// With erlang.tls: the options file of -ssl_dist_optfile and the PEM
	// files it names (sensitive, 0600, owned by erlang.user).
	SSLDistConfPath = Dir + "/ssl_dist.conf"
	DistCAPath      = Dir + "/dist-ca.pem"
	DistCertPath    = Dir + "/dist.pem"
	DistKeyPath     = Dir + "/dist.key"
)

// VMArgsData is what vm.args.tmpl receives.
type VMArgsData struct {
	Path     string // on the host: /usr/jails/<jail>/usr/local/etc/arbo/vm.args
	JailPath string // inside the jail: /usr/local/etc/arbo/vm.args
	EnvPath  string // inside the jail: /usr/local/etc/arbo/env
	Cluster  string
	Jail     string
	Tier     string
	DistMin  int  // inet_dist_listen_min
	DistMax  int  // inet_dist_listen_max
	Hidden   bool // the tier is in erlang.hidden
	IPv6     bool // the node address is IPv6: -proto_dist inet6_tcp (inet6_tls with TLS)
	// TLS is erlang.tls: -proto_dist inet_tls and -ssl_dist_optfile
	// SSLDistConf (inside the jail).
	TLS         bool
	SSLDistConf string
	// NoEPMD is epmd: false: -start_epmd false and -erl_epmd_port DistMin,
	// the one port every node listens on and dials.
	NoEPMD bool
}

// EnvData is what erlang-env.tmpl receives. Values are written in single
// quotes; none holds a single quote.
type EnvData struct {
	Path     string // on the host
	JailPath string // inside the jail
	Cluster  string
	Jail     string
	Vars     []EnvVar
}

// EnvVar is one exported variable.
type EnvVar struct {
	Name, Value string
}

// Home is the home directory of user inside a jail.
func Home(user string) string {
	if user == "" || user == "root" {
		return "/root"
	}
	return "/home/" + user
}

// MaxCookie is the longest cookie arbo deploys: Erlang keeps the cookie as
// an atom (erlang:set_cookie/1 takes an atom; -setcookie makes one), and an
// atom has at most 255 characters.
const MaxCookie = 255

// CheckCookie trims one trailing newline from the cookie file's content and
// checks what remains: not empty, printable ASCII without whitespace,
// quotes or backslashes (Erlang and Elixir's start scripts pass it on
// command lines and in the environment; Elixir recommends letters, digits
// and _). The error never shows the cookie.
func CheckCookie(raw []byte) ([]byte, error) {
	b := raw
	if n := len(b); n > 0 && b[n-1] == '\n' {
		b = b[:n-1]
		if n := len(b); n > 0 && b[n-1] == '\r' {
			b = b[:n-1]
		}
	}
	if len(b) == 0 {
		return nil, errors.New("the Erlang cookie is empty")
	}
	if len(b) > MaxCookie {
		return nil, fmt.Errorf("the Erlang cookie is %d characters long: at most %d (the cookie is an atom, and atoms are at most 255 characters); is this the right file?", len(b), MaxCookie)
	}
	for i, ch := range b {
		switch {
		case ch <= ' ' || ch >= 0x7f:
			return nil, fmt.Errorf("the Erlang cookie has a whitespace, control or non-ASCII byte at offset %d: only printable ASCII is allowed", i)
		case ch == '"' || ch == '\'' || ch == '\\' || ch == '`':
			return nil, fmt.Errorf("the Erlang cookie has a quote or backslash at offset %d: letters, digits and _ are recommended", i)
		}
	}
	return b, nil
}

// NodeHost is the host part of j's node name: its tier address, or its
// <jail>.<domain> with node_host: fqdn.
func NodeHost(c *inventory.Cluster, j *inventory.Jail) string {
	if c.Erlang != nil && c.Erlang.NodeHost == inventory.NodeHostFQDN {
		return j.Name + "." + c.Domain
	}
	return c.TierAddr(j).String()
}

// Render returns the Erlang files of every Erlang jail on h. cookie is the
// content of erlang.cookie_file.
func Render(c *inventory.Cluster, h *inventory.Host, ts *templates.Set, cookie []byte) ([]state.File, error) {
	e := c.Erlang
	if e == nil {
		return nil, nil
	}
	var jails []*inventory.Jail
	for _, j := range h.Jails {
		if c.IsErlangTier(j.Tier) {
			jails = append(jails, j)
		}
	}
	if len(jails) == 0 {
		return nil, nil
	}
	ck, err := CheckCookie(cookie)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", e.CookieFile, err)
	}
	user := e.User
	if user == "" {
		user = DefaultUser
	}
	var files []state.File
	for _, j := range jails {
		root := jail.Root(j.Name)
		var reload []state.Reload
		if e.Service != "" {
			reload = []state.Reload{{Kind: state.ReloadErlang, Target: j.Name}}
		}
		addr := c.TierAddr(j)
		vm := VMArgsData{
			Path: root + VMArgsPath, JailPath: VMArgsPath, EnvPath: EnvPath,
			Cluster: c.Name, Jail: j.Name, Tier: j.Tier,
			DistMin: e.DistPorts.Min, DistMax: e.DistPorts.Max,
			Hidden: c.IsHiddenTier(j.Tier), IPv6: addr.Is6() && !addr.Is4In6(),
			TLS: e.TLS, SSLDistConf: SSLDistConfPath, NoEPMD: e.NoEPMD,
		}
		b, err := ts.Execute("vm.args.tmpl", vm)
		if err != nil {
			return nil, fmt.Errorf("host %s: jail %s: vm.args: %w", h.Name, j.Name, err)
		}
		files = append(files, state.File{Path: vm.Path, Mode: 0o644, Owner: "root", Group: "wheel",
			Content: b, Jail: j.Name, Reload: reload, Source: "vm.args.tmpl"})

		env := EnvData{Path: root + EnvPath, JailPath: EnvPath, Cluster: c.Name, Jail: j.Name, Vars: []EnvVar{
			{"RELEASE_DISTRIBUTION", "name"},
			{"RELEASE_NODE", e.Basename + "@" + NodeHost(c, j)},
			{"RELEASE_COOKIE", string(ck)},
			{"ARBO_TIER", j.Tier},
		}}
		if e.Discovery != "" {
			env.Vars = append(env.Vars, EnvVar{"ARBO_DISCOVERY", e.Discovery + "." + c.Domain})
		}
		if e.Consensus > 0 {
			env.Vars = append(env.Vars, EnvVar{"ARBO_CONSENSUS", strconv.Itoa(e.Consensus)})
		}
		for _, v := range env.Vars {
			if strings.Contains(v.Value, "'") {
				return nil, fmt.Errorf("host %s: jail %s: %s cannot be written in single quotes", h.Name, j.Name, v.Name)
			}
		}
		b, err = ts.Execute("erlang-env.tmpl", env)
		if err != nil {
			return nil, fmt.Errorf("host %s: jail %s: env: %w", h.Name, j.Name, err)
		}
		files = append(files, state.File{Path: env.Path, Mode: 0o400, Owner: user, Group: "wheel",
			Content: b, Sensitive: true, Jail: j.Name, Reload: reload, Source: "erlang-env.tmpl", From: e.CookieFile})

		files = append(files, state.File{Path: root + Home(user) + "/" + CookieName, Mode: 0o400, Owner: user, Group: "wheel",
			Content: append([]byte(nil), ck...), Sensitive: true, Jail: j.Name, Reload: reload, Source: "erlang.cookie_file", From: e.CookieFile})
	}
	return files, nil
}

// TLSFiles are one node's TLS material, PEM encoded: the cluster CA's
// certificate, the node's certificate and its key.
type TLSFiles struct {
	CA, Cert, Key []byte
}

// SSLDistData is what ssl_dist.conf.tmpl receives.
type SSLDistData struct {
	Path     string // on the host
	JailPath string // inside the jail
	Cluster  string
	Jail     string
	Node     string // RELEASE_NODE
	CACert   string // inside the jail: DistCAPath
	Cert     string // DistCertPath
	Key      string // DistKeyPath
}

// RenderTLS returns, with erlang.tls, the TLS distribution files of every
// Erlang jail on h: ssl_dist.conf, and the CA certificate, the node's
// certificate and key from files (by jail name), which are sensitive and
// mode 0600. The caller has checked that each certificate names its node
// (package tlsca).
func RenderTLS(c *inventory.Cluster, h *inventory.Host, ts *templates.Set, files map[string]TLSFiles) ([]state.File, error) {
	e := c.Erlang
	if e == nil || !e.TLS {
		return nil, nil
	}
	user := e.User
	if user == "" {
		user = DefaultUser
	}
	var out []state.File
	for _, j := range h.Jails {
		if !c.IsErlangTier(j.Tier) {
			continue
		}
		tf, ok := files[j.Name]
		if !ok {
			return nil, fmt.Errorf("host %s: jail %s: no TLS certificate was read for this node", h.Name, j.Name)
		}
		root := jail.Root(j.Name)
		var reload []state.Reload
		if e.Service != "" {
			reload = []state.Reload{{Kind: state.ReloadErlang, Target: j.Name}}
		}
		d := SSLDistData{Path: root + SSLDistConfPath, JailPath: SSLDistConfPath, Cluster: c.Name, Jail: j.Name,
			Node: e.Basename + "@" + NodeHost(c, j), CACert: DistCAPath, Cert: DistCertPath, Key: DistKeyPath}
		b, err := ts.Execute("ssl_dist.conf.tmpl", d)
		if err != nil {
			return nil, fmt.Errorf("host %s: jail %s: ssl_dist.conf: %w", h.Name, j.Name, err)
		}
		out = append(out, state.File{Path: d.Path, Mode: 0o644, Owner: "root", Group: "wheel",
			Content: b, Jail: j.Name, Reload: reload, Source: "ssl_dist.conf.tmpl"})
		for _, f := range []struct {
			path, source string
			content      []byte
		}{
			{DistCAPath, "erlang.tls", tf.CA},
			{DistCertPath, "erlang.tls", tf.Cert},
			{DistKeyPath, "erlang.tls", tf.Key},
		} {
			out = append(out, state.File{Path: root + f.path, Mode: 0o600, Owner: user, Group: "wheel",
				Content: append([]byte(nil), f.content...), Sensitive: true, Jail: j.Name, Reload: reload, Source: f.source})
		}
	}
	return out, nil
}
