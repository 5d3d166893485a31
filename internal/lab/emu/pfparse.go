package emu

import (
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"
)

// pfStmt is one statement of a pf.conf after joining continuation lines
// and multi-line brace lists, with macros expanded.
type pfStmt struct {
	line int      // first line in its file
	file string   // file it came from
	toks []string // tokens after macro expansion
}

func (s pfStmt) text() string { return strings.Join(s.toks, " ") }

// pfError is a parse error in pfctl's "file:line: message" form.
type pfError struct {
	file string
	line int
	msg  string
}

func (e *pfError) Error() string { return fmt.Sprintf("%s:%d: %s", e.file, e.line, e.msg) }

// pfKeywords are the statements pf.conf(5) allows at the start of a line
// (FreeBSD 14 pf.conf(5) GRAMMAR, plus the ether rules and limiters of
// current FreeBSD main that appear in /work/shared/fixtures/pfctl).
var pfKeywords = map[string]string{
	"set": "option", "scrub": "normalization", "altq": "queueing", "queue": "queueing",
	"nat": "translation", "rdr": "translation", "binat": "translation", "no": "translation",
	"nat-anchor": "translation", "rdr-anchor": "translation", "binat-anchor": "translation",
	"pass": "filter", "block": "filter", "match": "filter", "antispoof": "filter", "anchor": "filter",
	"table": "", "include": "", "load": "", "ether": "", "state": "", "source": "",
}

// pfOrder is the order pf.conf(5) requires ("set require-order", on by
// default; freebsd.md §4.1).
var pfOrder = map[string]int{"option": 0, "normalization": 1, "queueing": 2, "translation": 3, "filter": 4}

type pfParser struct {
	macros   map[string]string
	stmts    []pfStmt
	readFile func(string) ([]byte, error)
	depth    int
}

// parsePF parses a pf.conf the way `pfctl -nf` checks it, as far as the lab
// goes: balanced quotes, braces and parentheses; known leading keywords;
// macros defined before use; statement order; include files; port ranges.
// It is not pfctl's grammar (freebsd.md §4.6: no Linux parser exists), so a
// rule with a misspelt option inside a valid statement still passes.
func parsePF(name string, data []byte, read func(string) ([]byte, error)) ([]pfStmt, map[string]string, error) {
	p := &pfParser{macros: map[string]string{}, readFile: read}
	if err := p.parse(name, string(data)); err != nil {
		return nil, nil, err
	}
	last := -1
	for _, s := range p.stmts {
		cat := pfKeywords[s.toks[0]]
		if s.toks[0] == "no" && len(s.toks) > 1 {
			cat = pfKeywords[s.toks[1]] // "no scrub" is normalization
		}
		if s.toks[0] == "anchor" && last > pfOrder["filter"] {
			continue
		}
		if cat == "" {
			continue
		}
		o := pfOrder[cat]
		if o < last {
			return nil, nil, &pfError{s.file, s.line, "Rules must be in order: options, normalization, queueing, translation, filtering"}
		}
		last = o
	}
	return p.stmts, p.macros, nil
}

// logicalLines strips comments and joins "\" continuations and lines that
// end inside a brace or parenthesis list, as pfctl's lexer does.
func logicalLines(file, text string) ([]struct {
	line int
	s    string
}, error) {
	var out []struct {
		line int
		s    string
	}
	var cur strings.Builder
	start, depth := 0, 0
	inQuote := false
	lines := strings.Split(text, "\n")
	for i, l := range lines {
		if cur.Len() == 0 {
			start = i + 1
		}
		cont := false
		for k := 0; k < len(l); k++ {
			c := l[k]
			switch {
			case inQuote:
				if c == '"' {
					inQuote = false
				}
				cur.WriteByte(c)
				continue
			case c == '"':
				inQuote = true
			case c == '#':
				k = len(l)
				continue
			case c == '\\' && k == len(strings.TrimRight(l, " \t"))-1:
				cont = true
				k = len(l)
				continue
			case c == '{' || c == '(':
				depth++
			case c == '}' || c == ')':
				depth--
				if depth < 0 {
					return nil, &pfError{file, i + 1, "syntax error"}
				}
			}
			cur.WriteByte(c)
		}
		if inQuote {
			return nil, &pfError{file, i + 1, "unterminated quoted string"}
		}
		if cont || depth > 0 {
			cur.WriteByte(' ')
			continue
		}
		if s := strings.TrimSpace(cur.String()); s != "" {
			out = append(out, struct {
				line int
				s    string
			}{start, s})
		}
		cur.Reset()
	}
	if depth != 0 || inQuote {
		return nil, &pfError{file, len(lines), "syntax error"}
	}
	return out, nil
}

// pfTokens splits a statement into tokens; quoted strings keep their quotes.
func pfTokens(s string) []string {
	var toks []string
	i := 0
	for i < len(s) {
		c := s[i]
		switch {
		case c == ' ' || c == '\t' || c == '\r':
			i++
		case c == '"':
			j := strings.IndexByte(s[i+1:], '"')
			if j < 0 { // unterminated (a macro value can bring one): the rest is the token
				toks = append(toks, s[i:])
				i = len(s)
				continue
			}
			toks = append(toks, s[i:i+j+2])
			i += j + 2
		case strings.IndexByte("{}(),", c) >= 0:
			toks = append(toks, string(c))
			i++
		case strings.HasPrefix(s[i:], "->"), strings.HasPrefix(s[i:], "!="), strings.HasPrefix(s[i:], "<="),
			strings.HasPrefix(s[i:], ">="), strings.HasPrefix(s[i:], "<>"), strings.HasPrefix(s[i:], "><"),
			strings.HasPrefix(s[i:], "+="):
			toks = append(toks, s[i:i+2])
			i += 2
		case c == '=' || c == '!':
			toks = append(toks, string(c))
			i++
		default:
			j := i
			for j < len(s) && strings.IndexByte(" \t\r\"{}(),=!", s[j]) < 0 && !strings.HasPrefix(s[j:], "->") {
				j++
			}
			toks = append(toks, s[i:j])
			i = j
		}
	}
	return toks
}

func (p *pfParser) parse(file, text string) error {
	p.depth++
	defer func() { p.depth-- }()
	if p.depth > 10 {
		return &pfError{file, 1, "include nesting too deep"}
	}
	lines, err := logicalLines(file, text)
	if err != nil {
		return err
	}
	for _, l := range lines {
		raw := pfTokens(l.s)
		if len(raw) == 0 {
			continue
		}
		// Macro definition: name = value, or name += value (an append,
		// seen in OpenBSD's regress corpus).
		if len(raw) >= 2 && (raw[1] == "=" || raw[1] == "+=") && pfKeywords[raw[0]] == "" && raw[0] != "table" && validVarName(strings.ReplaceAll(raw[0], "-", "_")) {
			val, err := p.expand(file, l.line, strings.Join(raw[2:], " "))
			if err != nil {
				return err
			}
			val = strings.Trim(strings.TrimSpace(val), `"`)
			if raw[1] == "+=" {
				val = p.macros[raw[0]] + val
			}
			p.macros[raw[0]] = val
			continue
		}
		if _, ok := pfKeywords[raw[0]]; !ok {
			return &pfError{file, l.line, "syntax error"}
		}
		exp, err := p.expand(file, l.line, l.s)
		if err != nil {
			return err
		}
		toks := pfTokens(exp)
		if err := checkPFStmt(toks); err != nil {
			return &pfError{file, l.line, err.Error()}
		}
		if err := pfStrict(toks); err != nil {
			return &pfError{file, l.line, err.Error()}
		}
		if toks[0] == "include" {
			if len(toks) != 2 {
				return &pfError{file, l.line, "syntax error"}
			}
			name := strings.Trim(toks[1], `"`)
			b, err := p.readFile(name)
			if err != nil {
				return &pfError{file, l.line, fmt.Sprintf("cannot open include file %s: %v", name, err)}
			}
			if err := p.parse(filepath.Base(name), string(b)); err != nil {
				return err
			}
			continue
		}
		p.stmts = append(p.stmts, pfStmt{line: l.line, file: file, toks: toks})
	}
	return nil
}

// expand substitutes $macros; an undefined one is an error, as in pfctl
// ("macro 'x' not defined").
func (p *pfParser) expand(file string, line int, s string) (string, error) {
	var b strings.Builder
	for i := 0; i < len(s); i++ {
		if s[i] != '$' {
			b.WriteByte(s[i])
			continue
		}
		j := i + 1
		for j < len(s) && (s[j] == '_' || s[j] == '-' || (s[j] >= '0' && s[j] <= '9') || (s[j]|0x20 >= 'a' && s[j]|0x20 <= 'z')) {
			j++
		}
		name := s[i+1 : j]
		v, ok := p.macros[name]
		if !ok {
			return "", &pfError{file, line, fmt.Sprintf("macro '%s' not defined", name)}
		}
		b.WriteString(v)
		i = j - 1
	}
	return b.String(), nil
}

// checkPFStmt holds the few statement-level checks: port ranges must be
// ascending (pfctl: "invalid port range"), from/to/port need an operand,
// and "->" belongs to translation rules.
func checkPFStmt(toks []string) error {
	kw := toks[0]
	translated := false
	for i, t := range toks {
		if t == "->" {
			translated = true // translation port ranges may descend (OpenBSD regress pf66)
		}
		if lo, hi, ok := strings.Cut(t, ":"); ok && !translated && i > 0 && toks[i-1] == "port" {
			a, err1 := strconv.Atoi(lo)
			b, err2 := strconv.Atoi(hi)
			if err1 == nil && err2 == nil && a > b {
				return fmt.Errorf("invalid port range")
			}
		}
		if (t == "from" || t == "to" || t == "port") && kw != "set" && kw != "table" && kw != "state" && kw != "source" {
			if i == len(toks)-1 {
				return fmt.Errorf("syntax error")
			}
		}
		if t == "->" && kw != "nat" && kw != "rdr" && kw != "binat" && !(kw == "no") {
			return fmt.Errorf("syntax error")
		}
	}
	if kw == "table" && (len(toks) < 2 || !strings.HasPrefix(toks[1], "<") || !strings.HasSuffix(toks[1], ">")) {
		return fmt.Errorf("syntax error")
	}
	if kw == "load" && (len(toks) < 2 || toks[1] != "anchor") {
		return fmt.Errorf("syntax error")
	}
	if kw == "no" && (len(toks) < 2 || (toks[1] != "nat" && toks[1] != "rdr" && toks[1] != "binat" && toks[1] != "scrub")) {
		return fmt.Errorf("syntax error")
	}
	return nil
}

// readPFFile reads an include file relative to the including file's dir.
func pfFileReader(e *env, dir string) func(string) ([]byte, error) {
	return func(name string) ([]byte, error) {
		if filepath.IsAbs(name) {
			return os.ReadFile(e.p(name))
		}
		return os.ReadFile(filepath.Join(dir, name))
	}
}

// firewallBlocksSSH is LAB.md's documented approximation of whether a new
// inbound SSH connection gets in: the ruleset blocks inbound by default (a
// block rule that is not "out"-only and names no from/to/port/proto
// restriction, i.e. "block all", "block in log all", "block in on em0")
// AND no pass rule names port 22 or ssh. The real answer depends on
// addresses, interfaces and rule order, which the lab does not model.
func firewallBlocksSSH(stmts []pfStmt) bool {
	blocks := false
	for _, s := range stmts {
		switch s.toks[0] {
		case "block":
			out, restricted := false, false
			for _, t := range s.toks[1:] {
				switch t {
				case "out":
					out = true
				case "from", "to", "port", "proto":
					restricted = true
				}
			}
			if !out && !restricted {
				blocks = true
			}
		case "pass":
			if passNamesSSH(s.toks) {
				return false
			}
		}
	}
	return blocks
}

// passNamesSSH reports whether a rule's "port" operand is 22 or ssh, alone
// ("port 22", "port = ssh") or in a list ("port { 22, 443 }").
func passNamesSSH(toks []string) bool {
	for i := 0; i < len(toks); i++ {
		if toks[i] != "port" {
			continue
		}
		k := i + 1
		if k < len(toks) && toks[k] == "=" {
			k++
		}
		if k < len(toks) && toks[k] == "{" {
			for k++; k < len(toks) && toks[k] != "}"; k++ {
				if isSSHPort(toks[k]) {
					return true
				}
			}
		} else if k < len(toks) && isSSHPort(toks[k]) {
			return true
		}
	}
	return false
}

func isSSHPort(t string) bool {
	t = strings.Trim(t, `"`)
	return t == "22" || t == "ssh"
}
