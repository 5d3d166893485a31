package ui

import (
	"bytes"
	"encoding/xml"
	"strings"
	"testing"
)

func TestEscape(t *testing.T) {
	for _, tc := range []struct{ in, want, line string }{
		{"plain text, ünïcode ok", "plain text, ünïcode ok", "plain text, ünïcode ok"},
		{"a\x00b", `a\x00b`, `a\x00b`},
		{"\x1b[2JNo changes.", `\x1b[2JNo changes.`, `\x1b[2JNo changes.`},
		{"two\nlines\tand tab", "two\nlines\tand tab", `two\nlines\tand tab`},
		{"cr\rback", `cr\x0dback`, `cr\x0dback`},
		{"del\x7f c1\u009b[2J", `del\x7f c1\x9b[2J`, `del\x7f c1\x9b[2J`},
		{"bad \xff utf8 \xc3", `bad \xff utf8 \xc3`, `bad \xff utf8 \xc3`},
		{"bidi \u202eevil\u202c \u2066x\u2069 \u200f", `bidi \u202eevil\u202c \u2066x\u2069 \u200f`, `bidi \u202eevil\u202c \u2066x\u2069 \u200f`},
		{"nonchar \uffff", `nonchar \uffff`, `nonchar \uffff`},
	} {
		if got := Escape(tc.in); got != tc.want {
			t.Errorf("Escape(%q) = %q, want %q", tc.in, got, tc.want)
		}
		if got := EscapeLine(tc.in); got != tc.line {
			t.Errorf("EscapeLine(%q) = %q, want %q", tc.in, got, tc.line)
		}
	}
}

// Whatever goes in, what comes out has no ESC and is valid XML 1.0 text,
// also as CDATA, which encoding/xml writes unfiltered.
func TestEscapeOutputIsXMLSafe(t *testing.T) {
	var all []byte
	for i := 0; i < 256; i++ {
		all = append(all, byte(i))
	}
	in := string(all) + "\u202e\u2066\ufffe\uffff\U0010ffff]]>"
	out := Escape(in)
	if strings.ContainsAny(out, "\x1b\x00\u009b\u202e") {
		t.Fatalf("escaped text still holds controls: %q", out)
	}
	type doc struct {
		XMLName xml.Name `xml:"d"`
		Body    string   `xml:",cdata"`
	}
	var b bytes.Buffer
	if err := xml.NewEncoder(&b).Encode(doc{Body: out}); err != nil {
		t.Fatal(err)
	}
	var back doc
	if err := xml.Unmarshal(b.Bytes(), &back); err != nil {
		t.Fatalf("XML from escaped text does not parse: %v\n%q", err, b.String())
	}
	if back.Body != out {
		t.Fatalf("round trip changed the text:\n%q\n%q", back.Body, out)
	}
}
