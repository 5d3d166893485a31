// Package check runs the ARBO003–ARBO016 rules of TOPOLOGY.md ("What arbo
// check proves") on a loaded topology and reports findings, each naming a
// machine (or "cluster" for the per-tier and cluster-wide rules), with text,
// JSON and JUnit views in output.go.
//
// The firewall rules (ARBO004, ARBO007, ARBO010, ARBO012) reason on a Ruleset per
// machine: by default the policy derived from the topology (package policy);
// later a parsed pf.conf, rendered or live, through Options.Rulesets.
package check

import (
	"cmp"
	"net/netip"
	"slices"
	"strings"
	"time"

	"github.com/arbo-project/arbo/inventory"
	"github.com/arbo-project/arbo/policy"
)

// Severity of a finding.
type Severity string

const (
	Error   Severity = "error"
	Warning Severity = "warning"
	Info    Severity = "info"
)

// Finding is one thing a rule found.
type Finding struct {
	ID       string
	Severity Severity // effective: after --strict
	Machine  string   // a machine name, or inventory.MachineCluster
	Subject  string   // the jail, tier, service or flow it is about
	Message  string
	Pos      inventory.Pos // where in the topology to look; zero when nowhere in particular

	Accepted     bool
	AcceptReason string
}

// Fails reports whether the finding fails a run: error level and not accepted.
func (f Finding) Fails() bool { return f.Severity == Error && !f.Accepted }

// Rule is one ARBO0xx rule.
type Rule struct {
	ID       string
	Title    string
	Severity Severity // default
	Strict   Severity // under --strict, when it differs from Severity
	// Machines lists the machines the rule applies to: each is a JUnit
	// testcase, passing or not, and every finding of the rule names one.
	Machines func(x *env) []string
	Check    func(x *env) []Finding
}

// Rules is the rule table, in ID order.
var Rules = []Rule{
	{ID: "ARBO003", Title: "on each host, app and data jails are on different networks",
		Severity: Error, Machines: hosts, Check: checkSeparateNetworks},
	{ID: "ARBO004", Title: "on each host, the firewall denies every flow between tiers that services.from does not allow",
		Severity: Error, Machines: hosts, Check: checkHostFirewall},
	{ID: "ARBO005", Title: "no data-tier address is reachable from outside",
		Severity: Error, Machines: machines, Check: checkDataUnreachable},
	{ID: "ARBO006", Title: "a data tier's egress stays inside the cluster",
		Severity: Error, Machines: cluster, Check: checkDataEgress},
	{ID: "ARBO007", Title: "Erlang ports (4369 and dist_ports) are open only between the Erlang tiers",
		Severity: Error, Machines: hosts, Check: checkErlangPorts},
	{ID: "ARBO008", Title: "redundancy: each tier has at least two jails on at least two hosts",
		Severity: Warning, Strict: Error, Machines: cluster, Check: checkRedundancy},
	{ID: "ARBO009", Title: "survives the loss of any one host",
		Severity: Warning, Strict: Error, Machines: cluster, Check: checkHostLoss},
	{ID: "ARBO010", Title: "management access: SSH from the management networks stays open before any other rule",
		Severity: Error, Machines: machines, Check: checkManagement},
	{ID: "ARBO011", Title: "the gateway is a single point of failure (no CARP peer)",
		Severity: Info, Machines: gateway, Check: checkGatewaySPOF},
	{ID: "ARBO012", Title: "a jail reaches its own host only where the topology allows",
		Severity: Error, Machines: hosts, Check: checkOwnHost},
	{ID: "ARBO013", Title: "no management network and no service source is the whole internet (0.0.0.0/0, ::/0)",
		Severity: Error, Machines: cluster, Check: checkOpenToAll},
	{ID: "ARBO014", Title: "Erlang TLS distribution: the cluster CA and every node certificate exist, match their node and have not expired",
		Severity: Error, Machines: tlsCluster, Check: checkErlangTLS},
	{ID: "ARBO015", Title: "live: every machine can be read, pf filters on it, and it runs the rules arbo loaded",
		Severity: Error, Machines: liveMachines, Check: checkLive},
	{ID: "ARBO016", Title: "routes aggregate: each host's jails cost every other machine a few static routes, not one per jail",
		Severity: Warning, Machines: hosts, Check: checkRouteCost},
}

// RuleByID returns the rule with that ID.
func RuleByID(id string) (Rule, bool) {
	i := slices.IndexFunc(Rules, func(r Rule) bool { return r.ID == id })
	if i < 0 {
		return Rule{}, false
	}
	return Rules[i], true
}

// Ruleset is what the firewall rules ask of one machine's firewall.
// policy.Policy answers it for the topology itself (PolicyRuleset); a
// parsed pf.conf, rendered or loaded, can answer it too.
type Ruleset interface {
	// Allows reports whether a new connection src→dst proto/port passes.
	Allows(src, dst netip.Addr, proto string, port int) bool
	// FirstMatchPasses reports whether the first rule matching the
	// connection passes it for good (pf: a `pass quick`), so that nothing
	// later can lock it out.
	FirstMatchPasses(src, dst netip.Addr, proto string, port int) bool
	// Skips lists the interfaces and groups the firewall does not filter
	// (pf: `set skip on …`).
	Skips() []string
}

// PolicyRuleset is a Ruleset that allows exactly a Policy's flows and skips
// nothing: what arbo's own rendered rules mean.
type PolicyRuleset struct{ P *policy.Policy }

func (r PolicyRuleset) Allows(src, dst netip.Addr, proto string, port int) bool {
	_, ok := r.P.Allows(src, dst, proto, port)
	return ok
}

// FirstMatchPasses holds for every allowed flow: arbo renders management
// SSH first and as `pass quick`.
func (r PolicyRuleset) FirstMatchPasses(src, dst netip.Addr, proto string, port int) bool {
	return r.Allows(src, dst, proto, port)
}

func (r PolicyRuleset) Skips() []string { return nil }

// Options change how the rules run.
type Options struct {
	// Strict raises the rules that have a Strict severity (ARBO008, ARBO009)
	// to it.
	Strict bool
	// Now is the time certificates are judged at (ARBO014); zero: the
	// clock.
	Now time.Time
	// Rulesets gives a machine's firewall as it is (rendered or live); a
	// machine absent here is judged on the topology's own policy.
	Rulesets map[string]Ruleset
	// Live, set by check --live, is what was read from each machine; the
	// live-only rule ARBO015 judges it (and runs only then).
	Live map[string]Live
}

// Live is what check --live read from one machine.
type Live struct {
	// Err: the machine could not be read (unreachable, pfctl's answer not
	// understood). Its state is unknown, which is never "no drift".
	Err string
	// PFOff: why pf does not filter ("disabled", pf.ko not loaded); "" when
	// it is enabled.
	PFOff string
	// Drift: how the loaded rules differ from the ones arbo loaded; "".
	Drift string
	// MissingTrackers (gateway): arbo's filter-rule trackers that are not
	// in the loaded rules (pfctl -sr, ridentifier).
	MissingTrackers []string
}

// Case is one rule × one machine it applies to: a JUnit testcase.
type Case struct {
	ID, Title, Machine string
	Findings           []Finding
}

// Report is the result of a run.
type Report struct {
	File     string // the topology file as given
	Strict   bool
	Findings []Finding // cluster first, then machines in Cluster.Machines order; rules in ID order
	Cases    []Case    // rule by rule, machines in the same order
}

// HasErrors reports whether any finding fails the run (the CLI exits 3).
func (r *Report) HasErrors() bool { return slices.ContainsFunc(r.Findings, Finding.Fails) }

// Counts tallies unaccepted findings by severity, and the accepted ones.
func (r *Report) Counts() (errors, warnings, infos, accepted int) {
	for _, f := range r.Findings {
		switch {
		case f.Accepted:
			accepted++
		case f.Severity == Error:
			errors++
		case f.Severity == Warning:
			warnings++
		default:
			infos++
		}
	}
	return
}

// Run checks the topology against every rule.
func Run(c *inventory.Cluster, o Options) *Report {
	x := newEnv(c, o)
	order := map[string]int{inventory.MachineCluster: 0}
	for i, m := range c.Machines() {
		order[m] = i + 1
	}
	rep := &Report{File: c.File, Strict: o.Strict}
	bySubject := func(a, b Finding) int {
		return cmp.Or(cmp.Compare(a.Subject, b.Subject), cmp.Compare(a.Message, b.Message))
	}
	for _, rule := range Rules {
		sev := rule.Severity
		if o.Strict && rule.Strict != "" {
			sev = rule.Strict
		}
		byMachine := map[string][]Finding{}
		for _, f := range rule.Check(x) {
			f.ID = rule.ID
			// A rule may lower a finding below its own severity (ARBO014:
			// a certificate near its end is a warning); --strict raises it.
			if f.Severity == "" || o.Strict {
				f.Severity = sev
			}
			accept(c, &f)
			byMachine[f.Machine] = append(byMachine[f.Machine], f)
			rep.Findings = append(rep.Findings, f)
		}
		for _, m := range rule.Machines(x) {
			fs := byMachine[m]
			slices.SortStableFunc(fs, bySubject)
			rep.Cases = append(rep.Cases, Case{ID: rule.ID, Title: rule.Title, Machine: m, Findings: fs})
		}
	}
	rank := map[string]int{}
	for i, r := range Rules {
		rank[r.ID] = i
	}
	slices.SortStableFunc(rep.Findings, func(a, b Finding) int {
		return cmp.Or(
			cmp.Compare(machineRank(order, a.Machine), machineRank(order, b.Machine)),
			cmp.Compare(a.Machine, b.Machine),
			cmp.Compare(rank[a.ID], rank[b.ID]),
			bySubject(a, b),
		)
	})
	return rep
}

func subjectMatches(accepted, subject string) bool {
	return accepted == "" || accepted == subject || strings.HasPrefix(subject, accepted+"/")
}

func machineRank(order map[string]int, m string) int {
	if r, ok := order[m]; ok {
		return r
	}
	return len(order) // unknown names last; a rule bug, caught by tests
}

// accept marks f accepted by the first matching `accept` entry: same ID,
// the same machine or none given, and the same subject or none given (a
// tier's subject also covers its services, tier/service).
func accept(c *inventory.Cluster, f *Finding) {
	for _, a := range c.Accept {
		if a.ID == f.ID && (a.Machine == "" || a.Machine == f.Machine) && subjectMatches(a.Subject, f.Subject) {
			f.Accepted, f.AcceptReason = true, a.Reason
			return
		}
	}
}
