// Package live runs arbo check on what the machines actually run (`arbo
// check --live`): it reads, read-only and over the same SSH settings as
// plan, each host's pf state (pfctl -s info, the loaded rules and tables)
// and its manifest, and the gateway's loaded rules and config.xml; it
// judges the loaded rules with the same ARBO rules as check, and adds the
// live-only ARBO015 (the machine can be read, pf filters, the loaded rules
// are the ones arbo loaded, pfSense loaded arbo's rules).
package live

import (
	"context"
	"encoding/xml"
	"fmt"
	"net/netip"
	"slices"
	"strconv"
	"strings"

	"golang.org/x/sync/errgroup"

	"github.com/arbo-project/arbo/check"
	"github.com/arbo-project/arbo/check/rendered"
	"github.com/arbo-project/arbo/inventory"
	"github.com/arbo-project/arbo/pf"
	"github.com/arbo-project/arbo/plan"
)

// Options of a live check.
type Options struct {
	Check    check.Options
	Dial     plan.Dialer
	Parallel int
	Hosts    []string // only these machines (all when empty)
}

// Run reads every selected machine and checks the topology against what
// they run. A machine that cannot be reached or read is an ARBO015 error
// finding for it; a loaded listing arbo cannot parse, or loaded rules it
// cannot judge (an anchor, a table it could not read), is an error naming
// the machine and the line of pfctl's output: arbo never judges what it
// does not understand as safe.
func Run(ctx context.Context, c *inventory.Cluster, o Options) (*check.Report, error) {
	names, err := plan.Selected(c, o.Hosts)
	if err != nil {
		return nil, err
	}
	nets := rendered.Networks(c)
	lives := make([]check.Live, len(names))
	sets := make([]check.Ruleset, len(names))
	errs := make([]error, len(names))
	var g errgroup.Group
	g.SetLimit(max(o.Parallel, 1))
	for i, m := range names {
		g.Go(func() error {
			lives[i], sets[i], errs[i] = readMachine(ctx, c, m, o.Dial, nets[m])
			return nil
		})
	}
	_ = g.Wait()
	var bad []error
	for _, e := range errs {
		if e != nil {
			bad = append(bad, e)
		}
	}
	if len(bad) > 0 {
		return nil, joinErrs(bad)
	}
	co := o.Check
	co.Live = map[string]check.Live{}
	if co.Rulesets == nil {
		co.Rulesets = map[string]check.Ruleset{}
	}
	for i, m := range names {
		co.Live[m] = lives[i]
		if sets[i] != nil {
			co.Rulesets[m] = sets[i]
		}
	}
	return check.Run(c, co), nil
}

type joined []error

func (j joined) Error() string {
	s := make([]string, len(j))
	for i, e := range j {
		s[i] = e.Error()
	}
	return strings.Join(s, "\n")
}

func (j joined) Unwrap() []error { return j }

func joinErrs(es []error) error { return joined(es) }

// readMachine reads one machine. The returned error is for what makes the
// whole run fail (exit 1): a listing arbo cannot parse or judge. A machine
// that cannot be reached is a Live with Err.
func readMachine(ctx context.Context, c *inventory.Cluster, m string, dial plan.Dialer, net *pf.Network) (check.Live, check.Ruleset, error) {
	t, err := dial(ctx, m)
	if err != nil {
		return check.Live{Err: err.Error()}, nil, nil
	}
	if cl, ok := t.(interface{ Close() error }); ok {
		defer cl.Close()
	}
	gw := c.IsGateway(m)
	p, err := plan.ReadPF(ctx, t, m, gw)
	if err != nil {
		return check.Live{Err: err.Error()}, nil, nil
	}
	var l check.Live
	switch {
	case p.Err != "":
		l.PFOff = p.Err
	case !p.Enabled:
		l.PFOff = "disabled (pfctl -s info: Status: Disabled)"
	}
	if gw {
		got, err := t.ReadFiles(ctx, []string{plan.ConfigXML})
		if err != nil {
			return check.Live{Err: err.Error()}, nil, nil
		}
		trackers, err := ArboTrackers(c.Name, got[plan.ConfigXML])
		if err != nil {
			return check.Live{}, nil, fmt.Errorf("machine %s: %s: %w", m, plan.ConfigXML, err)
		}
		if l.PFOff == "" {
			l.MissingTrackers = MissingTrackers(trackers, p.Rules)
		}
		return l, nil, nil // the gateway's rules are pfSense's: judged by their trackers
	}
	man, err := plan.ReadManifest(ctx, t, m)
	if err != nil {
		return check.Live{Err: err.Error()}, nil, nil
	}
	if l.PFOff != "" {
		return l, Open{}, nil // nothing is filtered: judge it so
	}
	switch {
	case man == nil || man.Activated.PFListing == "":
		l.Drift = "arbo has no record of loading these rules (no pf_listing_sha256 in " + plan.ManifestPath + ")"
	case man.Activated.PFListing != p.Digest:
		l.Drift = "the loaded rules are not the ones arbo loaded (the digest of pfctl -sr and -sn differs from the one apply recorded)"
	}
	r, err := p.Ruleset(m)
	if err != nil {
		return l, nil, fmt.Errorf("machine %s: the loaded rules cannot be read: %w", m, err)
	}
	r.Net = net
	if u := r.Unknowns(); len(u) > 0 {
		return l, nil, fmt.Errorf("machine %s: the loaded rules cannot be judged: %s", m, u[0])
	}
	return l, r, nil
}

// Open is the firewall of a machine whose pf does not filter: every flow
// passes, nothing is skipped.
type Open struct{}

func (Open) Allows(netip.Addr, netip.Addr, string, int) bool           { return true }
func (Open) FirstMatchPasses(netip.Addr, netip.Addr, string, int) bool { return true }
func (Open) Skips() []string                                           { return nil }

// ArboTrackers lists the trackers of the enabled filter rules arbo owns in
// a pfSense config.xml (descr "arbo:<cluster>:…", see pfsense.Merge).
func ArboTrackers(cluster string, configXML []byte) ([]string, error) {
	if configXML == nil {
		return nil, fmt.Errorf("missing: is this a pfSense box?")
	}
	var doc struct {
		Rules []struct {
			Tracker  string    `xml:"tracker"`
			Descr    string    `xml:"descr"`
			Disabled *struct{} `xml:"disabled"`
		} `xml:"filter>rule"`
	}
	if err := xml.Unmarshal(configXML, &doc); err != nil {
		return nil, err
	}
	prefix := "arbo:" + cluster + ":"
	var out []string
	for _, r := range doc.Rules {
		if strings.HasPrefix(strings.TrimSpace(r.Descr), prefix) && r.Disabled == nil && strings.TrimSpace(r.Tracker) != "" {
			out = append(out, strings.TrimSpace(r.Tracker))
		}
	}
	return out, nil
}

// MissingTrackers returns the trackers with no `ridentifier N` in the
// listing: pfSense writes each rule's tracker as its ridentifier
// (pfsense-2.7.2 src/etc/inc/filter.inc:3688), and pfctl prints it back
// (print_rule: " ridentifier %u").
func MissingTrackers(trackers []string, rules []byte) []string {
	have := map[string]bool{}
	f := strings.Fields(string(rules))
	for i := 0; i+1 < len(f); i++ {
		if f[i] == "ridentifier" {
			if _, err := strconv.ParseUint(f[i+1], 10, 32); err == nil {
				have[f[i+1]] = true
			}
		}
	}
	var out []string
	for _, t := range trackers {
		if !have[t] {
			out = append(out, t)
		}
	}
	slices.Sort(out)
	return slices.Compact(out)
}
