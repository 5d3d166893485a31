// Package graph draws a topology as a Graphviz graph: the gateway, each host
// as a cluster of its jails, the networks the machines sit on, and the flows
// between tiers that the services allow (package policy decides which; this
// package only draws them). Output is deterministic: the same topology gives
// the same bytes, so a rendered picture can be kept in version control.
package graph

import (
	"bufio"
	"fmt"
	"io"
	"strings"

	"github.com/arbo-project/arbo/inventory"
	"github.com/arbo-project/arbo/policy"
)

// Palettes by tier order. Data tiers draw from a warm palette and as
// cylinders so that where the data lives stands out; the others share a cool
// one. A tier keeps its colour as long as the tiers before it of the same
// kind do not change.
var (
	coolPalette = []string{"#a6cee3", "#b2df8a", "#cab2d6", "#8dd3c7", "#ffffb3", "#d9d9d9"}
	warmPalette = []string{"#fb9a99", "#fdbf6f", "#fccde5", "#e5c494"}
)

// Node IDs are namespaced so that a jail and a host of the same name (the
// format allows it) stay two nodes.
const (
	idInternet = "internet"
	idGateway  = "gateway"
)

func hostID(n string) string { return "host:" + n }
func jailID(n string) string { return "jail:" + n }
func netID(n string) string  { return "net:" + n }
func tierID(n string) string { return "tier:" + n }
func cidrID(n string) string { return "cidr:" + n }

// TierColors maps each tier to its fill colour.
func TierColors(c *inventory.Cluster) map[string]string {
	out := map[string]string{}
	var cool, warm int
	for _, t := range c.Tiers {
		if t.Role == inventory.RoleData {
			out[t.Name] = warmPalette[warm%len(warmPalette)]
			warm++
		} else {
			out[t.Name] = coolPalette[cool%len(coolPalette)]
			cool++
		}
	}
	return out
}

// writer accumulates DOT and remembers the first write error, so that the
// drawing code reads as a list of statements.
type writer struct {
	w   *bufio.Writer
	err error
}

func (d *writer) line(indent int, format string, args ...any) {
	if d.err != nil {
		return
	}
	_, d.err = fmt.Fprintf(d.w, "%s%s\n", strings.Repeat("  ", indent), fmt.Sprintf(format, args...))
}

// q quotes a DOT ID or string: every name goes through here, so a name
// holding a quote or a backslash cannot break the file.
func q(s string) string {
	r := strings.NewReplacer(`\`, `\\`, `"`, `\"`, "\n", `\n`)
	return `"` + r.Replace(s) + `"`
}

// attrs renders [k=v, …] from pairs, values quoted.
func attrs(kv ...string) string {
	var b strings.Builder
	b.WriteString("[")
	for i := 0; i+1 < len(kv); i += 2 {
		if i > 0 {
			b.WriteString(", ")
		}
		b.WriteString(kv[i])
		b.WriteString("=")
		b.WriteString(q(kv[i+1]))
	}
	b.WriteString("]")
	return b.String()
}

// DOT writes the cluster as a Graphviz digraph.
func DOT(w io.Writer, c *inventory.Cluster) error {
	d := &writer{w: bufio.NewWriter(w)}
	colors := TierColors(c)
	p := policy.Derive(c)
	internet := needsInternet(c, p)

	d.line(0, "digraph %s {", q("arbo:"+c.Name))
	d.line(1, "graph %s;", attrs("rankdir", "LR", "compound", "true", "newrank", "true", "fontname", "Helvetica",
		"label", fmt.Sprintf("arbo cluster %s (%s)", c.Name, c.Domain), "labelloc", "t", "fontsize", "16", "nodesep", "0.3", "ranksep", "0.9"))
	d.line(1, "node %s;", attrs("fontname", "Helvetica", "fontsize", "10", "style", "filled", "fillcolor", "white"))
	d.line(1, "edge %s;", attrs("fontname", "Helvetica", "fontsize", "9"))
	d.line(0, "")

	if internet {
		d.line(1, "%s %s;", q(idInternet), attrs("label", "internet", "shape", "ellipse", "style", "dashed"))
	}
	if g := c.Gateway; g != nil {
		kind := g.Kind
		if kind == "pfsense" {
			kind = "pfSense"
		}
		label := []string{g.Name, kind}
		for _, f := range g.Forwards {
			label = append(label, fmt.Sprintf("forward %s %s → %s:%s", f.Proto, f.Port, f.To, f.ToPort))
		}
		if g.DNS {
			label = append(label, "DNS resolver")
		}
		d.line(1, "%s %s;", q(idGateway), attrs("label", strings.Join(label, "\n"), "shape", "box3d", "fillcolor", "#eeeeee"))
		for _, gi := range g.Interfaces {
			if !gi.Uplink() {
				continue
			}
			l := fmt.Sprintf("%s %s\n%s/%d via %s", gi.Name, gi.Device, gi.Address, gi.Prefix.Bits(), gi.Gateway)
			if gi.Failover {
				l += "\n(failover)"
			}
			style := "solid"
			if gi.Failover {
				style = "dashed"
			}
			d.line(1, "%s -> %s %s;", q(idInternet), q(idGateway), attrs("label", l, "dir", "none", "style", style, "color", "#555555"))
		}
	}
	d.line(0, "")

	// The networks machines have interfaces on. Host-local networks (jail
	// addresses on lo1) are not wires: they appear in the tier labels.
	for _, n := range c.Networks {
		if !n.Attached || n.WAN {
			continue
		}
		l := n.Name + "\n" + n.CIDR.String()
		if n.Interconnect {
			l += "\ninterconnect"
		}
		d.line(1, "%s %s;", q(netID(n.Name)), attrs("label", l, "shape", "hexagon", "fillcolor", "#f5f5f5"))
	}
	if g := c.Gateway; g != nil {
		for _, gi := range g.Interfaces {
			if gi.Network == "" {
				continue
			}
			d.line(1, "%s -> %s %s;", q(idGateway), q(netID(gi.Network)), attrs("label", gi.Name+" "+gi.Device+"\n"+gi.Address.String(), "dir", "none", "color", "#555555"))
		}
	}
	d.line(0, "")

	for _, h := range c.Hosts {
		d.line(1, "subgraph %s {", q("cluster_"+h.Name))
		d.line(2, "graph %s;", attrs("label", "host "+h.Name, "style", "rounded", "color", "#555555"))
		hl := h.Name + "\nFreeBSD"
		if h.FreeBSDRelease != "" {
			hl += " " + h.FreeBSDRelease
		}
		d.line(2, "%s %s;", q(hostID(h.Name)), attrs("label", hl, "shape", "box", "fillcolor", "#eeeeee"))
		for _, j := range h.Jails {
			shape := "box"
			if t := c.Tier(j.Tier); t != nil && t.Role == inventory.RoleData {
				shape = "cylinder"
			}
			ips := make([]string, len(j.IPs))
			for i, a := range j.IPs {
				ips[i] = a.String()
			}
			d.line(2, "%s %s;", q(jailID(j.Name)), attrs("label", j.Name+"\n"+strings.Join(ips, "\n"), "shape", shape,
				"fillcolor", colors[j.Tier], "style", "filled,rounded"))
			d.line(2, "%s -> %s %s;", q(hostID(h.Name)), q(jailID(j.Name)), attrs("arrowhead", "none", "color", "#bbbbbb"))
		}
		d.line(1, "}")
		for _, hi := range h.Interfaces {
			// network -> host, so that with rankdir=LR the wires run from
			// the gateway through the networks into the hosts.
			d.line(1, "%s -> %s %s;", q(netID(hi.Network)), q(hostID(h.Name)), attrs("label", hi.Device+"\n"+hi.Address.String(), "dir", "none", "color", "#555555"))
		}
		if u := h.Uplink; u != nil && internet {
			d.line(1, "%s -> %s %s;", q(hostID(h.Name)), q(idInternet), attrs("label", "uplink "+u.Device+" via "+u.Router.String(), "dir", "none", "color", "#555555"))
		}
	}
	d.line(0, "")

	// Tiers: one node each, its jails tied to it, and the flows between
	// tiers drawn between these nodes: one edge per tier pair and service.
	for _, t := range c.Tiers {
		l := "tier " + t.Name + " (" + t.Role + ")"
		if n := c.Network(t.Network); n != nil {
			l += "\n" + n.Name + " " + n.CIDR.String()
		}
		if c.IsErlangTier(t.Name) {
			l += "\nErlang"
			if c.IsHiddenTier(t.Name) {
				l += " (hidden)"
			}
		}
		shape := "tab"
		if t.Role == inventory.RoleData {
			shape = "cylinder"
		}
		d.line(1, "%s %s;", q(tierID(t.Name)), attrs("label", l, "shape", shape, "fillcolor", colors[t.Name], "penwidth", "2"))
		for _, j := range c.TierJails(t.Name) {
			d.line(1, "%s -> %s %s;", q(jailID(j.Name)), q(tierID(t.Name)), attrs("style", "dotted", "arrowhead", "none", "color", "#999999"))
		}
	}
	d.line(0, "")

	seenCIDR := map[string]bool{}
	for _, e := range Edges(c, p) {
		if strings.HasPrefix(e.From, "cidr:") && !seenCIDR[e.From] {
			seenCIDR[e.From] = true
			d.line(1, "%s %s;", q(e.From), attrs("label", strings.TrimPrefix(e.From, "cidr:"), "shape", "note", "fillcolor", "#ffffff"))
		}
		kv := []string{"label", e.Label, "color", e.Color, "fontcolor", e.Color}
		if e.Dashed {
			// egress goes back to the internet on the left: it must not
			// pull the layout around.
			kv = append(kv, "style", "dashed", "constraint", "false")
		}
		d.line(1, "%s -> %s %s;", q(e.From), q(e.To), attrs(kv...))
	}
	d.line(0, "}")
	if d.err != nil {
		return fmt.Errorf("graph: %w", d.err)
	}
	if err := d.w.Flush(); err != nil {
		return fmt.Errorf("graph: %w", err)
	}
	return nil
}

// Edge is one drawn flow between two nodes.
type Edge struct {
	From, To string // node IDs
	Label    string
	Color    string
	Dashed   bool
}

// Edges lists the flows worth drawing, in policy order without duplicates:
// services (from tiers, the gateway or CIDRs), same-tier replication and
// Erlang distribution, and egress to the internet. DNS and management SSH
// are allowed everywhere and would only clutter the picture.
func Edges(c *inventory.Cluster, p *policy.Policy) []Edge {
	var out []Edge
	seen := map[Edge]bool{}
	add := func(e Edge) {
		if !seen[e] {
			seen[e] = true
			out = append(out, e)
		}
	}
	for _, f := range p.Flows {
		switch f.Why {
		case policy.WhyService, policy.WhyReplication, policy.WhyErlang:
			if f.To.Kind != policy.KindTier {
				continue
			}
			var from string
			switch f.From.Kind {
			case policy.KindTier:
				from = tierID(f.From.Tier)
			case policy.KindGateway:
				from = idGateway
				if c.Gateway == nil {
					from = idInternet
				}
			case policy.KindCIDR:
				from = cidrID(f.From.String())
			default:
				continue
			}
			label := f.Service
			switch f.Why {
			case policy.WhyReplication:
				label += " (same tier)"
			case policy.WhyErlang:
				label = "erlang distribution"
			}
			color := "#1f4e79"
			if t := c.Tier(f.To.Tier); t != nil && t.Role == inventory.RoleData {
				color = "#b2182b"
			}
			add(Edge{From: from, To: tierID(f.To.Tier), Label: strings.TrimSpace(label + "\n" + protoPorts(f)), Color: color})
		case policy.WhyEgress:
			if f.From.Kind != policy.KindTier {
				continue
			}
			label := "egress " + protoPorts(f)
			if len(f.To.Prefixes) > 0 {
				ps := make([]string, len(f.To.Prefixes))
				for i, pr := range f.To.Prefixes {
					ps[i] = pr.String()
				}
				label += " to " + strings.Join(ps, ",")
			}
			add(Edge{From: tierID(f.From.Tier), To: idInternet, Label: label, Color: "#777777", Dashed: true})
		}
	}
	return out
}

func protoPorts(f policy.Flow) string {
	proto := f.Proto
	if proto == "" {
		proto = "any"
	}
	if len(f.Ports) == 0 {
		return proto
	}
	ps := make([]string, len(f.Ports))
	for i, r := range f.Ports {
		ps[i] = r.String()
	}
	return proto + " " + strings.Join(ps, ",")
}

// needsInternet reports whether anything is drawn toward the internet:
// gateway uplinks, host uplinks, egress, or `from: gateway` without a gateway.
func needsInternet(c *inventory.Cluster, p *policy.Policy) bool {
	if c.Gateway != nil {
		for _, gi := range c.Gateway.Interfaces {
			if gi.Uplink() {
				return true
			}
		}
	}
	for _, h := range c.Hosts {
		if h.Uplink != nil {
			return true
		}
	}
	for _, e := range Edges(c, p) {
		if e.From == idInternet || e.To == idInternet {
			return true
		}
	}
	return false
}
