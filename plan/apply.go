package plan

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io/fs"
	"net/netip"
	"path"
	"slices"
	"sort"
	"strconv"
	"strings"
	"sync"
	"time"

	"golang.org/x/sync/errgroup"

	"github.com/arbo-project/arbo/inventory"
	"github.com/arbo-project/arbo/jail"
	"github.com/arbo-project/arbo/pfsense"
	"github.com/arbo-project/arbo/remote"
	"github.com/arbo-project/arbo/state"
)

// ApplyEnv is what Apply needs from outside.
type ApplyEnv struct {
	Env
	// Redial opens a NEW connection to a machine: after loading pf rules,
	// only a new connection proves SSH still gets in (existing ones survive
	// a reload as pf keeps their states).
	Redial         Dialer
	Progress       func(machine, step string)
	Now            func() time.Time
	Owner          string        // who holds the locks, e.g. user@host pid N
	ConfirmTimeout time.Duration // the on-box rollback timer for firewall changes
	StaleLock      time.Duration
	LockTimeout    time.Duration // how long to wait for a lock another run holds
	ErlangService  string
}

// MachineResult says what apply did on one machine.
type MachineResult struct {
	Machine string   `json:"machine"`
	Done    []string `json:"done"`
	NotDone []string `json:"not_done,omitempty"`
	Error   string   `json:"error,omitempty"`
	err     error
}

// Result is the outcome of a whole apply.
type Result struct {
	Machines []MachineResult `json:"machines"` // never null: [] when nothing ran
	Locked   bool            `json:"locked,omitempty"`
	Stale    bool            `json:"stale,omitempty"`
	Error    string          `json:"error,omitempty"`
}

// Failed reports whether any machine failed.
func (r *Result) Failed() bool {
	if r.Error != "" {
		return true
	}
	for _, m := range r.Machines {
		if m.Error != "" {
			return true
		}
	}
	return false
}

// Refused is the outcome of the machines of p that cannot be planned or
// applied (unreachable, a changed host key, a conflict): each refused with
// its cause, nothing done. A plan with no changes but such machines is a
// failure, not "No changes" (issue 11 item 6).
func Refused(p *Plan) []MachineResult {
	out := []MachineResult{}
	for _, m := range p.Machines {
		if m.Error == "" {
			continue
		}
		r := MachineResult{Machine: m.Name, Done: []string{}, Error: "refused, nothing done: " + m.Error}
		for _, a := range m.Actions {
			if a.Op != OpConflict {
				r.NotDone = append(r.NotDone, describe(a))
			}
		}
		out = append(out, r)
	}
	return out
}

// WithErrorsFrom returns a copy of the saved plan p in which every machine
// that could not be planned now (in fresh: unreachable, no SSH key, a
// changed host key) carries that cause, so applying a saved plan refuses it
// with the reason instead of "not connected".
func (p *Plan) WithErrorsFrom(fresh *Plan) *Plan {
	cause := map[string]string{}
	for _, m := range fresh.Machines {
		if m.Error != "" {
			cause[m.Name] = m.Error
		}
	}
	cp := *p
	cp.Machines = make([]MachinePlan, len(p.Machines))
	for i, m := range p.Machines {
		if c, ok := cause[m.Name]; ok && m.Error == "" {
			m.Error = c
		}
		cp.Machines[i] = m
	}
	return &cp
}

// StaleError says the machines changed since the plan was made.
type StaleError struct{ Reasons []string }

func (e *StaleError) Error() string {
	return "the plan is stale: " + strings.Join(e.Reasons, "; ") + "; make a new plan"
}

// Apply makes the machines match: locks every machine in a fixed order
// first, re-reads them and refuses if anything differs from what the
// reviewed plan p was made from, then applies hosts in parallel and the
// gateway after them. One machine failing does not stop the others.
func Apply(ctx context.Context, c *inventory.Cluster, p *Plan, sess *Session, env ApplyEnv) (*Result, error) {
	res := &Result{Machines: []MachineResult{}}
	// A machine that cannot be planned (unreachable, a jail arbo does not
	// own, no basejail) is refused on its own: arbo touches nothing there,
	// and the other machines go on (DESIGN.md: one machine failing does not
	// stop the others).
	names := make([]string, 0, len(p.Machines))
	for _, m := range p.Machines {
		if m.Error == "" {
			names = append(names, m.Name)
		}
	}
	res.Machines = append(res.Machines, Refused(p)...)
	var ok []MachinePlan
	for _, m := range p.Machines {
		if m.Error == "" {
			ok = append(ok, m)
		}
	}
	p = &Plan{FormatVersion: p.FormatVersion, Kind: p.Kind, Cluster: p.Cluster, Topology: p.Topology, TopologySHA: p.TopologySHA, Options: p.Options, Machines: ok}
	sort.Strings(names) // a fixed order: two runs never each hold half the locks
	var locked []string
	unlock := func() {
		for _, n := range locked {
			if Unlock(context.WithoutCancel(ctx), sess.Targets[n]) != nil {
				unlockAgain(ctx, env.Redial, n)
			}
		}
	}
	for _, n := range names {
		t := sess.Targets[n]
		if t == nil {
			unlock()
			return nil, fmt.Errorf("machine %s: not connected: arbo has no SSH session to it; give the SSH settings the plan was made with (--ssh-config, -i/--identity-file, --known-hosts, --ssh-user, --ssh-port)", n)
		}
		if err := LockWait(ctx, t, n, env.Owner, env.Now, env.StaleLock, env.LockTimeout); err != nil {
			unlock()
			var lh *LockHeldError
			if errors.As(err, &lh) {
				res.Locked = true
			}
			return res, err
		}
		locked = append(locked, n)
	}
	defer unlock()

	// Re-read under the locks: apply does exactly what was reviewed or nothing.
	// On hosts, files inside jail roots are read and written through the
	// roots' no-symlink views (JailViewDir), mounted now and unmounted
	// before the locks are released.
	fresh := make(map[string]MachinePlan, len(p.Machines))
	snaps := make(map[string]*Snapshot, len(p.Machines)) // what apply starts from: read under the locks
	targets := make(map[string]Target, len(p.Machines))
	var mu sync.Mutex
	defer func() {
		for _, t := range targets {
			if v, ok := t.(*jailView); ok {
				_ = v.close(ctx)
			}
		}
	}()
	g, gctx := errgroup.WithContext(ctx)
	g.SetLimit(max(env.Parallel, 1))
	for _, m := range p.Machines {
		g.Go(func() error {
			t := sess.Targets[m.Name]
			if m.Kind != state.KindGateway {
				v, err := openViews(gctx, t, sess.Desired[m.Name])
				mu.Lock()
				targets[m.Name] = v
				mu.Unlock()
				if err != nil {
					return fmt.Errorf("machine %s: %w", m.Name, err)
				}
				t = v
			}
			mu.Lock()
			targets[m.Name] = t
			mu.Unlock()
			snap, err := Read(gctx, t, sess.Desired[m.Name])
			if err != nil {
				return err
			}
			Settle(sess.Desired[m.Name], snap)
			mp := Diff(sess.Desired[m.Name], snap, p.Options)
			mu.Lock()
			fresh[m.Name] = mp
			snaps[m.Name] = snap
			mu.Unlock()
			return nil
		})
	}
	if err := g.Wait(); err != nil {
		return res, err
	}
	// The moves, found again in what was read under the locks.
	fp := &Plan{Options: p.Options}
	for _, m := range p.Machines {
		fp.Machines = append(fp.Machines, fresh[m.Name])
	}
	LinkMoves(fp)
	for _, m := range fp.Machines {
		fresh[m.Name] = m
	}
	if reasons := staleness(p, fresh); len(reasons) > 0 {
		res.Stale = true
		return res, &StaleError{Reasons: reasons}
	}
	// 0. Moves: every old copy is stopped, archived and retired before any
	// machine starts anything, so that a moved jail's address is never up
	// on two hosts. A machine whose old copy did not stop is not applied
	// further, nor is the machine the jail was moving to.
	moved := map[string]MachineResult{} // source machine → what phase 0 did
	blocked := map[string]string{}      // target machine → why it is not applied
	if len(fp.Moves) > 0 {
		var srcs []string
		for _, mv := range fp.Moves {
			if !slices.Contains(srcs, mv.From) {
				srcs = append(srcs, mv.From)
			}
		}
		var mu sync.Mutex
		var wg sync.WaitGroup
		for _, n := range srcs {
			wg.Add(1)
			go func() {
				defer wg.Done()
				mp := fresh[n]
				mp.Actions = slices.DeleteFunc(slices.Clone(mp.Actions), func(a Action) bool { return a.MoveTo == "" })
				a := &applier{ctx: ctx, c: c, env: env, name: n, t: targets[n], d: sess.Desired[n], mp: mp, snap: snaps[n], opts: p.Options, partial: true}
				r := a.run()
				if a.man != nil {
					s := *snaps[n]
					s.Manifest = a.man
					snaps[n] = &s
				}
				mu.Lock()
				moved[n] = r
				mu.Unlock()
			}()
		}
		wg.Wait()
		for _, mv := range fp.Moves {
			if moved[mv.From].Error != "" {
				blocked[mv.To] = fmt.Sprintf("not applied: jail %s moves here from %s, and its old copy there did not stop and retire (see %s): nothing was done here, so that it never runs twice", mv.Jail, mv.From, mv.From)
			}
		}
	}

	run := func(names []string) {
		var wg sync.WaitGroup
		sem := make(chan struct{}, max(env.Parallel, 1))
		out := make([]MachineResult, len(names))
		for i, n := range names {
			wg.Add(1)
			go func() {
				defer wg.Done()
				sem <- struct{}{}
				defer func() { <-sem }()
				mp := fresh[n]
				r0, wasSource := moved[n]
				if wasSource {
					mp.Actions = slices.DeleteFunc(slices.Clone(mp.Actions), func(a Action) bool { return a.MoveTo != "" })
				}
				switch {
				case wasSource && r0.Error != "":
					for _, act := range mp.Actions {
						r0.NotDone = append(r0.NotDone, describe(act))
					}
					out[i] = r0
					return
				case blocked[n] != "":
					r := MachineResult{Machine: n, Error: blocked[n], err: errors.New(blocked[n])}
					for _, act := range mp.Actions {
						r.NotDone = append(r.NotDone, describe(act))
					}
					out[i] = r
					return
				}
				a := &applier{ctx: ctx, c: c, env: env, name: n, t: targets[n], d: sess.Desired[n], mp: mp, snap: snaps[n], opts: p.Options}
				out[i] = a.run()
				if wasSource {
					out[i].Done = append(r0.Done, out[i].Done...)
				}
			}()
		}
		wg.Wait()
		res.Machines = append(res.Machines, out...)
	}
	var hosts, gw []string
	for _, m := range p.Machines {
		if m.Kind == state.KindGateway {
			gw = append(gw, m.Name)
		} else {
			hosts = append(hosts, m.Name)
		}
	}
	run(hosts)
	run(gw) // the gateway after the hosts: its routes point at them
	return res, nil
}

// unlockAgain releases a machine's lock over a new connection: when the
// run's connection was cut, the lock would otherwise stay held until it
// goes stale, and every run until then would be refused (exit 4).
func unlockAgain(ctx context.Context, redial Dialer, machine string) {
	if redial == nil {
		return
	}
	ctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 15*time.Second)
	defer cancel()
	t, err := redial(ctx, machine)
	if err != nil {
		return
	}
	if c, ok := t.(interface{ Close() error }); ok {
		defer c.Close()
	}
	_ = Unlock(ctx, t)
}

// staleness compares the reviewed plan with one made again under the locks.
func staleness(p *Plan, fresh map[string]MachinePlan) []string {
	var out []string
	for _, m := range p.Machines {
		f := fresh[m.Name]
		for path, d := range m.Reads {
			if fd, ok := f.Reads[path]; ok && fd != d {
				out = append(out, fmt.Sprintf("%s: %s changed since the plan was made", m.Name, path))
			}
		}
		if actionsKey(m.Actions) != actionsKey(f.Actions) {
			out = append(out, fmt.Sprintf("%s: the actions differ from the plan's", m.Name))
		}
	}
	sort.Strings(out)
	return slices.Compact(out)
}

func actionsKey(as []Action) string {
	var b strings.Builder
	for _, a := range as {
		fmt.Fprintf(&b, "%s|%s|%s|%s|%s\n", a.Op, a.Kind, a.Target, a.Jail, a.After)
	}
	return b.String()
}

// applier applies one machine's plan.
type applier struct {
	ctx   context.Context
	c     *inventory.Cluster
	env   ApplyEnv
	name  string
	t     Target
	d     *state.Machine
	mp    MachinePlan
	opts  Options
	done  []string
	man   *Manifest
	owned map[string]ManifestFile // files arbo owns now, as far as this run got
	mu    sync.Mutex              // guards done and owned while files are written in parallel
	snap  *Snapshot
	// partial: this run applies only some of the plan's actions (the old
	// copies of moved jails), so the manifest records what it did and
	// nothing of the desired state yet.
	partial bool
}

func (a *applier) step(s string) {
	a.mu.Lock()
	defer a.mu.Unlock()
	a.done = append(a.done, s)
	if a.env.Progress != nil {
		a.env.Progress(a.name, s)
	}
}

func (a *applier) cmd(argv ...string) (remote.Result, error) {
	if err := a.ctx.Err(); err != nil {
		return remote.Result{}, fmt.Errorf("interrupted before %s: %w", argv[0], err)
	}
	r, err := a.t.Run(a.ctx, argv, remote.RunOpts{})
	if err != nil {
		return r, err
	}
	if r.Exit != 0 {
		msg := strings.TrimSpace(string(r.Stderr))
		if msg == "" {
			msg = strings.TrimSpace(string(r.Stdout))
		}
		return r, fmt.Errorf("%s exited %d: %s", strings.Join(argv, " "), r.Exit, msg)
	}
	return r, nil
}

func (a *applier) run() MachineResult {
	r := MachineResult{Machine: a.name}
	err := a.apply()
	r.Done = a.done
	if err != nil {
		r.Error = err.Error()
		r.err = err
		for _, act := range a.mp.Actions {
			if !slices.Contains(a.done, describe(act)) {
				r.NotDone = append(r.NotDone, describe(act))
			}
		}
	}
	return r
}

func describe(a Action) string { return a.Op + " " + a.Kind + " " + a.Target }

func (a *applier) has(op, kind string) []Action {
	var out []Action
	for _, act := range a.mp.Actions {
		if act.Op == op && act.Kind == kind {
			out = append(out, act)
		}
	}
	return out
}

func (a *applier) apply() error {
	if len(a.mp.Actions) == 0 {
		return nil
	}
	// The snapshot read under the locks is the machine as it is: nothing else
	// may change it while arbo holds its lock, so it is not read a third time.
	snap := a.snap
	var err error
	a.man = &Manifest{FormatVersion: 1, Cluster: a.c.Name, Machine: a.name}
	if snap.Manifest != nil {
		a.man.Activated = snap.Manifest.Activated
		a.man.Jails = snap.Manifest.Jails
	}
	a.owned = map[string]ManifestFile{}
	if snap.Manifest != nil {
		for _, f := range snap.Manifest.Files {
			a.owned[f.Path] = f
		}
	}
	for _, f := range a.d.Files {
		if cur := snap.Files[f.Path]; cur.Exists && cur.Digest == digestOf(f.Content) {
			a.owned[f.Path] = ManifestFile{Path: f.Path, SHA256: cur.Digest, Jail: f.Jail}
		}
	}
	if a.d.Kind == state.KindGateway {
		err = a.gateway()
	} else {
		err = a.host()
	}
	// The manifest is written even after a failure: what this run created
	// is arbo's, and the next run must know it (a jail created here would
	// otherwise look like a stranger's).
	if merr := a.writeManifest(err == nil && !a.partial); merr != nil {
		return errors.Join(err, fmt.Errorf("recording what arbo owns: %w", merr))
	}
	return err
}

// fileActions returns the create/update actions of files, split into host
// files and files inside jail roots.
func (a *applier) fileActions() (host, inJail []Action) {
	for _, act := range a.mp.Actions {
		if act.Kind != KindFile || (act.Op != OpCreate && act.Op != OpUpdate) || act.Target == ManifestPath {
			continue
		}
		if act.Jail != "" {
			inJail = append(inJail, act)
		} else {
			host = append(host, act)
		}
	}
	return host, inJail
}

func (a *applier) host() error {
	// 1. Bootstrap, only when asked (Diff refused otherwise).
	hostFiles, jailFiles := a.fileActions()
	if len(a.has(OpInstall, KindBasejail)) > 0 {
		if !a.snap.HasEzjail {
			if _, err := a.cmd("pkg", "install", "-y", "ezjail"); err != nil {
				return err
			}
		}
		// arbo's ezjail.conf before ezjail-admin install, which reads it
		// (ezjail-admin:14) for where and how to make basejail and newjail.
		var rest []Action
		for _, act := range hostFiles {
			if act.Target != jail.EzjailConf {
				rest = append(rest, act)
				continue
			}
			if err := a.write(*a.d.File(act.Target), act.Target, act.TakeOver); err != nil {
				return err
			}
			a.step(describe(act))
		}
		hostFiles = rest
		// The jails' parent dataset, as ezjail's ensure_jailzfs makes it.
		for _, act := range a.has(OpCreate, KindZFS) {
			for _, c := range jail.ZFSParentCmds(act.Target) {
				if _, err := a.cmd(c...); err != nil {
					return err
				}
			}
			a.step(describe(act))
		}
		rel, err := a.release()
		if err != nil {
			return err
		}
		if _, err := a.cmd(jail.InstallBasejailArgs(rel)...); err != nil {
			return err
		}
		a.step(describe(a.has(OpInstall, KindBasejail)[0]))
	}
	// 2. Host files outside jail roots; pf's file is staged, not live.
	if err := a.writeAll(hostFiles, func(act Action) error {
		f := a.d.File(act.Target)
		target := f.Path
		if f.Path == PFPath {
			target = PFStaged
		}
		return a.write(*f, target, act.TakeOver)
	}); err != nil {
		return err
	}
	// 3. rc.conf live without a reboot: lo1, then the static routes.
	for _, act := range a.has(OpCloneup, KindNet) {
		if _, err := a.cmd("service", "netif", "cloneup"); err != nil {
			return err
		}
		a.step(describe(act))
	}
	if routes := a.has(OpRoute, KindNet); len(routes) > 0 {
		if err := a.routes(routes, routesScript, true); err != nil {
			return err
		}
	}
	// Routes arbo installed that the topology no longer has: after the new
	// ones, so that no address is without a path in between.
	if stale := a.has(OpDelete, KindNet); len(stale) > 0 {
		if err := a.routes(stale, unroutesScript, false); err != nil {
			return err
		}
	}
	// 4. Jails that do not exist yet, after their flavour exists.
	for _, act := range a.has(OpCreate, KindJail) {
		j := a.jailSpec(act.Jail)
		if _, err := a.cmd(jail.CreateArgs(j)...); err != nil {
			return err
		}
		a.addJail(j)
		if jail.QuotaAfterCreate(j) { // a size ezjail's create -s cannot take
			if _, err := a.cmd(jail.ZFSQuotaArgs(j.ZFS, j.Quota)...); err != nil {
				return err
			}
		}
		// Replace the config ezjail-admin create wrote with arbo's, before
		// the first start (Diff folds this write into the create).
		if f := a.d.File(path.Join(EzjailCfgDir, j.SafeName)); f != nil {
			if err := a.write(*f, f.Path, false); err != nil {
				return err
			}
		}
		a.step(describe(act))
	}
	for _, act := range a.has(OpAdopt, KindJail) {
		a.addJail(a.jailSpec(act.Jail))
		a.step(describe(act))
	}
	// The new jails' roots exist now: their views too, before anything is
	// written into them.
	if v, ok := a.t.(*jailView); ok {
		var roots []string
		for _, act := range a.has(OpCreate, KindJail) {
			roots = append(roots, a.jailSpec(act.Jail).Root)
		}
		if err := v.mount(a.ctx, roots); err != nil {
			return err
		}
	}
	// Quotas of existing jails' datasets that differ from zfs.quota.
	for _, act := range a.has(OpUpdate, KindZFS) {
		if _, err := a.cmd(jail.ZFSQuotaArgs(act.Target, act.Args[0])...); err != nil {
			return err
		}
		a.step(describe(act))
	}
	// Retired jails back in the topology: runnable again first (ezjail
	// renames <safename>.norun to <safename>, ezjail-admin:1637), then
	// arbo's config over the old one, as after a create.
	for _, act := range a.has(OpEnable, KindJail) {
		j := a.jailSpec(act.Jail)
		if _, err := a.cmd(jail.RunArgs(j)...); err != nil {
			return err
		}
		a.addJail(j)
		if f := a.d.File(path.Join(EzjailCfgDir, j.SafeName)); f != nil {
			if err := a.write(*f, f.Path, false); err != nil {
				return err
			}
		}
		a.step(describe(act))
	}
	// 5. Files inside jail roots, never through a symlink.
	if len(jailFiles) > 0 {
		// The jails' users exist now: learn their ids.
		for _, act := range jailFiles {
			root := path.Join(JailDir, act.Jail)
			if _, ok := a.snap.Users[root]["root"]; !ok {
				got, err := a.t.ReadFiles(a.ctx, []string{path.Join(root, "etc/passwd"), path.Join(root, "etc/group")})
				if err != nil {
					return err
				}
				a.snap.Users[root] = parseIDs(got[path.Join(root, "etc/passwd")])
				a.snap.Groups[root] = parseIDs(got[path.Join(root, "etc/group")])
			}
		}
	}
	if err := a.writeAll(jailFiles, func(act Action) error {
		f := a.d.File(act.Target)
		if err := a.t.CheckNoSymlinks(path.Join(JailDir, f.Jail), f.Path); err != nil {
			return err
		}
		return a.write(*f, f.Path, act.TakeOver)
	}); err != nil {
		return err
	}
	// 6. Validate before activating.
	pfReload := len(a.has(OpReload, KindPF)) > 0
	if pfReload {
		if st := a.snap.Files[PFStaged]; !a.wroteStaged() && st.Digest != digestOf(a.d.File(PFPath).Content) {
			if err := a.write(*a.d.File(PFPath), PFStaged, false); err != nil {
				return err
			}
		}
		if _, err := a.cmd("pfctl", "-nf", PFStaged); err != nil {
			return fmt.Errorf("the rendered pf rules do not load (nothing was activated): %w", err)
		}
	}
	// 7. Activate: packages, jails, services.
	for _, act := range a.has(OpInstall, KindPackages) {
		j := a.jailSpec(act.Jail)
		if _, err := a.cmd(jail.PkgInstallArgs(j.Root, j.Packages)...); err != nil {
			return err
		}
		a.step(describe(act))
	}
	// In the plan's order: a jail after those of its start_after (rcorder's
	// order, as at boot: StartOrder).
	for _, act := range a.has(OpStart, KindJail) {
		if err := a.startJail(act, jail.StartArgs); err != nil {
			return err
		}
		a.step(describe(act))
	}
	for _, act := range a.has(OpRestart, KindJail) {
		if err := a.startJail(act, jail.RestartArgs); err != nil {
			return err
		}
		a.step(describe(act))
	}
	for _, act := range a.has(OpReload, KindDNS) {
		j := a.jailSpec(act.Jail)
		// The dns/unbound port's rc script has no configtest (freebsd-ports
		// dns/unbound/files/unbound.in:85 extra_commands="reload"; rc.subr:1709
		// refuses it): check with the port's unbound-checkconf inside the
		// jail on the file its rc script reads (unbound.in:76), then restart,
		// whose start_precmd checks again (unbound.in:69).
		if _, err := a.cmd(UnboundCheckArgs(j.SafeName)...); err != nil {
			return fmt.Errorf("unbound in jail %s refuses its configuration: %w", j.Name, err)
		}
		if _, err := a.cmd("service", "-j", j.SafeName, "unbound", "restart"); err != nil {
			return err
		}
		a.step(describe(act))
	}
	for _, act := range a.has(OpRestart, KindService) {
		if a.env.ErlangService == "" {
			continue
		}
		if _, err := a.cmd("service", "-j", a.jailSpec(act.Jail).SafeName, a.env.ErlangService, "restart"); err != nil {
			return err
		}
		a.step(describe(act))
	}
	// 8. The firewall, commit-confirmed.
	if pfReload {
		if err := a.pfCommitConfirmed(); err != nil {
			return err
		}
		a.step(describe(a.has(OpReload, KindPF)[0]))
	}
	// 10. Jails removed from the topology.
	for _, act := range a.has(OpArchive, KindJail) {
		j := state.Jail{Name: act.Jail}
		if a.snap.Running[inventory.SafeName(j.Name)] || a.snap.Running[j.Name] {
			if _, err := a.cmd(jail.StopArgs(j)...); err != nil {
				return err
			}
		}
		if _, err := a.cmd(jail.ArchiveArgs(j)...); err != nil {
			return err
		}
		if !a.destroys(j.Name) {
			// Kept on disk (a data jail without --allow-destroy): it must not
			// come back at the next boot with ezjail_enable.
			if _, err := a.cmd(jail.NoRunArgs(j)...); err != nil {
				return err
			}
		}
		a.retire(j.Name)
		a.step(describe(act))
	}
	for _, act := range a.has(OpDestroy, KindJail) {
		j := state.Jail{Name: act.Jail, SafeName: inventory.SafeName(act.Jail)}
		// On ZFS, ezjail's delete -w destroys <parentzfs>/<hostname>, and
		// arbo's hostnames are FQDNs: delete the jail, then its dataset.
		if h := a.c.Host(a.name); h != nil && h.ZFS != nil {
			if _, err := a.cmd(jail.DeleteArgs(j, false)...); err != nil {
				return err
			}
			if _, err := a.cmd(jail.ZFSDestroyArgs(h.ZFS.Dataset, j)...); err != nil {
				return err
			}
		} else if _, err := a.cmd(jail.DeleteArgs(j, true)...); err != nil {
			return err
		}
		a.forget(act.Jail)
		a.step(describe(act))
	}
	for _, act := range a.has(OpDelete, KindFile) {
		if err := a.t.Remove(act.Target); err != nil && !errors.Is(err, fs.ErrNotExist) {
			return err
		}
		delete(a.owned, act.Target)
		a.step(describe(act))
	}
	return nil
}

// startJail (re)starts a jail with ezjail-admin and proves that it runs:
// ezjail's `onestart` of a jail it skips (a .norun config, ezjail.sh:59,66;
// a blocking jail, ezjail.sh:90) exits 0, as its success check leaves
// .norun jails out (ezjail-admin:148). A start arbo cannot see in jls is a
// failure, never a step done.
func (a *applier) startJail(act Action, args func(state.Jail) []string) error {
	j := a.jailSpec(act.Jail)
	argv := args(j)
	if _, err := a.cmd(argv...); err != nil {
		return err
	}
	if _, err := a.cmd(jail.RunningArgs(j)...); err != nil {
		return fmt.Errorf("jail %s: %s exited 0 but the jail does not run (%v): ezjail skips a jail whose config is %s%s (ezjail-admin config -r run %s makes it runnable)",
			j.Name, strings.Join(argv, " "), err, path.Join(EzjailCfgDir, j.SafeName), NoRunSuffix, j.Name)
	}
	return nil
}

// routesScript brings static routes live in one session (one line: csh,
// root's shell on older FreeBSD, cannot take a quoted newline): a route per
// stdin line "FAMILY KIND DEST GATEWAY", added, or changed when it exists.
// The script is a constant; the routes are data on stdin, each field an
// address arbo parsed, so nothing from the topology becomes shell code.
const routesScript = `while read -r fam kind dest via; do ` +
	`route -q add "$fam" "$kind" "$dest" "$via" >/dev/null 2>&1 || ` +
	`route -q change "$fam" "$kind" "$dest" "$via" >/dev/null || ` +
	`{ echo "route to $dest via $via: neither add nor change worked" >&2; exit 1; }; done`

// unroutesScript deletes static routes, one per stdin line "FAMILY KIND
// DEST GATEWAY", as routesScript adds them; a route already gone is no
// error (route(8) says "not in table"), anything else is.
const unroutesScript = `while read -r fam kind dest via; do ` +
	`out=$(route -q delete "$fam" "$kind" "$dest" "$via" 2>&1) || ` +
	`case "$out" in *"not in table"*) ;; *) echo "route to $dest via $via: delete failed: $out" >&2; exit 1;; esac; done`

// routes adds (add) or deletes every listed static route in one SSH
// session rather than one per route: a cluster has hosts × prefixes of
// them. What it adds is recorded as arbo's (routes_installed), what it
// deletes is no longer.
func (a *applier) routes(acts []Action, script string, add bool) error {
	var in strings.Builder
	for _, act := range acts {
		dest, err := netip.ParsePrefix(act.Args[0])
		if err != nil {
			return fmt.Errorf("route %s: %w", act.Args[0], err)
		}
		via, err := netip.ParseAddr(act.Args[1])
		if err != nil {
			return fmt.Errorf("route %s via %s: %w", act.Args[0], act.Args[1], err)
		}
		fam, kind, d := "-inet", "-host", dest.Addr().String()
		if dest.Addr().Is6() {
			fam = "-inet6"
		}
		if !dest.IsSingleIP() {
			kind, d = "-net", dest.String()
		}
		fmt.Fprintf(&in, "%s %s %s %s\n", fam, kind, d, via)
	}
	if err := a.ctx.Err(); err != nil {
		return fmt.Errorf("interrupted before the routes: %w", err)
	}
	r, err := a.t.Run(a.ctx, []string{"/bin/sh", "-c", script}, remote.RunOpts{Stdin: strings.NewReader(in.String())})
	if err != nil {
		return err
	}
	if r.Exit != 0 {
		return fmt.Errorf("static routes: %s", strings.TrimSpace(string(r.Stderr)))
	}
	for _, act := range acts {
		rv := act.Args[0] + " " + act.Args[1]
		a.man.Activated.Installed = slices.DeleteFunc(a.man.Activated.Installed, func(s string) bool { return s == rv })
		if add {
			a.man.Activated.Installed = append(a.man.Activated.Installed, rv)
		}
		a.step(describe(act))
	}
	return nil
}

func (a *applier) wroteStaged() bool {
	for _, s := range a.done {
		if s == describe(Action{Op: OpCreate, Kind: KindFile, Target: PFPath}) || s == describe(Action{Op: OpUpdate, Kind: KindFile, Target: PFPath}) {
			return true
		}
	}
	return false
}

func (a *applier) pfCommitConfirmed() error {
	// pfctl without -n opens /dev/pf, which exists only once pf.ko is
	// loaded. rc.d/pf loads it itself (required_modules="pf",
	// freebsd/libexec/rc/rc.d/pf:23, through load_kld, rc.subr:2410), but
	// arbo loads the rules over SSH before any reboot: on a fresh host the
	// modules are not there yet. -n: no error when one is already loaded.
	if _, err := a.cmd("kldload", "-n", "pf", "pflog"); err != nil {
		return err
	}
	info, err := a.cmd("pfctl", "-s", "info")
	if err != nil {
		return err
	}
	wasEnabled := bytes.Contains(info.Stdout, []byte("Status: Enabled"))
	// Armed before anything changes; prev is read again if the guard of an
	// unconfirmed earlier run had to act first (it may disable pf).
	first := true
	g, err := a.armGuard(pfGuard, func() (string, error) {
		if !first {
			info, err := a.cmd("pfctl", "-s", "info")
			if err != nil {
				return "", err
			}
			wasEnabled = bytes.Contains(info.Stdout, []byte("Status: Enabled"))
		}
		first = false
		if wasEnabled {
			return "enabled", nil
		}
		return "disabled", nil
	})
	if err != nil {
		return err
	}
	if _, err := a.cmd("pfctl", "-f", PFStaged); err != nil {
		return err
	}
	if !wasEnabled {
		if _, err := a.cmd("pfctl", "-e"); err != nil {
			return err
		}
	}
	// Only a new connection proves the rules let the operator in.
	if err := a.probe(); err != nil {
		return a.rolledBack(err, g.secs, "the new pf rules", "the previous rules")
	}
	if err := a.settle(g, true); err != nil {
		return err
	}
	pf := a.d.File(PFPath)
	if err := a.t.WriteFileAtomicKeepPrev(PFPath, pf.Content, pf.Mode, 0, 0); err != nil {
		return err
	}
	if err := a.t.Remove(PFStaged); err != nil && !errors.Is(err, fs.ErrNotExist) {
		return err
	}
	a.man.Activated.PF = digestOf(pf.Content)
	a.owned[PFPath] = ManifestFile{Path: PFPath, SHA256: a.man.Activated.PF}
	// What pf lists now is what arbo loaded: plan compares with it.
	live, err := ReadPF(a.ctx, a.t, a.name, false)
	if err != nil {
		return err
	}
	a.man.Activated.PFListing = live.Digest
	return nil
}

// rolledBack waits for the guard to fire after a failed confirmation, and
// says whether the operator can get in again.
func (a *applier) rolledBack(probeErr error, secs int, what, previous string) error {
	time.Sleep(time.Duration(secs)*time.Second + 2*time.Second)
	if err := a.probe(); err != nil {
		return fmt.Errorf("after loading %s a new SSH connection failed (%v), and still fails after the rollback timer: check the machine's console", what, probeErr)
	}
	return fmt.Errorf("%s would lock SSH out (a new connection failed: %v): the on-box timer restored %s after %d s; fix the topology's management networks", what, probeErr, previous, secs)
}

func (a *applier) probe() error {
	if a.env.Redial == nil {
		return nil
	}
	ctx, cancel := context.WithTimeout(a.ctx, 15*time.Second)
	defer cancel()
	t, err := a.env.Redial(ctx, a.name)
	if err != nil {
		return err
	}
	if c, ok := t.(interface{ Close() error }); ok {
		defer c.Close()
	}
	r, err := t.Run(ctx, []string{"true"}, remote.RunOpts{})
	if err != nil {
		return err
	}
	if r.Exit != 0 {
		return fmt.Errorf("true exited %d", r.Exit)
	}
	return nil
}

// gateway applies config.xml: back up, write, make pfSense load it, read it
// back (pfSense silently restores a backup when it rejects a file).
func (a *applier) gateway() error {
	f := a.d.File(ConfigXML)
	if f == nil {
		return nil
	}
	hostFiles, _ := a.fileActions()
	for _, act := range hostFiles {
		if act.Target != ConfigXML {
			if err := a.write(*a.d.File(act.Target), act.Target, act.TakeOver); err != nil {
				return err
			}
			a.step(describe(act))
		}
	}
	if len(a.has(OpReload, KindPfSense)) == 0 {
		return nil
	}
	cur := a.snap.Files[ConfigXML]
	got, err := a.t.ReadFiles(a.ctx, []string{ConfigXML})
	if err != nil {
		return err
	}
	old := got[ConfigXML]
	if digestOf(old) != cur.Digest {
		return fmt.Errorf("%s changed while arbo was applying: someone is editing the gateway", ConfigXML)
	}
	if err := a.t.MkdirAll(BackupDir, 0o755); err != nil {
		return err
	}
	backup := path.Join(BackupDir, fmt.Sprintf("config-%d.xml", a.env.Now().Unix()))
	if err := a.t.WriteFileAtomic(backup, old, 0o644, 0, 0); err != nil {
		return err
	}
	a.step("back up " + ConfigXML + " to " + backup)
	// The gateway is a firewall too: the same commit-confirmed guard as pf.
	g, err := a.armGuard(configGuard, func() (string, error) { return backup, nil })
	if err != nil {
		return err
	}
	removed, routesChanged, err := pfsense.RouteChanges(a.c.Name, old, f.Content)
	if err != nil {
		routesChanged = true // a previous config arbo cannot read: apply the routes anyway
	}
	if len(removed) > 0 {
		// While pfSense still runs the previous config, queue the kernel
		// deletions of arbo's routes the new one drops, as the GUI does
		// before it removes a route (system_routes.php:72 calls
		// delete_static_route($id, true), system.inc:1573-1617, which
		// writes `route delete` commands to /tmp/.system_routes.apply).
		if _, err := a.cmd(pfSensePHP, "-r", phpDeleteRoutes(removed)); err != nil {
			_ = a.settle(g, false)
			return fmt.Errorf("queueing the deletion of removed static routes (nothing changed): %w", err)
		}
	}
	if err := a.t.WriteFileAtomic(ConfigXML, f.Content, f.Mode, 0, 0); err != nil {
		return err
	}
	for _, act := range hostFiles {
		if act.Target == ConfigXML {
			a.step(describe(act))
		}
	}
	if err := a.t.Remove(ConfigCache); err != nil && !errors.Is(err, fs.ErrNotExist) {
		return err
	}
	if _, err := a.cmd("/etc/rc.filter_configure_sync"); err != nil {
		return err
	}
	back, err := a.t.ReadFiles(a.ctx, []string{ConfigXML})
	if err != nil {
		return err
	}
	if !bytes.Equal(back[ConfigXML], f.Content) {
		// pfSense already went back to its backup (ours): stop the timer.
		_ = a.settle(g, false)
		return fmt.Errorf("pfSense did not keep the new %s (it restores a backup when it rejects a file): the gateway runs its previous configuration; see its system log", ConfigXML)
	}
	if err := a.provePFLoaded(old, f.Content); err != nil {
		return a.restoreConfig(err, g)
	}
	if routesChanged || len(removed) > 0 {
		// rc.filter_configure_sync only rebuilds pf: static routes and
		// gateways are applied as System > Routing's Apply does
		// (system_routes.php:45-62): the queued deletions, then
		// system_routing_configure(), which adds or changes every route.
		if _, err := a.cmd(pfSensePHP, "-r", phpApplyRoutes); err != nil {
			return a.restoreConfig(fmt.Errorf("applying the static routes: %w", err), g)
		}
	}
	if err := a.probe(); err != nil {
		return a.rolledBack(err, g.secs, "the new gateway configuration", "the previous configuration")
	}
	if err := a.settle(g, true); err != nil {
		return err
	}
	a.man.Activated.Config = digestOf(f.Content)
	a.owned[ConfigXML] = ManifestFile{Path: ConfigXML, SHA256: a.man.Activated.Config}
	a.step(describe(a.has(OpReload, KindPfSense)[0]))
	// The DNS Resolver restarts after the confirmation: pfSense's restart
	// takes seconds (services.inc:4361 sleeps 1 s before it starts unbound)
	// and has nothing to do with whether SSH still gets in, so the timer
	// must not run out during it and roll back a good configuration.
	for _, act := range a.has(OpRestart, KindDNS) {
		if _, err := a.cmd("/usr/local/sbin/pfSsh.php", "playback", "svc", "restart", "unbound"); err != nil {
			return err
		}
		a.step(describe(act))
	}
	return nil
}

// provePFLoaded checks that the rules pf runs are the ones pfSense generated
// from the config.xml arbo wrote. When pfctl refuses the generated
// /tmp/rules.debug, filter_configure_sync() loads the previous ruleset
// again, files a notice and returns normally (pfsense-2.7.2
// src/etc/inc/filter.inc:515-564), so rc.filter_configure_sync exits 0.
// pfSense writes each filter rule with its tracker as "ridentifier N"
// (filter.inc:3688) and `pfctl -sr` prints it back: every arbo rule of the
// new config must be loaded, and none that the new config dropped.
func (a *applier) provePFLoaded(oldConf, newConf []byte) error {
	want, err := pfsense.RuleTrackers(a.c.Name, newConf)
	if err != nil {
		return err
	}
	had, err := pfsense.RuleTrackers(a.c.Name, oldConf)
	if err != nil {
		had = nil // a previous config arbo cannot read has no arbo rules to miss
	}
	gone := map[string]bool{}
	for _, t := range had {
		gone[t] = true
	}
	for _, t := range want {
		delete(gone, t)
	}
	if len(want) == 0 && len(gone) == 0 {
		return nil
	}
	r, err := a.cmd("/sbin/pfctl", "-sr")
	if err != nil {
		return err
	}
	loaded := ridentifiers(r.Stdout)
	var missing, stale []string
	for _, t := range want {
		if !loaded[t] {
			missing = append(missing, t)
		}
	}
	for t := range gone {
		if loaded[t] {
			stale = append(stale, t)
		}
	}
	if len(missing) == 0 && len(stale) == 0 {
		return nil
	}
	slices.Sort(stale)
	why := "pfctl accepted it again now"
	if c, _ := a.t.Run(a.ctx, []string{"/sbin/pfctl", "-n", "-o", "basic", "-f", "/tmp/rules.debug"}, remote.RunOpts{}); c.Exit != 0 {
		why = "pfctl -nf /tmp/rules.debug: " + strings.TrimSpace(string(c.Stderr))
	}
	return fmt.Errorf("pfSense did not load the ruleset of the new %s: pf still runs other rules (arbo rule trackers missing from pfctl -sr: %v; still loaded although removed: %v; %s)", ConfigXML, missing, stale, why)
}

// pfSensePHP is pfSense's PHP command-line interpreter; its php.ini puts
// /etc/inc on the include_path.
const pfSensePHP = "/usr/local/bin/php"

// routesApply is where delete_static_route queues its commands.
const routesApply = "/tmp/.system_routes.apply"

// phpDeleteRoutes is PHP that queues the kernel deletion of the static
// routes with these indexes in the running config, through pfSense's own
// delete_static_route (system.inc:1573). One line, no "!": remote.Quote
// refuses both (csh).
func phpDeleteRoutes(ids []int) string {
	s := make([]string, len(ids))
	for i, id := range ids {
		s[i] = strconv.Itoa(id)
	}
	return `require_once("config.inc"); require_once("functions.inc"); require_once("system.inc"); require_once("gwlb.inc"); ` +
		`foreach (array(` + strings.Join(s, ", ") + `) as $id) { delete_static_route($id, true); }`
}

// phpApplyRoutes is System > Routing's Apply (system_routes.php:49-61)
// without its filter_configure(), which rc.filter_configure_sync already
// did: run the queued route deletions, then system_routing_configure().
const phpApplyRoutes = `require_once("config.inc"); require_once("functions.inc"); require_once("filter.inc"); require_once("system.inc"); require_once("gwlb.inc"); ` +
	`$f = g_get("tmp_path") . "/.system_routes.apply"; ` +
	`if (file_exists($f)) { foreach (unserialize(file_get_contents($f)) as $c) { mwexec($c); } unlink($f); } ` +
	`exit(system_routing_configure());`

// ridentifiers are the "ridentifier N" values of `pfctl -sr` output. Only
// this apply step reads them; the pf package parses rulesets.
func ridentifiers(sr []byte) map[string]bool {
	out := map[string]bool{}
	f := strings.Fields(string(sr))
	for i := 0; i+1 < len(f); i++ {
		if f[i] == "ridentifier" {
			out[f[i+1]] = true
		}
	}
	return out
}

// restoreConfig puts the previous config.xml (arbo's backup) back and makes
// pfSense load it, then stops the guard, which would do the same later.
func (a *applier) restoreConfig(cause error, g *guard) error {
	backup := g.arg // the last confirmed configuration: this run's backup, or the one a stale guard would have restored
	got, err := a.t.ReadFiles(a.ctx, []string{backup})
	if err != nil {
		return fmt.Errorf("%v; restoring the previous %s from %s failed too: %w (the on-box timer restores it)", cause, ConfigXML, backup, err)
	}
	if err := a.t.WriteFileAtomic(ConfigXML, got[backup], 0o644, 0, 0); err != nil {
		return fmt.Errorf("%v; restoring the previous %s failed too: %w (the on-box timer restores it)", cause, ConfigXML, err)
	}
	if err := a.t.Remove(ConfigCache); err != nil && !errors.Is(err, fs.ErrNotExist) {
		return fmt.Errorf("%v; %w (the on-box timer restores the previous %s)", cause, err, ConfigXML)
	}
	// Route deletions queued for the config that did not take.
	_ = a.t.Remove(routesApply)
	if _, err := a.cmd("/etc/rc.filter_configure_sync"); err != nil {
		return fmt.Errorf("%v; reloading the previous %s failed: %w (the on-box timer tries again)", cause, ConfigXML, err)
	}
	_ = a.settle(g, false)
	return fmt.Errorf("%w: arbo put the previous %s back (%s) and reloaded it", cause, ConfigXML, backup)
}

// write writes f's content to target atomically, keeping the previous
// version (and the original, the first time arbo takes a file over).
func (a *applier) write(f state.File, target string, takeOver bool) error {
	if err := a.ctx.Err(); err != nil {
		return fmt.Errorf("interrupted before writing %s: %w", target, err)
	}
	root := ""
	if f.Jail != "" {
		root = path.Join(JailDir, f.Jail)
	}
	uid, ok := a.snap.Users[root][f.Owner]
	if !ok && f.Owner == "root" {
		uid, ok = 0, true // uid 0 is root on every FreeBSD, whatever passwd says
	}
	if !ok {
		return fmt.Errorf("%s: user %q does not exist on the machine (in %s)", f.Path, f.Owner, orHost(root))
	}
	gid, ok := a.snap.Groups[root][f.Group]
	if !ok && f.Group == "wheel" {
		gid, ok = 0, true // gid 0 is wheel on every FreeBSD
	}
	if !ok {
		return fmt.Errorf("%s: group %q does not exist on the machine (in %s)", f.Path, f.Group, orHost(root))
	}
	if err := a.t.MkdirAll(path.Dir(target), 0o755); err != nil {
		return err
	}
	if takeOver {
		got, err := a.t.ReadFiles(a.ctx, []string{f.Path})
		if err != nil {
			return err
		}
		if b, ok := got[f.Path]; ok {
			if err := a.t.WriteFileAtomic(f.Path+".arbo-orig", b, 0o600, 0, 0); err != nil {
				return err
			}
		}
	}
	if err := a.t.WriteFileAtomicKeepPrev(target, f.Content, f.Mode, uid, gid); err != nil {
		return err
	}
	if target == f.Path {
		a.mu.Lock()
		a.owned[f.Path] = ManifestFile{Path: f.Path, SHA256: digestOf(f.Content), Jail: f.Jail}
		a.mu.Unlock()
	}
	return nil
}

// writeParallel bounds the writes in flight on one connection: the SFTP
// client pipelines them, and a few at once hide the round trips without
// crowding the server.
const writeParallel = 8

// writeAll runs write for every action, several at once, and records each
// done step. Which files land before a failure varies; each file is whole
// either way, and the manifest records exactly those that did.
func (a *applier) writeAll(acts []Action, write func(Action) error) error {
	var g errgroup.Group
	g.SetLimit(writeParallel)
	for _, act := range acts {
		g.Go(func() error {
			if err := write(act); err != nil {
				return err
			}
			a.step(describe(act))
			return nil
		})
	}
	return g.Wait()
}

func orHost(root string) string {
	if root == "" {
		return "the host"
	}
	return root
}

func (a *applier) jailSpec(name string) state.Jail {
	for _, j := range a.d.Jails {
		if j.Name == name {
			return j
		}
	}
	return state.Jail{Name: name, SafeName: inventory.SafeName(name), Root: path.Join(JailDir, name)}
}

func (a *applier) release() (string, error) {
	if h := a.c.Host(a.name); h != nil && h.FreeBSDRelease != "" {
		return h.FreeBSDRelease, nil
	}
	if a.c.FreeBSDRelease != "" {
		return a.c.FreeBSDRelease, nil
	}
	r, err := a.cmd("freebsd-version", "-u")
	if err != nil {
		return "", err
	}
	v := strings.TrimSpace(string(r.Stdout))
	if i := strings.Index(v, "-p"); i > 0 {
		v = v[:i]
	}
	return v, nil
}

func (a *applier) destroys(jail string) bool {
	for _, act := range a.has(OpDestroy, KindJail) {
		if act.Jail == jail {
			return true
		}
	}
	return false
}

func (a *applier) retire(name string) {
	for i := range a.man.Jails {
		if a.man.Jails[i].Name == name {
			a.man.Jails[i].Retired = true
		}
	}
}

func (a *applier) forget(name string) {
	a.man.Jails = slices.DeleteFunc(a.man.Jails, func(j ManifestJail) bool { return j.Name == name })
}

func (a *applier) addJail(j state.Jail) {
	if mj := a.man.jail(j.Name); mj != nil {
		mj.Retired = false
		// The tier comes from the topology on every apply, and the data
		// flag sticks: a jail that was ever in a data tier keeps needing
		// --allow-destroy (issue 11, item 3).
		mj.Tier = j.Tier
		mj.Data = mj.Data || j.Data
		return
	}
	a.man.Jails = append(a.man.Jails, ManifestJail{Name: j.Name, Tier: j.Tier, Data: j.Data})
}

// writeManifest records what arbo owns now: after a complete run, exactly
// the desired state; after a failed one, what was owned before plus what
// this run wrote or created.
func (a *applier) writeManifest(complete bool) error {
	if complete {
		a.owned = map[string]ManifestFile{}
		for _, f := range a.d.Files {
			a.owned[f.Path] = ManifestFile{Path: f.Path, SHA256: digestOf(f.Content), Jail: f.Jail}
		}
		for _, j := range a.d.Jails {
			a.addJail(j)
		}
		a.man.Activated.Routes = nil
		for _, r := range a.d.Routes {
			a.man.Activated.Routes = append(a.man.Activated.Routes, r.Dest+" "+r.Via)
		}
		// Of the routes arbo installed, those still wanted: the others
		// were deleted by this run or were already gone.
		a.man.Activated.Installed = slices.DeleteFunc(a.man.Activated.Installed, func(s string) bool {
			return !slices.Contains(a.man.Activated.Routes, s)
		})
		sort.Strings(a.man.Activated.Installed)
	}
	a.man.Files = a.man.Files[:0]
	for _, p := range sortedKeys(a.owned) {
		a.man.Files = append(a.man.Files, a.owned[p])
	}
	if err := a.t.MkdirAll(StateDir, 0o700); err != nil {
		return err
	}
	return a.t.WriteFileAtomic(ManifestPath, a.man.encode(), 0o600, 0, 0)
}

// UnboundCheckArgs is the command that validates the port's unbound
// configuration inside jail j (safe name), as its rc script would.
func UnboundCheckArgs(j string) []string {
	return []string{"jexec", j, "/usr/local/sbin/unbound-checkconf", "/usr/local/etc/unbound/unbound.conf"}
}
