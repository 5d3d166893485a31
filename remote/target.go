// Package remote is arbo's only door to the network: SSH connections (host
// keys always verified against known_hosts, ssh-agent and identity files,
// ssh_config, jump hosts, keepalives), SFTP file access with atomic writes,
// and remote commands built from argument lists and quoted in one place.
package remote

import (
	"errors"
	"fmt"
	"net"
	"os"
	"os/user"
	"path/filepath"
	"strconv"
	"strings"
	"time"

	"github.com/arbo-project/arbo/inventory"
	"github.com/kevinburke/ssh_config"
)

// Defaults that OpenSSH and arbo use when nothing sets a value.
const (
	DefaultPort              = 22
	DefaultTimeout           = 10 * time.Second
	DefaultKeepaliveInterval = 15 * time.Second
	DefaultKeepaliveMax      = 3
)

// maxJumpDepth bounds chains of jump hosts: a longer chain is almost
// certainly a configuration loop that the name-based guard cannot see
// (ssh_config patterns can produce new names at every step).
const maxJumpDepth = 8

// Overrides are the values given on the command line; each one, when set,
// beats every other source.
type Overrides struct {
	SSHConfigFile  string   // --ssh-config; empty means ~/.ssh/config (missing is fine)
	IdentityFiles  []string // --identity-file (-i), may repeat
	KnownHostsFile string   // --known-hosts
	User           string   // --ssh-user
	Port           int      // --ssh-port
	TrustNewHosts  bool     // --trust-new-hosts: record unknown host keys, like OpenSSH's accept-new
}

// Target is everything needed to reach one machine, resolved once.
type Target struct {
	Machine string // the topology name (or the ssh_config host of a ProxyJump hop), for messages
	Alias   string // what `ssh ALIAS` would be given: the topology address
	Host    string // the address dialled (ssh_config HostName, else Alias)
	Port    int
	User    string

	IdentityFiles   []string // absolute paths; encrypted ones must be in the agent
	identityDefault bool     // the files are OpenSSH's defaults, not configured
	KnownHostsFiles []string // the first one receives keys recorded by TrustNewHosts
	HostKeyAlias    string   // known_hosts name instead of Host (ssh_config HostKeyAlias)
	TrustNewHosts   bool

	Jump *Target // reached through this machine first; nil for a direct connection

	Timeout           time.Duration // TCP connect, and separately the SSH handshake
	KeepaliveInterval time.Duration // keepalive@openssh.com every so often; <0 disables
	KeepaliveMax      int           // missed keepalives before the connection is closed
	ReadTimeout       time.Duration // each SFTP request of a read; 0: DefaultReadTimeout

	// AgentSocket overrides SSH_AUTH_SOCK; "none" disables the agent. Mostly for tests.
	AgentSocket string
}

// Addr is the host:port that is dialled.
func (t Target) Addr() string { return net.JoinHostPort(t.Host, strconv.Itoa(t.Port)) }

// KnownHostsName is the name under which OpenSSH looks the host key up:
// the HostKeyAlias as written (OpenSSH adds no port to an alias), else the
// HostName, as [host]:port when the port is not 22. It is in host:port form
// for knownhosts, which drops a :22.
func (t Target) KnownHostsName() string {
	if t.HostKeyAlias != "" {
		return net.JoinHostPort(t.HostKeyAlias, strconv.Itoa(DefaultPort))
	}
	return net.JoinHostPort(t.Host, strconv.Itoa(t.Port))
}

// String names the target the way messages do: machine (user@host:port via jump).
func (t Target) String() string {
	s := fmt.Sprintf("%s (%s@%s)", t.Machine, t.User, t.Addr())
	if t.Jump != nil {
		s += " via " + t.Jump.Machine
	}
	return s
}

// Resolve works out how to reach machine: each setting from the first of the
// command line, the machine's own ssh, the top-level ssh, ssh_config, and
// OpenSSH's defaults (TOPOLOGY.md "SSH").
func Resolve(c *inventory.Cluster, machine string, o Overrides) (Target, error) {
	cfg, err := loadSSHConfig(o.SSHConfigFile)
	if err != nil {
		return Target{}, err
	}
	r := &resolver{c: c, o: o, cfg: cfg}
	t, err := r.machine(machine, nil)
	if err != nil {
		return Target{}, err
	}
	return *t, nil
}

type resolver struct {
	c   *inventory.Cluster
	o   Overrides
	cfg *sshConfig
}

// machine resolves a topology machine; seen holds the chain so far, to
// refuse a jump cycle with the chain in the message.
func (r *resolver) machine(name string, seen []string) (*Target, error) {
	for _, s := range seen {
		if s == name {
			return nil, fmt.Errorf("ssh: jump hosts form a loop: %s: fix `ssh.jump` in the topology", strings.Join(append(seen, name), " -> "))
		}
	}
	if len(seen) >= maxJumpDepth {
		return nil, fmt.Errorf("ssh: more than %d jump hosts in a row to reach %s: check `ssh.jump` and ProxyJump", maxJumpDepth, seen[0])
	}
	if r.c == nil || (!r.c.IsGateway(name) && r.c.Host(name) == nil) {
		return nil, fmt.Errorf("ssh: no machine named %q in the topology", name)
	}
	m := r.c.MachineSSH(name)
	alias := m.Address
	if alias == "" {
		alias = name // like `ssh NAME`: ssh_config may know it
	}
	set := settings{
		user:  m.User,
		port:  m.Port,
		kh:    r.topoPath(m.KnownHosts),
		tmo:   m.Timeout,
		jump:  m.Jump,
		cmdUP: true,
	}
	if m.IdentityFile != "" {
		set.ids = []string{r.topoPath(m.IdentityFile)}
	}
	t, err := r.build(name, alias, set, seen)
	if err != nil {
		return nil, err
	}
	if m.Jump != "" {
		j, err := r.machine(m.Jump, append(seen, name))
		if err != nil {
			return nil, fmt.Errorf("machine %s: jump host %s: %w", name, m.Jump, err)
		}
		t.Jump = j
	}
	return t, nil
}

// settings are the values found above ssh_config for one target.
type settings struct {
	user  string
	port  int
	ids   []string
	kh    string
	tmo   time.Duration
	jump  string // a topology machine; when set, ssh_config's ProxyJump is ignored
	cmdUP bool   // the command line's --ssh-user/--ssh-port apply (not to ProxyJump hops, as in OpenSSH)
}

func (r *resolver) build(machine, alias string, s settings, seen []string) (*Target, error) {
	cfg := r.cfg
	t := &Target{Machine: machine, Alias: alias, TrustNewHosts: r.o.TrustNewHosts}

	hostName := cfg.get(alias, "HostName")
	if hostName != "" {
		t.Host = expandTokens(hostName, alias, "", "", 0)
	} else {
		t.Host = alias
	}

	switch {
	case s.cmdUP && r.o.Port != 0:
		t.Port = r.o.Port
	case s.port != 0:
		t.Port = s.port
	case cfg.get(alias, "Port") != "":
		p, err := strconv.Atoi(cfg.get(alias, "Port"))
		if err != nil || p <= 0 || p > 65535 {
			return nil, fmt.Errorf("machine %s: %s: Host %s: Port %q is not a port number", machine, cfg.path, alias, cfg.get(alias, "Port"))
		}
		t.Port = p
	default:
		t.Port = DefaultPort
	}

	switch {
	case s.cmdUP && r.o.User != "":
		t.User = r.o.User
	case s.user != "":
		t.User = s.user
	case cfg.get(alias, "User") != "":
		t.User = cfg.get(alias, "User")
	default:
		t.User = localUser()
	}
	if t.User == "" {
		return nil, fmt.Errorf("machine %s: no SSH user: set `ssh.user` in the topology", machine)
	}

	switch {
	case len(r.o.IdentityFiles) > 0:
		for _, f := range r.o.IdentityFiles {
			t.IdentityFiles = append(t.IdentityFiles, expandPath(f))
		}
	case len(s.ids) > 0:
		t.IdentityFiles = s.ids
	case len(cfg.getAll(alias, "IdentityFile")) > 0:
		for _, f := range cfg.getAll(alias, "IdentityFile") {
			if strings.EqualFold(f, "none") {
				continue
			}
			t.IdentityFiles = append(t.IdentityFiles, expandPath(expandTokens(f, alias, t.Host, t.User, t.Port)))
		}
	default:
		t.identityDefault = true
		for _, n := range []string{"id_ed25519", "id_ecdsa", "id_rsa"} {
			p := filepath.Join(homeDir(), ".ssh", n)
			if _, err := os.Stat(p); err == nil {
				t.IdentityFiles = append(t.IdentityFiles, p)
			}
		}
	}

	switch {
	case r.o.KnownHostsFile != "":
		t.KnownHostsFiles = []string{expandPath(r.o.KnownHostsFile)}
	case s.kh != "":
		t.KnownHostsFiles = []string{s.kh}
	case cfg.get(alias, "UserKnownHostsFile") != "":
		for _, f := range strings.Fields(cfg.get(alias, "UserKnownHostsFile")) {
			if strings.EqualFold(f, "none") {
				continue
			}
			t.KnownHostsFiles = append(t.KnownHostsFiles, expandPath(expandTokens(f, alias, t.Host, t.User, t.Port)))
		}
	}
	if len(t.KnownHostsFiles) == 0 {
		// OpenSSH's "none" means "no file": arbo never connects unchecked,
		// so the default file stays the one consulted.
		t.KnownHostsFiles = []string{filepath.Join(homeDir(), ".ssh", "known_hosts")}
	}

	if a := cfg.get(alias, "HostKeyAlias"); a != "" {
		t.HostKeyAlias = a
	}

	t.Timeout = s.tmo
	if t.Timeout == 0 {
		if v := cfg.get(alias, "ConnectTimeout"); v != "" {
			if n, err := strconv.Atoi(v); err == nil && n > 0 {
				t.Timeout = time.Duration(n) * time.Second
			}
		}
	}
	if t.Timeout == 0 {
		t.Timeout = DefaultTimeout
	}
	t.KeepaliveInterval = DefaultKeepaliveInterval
	if v := cfg.get(alias, "ServerAliveInterval"); v != "" {
		if n, err := strconv.Atoi(v); err == nil && n > 0 {
			t.KeepaliveInterval = time.Duration(n) * time.Second
		}
	}
	t.KeepaliveMax = DefaultKeepaliveMax
	if v := cfg.get(alias, "ServerAliveCountMax"); v != "" {
		if n, err := strconv.Atoi(v); err == nil && n > 0 {
			t.KeepaliveMax = n
		}
	}

	if s.jump == "" {
		if pj := cfg.get(alias, "ProxyJump"); pj != "" && !strings.EqualFold(pj, "none") {
			j, err := r.proxyJump(machine, pj, append(seen, machine))
			if err != nil {
				return nil, err
			}
			t.Jump = j
		}
	}
	return t, nil
}

// proxyJump resolves an ssh_config ProxyJump value: hops separated by
// commas, each [user@]host[:port] or ssh://[user@]host[:port]; the last hop
// is the one the target is reached through.
func (r *resolver) proxyJump(machine, spec string, seen []string) (*Target, error) {
	hops := strings.Split(spec, ",")
	var prev *Target
	for i, h := range hops {
		h = strings.TrimSpace(h)
		user, host, port, err := parseJumpSpec(h)
		if err != nil {
			return nil, fmt.Errorf("machine %s: %s: ProxyJump %q: %w", machine, r.cfg.path, spec, err)
		}
		chain := append(append([]string(nil), seen...), hops[:i]...)
		for _, s := range chain {
			if s == host {
				return nil, fmt.Errorf("machine %s: ProxyJump hosts form a loop: %s -> %s: fix %s", machine, strings.Join(chain, " -> "), host, r.cfg.path)
			}
		}
		if len(chain) >= maxJumpDepth {
			return nil, fmt.Errorf("machine %s: more than %d jump hosts in a row: check ProxyJump in %s", machine, maxJumpDepth, r.cfg.path)
		}
		s := settings{user: user, port: port}
		if i > 0 {
			// Earlier hops reach this one: its own ProxyJump is ignored, as in OpenSSH.
			s.jump = hops[i-1]
		}
		t, err := r.build(host, host, s, chain)
		if err != nil {
			return nil, err
		}
		if i > 0 {
			t.Jump = prev
		}
		prev = t
	}
	return prev, nil
}

func parseJumpSpec(h string) (user, host string, port int, err error) {
	h = strings.TrimPrefix(h, "ssh://")
	if h == "" {
		return "", "", 0, errors.New("empty hop")
	}
	if at := strings.LastIndex(h, "@"); at >= 0 {
		user, h = h[:at], h[at+1:]
	}
	host = h
	if strings.HasPrefix(h, "[") || strings.Count(h, ":") == 1 {
		hh, p, splitErr := net.SplitHostPort(h)
		if splitErr == nil {
			n, convErr := strconv.Atoi(p)
			if convErr != nil || n <= 0 || n > 65535 {
				return "", "", 0, fmt.Errorf("port %q is not a port number", p)
			}
			host, port = hh, n
		} else if strings.HasPrefix(h, "[") {
			host = strings.Trim(h, "[]")
		}
	}
	if host == "" {
		return "", "", 0, fmt.Errorf("hop %q names no host", h)
	}
	return user, host, port, nil
}

// topoPath expands ~ and makes a path from the topology relative to the
// topology file's directory, like cookie_file.
func (r *resolver) topoPath(p string) string {
	if p == "" {
		return ""
	}
	p = expandPath(p)
	if !filepath.IsAbs(p) && r.c != nil && r.c.Dir != "" {
		p = filepath.Join(r.c.Dir, p)
	}
	return p
}

// sshConfig is one decoded ssh_config file (nil-safe: no file, no values).
type sshConfig struct {
	path string
	cfg  *ssh_config.Config
}

func loadSSHConfig(explicit string) (*sshConfig, error) {
	p := explicit
	if p == "" {
		p = filepath.Join(homeDir(), ".ssh", "config")
	} else {
		p = expandPath(p)
	}
	f, err := os.Open(p)
	if err != nil {
		if explicit == "" && errors.Is(err, os.ErrNotExist) {
			return &sshConfig{path: p}, nil
		}
		return nil, fmt.Errorf("ssh config: %w: check --ssh-config", err)
	}
	defer f.Close()
	cfg, err := ssh_config.Decode(f)
	if err != nil {
		return nil, fmt.Errorf("ssh config %s: %w", p, err)
	}
	return &sshConfig{path: p, cfg: cfg}, nil
}

func (c *sshConfig) get(alias, key string) string {
	if c == nil || c.cfg == nil {
		return ""
	}
	v, err := c.cfg.Get(alias, key)
	if err != nil {
		return ""
	}
	return unquote(strings.TrimSpace(v))
}

func (c *sshConfig) getAll(alias, key string) []string {
	if c == nil || c.cfg == nil {
		return nil
	}
	vs, err := c.cfg.GetAll(alias, key)
	if err != nil {
		return nil
	}
	out := make([]string, 0, len(vs))
	for _, v := range vs {
		if v = unquote(strings.TrimSpace(v)); v != "" {
			out = append(out, v)
		}
	}
	return out
}

func unquote(v string) string {
	if len(v) >= 2 && v[0] == '"' && v[len(v)-1] == '"' {
		return v[1 : len(v)-1]
	}
	return v
}

// expandTokens handles the ssh_config tokens arbo can know: %% %d %h %n %p
// %r %u. An unknown token is left as written.
func expandTokens(v, alias, host, remoteUser string, port int) string {
	if !strings.Contains(v, "%") {
		return v
	}
	if host == "" {
		host = alias
	}
	var b strings.Builder
	for i := 0; i < len(v); i++ {
		if v[i] != '%' || i+1 == len(v) {
			b.WriteByte(v[i])
			continue
		}
		i++
		switch v[i] {
		case '%':
			b.WriteByte('%')
		case 'd':
			b.WriteString(homeDir())
		case 'h':
			b.WriteString(host)
		case 'n':
			b.WriteString(alias)
		case 'p':
			b.WriteString(strconv.Itoa(port))
		case 'r':
			b.WriteString(remoteUser)
		case 'u':
			b.WriteString(localUser())
		default:
			b.WriteByte('%')
			b.WriteByte(v[i])
		}
	}
	return b.String()
}

func expandPath(p string) string {
	if p == "~" {
		return homeDir()
	}
	if strings.HasPrefix(p, "~/") {
		return filepath.Join(homeDir(), p[2:])
	}
	return p
}

func homeDir() string {
	if h, err := os.UserHomeDir(); err == nil {
		return h
	}
	if u, err := user.Current(); err == nil {
		return u.HomeDir
	}
	return "/"
}

func localUser() string {
	if u, err := user.Current(); err == nil && u.Username != "" {
		return u.Username
	}
	return os.Getenv("USER")
}
