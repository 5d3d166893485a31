// Package pf renders each host's /etc/pf.conf: the tier policy of the
// topology (package policy's flows) as FreeBSD pf rules, NAT for the host's
// host-local jail addresses, and the management SSH rule that keeps the
// operator in (ARBO010). It also holds a small lint of pf.conf text
// (statement order, macros and tables defined before use, forbidden forms).
//
// The rendered file follows FreeBSD's pf dialect (≤14 and current main):
// the old translation syntax `nat on IF … -> (IF)`, `scrub in all`, and no
// `set skip` at all: lo0 carries a jail's packets to its own host, so it is
// filtered (ARBO012), and the `lo` group holds lo1, where jails talk
// (ARBO004).
package pf

import (
	"fmt"

	"github.com/arbo-project/arbo/inventory"
	"github.com/arbo-project/arbo/policy"
	"github.com/arbo-project/arbo/state"
	"github.com/arbo-project/arbo/templates"
)

// Path is where pf reads its rules (rc.conf pf_rules default).
const Path = "/etc/pf.conf"

// TemplateName is the template that lays out the file.
const TemplateName = "pf.conf.tmpl"

// Data is what templates/files/pf.conf.tmpl receives. Every statement is
// already valid pf text; the template only decides layout and comments.
type Data struct {
	Cluster string // the cluster's name
	Domain  string
	Host    string // the host this file is for
	// WayOut is the device the host leaves by (TOPOLOGY.md "Networks and
	// addresses"), "" when it has none: then there is no NAT.
	WayOut string

	Macros []Macro // macro definitions, in use order
	Tables []Table // arbo_cluster, arbo_gateway, arbo_ns, then one per tier

	// Options are `set` statements: none by default (no `set skip`, lo0
	// is filtered: ARBO012); a template may still print its own.
	Options []Statement
	// Scrub is the normalization statements (scrub in all).
	Scrub []Statement
	// Translation is `no nat` then `nat`, one nat per tier whose local,
	// host-local jails may leave the cluster.
	Translation []Statement

	// Management is the first filter rule: SSH from the management
	// networks, `flags any` so that a session older than the ruleset
	// survives a reload (ARBO010).
	Management Statement
	// Default is the default-deny rule that follows it.
	Default Statement
	// Filter is every other filter rule, all `quick`, in policy order.
	Filter []Statement
}

// Macro is `Name = "Value"`.
type Macro struct {
	Name, Value string
	Why         string
}

// Table is `table <Name> const { Addrs }`.
type Table struct {
	Name  string
	Addrs []string
	Why   string
}

// Statement is one pf statement with the comment lines that explain it.
type Statement struct {
	Why  []string // comment lines, without "# "
	Text string
}

// Render returns host h's /etc/pf.conf. It is pure: everything comes from
// the model, and the output is linted before it is returned, so that a
// template override that breaks the statement order fails here rather than
// in pfctl on the host.
func Render(c *inventory.Cluster, h *inventory.Host, ts *templates.Set) (state.File, error) {
	return RenderPolicy(c, h, policy.Derive(c), ts)
}

// RenderPolicy is Render with the cluster's policy derived once by the
// caller: deriving it lists every jail of the cluster, so deriving it again
// for each host costs hosts × jails (issue 17).
func RenderPolicy(c *inventory.Cluster, h *inventory.Host, p *policy.Policy, ts *templates.Set) (state.File, error) {
	d, err := Build(c, h, p)
	if err != nil {
		return state.File{}, err
	}
	out, err := ts.Execute(TemplateName, d)
	if err != nil {
		return state.File{}, fmt.Errorf("pf: host %s: %w", h.Name, err)
	}
	if probs := Lint(out); len(probs) > 0 {
		return state.File{}, fmt.Errorf("pf: host %s: the rendered %s fails the lint: %w", h.Name, Path, probs[0])
	}
	return state.File{
		Path:    Path,
		Mode:    0o644,
		Owner:   "root",
		Group:   "wheel",
		Content: out,
		Reload:  []state.Reload{{Kind: state.ReloadPF}},
		Source:  TemplateName,
	}, nil
}
