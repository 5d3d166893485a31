package plan

import (
	"bufio"
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"io/fs"
	"path"
	"sort"
	"strconv"
	"strings"
	"sync"

	"golang.org/x/sync/errgroup"

	"github.com/arbo-project/arbo/jail"
	"github.com/arbo-project/arbo/remote"
	"github.com/arbo-project/arbo/state"
)

// FileState is a file as read from a machine.
type FileState struct {
	Exists  bool
	Digest  string // sha256 hex of the content
	Content []byte // nil for sensitive files: arbo keeps only their digest, in memory
	// Sensitive files' digests never leave the process (not in a saved plan,
	// not in JSON): the digest of a cookie file is the digest of the cookie,
	// and a weak one could be guessed from it offline.
	Sensitive bool
	Mode      fs.FileMode
	UID       int
	GID       int
	Symlink   bool // the path itself is a symlink
}

// Snapshot is what plan read from one machine: everything a plan is made
// from, and whose digests a saved plan keeps so that apply can tell a
// machine changed since.
type Snapshot struct {
	Machine  string
	Manifest *Manifest
	Files    map[string]FileState
	// Host facts (hosts only).
	HasEzjail   bool
	HasBasejail bool
	Running     map[string]bool // jail names (ezjail safenames) jls lists
	Interfaces  map[string]bool
	Routes      map[string]string         // destination → gateway, as netstat -rn shows them
	Aliases     map[string]bool           // lo1's addresses (ifconfig lo1); nil when not read
	Users       map[string]map[string]int // root ("" = host, else jail root) → user → uid
	Groups      map[string]map[string]int
	// PF is pf's live state (hosts only; nil offline).
	PF *PFLive
	// ZFS is the host's zfs.dataset and its child datasets with their
	// quotas in bytes (0: none), as `zfs list -p` gives them; empty when
	// the dataset does not exist, nil on a host without zfs.
	ZFS map[string]uint64
}

// Reads returns path → digest ("" when absent) of everything read, plus
// pseudo-paths for command output, for staleness checks.
func (s *Snapshot) Reads() map[string]string {
	out := map[string]string{}
	for p, f := range s.Files {
		switch {
		case f.Sensitive && f.Exists:
			out[p] = "sensitive" // whether it exists, never what it holds
		default:
			out[p] = f.Digest
		}
	}
	if s.Running != nil {
		out["jls:running"] = digestOf([]byte(strings.Join(sortedKeys(s.Running), "\n")))
	}
	if s.PF != nil {
		st := "disabled"
		if s.PF.Enabled {
			st = "enabled"
		}
		out["pfctl:status"] = st
		out["pfctl:listing"] = s.PF.Digest
	}
	if s.ZFS != nil {
		var b strings.Builder
		for _, n := range sortedKeys(s.ZFS) {
			fmt.Fprintf(&b, "%s\t%d\n", n, s.ZFS[n])
		}
		out["zfs:list"] = digestOf([]byte(b.String()))
	}
	return out
}

func digestOf(b []byte) string {
	h := sha256.Sum256(b)
	return hex.EncodeToString(h[:])
}

func sortedKeys[V any](m map[string]V) []string {
	out := make([]string, 0, len(m))
	for k := range m {
		out = append(out, k)
	}
	sort.Strings(out)
	return out
}

// factsScript is a constant (it holds no user data), so running it through
// sh is not building a command from input; it saves two round trips.
const factsScript = "jls name; echo '--arbo--'; ifconfig -l; echo '--arbo--'; netstat -rn; echo '--arbo--'; ifconfig lo1 2>/dev/null"

// Read reads a machine's actual state for the desired state d: its manifest,
// every file d has or the manifest owns, the jails' configs and running
// state, lo1 and the routes. It changes nothing.
func Read(ctx context.Context, t Target, d *state.Machine) (*Snapshot, error) {
	s := &Snapshot{Machine: d.Name, Files: map[string]FileState{}, Users: map[string]map[string]int{}, Groups: map[string]map[string]int{}}

	// The paths the desired state names are known before anything is read;
	// only the ones the manifest adds (files arbo wrote before and may have
	// to remove) wait for it. Both go out at once, so a plan costs one wave
	// of reads per machine, not two.
	sensitive := map[string]bool{}
	paths := map[string]bool{}
	for _, f := range d.Files {
		paths[f.Path] = true
		sensitive[f.Path] = f.Sensitive
	}
	jailRoots := map[string]bool{}
	for _, j := range d.Jails {
		paths[path.Join(EzjailCfgDir, j.SafeName)] = true
		paths[path.Join(EzjailCfgDir, j.SafeName)+NoRunSuffix] = true // a retired jail's
		jailRoots[j.Root] = true
	}
	for _, f := range d.Files {
		if f.Jail != "" {
			jailRoots[path.Join(JailDir, f.Jail)] = true
		}
	}
	for root := range jailRoots {
		paths[path.Join(root, "etc/passwd")] = true
		paths[path.Join(root, "etc/group")] = true
	}
	if d.Kind == state.KindHost {
		paths[PFStaged] = true
	}
	known := sortedKeys(paths)

	var mu sync.Mutex
	g, gctx := errgroup.WithContext(ctx)
	contents := map[string][]byte{}
	stats := map[string]fs.FileInfo{}
	// readAll reads the files of list and lstats them, into contents and stats.
	readAll := func(list []string) error {
		rg, rctx := errgroup.WithContext(gctx)
		rg.Go(func() error {
			got, err := t.ReadFiles(rctx, list)
			if err != nil {
				return err
			}
			mu.Lock()
			for p, b := range got {
				contents[p] = b
			}
			mu.Unlock()
			return nil
		})
		rg.Go(func() error {
			// Lstat, bounded: the connection's SFTP client pipelines requests.
			sg, sctx := errgroup.WithContext(rctx)
			sg.SetLimit(16)
			for _, p := range list {
				sg.Go(func() error {
					if sctx.Err() != nil {
						return sctx.Err()
					}
					fi, err := t.Lstat(p)
					if errors.Is(err, fs.ErrNotExist) {
						return nil
					}
					if err != nil {
						return err
					}
					mu.Lock()
					stats[p] = fi
					mu.Unlock()
					return nil
				})
			}
			return sg.Wait()
		})
		return rg.Wait()
	}
	var extra []string
	var manifestErr error
	g.Go(func() error {
		first, err := t.ReadFiles(gctx, []string{ManifestPath, "/etc/passwd", "/etc/group"})
		if err != nil {
			return err
		}
		if b, ok := first[ManifestPath]; ok {
			m, err := parseManifest(b)
			if err != nil {
				manifestErr = fmt.Errorf("machine %s: %w (move it away to let arbo start over)", d.Name, err)
				return manifestErr
			}
			s.Manifest = m
		}
		s.Users[""] = parseIDs(first["/etc/passwd"])
		s.Groups[""] = parseIDs(first["/etc/group"])
		if s.Manifest == nil {
			return nil
		}
		for _, f := range s.Manifest.Files {
			if !paths[f.Path] {
				extra = append(extra, f.Path)
			}
		}
		if len(extra) == 0 {
			return nil
		}
		return readAll(extra)
	})
	g.Go(func() error { return readAll(known) })
	if d.Kind == state.KindHost {
		g.Go(func() error {
			for _, p := range []string{EzjailAdmin, BasejailDir} {
				_, err := t.Stat(p)
				switch {
				case err == nil:
					mu.Lock()
					if p == EzjailAdmin {
						s.HasEzjail = true
					} else {
						s.HasBasejail = true
					}
					mu.Unlock()
				case !errors.Is(err, fs.ErrNotExist):
					return err
				}
			}
			return nil
		})
		if d.ZFSDataset != "" {
			g.Go(func() error {
				z, err := readZFS(gctx, t, d.ZFSDataset)
				if err != nil {
					return err
				}
				mu.Lock()
				s.ZFS = z
				mu.Unlock()
				return nil
			})
		}
		g.Go(func() error {
			res, err := t.Run(gctx, []string{"/bin/sh", "-c", factsScript}, remote.RunOpts{Timeout: remote.DefaultReadTimeout})
			if err != nil {
				return err
			}
			s.Running, s.Interfaces, s.Routes = parseFacts(res.Stdout)
			s.Aliases = parseLo1(res.Stdout)
			return nil
		})
		g.Go(func() error {
			p, err := ReadPF(gctx, t, d.Name, false)
			if err != nil {
				return err
			}
			s.PF = p
			return nil
		})
	}
	// A jail's file whose path goes through a symlink (the file or a
	// directory above it) is the jail's doing: flagged, so that the plan
	// refuses it, and never read as the jail's.
	linked := map[string]bool{}
	g.Go(func() error {
		sg, sctx := errgroup.WithContext(gctx)
		sg.SetLimit(16)
		for _, f := range d.Files {
			if f.Jail == "" {
				continue
			}
			sg.Go(func() error {
				if sctx.Err() != nil {
					return sctx.Err()
				}
				err := t.CheckNoSymlinks(path.Join(JailDir, f.Jail), f.Path)
				if errors.Is(err, remote.ErrSymlink) {
					mu.Lock()
					linked[f.Path] = true
					mu.Unlock()
					return nil
				}
				return err
			})
		}
		return sg.Wait()
	})
	if err := g.Wait(); err != nil {
		if manifestErr != nil {
			return nil, manifestErr
		}
		return nil, fmt.Errorf("machine %s: read: %w", d.Name, err)
	}
	list := known
	if len(extra) > 0 {
		list = append(append([]string(nil), known...), extra...)
		sort.Strings(list)
	}
	for _, p := range list {
		fi, ok := stats[p]
		b, has := contents[p]
		if linked[p] {
			s.Files[p] = FileState{Exists: true, Symlink: true, Digest: "symlink"}
			continue
		}
		if !ok && !has {
			s.Files[p] = FileState{}
			continue
		}
		fsx := FileState{Exists: true, Digest: digestOf(b)}
		if ok {
			fsx.Mode = fi.Mode().Perm()
			fsx.Symlink = fi.Mode()&fs.ModeSymlink != 0
			if uid, gid, ok := remote.Owner(fi); ok {
				fsx.UID, fsx.GID = uid, gid
			}
		}
		if fsx.Sensitive = sensitive[p]; !fsx.Sensitive {
			fsx.Content = b
		}
		if fsx.Symlink && underAny(p, jailRoots) {
			// A jail's symlink may point at any host file: what was read
			// through it is not the jail's, and is never shown or compared
			// (the plan refuses the file as a conflict).
			fsx.Content, fsx.Digest = nil, "symlink"
		}
		s.Files[p] = fsx
	}
	for root := range jailRoots {
		s.Users[root] = parseIDs(contents[path.Join(root, "etc/passwd")])
		s.Groups[root] = parseIDs(contents[path.Join(root, "etc/group")])
	}
	return s, nil
}

// parseIDs reads name:x:id lines of passwd(5) and group(5).
func parseIDs(b []byte) map[string]int {
	out := map[string]int{}
	sc := bufio.NewScanner(bytes.NewReader(b))
	for sc.Scan() {
		f := strings.Split(sc.Text(), ":")
		if len(f) < 3 || strings.HasPrefix(f[0], "#") {
			continue
		}
		if id, err := strconv.Atoi(f[2]); err == nil {
			out[f[0]] = id
		}
	}
	return out
}

func parseFacts(out []byte) (running, ifaces map[string]bool, routes map[string]string) {
	running, ifaces, routes = map[string]bool{}, map[string]bool{}, map[string]string{}
	parts := strings.Split(string(out), "--arbo--\n")
	for i := len(parts); i < 3; i++ {
		parts = append(parts, "")
	}
	for _, l := range strings.Fields(parts[0]) {
		running[l] = true
	}
	for _, l := range strings.Fields(parts[1]) {
		ifaces[l] = true
	}
	for _, l := range strings.Split(parts[2], "\n") {
		f := strings.Fields(l)
		if len(f) < 2 || f[0] == "Destination" || strings.HasPrefix(f[1], "link#") {
			continue
		}
		dest := strings.TrimSuffix(strings.TrimSuffix(f[0], "/32"), "/128")
		routes[dest] = f[1]
	}
	return running, ifaces, routes
}

// readZFS lists a host's zfs.dataset and its children with their quotas
// (jail.ZFSListArgs). A dataset that does not exist is an empty map: zfs(8)
// says "dataset does not exist" and exits 1.
func readZFS(ctx context.Context, t Target, dataset string) (map[string]uint64, error) {
	res, err := t.Run(ctx, jail.ZFSListArgs(dataset), remote.RunOpts{})
	if err != nil {
		return nil, err
	}
	out := map[string]uint64{}
	if res.Exit != 0 {
		if bytes.Contains(res.Stderr, []byte("does not exist")) {
			return out, nil
		}
		return nil, fmt.Errorf("zfs list %s exited %d: %s", dataset, res.Exit, strings.TrimSpace(string(res.Stderr)))
	}
	for _, l := range strings.Split(string(res.Stdout), "\n") {
		name, q, ok := strings.Cut(strings.TrimSpace(l), "\t")
		if !ok {
			continue
		}
		n, err := strconv.ParseUint(q, 10, 64) // -p: bytes, 0 for none
		if err != nil {
			// A zfs that prints sizes as it shows them (20G, none)
			// anyway; "-" for no value at all.
			if n, err = jail.QuotaBytes(q); err != nil {
				n = 0
			}
		}
		out[name] = n
	}
	return out, nil
}

// parseLo1 reads the fourth section of factsScript, `ifconfig lo1`: its
// "inet ADDR netmask …" and "inet6 ADDR prefixlen …" lines. nil when the
// section is missing (not read); empty when lo1 has no address or does not
// exist.
func parseLo1(out []byte) map[string]bool {
	parts := strings.Split(string(out), "--arbo--\n")
	if len(parts) < 4 {
		return nil
	}
	m := map[string]bool{}
	for _, l := range strings.Split(parts[3], "\n") {
		f := strings.Fields(l)
		if len(f) >= 2 && (f[0] == "inet" || f[0] == "inet6") {
			a, _, _ := strings.Cut(f[1], "%")
			m[a] = true
		}
	}
	return m
}

// underAny says whether p lies below one of roots.
func underAny(p string, roots map[string]bool) bool {
	for r := range roots {
		if strings.HasPrefix(p, r+"/") {
			return true
		}
	}
	return false
}
