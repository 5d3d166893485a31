package pfsense

import (
	"bytes"
	"encoding/xml"
	"errors"
	"fmt"
	"io"
	"strconv"
	"strings"
)

// The tree below keeps every token's raw bytes, so that writing a parsed
// config back reproduces it byte for byte and only the elements arbo
// replaces are re-serialised. encoding/xml's own Marshal would normalise
// quoting, CDATA sections and empty elements all over the file, which shows
// up as noise in `arbo plan` and in pfSense's Config History diffs.

type nodeKind int

const (
	kText  nodeKind = iota // character data (text or CDATA)
	kElem                  // an element: raw is its start tag, end its end tag
	kOther                 // comment, processing instruction, directive
)

type node struct {
	kind nodeKind
	name string // lower-cased element name, as pfSense folds it
	raw  []byte
	end  []byte
	text string // decoded character data (kText)
	kids []*node
	off  int // byte offset of the token in the parsed input
}

// document is a parsed config.xml: the prolog, the root and what follows it.
type document struct {
	kids []*node
	root *node
	src  []byte
}

// maxDepth bounds nesting so that a hostile file cannot exhaust the stack of
// the recursive helpers; real configs nest fewer than 15 levels.
const maxDepth = 256

// SyntaxError is a config.xml that pfSense's parser would refuse.
type SyntaxError struct {
	Line int
	Msg  string
}

func (e *SyntaxError) Error() string {
	if e.Line > 0 {
		return fmt.Sprintf("config.xml:%d: %s", e.Line, e.Msg)
	}
	return "config.xml: " + e.Msg
}

func parse(data []byte) (*document, error) {
	d := &document{src: data}
	dec := xml.NewDecoder(bytes.NewReader(data))
	dec.Strict = true
	top := &node{kind: kElem} // holds the document's top-level tokens
	stack := []*node{top}
	prev := 0
	for {
		tok, err := dec.Token()
		if err == io.EOF {
			break
		}
		if err != nil {
			var se *xml.SyntaxError
			if errors.As(err, &se) {
				return nil, &SyntaxError{Line: se.Line, Msg: "not well-formed XML: " + se.Msg}
			}
			return nil, &SyntaxError{Line: lineAt(data, prev), Msg: "not well-formed XML: " + err.Error()}
		}
		cur := int(dec.InputOffset())
		if cur < prev || cur > len(data) {
			return nil, &SyntaxError{Msg: "reader lost its position"}
		}
		raw := data[prev:cur]
		parent := stack[len(stack)-1]
		switch t := tok.(type) {
		case xml.StartElement:
			name := t.Name.Local
			if t.Name.Space != "" {
				name = t.Name.Space + ":" + name
			}
			n := &node{kind: kElem, name: strings.ToLower(name), raw: raw, off: prev}
			parent.kids = append(parent.kids, n)
			stack = append(stack, n)
			if len(stack) > maxDepth {
				return nil, &SyntaxError{Line: lineAt(data, prev), Msg: fmt.Sprintf("elements nested deeper than %d levels", maxDepth)}
			}
		case xml.EndElement:
			parent.end = raw
			stack = stack[:len(stack)-1]
		case xml.CharData:
			parent.kids = append(parent.kids, &node{kind: kText, raw: raw, text: string(t), off: prev})
		default:
			parent.kids = append(parent.kids, &node{kind: kOther, raw: raw, off: prev})
		}
		prev = cur
	}
	if prev != len(data) {
		// Trailing bytes the decoder did not hand out as a token: keep them,
		// they can only be whitespace the decoder skipped.
		top.kids = append(top.kids, &node{kind: kText, raw: data[prev:], text: string(data[prev:]), off: prev})
	}
	d.kids = top.kids
	for _, n := range d.kids {
		switch n.kind {
		case kElem:
			if d.root != nil {
				return nil, &SyntaxError{Line: lineAt(data, n.off), Msg: fmt.Sprintf("a second root element <%s> after <%s>", n.name, d.root.name)}
			}
			d.root = n
		case kText:
			if strings.TrimSpace(n.text) != "" {
				return nil, &SyntaxError{Line: lineAt(data, n.off), Msg: "text outside the root element"}
			}
		}
	}
	if d.root == nil {
		return nil, &SyntaxError{Msg: "no root element"}
	}
	return d, nil
}

func lineAt(data []byte, off int) int {
	if off > len(data) {
		off = len(data)
	}
	return bytes.Count(data[:off], []byte{'\n'}) + 1
}

func (d *document) bytes() []byte {
	var b bytes.Buffer
	b.Grow(len(d.src) + 4096)
	for _, n := range d.kids {
		n.write(&b)
	}
	return b.Bytes()
}

func (n *node) write(b *bytes.Buffer) {
	b.Write(n.raw)
	for _, k := range n.kids {
		k.write(b)
	}
	b.Write(n.end)
}

// child returns the first child element called name, or nil.
func (n *node) child(name string) *node {
	for _, k := range n.kids {
		if k.kind == kElem && k.name == name {
			return k
		}
	}
	return nil
}

// elems returns the child elements called name.
func (n *node) elems(name string) []*node {
	var out []*node
	for _, k := range n.kids {
		if k.kind == kElem && k.name == name {
			out = append(out, k)
		}
	}
	return out
}

func (n *node) hasElems() bool {
	for _, k := range n.kids {
		if k.kind == kElem {
			return true
		}
	}
	return false
}

// value is the element's text as pfSense sees it: the character data
// trimmed of tabs and newlines (not spaces) and entity-decoded a second
// time (xmlparse.inc cData(): trim + html_entity_decode ENT_XML1).
func (n *node) value() string {
	if n == nil {
		return ""
	}
	var s strings.Builder
	for _, k := range n.kids {
		if k.kind == kText {
			s.WriteString(k.text)
		}
	}
	return xml1Unescape(strings.Trim(s.String(), "\t\n\r"))
}

// childValue is the value of the first child called name ("" when absent).
func (n *node) childValue(name string) string { return n.child(name).value() }

// xml1Unescape decodes the five XML entities and numeric references, as
// PHP's html_entity_decode(…, ENT_XML1) does; anything else stays as is.
func xml1Unescape(s string) string {
	if !strings.Contains(s, "&") {
		return s
	}
	var b strings.Builder
	for i := 0; i < len(s); i++ {
		if s[i] != '&' {
			b.WriteByte(s[i])
			continue
		}
		// Entities are short: look a few bytes ahead only, so that a value
		// full of "&" costs linear time.
		semi := strings.IndexByte(s[i:min(len(s), i+12)], ';')
		if semi < 2 {
			b.WriteByte('&')
			continue
		}
		ent := s[i+1 : i+semi]
		rep, ok := "", true
		switch ent {
		case "amp":
			rep = "&"
		case "lt":
			rep = "<"
		case "gt":
			rep = ">"
		case "quot":
			rep = `"`
		case "apos":
			rep = "'"
		default:
			ok = false
			if ent[0] == '#' {
				var v uint64
				var err error
				if len(ent) > 1 && (ent[1] == 'x' || ent[1] == 'X') {
					v, err = strconv.ParseUint(ent[2:], 16, 32)
				} else {
					v, err = strconv.ParseUint(ent[1:], 10, 32)
				}
				if err == nil && v > 0 && v <= 0x10FFFF {
					rep, ok = string(rune(v)), true
				}
			}
		}
		if !ok {
			b.WriteByte('&')
			continue
		}
		b.WriteString(rep)
		i += semi
	}
	return b.String()
}

// listTags are the element names pfSense's parser lets repeat among
// siblings (xmlparse.inc listtags(), research/pfsense.md §1.1). Every other
// name may occur once per parent, at any depth.
var listTags = func() map[string]bool {
	m := map[string]bool{}
	for _, t := range strings.Fields(`acls alias aliasurl allowedip allowedhostname authserver bridged
		build_port_path ca cacert cert crl clone config container columnitem checkipservice
		depends_on_package disk dnsserver dnsupdate domainoverrides dyndns earlyshellcmd element
		encryption-algorithm-option field fieldname gateway_item gateway_group gif gre group
		hash-algorithm-option hosts ifgroupentry igmpentry interface_array item key lagg laggroup
		lbaction lbpool l7rules lbprotocol member menu tab mobilekey mobilegroup monitor_type mount
		npt ntpserver onetoone openvpn-server openvpn-client openvpn-csc option package passthrumac
		phase1 phase2 ppp pppoe priv proxyarpnet pool qinqentry queue pages pipe radnsserver roll
		route row rrddatafile rule schedule service servernat servers sshkeyfile serversdisabled
		shellcmd staticmap subqueue switch swport timerange tunnel user vip virtual_server vlan
		vlangroup voucherdbfile vxlan wgpeer winsserver wolentry widget xmldatafile`) {
		m[t] = true
	}
	return m
}()

// Validate refuses a config.xml that pfSense itself would refuse: XML that
// is not well-formed, a root other than <pfsense>, or a non-list element
// that occurs twice under one parent (xmlparse.inc: "cannot occur more than
// once"; pfSense then restores its last backup and the change vanishes).
func Validate(base []byte) error {
	_, err := parseValid(base)
	return err
}

func parseValid(base []byte) (*document, error) {
	d, err := parse(base)
	if err != nil {
		return nil, err
	}
	if d.root.name != "pfsense" {
		return nil, &SyntaxError{Line: lineAt(base, d.root.off), Msg: fmt.Sprintf("root element is <%s>, pfSense expects <pfsense>", d.root.name)}
	}
	if err := checkRepeats(base, d.root, "pfsense"); err != nil {
		return nil, err
	}
	if err := checkMixedText(base, d.root, "pfsense"); err != nil {
		return nil, err
	}
	return d, nil
}

// checkMixedText refuses text that pfSense's parser would store as the
// value of an element that also has child elements. xmlparse.inc cData()
// (pfsense-2.7.2 src/etc/inc/xmlparse.inc:132-152) trims each chunk of
// character data of "\t\n\r" only (line 135); a remainder that is not all
// spaces (line 146) replaces the element's children with a string (line
// 147), and the next child's startElement then indexes into that string
// (line 73) and the file is not read back (pfSense restores a backup). Expat
// hands character data to cData in chunks split at each newline, so each
// line of a text node is judged on its own, as pfSense does: a line of
// indentation such as "\t\t \t <x>" passes through trim as " \t " and is
// refused, while "\t\t <x>" (trimmed to " ") is ignored by pfSense.
func checkMixedText(src []byte, n *node, path string) error {
	if n.hasElems() {
		for _, k := range n.kids {
			if k.kind != kText {
				continue
			}
			// lineAt counts from the start of the file: only for the error,
			// or a config.xml of thousands of routes costs lines × text
			// nodes (issue 17).
			for i, chunk := range strings.Split(k.text, "\n") {
				if strings.Trim(strings.Trim(chunk, "\t\n\r"), " ") == "" {
					continue
				}
				what := "whitespace that mixes spaces and tabs"
				if strings.TrimSpace(chunk) != "" {
					what = fmt.Sprintf("text %q", strings.TrimSpace(chunk))
				}
				return &SyntaxError{Line: lineAt(src, k.off) + i, Msg: fmt.Sprintf(
					"%s between the children of <%s>: pfSense's parser (xmlparse.inc cData) would take it as the element's value and fail to read the file; indent with tabs only (or spaces only after the tabs) and remove stray text",
					what, path)}
			}
		}
	}
	for _, k := range n.kids {
		if k.kind != kElem {
			continue
		}
		if err := checkMixedText(src, k, path+"/"+k.name); err != nil {
			return err
		}
	}
	return nil
}

func checkRepeats(src []byte, n *node, path string) error {
	seen := map[string]*node{}
	for _, k := range n.kids {
		if k.kind != kElem {
			continue
		}
		if !listTags[k.name] {
			if first := seen[k.name]; first != nil {
				return &SyntaxError{Line: lineAt(src, k.off), Msg: fmt.Sprintf(
					"<%s> occurs twice in <%s> (first at line %d); pfSense's parser refuses the whole file because only list elements may repeat",
					k.name, path, lineAt(src, first.off))}
			}
			seen[k.name] = k
		}
		if err := checkRepeats(src, k, path+"/"+k.name); err != nil {
			return err
		}
	}
	return nil
}

// canon writes the part of an element pfSense's parser keeps: lower-cased
// names, trimmed and decoded text of leaves, child order. Attributes,
// comments and formatting are not part of a config's meaning.
func canon(b *strings.Builder, n *node, skipRevision bool) {
	b.WriteString(n.name)
	if !n.hasElems() {
		b.WriteString("=")
		b.WriteString(strconv.Quote(n.value()))
		return
	}
	b.WriteString("{")
	for _, k := range n.kids {
		if k.kind != kElem || (skipRevision && k.name == "revision") {
			continue
		}
		canon(b, k, false)
		b.WriteString(";")
	}
	b.WriteString("}")
}

func canonical(d *document) string {
	var b strings.Builder
	canon(&b, d.root, true)
	return b.String()
}

// Equal reports whether two configs mean the same to pfSense, ignoring the
// top-level <revision> (which only records who saved last). A config that
// does not parse equals nothing.
func Equal(a, b []byte) bool {
	da, err := parse(a)
	if err != nil {
		return false
	}
	db, err := parse(b)
	if err != nil {
		return false
	}
	return canonical(da) == canonical(db)
}
