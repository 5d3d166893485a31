package pf

import (
	"fmt"
	"net/netip"
	"regexp"
	"strconv"
	"strings"
	"sync"
)

// This file parses pf.conf text into a Ruleset that eval.go can question.
// It reads macros, tables, `set skip` and filter rules; translation,
// normalization, queueing and the other options are read only far enough
// to find where they end (and which tags nat/rdr put on packets). Filter
// rules are parsed strictly: a word the parser does not understand is an
// error, because a checker that skips what it cannot read would report a
// firewall safer than it is.

// Ruleset is one parsed pf.conf.
type Ruleset struct {
	Name    string
	Macros  map[string]string
	Tables  map[string]*Table2
	Skip    []string // interfaces and groups of `set skip on`
	Rules   []Rule   // filter rules, in file order, lists kept (not expanded)
	NatTags []string // tags that nat/rdr/binat rules put on translated packets

	// Net says where this ruleset's host sits: which addresses are its
	// own and on which interface, and which interface leads where. Without
	// it every connection is judged as one inbound pass on an unnamed
	// interface.
	Net *Network

	mu   sync.Mutex // guards memo: Allows may be called from several goroutines
	memo pathMemo
}

// Table2 is a parsed `table <name> …` definition. (Table, in pf.go, is
// what the renderer writes.)
type Table2 struct {
	Name    string
	Line    int
	Entries []Host // Neg entries exclude, as pf's table negation does
	File    bool   // contents also come from a file: unknown here

	// single indexes the plain single-address entries when the table has
	// no other kind: a lookup is then one map probe, not a scan of what may
	// be thousands of jail addresses.
	single map[netip.Addr]bool
}

func (t *Table2) index() {
	for _, e := range t.Entries {
		if e.Kind != HostPrefix || e.Neg || !e.Prefix.IsSingleIP() {
			return
		}
	}
	t.single = make(map[netip.Addr]bool, len(t.Entries))
	for _, e := range t.Entries {
		t.single[e.Prefix.Addr()] = true
	}
}

// Action of a filter rule.
type Action string

const (
	Pass  Action = "pass"
	Block Action = "block"
	Match Action = "match"
)

// Rule is one filter rule. Every list is an OR over its entries, which is
// what pfctl's expansion of `{ … }` into one rule per combination means.
type Rule struct {
	Line      int
	Text      string // the source text, after macro expansion
	Action    Action
	Dir       string // "in", "out" or "" for both
	Quick     bool
	On        []Iface // empty: any interface
	Family    string  // "inet", "inet6" or ""
	Protos    []string
	From, To  []Host // empty: any
	FromPorts []PortOp
	ToPorts   []PortOp
	Flags     *TCPFlags // nil: pf's default S/SA for a pass with state
	Tag       string
	Tagged    string
	NotTagged bool
	ICMPType  bool // icmp-type/icmp6-type: matches ICMP only
	// Opaque, only in a parsed listing (ParseListing), is the word that
	// makes the rule one arbo cannot judge (nat-to, received-on, an anchor,
	// …); the rule's other fields are then incomplete, and Unknowns
	// reports it.
	Opaque string
}

// Iface is an `on` entry.
type Iface struct {
	Name string
	Neg  bool
}

// HostKind is what a host entry names.
type HostKind int

const (
	HostPrefix  HostKind = iota
	HostTable            // <name>
	HostSelf             // self
	HostIface            // em0, (em0), em0:network
	HostNoRoute          // no-route, urpf-failed: never a routed probe
)

// Host is one address entry of a rule or table.
type Host struct {
	Kind    HostKind
	Neg     bool
	Prefix  netip.Prefix
	Name    string // table or interface
	Network bool   // em0:network
}

// PortOp is one port condition.
type PortOp struct {
	Op     string // "=", "!=", "<", "<=", ">", ">=", ":", "<>", "><"
	Lo, Hi int
}

// TCPFlags is `flags X/Y` (Any: `flags any`).
type TCPFlags struct {
	Set, Mask uint8
	Any       bool
}

// ParseError is an error at a line of a named file.
type ParseError struct {
	File string
	Line int
	Msg  string
}

func (e *ParseError) Error() string { return fmt.Sprintf("%s:%d: %s", e.File, e.Line, e.Msg) }

// maxExpansion bounds macro expansion, so that a macro that names itself
// (or a chain of them) cannot loop or blow up.
const maxExpansion = 1 << 16

// Parse reads pf.conf text. name is used in errors ("name:line: what").
func Parse(name string, src []byte) (*Ruleset, error) { return parse(name, src, nil) }

func parse(name string, src []byte, shared *SharedTables) (*Ruleset, error) {
	p := &parser{shared: shared, rs: &Ruleset{Name: name, Macros: map[string]string{}, Tables: map[string]*Table2{}}}
	stmts, err := splitStatements(name, string(src))
	if err != nil {
		return nil, err
	}
	for _, st := range stmts {
		if err := p.statement(st); err != nil {
			return nil, err
		}
	}
	return p.rs, nil
}

type token struct {
	text   string
	quoted bool
}

type pstmt struct {
	line int
	toks []token
}

// splitStatements lexes src into statements: one per line, except that a
// backslash-newline continues a line and a newline inside { } does not end
// one. Comments run from # to the end of the line, outside quotes.
func splitStatements(name, src string) ([]pstmt, error) {
	var out []pstmt
	var cur []token
	line, start, depth := 1, 0, 0
	flush := func() {
		if len(cur) > 0 {
			out = append(out, pstmt{line: start, toks: cur})
		}
		cur = nil
	}
	for i := 0; i < len(src); {
		c := src[i]
		switch {
		case c == '\n':
			line++
			i++
			if depth == 0 {
				flush()
			}
		case c == '\\' && i+1 < len(src) && src[i+1] == '\n':
			line++
			i += 2
		case c == ' ' || c == '\t' || c == '\r' || c == '\f' || c == '\v':
			i++
		case c == '#':
			for i < len(src) && src[i] != '\n' {
				i++
			}
		case c == '"':
			j := i + 1
			for j < len(src) && src[j] != '"' && src[j] != '\n' {
				j++
			}
			if j >= len(src) || src[j] != '"' {
				return nil, &ParseError{name, line, "unterminated quoted string"}
			}
			if len(cur) == 0 {
				start = line
			}
			cur = append(cur, token{text: src[i+1 : j], quoted: true})
			i = j + 1
		default:
			if len(cur) == 0 {
				start = line
			}
			n := wordLen(src[i:])
			w := src[i : i+n]
			switch w {
			case "{":
				depth++
			case "}":
				if depth > 0 {
					depth--
				}
			}
			cur = append(cur, token{text: w})
			i += n
		}
	}
	if depth > 0 {
		return nil, &ParseError{name, start, "unbalanced { }"}
	}
	flush()
	return out, nil
}

// wordLen is the length of the token at the start of s (s is not empty and
// starts with no space, quote or #).
func wordLen(s string) int {
	switch s[0] {
	case '{', '}', '(', ')', ',', '/':
		return 1
	case '!':
		if len(s) > 1 && s[1] == '=' {
			return 2
		}
		return 1
	case '<':
		// <table> or an operator: <, <=, <>
		if j := strings.IndexByte(s, '>'); j > 1 && isName(s[1:j]) {
			return j + 1
		}
		if len(s) > 1 && (s[1] == '=' || s[1] == '>') {
			return 2
		}
		return 1
	case '>':
		if len(s) > 1 && (s[1] == '=' || s[1] == '<') {
			return 2
		}
		return 1
	case '=':
		return 1
	}
	n := 0
	for n < len(s) {
		c := s[n]
		if c == ' ' || c == '\t' || c == '\n' || c == '\r' || c == '\f' || c == '\v' || c == '#' || c == '"' ||
			c == '{' || c == '}' || c == '(' || c == ')' || c == ',' || c == '!' || c == '<' || c == '>' || c == '=' || c == '\\' {
			break
		}
		n++
	}
	if n == 0 {
		return 1
	}
	return n
}

func isName(s string) bool {
	for i := 0; i < len(s); i++ {
		c := s[i]
		if !(c == '_' || c == '-' || c == '.' || c >= '0' && c <= '9' || c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z') {
			return false
		}
	}
	return s != ""
}

var reMacroName = regexp.MustCompile(`^[A-Za-z][A-Za-z0-9_]*$`)

type parser struct {
	rs     *Ruleset
	shared *SharedTables
	// listing: the text is what pfctl printed of a loaded ruleset
	// (listing.go): a rule with a word arbo cannot judge is kept as opaque
	// instead of refused, and anchors are recorded.
	listing bool
}

func (p *parser) errf(line int, format string, a ...any) error {
	return &ParseError{p.rs.Name, line, fmt.Sprintf(format, a...)}
}

// expand replaces every $macro token by the tokens of its value, lexed
// again (a value may hold a brace list). Quoted tokens are left alone, as
// pfctl does.
func (p *parser) expand(st pstmt) ([]token, error) {
	var out []token
	budget := maxExpansion
	var walk func(toks []token, depth int) error
	walk = func(toks []token, depth int) error {
		for _, t := range toks {
			if t.quoted || !strings.HasPrefix(t.text, "$") {
				if budget--; budget < 0 {
					return p.errf(st.line, "macro expansion too large")
				}
				out = append(out, t)
				continue
			}
			name := t.text[1:]
			v, ok := p.rs.Macros[name]
			if !ok {
				return p.errf(st.line, "macro %q is not defined", name)
			}
			if depth > 32 {
				return p.errf(st.line, "macro %q nests too deep", name)
			}
			sub, err := splitStatements(p.rs.Name, strings.ReplaceAll(v, "\n", " "))
			if err != nil {
				return p.errf(st.line, "in macro %q: %v", name, err)
			}
			for _, s := range sub {
				if err := walk(s.toks, depth+1); err != nil {
					return err
				}
			}
		}
		return nil
	}
	if err := walk(st.toks, 0); err != nil {
		return nil, err
	}
	return out, nil
}

func (p *parser) statement(st pstmt) error {
	// A macro definition: name = value… (values are concatenated; $x in an
	// unquoted word is expanded now, as pfctl does).
	if len(st.toks) >= 2 && !st.toks[0].quoted && st.toks[1].text == "=" && !st.toks[1].quoted && reMacroName.MatchString(st.toks[0].text) {
		name := st.toks[0].text
		if isPFKeyword(name) {
			return p.errf(st.line, "%q is a keyword, not a macro name", name)
		}
		val, err := p.expand(pstmt{st.line, st.toks[2:]})
		if err != nil {
			return err
		}
		parts := make([]string, len(val))
		for i, t := range val {
			parts[i] = t.text
		}
		v := strings.Join(parts, " ")
		if len(v) > maxExpansion {
			return p.errf(st.line, "macro %q is too large", name)
		}
		p.rs.Macros[name] = v
		return nil
	}
	toks, err := p.expand(st)
	if err != nil {
		return err
	}
	if len(toks) == 0 {
		return nil
	}
	c := &cursor{p: p, line: st.line, toks: toks}
	switch toks[0].text {
	case "table":
		return p.table(c)
	case "set":
		return p.option(c)
	case "state":
		if p.listing && len(toks) > 1 && toks[1].text == "limiter" {
			return nil // a state limiter definition (pf1076): no pass or block
		}
	case "pass", "block", "match":
		r, err := p.filter(c)
		if err != nil {
			return err
		}
		p.rs.Rules = append(p.rs.Rules, r)
		return nil
	case "include":
		return p.errf(st.line, "include is not supported: arbo judges one self-contained file")
	case "anchor", "load", "antispoof":
		if p.listing {
			p.rs.Rules = append(p.rs.Rules, Rule{Line: st.line, Text: c.text(), Opaque: toks[0].text})
			return nil
		}
		if toks[0].text == "antispoof" {
			return p.errf(st.line, "antispoof expands to rules that depend on the host's interface addresses; not supported")
		}
		return p.errf(st.line, "%s: rules loaded into anchors at run time cannot be judged from this file", toks[0].text)
	case "no":
		if len(toks) > 1 && toks[1].text == "scrub" {
			return nil
		}
		return p.translation(c)
	case "nat", "rdr", "binat", "nat-anchor", "rdr-anchor", "binat-anchor":
		return p.translation(c)
	case "scrub", "altq", "queue", "ether":
		return nil // normalization, queueing and layer-2 rules decide no pass or block of IP
	}
	return p.errf(st.line, "unknown statement %q", toks[0].text)
}

// cursor walks the tokens of one statement.
type cursor struct {
	p    *parser
	line int
	toks []token
	i    int
}

func (c *cursor) done() bool { return c.i >= len(c.toks) }

func (c *cursor) peek() string {
	if c.done() {
		return ""
	}
	if c.toks[c.i].quoted {
		return "\x00" + c.toks[c.i].text // never equal to a keyword
	}
	return c.toks[c.i].text
}

func (c *cursor) next() (string, error) {
	if c.done() {
		return "", c.errf("unexpected end of rule")
	}
	t := c.toks[c.i].text
	c.i++
	return t, nil
}

func (c *cursor) accept(w string) bool {
	if c.peek() == w {
		c.i++
		return true
	}
	return false
}

func (c *cursor) expect(w string) error {
	if !c.accept(w) {
		if c.done() {
			return c.errf("expected %q at the end of the rule", w)
		}
		return c.errf("expected %q, found %q", w, c.toks[c.i].text)
	}
	return nil
}

func (c *cursor) errf(format string, a ...any) error { return c.p.errf(c.line, format, a...) }

func (c *cursor) text() string {
	s := make([]string, len(c.toks))
	for i, t := range c.toks {
		if t.quoted {
			s[i] = strconv.Quote(t.text)
		} else {
			s[i] = t.text
		}
	}
	return strings.Join(s, " ")
}

// list reads `{ a, b … }` (commas optional, nesting flattened) or one item,
// calling item for each element. Negation marks are passed to item.
func (c *cursor) list(item func(neg bool) error) error {
	if !c.accept("{") {
		neg := c.accept("!")
		if neg && c.peek() == "{" {
			return c.errf("! before a { list } is not valid pf")
		}
		return item(neg)
	}
	for {
		switch c.peek() {
		case "}":
			c.i++
			return nil
		case ",":
			c.i++
		case "{":
			if err := c.list(item); err != nil {
				return err
			}
		case "":
			return c.errf("unterminated { list")
		default:
			neg := c.accept("!")
			if c.peek() == "{" {
				return c.errf("! before a { list } is not valid pf")
			}
			if err := item(neg); err != nil {
				return err
			}
		}
	}
}

func (p *parser) table(c *cursor) error {
	c.i++
	name, err := c.next()
	if err != nil {
		return err
	}
	if len(name) < 3 || name[0] != '<' || name[len(name)-1] != '>' {
		return c.errf("table name must be <name>, found %q", name)
	}
	t := &Table2{Name: name[1 : len(name)-1], Line: c.line}
	placeholders, others := []string(nil), 0
	if _, dup := p.rs.Tables[t.Name]; dup {
		return c.errf("table <%s> is defined twice", t.Name)
	}
	for !c.done() {
		switch w := c.peek(); w {
		case "persist", "const", "counters":
			c.i++
		case "file":
			c.i++
			if _, err := c.next(); err != nil {
				return err
			}
			t.File = true
		case "{":
			if err := c.list(func(neg bool) error {
				if w := c.peek(); p.shared != nil && !neg && strings.HasPrefix(w, placeholderPrefix) {
					hs, ok := p.shared.parsed[w]
					if !ok {
						return c.errf("unknown table placeholder %q", w)
					}
					c.i++
					if len(t.Entries) == 0 {
						t.Entries = hs[:len(hs):len(hs)] // shared, read-only: an append copies
					} else {
						t.Entries = append(t.Entries, hs...)
					}
					placeholders = append(placeholders, w)
					return nil
				}
				others++
				h, err := c.host(neg)
				if err != nil {
					return err
				}
				if h.Kind == HostTable {
					return c.errf("a table cannot hold another table")
				}
				t.Entries = append(t.Entries, h)
				return nil
			}); err != nil {
				return err
			}
		default:
			return c.errf("unexpected %q in table <%s>", strings.TrimPrefix(w, "\x00"), t.Name)
		}
	}
	if len(placeholders) == 1 && others == 0 && !t.File {
		t.single = p.shared.index(placeholders[0], t)
	} else {
		t.index()
	}
	p.rs.Tables[t.Name] = t
	return nil
}

func (p *parser) option(c *cursor) error {
	c.i++
	w, err := c.next()
	if err != nil {
		return err
	}
	if w != "skip" {
		return nil // other options change no pass/block decision of a new connection
	}
	if err := c.expect("on"); err != nil {
		return err
	}
	if err := c.list(func(neg bool) error {
		n, err := c.next()
		if err != nil {
			return err
		}
		if neg {
			return c.errf("set skip takes no negation")
		}
		p.rs.Skip = append(p.rs.Skip, n)
		return nil
	}); err != nil {
		return err
	}
	if !c.done() {
		return c.errf("unexpected %q after set skip", c.peek())
	}
	return nil
}

// translation reads a nat/rdr/binat rule only for its tag: filter rules
// see the translated packet and may test that tag.
func (p *parser) translation(c *cursor) error {
	for i := 0; i+1 < len(c.toks); i++ {
		if c.toks[i].text == "tag" && !c.toks[i].quoted {
			p.rs.NatTags = append(p.rs.NatTags, c.toks[i+1].text)
		}
		if c.toks[i].text == "->" {
			break
		}
	}
	if c.toks[0].text == "no" && (len(c.toks) < 2 || !isOneOf(c.toks[1].text, "nat", "rdr", "binat")) {
		return c.errf("unknown statement \"no %s\"", strings.Join(func() []string {
			if len(c.toks) > 1 {
				return []string{c.toks[1].text}
			}
			return nil
		}(), ""))
	}
	return nil
}

func isOneOf(s string, set ...string) bool {
	for _, x := range set {
		if s == x {
			return true
		}
	}
	return false
}

func isPFKeyword(w string) bool {
	return isOneOf(w, "pass", "block", "match", "table", "set", "scrub", "nat", "rdr", "binat", "no",
		"anchor", "load", "include", "antispoof", "altq", "queue", "ether", "in", "out", "on", "from", "to", "port", "proto", "all", "any")
}

var reIface = regexp.MustCompile(`^[a-z][a-z0-9_.]*(:(network|broadcast|peer|0))*$`)

// host reads one address entry: any of `any`, `self`, `no-route`,
// `urpf-failed`, an address or CIDR (a `/bits` may be a separate token),
// `<table>`, an interface (`em0`, `em0:network`, `(em0)`).
func (c *cursor) host(neg bool) (Host, error) {
	w, err := c.next()
	if err != nil {
		return Host{}, err
	}
	h := Host{Neg: neg}
	switch {
	case w == "any":
		h.Prefix = netip.Prefix{} // zero prefix: any
		if neg {
			return h, c.errf("! any matches nothing; write what you mean")
		}
		return h, nil
	case w == "self":
		h.Kind = HostSelf
		return h, nil
	case w == "no-route" || w == "urpf-failed":
		h.Kind = HostNoRoute
		return h, nil
	case len(w) > 2 && w[0] == '<' && w[len(w)-1] == '>':
		h.Kind, h.Name = HostTable, w[1:len(w)-1]
		return h, nil
	case w == "(":
		n, err := c.next()
		if err != nil {
			return h, err
		}
		if err := c.expect(")"); err != nil {
			return h, err
		}
		if !reIface.MatchString(n) {
			return h, c.errf("(%s) is not an interface name", n)
		}
		return ifaceHost(h, n), nil
	}
	if c.peek() == "/" {
		c.i++
		bits, err := c.next()
		if err != nil {
			return h, err
		}
		w += "/" + bits
	}
	if strings.Contains(w, "/") {
		pfx, err := netip.ParsePrefix(w)
		if err != nil {
			// pfctl accepts a host part in a CIDR: 10.0.0.1/24 means 10.0.0.0/24.
			return h, c.errf("bad address %q: %v", w, err)
		}
		h.Prefix = pfx.Masked()
		return h, nil
	}
	if a, err := netip.ParseAddr(w); err == nil {
		h.Prefix = netip.PrefixFrom(a, a.BitLen())
		return h, nil
	}
	if reIface.MatchString(w) && strings.ContainsAny(w, "0123456789") {
		return ifaceHost(h, w), nil
	}
	return h, c.errf("%q is not an address, table or interface (host names need DNS and are not supported)", w)
}

func ifaceHost(h Host, n string) Host {
	h.Kind = HostIface
	name, mods, _ := strings.Cut(n, ":")
	h.Name = name
	h.Network = strings.Contains(":"+mods, ":network")
	return h
}

// services are the port names arbo's users are likely to write; pfctl
// reads /etc/services on the host, which this parser does not have.
var services = map[string]int{
	"ftp": 21, "ssh": 22, "telnet": 23, "smtp": 25, "domain": 53, "http": 80, "www": 80,
	"pop3": 110, "ntp": 123, "imap": 143, "snmp": 161, "ldap": 389, "https": 443,
	"submission": 587, "imaps": 993, "pop3s": 995, "mysql": 3306, "postgresql": 5432,
	"epmd": 4369,
}

func (c *cursor) portNum() (int, error) {
	w, err := c.next()
	if err != nil {
		return 0, err
	}
	if n, ok := services[w]; ok {
		return n, nil
	}
	n, err := strconv.Atoi(w)
	if err != nil || n < 0 || n > 65535 {
		return 0, c.errf("bad port %q", w)
	}
	return n, nil
}

// ports reads what follows `port`: an op and a number, a range, or a list.
func (c *cursor) ports() ([]PortOp, error) {
	var out []PortOp
	one := func() error {
		op := "="
		if o := c.peek(); isOneOf(o, "=", "!=", "<", "<=", ">", ">=") {
			op = o
			c.i++
		}
		// A range a:b is lexed as one word.
		if w := c.peek(); op == "=" && strings.Contains(w, ":") {
			c.i++
			lo, hi, _ := strings.Cut(w, ":")
			l, err1 := portValue(lo)
			h, err2 := portValue(hi)
			if err1 != nil || err2 != nil {
				return c.errf("bad port range %q", w)
			}
			if l > h {
				return c.errf("port range %q is empty", w)
			}
			out = append(out, PortOp{":", l, h})
			return nil
		}
		lo, err := c.portNum()
		if err != nil {
			return err
		}
		if o := c.peek(); op == "=" && (o == "<>" || o == "><") {
			c.i++
			hi, err := c.portNum()
			if err != nil {
				return err
			}
			out = append(out, PortOp{o, lo, hi})
			return nil
		}
		out = append(out, PortOp{op, lo, lo})
		return nil
	}
	if c.accept("{") {
		for !c.accept("}") {
			if c.done() {
				return nil, c.errf("unterminated port list")
			}
			if c.accept(",") {
				continue
			}
			if err := one(); err != nil {
				return nil, err
			}
		}
		return out, nil
	}
	return out, one()
}

func portValue(s string) (int, error) {
	if n, ok := services[s]; ok {
		return n, nil
	}
	n, err := strconv.Atoi(s)
	if err != nil || n < 0 || n > 65535 {
		return 0, fmt.Errorf("bad port %q", s)
	}
	return n, nil
}

var protoNames = map[string]bool{"tcp": true, "udp": true, "icmp": true, "icmp6": true, "ipv6-icmp": true,
	"esp": true, "ah": true, "gre": true, "sctp": true, "carp": true, "pfsync": true, "igmp": true, "ospf": true, "vrrp": true}

// filter reads a pass, block or match rule in pf.conf(5)'s order:
// action [in|out] [log [(…)]] [quick] [on …] [route] [af] [proto …]
// [all | from … [port …] to … [port …]] [options…].
func (p *parser) filter(c *cursor) (Rule, error) {
	r := Rule{Line: c.line, Text: c.text()}
	w, _ := c.next()
	r.Action = Action(w)
	if r.Action == Block {
		switch c.peek() {
		case "drop", "return", "return-rst", "return-icmp", "return-icmp6":
			c.i++
			if c.peek() == "(" {
				if err := c.skipParens(); err != nil {
					return r, err
				}
			}
		}
	}
	if c.accept("in") {
		r.Dir = "in"
	} else if c.accept("out") {
		r.Dir = "out"
	}
	for {
		if c.accept("log") || c.accept("log-all") {
			if c.peek() == "(" {
				if err := c.skipParens(); err != nil {
					return r, err
				}
			}
			continue
		}
		if c.accept("quick") {
			r.Quick = true
			continue
		}
		break
	}
	if c.accept("on") {
		if err := c.list(func(neg bool) error {
			n, err := c.next()
			if err != nil {
				return err
			}
			if !reIface.MatchString(n) || strings.Contains(n, ":") {
				return c.errf("%q is not an interface name", n)
			}
			r.On = append(r.On, Iface{Name: n, Neg: neg})
			return nil
		}); err != nil {
			return r, err
		}
	}
	// Routing options change where a passed packet goes, not whether it
	// passes.
	for isOneOf(c.peek(), "route-to", "reply-to", "dup-to", "fastroute") {
		c.i++
		if c.peek() == "{" || c.peek() == "(" {
			if err := c.skipGroup(); err != nil {
				return r, err
			}
		}
		for isOneOf(c.peek(), "sticky-address", "round-robin", "random", "source-hash", "bitmask", "least-states", "prefer-ipv6-nexthop") {
			c.i++
		}
	}
	if c.accept("inet") {
		r.Family = "inet"
	} else if c.accept("inet6") {
		r.Family = "inet6"
	}
	if c.accept("proto") {
		if err := c.list(func(neg bool) error {
			n, err := c.next()
			if err != nil {
				return err
			}
			if neg {
				return c.errf("proto takes no negation")
			}
			if !protoNames[n] {
				if _, err := strconv.Atoi(n); err != nil {
					return c.errf("unknown protocol %q", n)
				}
			}
			if n == "ipv6-icmp" {
				n = "icmp6"
			}
			r.Protos = append(r.Protos, n)
			return nil
		}); err != nil {
			return r, err
		}
	}
	if c.accept("all") {
		// from any to any
	} else {
		if c.accept("from") {
			if err := c.hosts(&r.From, &r.FromPorts); err != nil {
				return r, err
			}
			if c.peek() == "os" {
				if p.listing {
					r.Opaque = "os"
					return r, nil
				}
				return r, c.errf("os fingerprints cannot be judged off the host")
			}
		}
		if c.accept("to") {
			if err := c.hosts(&r.To, &r.ToPorts); err != nil {
				return r, err
			}
		}
	}
	for !c.done() {
		w, _ := c.next()
		switch w {
		case "flags":
			f, err := c.flags()
			if err != nil {
				return r, err
			}
			r.Flags = f
		case "keep", "modulate", "synproxy":
			if err := c.expect("state"); err != nil {
				return r, err
			}
			if c.peek() == "(" {
				if err := c.skipParens(); err != nil {
					return r, err
				}
			}
		case "no":
			if err := c.expect("state"); err != nil {
				return r, err
			}
		case "tag":
			t, err := c.next()
			if err != nil {
				return r, err
			}
			r.Tag = t
		case "!":
			if err := c.expect("tagged"); err != nil {
				return r, err
			}
			t, err := c.next()
			if err != nil {
				return r, err
			}
			r.Tagged, r.NotTagged = t, true
		case "tagged":
			t, err := c.next()
			if err != nil {
				return r, err
			}
			r.Tagged = t
		case "label", "ridentifier", "min-ttl", "max-mss", "rtable", "set-tos", "dnpipe", "dnqueue":
			if _, err := c.next(); err != nil {
				return r, err
			}
			if (w == "dnpipe" || w == "dnqueue") && c.peek() == "(" {
				if err := c.skipParens(); err != nil {
					return r, err
				}
			}
		case "queue":
			if c.peek() == "(" {
				if err := c.skipParens(); err != nil {
					return r, err
				}
			} else if _, err := c.next(); err != nil {
				return r, err
			}
		case "set":
			// set prio N | set prio (N, M) | set tos X | set queue …
			if _, err := c.next(); err != nil {
				return r, err
			}
			if c.peek() == "(" {
				if err := c.skipParens(); err != nil {
					return r, err
				}
			} else if _, err := c.next(); err != nil {
				return r, err
			}
		case "max-pkt-rate":
			if _, err := c.next(); err != nil {
				return r, err
			}
			if c.accept("/") {
				if _, err := c.next(); err != nil {
					return r, err
				}
			}
		case "icmp-type", "icmp6-type":
			r.ICMPType = true
			if c.peek() == "{" {
				if err := c.skipGroup(); err != nil {
					return r, err
				}
			} else {
				if _, err := c.next(); err != nil {
					return r, err
				}
				if c.accept("code") {
					if _, err := c.next(); err != nil {
						return r, err
					}
				}
			}
		case "allow-opts", "fragment", "no-df", "random-id", "once":
		case "reassemble":
			if err := c.expect("tcp"); err != nil {
				return r, err
			}
		case "user", "group", "os", "received-on", "probability", "tos", "prio", "af-to",
			"nat-to", "rdr-to", "binat-to", "divert-to", "divert-reply", "divert-packet", "state":
			if p.listing {
				r.Opaque = w
				return r, nil
			}
			return r, c.errf("%q cannot be judged off the host; arbo's checker does not support it", w)
		default:
			return r, c.errf("unknown word %q in a filter rule", w)
		}
	}
	if r.Flags != nil && !r.Flags.Any && len(r.Protos) > 0 && !isOneOf("tcp", r.Protos...) {
		return r, c.errf("flags only apply to tcp")
	}
	return r, nil
}

// hosts reads a from/to side: `any` or hosts, then an optional port.
func (c *cursor) hosts(hs *[]Host, ps *[]PortOp) error {
	if c.peek() != "port" {
		if err := c.list(func(neg bool) error {
			h, err := c.host(neg)
			if err != nil {
				return err
			}
			if h.Kind == HostPrefix && !h.Prefix.IsValid() {
				return nil // any
			}
			*hs = append(*hs, h)
			return nil
		}); err != nil {
			return err
		}
		if len(*hs) == 0 {
			*hs = nil
		}
	}
	if c.accept("port") {
		p, err := c.ports()
		if err != nil {
			return err
		}
		*ps = p
	}
	return nil
}

func (c *cursor) flags() (*TCPFlags, error) {
	w, err := c.next()
	if err != nil {
		return nil, err
	}
	if w == "any" {
		return &TCPFlags{Any: true}, nil
	}
	f := &TCPFlags{}
	set, mask := w, ""
	if a, b, ok := strings.Cut(w, "/"); ok {
		set, mask = a, b
	} else if c.accept("/") {
		mask, err = c.next()
		if err != nil {
			return nil, err
		}
	}
	if f.Set, err = tcpFlags(set); err != nil {
		return nil, c.errf("flags %s: %v", w, err)
	}
	if f.Mask, err = tcpFlags(mask); err != nil {
		return nil, c.errf("flags %s: %v", w, err)
	}
	if mask == "" {
		f.Mask = 0xff
	}
	return f, nil
}

func tcpFlags(s string) (uint8, error) {
	var v uint8
	for _, ch := range s {
		i := strings.IndexRune("FSRPAUEW", ch)
		if i < 0 {
			return 0, fmt.Errorf("unknown flag %q", ch)
		}
		v |= 1 << i
	}
	return v, nil
}

// skipParens skips a ( … ) group whose content decides nothing here.
func (c *cursor) skipParens() error { return c.skipGroup() }

func (c *cursor) skipGroup() error {
	open, err := c.next()
	if err != nil {
		return err
	}
	closeTok := map[string]string{"(": ")", "{": "}"}[open]
	if closeTok == "" {
		return c.errf("expected ( or {, found %q", open)
	}
	depth := 1
	for depth > 0 {
		w, err := c.next()
		if err != nil {
			return c.errf("unterminated %s", open)
		}
		switch w {
		case open:
			depth++
		case closeTok:
			depth--
		}
	}
	return nil
}
