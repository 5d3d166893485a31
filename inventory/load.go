package inventory

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"net/netip"
	"os"
	"path/filepath"
	"regexp"
	"sort"
	"strconv"
	"strings"
	"time"

	"gopkg.in/yaml.v3"
)

// Limits that keep a hostile or mistaken file from exhausting memory. The
// node bound is checked on the raw bytes before the YAML parser builds a
// tree, so a file of millions of tiny list items fails before it costs
// memory; 5,000 hosts × 20 jails need about 2.1 million of it. The worst
// file under the bound (a flat list of 1.25 million items) peaks near 300 MB.
const (
	MaxFileSize = 16 << 20 // bytes
	MaxNodes    = 2_500_000
)

// Load reads, decodes, defaults and validates the topology file at path.
// A file that does not load returns a *LoadError listing every problem.
func Load(path string) (*Cluster, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, fmt.Errorf("topology: %w", err)
	}
	defer f.Close()
	data, err := io.ReadAll(io.LimitReader(f, MaxFileSize+1))
	if err != nil {
		return nil, fmt.Errorf("topology: reading %s: %w", path, err)
	}
	return Parse(path, data)
}

// Parse decodes, defaults and validates a topology read from file (a name
// used in problems and to resolve relative paths such as cookie_file).
func Parse(file string, data []byte) (*Cluster, error) {
	l := &loader{file: file, pos: map[string]Pos{}, gwPrefix: map[int]bool{}}
	c := l.parse(data)
	if c == nil {
		return nil, l.err()
	}
	// Validation runs even after decoding problems, so that one run reports
	// every problem; its checks skip values that did not decode.
	applyDefaults(c)
	c.index()
	l.validate(c)
	if len(l.probs) > 0 {
		return nil, l.err()
	}
	return c, nil
}

// loader carries the state of one Parse: the problems found so far and the
// positions of every key path.
type loader struct {
	file  string
	probs []Problem
	pos   map[string]Pos
	// gwPrefix records which gateway interfaces wrote address/prefix, which
	// the model folds into Prefix but validation must tell apart.
	gwPrefix map[int]bool
}

func (l *loader) err() error {
	sort.SliceStable(l.probs, func(i, j int) bool {
		a, b := l.probs[i].Pos, l.probs[j].Pos
		if a.Line != b.Line {
			return a.Line < b.Line
		}
		return a.Col < b.Col
	})
	// One mistake can be reported by two rules at the same place with the same
	// words (a name that is both malformed and duplicated is not): keep one.
	out := l.probs[:0]
	for i, p := range l.probs {
		if i > 0 && p == l.probs[i-1] {
			continue
		}
		out = append(out, p)
	}
	return &LoadError{Problems: out}
}

func (l *loader) add(p Pos, path, format string, args ...any) {
	l.probs = append(l.probs, Problem{File: l.file, Pos: p, Path: path, Msg: fmt.Sprintf(format, args...)})
}

func npos(n *yaml.Node) Pos { return Pos{Line: n.Line, Col: n.Column} }

var yamlLine = regexp.MustCompile(`^yaml: line (\d+): (.*)$`)

func (l *loader) parse(data []byte) (c *Cluster) {
	if len(data) > MaxFileSize {
		l.add(Pos{}, "", "file is larger than %d MiB; a topology is never that big", MaxFileSize>>20)
		return nil
	}
	if bound := nodeBound(data); bound > MaxNodes {
		l.add(Pos{}, "", "file has too many YAML items (up to %d, at most %d allowed)", bound, MaxNodes)
		return nil
	}
	if bad, ok := badByte(data); !ok {
		l.add(bad.Pos, "", "%s", bad.Msg)
		return nil
	}
	var doc yaml.Node
	dec := yaml.NewDecoder(bytes.NewReader(data))
	if err := safeDecode(dec, &doc); err != nil {
		if errors.Is(err, io.EOF) {
			l.add(Pos{Line: 1, Col: 1}, "", "empty file; a topology starts with version: 1")
			return nil
		}
		l.yamlError(err)
		return nil
	}
	var extra yaml.Node
	if err := safeDecode(dec, &extra); err == nil {
		l.add(npos(&extra), "", "a second YAML document; a topology file holds one")
		return nil
	} else if !errors.Is(err, io.EOF) {
		l.yamlError(err)
		return nil
	}
	if !l.scan(&doc) {
		return nil
	}
	root := &doc
	if root.Kind == yaml.DocumentNode {
		if len(root.Content) == 0 {
			l.add(Pos{Line: 1, Col: 1}, "", "empty file; a topology starts with version: 1")
			return nil
		}
		root = root.Content[0]
	}
	c = &Cluster{File: l.file, Dir: filepath.Dir(l.file), Positions: l.pos}
	l.top(c, root)
	return c
}

// safeDecode turns a parser panic into an error: the loader never panics on
// input, whatever the YAML library does.
func safeDecode(dec *yaml.Decoder, n *yaml.Node) (err error) {
	defer func() {
		if r := recover(); r != nil {
			err = fmt.Errorf("yaml: cannot parse: %v", r)
		}
	}()
	return dec.Decode(n)
}

func (l *loader) yamlError(err error) {
	msg := err.Error()
	if m := yamlLine.FindStringSubmatch(msg); m != nil {
		line, _ := strconv.Atoi(m[1])
		l.add(Pos{Line: line, Col: 1}, "", "YAML syntax: %s", m[2])
		return
	}
	l.add(Pos{}, "", "YAML syntax: %s", strings.TrimPrefix(msg, "yaml: "))
}

// nodeBound is an upper bound of the nodes the parser would build: every node
// but the document's first hangs off an indicator or a line break, and each
// of those carries at most two (a key and its value).
func nodeBound(data []byte) int {
	n := 2
	for _, b := range data {
		switch b {
		case ',', ':', '-', '\n', '[', '{', '?':
			n += 2
		}
	}
	return n
}

// scan refuses anchors, aliases and merge keys (an alias can multiply a small
// file into a huge tree; a topology never needs one) and counts nodes.
func (l *loader) scan(doc *yaml.Node) bool {
	stack := []*yaml.Node{doc}
	count := 0
	ok := true
	for len(stack) > 0 {
		n := stack[len(stack)-1]
		stack = stack[:len(stack)-1]
		count++
		if count > MaxNodes {
			l.add(Pos{}, "", "file has more than %d YAML items", MaxNodes)
			return false
		}
		if n.Kind == yaml.AliasNode {
			l.add(npos(n), "", "YAML alias *%s: aliases and anchors are not allowed in a topology; write the value out", n.Value)
			ok = false
			continue
		}
		if n.Anchor != "" {
			l.add(npos(n), "", "YAML anchor &%s: aliases and anchors are not allowed in a topology; write the value out", n.Anchor)
			ok = false
		}
		stack = append(stack, n.Content...)
	}
	return ok
}

// ---- generic walkers ----

func join(path, key string) string {
	if path == "" {
		return key
	}
	return path + "." + key
}

func idx(path string, i int) string { return path + "[" + strconv.Itoa(i) + "]" }

func kindName(n *yaml.Node) string {
	switch n.Kind {
	case yaml.MappingNode:
		return "a mapping"
	case yaml.SequenceNode:
		return "a list"
	case yaml.ScalarNode:
		switch n.ShortTag() {
		case "!!null":
			return "nothing"
		case "!!int", "!!float":
			return "a number"
		case "!!bool":
			return "a boolean"
		}
		return fmt.Sprintf("%q", n.Value)
	}
	return "something else"
}

// mapping walks a mapping node with known keys, reporting wrong kinds,
// duplicates and unknown keys; each is called for every known key in file
// order. known nil means any key (a name map). It returns the keys seen.
func (l *loader) mapping(path string, n *yaml.Node, known []string, each func(key, p string, k, v *yaml.Node)) map[string]bool {
	if n.Kind != yaml.MappingNode {
		what := "a mapping"
		if path == "" {
			what = "a mapping of keys (version, cluster, …)"
		}
		l.add(npos(n), path, "expected %s, found %s", what, kindName(n))
		return nil
	}
	seen := make(map[string]bool, len(n.Content)/2)
	for i := 0; i+1 < len(n.Content); i += 2 {
		k, v := n.Content[i], n.Content[i+1]
		if k.Kind != yaml.ScalarNode {
			l.add(npos(k), path, "a key must be a plain word, found %s", kindName(k))
			continue
		}
		key := k.Value
		p := join(path, key)
		if known == nil {
			p = path + "." + key
			if strings.ContainsAny(key, "./[]\" ") || key == "" {
				p = path + "[" + strconv.Quote(key) + "]"
			}
		}
		if seen[key] {
			l.add(npos(k), p, "duplicate key (already set above)")
			continue
		}
		seen[key] = true
		if key == "<<" && k.Tag == "!!merge" {
			l.add(npos(k), p, "merge keys (<<) are not allowed in a topology; write the keys out")
			continue
		}
		if known != nil && !contains(known, key) {
			if s := suggest(key, known); s != "" {
				l.add(npos(k), p, "unknown key (did you mean %q?)", s)
			} else {
				l.add(npos(k), p, "unknown key (known here: %s)", strings.Join(known, ", "))
			}
			continue
		}
		l.pos[p] = npos(v)
		each(key, p, k, v)
	}
	return seen
}

func contains(list []string, s string) bool {
	for _, x := range list {
		if x == s {
			return true
		}
	}
	return false
}

func (l *loader) require(path string, n *yaml.Node, seen map[string]bool, keys ...string) {
	if seen == nil {
		return
	}
	for _, k := range keys {
		if !seen[k] {
			l.add(npos(n), path, "missing key %q", k)
		}
	}
}

func (l *loader) seq(path string, n *yaml.Node, each func(i int, p string, item *yaml.Node)) {
	if n.Kind != yaml.SequenceNode {
		l.add(npos(n), path, "expected a list, found %s", kindName(n))
		return
	}
	for i, item := range n.Content {
		p := idx(path, i)
		l.pos[p] = npos(item)
		each(i, p, item)
	}
}

func (l *loader) scalar(path string, n *yaml.Node, what string) bool {
	if n.Kind != yaml.ScalarNode || n.ShortTag() == "!!null" {
		l.add(npos(n), path, "expected %s, found %s", what, kindName(n))
		return false
	}
	return true
}

func (l *loader) str(path string, n *yaml.Node) string {
	if !l.scalar(path, n, "a string") {
		return ""
	}
	if n.Value == "" {
		l.add(npos(n), path, "empty value")
	}
	return n.Value
}

func (l *loader) integer(path string, n *yaml.Node) int {
	if !l.scalar(path, n, "a number") {
		return 0
	}
	if n.ShortTag() != "!!int" {
		l.add(npos(n), path, "expected a whole number, found %s", kindName(n))
		return 0
	}
	v, err := strconv.ParseInt(strings.ReplaceAll(n.Value, "_", ""), 0, 32)
	if err != nil {
		l.add(npos(n), path, "number %s out of range", n.Value)
		return 0
	}
	return int(v)
}

func (l *loader) boolean(path string, n *yaml.Node) bool {
	if !l.scalar(path, n, "true or false") {
		return false
	}
	if n.ShortTag() != "!!bool" {
		l.add(npos(n), path, "expected true or false, found %s", kindName(n))
		return false
	}
	return n.Value == "true" || n.Value == "True" || n.Value == "TRUE"
}

func (l *loader) strList(path string, n *yaml.Node) []string {
	var out []string
	l.seq(path, n, func(_ int, p string, item *yaml.Node) {
		out = append(out, l.str(p, item))
	})
	return out
}

func (l *loader) addr(path string, n *yaml.Node) netip.Addr {
	s := l.str(path, n)
	if s == "" {
		return netip.Addr{}
	}
	a, err := netip.ParseAddr(s)
	if err != nil {
		if strings.Contains(s, "/") {
			l.add(npos(n), path, "%q: expected an address without /prefix", s)
		} else {
			l.add(npos(n), path, "%q is not an IP address", s)
		}
		return netip.Addr{}
	}
	if a.Zone() != "" {
		l.add(npos(n), path, "%q: an address with a %%zone is not allowed", s)
		return netip.Addr{}
	}
	return a
}

// cidr parses a network in CIDR form and insists that it is canonical: a
// prefix with host bits set is a typo as often as not.
func (l *loader) cidr(path string, n *yaml.Node) netip.Prefix {
	s := l.str(path, n)
	if s == "" {
		return netip.Prefix{}
	}
	p, err := netip.ParsePrefix(s)
	if err != nil {
		l.add(npos(n), path, "%q is not a CIDR (expected ADDRESS/PREFIX, e.g. 10.20.1.0/24)", s)
		return netip.Prefix{}
	}
	if p.Addr().Zone() != "" {
		l.add(npos(n), path, "%q: a CIDR with a %%zone is not allowed", s)
		return netip.Prefix{}
	}
	if m := p.Masked(); m != p {
		l.add(npos(n), path, "%q has host bits set; the network is %s", s, m)
		return m
	}
	return p
}

// ports parses a number or MIN-MAX.
func (l *loader) ports(path string, n *yaml.Node) PortRange {
	if !l.scalar(path, n, "a port or MIN-MAX") {
		return PortRange{}
	}
	s := n.Value
	var r PortRange
	bad := func() PortRange {
		l.add(npos(n), path, "%q: expected a port (1-65535) or a range MIN-MAX", s)
		return PortRange{}
	}
	if lo, hi, ok := strings.Cut(s, "-"); ok {
		a, err1 := strconv.Atoi(strings.TrimSpace(lo))
		b, err2 := strconv.Atoi(strings.TrimSpace(hi))
		if err1 != nil || err2 != nil {
			return bad()
		}
		r = PortRange{a, b}
	} else {
		if n.ShortTag() != "!!int" && n.ShortTag() != "!!str" {
			return bad()
		}
		a, err := strconv.Atoi(s)
		if err != nil {
			return bad()
		}
		r = PortRange{a, a}
	}
	if r.Min < 1 || r.Max > 65535 || r.Min > 65535 || r.Max < 1 {
		l.add(npos(n), path, "%q: ports are 1-65535", s)
		return PortRange{}
	}
	if r.Min > r.Max {
		l.add(npos(n), path, "%q: range out of order (write %d-%d)", s, r.Max, r.Min)
		return PortRange{}
	}
	return r
}

// ---- the schema ----

var topKeys = []string{"version", "cluster", "domain", "ssh", "management", "freebsd_release",
	"networks", "gateway", "tiers", "erlang", "dns", "hosts", "flavours", "rc_conf", "accept"}

func (l *loader) top(c *Cluster, root *yaml.Node) {
	seen := l.mapping("", root, topKeys, func(key, p string, k, v *yaml.Node) {
		switch key {
		case "version":
			if v.Kind == yaml.ScalarNode && v.ShortTag() == "!!int" && v.Value == "1" {
				c.Version = 1
			} else if v.Kind == yaml.ScalarNode && v.Value == "1" {
				l.add(npos(v), p, "version must be the number 1, not a string")
				c.Version = -1
			} else {
				l.add(npos(v), p, "version %s: arbo knows version 1", v.Value)
				c.Version = -1
			}
		case "cluster":
			c.Name = l.str(p, v)
		case "domain":
			c.Domain = strings.TrimSuffix(l.str(p, v), ".")
		case "ssh":
			c.SSH = l.ssh(p, v, false)
		case "management":
			l.seq(p, v, func(_ int, ip string, item *yaml.Node) {
				c.Management = append(c.Management, l.source(ip, item, true))
			})
		case "freebsd_release":
			c.FreeBSDRelease = l.str(p, v)
		case "networks":
			l.mapping(p, v, nil, func(name, np string, k, nv *yaml.Node) {
				c.Networks = append(c.Networks, l.network(name, np, k, nv))
			})
		case "gateway":
			c.Gateway = l.gateway(p, v)
		case "tiers":
			l.mapping(p, v, nil, func(name, tp string, k, tv *yaml.Node) {
				c.Tiers = append(c.Tiers, l.tier(name, tp, k, tv))
			})
		case "erlang":
			c.Erlang = l.erlang(p, v)
		case "dns":
			c.DNS = l.dns(p, v)
		case "hosts":
			l.seq(p, v, func(_ int, hp string, item *yaml.Node) {
				c.Hosts = append(c.Hosts, l.host(hp, item))
			})
		case "flavours":
			l.mapping(p, v, nil, func(name, fp string, k, fv *yaml.Node) {
				c.Flavours = append(c.Flavours, l.flavour(name, fp, k, fv))
			})
		case "rc_conf":
			c.RCConf = l.rcConf(p, v)
		case "accept":
			l.seq(p, v, func(_ int, ap string, item *yaml.Node) {
				c.Accept = append(c.Accept, l.accept(ap, item))
			})
		}
	})
	if seen == nil {
		return
	}
	if !seen["version"] {
		l.add(npos(root), "", "missing key \"version\" (arbo knows version 1)")
	}
	l.require("", root, seen, "cluster", "domain", "networks", "tiers", "hosts")
}

var sshKeys = []string{"address", "user", "port", "identity_file", "known_hosts", "jump", "timeout"}

func (l *loader) ssh(path string, n *yaml.Node, machine bool) SSH {
	var s SSH
	seen := l.mapping(path, n, sshKeys, func(key, p string, k, v *yaml.Node) {
		switch key {
		case "address":
			s.Address = l.str(p, v)
		case "user":
			s.User = l.str(p, v)
		case "port":
			s.Port = l.integer(p, v)
			if s.Port < 1 || s.Port > 65535 {
				l.add(npos(v), p, "port %s: ports are 1-65535", v.Value)
			}
		case "identity_file":
			s.IdentityFile = l.str(p, v)
		case "known_hosts":
			s.KnownHosts = l.str(p, v)
		case "jump":
			s.Jump = l.str(p, v)
		case "timeout":
			if !l.scalar(p, v, "a duration such as 10s") {
				return
			}
			d, err := time.ParseDuration(v.Value)
			if err != nil || d <= 0 {
				l.add(npos(v), p, "%q: expected a positive duration such as 10s or 1m30s", v.Value)
				return
			}
			s.Timeout = d
		}
	})
	if machine && seen != nil && !seen["address"] {
		l.add(npos(n), path, "missing key \"address\" (how arbo reaches this machine)")
	}
	return s
}

// source parses a `from` entry (a tier, gateway or CIDR) or, when mgmt is
// set, a `management` entry (a network name or CIDR).
func (l *loader) source(path string, n *yaml.Node, mgmt bool) Source {
	s := l.str(path, n)
	src := Source{Pos: npos(n)}
	switch {
	case s == "":
	case strings.ContainsAny(s, "/:") || (len(s) > 0 && s[0] >= '0' && s[0] <= '9'):
		if _, err := netip.ParseAddr(s); err == nil {
			l.add(npos(n), path, "%q is an address; write a CIDR (%s/%d for this one address)", s, s, map[bool]int{true: 32, false: 128}[strings.Contains(s, ".")])
			break
		}
		src.Kind = SourceCIDR
		src.CIDR = l.cidr(path, n)
	case !mgmt && s == "gateway":
		src.Kind = SourceGateway
	case mgmt:
		src.Kind = SourceNetwork
		src.Name = s
	default:
		src.Kind = SourceTier
		src.Name = s
	}
	return src
}

func (l *loader) network(name, path string, k, n *yaml.Node) *Network {
	nw := &Network{Name: name, Pos: npos(k)}
	seen := l.mapping(path, n, []string{"cidr", "interconnect"}, func(key, p string, _, v *yaml.Node) {
		switch key {
		case "cidr":
			nw.CIDR = l.cidr(p, v)
		case "interconnect":
			nw.Interconnect = l.boolean(p, v)
		}
	})
	l.require(path, n, seen, "cidr")
	return nw
}

var gatewayKeys = []string{"name", "kind", "ssh", "interfaces", "forwards", "dns"}

func (l *loader) gateway(path string, n *yaml.Node) *Gateway {
	g := &Gateway{Pos: npos(n)}
	seen := l.mapping(path, n, gatewayKeys, func(key, p string, k, v *yaml.Node) {
		switch key {
		case "name":
			g.Name = l.str(p, v)
		case "kind":
			g.Kind = l.str(p, v)
		case "ssh":
			g.SSH = l.ssh(p, v, true)
		case "interfaces":
			l.seq(p, v, func(i int, ip string, item *yaml.Node) {
				g.Interfaces = append(g.Interfaces, l.gatewayInterface(i, ip, item))
			})
		case "forwards":
			l.seq(p, v, func(_ int, fp string, item *yaml.Node) {
				g.Forwards = append(g.Forwards, l.forward(fp, item))
			})
		case "dns":
			g.DNS = l.boolean(p, v)
		}
	})
	l.require(path, n, seen, "name", "kind", "ssh", "interfaces")
	return g
}

var gwIfKeys = []string{"name", "device", "address", "network", "gateway", "failover"}

func (l *loader) gatewayInterface(i int, path string, n *yaml.Node) GatewayInterface {
	gi := GatewayInterface{Pos: npos(n)}
	seen := l.mapping(path, n, gwIfKeys, func(key, p string, k, v *yaml.Node) {
		switch key {
		case "name":
			gi.Name = l.str(p, v)
		case "device":
			gi.Device = l.str(p, v)
		case "address":
			s := l.str(p, v)
			if strings.Contains(s, "/") {
				pf, err := netip.ParsePrefix(s)
				if err != nil {
					l.add(npos(v), p, "%q is not ADDRESS/PREFIX", s)
					return
				}
				gi.Address, gi.Prefix = pf.Addr(), pf.Masked()
				l.gwPrefix[i] = true
			} else if s != "" {
				gi.Address = l.addr(p, v)
			}
		case "network":
			gi.Network = l.str(p, v)
		case "gateway":
			gi.Gateway = l.addr(p, v)
		case "failover":
			gi.Failover = l.boolean(p, v)
		}
	})
	l.require(path, n, seen, "name", "device", "address")
	return gi
}

func (l *loader) forward(path string, n *yaml.Node) Forward {
	f := Forward{Pos: npos(n)}
	seen := l.mapping(path, n, []string{"proto", "port", "to", "to_port"}, func(key, p string, k, v *yaml.Node) {
		switch key {
		case "proto":
			f.Proto = l.str(p, v)
		case "port":
			f.Port = l.ports(p, v)
		case "to":
			f.To = l.str(p, v)
		case "to_port":
			f.ToPort = l.ports(p, v)
		}
	})
	l.require(path, n, seen, "proto", "port", "to")
	return f
}

var tierKeys = []string{"role", "network", "services", "egress", "flavour"}

func (l *loader) tier(name, path string, k, n *yaml.Node) *Tier {
	t := &Tier{Name: name, Pos: npos(k)}
	seen := l.mapping(path, n, tierKeys, func(key, p string, _, v *yaml.Node) {
		switch key {
		case "role":
			t.Role = l.str(p, v)
		case "network":
			t.Network = l.str(p, v)
		case "services":
			l.seq(p, v, func(_ int, sp string, item *yaml.Node) {
				t.Services = append(t.Services, l.service(sp, item))
			})
		case "egress":
			t.Egress = l.egress(p, v)
		case "flavour":
			t.Flavour = l.str(p, v)
		}
	})
	l.require(path, n, seen, "role", "network")
	return t
}

func (l *loader) service(path string, n *yaml.Node) Service {
	s := Service{Pos: npos(n)}
	seen := l.mapping(path, n, []string{"name", "proto", "port", "from", "erlang"}, func(key, p string, k, v *yaml.Node) {
		switch key {
		case "name":
			s.Name = l.str(p, v)
		case "proto":
			s.Proto = l.str(p, v)
		case "port":
			s.Ports = l.ports(p, v)
		case "from":
			l.seq(p, v, func(_ int, fp string, item *yaml.Node) {
				s.From = append(s.From, l.source(fp, item, false))
			})
		case "erlang":
			s.Erlang = l.boolean(p, v)
		}
	})
	l.require(path, n, seen, "name")
	if seen == nil {
		return s
	}
	switch {
	case s.Erlang && seen["port"]:
		l.add(l.pos[path+".port"], path+".port", "an erlang service has no port: it is 4369 plus erlang.dist_ports")
	case s.Erlang && seen["proto"] && s.Proto != "tcp":
		l.add(l.pos[path+".proto"], path+".proto", "an erlang service is tcp")
	case !s.Erlang && !seen["port"]:
		l.add(npos(n), path, "missing key \"port\" (only an erlang: true service has none)")
	case !s.Erlang && !seen["proto"]:
		l.add(npos(n), path, "missing key \"proto\" (tcp or udp)")
	}
	return s
}

func (l *loader) egress(path string, n *yaml.Node) Egress {
	e := Egress{Pos: npos(n)}
	switch n.Kind {
	case yaml.ScalarNode:
		switch n.Value {
		case EgressNone, EgressAny:
			e.Mode = n.Value
		default:
			l.add(npos(n), path, "egress %q: expected none, any, or a list of {to, proto, port}", n.Value)
		}
	case yaml.SequenceNode:
		e.Mode = EgressList
		l.seq(path, n, func(_ int, p string, item *yaml.Node) {
			r := EgressRule{Pos: npos(item)}
			seen := l.mapping(p, item, []string{"to", "proto", "port"}, func(key, kp string, _, v *yaml.Node) {
				switch key {
				case "to":
					r.To = l.cidr(kp, v)
				case "proto":
					r.Proto = l.str(kp, v)
				case "port":
					r.Ports = l.ports(kp, v)
				}
			})
			l.require(p, item, seen, "to")
			if seen != nil && seen["port"] && !seen["proto"] {
				l.add(npos(item), p, "a port needs a proto (tcp or udp)")
			}
			e.Rules = append(e.Rules, r)
		})
	default:
		l.add(npos(n), path, "expected none, any, or a list of {to, proto, port}, found %s", kindName(n))
	}
	return e
}

var erlangKeys = []string{"tiers", "basename", "node_host", "user", "dist_ports", "cookie_file",
	"discovery", "hidden", "consensus", "service", "tls", "epmd"}

func (l *loader) erlang(path string, n *yaml.Node) *Erlang {
	e := &Erlang{Pos: npos(n)}
	seen := l.mapping(path, n, erlangKeys, func(key, p string, k, v *yaml.Node) {
		switch key {
		case "tiers":
			e.Tiers = l.strList(p, v)
		case "basename":
			e.Basename = l.str(p, v)
		case "node_host":
			e.NodeHost = l.str(p, v)
		case "user":
			e.User = l.str(p, v)
		case "dist_ports":
			e.DistPorts = l.ports(p, v)
		case "cookie_file":
			e.CookieFile = l.str(p, v)
			e.CookiePos = npos(v)
		case "discovery":
			e.Discovery = l.str(p, v)
		case "hidden":
			e.Hidden = l.strList(p, v)
		case "consensus":
			e.Consensus = l.integer(p, v)
		case "service":
			e.Service = l.str(p, v)
		case "tls":
			e.TLS = l.boolean(p, v)
		case "epmd":
			e.NoEPMD = !l.boolean(p, v)
		}
	})
	l.require(path, n, seen, "tiers", "basename", "dist_ports", "cookie_file")
	return e
}

func (l *loader) dns(path string, n *yaml.Node) DNS {
	var d DNS
	l.mapping(path, n, []string{"records", "resolver_jail"}, func(key, p string, k, v *yaml.Node) {
		switch key {
		case "records":
			l.seq(p, v, func(_ int, rp string, item *yaml.Node) {
				d.Records = append(d.Records, l.record(rp, item))
			})
		case "resolver_jail":
			d.ResolverJail = l.str(p, v)
		}
	})
	return d
}

// addrList accepts one address or a list of them.
func (l *loader) addrList(path string, n *yaml.Node) []netip.Addr {
	if n.Kind == yaml.SequenceNode {
		var out []netip.Addr
		if len(n.Content) == 0 {
			l.add(npos(n), path, "empty list of addresses")
		}
		l.seq(path, n, func(_ int, p string, item *yaml.Node) {
			out = append(out, l.addr(p, item))
		})
		return out
	}
	return []netip.Addr{l.addr(path, n)}
}

func (l *loader) record(path string, n *yaml.Node) Record {
	r := Record{Pos: npos(n)}
	seen := l.mapping(path, n, []string{"name", "a", "aaaa", "cname", "srv"}, func(key, p string, k, v *yaml.Node) {
		switch key {
		case "name":
			r.Name = l.str(p, v)
		case "a":
			r.A = l.addrList(p, v)
		case "aaaa":
			r.AAAA = l.addrList(p, v)
		case "cname":
			r.CNAME = l.str(p, v)
		case "srv":
			l.seq(p, v, func(_ int, sp string, item *yaml.Node) {
				var s SRV
				seen := l.mapping(sp, item, []string{"priority", "weight", "port", "target"}, func(key, kp string, _, v *yaml.Node) {
					switch key {
					case "priority":
						s.Priority = l.integer(kp, v)
					case "weight":
						s.Weight = l.integer(kp, v)
					case "port":
						s.Port = l.integer(kp, v)
					case "target":
						s.Target = l.str(kp, v)
					}
				})
				l.require(sp, item, seen, "port", "target")
				r.SRV = append(r.SRV, s)
			})
		}
	})
	l.require(path, n, seen, "name")
	if seen != nil && !seen["a"] && !seen["aaaa"] && !seen["cname"] && !seen["srv"] {
		l.add(npos(n), path, "a record needs at least one of a, aaaa, cname, srv")
	}
	return r
}

var hostKeys = []string{"name", "ssh", "interfaces", "rc_conf", "uplink", "zfs", "freebsd_release", "jails"}

func (l *loader) host(path string, n *yaml.Node) *Host {
	h := &Host{Pos: npos(n)}
	seen := l.mapping(path, n, hostKeys, func(key, p string, k, v *yaml.Node) {
		switch key {
		case "name":
			h.Name = l.str(p, v)
		case "ssh":
			h.SSH = l.ssh(p, v, true)
		case "interfaces":
			l.seq(p, v, func(_ int, ip string, item *yaml.Node) {
				hi := HostInterface{Pos: npos(item)}
				s := l.mapping(ip, item, []string{"device", "network", "address"}, func(key, kp string, _, v *yaml.Node) {
					switch key {
					case "device":
						hi.Device = l.str(kp, v)
					case "network":
						hi.Network = l.str(kp, v)
					case "address":
						hi.Address = l.addr(kp, v)
					}
				})
				l.require(ip, item, s, "device", "network", "address")
				h.Interfaces = append(h.Interfaces, hi)
			})
		case "rc_conf":
			h.RCConf = l.rcConf(p, v)
		case "uplink":
			u := &Uplink{}
			s := l.mapping(p, v, []string{"device", "router"}, func(key, kp string, _, v *yaml.Node) {
				switch key {
				case "device":
					u.Device = l.str(kp, v)
				case "router":
					u.Router = l.addr(kp, v)
				}
			})
			l.require(p, v, s, "device", "router")
			h.Uplink = u
		case "zfs":
			z := &HostZFS{}
			s := l.mapping(p, v, []string{"dataset"}, func(key, kp string, _, v *yaml.Node) {
				z.Dataset = l.str(kp, v)
			})
			l.require(p, v, s, "dataset")
			h.ZFS = z
		case "freebsd_release":
			h.FreeBSDRelease = l.str(p, v)
		case "jails":
			l.seq(p, v, func(_ int, jp string, item *yaml.Node) {
				h.Jails = append(h.Jails, l.jail(jp, item))
			})
		}
	})
	l.require(path, n, seen, "name", "ssh")
	return h
}

var jailKeys = []string{"name", "tier", "ip", "flavour", "zfs", "start_after"}

func (l *loader) jail(path string, n *yaml.Node) *Jail {
	j := &Jail{Pos: npos(n)}
	seen := l.mapping(path, n, jailKeys, func(key, p string, k, v *yaml.Node) {
		switch key {
		case "name":
			j.Name = l.str(p, v)
		case "tier":
			j.Tier = l.str(p, v)
		case "ip":
			j.IPs = l.addrList(p, v)
		case "flavour":
			j.Flavour = l.str(p, v)
		case "zfs":
			z := &JailZFS{}
			l.mapping(p, v, []string{"quota"}, func(key, kp string, _, v *yaml.Node) {
				z.Quota = l.str(kp, v)
			})
			j.ZFS = z
		case "start_after":
			j.StartAfter = l.strList(p, v)
		}
	})
	if seen != nil && !seen["tier"] {
		l.add(npos(n), path, "ARBO001: missing key \"tier\" (every jail has exactly one tier)")
	}
	l.require(path, n, seen, "name", "ip")
	return j
}

func (l *loader) flavour(name, path string, k, n *yaml.Node) *Flavour {
	f := &Flavour{Name: name, Pos: npos(k)}
	l.mapping(path, n, []string{"packages", "files"}, func(key, p string, _, v *yaml.Node) {
		switch key {
		case "packages":
			f.Packages = l.strList(p, v)
		case "files":
			l.mapping(p, v, nil, func(fpath, fp string, _, fv *yaml.Node) {
				if !l.scalar(fp, fv, "the file's content (a string)") {
					return
				}
				f.Files = append(f.Files, FlavourFile{Path: fpath, Content: fv.Value})
			})
		}
	})
	sort.Slice(f.Files, func(a, b int) bool { return f.Files[a].Path < f.Files[b].Path })
	return f
}

func (l *loader) rcConf(path string, n *yaml.Node) []KV {
	var out []KV
	l.mapping(path, n, nil, func(name, p string, _, v *yaml.Node) {
		if !l.scalar(p, v, "a value (string, number or boolean)") {
			return
		}
		val := v.Value
		if v.ShortTag() == "!!bool" {
			// rc.conf speaks YES/NO; true/false would be a surprise there.
			val = map[bool]string{true: "YES", false: "NO"}[strings.EqualFold(val, "true")]
		}
		out = append(out, KV{Name: name, Value: val, Pos: npos(v)})
	})
	return out
}

func (l *loader) accept(path string, n *yaml.Node) Accept {
	a := Accept{Pos: npos(n)}
	seen := l.mapping(path, n, []string{"id", "machine", "subject", "reason"}, func(key, p string, k, v *yaml.Node) {
		switch key {
		case "id":
			a.ID = l.str(p, v)
		case "machine":
			a.Machine = l.str(p, v)
		case "subject":
			a.Subject = strings.TrimSpace(l.str(p, v))
		case "reason":
			a.Reason = strings.TrimSpace(l.str(p, v))
		}
	})
	l.require(path, n, seen, "id", "reason")
	return a
}

// applyDefaults is the one place where absent keys get their values.
func applyDefaults(c *Cluster) {
	tiers := map[string]*Tier{}
	for _, t := range c.Tiers {
		tiers[t.Name] = t
		if t.Egress.Mode == "" {
			t.Egress.Mode = EgressAny
			if t.Role == RoleData {
				t.Egress.Mode = EgressNone
			}
		}
		for i := range t.Services {
			if t.Services[i].Erlang && t.Services[i].Proto == "" {
				t.Services[i].Proto = "tcp"
			}
		}
	}
	if e := c.Erlang; e != nil {
		if e.User == "" {
			e.User = "root"
		}
		if e.NodeHost == "" {
			e.NodeHost = NodeHostAddress
		}
		if e.CookieFile != "" {
			e.CookiePath = e.CookieFile
			if !filepath.IsAbs(e.CookieFile) {
				e.CookiePath = filepath.Join(c.Dir, e.CookieFile)
			}
		}
	}
	for _, h := range c.Hosts {
		for _, j := range h.Jails {
			if j.Flavour == "" {
				if t := tiers[j.Tier]; t != nil {
					j.Flavour = t.Flavour
				}
			}
		}
	}
	// management names resolve to their networks' CIDRs here, so that every
	// consumer sees a prefix; unknown names stay unresolved for validation.
	nets := map[string]*Network{}
	for _, n := range c.Networks {
		nets[n.Name] = n
	}
	if g := c.Gateway; g != nil {
		for i, f := range g.Forwards {
			if f.ToPort == (PortRange{}) {
				g.Forwards[i].ToPort = f.Port
			}
		}
		for i, gi := range g.Interfaces {
			if n := nets[gi.Network]; n != nil && !gi.Prefix.IsValid() {
				g.Interfaces[i].Prefix = n.CIDR
			}
		}
	}
	for i, s := range c.Management {
		if s.Kind == SourceNetwork {
			if n := nets[s.Name]; n != nil {
				c.Management[i].CIDR = n.CIDR
			}
		}
	}
}
