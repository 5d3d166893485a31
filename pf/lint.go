package pf

import (
	"fmt"
	"regexp"
	"strings"
	"unicode"
	"unicode/utf8"
)

// Problem is one lint finding, with the 1-based line of the statement.
type Problem struct {
	Line int
	Msg  string
}

func (p Problem) Error() string { return fmt.Sprintf("line %d: %s", p.Line, p.Msg) }

// Statement classes in the order pf.conf(5) lists them. The lint is
// stricter than pfctl, which lets macros and tables appear anywhere: arbo's
// files keep the documented order so that people read them top to bottom.
const (
	classMacro = iota
	classTable
	classOption
	classNormalization
	classQueueing
	classTranslation
	classFilter
)

var classNames = []string{"macro", "table", "option", "normalization (scrub)", "queueing", "translation (nat/rdr)", "filtering"}

var (
	reMacroDef = regexp.MustCompile(`^([A-Za-z][A-Za-z0-9_]*)\s*=`)
	reMacroUse = regexp.MustCompile(`\$([A-Za-z][A-Za-z0-9_]*)`)
	reTableDef = regexp.MustCompile(`^table\s+<([A-Za-z0-9_.-]+)>`)
	reTableUse = regexp.MustCompile(`<([A-Za-z0-9_.-]+)>`)
	reIfAddr   = regexp.MustCompile(`\b[a-z]+[0-9]*:(network|broadcast|peer)\b`)
	reSkip     = regexp.MustCompile(`^set\s+skip\s+on\s+(.*)$`)
)

// Lint checks pf.conf text for what arbo's files must respect and pfctl
// cannot check off the host: statements in pf.conf(5) order; every macro
// and table defined before use; no `set skip` on the loopback group `lo`
// (it would skip lo1, where same-host jail traffic flows: ARBO004); no
// interface-derived addresses (`if:network` expands at load time and fails
// while the interface has no address); no OpenBSD-only translation syntax
// (`nat-to`, `rdr-to`); a default block rule. It is not a parser: pfctl -nf
// on the host remains the authority.
func Lint(conf []byte) []Problem {
	var probs []Problem
	macros := map[string]bool{}
	tables := map[string]bool{}
	last, lastLine := -1, 0
	hasDefaultBlock := false
	for _, st := range statements(string(conf)) {
		text, line := st.text, st.line
		add := func(format string, a ...any) {
			probs = append(probs, Problem{Line: line, Msg: fmt.Sprintf(format, a...)})
		}
		class := -1
		first, _, _ := strings.Cut(text, " ") // text is squeezed: one space between words
		if m := reMacroDef.FindStringSubmatch(text); m != nil && !isKeyword(first) {
			class = classMacro
		} else {
			switch first {
			case "table":
				class = classTable
			case "set":
				class = classOption
			case "scrub":
				class = classNormalization
			case "altq", "queue":
				class = classQueueing
			case "nat", "rdr", "binat", "no", "nat-anchor", "rdr-anchor", "binat-anchor":
				class = classTranslation
			case "pass", "block", "match", "anchor", "antispoof", "load":
				class = classFilter
			case "include":
				// allowed anywhere
			default:
				add("unknown statement %q", first)
			}
		}

		// Uses are checked before the definition is recorded, so that a
		// macro defined in terms of itself is caught.
		for _, m := range reMacroUse.FindAllStringSubmatch(text, -1) {
			if !macros[m[1]] {
				add("macro $%s used before it is defined", m[1])
			}
		}
		if class != classTable {
			for _, m := range reTableUse.FindAllStringSubmatch(text, -1) {
				if !tables[m[1]] {
					add("table <%s> used before it is defined", m[1])
				}
			}
		}
		switch class {
		case classMacro:
			macros[reMacroDef.FindStringSubmatch(text)[1]] = true
		case classTable:
			if m := reTableDef.FindStringSubmatch(text); m != nil {
				if len(m[1]) > maxTableName {
					add("table name <%s> is longer than pf's %d characters", m[1], maxTableName)
				}
				tables[m[1]] = true
			} else {
				add("malformed table definition")
			}
		}

		if class >= 0 {
			if class < last {
				add("%s statement after a %s statement (line %d): pf.conf(5) order is macros, tables, options, normalization, queueing, translation, filtering",
					classNames[class], classNames[last], lastLine)
			} else {
				last, lastLine = class, line
			}
		}
		if m := reSkip.FindStringSubmatch(text); m != nil {
			for _, w := range strings.FieldsFunc(m[1], func(r rune) bool { return r == ' ' || r == '{' || r == '}' || r == ',' || r == '\t' }) {
				if w == "lo" || w == "lo1" {
					add("`set skip on %s` skips jail-to-jail traffic on lo1 (ARBO004); skip no loopback interface (lo0 carries jail traffic to the host: ARBO012)", w)
				}
			}
		}
		if hasIfAddrWord(text) && reIfAddr.MatchString(text) {
			add("%q: interface-derived address; use explicit addresses (it expands at load time and fails while the interface has none)", reIfAddr.FindString(text))
		}
		if strings.Contains(text, "nat-to") || strings.Contains(text, "rdr-to") {
			add("OpenBSD translation syntax (nat-to/rdr-to); FreeBSD's is `nat on IF … -> ADDR`")
		}
		if class == classFilter && isDefaultBlock(text) {
			hasDefaultBlock = true
		}
	}
	if !hasDefaultBlock {
		probs = append(probs, Problem{Line: 0, Msg: "no default block rule (`block … all` without quick)"})
	}
	return probs
}

func isKeyword(w string) bool {
	switch w {
	case "table", "set", "scrub", "nat", "rdr", "binat", "pass", "block", "match", "anchor", "antispoof", "load", "include", "altq", "queue", "no":
		return true
	}
	return false
}

func isDefaultBlock(text string) bool {
	if !strings.HasPrefix(text, "block") {
		return false // and no splitting of every table line into words
	}
	f := strings.Fields(text)
	if len(f) == 0 || f[0] != "block" || f[len(f)-1] != "all" {
		return false
	}
	for _, w := range f {
		if w == "quick" || w == "on" || w == "in" || w == "out" {
			return false
		}
	}
	return true
}

type stmt struct {
	text string
	line int
}

// statements splits pf.conf text into statements: comments removed (a "#"
// outside double quotes starts one), backslash-continued lines joined,
// blank lines dropped. Each keeps the line it starts on.
func statements(s string) []stmt {
	var out []stmt
	var cur strings.Builder
	start := 0
	for i, raw := range strings.Split(s, "\n") {
		line := stripComment(raw)
		if cur.Len() == 0 {
			start = i + 1
		}
		cont := strings.HasSuffix(strings.TrimRight(line, " \t"), "\\")
		if cont {
			line = strings.TrimSuffix(strings.TrimRight(line, " \t"), "\\")
		}
		cur.WriteString(line)
		cur.WriteString(" ")
		if cont {
			continue
		}
		if t := strings.TrimSpace(cur.String()); t != "" {
			out = append(out, stmt{text: squeeze(t), line: start})
		}
		cur.Reset()
	}
	if t := strings.TrimSpace(cur.String()); t != "" {
		out = append(out, stmt{text: squeeze(t), line: start})
	}
	return out
}

// squeeze is strings.Join(strings.Fields(t), " ") without a string per
// word: a large cluster's tier table is one statement of 20,000 addresses
// (issue 17).
func squeeze(t string) string {
	var b strings.Builder
	space, started := false, false
	for i := 0; i < len(t); {
		r, size := utf8.DecodeRuneInString(t[i:])
		if unicode.IsSpace(r) {
			space = started
		} else {
			if b.Len() == 0 && !started {
				b.Grow(len(t) - i)
			}
			if space {
				b.WriteByte(' ')
				space = false
			}
			b.WriteString(t[i : i+size])
			started = true
		}
		i += size
	}
	return b.String()
}

func stripComment(l string) string {
	in := false
	for i, r := range l {
		switch r {
		case '"':
			in = !in
		case '#':
			if !in {
				return l[:i]
			}
		}
	}
	return l
}

// hasIfAddrWord is a quick test that reIfAddr can match: the regexp needs
// one of these words after a colon, and running it over every table line
// of a large cluster was a third of rendering a pf.conf (issue 17).
func hasIfAddrWord(text string) bool {
	return strings.Contains(text, ":network") || strings.Contains(text, ":broadcast") || strings.Contains(text, ":peer")
}
