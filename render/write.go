package render

import (
	"bytes"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path"
	"path/filepath"
	"runtime"
	"sort"
	"strings"

	"golang.org/x/sync/errgroup"

	"github.com/arbo-project/arbo/inventory"
	"github.com/arbo-project/arbo/state"
)

// ManifestName is the manifest's file name in the output directory.
const ManifestName = "manifest.json"

// ManifestFormat is the manifest's format_version (docs/json.md).
const ManifestFormat = 1

// Manifest describes a rendered directory (docs/json.md, "arbo render
// manifest").
type Manifest struct {
	FormatVersion int               `json:"format_version"`
	Cluster       string            `json:"cluster"`
	Domain        string            `json:"domain"`
	CookieMissing bool              `json:"cookie_missing"`
	Machines      []ManifestMachine `json:"machines"`
	Exports       []ManifestExport  `json:"exports"`
}

// ManifestMachine is one machine's share of the manifest.
type ManifestMachine struct {
	Name     string           `json:"name"`
	Kind     string           `json:"kind"`
	Files    []ManifestFile   `json:"files"`
	Jails    []ManifestJail   `json:"jails"`
	Routes   []ManifestRoute  `json:"routes"`
	Reloads  []ManifestReload `json:"reloads"`
	Warnings []string         `json:"warnings"`
}

// ManifestFile is one rendered file.
type ManifestFile struct {
	Path      string           `json:"path"`  // on the machine
	Local     string           `json:"local"` // in the output directory, slash-separated
	Mode      string           `json:"mode"`  // octal, as on the machine: "0644"
	Owner     string           `json:"owner"`
	Group     string           `json:"group"`
	Sensitive bool             `json:"sensitive"`
	SHA256    string           `json:"sha256,omitempty"` // absent for sensitive files
	Size      int              `json:"size"`
	Jail      string           `json:"jail,omitempty"`
	Reload    []ManifestReload `json:"reload"`
	Source    string           `json:"source,omitempty"`
}

// ManifestReload is a reload action.
type ManifestReload struct {
	Kind   string `json:"kind"`
	Target string `json:"target,omitempty"`
}

// ManifestJail is a jail a host must have.
type ManifestJail struct {
	Name       string   `json:"name"`
	SafeName   string   `json:"safename"`
	Hostname   string   `json:"hostname"`
	IP         string   `json:"ip"`
	Tier       string   `json:"tier"`
	Data       bool     `json:"data"`
	Flavour    string   `json:"flavour,omitempty"`
	Packages   []string `json:"packages"`
	StartAfter []string `json:"start_after"`
	Root       string   `json:"root"`
}

// ManifestRoute is a static route to bring live.
type ManifestRoute struct {
	Dest string `json:"dest"`
	Via  string `json:"via"`
}

// ManifestExport is a file for other systems: the zone files.
type ManifestExport struct {
	Local  string `json:"local"`
	SHA256 string `json:"sha256"`
	Size   int    `json:"size"`
}

// BuildManifest describes machines and zones as WriteDir lays them out.
func BuildManifest(c *inventory.Cluster, machines []state.Machine, zones map[string][]byte, cookieMissing bool) (*Manifest, error) {
	mf := &Manifest{FormatVersion: ManifestFormat, Cluster: c.Name, Domain: c.Domain, CookieMissing: cookieMissing,
		Machines: []ManifestMachine{}, Exports: []ManifestExport{}}
	for _, m := range machines {
		mm := ManifestMachine{Name: m.Name, Kind: m.Kind, Files: []ManifestFile{}, Jails: []ManifestJail{},
			Routes: []ManifestRoute{}, Reloads: []ManifestReload{}, Warnings: append([]string{}, m.Warnings...)}
		seen := map[ManifestReload]bool{}
		for _, f := range m.Files {
			local, err := localPath(m.Name, f.Path)
			if err != nil {
				return nil, err
			}
			e := ManifestFile{Path: f.Path, Local: local, Mode: fmt.Sprintf("%04o", f.Mode.Perm()), Owner: f.Owner,
				Group: f.Group, Sensitive: f.Sensitive, Size: len(f.Content), Jail: f.Jail, Reload: []ManifestReload{}, Source: f.Source}
			if !f.Sensitive {
				// A hash of a guessable secret would leak it; sensitive
				// files carry none.
				e.SHA256 = sum(f.Content)
			}
			for _, r := range f.Reload {
				mr := ManifestReload{Kind: r.Kind, Target: r.Target}
				e.Reload = append(e.Reload, mr)
				if !seen[mr] {
					seen[mr] = true
					mm.Reloads = append(mm.Reloads, mr)
				}
			}
			mm.Files = append(mm.Files, e)
		}
		sort.Slice(mm.Files, func(i, j int) bool { return mm.Files[i].Path < mm.Files[j].Path })
		sort.Slice(mm.Reloads, func(i, j int) bool {
			if mm.Reloads[i].Kind != mm.Reloads[j].Kind {
				return reloadRank(mm.Reloads[i].Kind) < reloadRank(mm.Reloads[j].Kind)
			}
			return mm.Reloads[i].Target < mm.Reloads[j].Target
		})
		for _, j := range m.Jails {
			mm.Jails = append(mm.Jails, ManifestJail{Name: j.Name, SafeName: j.SafeName, Hostname: j.Hostname, IP: j.IP,
				Tier: j.Tier, Data: j.Data, Flavour: j.Flavour, Packages: append([]string{}, j.Packages...),
				StartAfter: append([]string{}, j.StartAfter...), Root: j.Root})
		}
		sort.Slice(mm.Jails, func(i, j int) bool { return mm.Jails[i].Name < mm.Jails[j].Name })
		for _, r := range m.Routes {
			mm.Routes = append(mm.Routes, ManifestRoute{Dest: r.Dest, Via: r.Via})
		}
		mf.Machines = append(mf.Machines, mm)
	}
	sort.Slice(mf.Machines, func(i, j int) bool { return mf.Machines[i].Name < mf.Machines[j].Name })
	names := make([]string, 0, len(zones))
	for n := range zones {
		if err := checkExportName(n); err != nil {
			return nil, err
		}
		names = append(names, n)
	}
	sort.Strings(names)
	for _, n := range names {
		mf.Exports = append(mf.Exports, ManifestExport{Local: "exports/" + n, SHA256: sum(zones[n]), Size: len(zones[n])})
	}
	return mf, nil
}

// reloadRank orders reload kinds as apply runs them (state.Reload*).
func reloadRank(k string) int {
	order := []string{state.ReloadNetif, state.ReloadRoutes, state.ReloadPF, state.ReloadJail, state.ReloadUnbound,
		state.ReloadErlang, state.ReloadPfSense, state.ReloadPfSenseNS}
	for i, o := range order {
		if o == k {
			return i
		}
	}
	return len(order)
}

func sum(b []byte) string {
	h := sha256.Sum256(b)
	return hex.EncodeToString(h[:])
}

// localPath is where a machine's file goes in the output directory,
// slash-separated: <machine>/<path without its leading slash>.
func localPath(machine, p string) (string, error) {
	if !path.IsAbs(p) || path.Clean(p) != p || p == "/" {
		return "", fmt.Errorf("render: %s: file path %q is not absolute and clean", machine, p)
	}
	if machine == "" || machine == "exports" || strings.ContainsAny(machine, `/\`) || machine == "." || machine == ".." {
		return "", fmt.Errorf("render: machine name %q cannot be a directory name here", machine)
	}
	return machine + p, nil
}

func checkExportName(n string) error {
	if n == "" || n == "." || n == ".." || strings.ContainsAny(n, `/\`) {
		return fmt.Errorf("render: zone file name %q is not a plain file name", n)
	}
	return nil
}

// WriteDir writes the rendered machines under dir for `arbo render FILE -o
// DIR`: each file at DIR/<machine>/<path> with its mode (a sensitive file
// at most 0600: it holds a secret on this machine too), the zone files
// under DIR/exports/, and DIR/manifest.json. Nothing is written unless all
// of it is: the tree is built in a temporary directory beside DIR
// (.<DIR>.arbo-tmp-*) and renamed into place, the previous render moved
// aside first and removed last, so that DIR always holds one whole render
// and its manifest. A non-empty DIR without an arbo manifest is refused
// rather than replaced, and so is a previous render holding files its
// manifest does not list (someone's, which the swap would lose).
func WriteDir(dir string, c *inventory.Cluster, machines []state.Machine, zones map[string][]byte) error {
	return writeDir(dir, c, machines, zones, false)
}

// WriteDirPlaceholder is WriteDir for a render whose cookie was not read:
// the manifest says so (cookie_missing), so that nobody applies it.
func WriteDirPlaceholder(dir string, c *inventory.Cluster, machines []state.Machine, zones map[string][]byte) error {
	return writeDir(dir, c, machines, zones, true)
}

func writeDir(dir string, c *inventory.Cluster, machines []state.Machine, zones map[string][]byte, cookieMissing bool) (err error) {
	mf, err := BuildManifest(c, machines, zones, cookieMissing)
	if err != nil {
		return err
	}
	if real, err := filepath.EvalSymlinks(dir); err == nil {
		dir = real // replace the directory a symlink names, not the link
	}
	dir = filepath.Clean(dir)
	old, err := previousManifest(dir)
	if err != nil {
		return err
	}
	mode := fs.FileMode(0o755)
	exists := false
	if st, err := os.Stat(dir); err == nil {
		if !st.IsDir() {
			return fmt.Errorf("render: %s is not a directory", dir)
		}
		exists, mode = true, st.Mode().Perm()
		if err := onlyListed(dir, old); err != nil {
			return err
		}
	}
	parent := filepath.Dir(dir)
	if err := os.MkdirAll(parent, 0o755); err != nil {
		return fmt.Errorf("render: %w", err)
	}
	tmp, err := os.MkdirTemp(parent, "."+filepath.Base(dir)+".arbo-tmp-")
	if err != nil {
		return fmt.Errorf("render: %w", err)
	}
	defer func() {
		if err != nil {
			os.RemoveAll(tmp)
		}
	}()
	if err := os.Chmod(tmp, mode); err != nil {
		return fmt.Errorf("render: %w", err)
	}
	var jobs []newFile
	for _, m := range machines {
		for _, f := range m.Files {
			local, err := localPath(m.Name, f.Path)
			if err != nil {
				return err
			}
			fm := f.Mode.Perm()
			if f.Sensitive {
				fm &= 0o600
			}
			jobs = append(jobs, newFile{local, f.Content, fm})
		}
	}
	for _, e := range mf.Exports {
		jobs = append(jobs, newFile{e.Local, zones[strings.TrimPrefix(e.Local, "exports/")], 0o644})
	}
	var b bytes.Buffer
	enc := json.NewEncoder(&b)
	enc.SetIndent("", "  ")
	enc.SetEscapeHTML(false)
	if err := enc.Encode(mf); err != nil {
		return fmt.Errorf("render: manifest: %w", err)
	}
	jobs = append(jobs, newFile{ManifestName, b.Bytes(), 0o644})
	if err := writeTree(tmp, jobs); err != nil {
		return err
	}
	if err := swapDir(tmp, dir, exists); err != nil {
		return err
	}
	// The rename itself is durable once the directory holding it is.
	if err := syncDir(parent); err != nil {
		return fmt.Errorf("render: %s is in place, but syncing %s: %w", dir, parent, err)
	}
	return nil
}

// newFile is one file of a tree being built.
type newFile struct {
	local string // slash-separated, relative to the tree
	b     []byte
	mode  fs.FileMode
}

// writeTree writes the files of a tree nobody else sees yet, then makes
// all of it durable at once. The directories are made first, one after
// another; the files are written side by side, without an fsync each
// (at 100 hosts × 20 jails that is 10,000 fsyncs in a row: most of a
// serial render -o's time); syncTree then flushes the tree, many files at
// once, before swapDir renames it into place.
func writeTree(root string, files []newFile) error {
	dirs := []string{root}
	made := map[string]bool{root: true}
	for _, f := range files {
		d := filepath.Dir(filepath.Join(root, filepath.FromSlash(f.local)))
		if made[d] {
			continue
		}
		if err := os.MkdirAll(d, 0o755); err != nil {
			return fmt.Errorf("render: writing %s: %w", f.local, err)
		}
		for x := d; !made[x]; x = filepath.Dir(x) {
			made[x] = true
			dirs = append(dirs, x)
		}
	}
	var g errgroup.Group
	g.SetLimit(writers)
	for _, f := range files {
		g.Go(func() error { return writeNew(root, f.local, f.b, f.mode) })
	}
	if err := g.Wait(); err != nil {
		return err
	}
	if err := syncTree(root, files, dirs); err != nil {
		return fmt.Errorf("render: making %s durable: %w", root, err)
	}
	return nil
}

// writers is how many files are written at once: the work is the kernel's
// (open, write, close), so more than the CPUs.
var writers = 4 * runtime.GOMAXPROCS(0)

// writeNew writes a file of a tree being built (nobody else sees it yet);
// its directory exists. Durability is syncTree's.
func writeNew(root, local string, b []byte, mode fs.FileMode) error {
	p := filepath.Join(root, filepath.FromSlash(local))
	f, err := os.OpenFile(p, os.O_WRONLY|os.O_CREATE|os.O_EXCL, mode)
	if err != nil {
		return fmt.Errorf("render: writing %s: %w", local, err)
	}
	if err := f.Chmod(mode); err != nil { // past the umask
		f.Close()
		return fmt.Errorf("render: writing %s: %w", local, err)
	}
	if _, err := f.Write(b); err != nil {
		f.Close()
		return fmt.Errorf("render: writing %s: %w", local, err)
	}
	if err := f.Close(); err != nil {
		return fmt.Errorf("render: writing %s: %w", local, err)
	}
	return nil
}

// syncPaths fsyncs each path (files and directories), several at once.
func syncPaths(paths []string) error {
	var g errgroup.Group
	g.SetLimit(writers)
	for _, p := range paths {
		g.Go(func() error {
			f, err := os.Open(p)
			if err != nil {
				return err
			}
			defer f.Close()
			return f.Sync()
		})
	}
	return g.Wait()
}

// syncTree makes a freshly written tree durable: every file and directory
// is fsynced, many at once, so the file system commits them together
// (ext4's and UFS's journals and ZFS's intent log batch concurrent
// fsyncs) instead of one commit per file. syncfs(2) would be one call, but
// Linux only, and it flushes everything else dirty on that file system too.
func syncTree(root string, files []newFile, dirs []string) error {
	paths := make([]string, 0, len(files)+len(dirs))
	for _, f := range files {
		paths = append(paths, filepath.Join(root, filepath.FromSlash(f.local)))
	}
	return syncPaths(append(paths, dirs...))
}

// syncDir fsyncs a directory, so that a rename inside it is durable.
func syncDir(dir string) error { return syncPaths([]string{dir}) }

// swapDir puts the finished tree tmp at dir: a rename when dir does not
// exist; else dir is renamed aside, tmp into its place, and the old tree
// removed (put back if the second rename fails).
func swapDir(tmp, dir string, exists bool) error {
	if !exists {
		if err := os.Rename(tmp, dir); err != nil {
			return fmt.Errorf("render: %w", err)
		}
		return nil
	}
	aside, err := os.MkdirTemp(filepath.Dir(dir), "."+filepath.Base(dir)+".arbo-old-")
	if err != nil {
		return fmt.Errorf("render: %w", err)
	}
	if err := os.Remove(aside); err != nil { // a name nobody else takes; rename needs it free
		return fmt.Errorf("render: %w", err)
	}
	if err := os.Rename(dir, aside); err != nil {
		return fmt.Errorf("render: moving the previous render aside: %w", err)
	}
	if err := os.Rename(tmp, dir); err != nil {
		if back := os.Rename(aside, dir); back != nil {
			return fmt.Errorf("render: %w; the previous render is at %s: %v", err, aside, back)
		}
		return fmt.Errorf("render: %w", err)
	}
	if err := os.RemoveAll(aside); err != nil {
		return fmt.Errorf("render: the new render is in place, but removing the previous one at %s: %w", aside, err)
	}
	return nil
}

// onlyListed refuses a previous render that holds a file its manifest does
// not list: replacing the tree would lose it.
func onlyListed(dir string, listed []string) error {
	known := map[string]bool{ManifestName: true}
	for _, l := range listed {
		known[l] = true
		for d := path.Dir(l); d != "." && d != "/"; d = path.Dir(d) {
			known[d+"/"] = true
		}
	}
	return filepath.WalkDir(dir, func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			return fmt.Errorf("render: %w", err)
		}
		rel, err := filepath.Rel(dir, p)
		if err != nil || rel == "." {
			return err
		}
		rel = filepath.ToSlash(rel)
		if d.IsDir() {
			if known[rel+"/"] {
				return nil
			}
		} else if known[rel] {
			return nil
		}
		return fmt.Errorf("render: %s holds %s, which no earlier render listed in its %s; move it away or choose another directory (render replaces the whole directory)", dir, rel, ManifestName)
	})
}

// previousManifest lists the local paths a previous render wrote in dir,
// nil when dir does not exist or is empty. A non-empty dir without a
// manifest is someone else's: refused.
func previousManifest(dir string) ([]string, error) {
	ents, err := os.ReadDir(dir)
	if errors.Is(err, fs.ErrNotExist) {
		return nil, nil
	}
	if err != nil {
		return nil, fmt.Errorf("render: %w", err)
	}
	if len(ents) == 0 {
		return nil, nil
	}
	b, err := os.ReadFile(filepath.Join(dir, ManifestName))
	if err != nil {
		return nil, fmt.Errorf("render: %s is not empty and holds no %s from an earlier arbo render; choose an empty or new directory", dir, ManifestName)
	}
	var old Manifest
	if err := json.Unmarshal(b, &old); err != nil || old.FormatVersion == 0 {
		return nil, fmt.Errorf("render: %s: %s is not an arbo render manifest; choose an empty or new directory", dir, ManifestName)
	}
	var out []string
	for _, m := range old.Machines {
		for _, f := range m.Files {
			out = append(out, f.Local)
		}
	}
	for _, e := range old.Exports {
		out = append(out, e.Local)
	}
	// Only paths this writer could have produced are removed: a manifest
	// edited by hand must not steer a delete outside dir.
	clean := out[:0]
	for _, l := range out {
		if l != "" && !path.IsAbs(l) && path.Clean(l) == l && !strings.HasPrefix(l, "../") && l != ".." {
			clean = append(clean, l)
		}
	}
	return clean, nil
}
