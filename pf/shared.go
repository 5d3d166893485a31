package pf

import (
	"fmt"
	"net/netip"
	"strings"

	"github.com/arbo-project/arbo/inventory"
	"github.com/arbo-project/arbo/policy"
	"github.com/arbo-project/arbo/templates"
)

// Checking a large cluster renders one pf.conf per host, and each holds
// every jail address of every tier: 1,000 hosts of 20 jails make 1,000
// files of 20,000 addresses each, too much text to render, lint and parse
// in a second. SharedRender renders a host's file with each table's
// address list replaced by one placeholder word, and SharedTables parses
// each distinct address list once for the whole cluster; Parse with a
// SharedTables puts the parsed lists back in place of the placeholders.
// The template still decides everything else, tables included: a table it
// writes by hand is parsed as written.

// placeholderPrefix starts a placeholder word: "@" is not valid in pf, so
// a placeholder can only come from SharedRender.
const placeholderPrefix = "@arbo_table_"

// SharedTables holds the parsed address lists of a cluster's tables, by
// placeholder.
type SharedTables struct {
	bySlice map[sliceID]string // the same list, by identity: the renderer shares tier tables across hosts
	byText  map[string]string  // joined address list → placeholder
	parsed  map[string][]Host  // placeholder → entries
	single  map[string]map[netip.Addr]bool
}

// index returns the shared lookup map of a table made of one placeholder,
// building it on first use (nil when the list is not all single addresses).
func (s *SharedTables) index(ph string, t *Table2) map[netip.Addr]bool {
	if m, ok := s.single[ph]; ok {
		return m
	}
	t.index()
	s.single[ph] = t.single
	return t.single
}

// NewSharedTables returns an empty cache.
func NewSharedTables() *SharedTables {
	return &SharedTables{bySlice: map[sliceID]string{}, byText: map[string]string{}, parsed: map[string][]Host{}, single: map[string]map[netip.Addr]bool{}}
}

// sliceID names one backing array and length: a list the renderer shares
// is recognised without joining its 20,000 addresses on every host.
type sliceID struct {
	first *string
	n     int
}

func (s *SharedTables) placeholder(addrs []string) (string, error) {
	var id sliceID
	if len(addrs) > 0 {
		id = sliceID{&addrs[0], len(addrs)}
		if ph, ok := s.bySlice[id]; ok {
			return ph, nil
		}
	}
	key := strings.Join(addrs, ",")
	if ph, ok := s.byText[key]; ok {
		if len(addrs) > 0 {
			s.bySlice[id] = ph
		}
		return ph, nil
	}
	ph := fmt.Sprintf("%s%d", placeholderPrefix, len(s.byText))
	hs := make([]Host, 0, len(addrs))
	for _, a := range addrs {
		if pfx, err := netip.ParsePrefix(a); err == nil {
			hs = append(hs, Host{Prefix: pfx.Masked()})
			continue
		}
		ad, err := netip.ParseAddr(a)
		if err != nil {
			return "", fmt.Errorf("pf: table address %q: %w", a, err)
		}
		hs = append(hs, Host{Prefix: netip.PrefixFrom(ad, ad.BitLen())})
	}
	s.byText[key] = ph
	if len(addrs) > 0 {
		s.bySlice[id] = ph
	}
	s.parsed[ph] = hs
	return ph, nil
}

// SharedRender renders host h's pf.conf as Render does (same data, same
// template, same lint) but with table address lists as placeholders that
// ParseShared resolves through s. p is the cluster's policy, derived once.
func SharedRender(c *inventory.Cluster, h *inventory.Host, p *policy.Policy, ts *templates.Set, s *SharedTables) ([]byte, error) {
	d, err := Build(c, h, p)
	if err != nil {
		return nil, err
	}
	for i := range d.Tables {
		ph, err := s.placeholder(d.Tables[i].Addrs)
		if err != nil {
			return nil, err
		}
		d.Tables[i].Addrs = []string{ph}
	}
	out, err := ts.Execute(TemplateName, d)
	if err != nil {
		return nil, fmt.Errorf("pf: host %s: %w", h.Name, err)
	}
	if probs := Lint(out); len(probs) > 0 {
		return nil, fmt.Errorf("pf: host %s: the rendered %s fails the lint: %w", h.Name, Path, probs[0])
	}
	return out, nil
}

// ParseShared is Parse for text from SharedRender: a placeholder word in a
// table stands for the list s holds for it.
func ParseShared(name string, src []byte, s *SharedTables) (*Ruleset, error) {
	return parse(name, src, s)
}
