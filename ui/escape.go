package ui

import (
	"fmt"
	"strings"
	"unicode/utf8"
)

// Escape makes text from machines or from the topology safe to show: C0
// controls (but tab and newline), DEL and C1 controls are written as \xNN,
// bidirectional overrides and isolates and the non-characters U+FFFE/U+FFFF
// as \uNNNN, bytes that are not UTF-8 as \xNN, and a backslash that would
// start such an escape stays as it is (the output is for people, not a
// format to parse back). What comes out holds no escape sequence a terminal
// acts on and only characters XML 1.0 allows, so the same text can go into
// a terminal, a JUnit body (even as CDATA) or a log.
func Escape(s string) string { return escape(s, false) }

// EscapeLine is Escape that also writes tab and newline as \t and \n, for
// text shown on one line (a reason, a name).
func EscapeLine(s string) string { return escape(s, true) }

func escape(s string, oneLine bool) string {
	if clean(s, oneLine) {
		return s
	}
	var b strings.Builder
	for i := 0; i < len(s); {
		r, n := utf8.DecodeRuneInString(s[i:])
		switch {
		case r == utf8.RuneError && n <= 1:
			fmt.Fprintf(&b, `\x%02x`, s[i])
		case r == '\n' && oneLine:
			b.WriteString(`\n`)
		case r == '\t' && oneLine:
			b.WriteString(`\t`)
		case r == '\n' || r == '\t':
			b.WriteRune(r)
		case r < 0x20 || (r >= 0x7f && r <= 0x9f):
			fmt.Fprintf(&b, `\x%02x`, r)
		case unsafeRune(r):
			fmt.Fprintf(&b, `\u%04x`, r)
		default:
			b.WriteString(s[i : i+n])
		}
		i += n
	}
	return b.String()
}

// clean reports whether s needs no escaping, the common case.
func clean(s string, oneLine bool) bool {
	for i := 0; i < len(s); i++ {
		c := s[i]
		if c >= 0x80 || c == 0x7f || (c < 0x20 && (oneLine || (c != '\n' && c != '\t'))) {
			if c < 0x80 {
				return false
			}
			// Non-ASCII: decide rune by rune.
			for _, r := range s[i:] {
				if r == utf8.RuneError || (r >= 0x7f && r <= 0x9f) || unsafeRune(r) || (r < 0x20 && (oneLine || (r != '\n' && r != '\t'))) {
					return false
				}
			}
			return true
		}
	}
	return true
}

// unsafeRune is a printable-looking rune that reorders or hides text
// (Unicode bidi embeddings, overrides, isolates and marks; "Trojan Source",
// CVE-2021-42574) or that XML 1.0 does not allow (U+FFFE, U+FFFF).
func unsafeRune(r rune) bool {
	switch {
	case r >= 0x202a && r <= 0x202e, r >= 0x2066 && r <= 0x2069:
		return true
	case r == 0x200e || r == 0x200f || r == 0x061c:
		return true
	case r == 0xfffe || r == 0xffff:
		return true
	}
	return false
}
