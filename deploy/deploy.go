// Package deploy runs arbo's verbs end to end: load the topology, check it,
// render every machine, plan against the machines (or fresh ones, offline)
// and apply. It is the one place that wires inventory, check, render,
// remote and plan together, so that the commands stay flag parsing and
// printing only.
package deploy

import (
	"context"
	"errors"
	"fmt"
	"os"
	"os/user"
	"path/filepath"
	"strconv"
	"strings"
	"time"

	"github.com/arbo-project/arbo/check"
	"github.com/arbo-project/arbo/check/live"
	"github.com/arbo-project/arbo/check/rendered"
	"github.com/arbo-project/arbo/check/verify"
	"github.com/arbo-project/arbo/dns"
	"github.com/arbo-project/arbo/erlang/tlsca"
	"github.com/arbo-project/arbo/inventory"
	"github.com/arbo-project/arbo/pfsense"
	"github.com/arbo-project/arbo/plan"
	"github.com/arbo-project/arbo/remote"
	"github.com/arbo-project/arbo/render"
	"github.com/arbo-project/arbo/state"
	"github.com/arbo-project/arbo/templates"
)

// Options are everything a plan or an apply is made with.
type Options struct {
	Plan           plan.Options
	SSH            remote.Overrides
	TemplatesDir   string
	Parallel       int
	Strict         bool
	Getenv         func(string) string
	Now            func() time.Time
	Progress       func(machine, step string)
	ConfirmTimeout time.Duration
	LockTimeout    time.Duration
	// Revision is the time config.xml's <revision> is stamped with; zero:
	// SOURCE_DATE_EPOCH, else now. Applying a saved plan uses the plan's,
	// so that the re-render under the locks gives the reviewed bytes.
	Revision time.Time
}

// Prepared is a loaded, checked topology with its plan.
type Prepared struct {
	Cluster *inventory.Cluster
	Report  *check.Report
	Plan    *plan.Plan
	Session *plan.Session
}

// FindingsError says apply refuses because of error-level findings (exit 3).
type FindingsError struct{ Report *check.Report }

func (e *FindingsError) Error() string {
	return "the topology has error-level check findings (" + check.Summary(e.Report) + "): fix them, or accept them with a reason under accept: in the topology"
}

// Load reads and checks a topology and returns its digest. The firewall
// rules (ARBO004, ARBO007, ARBO010, ARBO012) are judged on each host's
// rendered pf.conf with the templates of templatesDir ("" = arbo's own), as
// `arbo check --templates` judges them: a template override that skips lo0
// or drops the management rule is refused by plan and apply too, not only
// by check. A rendered file arbo cannot parse is an error.
func Load(file string, strict bool, templatesDir string) (*inventory.Cluster, *check.Report, string, error) {
	b, err := os.ReadFile(file)
	if err != nil {
		return nil, nil, "", err
	}
	c, err := inventory.Parse(file, b)
	if err != nil {
		return nil, nil, "", err
	}
	ts, err := templates.Load(templatesDir)
	if err != nil {
		return nil, nil, "", err
	}
	rep, err := rendered.Run(c, ts, check.Options{Strict: strict})
	if err != nil {
		return nil, nil, "", err
	}
	return c, rep, plan.Digest(b), nil
}

// renderer returns the RenderFunc of a plan: secrets are read unless the
// plan is offline, where they show as (sensitive) and need not exist.
func renderer(c *inventory.Cluster, o Options) (plan.RenderFunc, error) {
	ts, err := templates.Load(o.TemplatesDir)
	if err != nil {
		return nil, err
	}
	ro := render.Options{Templates: ts}
	if o.Plan.Offline {
		ro.CookieMissing = true
	} else {
		cookie, err := render.ReadCookie(c)
		if err != nil {
			return nil, err
		}
		ro.Cookie = cookie
	}
	if c.Erlang != nil && c.Erlang.TLS {
		if o.Plan.Offline {
			ro.TLSMissing = true
		} else if ro.TLS, err = tlsca.Load(c); err != nil {
			return nil, err
		}
	}
	rev := revisionTime(o) // once: every render of this run stamps the same time
	return func(base []byte) ([]state.Machine, error) {
		r := ro
		r.PfSenseBase = base
		r.Revision = rev
		return render.Cluster(c, r)
	}, nil
}

// revisionTime is when config.xml's <revision> says it changed:
// SOURCE_DATE_EPOCH when set (reproducible output), else now.
func revisionTime(o Options) time.Time {
	if !o.Revision.IsZero() {
		return o.Revision.UTC()
	}
	if o.Getenv != nil {
		if s := o.Getenv("SOURCE_DATE_EPOCH"); s != "" {
			if n, err := strconv.ParseInt(s, 10, 64); err == nil {
				return time.Unix(n, 0).UTC()
			}
		}
	}
	if o.Now != nil {
		return o.Now().UTC().Truncate(time.Second)
	}
	return time.Now().UTC().Truncate(time.Second)
}

// Dialer reaches machines over SSH with the topology's and the command
// line's settings.
func Dialer(c *inventory.Cluster, ov remote.Overrides) plan.Dialer {
	return func(ctx context.Context, machine string) (plan.Target, error) {
		t, err := remote.Resolve(c, machine, ov)
		if err != nil {
			return nil, err
		}
		conn, err := remote.Dial(ctx, t)
		if err != nil {
			return nil, err
		}
		return conn, nil
	}
}

// Plan loads, checks, renders and plans. Offline plans connect to nothing.
func Plan(ctx context.Context, file string, o Options) (*Prepared, error) {
	c, rep, sha, err := Load(file, o.Strict, o.TemplatesDir)
	if err != nil {
		return nil, err
	}
	if err := render.UseCookieFile(c, o.Plan.CookieFile); err != nil {
		return nil, err
	}
	o.Revision = revisionTime(o) // decided once, recorded in the plan
	rf, err := renderer(c, o)
	if err != nil {
		return nil, err
	}
	env := plan.Env{Dial: Dialer(c, o.SSH), Render: rf, Factory: pfsense.Factory(), Parallel: parallel(o, c), TopologySHA: sha}
	p, sess, err := plan.Make(ctx, c, o.Plan, env)
	if err != nil {
		Close(sess)
		return nil, err
	}
	p.Revision = o.Revision.Unix()
	if !o.Plan.Offline {
		p.SSH = sshSettings(o.SSH)
	}
	return &Prepared{Cluster: c, Report: rep, Plan: p, Session: sess}, nil
}

// sshSettings records the command line's SSH options in a plan, files as
// absolute paths (apply may run from another directory); nil when none
// was given.
func sshSettings(ov remote.Overrides) *plan.SSHSettings {
	abs := func(p string) string {
		if p == "" || strings.HasPrefix(p, "~") {
			return p
		}
		if a, err := filepath.Abs(p); err == nil {
			return a
		}
		return p
	}
	s := plan.SSHSettings{ConfigFile: abs(ov.SSHConfigFile), KnownHosts: abs(ov.KnownHostsFile), User: ov.User, Port: ov.Port}
	for _, f := range ov.IdentityFiles {
		s.IdentityFiles = append(s.IdentityFiles, abs(f))
	}
	if s.ConfigFile == "" && s.KnownHosts == "" && s.User == "" && s.Port == 0 && len(s.IdentityFiles) == 0 {
		return nil
	}
	return &s
}

// withSavedSSH fills the SSH options apply was not given from the ones the
// plan was made with. A recorded file that cannot be read now is an error
// naming the option and the file, before any machine is dialled.
func withSavedSSH(ov remote.Overrides, s *plan.SSHSettings) (remote.Overrides, error) {
	if s == nil {
		return ov, nil
	}
	check := func(flag, f string) error {
		if f == "" || strings.HasPrefix(f, "~") {
			return nil
		}
		if _, err := os.Stat(f); err != nil {
			return fmt.Errorf("the plan was made with %s %s, which cannot be read now (%v): give %s with the file to use", flag, f, err, flag)
		}
		return nil
	}
	if ov.SSHConfigFile == "" && s.ConfigFile != "" {
		if err := check("--ssh-config", s.ConfigFile); err != nil {
			return ov, err
		}
		ov.SSHConfigFile = s.ConfigFile
	}
	if ov.KnownHostsFile == "" && s.KnownHosts != "" {
		if err := check("--known-hosts", s.KnownHosts); err != nil {
			return ov, err
		}
		ov.KnownHostsFile = s.KnownHosts
	}
	if len(ov.IdentityFiles) == 0 && len(s.IdentityFiles) > 0 {
		for _, f := range s.IdentityFiles {
			if err := check("-i/--identity-file", f); err != nil {
				return ov, err
			}
		}
		ov.IdentityFiles = s.IdentityFiles
	}
	if ov.User == "" {
		ov.User = s.User
	}
	if ov.Port == 0 {
		ov.Port = s.Port
	}
	return ov, nil
}

func parallel(o Options, c *inventory.Cluster) int {
	if o.Parallel > 0 {
		return o.Parallel
	}
	return min(len(c.Machines()), 32)
}

// FromSavedPlan prepares the apply of a saved plan: the topology it names
// must be unchanged, and the machines are read again under the locks.
func FromSavedPlan(ctx context.Context, saved *plan.Plan, o Options) (*Prepared, error) {
	if saved.Options.Offline {
		return nil, errors.New("this plan was made --offline, against fresh machines: it shows what arbo would do, and cannot be applied; make a plan without --offline")
	}
	b, err := os.ReadFile(saved.Topology)
	if err != nil {
		return nil, fmt.Errorf("the plan was made from %s: %w", saved.Topology, err)
	}
	if plan.Digest(b) != saved.TopologySHA {
		return nil, fmt.Errorf("the plan is stale: %s changed since the plan was made; make a new plan", saved.Topology)
	}
	// --cookie-file at apply time wins over the plan's (a CI credential
	// is a new temporary file in every stage).
	cookie := o.Plan.CookieFile
	o.Plan = saved.Options
	if cookie != "" {
		o.Plan.CookieFile = cookie
	}
	if saved.Revision != 0 {
		o.Revision = time.Unix(saved.Revision, 0)
	}
	if o.SSH, err = withSavedSSH(o.SSH, saved.SSH); err != nil {
		return nil, err
	}
	pr, err := Plan(ctx, saved.Topology, o)
	if err != nil {
		return nil, err
	}
	// Apply what was reviewed (Apply re-reads and compares under the
	// locks), refusing with its cause each machine that cannot be reached now.
	pr.Plan = saved.WithErrorsFrom(pr.Plan)
	return pr, nil
}

// Apply applies a prepared plan. Error-level findings that are not
// accepted stop it before anything is touched.
func Apply(ctx context.Context, pr *Prepared, o Options) (*plan.Result, error) {
	if pr.Report.HasErrors() {
		return nil, &FindingsError{Report: pr.Report}
	}
	if pr.Plan.Options.Offline {
		return nil, errors.New("an offline plan cannot be applied")
	}
	// New connections (the commit-confirm check) go the way the plan's did.
	ov, err := withSavedSSH(o.SSH, pr.Plan.SSH)
	if err != nil {
		return nil, err
	}
	o.SSH = ov
	c := pr.Cluster
	env := plan.ApplyEnv{
		Env:            plan.Env{Parallel: parallel(o, c)},
		Redial:         Dialer(c, o.SSH),
		Progress:       o.Progress,
		Now:            o.Now,
		Owner:          owner(),
		ConfirmTimeout: o.ConfirmTimeout,
		StaleLock:      time.Hour,
		LockTimeout:    o.LockTimeout,
	}
	if env.Now == nil {
		env.Now = time.Now
	}
	if c.Erlang != nil {
		env.ErlangService = c.Erlang.Service
	}
	return plan.Apply(ctx, c, pr.Plan, pr.Session, env)
}

func owner() string {
	name := "unknown"
	if u, err := user.Current(); err == nil {
		name = u.Username
	}
	host, _ := os.Hostname()
	return fmt.Sprintf("%s@%s pid %d", name, host, os.Getpid())
}

// Close closes every connection a session opened.
func Close(s *plan.Session) {
	if s == nil {
		return
	}
	for _, t := range s.Targets {
		if c, ok := t.(interface{ Close() error }); ok {
			_ = c.Close()
		}
	}
}

// RenderOptions are what `arbo render` takes.
type RenderOptions struct {
	Dir          string
	PfSenseBase  string // a config.xml to merge into; "" = pfSense's factory default
	TemplatesDir string
	CookieFile   string // --cookie-file: the Erlang cookie from here, not the topology's cookie_file
	Getenv       func(string) string
	Now          func() time.Time
}

// Render writes every machine's files, a manifest and the zone exports to
// a directory. The cookie must exist: rendered files are meant to be used.
func Render(file string, o RenderOptions) ([]state.Machine, []string, error) {
	c, err := inventory.Load(file)
	if err != nil {
		return nil, nil, err
	}
	ts, err := templates.Load(o.TemplatesDir)
	if err != nil {
		return nil, nil, err
	}
	if err := render.UseCookieFile(c, o.CookieFile); err != nil {
		return nil, nil, err
	}
	cookie, err := render.ReadCookie(c)
	if err != nil {
		return nil, nil, err
	}
	ro := render.Options{Templates: ts, Cookie: cookie, Revision: revisionTime(Options{Getenv: o.Getenv, Now: o.Now})}
	if c.Erlang != nil && c.Erlang.TLS {
		if ro.TLS, err = tlsca.Load(c); err != nil {
			return nil, nil, err
		}
	}
	if o.PfSenseBase != "" {
		b, err := os.ReadFile(o.PfSenseBase)
		if err != nil {
			return nil, nil, fmt.Errorf("--pfsense-base: %w", err)
		}
		if err := pfsense.Validate(b); err != nil {
			return nil, nil, fmt.Errorf("--pfsense-base %s: %w", o.PfSenseBase, err)
		}
		ro.PfSenseBase = b
	}
	machines, err := render.Cluster(c, ro)
	if err != nil {
		return nil, nil, err
	}
	zones, err := dns.ZoneFiles(c, ts)
	if err != nil {
		return nil, nil, err
	}
	if err := render.WriteDir(o.Dir, c, machines, zones); err != nil {
		return nil, nil, err
	}
	var warnings []string
	for _, m := range machines {
		for _, w := range m.Warnings {
			warnings = append(warnings, m.Name+": "+w)
		}
	}
	return machines, warnings, nil
}

// CheckLive checks the topology against what its machines run (arbo check
// --live), read-only, over the SSH settings of o.
func CheckLive(ctx context.Context, c *inventory.Cluster, strict bool, o Options) (*check.Report, error) {
	return live.Run(ctx, c, live.Options{Check: check.Options{Strict: strict}, Dial: Dialer(c, o.SSH), Parallel: parallel(o, c), Hosts: o.Plan.Hosts})
}

// Verify runs arbo verify's probes on the machines the topology names,
// read-only, over the SSH settings of o.
func Verify(ctx context.Context, c *inventory.Cluster, wait time.Duration, o Options) *verify.Report {
	return verify.Run(ctx, c, verify.Plan(c), verify.Options{Dial: Dialer(c, o.SSH), Parallel: parallel(o, c), Wait: wait, Hosts: o.Plan.Hosts})
}
