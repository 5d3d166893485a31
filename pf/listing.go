package pf

import (
	"bytes"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"net/netip"
	"regexp"
	"strings"
)

// This file reads what pfctl prints of the ruleset loaded in the kernel,
// so that the ARBO rules can judge the rules a machine actually runs
// (`arbo check --live`) and plan can tell them from the ones arbo loaded.
//
// The form is FreeBSD's print_rule() (sbin/pfctl/pfctl_parser.c, read at
// freebsd-src 04fecb9b4df6561b24d7a6e6d6f86afe97b8d0ec): one rule per line,
// macros and lists already expanded by the parser, pf.conf's own words, so
// that pfctl reads its own output back (the regress suite's selfpfNNNN
// tests, see fixtures/pfctl/README.md). What differs from a pf.conf:
//   - with -v, every rule starts with "@N " (print_rule: `if (verbose)
//     printf("@%d ", r->nr)`) and pfctl_show_rules follows it with
//     indented "[ Evaluations: … ]" / "[ Inserted: … ]" counter lines;
//   - defaults are spelt out: `all` for from any to any (print_fromto),
//     `flags S/SA keep state` on a pass (print_rule prints flags, then
//     `keep state`, `no state` for a stateless pass), ports as `port = 22`
//     or service names (`port = ssh`), labels quoted;
//   - `pfctl -sr` prints scrub and filter rules, `pfctl -sn` nat, rdr and
//     binat rules, `anchor "name" all` for an anchor call; no macro, no
//     table contents (those come from `pfctl -t NAME -T show`, SetTable).
//   - `pfctl -nv` (the regress .ok files) also prints `set …` options and
//     `table <name> …` definitions (print_tabledef), which ParseListing
//     reads too.
// A rule whose words arbo cannot judge (nat-to, received-on, an anchor, a
// state limiter, an OS fingerprint) is kept as an Opaque rule, which
// Unknowns reports: the listing is read, but not judged as safe.

var (
	reRuleNumber = regexp.MustCompile(`^@[0-9]+[ \t]+`)
)

// ParseListing reads pfctl's listing of a loaded ruleset: the output of
// `pfctl -sr` and `pfctl -sn` (concatenated in either order), with or
// without -v, or of `pfctl -nv`. name is used in errors ("name:line:
// what"), so that a listing arbo cannot read names the machine and the
// line of pfctl's output.
func ParseListing(name string, src []byte) (*Ruleset, error) {
	lines := strings.Split(string(src), "\n")
	for i, l := range lines {
		t := strings.TrimSpace(l)
		switch {
		case strings.HasPrefix(t, "["):
			// pfctl -v counters under a rule ("  [ Evaluations: 0 …]").
			if !strings.HasSuffix(t, "]") {
				return nil, &ParseError{name, i + 1, "unterminated [ … ] counter line"}
			}
			lines[i] = ""
		case strings.HasPrefix(t, "@"):
			loc := reRuleNumber.FindStringIndex(t)
			if loc == nil {
				return nil, &ParseError{name, i + 1, fmt.Sprintf("rule number %q is not @N followed by a rule", firstWord(t))}
			}
			lines[i] = t[loc[1]:]
		}
	}
	p := &parser{listing: true, rs: &Ruleset{Name: name, Macros: map[string]string{}, Tables: map[string]*Table2{}}}
	stmts, err := splitStatements(name, strings.Join(lines, "\n"))
	if err != nil {
		return nil, err
	}
	for _, st := range stmts {
		// pfctl -nv echoes macro definitions (OpenBSD's pf6.ok, pf18.ok),
		// but rules come out expanded: a $ in a rule is not pfctl's output.
		if len(st.toks) < 2 || st.toks[1].text != "=" || st.toks[1].quoted {
			for _, tk := range st.toks {
				if !tk.quoted && strings.HasPrefix(tk.text, "$") {
					return nil, p.errf(st.line, "%q: a listing holds no macros", tk.text)
				}
			}
		}
		if err := p.statement(st); err != nil {
			return nil, err
		}
	}
	return p.rs, nil
}

func firstWord(s string) string {
	if f := strings.Fields(s); len(f) > 0 {
		return f[0]
	}
	return ""
}

// SetTable fills table name from what `pfctl -t NAME -T show` printed: one
// address or network per line (pfctl_table.c print_table: three spaces,
// then the address; "!" before a negated entry). Tables are not in the
// rules' listing, and a rule that names a table with no contents is an
// Unknown, so a checker fills every table the rules use.
func (r *Ruleset) SetTable(name string, show []byte) error {
	t := &Table2{Name: name}
	for i, l := range strings.Split(string(show), "\n") {
		f := strings.Fields(l)
		if len(f) == 0 {
			continue
		}
		neg := false
		if f[0] == "!" {
			neg, f = true, f[1:]
		} else if strings.HasPrefix(f[0], "!") {
			neg, f[0] = true, f[0][1:]
		}
		if len(f) != 1 {
			return fmt.Errorf("%s: table <%s>, line %d: %q is not one address", r.Name, name, i+1, strings.TrimSpace(l))
		}
		pfx, err := parseAddrOrPrefix(f[0])
		if err != nil {
			return fmt.Errorf("%s: table <%s>, line %d: %w", r.Name, name, i+1, err)
		}
		t.Entries = append(t.Entries, Host{Kind: HostPrefix, Neg: neg, Prefix: pfx})
	}
	t.index()
	if r.Tables == nil {
		r.Tables = map[string]*Table2{}
	}
	r.Tables[name] = t
	return nil
}

func parseAddrOrPrefix(s string) (netip.Prefix, error) {
	if strings.Contains(s, "/") {
		p, err := netip.ParsePrefix(s)
		if err != nil {
			return netip.Prefix{}, fmt.Errorf("%q is not an address or network", s)
		}
		return p.Masked(), nil
	}
	a, err := netip.ParseAddr(s)
	if err != nil {
		return netip.Prefix{}, fmt.Errorf("%q is not an address or network", s)
	}
	return netip.PrefixFrom(a, a.BitLen()), nil
}

// TablesUsed lists the tables the rules name, in first-use order.
func (r *Ruleset) TablesUsed() []string {
	var out []string
	seen := map[string]bool{}
	for _, rule := range r.Rules {
		for _, hs := range [][]Host{rule.From, rule.To} {
			for _, h := range hs {
				if h.Kind == HostTable && !seen[h.Name] {
					seen[h.Name] = true
					out = append(out, h.Name)
				}
			}
		}
	}
	return out
}

// Info is what `pfctl -s info` says that arbo needs.
type Info struct {
	Enabled bool
}

// ParseInfo reads `pfctl -s info`. Its first line is print_status()'s
// "Status: Enabled for 0 days 00:01:02" or "Status: Disabled …"
// (pfctl_parser.c, print_status: `running = s->running ? "Enabled" :
// "Disabled"`, then "Status: %s for %u days %.2u:%.2u:%.2u" or, before pf
// was ever started, "Status: %s"), padded and followed by "Debug: …".
func ParseInfo(name string, out []byte) (Info, error) {
	for i, l := range strings.Split(string(out), "\n") {
		f := strings.Fields(l)
		if len(f) == 0 {
			continue
		}
		if f[0] != "Status:" || len(f) < 2 {
			return Info{}, &ParseError{name, i + 1, fmt.Sprintf("expected pfctl's \"Status: Enabled|Disabled\", found %q", strings.TrimSpace(l))}
		}
		switch f[1] {
		case "Enabled":
			return Info{Enabled: true}, nil
		case "Disabled":
			return Info{}, nil
		}
		return Info{}, &ParseError{name, i + 1, fmt.Sprintf("pf status %q is neither Enabled nor Disabled", f[1])}
	}
	return Info{}, &ParseError{name, 1, "empty output: no \"Status:\" line"}
}

// NormalizeListing returns a listing in a form that does not change while
// the same rules stay loaded: rule numbers and -v counter lines dropped,
// blanks trimmed, empty lines removed. Two loads of the same pf.conf give
// the same normal form.
func NormalizeListing(src []byte) []byte {
	var b bytes.Buffer
	for _, l := range strings.Split(string(src), "\n") {
		t := strings.TrimSpace(l)
		if t == "" || strings.HasPrefix(t, "[") {
			continue
		}
		if loc := reRuleNumber.FindStringIndex(t); loc != nil {
			t = t[loc[1]:]
		}
		b.WriteString(strings.Join(strings.Fields(t), " "))
		b.WriteByte('\n')
	}
	return b.Bytes()
}

// ListingDigest is the sha256 (hex) of the normal forms of the
// translation (`pfctl -sn`) and filter (`pfctl -sr`) listings: what apply
// records in the manifest after it loads a ruleset, and what plan and
// check --live compare with the machine's.
func ListingDigest(nat, rules []byte) string {
	h := sha256.New()
	h.Write([]byte("pfctl -sn\n"))
	h.Write(NormalizeListing(nat))
	h.Write([]byte("pfctl -sr\n"))
	h.Write(NormalizeListing(rules))
	return hex.EncodeToString(h.Sum(nil))
}

// ParseSkips reads `pfctl -v -s Interfaces`: one interface or group per
// line, " (skip)" after those `set skip on` names (pfctl.c print_iface:
// `if (p->pfik_flags & PFI_IFLAG_SKIP) printf(" (skip)")` under -v). The
// rules' listing does not print options, so this is where a loaded
// ruleset's skipped interfaces come from.
func ParseSkips(name string, out []byte) ([]string, error) {
	var skips []string
	for i, l := range strings.Split(string(out), "\n") {
		if strings.HasPrefix(l, "\t") || strings.TrimSpace(l) == "" {
			continue // -vv statistics lines
		}
		f := strings.Fields(l)
		switch {
		case len(f) == 1:
		case len(f) == 2 && f[1] == "(skip)":
			skips = append(skips, f[0])
		default:
			return nil, &ParseError{name, i + 1, fmt.Sprintf("expected an interface name, optionally followed by (skip), found %q", strings.TrimSpace(l))}
		}
	}
	return skips, nil
}
