package emu

import (
	"fmt"
	"net/netip"
	"strconv"
	"strings"
)

// This file prints the loaded ruleset the way FreeBSD's pfctl lists it
// (`pfctl -sr`, `-sn`, `-v -s Interfaces`), so that arbo's live checks read
// the lab as they read a FreeBSD host. The form is print_rule() of
// sbin/pfctl/pfctl_parser.c (freebsd-src 04fecb9b4df6561b24d7a6e6d6f86afe97b8d0ec),
// applied to what parse.y made of each statement:
//   - a `{ … }` list becomes one rule per combination (expand_rule);
//   - an address family missing from the rule is taken from its addresses
//     (expand_rule sets r->af per host pair), printed as `inet`/`inet6`;
//   - from any to any is printed `all` (print_fromto);
//   - a pass rule keeps state unless `no state`, and a stateful pass on tcp
//     (or on no protocol) without flags gets `flags S/SA` (parse.y's
//     default); print_rule prints the flags, then `keep state`;
//   - `block` without a return mode is `block drop`;
//   - a port is `port = N` (print_port: PF_OP_EQ), a range `port N:M`;
//     with -P numbers, otherwise the service name where the services
//     database has one (a small table here);
//   - `scrub` rules end in `fragment reassemble`;
//   - a nat to an interface's address (`-> (em0)`) is a round-robin pool
//     (print_pool prints the pool type).
// Rule numbers (`@N`) and counters are printed only with -v, as pfctl does.
// This is the lab's approximation: what the grammar stand-in keeps of a
// rule, reordered into print_rule's order; words it does not know are
// kept in place.

// pfServiceNames are the services database entries the listing names
// ports with (FreeBSD /etc/services), when -P is not given.
var pfServiceNames = map[int]string{22: "ssh", 53: "domain", 80: "http", 443: "https"}

var pfServicePorts = map[string]int{"ssh": 22, "domain": 53, "http": 80, "www": 80, "https": 443, "epmd": 4369}

// pfListing returns the loaded statements of the categories cats, one
// listing line per rule pfctl would hold.
func pfListing(stmts []pfStmt, numeric bool, cats ...string) []string {
	var out []string
	for _, s := range stmts {
		cat := pfKeywords[s.toks[0]]
		if !containsStr(cats, cat) {
			continue
		}
		for _, toks := range pfExpandRule(s.toks) {
			out = append(out, pfPrintRule(cat, toks, numeric))
		}
	}
	return out
}

func containsStr(list []string, s string) bool {
	for _, x := range list {
		if x == s {
			return true
		}
	}
	return false
}

// pfSkipped lists the interfaces of `set skip on …`.
func pfSkipped(stmts []pfStmt) []string {
	var out []string
	for _, s := range stmts {
		if len(s.toks) > 3 && s.toks[0] == "set" && s.toks[1] == "skip" && s.toks[2] == "on" {
			for _, t := range s.toks[3:] {
				if t != "{" && t != "}" && t != "," {
					out = append(out, t)
				}
			}
		}
	}
	return out
}

// pfExpandRule expands a rule's lists, except the address pool after
// "->" or a route-to, which is one pool (print_pool prints it as a list).
func pfExpandRule(toks []string) [][]string {
	cut := len(toks)
	for i, t := range toks {
		if t == "->" || t == "route-to" || t == "reply-to" || t == "dup-to" || t == "nat-to" || t == "rdr-to" || t == "af-to" {
			cut = i
			break
		}
	}
	if cut == len(toks) {
		return pfExpandLists(toks)
	}
	// The pool's own group (and what follows it) stays whole; lists after
	// it (ports, options) are rare in arbo's rules and left as written.
	var out [][]string
	for _, head := range pfExpandLists(toks[:cut]) {
		out = append(out, append(head, toks[cut:]...))
	}
	return out
}

// pfExpandLists returns one token list per combination of the `{ … }`
// lists of a rule (expand_rule in parse.y).
func pfExpandLists(toks []string) [][]string {
	open := -1
	for i, t := range toks {
		if t == "{" {
			open = i
			break
		}
	}
	if open < 0 {
		return [][]string{toks}
	}
	depth, end := 0, -1
	for i := open; i < len(toks); i++ {
		switch toks[i] {
		case "{":
			depth++
		case "}":
			depth--
		}
		if depth == 0 {
			end = i
			break
		}
	}
	if end < 0 {
		return [][]string{toks}
	}
	var out [][]string
	for _, item := range pfListItems(toks[open+1 : end]) {
		head := append(append(append([]string{}, toks[:open]...), item...), toks[end+1:]...)
		out = append(out, pfExpandLists(head)...)
	}
	return out
}

// pfMasked prints an address/len with the host bits cleared, as pfctl
// stores it (set_ipmask masks the address).
func pfMasked(h string) string {
	if p, err := netip.ParsePrefix(h); err == nil {
		return p.Masked().String()
	}
	return h
}

// pfListItems splits a list's tokens into items: commas or blanks
// separate them; `!` and a unary port operator attach to what follows,
// `><` and `<>` join their neighbours; a ( … ) group is one item.
func pfListItems(toks []string) [][]string {
	var items [][]string
	var cur []string
	pending := false // the next token continues cur
	depth := 0
	for _, t := range toks {
		if depth > 0 || t == "(" {
			if t == "(" {
				if depth == 0 && !pending && len(cur) > 0 {
					items = append(items, cur)
					cur = nil
				}
				depth++
			} else if t == ")" {
				depth--
			}
			cur, pending = append(cur, t), depth > 0
			continue
		}
		switch {
		case t == ",":
			if len(cur) > 0 {
				items = append(items, cur)
			}
			cur, pending = nil, false
		case t == "!" || t == "=" || t == "!=" || t == "<" || t == "<=" || t == ">" || t == ">=":
			if !pending && len(cur) > 0 {
				items = append(items, cur)
				cur = nil
			}
			cur, pending = append(cur, t), true
		case t == "><" || t == "<>":
			cur, pending = append(cur, t), true
		default:
			if !pending && len(cur) > 0 {
				items = append(items, cur)
				cur = nil
			}
			cur, pending = append(cur, t), false
		}
	}
	if len(cur) > 0 {
		items = append(items, cur)
	}
	return items
}

// pfGroup returns the tokens of a parenthesised group starting at i
// (toks[i] == "("), and the index after it.
func pfGroup(toks []string, i int) ([]string, int) {
	depth := 0
	for j := i; j < len(toks); j++ {
		switch toks[j] {
		case "(":
			depth++
		case ")":
			depth--
		}
		if depth == 0 {
			return toks[i : j+1], j + 1
		}
	}
	return toks[i:], len(toks)
}

// pfJoin prints tokens as pfctl spaces them: no blank inside parentheses
// after "(" or before ")" or ",".
func pfJoin(toks []string) string {
	var b strings.Builder
	for i, t := range toks {
		if i > 0 && t != ")" && t != "," && toks[i-1] != "(" {
			b.WriteByte(' ')
		}
		b.WriteString(t)
	}
	return b.String()
}

type pfSide struct {
	neg   bool
	host  string
	ports []string // printed: "= 22", "9100:9115", "> 1024"
}

func (s pfSide) String() string {
	var parts []string
	if s.neg {
		parts = append(parts, "!")
	}
	parts = append(parts, s.host)
	if len(s.ports) > 0 {
		parts = append(parts, "port")
		parts = append(parts, s.ports...)
	}
	return strings.Join(parts, " ")
}

func pfPort(tok string, numeric bool) string {
	n, err := strconv.Atoi(tok)
	if err != nil {
		if p, ok := pfServicePorts[tok]; ok {
			n = p
		} else {
			return tok
		}
	}
	if !numeric {
		if name, ok := pfServiceNames[n]; ok {
			return name
		}
	}
	return strconv.Itoa(n)
}

// pfReadSide reads `[!] host [port …]` of a from or to (any when absent).
func pfReadSide(toks []string, i int, numeric bool) (pfSide, int) {
	s := pfSide{host: "any"}
	if i < len(toks) && toks[i] != "port" {
		if toks[i] == "!" {
			s.neg = true
			i++
		}
		if i < len(toks) && toks[i] == "(" {
			g, j := pfGroup(toks, i)
			s.host, i = pfJoin(g), j
		} else if i < len(toks) {
			s.host = pfMasked(toks[i])
			i++
		}
	}
	if i < len(toks) && toks[i] == "port" {
		i++
		switch {
		case i < len(toks) && isOneOfStr(toks[i], "=", "!=", "<", "<=", ">", ">="):
			if i+1 < len(toks) {
				s.ports = []string{toks[i], pfPort(toks[i+1], numeric)}
				i += 2
			}
		case i+2 < len(toks) && (toks[i+1] == "><" || toks[i+1] == "<>"):
			s.ports = []string{pfPort(toks[i], numeric), toks[i+1], pfPort(toks[i+2], numeric)}
			i += 3
		case i < len(toks) && strings.Contains(toks[i], ":"):
			lo, hi, _ := strings.Cut(toks[i], ":")
			s.ports = []string{pfPort(lo, true) + ":" + pfPort(hi, true)}
			i++
		case i < len(toks):
			s.ports = []string{"=", pfPort(toks[i], numeric)}
			i++
		}
	}
	return s, i
}

func isOneOfStr(s string, set ...string) bool { return containsStr(set, s) }

// pfFamily is the family an address token implies ("" for tables,
// interfaces, any).
func pfFamily(host string) string {
	h, _, _ := strings.Cut(host, "/")
	a, err := netip.ParseAddr(h)
	switch {
	case err != nil:
		return ""
	case a.Is4():
		return "inet"
	default:
		return "inet6"
	}
}

// pfPrintRule prints one expanded rule of category cat.
func pfPrintRule(cat string, toks []string, numeric bool) string {
	if cat == "translation" && !strings.HasSuffix(toks[0], "-anchor") {
		return pfPrintTranslation(toks, numeric)
	}
	if !isOneOfStr(toks[0], "pass", "block", "match", "scrub") {
		return pfJoin(toks) // anchor, antispoof …: as loaded
	}
	action := toks[0]
	var head []string // action … proto
	head = append(head, action)
	i := 1
	if action == "block" {
		if i < len(toks) && isOneOfStr(toks[i], "drop", "return", "return-rst", "return-icmp", "return-icmp6") {
			m := toks[i]
			i++
			if i < len(toks) && toks[i] == "(" {
				g, j := pfGroup(toks, i)
				m += pfJoin(g)
				i = j
			}
			head = append(head, m)
		} else {
			head = append(head, "drop")
		}
	}
	if i < len(toks) && (toks[i] == "in" || toks[i] == "out") {
		head = append(head, toks[i])
		i++
	}
	for i < len(toks) && (toks[i] == "log" || toks[i] == "quick") {
		head = append(head, toks[i])
		i++
		if head[len(head)-1] == "log" && i < len(toks) && toks[i] == "(" {
			g, j := pfGroup(toks, i)
			head = append(head, pfJoin(g))
			i = j
		}
	}
	if i < len(toks) && toks[i] == "on" {
		i++
		if i < len(toks) && toks[i] == "!" {
			head = append(head, "on", "!")
			i++
		} else {
			head = append(head, "on")
		}
		if i < len(toks) {
			head = append(head, toks[i])
			i++
		}
	}
	// route-to, reply-to, dup-to and their pool: print_rule prints them
	// right after the interface.
	for i < len(toks) && isOneOfStr(toks[i], "route-to", "reply-to", "dup-to") {
		head = append(head, toks[i])
		i++
		if i < len(toks) && (toks[i] == "(" || toks[i] == "{") {
			g, j := pfGroup2(toks, i)
			head = append(head, pfJoin(g))
			i = j
		} else if i < len(toks) {
			head = append(head, toks[i])
			i++
		}
		for i < len(toks) && isOneOfStr(toks[i], "round-robin", "random", "source-hash", "bitmask", "sticky-address", "prefer-ipv6-nexthop") {
			head = append(head, toks[i])
			i++
		}
	}
	af := ""
	if i < len(toks) && (toks[i] == "inet" || toks[i] == "inet6") {
		af = toks[i]
		i++
	}
	proto := ""
	if i < len(toks) && toks[i] == "proto" && i+1 < len(toks) {
		proto = toks[i+1]
		i += 2
	}
	var from, to pfSide
	all := true
	if i < len(toks) && toks[i] == "all" {
		i++
	} else {
		from, to = pfSide{host: "any"}, pfSide{host: "any"}
		if i < len(toks) && toks[i] == "from" {
			from, i = pfReadSide(toks, i+1, numeric)
		}
		if i < len(toks) && toks[i] == "to" {
			to, i = pfReadSide(toks, i+1, numeric)
		}
		all = from.String() == "any" && to.String() == "any"
	}
	if af == "" {
		af = pfFamily(from.host)
		if af == "" {
			af = pfFamily(to.host)
		}
	}
	// The options, sorted into print_rule's order: received-on (printed
	// with from/to), flags, icmp-type, tos, prio, max-pkt-rate, state, the
	// rest in place.
	var recv, flags, icmp, prio, state, rest []string
	noState := false
	for i < len(toks) {
		t := toks[i]
		switch {
		case t == "received-on" && i+1 < len(toks):
			recv = []string{t, toks[i+1]}
			i += 2
		case (t == "icmp-type" || t == "icmp6-type") && i+1 < len(toks):
			icmp = append(icmp, t, toks[i+1])
			i += 2
			if i+1 < len(toks) && toks[i] == "code" {
				icmp = append(icmp, "code", toks[i+1])
				i += 2
			}
		case (t == "tos" || t == "prio" || t == "max-pkt-rate") && i+1 < len(toks):
			prio = append(prio, t, toks[i+1])
			i += 2
		case t == "flags" && i+1 < len(toks):
			flags = []string{"flags", toks[i+1]}
			i += 2
		case (t == "keep" || t == "modulate" || t == "synproxy") && i+1 < len(toks) && toks[i+1] == "state":
			state = []string{t, "state"}
			i += 2
			if i < len(toks) && toks[i] == "(" {
				g, j := pfGroup(toks, i)
				state = append(state, pfJoin(g))
				i = j
			}
		case t == "no" && i+1 < len(toks) && toks[i+1] == "state":
			noState = true
			i += 2
		default:
			if t == "(" {
				g, j := pfGroup(toks, i)
				rest = append(rest, pfJoin(g))
				i = j
				continue
			}
			rest = append(rest, t)
			i++
		}
	}
	if action == "pass" && state == nil && !noState {
		state = []string{"keep", "state"}
	}
	if action == "pass" && flags == nil && state != nil && (proto == "" || proto == "tcp") {
		flags = []string{"flags", "S/SA"}
	}
	line := head
	if af != "" {
		line = append(line, af)
	}
	if proto != "" {
		line = append(line, "proto", proto)
	}
	if all {
		line = append(line, "all")
	} else {
		line = append(line, "from", from.String(), "to", to.String())
	}
	line = append(line, recv...)
	line = append(line, flags...)
	line = append(line, icmp...)
	line = append(line, prio...)
	if noState && action == "pass" {
		line = append(line, "no", "state")
	}
	line = append(line, state...)
	if action == "scrub" && !containsStr(rest, "reassemble") {
		rest = append(rest, "fragment", "reassemble")
	}
	line = append(line, rest...)
	return strings.Join(line, " ")
}

// pfPrintTranslation prints a nat, rdr or binat rule (and their `no`
// forms): `nat on IF af [proto] from … to … [tag …] -> pool [type]`.
func pfPrintTranslation(toks []string, numeric bool) string {
	arrow := len(toks)
	for i, t := range toks {
		if t == "->" {
			arrow = i
			break
		}
	}
	left, pool := toks[:arrow], []string(nil)
	if arrow < len(toks) {
		pool = toks[arrow+1:]
	}
	var head []string
	i := 0
	if left[0] == "no" {
		head, i = append(head, "no"), 1
	}
	if i < len(left) {
		head = append(head, left[i])
		i++
	}
	if i < len(left) && left[i] == "pass" {
		head = append(head, "pass")
		i++
	}
	if i+1 < len(left) && left[i] == "on" {
		head = append(head, "on", left[i+1])
		i += 2
	}
	af := ""
	if i < len(left) && (left[i] == "inet" || left[i] == "inet6") {
		af = left[i]
		i++
	}
	proto := ""
	if i+1 < len(left) && left[i] == "proto" {
		proto = left[i+1]
		i += 2
	}
	from, to := pfSide{host: "any"}, pfSide{host: "any"}
	all := i < len(left) && left[i] == "all"
	if all {
		i++
	}
	if i < len(left) && left[i] == "from" {
		from, i = pfReadSide(left, i+1, numeric)
	}
	if i < len(left) && left[i] == "to" {
		to, i = pfReadSide(left, i+1, numeric)
	}
	if af == "" {
		af = pfFamily(from.host)
		if af == "" {
			af = pfFamily(to.host)
		}
	}
	line := head
	if af != "" {
		line = append(line, af)
	}
	if proto != "" {
		line = append(line, "proto", proto)
	}
	if from.String() == "any" && to.String() == "any" {
		line = append(line, "all")
	} else {
		line = append(line, "from", from.String(), "to", to.String())
	}
	line = append(line, left[i:]...)
	if pool != nil {
		line = append(line, "->", pfPool(pool))
	}
	return strings.Join(line, " ")
}

// pfPrintListing writes a listing as pfctl does: with -v each rule gets
// its number ("@N ", print_rule) and pfctl_show_rules's counter line.
func pfPrintListing(e *env, lines []string, verbose bool) {
	for i, l := range lines {
		if verbose {
			fmt.Fprintf(e.stdout, "@%d %s\n", i, l)
			fmt.Fprintf(e.stdout, "  [ Evaluations: 0         Packets: 0         Bytes: 0           States: 0     ]\n")
			continue
		}
		fmt.Fprintln(e.stdout, l)
	}
}

// pfGroup2 returns a ( … ) or { … } group starting at i and the index
// after it.
func pfGroup2(toks []string, i int) ([]string, int) {
	open, close := toks[i], ")"
	if open == "{" {
		close = "}"
	}
	depth := 0
	for j := i; j < len(toks); j++ {
		switch toks[j] {
		case open:
			depth++
		case close:
			depth--
		}
		if depth == 0 {
			return toks[i : j+1], j + 1
		}
	}
	return toks[i:], len(toks)
}

// pfPool prints a translation's pool: the addresses (a { … } list printed
// "{ a, b }"), the port, then the pool type, which pfctl makes
// round-robin for a list, a table or an interface's address when none is
// given (print_pool), then sticky-address.
func pfPool(pool []string) string {
	var addr []string
	i := 0
	if i < len(pool) && (pool[i] == "{" || pool[i] == "(") {
		g, j := pfGroup2(pool, i)
		if g[0] == "{" {
			var items []string
			for _, it := range pfListItems(g[1 : len(g)-1]) {
				items = append(items, pfJoin(it))
			}
			addr = []string{"{ " + strings.Join(items, ", ") + " }"}
		} else {
			addr = []string{pfJoin(g)}
		}
		i = j
	} else if i < len(pool) {
		addr = []string{pool[i]}
		i++
	}
	var port, typ, sticky, rest []string
	for i < len(pool) {
		t := pool[i]
		switch {
		case t == "port" && i+1 < len(pool):
			port = []string{"port", pool[i+1]}
			i += 2
		case isOneOfStr(t, "round-robin", "random", "bitmask"):
			typ = []string{t}
			i++
		case t == "source-hash":
			typ = []string{t}
			i++
			if i < len(pool) && strings.HasPrefix(pool[i], "0x") {
				typ = append(typ, pool[i])
				i++
			}
		case t == "sticky-address":
			sticky = []string{t}
			i++
		default:
			rest = append(rest, t)
			i++
		}
	}
	a := strings.Join(addr, " ")
	if typ == nil && (strings.HasPrefix(a, "{") || strings.HasPrefix(a, "(") || strings.HasPrefix(a, "<")) {
		typ = []string{"round-robin"}
	}
	out := append(append(append(append(addr, port...), typ...), sticky...), rest...)
	return strings.Join(out, " ")
}
