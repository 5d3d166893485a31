package plan

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"slices"
	"sync"

	"golang.org/x/sync/errgroup"

	"github.com/arbo-project/arbo/inventory"
	"github.com/arbo-project/arbo/state"
)

// Dialer connects to a machine by name.
type Dialer func(ctx context.Context, machine string) (Target, error)

// RenderFunc renders every machine's desired state, merging the gateway's
// objects into base (the gateway's current config.xml; nil = pfSense's
// factory default).
type RenderFunc func(base []byte) ([]state.Machine, error)

// Env is what Make needs from outside: how to reach machines and render.
type Env struct {
	Dial        Dialer
	Render      RenderFunc
	Factory     []byte // pfSense's factory config.xml, for offline plans
	Parallel    int
	TopologySHA string
}

// Session is a plan in the making: the connections it opened stay open for
// apply, so that each machine is dialled once per run.
type Session struct {
	Cluster *inventory.Cluster
	Options Options
	Targets map[string]Target
	Desired map[string]*state.Machine
}

// Selected lists the machines a run is about: all, or those --host names,
// in the order hosts first then the gateway (apply order).
func Selected(c *inventory.Cluster, hosts []string) ([]string, error) {
	var out []string
	for _, h := range c.Hosts {
		if len(hosts) == 0 || slices.Contains(hosts, h.Name) {
			out = append(out, h.Name)
		}
	}
	if c.Gateway != nil && (len(hosts) == 0 || slices.Contains(hosts, c.Gateway.Name)) {
		out = append(out, c.Gateway.Name)
	}
	for _, h := range hosts {
		if !slices.Contains(c.Machines(), h) {
			return nil, fmt.Errorf("--host %s: no such machine in the topology (machines: %v)", h, c.Machines())
		}
	}
	return out, nil
}

// Make reads every selected machine, renders, and diffs. With Offline, it
// plans against fresh machines without connecting. A machine that cannot be
// read gets an Error in its plan; the others are planned all the same.
func Make(ctx context.Context, c *inventory.Cluster, o Options, env Env) (*Plan, *Session, error) {
	dial, render, parallel, topoSHA := env.Dial, env.Render, env.Parallel, env.TopologySHA
	names, err := Selected(c, o.Hosts)
	if err != nil {
		return nil, nil, err
	}
	sess := &Session{Cluster: c, Options: o, Targets: map[string]Target{}, Desired: map[string]*state.Machine{}}
	errs := map[string]error{}
	var mu sync.Mutex

	// The gateway's config.xml is the base the render merges into, so it is
	// read first; the hosts are dialled meanwhile.
	var base []byte
	if !o.Offline {
		// Dial with the run's context, not the group's: a connection lives
		// as long as its context, and apply reuses these.
		var g errgroup.Group
		g.SetLimit(max(parallel, 1))
		for _, n := range names {
			g.Go(func() error {
				t, err := dial(ctx, n)
				mu.Lock()
				defer mu.Unlock()
				if err != nil {
					errs[n] = err
					return nil
				}
				sess.Targets[n] = t
				return nil
			})
		}
		_ = g.Wait()
		if c.Gateway != nil {
			if t := sess.Targets[c.Gateway.Name]; t != nil {
				got, err := t.ReadFiles(ctx, []string{ConfigXML})
				if err != nil {
					errs[c.Gateway.Name] = err
				} else if b, ok := got[ConfigXML]; ok {
					base = b
				} else {
					errs[c.Gateway.Name] = fmt.Errorf("machine %s: %s does not exist: is this a pfSense box?", c.Gateway.Name, ConfigXML)
				}
			}
		}
	}
	if o.Offline {
		base = env.Factory
	}
	machines, err := render(base)
	if err != nil {
		return nil, sess, err
	}
	for i := range machines {
		sess.Desired[machines[i].Name] = &machines[i]
	}

	p := &Plan{FormatVersion: 1, Kind: PlanKind, Cluster: c.Name, Topology: c.File, TopologySHA: topoSHA, Options: o}
	results := make([]MachinePlan, len(names))
	g, gctx := errgroup.WithContext(ctx)
	g.SetLimit(max(parallel, 1))
	for i, n := range names {
		d := sess.Desired[n]
		g.Go(func() error {
			if d == nil {
				results[i] = MachinePlan{Name: n, Error: "nothing rendered for this machine"}
				return nil
			}
			mu.Lock()
			e := errs[n]
			t := sess.Targets[n]
			mu.Unlock()
			if e != nil {
				results[i] = MachinePlan{Name: n, Kind: d.Kind, Error: e.Error()}
				return nil
			}
			var snap *Snapshot
			if o.Offline {
				snap = Fresh(d, base)
			} else {
				var err error
				snap, err = Read(gctx, t, d)
				if err != nil {
					results[i] = MachinePlan{Name: n, Kind: d.Kind, Error: err.Error()}
					return nil
				}
			}
			Settle(d, snap)
			results[i] = Diff(d, snap, o)
			return nil
		})
	}
	_ = g.Wait()
	p.Machines = results
	LinkMoves(p)
	return p, sess, ctx.Err()
}

// Fresh is the snapshot of a machine as it comes out of the installer: a
// FreeBSD host without ezjail, or a pfSense box with its factory config.
// It is what `plan --offline` plans against.
func Fresh(d *state.Machine, factory []byte) *Snapshot {
	s := &Snapshot{Machine: d.Name, Files: map[string]FileState{}, Running: map[string]bool{}, Interfaces: map[string]bool{"lo0": true},
		Routes: map[string]string{}, Users: map[string]map[string]int{"": {"root": 0}}, Groups: map[string]map[string]int{"": {"wheel": 0}}}
	for _, f := range d.Files {
		s.Files[f.Path] = FileState{}
	}
	if d.ZFSDataset != "" {
		s.ZFS = map[string]uint64{} // a fresh machine: no dataset yet
	}
	if d.Kind == state.KindGateway && factory != nil {
		s.Files[ConfigXML] = FileState{Exists: true, Digest: digestOf(factory), Content: factory, Mode: 0o644}
		s.Running = nil
	}
	return s
}

// Settle gives each file of d with two forms (ezjail.conf of a ZFS host)
// the form the machine needs, from what was read: for a basejail of plain
// directories (the basejail exists, and <zfs.dataset>/basejail and
// /newjail are no datasets) the one without ezjail_use_zfs, else the one
// with it, which ezjail-admin install then follows (ezjail-admin:275-278,
// 1045-1048). It changes d in place and may be called again.
func Settle(d *state.Machine, s *Snapshot) {
	plain := d.ZFSDataset != "" && s.HasBasejail && s.ZFS != nil
	if plain {
		_, base := s.ZFS[d.ZFSDataset+"/basejail"]
		_, tmpl := s.ZFS[d.ZFSDataset+"/newjail"]
		plain = !base || !tmpl
	}
	for i := range d.Files {
		if v := d.Files[i].Variants; v != nil {
			d.Files[i].Content = v.Datasets
			if plain {
				d.Files[i].Content = v.Plain
			}
		}
	}
}

// Digest is the sha256 of a topology file, recorded in a plan.
func Digest(b []byte) string {
	h := sha256.Sum256(b)
	return hex.EncodeToString(h[:])
}
