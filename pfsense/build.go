package pfsense

import (
	"bytes"
	"crypto/sha256"
	"encoding/binary"
	"encoding/hex"
	"fmt"
	"strings"
)

// el is an element arbo writes. A leaf (kids == nil) holds text; a leaf with
// empty text is written <name></name>, which is how pfSense writes both an
// empty value and a set presence flag.
type el struct {
	name string
	val  string
	kids []el
}

func leaf(name, val string) el        { return el{name: name, val: val} }
func presence(name string) el         { return el{name: name} }
func elem(name string, kids ...el) el { return el{name: name, kids: append([]el{}, kids...)} }

// cdataPrefixes are the field names pfSense writes as CDATA
// (xmlparse.inc is_cdata_entity(): a prefix match, research/pfsense.md §1.1).
var cdataPrefixes = []string{"aclname", "auth_pass", "auth_prompt", "auth_user", "certca", "certname",
	"city", "common_name", "descr", "detail", "email", "encryption_password", "hint", "ldap_",
	"login_banner", "organization", "password", "proxypass", "proxyuser", "rangedescr", "state",
	"text", "username", "varusersusername", "varuserspassword"}

func isCDATA(name string) bool {
	for _, p := range cdataPrefixes {
		if strings.HasPrefix(name, p) {
			return true
		}
	}
	return false
}

// htmlEntities escapes as PHP's htmlentities(ENT_QUOTES|ENT_XML1) does for
// the characters that matter in XML.
var htmlEntities = strings.NewReplacer("&", "&amp;", "<", "&lt;", ">", "&gt;", `"`, "&quot;", "'", "&apos;")

// xmlChars drops what XML 1.0 cannot carry (control characters, invalid
// UTF-8), so that no value handed in can make the output unparsable.
func xmlChars(s string) string {
	return strings.Map(func(r rune) rune {
		switch {
		case r == '\t' || r == '\n' || r == '\r':
			return r
		case r < 0x20, r == 0xFFFE, r == 0xFFFF, r >= 0xD800 && r <= 0xDFFF:
			return -1
		}
		return r
	}, strings.ToValidUTF8(s, "\uFFFD"))
}

func tabs(n int) string { return strings.Repeat("\t", n) }

// render writes e as pfSense's writer does: tab-indented, one element a
// line; the caller has written the indentation of e's own start tag.
func (e el) render(b *bytes.Buffer, depth int) {
	b.WriteString("<" + e.name + ">")
	if e.kids == nil {
		if e.val != "" {
			v := htmlEntities.Replace(xmlChars(e.val))
			if isCDATA(e.name) {
				v = "<![CDATA[" + v + "]]>"
			}
			b.WriteString(v)
		}
		b.WriteString("</" + e.name + ">")
		return
	}
	for _, k := range e.kids {
		b.WriteString("\n" + tabs(depth+1))
		k.render(b, depth+1)
	}
	b.WriteString("\n" + tabs(depth) + "</" + e.name + ">")
}

// node turns e into a tree node for an element at depth (root = 0).
func (e el) node(depth int) *node {
	var b bytes.Buffer
	e.render(&b, depth)
	d, err := parse(b.Bytes())
	if err != nil {
		// Only names and escaped text are written; failing here is a bug.
		panic(fmt.Sprintf("pfsense: rendering <%s>: %v", e.name, err))
	}
	return d.root
}

func isWS(n *node) bool {
	return n.kind == kText && !bytes.Contains(n.raw, []byte("<")) && strings.TrimSpace(n.text) == ""
}

// open makes p ready to take children: an explicit end tag, and the
// whitespace before it that indents the end tag at depth.
func (p *node) open(depth int) {
	if len(p.end) == 0 {
		raw := bytes.TrimSuffix(bytes.TrimRight(bytes.TrimSuffix(p.raw, []byte(">")), " \t\r\n"), []byte("/"))
		var name string
		if i := bytes.IndexAny(raw[1:], " \t\r\n"); i >= 0 {
			name = string(raw[1 : 1+i])
		} else {
			name = string(raw[1:])
		}
		p.raw = append(append([]byte{}, raw...), '>')
		p.end = []byte("</" + name + ">")
	}
	if n := len(p.kids); n == 0 || !isWS(p.kids[n-1]) || !strings.Contains(p.kids[n-1].text, "\n") {
		p.kids = append(p.kids, wsNode("\n"+tabs(depth)))
	}
}

func wsNode(s string) *node { return &node{kind: kText, raw: []byte(s), text: s} }

// endIndex is where a child appended last goes: before the whitespace that
// indents the end tag.
func (p *node) endIndex(depth int) int {
	p.open(depth)
	return len(p.kids) - 1
}

// insert puts n (an element at depth+1) at index idx of p's children,
// preceded by its indentation, and returns the index after it.
func (p *node) insert(idx int, n *node, depth int) int {
	p.open(depth)
	if idx > len(p.kids)-1 {
		idx = len(p.kids) - 1
	}
	ins := []*node{wsNode("\n" + tabs(depth+1)), n}
	p.kids = append(p.kids[:idx], append(ins, p.kids[idx:]...)...)
	return idx + 2
}

// remove takes child k (and the indentation before it) out of p and returns
// the index where it was.
func (p *node) remove(k *node) int {
	for i, c := range p.kids {
		if c != k {
			continue
		}
		start := i
		if i > 0 && isWS(p.kids[i-1]) {
			start = i - 1
		}
		p.kids = append(p.kids[:start], p.kids[i+1:]...)
		return start
	}
	return -1
}

func (p *node) index(k *node) int {
	for i, c := range p.kids {
		if c == k {
			return i
		}
	}
	return -1
}

// before is the insertion index that puts a new element right before k.
func (p *node) before(k *node) int {
	i := p.index(k)
	if i > 0 && isWS(p.kids[i-1]) {
		return i - 1
	}
	return i
}

// ensure returns p's child called name, creating an empty one at the end.
func (p *node) ensure(name string, depth int) *node {
	if c := p.child(name); c != nil {
		return c
	}
	c := leaf(name, "").node(depth + 1)
	p.insert(p.endIndex(depth), c, depth)
	return c
}

// replaceOwned swaps the children called name that owned() claims for
// fresh ones, keeping their place: where the first old one was, else after
// the last sibling of that name, else at the end.
func (p *node) replaceOwned(depth int, name string, owned func(*node) bool, fresh []el) {
	at := -1
	for _, k := range p.elems(name) {
		if owned(k) {
			i := p.remove(k)
			if at < 0 || i < at {
				at = i
			}
		}
	}
	if len(fresh) == 0 {
		return
	}
	if at < 0 {
		same := p.elems(name)
		if len(same) > 0 {
			at = p.index(same[len(same)-1]) + 1
		} else {
			at = p.endIndex(depth)
		}
	}
	for _, e := range fresh {
		at = p.insert(at, e.node(depth+1), depth)
	}
}

// setLeaf replaces p's child called name by a leaf holding val, in place,
// or adds it at the end.
func (p *node) setLeaf(name, val string, depth int) {
	n := leaf(name, val).node(depth + 1)
	for i, k := range p.kids {
		if k.kind == kElem && k.name == name {
			p.kids[i] = n
			return
		}
	}
	p.insert(p.endIndex(depth), n, depth)
}

// ObjectName is arbo's pfSense name for one of its objects: arbo_<cluster>_<name>
// with every character outside [A-Za-z0-9_] turned into "_", at most 31
// characters (pfSense's alias and gateway name limit); a longer name keeps
// its first 24 characters and gets "_" and 6 hex digits of a hash of the
// whole name, so that it stays stable and distinct.
func ObjectName(cluster, name string) string {
	b := []byte("arbo_" + cluster + "_" + name)
	for i, ch := range b {
		if !(ch >= 'a' && ch <= 'z' || ch >= 'A' && ch <= 'Z' || ch >= '0' && ch <= '9' || ch == '_') {
			b[i] = '_'
		}
	}
	s := string(b)
	if len(s) <= 31 {
		return s
	}
	sum := sha256.Sum256([]byte(s))
	return s[:24] + "_" + hex.EncodeToString(sum[:3])
}

// Trackers live in [trackerBase, trackerBase+trackerSpan): above pfSense's
// fixed ranges (10000–13999) and the factory rules (0100000101…), below the
// GUI's trackers (microtime, > 1e9 since 2001) and the auto-generated rules
// (from 1000000000), so an arbo tracker can only meet a hand-typed one.
const (
	trackerBase = 500_000_000
	trackerSpan = 500_000_000
)

func identityHash(cluster, kind, key string, salt int) [32]byte {
	return sha256.Sum256([]byte(fmt.Sprintf("%s\x00%s\x00%s\x00%d", cluster, kind, key, salt)))
}

// Tracker is the filter-rule tracker of one arbo object: a hash of its
// identity, so it survives every run (pfSense's logs and pf's ridentifier
// refer to it). salt > 0 is tried only when the plain value is taken.
func Tracker(cluster, kind, key string, salt int) uint32 {
	h := identityHash(cluster, kind, key, salt)
	return trackerBase + uint32(binary.BigEndian.Uint64(h[:8])%trackerSpan)
}

// AssociatedID is the associated-rule-id that links a port forward to its
// filter rule, in the shape of PHP's uniqid("nat_", true) that pfSense
// writes (nat_ + 14 hex digits + "." + 8 digits), derived from the identity.
func AssociatedID(cluster, key string) string {
	h := identityHash(cluster, "nat", key, 0)
	return fmt.Sprintf("nat_%s.%08d", hex.EncodeToString(h[:7]), binary.BigEndian.Uint32(h[8:12])%100_000_000)
}
