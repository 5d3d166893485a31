package plan

import (
	"bytes"
	"fmt"
	"path"
	"slices"
	"sort"
	"strconv"
	"strings"
	"unicode/utf8"

	udiff "github.com/aymanbagabas/go-udiff"

	"github.com/arbo-project/arbo/inventory"
	"github.com/arbo-project/arbo/jail"
	"github.com/arbo-project/arbo/state"
)

// maxDiff bounds a diff shown in a plan: a config.xml rewrite should not
// bury the rest of the plan.
const maxDiff = 400

// Diff compares a machine's desired state with what was read from it and
// returns the actions that make them match. It is pure: everything it needs
// is in its arguments.
func Diff(d *state.Machine, s *Snapshot, o Options) MachinePlan {
	mp := MachinePlan{Name: d.Name, Kind: d.Kind, Jails: d.Jails, Routes: d.Routes, Reads: s.Reads(), Warnings: d.Warnings}
	if mp.Jails == nil {
		mp.Jails = []state.Jail{}
	}
	desiredJails := map[string]state.Jail{}
	for _, j := range d.Jails {
		desiredJails[j.Name] = j
	}
	var conflicts []string

	// Jails first: which exist, which arbo creates, adopts or refuses.
	created := map[string]bool{}
	enabled := map[string]bool{} // retired (norun) jails made runnable again
	foreign := map[string]bool{} // jails arbo must leave alone
	var needBase bool
	for _, j := range d.Jails {
		cfgPath := path.Join(EzjailCfgDir, j.SafeName)
		cfg := s.Files[cfgPath]
		norun := s.Files[cfgPath+NoRunSuffix]
		owned := s.Manifest.jail(j.Name) != nil
		switch {
		case norun.Exists:
			// A retired jail: ezjail reads <safename>.norun before
			// <safename> (ezjail-admin:203-204), its rc script skips it
			// on every start (ezjail.sh:59,66), and `onestart` exits 0
			// without starting it (ezjail-admin:148). Making it runnable
			// is an action of its own, never a side effect of a start.
			ip, host := ezjailIdentity(norun.Content, j.SafeName)
			if !owned && (ip != j.IP || host != j.Hostname && host != j.Name) {
				foreign[j.Name] = true
				conflicts = append(conflicts, fmt.Sprintf("jail %s exists, disabled (%s), but arbo does not own it and its ezjail config does not match the topology (ip %q, hostname %q; topology: %q, %q): rename or remove it, or fix the topology", j.Name, cfgPath+NoRunSuffix, ip, host, j.IP, j.Hostname))
				continue
			}
			why := "disabled by hand"
			if mj := s.Manifest.jail(j.Name); mj != nil && mj.Retired {
				why = "retired when it left the topology, its root kept"
			}
			enabled[j.Name] = true
			mp.Actions = append(mp.Actions, Action{Op: OpEnable, Kind: KindJail, Target: j.Name, Jail: j.Name,
				Reason: fmt.Sprintf("back in the topology but %s (%s): ezjail-admin config -r run %s, then arbo's ezjail config", why, cfgPath+NoRunSuffix, j.Name)})
		case !cfg.Exists:
			created[j.Name] = true
			needBase = true
			r := strings.Join(jail.CreateArgs(j), " ")
			if jail.QuotaAfterCreate(j) {
				r += ", then " + strings.Join(jail.ZFSQuotaArgs(j.ZFS, j.Quota), " ")
			}
			mp.Actions = append(mp.Actions, Action{Op: OpCreate, Kind: KindJail, Target: j.Name, Jail: j.Name, Reason: r})
		case !owned:
			// ezjail-admin create names the host after the jail; arbo uses
			// the FQDN. Either is the same jail.
			if ip, host := ezjailIdentity(cfg.Content, j.SafeName); ip == j.IP && (host == j.Hostname || host == j.Name) {
				mp.Actions = append(mp.Actions, Action{Op: OpAdopt, Kind: KindJail, Target: j.Name, Jail: j.Name,
					Reason: "an existing jail whose ezjail config matches the topology"})
			} else {
				foreign[j.Name] = true
				conflicts = append(conflicts, fmt.Sprintf("jail %s exists but arbo does not own it and its ezjail config does not match the topology (ip %q, hostname %q; topology: %q, %q): rename or remove it, or fix the topology", j.Name, ip, host, j.IP, j.Hostname))
			}
		}
	}
	installing := false // ezjail-admin install runs in this plan
	if needBase && d.Kind == state.KindHost && (!s.HasEzjail || !s.HasBasejail) {
		installing = o.Bootstrap || o.Offline
		what := "the basejail (ezjail-admin install) is"
		if !s.HasEzjail {
			what = "ezjail (pkg install -y ezjail) and its basejail (ezjail-admin install) are"
		}
		switch {
		case o.Offline && !o.Bootstrap:
			// A fresh machine has no ezjail: show the bootstrap an apply
			// would need rather than refusing to plan.
			mp.Actions = append([]Action{{Op: OpInstall, Kind: KindBasejail, Target: "ezjail", Reason: "bootstrap: " + what + " missing on a fresh machine (apply needs --bootstrap)"}}, mp.Actions...)
		case o.Bootstrap:
			mp.Actions = append([]Action{{Op: OpInstall, Kind: KindBasejail, Target: "ezjail", Reason: "bootstrap: " + what + " missing"}}, mp.Actions...)
		default:
			conflicts = append(conflicts, fmt.Sprintf("%s missing, so no jail can be created: run arbo with --bootstrap to install it, or install it by hand", what))
		}
	}

	zacts, zconf, zwarn := zfsActions(d, s, installing && needBase, created, foreign)
	for _, a := range zacts {
		if a.Op == OpCreate && installing {
			// The parent dataset right after the bootstrap it belongs to.
			mp.Actions = slices.Insert(mp.Actions, 1, a)
		} else {
			mp.Actions = append(mp.Actions, a)
		}
	}
	conflicts = append(conflicts, zconf...)
	if len(zwarn) > 0 {
		mp.Warnings = append(slices.Clone(mp.Warnings), zwarn...)
	}

	// Files.
	reloads := map[state.Reload]bool{}
	changedJailCfg := map[string]bool{}
	desiredPaths := map[string]bool{}
	for _, f := range d.Files {
		desiredPaths[f.Path] = true
		pf := planned(f)
		mp.Files = append(mp.Files, pf)
		cur := s.Files[f.Path]
		jailCfgOf := jailOfConfig(f.Path, d.Jails)
		if foreign[jailCfgOf] || foreign[f.Jail] {
			continue // not arbo's: the conflict says so, and nothing touches it
		}
		if jailCfgOf != "" && (created[jailCfgOf] || enabled[jailCfgOf]) {
			// ezjail-admin create writes it (config -r run renames the
			// .norun one back); apply then writes arbo's version before
			// the first start.
			continue
		}
		if f.Jail != "" && cur.Symlink {
			conflicts = append(conflicts, fmt.Sprintf("%s is a symlink inside jail %s's root, or a directory above it is: arbo never writes through one (remove it and find out who made it)", f.Path, f.Jail))
			continue
		}
		want := digestOf(f.Content) // compared here; kept in the plan only for non-sensitive files
		a := Action{Kind: KindFile, Target: f.Path, Jail: f.Jail, Sensitive: f.Sensitive, After: pf.SHA256, From: f.From}
		switch {
		case !cur.Exists:
			a.Op = OpCreate
			if !f.Sensitive {
				a.Diff = unified(f.Path, nil, f.Content)
			}
		case cur.Digest != want || !sameMeta(f, cur, s):
			a.Op = OpUpdate
			if !f.Sensitive {
				a.Before = cur.Digest
			}
			// The first time arbo takes a file over, the original is kept.
			// config.xml is merged, not taken over: the gateway step keeps
			// a backup of every version instead.
			a.TakeOver = s.Manifest.file(f.Path) == nil && cur.Digest != want && f.Path != ConfigXML
			if cur.Digest == want {
				a.Reason = "mode or owner"
			} else if !f.Sensitive {
				a.Diff = unified(f.Path, cur.Content, f.Content)
			}
		default:
			continue
		}
		mp.Actions = append(mp.Actions, a)
		if jailCfgOf != "" {
			changedJailCfg[jailCfgOf] = true
		}
		for _, r := range f.Reload {
			reloads[r] = true
		}
	}
	// Files arbo owned that the topology no longer has.
	if s.Manifest != nil {
		for _, mf := range s.Manifest.Files {
			if desiredPaths[mf.Path] {
				continue
			}
			if mf.Jail != "" && desiredJails[mf.Jail].Name == "" {
				continue // goes with its jail's archive
			}
			if removedJailConfig(mf.Path, s.Manifest, desiredJails) {
				// ezjail-admin archive and delete need it, and delete
				// removes it: deleting it first loses the jail.
				continue
			}
			if cur := s.Files[mf.Path]; cur.Exists {
				mp.Actions = append(mp.Actions, Action{Op: OpDelete, Kind: KindFile, Target: mf.Path, Jail: mf.Jail, Before: cur.Digest,
					Reason: "no longer in the topology (kept as " + mf.Path + ".arbo-prev)"})
			}
		}
	}
	// An ownership record is a change too: without it the next run would
	// think it is taking files over.
	if d.Kind == state.KindHost || d.Kind == state.KindGateway {
		if s.Manifest == nil && len(mp.Actions) == 0 && len(d.Files) > 0 {
			mp.Actions = append(mp.Actions, Action{Op: OpUpdate, Kind: KindFile, Target: ManifestPath, Reason: "record what arbo owns"})
		}
	}

	// Activation.
	if d.Kind == state.KindHost {
		act := hostActivation(d, s, o, reloads, created, enabled, changedJailCfg, foreign)
		rem := removals(d, s, o, desiredJails)
		// Grown once to its size: a host's route actions are thousands in
		// a large cluster, and append's doubling would leave up to as much
		// again unused in every machine's plan (issue 17).
		mp.Actions = slices.Grow(mp.Actions, len(act)+len(rem))
		mp.Actions = append(append(mp.Actions, act...), rem...)
	}
	if d.Kind == state.KindGateway && (reloads[state.Reload{Kind: state.ReloadPfSense}] || pendingConfig(d, s)) {
		r := "back up config.xml, load it with rc.filter_configure_sync, read it back, check pf runs its rules, apply its static routes"
		mp.Actions = append(mp.Actions, Action{Op: OpReload, Kind: KindPfSense, Target: ConfigXML, Reason: r})
		if reloads[state.Reload{Kind: state.ReloadPfSenseNS}] {
			mp.Actions = append(mp.Actions, Action{Op: OpRestart, Kind: KindDNS, Target: "unbound", Reason: "the DNS Resolver's data changed"})
		}
	}
	if len(conflicts) > 0 {
		mp.Error = strings.Join(conflicts, "; ")
		for _, c := range conflicts {
			mp.Actions = append(mp.Actions, Action{Op: OpConflict, Kind: KindService, Target: d.Name, Reason: c})
		}
	}
	return mp
}

func hostActivation(d *state.Machine, s *Snapshot, o Options, reloads map[state.Reload]bool, created, enabled, changedCfg, foreign map[string]bool) []Action {
	out := make([]Action, 0, len(d.Routes)+2*len(d.Jails)+4)
	if needsLo1(d) && !s.Interfaces["lo1"] {
		out = append(out, Action{Op: OpCloneup, Kind: KindNet, Target: "lo1", Reason: "service netif cloneup: jails on host-local networks need lo1"})
	}
	for _, r := range d.Routes {
		dest := strings.TrimSuffix(strings.TrimSuffix(r.Dest, "/32"), "/128")
		if gw, ok := s.Routes[dest]; !ok || gw != r.Via {
			out = append(out, Action{Op: OpRoute, Kind: KindNet, Target: r.Dest, Args: []string{r.Dest, r.Via}, Reason: "route to " + r.Dest + " via " + r.Via})
		}
	}
	out = append(out, staleRoutes(d, s)...)
	pfFile := d.File(PFPath)
	// Reload when the file changes, and also when it was written but never
	// confirmed live (a run cut between the two steps).
	if pfFile != nil && (reloads[state.Reload{Kind: state.ReloadPF}] || s.Files[PFPath].Digest != digestOf(pfFile.Content) ||
		s.Manifest == nil || s.Manifest.Activated.PF != digestOf(pfFile.Content)) {
		out = append(out, Action{Op: OpReload, Kind: KindPF, Target: PFPath, Reason: "pfctl -nf, then commit-confirmed pfctl -f from " + PFStaged})
	} else if pfFile != nil {
		// Live drift: the file is the one arbo loaded, but pf no longer
		// runs it (pfctl -d, rules loaded by hand, pf.ko unloaded).
		if why := pfDrift(s); why != "" {
			out = append(out, Action{Op: OpReload, Kind: KindPF, Target: PFPath, Reason: why + ": load " + PFPath + " again, commit-confirmed, and enable pf"})
		}
	}
	for _, j := range d.Jails {
		if created[j.Name] && len(j.Packages) > 0 {
			out = append(out, Action{Op: OpInstall, Kind: KindPackages, Target: j.Name, Jail: j.Name, Reason: "pkg -r " + j.Root + " install -y " + strings.Join(j.Packages, " ")})
		}
	}
	// Jails start in the order ezjail's rc script starts them at boot: its
	// list goes through rcorder (ezjail.sh:51), and each jail's config
	// REQUIREs the jails of its start_after (jail.jailConf).
	for _, j := range StartOrder(d.Jails) {
		after := ""
		if len(j.StartAfter) > 0 {
			after = " (after " + strings.Join(j.StartAfter, ", ") + ": start_after)"
		}
		switch {
		case foreign[j.Name]:
		case created[j.Name] || enabled[j.Name] || !s.Running[j.SafeName] && !s.Running[j.Name]:
			out = append(out, Action{Op: OpStart, Kind: KindJail, Target: j.Name, Jail: j.Name, Reason: "ezjail-admin onestart " + j.Name + after + ", then jls -j " + j.SafeName + " proves it runs"})
		case changedCfg[j.Name] || reloads[state.Reload{Kind: state.ReloadJail, Target: j.Name}]:
			out = append(out, Action{Op: OpRestart, Kind: KindJail, Target: j.Name, Jail: j.Name, Reason: "its ezjail config changed" + after})
		default:
			if a := missingAlias(j, s.Aliases); a != "" {
				// jail(8) adds a jail's iface|addr aliases when it starts
				// and removes them when it stops: a running jail without
				// its lo1 address lost it by hand, and is unreachable.
				out = append(out, Action{Op: OpRestart, Kind: KindJail, Target: j.Name, Jail: j.Name, Reason: "its lo1 address " + a + " is missing (ifconfig lo1): restart it to add the alias back" + after})
			}
		}
	}
	for _, r := range sortedReloads(reloads) {
		switch r.Kind {
		case state.ReloadUnbound:
			out = append(out, Action{Op: OpReload, Kind: KindDNS, Target: "unbound", Jail: r.Target, Reason: "unbound-checkconf, then restart in jail " + r.Target})
		case state.ReloadErlang:
			if !created[r.Target] {
				out = append(out, Action{Op: OpRestart, Kind: KindService, Target: r.Target, Jail: r.Target, Reason: "its Erlang files changed"})
			}
		}
	}
	return out
}

// routeKey is a route's destination as parseFacts keys it: netstat -rn
// shows a host route as the bare address.
func routeKey(dest string) string {
	return strings.TrimSuffix(strings.TrimSuffix(dest, "/32"), "/128")
}

// staleRoutes are the deletions of static routes arbo installed (recorded
// in the manifest's routes_installed) that the topology no longer has and
// the kernel still holds with the same gateway: a removed host's or jail's
// prefix, which rc.conf.local no longer lists but the kernel keeps until a
// reboot. A route arbo did not install is never deleted; one whose
// destination is still wanted through another gateway is changed by its
// route action instead. Apply deletes them after adding the new routes, so
// no address loses its path in between.
func staleRoutes(d *state.Machine, s *Snapshot) []Action {
	if s.Manifest == nil {
		return nil
	}
	want := map[string]bool{}
	for _, r := range d.Routes {
		want[routeKey(r.Dest)] = true
	}
	var out []Action
	for _, rv := range s.Manifest.Activated.Installed {
		dest, via, ok := strings.Cut(rv, " ")
		if !ok || want[routeKey(dest)] {
			continue
		}
		if gw, ok := s.Routes[routeKey(dest)]; ok && gw == via {
			out = append(out, Action{Op: OpDelete, Kind: KindNet, Target: dest, Args: []string{dest, via},
				Reason: "route to " + dest + " via " + via + ": arbo installed it and the topology no longer has it (route delete, after the new routes are added)"})
		}
	}
	return out
}

func removals(d *state.Machine, s *Snapshot, o Options, desired map[string]state.Jail) []Action {
	var out []Action
	if s.Manifest == nil {
		return nil
	}
	for _, mj := range s.Manifest.Jails {
		if _, ok := desired[mj.Name]; ok || mj.Retired && !o.AllowDestroy {
			continue
		}
		if !mj.Retired {
			out = append(out, Action{Op: OpArchive, Kind: KindJail, Target: mj.Name, Jail: mj.Name, Data: mj.Data, Reason: "removed from the topology: stop and archive (ezjail-admin archive)"})
		}
		if !mj.Data || o.AllowDestroy {
			out = append(out, Action{Op: OpDestroy, Kind: KindJail, Target: mj.Name, Jail: mj.Name, Reason: "ezjail-admin delete -w after the archive"})
		} else if !mj.Retired {
			out[len(out)-1].Reason += "; a data jail: its root is kept (retired) until apply --allow-destroy"
		}
	}
	return out
}

// zfsActions are a ZFS host's dataset steps: the parent of the jails'
// datasets when jails are created and it does not exist yet (made at the
// bootstrap, refused otherwise), and zfs set quota where an existing
// jail's quota differs from its zfs.quota. A jail without zfs.quota keeps
// whatever quota it has.
func zfsActions(d *state.Machine, s *Snapshot, installing bool, created, foreign map[string]bool) (acts []Action, conflicts, warnings []string) {
	if d.Kind != state.KindHost || d.ZFSDataset == "" || s.ZFS == nil {
		return nil, nil, nil
	}
	if _, ok := s.ZFS[d.ZFSDataset]; !ok && len(created) > 0 {
		if installing {
			var cmds []string
			for _, c := range jail.ZFSParentCmds(d.ZFSDataset) {
				cmds = append(cmds, strings.Join(c, " "))
			}
			acts = append(acts, Action{Op: OpCreate, Kind: KindZFS, Target: d.ZFSDataset,
				Reason: strings.Join(cmds, ", then ") + ": the parent of the jails' datasets, made as ezjail's ensure_jailzfs makes it, before ezjail-admin install"})
		} else {
			conflicts = append(conflicts, fmt.Sprintf("zfs.dataset %s does not exist, and ezjail-admin create refuses a ZFS jail without its parent dataset (ezjail-admin:714): create it (zfs create -o mountpoint=none %s leaves %s as it is), or run arbo with --bootstrap on a fresh host", d.ZFSDataset, d.ZFSDataset, JailDir))
		}
	}
	for _, j := range d.Jails {
		if j.ZFS == "" || j.Quota == "" || created[j.Name] || foreign[j.Name] {
			continue
		}
		want, err := jail.QuotaBytes(j.Quota)
		if err != nil {
			conflicts = append(conflicts, fmt.Sprintf("jail %s: zfs.quota: %v", j.Name, err))
			continue
		}
		cur, ok := s.ZFS[j.ZFS]
		if !ok {
			warnings = append(warnings, fmt.Sprintf("jail %s: zfs.quota %s is not applied: %s is not a ZFS dataset (the jail was made before the host had zfs)", j.Name, j.Quota, j.ZFS))
			continue
		}
		if cur != want {
			acts = append(acts, Action{Op: OpUpdate, Kind: KindZFS, Target: j.ZFS, Jail: j.Name, Args: []string{j.Quota},
				Reason: strings.Join(jail.ZFSQuotaArgs(j.ZFS, j.Quota), " ") + " (now " + quotaText(cur) + ")"})
		}
	}
	return acts, conflicts, warnings
}

// quotaText shows a quota in bytes as zfs(8) would take it back.
func quotaText(b uint64) string {
	if b == 0 {
		return "none"
	}
	for i, u := range []string{"E", "P", "T", "G", "M", "K"} {
		unit := uint64(1) << (10 * (6 - i))
		if b%unit == 0 {
			return strconv.FormatUint(b/unit, 10) + u
		}
	}
	return strconv.FormatUint(b, 10)
}

// StartOrder is jails in the order rcorder(8) gives ezjail's rc script
// (ezjail.sh:51 `ls | xargs rcorder`): every jail after the jails of its
// start_after (its config's REQUIRE line), otherwise in topology order.
// start_after names jails of the same host and has no cycle (the topology's
// load refuses both); a name not among jails is ignored.
func StartOrder(jails []state.Jail) []state.Jail {
	idx := map[string]int{}
	for i, j := range jails {
		idx[j.Name] = i
	}
	out := make([]state.Jail, 0, len(jails))
	mark := make([]int, len(jails)) // 0 new, 1 visiting, 2 placed
	var visit func(i int)
	visit = func(i int) {
		if mark[i] != 0 {
			return // placed, or a cycle (refused at load): keep going
		}
		mark[i] = 1
		for _, dep := range jails[i].StartAfter {
			if k, ok := idx[dep]; ok {
				visit(k)
			}
		}
		mark[i] = 2
		out = append(out, jails[i])
	}
	for i := range jails {
		visit(i)
	}
	return out
}

func pendingConfig(d *state.Machine, s *Snapshot) bool {
	f := d.File(ConfigXML)
	return f != nil && s.Manifest != nil && s.Manifest.Activated.Config != "" && s.Manifest.Activated.Config != digestOf(f.Content)
}

func needsLo1(d *state.Machine) bool {
	for _, j := range d.Jails {
		if strings.Contains(j.IP, "lo1|") {
			return true
		}
	}
	return false
}

func sortedReloads(m map[state.Reload]bool) []state.Reload {
	out := make([]state.Reload, 0, len(m))
	for r := range m {
		out = append(out, r)
	}
	sort.Slice(out, func(i, j int) bool {
		if out[i].Kind != out[j].Kind {
			return out[i].Kind < out[j].Kind
		}
		return out[i].Target < out[j].Target
	})
	return out
}

// removedJailConfig reports whether p is the ezjail config of a jail arbo
// owns that the topology no longer has.
func removedJailConfig(p string, m *Manifest, desired map[string]state.Jail) bool {
	if path.Dir(p) != EzjailCfgDir {
		return false
	}
	for _, mj := range m.Jails {
		if _, ok := desired[mj.Name]; !ok && inventory.SafeName(mj.Name) == path.Base(p) {
			return true
		}
	}
	return false
}

func jailOfConfig(p string, jails []state.Jail) string {
	if path.Dir(p) != EzjailCfgDir {
		return ""
	}
	for _, j := range jails {
		if j.SafeName == path.Base(p) {
			return j.Name
		}
	}
	return ""
}

// ezjailIdentity reads the address and hostname an ezjail config gives.
func ezjailIdentity(cfg []byte, safe string) (ip, host string) {
	for _, l := range strings.Split(string(cfg), "\n") {
		l = strings.TrimSpace(strings.TrimPrefix(strings.TrimSpace(l), "export "))
		k, v, ok := strings.Cut(l, "=")
		if !ok {
			continue
		}
		v = strings.Trim(v, `"'`)
		switch k {
		case "jail_" + safe + "_ip":
			ip = v
		case "jail_" + safe + "_hostname":
			host = v
		}
	}
	return ip, host
}

func planned(f state.File) PlannedFile {
	pf := PlannedFile{Path: f.Path, Mode: uint32(f.Mode.Perm()), Owner: f.Owner, Group: f.Group, Sensitive: f.Sensitive,
		Jail: f.Jail, Reload: f.Reload}
	if !f.Sensitive {
		pf.SHA256 = digestOf(f.Content)
		pf.Content = f.Content
	}
	return pf
}

// sameMeta compares mode and owner where the owner's id is known (a user
// inside a jail that does not exist yet is not).
func sameMeta(f state.File, cur FileState, s *Snapshot) bool {
	if cur.Mode != f.Mode.Perm() {
		return false
	}
	root := ""
	if f.Jail != "" {
		root = path.Join(JailDir, f.Jail)
	}
	if uid, ok := s.Users[root][f.Owner]; ok && uid != cur.UID {
		return false
	}
	if gid, ok := s.Groups[root][f.Group]; ok && gid != cur.GID {
		return false
	}
	return true
}

func unified(p string, before, after []byte) string {
	if len(before) == 0 {
		return createDiff(p, after)
	}
	d := udiff.Unified("a"+p, "b"+p, string(before), string(after))
	if lines := strings.Count(d, "\n"); lines > maxDiff {
		cut := d
		for i, n := 0, 0; i < len(d); i++ {
			if d[i] == '\n' {
				n++
				if n == maxDiff {
					cut = d[:i+1]
					break
				}
			}
		}
		return capLines(cut) + fmt.Sprintf("… %d more lines of diff\n", lines-maxDiff)
	}
	return capLines(d)
}

// maxDiffLine bounds one line of a diff shown in a plan, in bytes: a
// pf.conf tier table is one line of every jail address of the tier, a
// quarter of a megabyte at 1,000 hosts × 20 jails, and a plan holds one
// diff per host at once (issue 17). The file itself is whole in the plan.
const maxDiffLine = 1000

// capLines shortens each line of d longer than maxDiffLine.
func capLines(d string) string {
	long := false
	for l := range strings.Lines(d) {
		if len(l) > maxDiffLine+1 {
			long = true
			break
		}
	}
	if !long {
		return d
	}
	var b strings.Builder
	for l := range strings.Lines(d) {
		writeDiffLine(&b, "", strings.TrimSuffix(l, "\n"))
	}
	return b.String()
}

// writeDiffLine writes prefix and line, cut at maxDiffLine bytes (on a
// character boundary) with how much was left out, and a newline.
func writeDiffLine[T string | []byte](b *strings.Builder, prefix string, line T) {
	b.WriteString(prefix)
	if len(prefix)+len(line) <= maxDiffLine {
		b.WriteString(string(line))
		b.WriteByte('\n')
		return
	}
	k := maxDiffLine - len(prefix)
	for k > 0 && !utf8.RuneStart(line[k]) {
		k--
	}
	b.WriteString(string(line[:k]))
	fmt.Fprintf(b, "… (%d more bytes on this line)\n", len(line)-k)
}

// createDiff is unified(p, nil, after) without the diff algorithm: a new
// file is all additions. It writes only the lines the plan shows (maxDiff,
// each at most maxDiffLine), not the whole file first.
func createDiff(p string, after []byte) string {
	if len(after) == 0 {
		return ""
	}
	n := bytes.Count(after, []byte("\n"))
	noEOL := after[len(after)-1] != '\n'
	if noEOL {
		n++
	}
	total := 3 + n // the two file lines, the hunk line, the lines
	if noEOL {
		total++ // "\ No newline at end of file"
	}
	var b strings.Builder
	b.WriteString("--- a" + p + "\n+++ b" + p + "\n")
	if n == 1 {
		b.WriteString("@@ -0,0 +1 @@\n")
	} else {
		fmt.Fprintf(&b, "@@ -0,0 +1,%d @@\n", n)
	}
	shown := 3
	rest := after
	for len(rest) > 0 && shown < maxDiff {
		line := rest
		if i := bytes.IndexByte(rest, '\n'); i >= 0 {
			line, rest = rest[:i], rest[i+1:]
		} else {
			rest = nil
		}
		writeDiffLine(&b, "+", line)
		shown++
	}
	if noEOL && shown < maxDiff {
		b.WriteString("\\ No newline at end of file\n")
		shown++
	}
	if total > maxDiff {
		fmt.Fprintf(&b, "… %d more lines of diff\n", total-maxDiff)
	}
	return b.String()
}

// pfDrift says how pf's live state differs from what arbo last loaded and
// confirmed, "" when it does not (or when nothing live was read).
func pfDrift(s *Snapshot) string {
	switch {
	case s.PF == nil:
		return ""
	case s.PF.Err != "":
		return "pf is not running (" + s.PF.Err + ")"
	case !s.PF.Enabled:
		return "pf is disabled (pfctl -s info)"
	case s.Manifest != nil && s.Manifest.Activated.PFListing != "" && s.PF.Digest != s.Manifest.Activated.PFListing:
		return "the loaded rules differ from what arbo loaded (pfctl -sr, -sn)"
	case s.Manifest != nil && s.Manifest.Activated.PFListing == "":
		// A manifest from an arbo that did not record the listing: load
		// once more, so that the next plans can tell.
		return "arbo has no record of the rules it loaded (no pf_listing_sha256 in " + ManifestPath + ")"
	}
	return ""
}

// missingAlias returns the first lo1 address of jail j that lo1 does not
// hold, "" when none is missing or lo1 was not read (aliases nil).
func missingAlias(j state.Jail, aliases map[string]bool) string {
	if aliases == nil {
		return ""
	}
	for _, part := range strings.Split(j.IP, ",") {
		iface, addr, ok := strings.Cut(strings.TrimSpace(part), "|")
		if !ok || iface != "lo1" {
			continue
		}
		addr, _, _ = strings.Cut(addr, "/")
		if !aliases[addr] {
			return addr
		}
	}
	return ""
}
