package emu

// The strict half of the emulated pfctl's pf.conf check: the semantic
// refusals of FreeBSD's pfctl that the lab models. Each check names the
// yyerror() message of FreeBSD's sbin/pfctl/parse.y (freebsd/freebsd-src,
// read at 8a8af94240084a091a1c048da027f80ee37937e7) that it imitates, so the
// lab's error text is the one a real host prints. It works on the tokens of
// one statement after macro expansion (pfparse.go); it is not the yacc
// grammar, so a misspelt keyword inside an otherwise valid rule still passes
// (docs/lab-emulation.md, "pfctl" row of the fidelity table).

import (
	"fmt"
	"strconv"
	"strings"
)

// pfTagNameSize is PF_TAG_NAME_SIZE (sys/net/pfvar.h: 64): a tag holds at
// most 63 characters ("tag too long, max %u chars", parse.y).
const pfTagNameSize = 64

// pfTableNameSize is PF_TABLE_NAME_SIZE (32): "table name too long".
const pfTableNameSize = 32

// pfRuleLabelSize is PF_RULE_LABEL_SIZE (64): "label too long".
const pfRuleLabelSize = 64

// pfStatementStarts are tokens that only ever begin a statement. One in
// the middle of a statement means two statements were joined on one line,
// which parse.y's grammar refuses ("syntax error"): every rule of the
// ruleset production ends in '\n' (ruleset: ruleset pfrule '\n' | …). This
// is how rc.d/pf's `echo $pf_fallback_rules | pfctl -f -` (unquoted, so a
// multi-line value arrives as one line) fails on FreeBSD.
var pfStatementStarts = map[string]bool{
	"pass": true, "block": true, "antispoof": true, "table": true, "include": true,
	"nat": true, "rdr": true, "binat": true, "altq": true, "anchor": true,
	"nat-anchor": true, "rdr-anchor": true, "binat-anchor": true, "load": true, "ether": true,
}

// pfRuleKinds are the statements whose options pfStrict checks.
var pfRuleKinds = map[string]bool{
	"pass": true, "block": true, "match": true, "nat": true, "rdr": true, "binat": true, "no": true,
	"anchor": true, "nat-anchor": true, "rdr-anchor": true, "binat-anchor": true, "antispoof": true, "scrub": true,
}

// pfStrict applies the refusals below to one expanded statement.
func pfStrict(toks []string) error {
	if len(toks) == 0 {
		return nil
	}
	kw := toks[0]
	if err := pfOneStatement(toks); err != nil {
		return err
	}
	if err := pfEmptyLists(toks); err != nil {
		return err
	}
	switch kw {
	case "table":
		name := strings.TrimSuffix(strings.TrimPrefix(toks[1], "<"), ">")
		if len(name) >= pfTableNameSize {
			return fmt.Errorf("table name too long")
		}
		return nil
	case "anchor", "nat-anchor", "rdr-anchor", "binat-anchor", "load":
		// "anchor names beginning with '_' are reserved for internal use"
		for i := 1; i < len(toks) && i < 3; i++ {
			if n := strings.Trim(toks[i], `"`); strings.HasPrefix(n, "_") {
				return fmt.Errorf("anchor names beginning with '_' are reserved for internal use")
			}
		}
		if kw == "load" && (len(toks) < 5 || toks[3] != "from") {
			return fmt.Errorf("syntax error") // load anchor NAME from FILE
		}
	}
	if !pfRuleKinds[kw] {
		return nil
	}
	r := scanRule(toks)
	for i, p := range r.ports {
		if err := checkPort(p, i < r.filterPortN); err != nil {
			return err
		}
	}
	for _, n := range r.tags {
		if len(strings.Trim(n, `"`)) >= pfTagNameSize {
			return fmt.Errorf("tag too long, max %d chars", pfTagNameSize-1)
		}
	}
	for _, n := range r.labels {
		if len(strings.Trim(n, `"`)) >= pfRuleLabelSize {
			return fmt.Errorf("label too long, max %d chars", pfRuleLabelSize-1)
		}
	}
	if r.flags && r.protoGiven && !r.protos["tcp"] && !r.protos["6"] {
		return fmt.Errorf("flags only apply to tcp")
	}
	if r.returnRST && (!r.protoGiven || len(r.protos) != 1 || !(r.protos["tcp"] || r.protos["6"])) {
		return fmt.Errorf("return-rst can only be applied to TCP rules")
	}
	if r.filterPorts && r.protoGiven {
		for p := range r.protos {
			if p != "tcp" && p != "udp" && p != "sctp" && p != "6" && p != "17" && p != "132" {
				return fmt.Errorf("port only applies to tcp/udp/sctp")
			}
		}
	}
	if r.routing && !r.dirGiven {
		return fmt.Errorf("direction must be explicit with rules that specify routing")
	}
	if r.routing && r.af != "" && !r.has["af-to"] { // af-to routes to the other family (pf1026)
		if err := routeFamily(r); err != nil {
			return err
		}
	}
	// Translation options (parse.y, the natrule and pool_opts actions).
	if r.has["map-e-portset"] && kw != "nat" && !(kw == "match" && r.has["nat-to"]) && !(kw == "pass" && r.has["nat-to"]) {
		return fmt.Errorf("the 'map-e-portset' option is only valid with nat rules")
	}
	if r.has["map-e-portset"] && r.has["static-port"] {
		return fmt.Errorf("the 'map-e-portset' option can't be used 'static-port'")
	}
	if r.has["static-port"] && r.redirPort {
		return fmt.Errorf("the 'static-port' option can't be used when specifying a port range")
	}
	if r.redirTable && (r.has["bitmask"] || r.has["random"] || r.has["source-hash"]) {
		return fmt.Errorf("tables are not supported by pool type")
	}
	return nil
}

// pfOneStatement refuses a statement-starting keyword after the start: the
// newline that ends every statement in parse.y is missing. "pass" right
// after nat/rdr/binat (nat pass …), "anchor" inside "load anchor", and
// "nat"/"rdr"/"binat" after "no" are part of one statement.
func pfOneStatement(toks []string) error {
	for i := 1; i < len(toks); i++ {
		t := toks[i]
		if !pfStatementStarts[t] {
			continue
		}
		prev := toks[i-1]
		switch {
		case t == "pass" && (prev == "nat" || prev == "rdr" || prev == "binat"):
			continue
		case (t == "nat" || t == "rdr" || t == "binat" || t == "scrub") && prev == "no" && i == 1:
			continue
		case prev == "ether" && i == 1: // ether pass|block|match|anchor
			continue
		case t == "anchor" && prev == "load":
			continue
		case prev == "tag" || prev == "tagged" || prev == "label" || prev == "on" || prev == "queue":
			continue // an operand that happens to spell a keyword
		}
		return fmt.Errorf("syntax error")
	}
	return nil
}

// pfEmptyLists refuses "{ }" and "( )" with nothing inside: every list
// production of parse.y needs at least one item.
func pfEmptyLists(toks []string) error {
	for i := 0; i+1 < len(toks); i++ {
		if (toks[i] == "{" && toks[i+1] == "}") || (toks[i] == "(" && toks[i+1] == ")" && (i == 0 || !strings.HasSuffix(toks[i-1], "-to"))) {
			return fmt.Errorf("syntax error")
		}
	}
	return nil
}

type pfRule struct {
	protos                 map[string]bool
	protoGiven             bool
	flags                  bool
	returnRST              bool
	dirGiven               bool
	routing                bool
	routeAddrs             []string
	af                     string
	ports                  []string
	filterPortN            int // ports[:filterPortN] come before any "->": ranges there must ascend
	filterPorts            bool
	tags, labels           []string
	has                    map[string]bool
	redirPort, redirTable  bool
	inRedirect, afterArrow bool
}

// scanRule collects what the checks need from one rule's tokens.
func scanRule(toks []string) pfRule {
	r := pfRule{protos: map[string]bool{}, has: map[string]bool{}}
	for i := 1; i < len(toks); i++ {
		t := toks[i]
		r.has[t] = true
		next := ""
		if i+1 < len(toks) {
			next = toks[i+1]
		}
		switch t {
		case "in", "out":
			if i <= 3 {
				r.dirGiven = true
			}
		case "inet", "inet6":
			if !r.afterArrow && r.af == "" {
				r.af = t
			}
		case "proto":
			r.protoGiven = true
			for _, p := range operand(toks, i+1) {
				r.protos[strings.ToLower(p)] = true
			}
		case "flags":
			if next != "any" {
				r.flags = true
			}
		case "return-rst":
			r.returnRST = true
		case "route-to", "reply-to", "dup-to":
			r.routing = true
			r.routeAddrs = append(r.routeAddrs, operand(toks, i+1)...)
		case "tag", "tagged":
			if next != "" {
				r.tags = append(r.tags, next)
			}
		case "label":
			if next != "" {
				r.labels = append(r.labels, next)
			}
		case "->", "nat-to", "rdr-to", "binat-to":
			r.afterArrow = true
		case "port":
			ops := operand(toks, i+1)
			r.ports = append(r.ports, ops...)
			if !r.afterArrow {
				r.filterPortN = len(r.ports)
			}
			if r.afterArrow {
				r.redirPort = true
			} else if toks[0] != "rdr" && toks[0] != "nat" && toks[0] != "binat" {
				r.filterPorts = true
			}
		}
		if r.afterArrow && strings.HasPrefix(t, "<") && strings.HasSuffix(t, ">") {
			r.redirTable = true
		}
	}
	return r
}

// operand returns the items of the operand at toks[i]: one token, or the
// items of a { … } or ( … ) list, skipping commas and comparison operators.
func operand(toks []string, i int) []string {
	if i >= len(toks) {
		return nil
	}
	if toks[i] == "=" || toks[i] == "!=" || toks[i] == "<" || toks[i] == ">" || toks[i] == "<=" || toks[i] == ">=" {
		i++
	}
	if i >= len(toks) {
		return nil
	}
	open := toks[i]
	if open != "{" && open != "(" {
		return []string{toks[i]}
	}
	close := "}"
	if open == "(" {
		close = ")"
	}
	var out []string
	depth := 0
	for k := i; k < len(toks); k++ {
		switch toks[k] {
		case "{", "(":
			depth++
			continue
		case "}", ")":
			depth--
			if depth == 0 && toks[k] == close {
				return out
			}
			continue
		case ",", "=", "!=":
			continue
		}
		out = append(out, toks[k])
	}
	return out
}

// checkPort refuses what parse.y's port rules refuse: a number above 65535
// ("illegal port value %lu") and a range whose low end is above its high
// end ("invalid port range"; pf1072 of the corpus), outside translation
// targets, whose ranges may descend (OpenBSD regress pf66). Names (ssh, http) and
// macros already expanded pass; the lab has no services database to check
// them against.
func checkPort(p string, ordered bool) error {
	p = strings.Trim(p, `"`)
	parts := []string{p}
	if lo, hi, ok := strings.Cut(p, ":"); ok {
		parts = []string{lo, hi}
	}
	var nums []int64
	for _, s := range parts {
		n, err := strconv.ParseInt(s, 10, 64)
		if err != nil {
			if s != "" && (s[0] >= '0' && s[0] <= '9') && !strings.ContainsAny(s, "*") {
				return fmt.Errorf("illegal port value %s", s)
			}
			continue
		}
		if n < 0 || n > 65535 {
			return fmt.Errorf("illegal port value %d", n)
		}
		nums = append(nums, n)
	}
	if ordered && len(nums) == 2 && nums[0] > nums[1] {
		return fmt.Errorf("invalid port range")
	}
	return nil
}

// routeFamily refuses a route-to/reply-to/dup-to whose addresses are all of
// the other family than the rule's: "no routing address with matching
// address family found." (pf1074 of the corpus).
func routeFamily(r pfRule) error {
	var addrs []string
	for _, a := range r.routeAddrs {
		if strings.ContainsAny(a, ".:") && !strings.HasPrefix(a, "<") {
			addrs = append(addrs, a)
		}
	}
	if len(addrs) == 0 {
		return nil
	}
	for _, a := range addrs {
		v6 := strings.Contains(a, ":")
		if (r.af == "inet6") == v6 {
			return nil
		}
	}
	return fmt.Errorf("no routing address with matching address family found.")
}
