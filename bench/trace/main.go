// Command trace runs arbo's plan (and, with -apply, its apply) the way
// `arbo plan`/`arbo apply --auto-approve` do, but with every machine's
// connection wrapped so that each remote operation is counted and timed. It
// prints, per operation kind, the calls, their total and the wall time of
// each phase, and per machine the operations in order with their start
// offsets (-v), to find where a run spends its time.
//
//	trace -ssh-config LAB/ssh_config [-apply] [-bootstrap] [-v] [-cpuprofile F] topology.yaml
//
// It is a measuring tool for bench/run.sh's report, not part of arbo.
package main

import (
	"context"
	"flag"
	"fmt"
	"io/fs"
	"os"
	"runtime/pprof"
	"sort"
	"strings"
	"sync"
	"time"

	"github.com/arbo-project/arbo/deploy"
	"github.com/arbo-project/arbo/pfsense"
	"github.com/arbo-project/arbo/plan"
	"github.com/arbo-project/arbo/remote"
	"github.com/arbo-project/arbo/render"
	"github.com/arbo-project/arbo/state"
	"github.com/arbo-project/arbo/templates"
)

type event struct {
	machine string
	op      string
	detail  string
	start   time.Duration
	dur     time.Duration
}

type recorder struct {
	t0     time.Time
	mu     sync.Mutex
	events []event
}

func (r *recorder) add(machine, op, detail string, start time.Time) {
	e := event{machine: machine, op: op, detail: detail, start: start.Sub(r.t0), dur: time.Since(start)}
	r.mu.Lock()
	r.events = append(r.events, e)
	r.mu.Unlock()
}

// traced is a plan.Target that records every call.
type traced struct {
	plan.Target
	name string
	r    *recorder
}

func (t *traced) ReadFiles(ctx context.Context, paths []string) (map[string][]byte, error) {
	defer t.r.add(t.name, "ReadFiles", fmt.Sprintf("%d files", len(paths)), time.Now())
	return t.Target.ReadFiles(ctx, paths)
}
func (t *traced) Stat(p string) (fs.FileInfo, error) {
	defer t.r.add(t.name, "Stat", p, time.Now())
	return t.Target.Stat(p)
}
func (t *traced) Lstat(p string) (fs.FileInfo, error) {
	defer t.r.add(t.name, "Lstat", p, time.Now())
	return t.Target.Lstat(p)
}
func (t *traced) Run(ctx context.Context, argv []string, o remote.RunOpts) (remote.Result, error) {
	defer t.r.add(t.name, "Run", strings.Join(argv, " "), time.Now())
	return t.Target.Run(ctx, argv, o)
}
func (t *traced) WriteFileAtomic(p string, b []byte, m fs.FileMode, u, g int) error {
	defer t.r.add(t.name, "WriteFileAtomic", p, time.Now())
	return t.Target.WriteFileAtomic(p, b, m, u, g)
}
func (t *traced) WriteFileAtomicKeepPrev(p string, b []byte, m fs.FileMode, u, g int) error {
	defer t.r.add(t.name, "WriteFileAtomicKeepPrev", p, time.Now())
	return t.Target.WriteFileAtomicKeepPrev(p, b, m, u, g)
}
func (t *traced) MkdirAll(p string, m fs.FileMode) error {
	defer t.r.add(t.name, "MkdirAll", p, time.Now())
	return t.Target.MkdirAll(p, m)
}
func (t *traced) Remove(p string) error {
	defer t.r.add(t.name, "Remove", p, time.Now())
	return t.Target.Remove(p)
}
func (t *traced) CheckNoSymlinks(root, p string) error {
	defer t.r.add(t.name, "CheckNoSymlinks", p, time.Now())
	return t.Target.CheckNoSymlinks(root, p)
}
func (t *traced) Close() error {
	if c, ok := t.Target.(interface{ Close() error }); ok {
		return c.Close()
	}
	return nil
}

func main() {
	cfg := flag.String("ssh-config", "", "the lab's ssh_config")
	doApply := flag.Bool("apply", false, "apply the plan too (auto-approved)")
	bootstrap := flag.Bool("bootstrap", false, "plan with --bootstrap")
	confirm := flag.Duration("confirm-timeout", 3*time.Second, "as apply --confirm-timeout")
	verbose := flag.Bool("v", false, "print every operation")
	cpuprofile := flag.String("cpuprofile", "", "write a CPU profile of the run (go tool pprof) to this file")
	flag.Parse()
	if flag.NArg() != 1 || *cfg == "" {
		fmt.Fprintln(os.Stderr, "usage: trace -ssh-config LAB/ssh_config [-apply] [-bootstrap] [-v] topology.yaml")
		os.Exit(2)
	}
	if *cpuprofile != "" {
		f, err := os.Create(*cpuprofile)
		if err != nil {
			fmt.Fprintln(os.Stderr, "trace:", err)
			os.Exit(1)
		}
		if err := pprof.StartCPUProfile(f); err != nil {
			fmt.Fprintln(os.Stderr, "trace:", err)
			os.Exit(1)
		}
	}
	err := run(flag.Arg(0), *cfg, *doApply, *bootstrap, *confirm, *verbose)
	if *cpuprofile != "" {
		pprof.StopCPUProfile()
	}
	if err != nil {
		fmt.Fprintln(os.Stderr, "trace:", err)
		os.Exit(1)
	}
}

func run(file, cfg string, doApply, bootstrap bool, confirm time.Duration, verbose bool) error {
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
	defer cancel()
	r := &recorder{t0: time.Now()}
	phase := func(name string, start time.Time) {
		r.add("-", "phase", name, start)
	}

	start := time.Now()
	c, _, sha, err := deploy.Load(file, false, "")
	if err != nil {
		return err
	}
	ts, err := templates.Load("")
	if err != nil {
		return err
	}
	cookie, err := render.ReadCookie(c)
	if err != nil {
		return err
	}
	phase("load+check", start)

	ov := remote.Overrides{SSHConfigFile: cfg}
	dial := func(ctx context.Context, machine string) (plan.Target, error) {
		defer r.add(machine, "Dial", "", time.Now())
		t, err := deploy.Dialer(c, ov)(ctx, machine)
		if err != nil {
			return nil, err
		}
		return &traced{Target: t, name: machine, r: r}, nil
	}
	rf := func(base []byte) ([]state.Machine, error) {
		defer phase("render", time.Now())
		return render.Cluster(c, render.Options{Templates: ts, Cookie: cookie, PfSenseBase: base, Revision: time.Now().UTC().Truncate(time.Second)})
	}
	par := min(len(c.Machines()), 32)
	start = time.Now()
	p, sess, err := plan.Make(ctx, c, plan.Options{Bootstrap: bootstrap}, plan.Env{Dial: dial, Render: rf, Factory: pfsense.Factory(), Parallel: par, TopologySHA: sha})
	phase("plan.Make", start)
	defer deploy.Close(sess)
	if err != nil {
		return err
	}
	for _, m := range p.Machines {
		if m.Error != "" {
			return fmt.Errorf("machine %s: %s", m.Name, m.Error)
		}
	}
	cnt := p.Count()
	fmt.Printf("plan: %+v\n", cnt)
	if doApply && cnt != (plan.Counts{}) {
		start = time.Now()
		res, err := plan.Apply(ctx, c, p, sess, plan.ApplyEnv{
			Env: plan.Env{Parallel: par}, Redial: dial, Now: time.Now, Owner: "bench/trace",
			ConfirmTimeout: confirm, StaleLock: time.Hour, ErlangService: c.Erlang.Service,
		})
		phase("plan.Apply", start)
		if err != nil {
			return err
		}
		if res.Failed() {
			return fmt.Errorf("apply failed: %+v", res)
		}
	}
	report(r, verbose)
	return nil
}

func report(r *recorder, verbose bool) {
	type agg struct {
		n   int
		sum time.Duration
		max time.Duration
	}
	byOp := map[string]*agg{}
	var ops []string
	for _, e := range r.events {
		if e.op == "phase" {
			fmt.Printf("phase %-12s %8.3f s .. %8.3f s (%.3f s)\n", e.detail, e.start.Seconds(), (e.start + e.dur).Seconds(), e.dur.Seconds())
			continue
		}
		a := byOp[e.op]
		if a == nil {
			a = &agg{}
			byOp[e.op] = a
			ops = append(ops, e.op)
		}
		a.n++
		a.sum += e.dur
		a.max = max(a.max, e.dur)
	}
	sort.Strings(ops)
	fmt.Printf("%-24s %6s %10s %10s %10s\n", "operation", "calls", "sum s", "mean ms", "max ms")
	for _, op := range ops {
		a := byOp[op]
		fmt.Printf("%-24s %6d %10.3f %10.1f %10.1f\n", op, a.n, a.sum.Seconds(), float64(a.sum.Milliseconds())/float64(a.n), float64(a.max.Microseconds())/1000)
	}
	runs := map[string]*agg{}
	var cmds []string
	for _, e := range r.events {
		if e.op != "Run" {
			continue
		}
		k := e.detail
		if f := strings.Fields(k); len(f) > 2 {
			k = strings.Join(f[:2], " ")
		}
		a := runs[k]
		if a == nil {
			a = &agg{}
			runs[k] = a
			cmds = append(cmds, k)
		}
		a.n++
		a.sum += e.dur
		a.max = max(a.max, e.dur)
	}
	sort.Slice(cmds, func(i, j int) bool { return runs[cmds[i]].sum > runs[cmds[j]].sum })
	fmt.Printf("\n%-40s %6s %10s %10s\n", "command (first two words)", "calls", "sum s", "max ms")
	for _, k := range cmds {
		a := runs[k]
		fmt.Printf("%-40s %6d %10.3f %10.1f\n", k, a.n, a.sum.Seconds(), float64(a.max.Microseconds())/1000)
	}
	if verbose {
		sort.SliceStable(r.events, func(i, j int) bool {
			if r.events[i].machine != r.events[j].machine {
				return r.events[i].machine < r.events[j].machine
			}
			return r.events[i].start < r.events[j].start
		})
		for _, e := range r.events {
			fmt.Printf("%-8s %8.3f %8.1fms %-24s %s\n", e.machine, e.start.Seconds(), float64(e.dur.Microseconds())/1000, e.op, e.detail)
		}
	}
}
