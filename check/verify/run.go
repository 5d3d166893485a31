package verify

import (
	"context"
	"fmt"
	"slices"
	"strconv"
	"strings"
	"time"

	"golang.org/x/sync/errgroup"

	"github.com/arbo-project/arbo/inventory"
	"github.com/arbo-project/arbo/plan"
	"github.com/arbo-project/arbo/remote"
)

// Outcomes of a probe.
const (
	Passed     = "passed"      // as the topology says
	NoListener = "no listener" // an allowed flow met a closed port: reported, not a block
	Failed     = "failed"      // contradicts the topology
	Unknown    = "unknown"     // could not be run (machine unreachable, jail gone, timeout)
)

// Result is a probe and what it found.
type Result struct {
	Probe
	Outcome string   `json:"outcome"`
	Got     []string `json:"got,omitempty"` // Resolve: the addresses found
	Detail  string   `json:"detail,omitempty"`
}

// Report is a verify run.
type Report struct {
	File    string   `json:"file"`
	Results []Result `json:"results"`
}

// Failed reports whether a probe contradicts the topology or could not be
// run (the CLI exits 3).
func (r *Report) HasFailures() bool {
	return slices.ContainsFunc(r.Results, func(x Result) bool { return x.Outcome == Failed || x.Outcome == Unknown })
}

// Options of a run.
type Options struct {
	Dial     plan.Dialer
	Parallel int
	// Wait is nc's -w and host's -W: how long one probe waits for an answer.
	Wait  time.Duration
	Hosts []string // only the jails of these hosts probe (all when empty)
}

// probeScript runs the probes given as arguments, three per probe (kind,
// a, b), after the wait in seconds. It is a constant: names, addresses and
// ports are arguments, quoted by remote, never part of the script; one
// line, as remote.Quote requires (csh). Each probe's output ends with a
// marker line and its exit status.
//   - r NAME -: host(1) (FreeBSD's ldns host) looks NAME up with the
//     jail's resolv.conf; its answer lines are "NAME has address A" and
//     "NAME has IPv6 address A";
//   - c ADDR PORT: nc(1) -z connects without sending; -w bounds the wait;
//     a closed port answers "Connection refused", a dropped SYN times out;
//   - e - -: epmd -names lists "name NODE at port N" for each node.
const probeScript = `w=$1; shift; while [ $# -ge 3 ]; do k=$1; a=$2; b=$3; shift 3; case $k in ` +
	`r) host -W "$w" "$a" 2>&1; rc=$? ;; ` +
	`c) nc -z -w "$w" "$a" "$b" 2>&1; rc=$? ;; ` +
	`e) epmd -names 2>&1; rc=$? ;; ` +
	`*) rc=127 ;; esac; echo "--arbo-probe-- $rc"; done`

// Run runs the probes, one command per source jail through jexec(8), in
// parallel (o.Parallel at once), each bounded by a timeout.
func Run(ctx context.Context, c *inventory.Cluster, probes []Probe, o Options) *Report {
	if o.Wait <= 0 {
		o.Wait = 3 * time.Second
	}
	rep := &Report{File: c.File, Results: make([]Result, len(probes))}
	byJail := map[string][]int{}
	var order []string
	for i, p := range probes {
		if len(o.Hosts) > 0 && !slices.Contains(o.Hosts, p.Host) {
			rep.Results[i] = Result{Probe: p, Outcome: ""}
			continue
		}
		if _, ok := byJail[p.From]; !ok {
			order = append(order, p.From)
		}
		byJail[p.From] = append(byJail[p.From], i)
	}
	byHost := map[string][]string{}
	var hosts []string
	for _, j := range order {
		h := probes[byJail[j][0]].Host
		if _, ok := byHost[h]; !ok {
			hosts = append(hosts, h)
		}
		byHost[h] = append(byHost[h], j)
	}
	var g errgroup.Group
	g.SetLimit(max(o.Parallel, 1))
	for _, h := range hosts {
		g.Go(func() error {
			t, err := o.Dial(ctx, h)
			if err != nil {
				for _, j := range byHost[h] {
					for _, i := range byJail[j] {
						rep.Results[i] = Result{Probe: probes[i], Outcome: Unknown, Detail: "cannot reach " + h + ": " + err.Error()}
					}
				}
				return nil
			}
			if cl, ok := t.(interface{ Close() error }); ok {
				defer cl.Close()
			}
			var jg errgroup.Group
			jg.SetLimit(4) // jails of one host at once, over one connection
			for _, j := range byHost[h] {
				jg.Go(func() error {
					runJail(ctx, t, c, probes, byJail[j], rep.Results, o.Wait)
					return nil
				})
			}
			return jg.Wait()
		})
	}
	_ = g.Wait()
	// Drop the probes of hosts not selected; then by host and jail, in
	// declaration order, each jail's probes in plan order.
	rep.Results = slices.DeleteFunc(rep.Results, func(r Result) bool { return r.Outcome == "" })
	rank := map[string]int{}
	for i, j := range c.Jails() {
		rank[j.Name] = i
	}
	hostRank := map[string]int{}
	for i, m := range c.Machines() {
		hostRank[m] = i
	}
	slices.SortStableFunc(rep.Results, func(a, b Result) int {
		if d := hostRank[a.Host] - hostRank[b.Host]; d != 0 {
			return d
		}
		return rank[a.From] - rank[b.From]
	})
	return rep
}

func runJail(ctx context.Context, t plan.Target, c *inventory.Cluster, probes []Probe, idx []int, out []Result, wait time.Duration) {
	secs := int((wait + time.Second - 1) / time.Second)
	args := []string{"jexec", inventory.SafeName(probes[idx[0]].From), "/bin/sh", "-c", probeScript, "sh", strconv.Itoa(secs)}
	for _, i := range idx {
		p := probes[i]
		switch p.Kind {
		case Resolve:
			args = append(args, "r", p.Name, "-")
		case Connect, Refuse:
			args = append(args, "c", p.To, strconv.Itoa(p.Port))
		case EPMD:
			args = append(args, "e", "-", "-")
		}
	}
	// Every probe may take the whole wait: the command gets that, plus a
	// second a probe and a margin; then it is abandoned, and its probes are
	// unknown, so a hung jail cannot hang verify.
	cctx, cancel := context.WithTimeout(ctx, time.Duration(len(idx))*time.Duration(secs+1)*time.Second+5*time.Second)
	defer cancel()
	res, err := t.Run(cctx, args, remote.RunOpts{})
	if err != nil || res.Exit != 0 && !strings.Contains(string(res.Stdout), "--arbo-probe--") {
		why := ""
		if err != nil {
			why = err.Error()
		} else {
			why = fmt.Sprintf("jexec exited %d: %s", res.Exit, strings.TrimSpace(string(res.Stderr)))
		}
		for _, i := range idx {
			out[i] = Result{Probe: probes[i], Outcome: Unknown, Detail: why}
		}
		return
	}
	sections, codes := split(string(res.Stdout))
	for k, i := range idx {
		if k >= len(codes) {
			out[i] = Result{Probe: probes[i], Outcome: Unknown, Detail: "no answer (the command ended early)"}
			continue
		}
		out[i] = judge(probes[i], sections[k], codes[k])
	}
}

// split cuts the script's output into each probe's output and status.
func split(s string) (sections []string, codes []int) {
	var cur strings.Builder
	for _, l := range strings.SplitAfter(s, "\n") {
		if rest, ok := strings.CutPrefix(l, "--arbo-probe-- "); ok {
			n, err := strconv.Atoi(strings.TrimSpace(rest))
			if err != nil {
				n = -1
			}
			sections = append(sections, cur.String())
			codes = append(codes, n)
			cur.Reset()
			continue
		}
		cur.WriteString(l)
	}
	return sections, codes
}

// judge reads one probe's output.
func judge(p Probe, out string, rc int) Result {
	r := Result{Probe: p}
	text := strings.TrimSpace(out)
	switch p.Kind {
	case Resolve:
		for _, l := range strings.Split(out, "\n") {
			f := strings.Fields(l)
			switch {
			case len(f) == 4 && f[1] == "has" && f[2] == "address":
				r.Got = append(r.Got, f[3])
			case len(f) == 5 && f[1] == "has" && f[2] == "IPv6" && f[3] == "address":
				r.Got = append(r.Got, f[4])
			}
		}
		slices.Sort(r.Got)
		r.Got = slices.Compact(r.Got)
		if slices.Equal(r.Got, p.Want) {
			r.Outcome = Passed
		} else {
			r.Outcome = Failed
			r.Detail = fmt.Sprintf("resolves to %v, want %v", r.Got, p.Want)
			if len(r.Got) == 0 && text != "" {
				r.Detail += " (" + firstLine(text) + ")"
			}
		}
	case Connect:
		switch {
		case rc == 0:
			r.Outcome = Passed
		case strings.Contains(text, "refused"):
			r.Outcome, r.Detail = NoListener, "connection refused: the firewall let it through, but nothing listens on the port"
		default:
			r.Outcome, r.Detail = Failed, "no connection ("+firstLine(text)+"): the allowed flow is blocked"
		}
	case Refuse:
		if rc == 0 {
			r.Outcome, r.Detail = Failed, "connected: a flow no service allows gets through"
		} else {
			r.Outcome = Passed
			r.Detail = firstLine(text)
		}
	case EPMD:
		switch {
		case rc != 0:
			r.Outcome, r.Detail = Failed, "epmd does not answer ("+firstLine(text)+")"
		case !strings.Contains(out, "name "+p.Name+" at port "):
			r.Outcome, r.Detail = Failed, "epmd answers, but node "+p.Name+" is not registered ("+firstLine(text)+")"
		default:
			r.Outcome = Passed
		}
	}
	if r.Outcome == Failed && rc == 127 {
		r.Outcome, r.Detail = Unknown, "the probe tool is missing in the jail: "+firstLine(text)
	}
	return r
}

func firstLine(s string) string {
	l, _, _ := strings.Cut(strings.TrimSpace(s), "\n")
	if l == "" {
		return "no output"
	}
	return l
}
