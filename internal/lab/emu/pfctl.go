package emu

import (
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strings"
)

func init() {
	commands["pfctl"] = pfctlCmd
}

const pfTablesDir = "/var/run/lab/tables"

// pfctlCmd emulates pfctl(8) as far as freebsd.md §4.4 describes it.
func pfctlCmd(e *env, args []string) int {
	opts, rest, err := getopts(args[1:], "AdeghmnNqrRvzOPa:D:F:f:i:k:K:o:p:s:t:T:x:")
	if err != nil {
		fmt.Fprintf(e.stderr, "pfctl: %v\nusage: pfctl [-AdeghMmNnOPqRrvz] [-a anchor] [-D macro=value] [-F modifier] [-f file] [-i interface] [-K host | network] [-k host | network | label | id] [-o level] [-p device] [-s modifier] [-t table -T command [address ...]] [-x level]\n", err)
		return 1
	}
	o := map[string]string{}
	has := map[string]bool{}
	for _, x := range opts {
		o[x[0]], has[x[0]] = x[1], true
	}
	// pfctl.c, main(): without -n, pfctl opens /dev/pf and exits with
	// err(1, "%s", pf_device) when it cannot; /dev/pf exists only while
	// pf.ko is loaded (pf(4); kldload pf, or rc.d/pf's required_modules).
	if !has["n"] {
		if _, err := os.Stat(e.m(PFDevice)); err != nil {
			fmt.Fprintf(e.stderr, "pfctl: %s: No such file or directory\n", PFDevice)
			return 1
		}
	}
	code := 0
	step := func(c int) {
		if c != 0 && code == 0 {
			code = c
		}
	}
	if has["d"] {
		step(e.pfEnable(false, has["q"]))
	}
	if has["F"] {
		step(e.pfFlush(o["F"], o["a"], has["q"]))
	}
	if has["f"] && !has["T"] { // with -T, -f names an address list
		// -O loads only the options of the file (pfctl(8): "Load only the
		// options", pfSense's `pfctl -Of /tmp/rules.limits`, filter.inc:503):
		// the loaded rules stay; the lab models no options, so it checks.
		step(e.pfLoad(o["f"], o["a"], has["n"] || has["O"], has["v"]))
	}
	if has["e"] && code == 0 {
		step(e.pfEnable(true, has["q"]))
	}
	if has["t"] || has["T"] {
		step(e.pfTable(o["t"], o["T"], rest, has["f"], o["f"]))
	}
	if has["s"] {
		step(e.pfShow(o["s"], o["a"], has["v"], has["P"]))
	}
	return code
}

func (e *env) pfEnabled() bool {
	b, err := os.ReadFile(e.m(PFEnabledFile))
	return err == nil && strings.TrimSpace(string(b)) == "1"
}

// pfEnable: enabling an enabled pf fails with "pf already enabled", and
// disabling a disabled one with "pf not enabled" (pfctl.c, errx(1, …)).
func (e *env) pfEnable(on, quiet bool) int {
	if on == e.pfEnabled() {
		if on {
			fmt.Fprintln(e.stderr, "pfctl: pf already enabled")
		} else {
			fmt.Fprintln(e.stderr, "pfctl: pf not enabled")
		}
		return 1
	}
	v := "0\n"
	if on {
		v = "1\n"
	}
	if err := writeFile(e.m(PFEnabledFile), []byte(v), 0o644); err != nil {
		fmt.Fprintf(e.stderr, "pfctl: %v\n", err)
		return 1
	}
	if !quiet {
		if on {
			fmt.Fprintln(e.stderr, "pf enabled")
		} else {
			fmt.Fprintln(e.stderr, "pf disabled")
		}
	}
	return e.updateFirewall()
}

// updateFirewall writes FirewallFile from pf's state: pf disabled is open;
// otherwise see firewallBlocksSSH (LAB.md's documented approximation).
func (e *env) updateFirewall() int {
	verdict := "open"
	if e.pfEnabled() && firewallBlocksSSH(e.loadedRules("")) {
		verdict = "blocked"
	}
	if err := writeFile(e.m(FirewallFile), []byte(verdict+"\n"), 0o644); err != nil {
		fmt.Fprintf(e.stderr, "pfctl: %v\n", err)
		return 1
	}
	return 0
}

// pfFlush: -F states|all bump FlushFile, so the proxy drops connections the
// rules would not allow; -F all and -F rules also drop the loaded rules.
func (e *env) pfFlush(what, anchor string, quiet bool) int {
	switch what {
	case "states", "s", "all", "a":
		if _, err := bumpCounter(e.m(FlushFile)); err != nil {
			fmt.Fprintf(e.stderr, "pfctl: %v\n", err)
			return 1
		}
		if !quiet {
			fmt.Fprintln(e.stderr, "states cleared")
		}
		if what == "states" || what == "s" {
			return 0
		}
		fallthrough
	case "rules", "r", "nat", "n":
		os.Remove(e.rulesFile(anchor))
		if anchor == "" {
			os.Remove(e.m(PFLoadedFile))
		}
		if !quiet {
			fmt.Fprintln(e.stderr, "rules cleared")
		}
		return e.updateFirewall()
	case "Tables", "T", "info", "i", "Sources", "S", "osfp", "o", "queue", "q", "ethernet", "e", "Reset", "R":
		if what == "Tables" || what == "T" {
			os.RemoveAll(e.m(pfTablesDir))
		}
		return 0
	}
	fmt.Fprintf(e.stderr, "pfctl: Unknown flush modifier '%s'\n", what)
	return 1
}

// pfLoad parses a ruleset (-n: parse only) and loads it atomically, keeping
// states (freebsd.md §4.4).
func (e *env) pfLoad(file, anchor string, parseOnly, verbose bool) int {
	var data []byte
	var err error
	dir := "."
	if file == "-" {
		data, err = io.ReadAll(e.stdin)
	} else {
		data, err = os.ReadFile(e.p(file))
		dir = filepath.Dir(e.p(file))
	}
	if err != nil {
		fmt.Fprintf(e.stderr, "pfctl: %s: %v\n", file, unwrapPathErr(err))
		return 1
	}
	stmts, _, err := parsePF(file, data, pfFileReader(e, dir))
	if err != nil {
		fmt.Fprintln(e.stderr, err)
		fmt.Fprintf(e.stderr, "pfctl: Syntax error in config file: pf rules not loaded\n")
		return 1
	}
	if verbose {
		for _, s := range stmts {
			fmt.Fprintln(e.stdout, s.text())
		}
	}
	if parseOnly {
		return 0
	}
	if fault := e.m(FailRulesLoad); anchor == "" && exists(fault) {
		msg, _ := os.ReadFile(fault)
		_ = os.Remove(fault)
		fmt.Fprintf(e.stderr, "%s:1: %s\n", file, strings.TrimSpace(string(msg)))
		fmt.Fprintf(e.stderr, "pfctl: Syntax error in config file: pf rules not loaded\n")
		return 1
	}
	var expanded []string
	for _, s := range stmts {
		expanded = append(expanded, s.text())
	}
	if err := writeLines(e.rulesFile(anchor), expanded); err != nil {
		fmt.Fprintf(e.stderr, "pfctl: %v\n", err)
		return 1
	}
	if anchor == "" {
		if err := writeFile(e.m(PFLoadedFile), data, 0o600); err != nil {
			fmt.Fprintf(e.stderr, "pfctl: %v\n", err)
			return 1
		}
	}
	// Tables defined with an address list are (re)filled; those without
	// one keep their contents (freebsd.md §4.1 "Tables").
	for _, s := range stmts {
		if s.toks[0] != "table" {
			continue
		}
		name := strings.Trim(s.toks[1], "<>")
		for i, t := range s.toks {
			if t == "{" {
				var addrs []string
				for _, a := range s.toks[i+1:] {
					if a == "}" {
						break
					}
					if a != "," {
						addrs = append(addrs, a)
					}
				}
				if err := writeLines(e.m(pfTablesDir+"/"+name), addrs); err != nil {
					fmt.Fprintf(e.stderr, "pfctl: %v\n", err)
					return 1
				}
				break
			}
		}
	}
	if anchor != "" {
		return 0
	}
	return e.updateFirewall()
}

func unwrapPathErr(err error) error {
	if pe, ok := err.(*os.PathError); ok {
		return pe.Err
	}
	return err
}

// pfShow: -s rules prints the loaded scrub and filter rules, -s nat the
// translation ones, in FreeBSD's listing form (pflisting.go; -P: ports as
// numbers, -v: rule numbers and counters); -s Interfaces the skipped
// interfaces (" (skip)" under -v); -s info a minimal status.
func (e *env) pfShow(what, anchor string, verbose, numeric bool) int {
	stmts := e.loadedRules(anchor)
	switch what {
	case "rules", "r":
		pfPrintListing(e, pfListing(stmts, numeric, "normalization", "filter"), verbose)
	case "nat", "n":
		pfPrintListing(e, pfListing(stmts, numeric, "translation"), verbose)
	case "Interfaces", "I":
		for _, i := range pfSkipped(stmts) {
			if verbose {
				fmt.Fprintf(e.stdout, "%s (skip)\n", i)
			} else {
				fmt.Fprintln(e.stdout, i)
			}
		}
	case "info", "i":
		st := "Disabled"
		if e.pfEnabled() {
			st = "Enabled"
		}
		fmt.Fprintf(e.stdout, "Status: %s for 0 days 00:00:00           Debug: Urgent\n\nState Table                          Total             Rate\n  current entries                        0\n", st)
	case "Tables", "T":
		ents, _ := os.ReadDir(e.m(pfTablesDir))
		for _, de := range ents {
			fmt.Fprintln(e.stdout, de.Name())
		}
	case "states", "s", "Anchors", "A", "memory", "m", "timeouts", "t", "Sources", "S", "labels", "l", "queue", "q", "osfp", "o", "ether", "e":
	case "all", "a":
		pfPrintListing(e, pfListing(stmts, numeric, "translation"), verbose)
		pfPrintListing(e, pfListing(stmts, numeric, "normalization", "filter"), verbose)
	case "Running", "R":
		if !e.pfEnabled() {
			return 1
		}
	default:
		fmt.Fprintf(e.stderr, "pfctl: Unknown show modifier '%s'\n", what)
		return 1
	}
	return 0
}

// pfTable handles -t T -T add|delete|replace|show|flush|test|kill; add and
// replace create a missing table (freebsd.md §4.4).
func (e *env) pfTable(name, cmd string, addrs []string, fromFile bool, file string) int {
	if name == "" || cmd == "" {
		fmt.Fprintln(e.stderr, "pfctl: table command requires -t and -T")
		return 1
	}
	if fromFile {
		lines, err := readLines(e.p(file))
		if err != nil {
			fmt.Fprintf(e.stderr, "pfctl: %v\n", err)
			return 1
		}
		for _, l := range lines {
			if l, _, _ = strings.Cut(l, "#"); strings.TrimSpace(l) != "" {
				addrs = append(addrs, strings.Fields(l)...)
			}
		}
	}
	path := e.m(pfTablesDir + "/" + name)
	cur, err := readLines(path)
	if err != nil {
		fmt.Fprintf(e.stderr, "pfctl: %v\n", err)
		return 1
	}
	known := exists(path)
	switch cmd {
	case "show":
		if !known {
			fmt.Fprintln(e.stderr, "pfctl: Table does not exist.")
			return 1
		}
		for _, a := range cur {
			fmt.Fprintf(e.stdout, "   %s\n", a)
		}
		return 0
	case "test":
		for _, a := range addrs {
			found := false
			for _, c := range cur {
				found = found || c == a
			}
			if !found {
				return 1
			}
		}
		return 0
	case "replace":
		cur = dedup(addrs)
	case "add":
		cur = dedup(append(cur, addrs...))
	case "delete":
		if !known {
			fmt.Fprintln(e.stderr, "pfctl: Table does not exist.")
			return 1
		}
		cur = wordsList(wordsDel(strings.Join(cur, " "), strings.Join(addrs, " ")))
	case "flush":
		cur = nil
	case "kill":
		os.Remove(path)
		fmt.Fprintln(e.stderr, "1 table deleted.")
		return 0
	default:
		fmt.Fprintf(e.stderr, "pfctl: Unknown table command '%s'\n", cmd)
		return 1
	}
	if err := writeLines(path, cur); err != nil {
		fmt.Fprintf(e.stderr, "pfctl: %v\n", err)
		return 1
	}
	if !known {
		fmt.Fprintln(e.stderr, "1 table created.")
	}
	return 0
}

func dedup(in []string) []string {
	seen := map[string]bool{}
	var out []string
	for _, a := range in {
		if !seen[a] {
			seen[a] = true
			out = append(out, a)
		}
	}
	return out
}

func wordsList(s string) []string { return strings.Fields(s) }

// rulesFile holds the loaded statements of the main ruleset or an anchor,
// macros expanded and includes inlined, one per line (PFRulesFile).
func (e *env) rulesFile(anchor string) string {
	if anchor != "" {
		return e.m(StateDir + "/pf.anchor." + safeName(anchor))
	}
	return e.m(PFRulesFile)
}

func (e *env) loadedRules(anchor string) []pfStmt {
	lines, _ := readLines(e.rulesFile(anchor))
	var out []pfStmt
	for i, l := range lines {
		if toks := pfTokens(l); len(toks) > 0 {
			out = append(out, pfStmt{line: i + 1, file: "loaded", toks: toks})
		}
	}
	return out
}
