package emu

import (
	"archive/tar"
	"bufio"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"math"
	"os"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
	"time"
)

// The zfs(8) and zpool(8) stand-ins: the datasets ezjail's ZFS paths use
// (ezjail-admin: ensure_jailzfs, ezjail_splitworld, create's zfs branch,
// delete -w, config -n) and arbo's quota, modelled as state in the machine
// (ZFSStateFile) with each mounted file system's contents in its mountpoint
// directory. A snapshot keeps a copy of the tree; send writes a lab stream
// (a header line, then a tar of the snapshot) that only receive reads.
// Semantics follow zfs(8)/zpool(8) of FreeBSD 14 (OpenZFS 2.2) and the
// messages of OpenZFS's cmd/zfs/zfs_main.c and lib/libzfs (cited per
// function).

func init() {
	commands["zfs"] = zfsCmd
	commands["zpool"] = zpoolCmd
}

// ZFSStateFile holds the machine's pools and datasets (JSON, zfsState).
const ZFSStateFile = "/var/db/lab/zfs.json"

// zfsSnapDir holds the trees of snapshots, one directory per snapshot.
const zfsSnapDir = "/var/db/lab/zfs-snapshots"

type zfsDataset struct {
	Name    string            `json:"name"`
	Type    string            `json:"type"` // filesystem or snapshot
	Props   map[string]string `json:"props,omitempty"`
	Created int64             `json:"created"`
	Data    string            `json:"data,omitempty"` // snapshot: its tree under zfsSnapDir
}

type zfsPool struct {
	Name   string `json:"name"`
	Health string `json:"health"`
}

type zfsState struct {
	Pools    []zfsPool     `json:"pools"`
	Datasets []*zfsDataset `json:"datasets"`
	Seq      int           `json:"seq"`
}

// DefaultZFSState is a FreeBSD 14 host installed on ZFS: pool zroot with
// the datasets of bsdinstall's zfsboot (ZFSBOOT_DATASETS: ROOT/default at
// /, /home, /tmp, /usr and /var with canmount=off, ...).
func DefaultZFSState() []byte {
	ds := []struct{ name, props string }{
		{"zroot", "mountpoint=/zroot compression=lz4 atime=off"},
		{"zroot/ROOT", "mountpoint=none"},
		{"zroot/ROOT/default", "mountpoint=/"},
		{"zroot/home", "mountpoint=/home"},
		{"zroot/tmp", "mountpoint=/tmp exec=on setuid=off"},
		{"zroot/usr", "mountpoint=/usr canmount=off"},
		{"zroot/usr/ports", "setuid=off"},
		{"zroot/usr/src", ""},
		{"zroot/var", "mountpoint=/var canmount=off"},
		{"zroot/var/audit", "exec=off setuid=off"},
		{"zroot/var/crash", "exec=off setuid=off"},
		{"zroot/var/log", "exec=off setuid=off"},
		{"zroot/var/mail", "atime=on"},
		{"zroot/var/tmp", "setuid=off"},
	}
	st := zfsState{Pools: []zfsPool{{Name: "zroot", Health: "ONLINE"}}}
	for _, d := range ds {
		p := map[string]string{}
		for _, kv := range strings.Fields(d.props) {
			k, v, _ := strings.Cut(kv, "=")
			p[k] = v
		}
		st.Datasets = append(st.Datasets, &zfsDataset{Name: d.name, Type: "filesystem", Props: p, Created: 1700000000})
	}
	b, _ := json.MarshalIndent(st, "", " ")
	return append(b, '\n')
}

func (e *env) zfsLoad() (*zfsState, error) {
	b, err := os.ReadFile(e.m(ZFSStateFile))
	if err != nil {
		if os.IsNotExist(err) {
			return &zfsState{}, nil
		}
		return nil, err
	}
	var st zfsState
	if err := json.Unmarshal(b, &st); err != nil {
		return nil, fmt.Errorf("%s: %w", ZFSStateFile, err)
	}
	return &st, nil
}

func (e *env) zfsSave(st *zfsState) error {
	b, err := json.MarshalIndent(st, "", " ")
	if err != nil {
		return err
	}
	return writeFile(e.m(ZFSStateFile), append(b, '\n'), 0o644)
}

func (st *zfsState) find(name string) *zfsDataset {
	for _, d := range st.Datasets {
		if d.Name == name {
			return d
		}
	}
	return nil
}

func (st *zfsState) pool(name string) *zfsPool {
	for i := range st.Pools {
		if st.Pools[i].Name == name {
			return &st.Pools[i]
		}
	}
	return nil
}

// descendants returns the datasets below name (children, their children
// and all their snapshots, and name's own snapshots), deepest first.
func (st *zfsState) descendants(name string) []*zfsDataset {
	var out []*zfsDataset
	for _, d := range st.Datasets {
		if strings.HasPrefix(d.Name, name+"/") || strings.HasPrefix(d.Name, name+"@") {
			out = append(out, d)
		}
	}
	sort.SliceStable(out, func(i, j int) bool { return strings.Count(out[i].Name, "/") > strings.Count(out[j].Name, "/") })
	return out
}

func (st *zfsState) remove(name string) {
	var keep []*zfsDataset
	for _, d := range st.Datasets {
		if d.Name != name {
			keep = append(keep, d)
		}
	}
	st.Datasets = keep
}

func zfsParent(name string) string {
	if i := strings.LastIndexByte(name, '/'); i >= 0 {
		return name[:i]
	}
	return ""
}

// zfsDefaults are the properties the lab knows, with their default values
// (zfsprops(7)); a property not here and without a ':' (a user property)
// is invalid.
var zfsDefaults = map[string]string{
	"mountpoint": "", "canmount": "on", "quota": "none", "refquota": "none",
	"reservation": "none", "refreservation": "none", "compression": "off", "atime": "on",
	"exec": "on", "setuid": "on", "readonly": "off", "recordsize": "128K", "checksum": "on",
	"devices": "on", "jailed": "off", "snapdir": "hidden", "sync": "standard",
}

// zfsReadonly are the read-only native properties the lab reports.
var zfsReadonly = map[string]bool{"name": true, "type": true, "creation": true, "used": true,
	"available": true, "avail": true, "referenced": true, "refer": true, "mounted": true, "origin": true}

// zfsInheritable: canmount is not inherited (zfsprops(7)).
func zfsInheritable(p string) bool {
	return p != "canmount" && p != "quota" && p != "refquota" && p != "reservation" && p != "refreservation"
}

// prop returns a property's value and source (local, default, inherited
// from X, or - for read-only ones).
func (st *zfsState) prop(d *zfsDataset, p string) (string, string, bool) {
	switch p {
	case "name":
		return d.Name, "-", true
	case "type":
		return d.Type, "-", true
	case "creation":
		return time.Unix(d.Created, 0).UTC().Format("Mon Jan _2 15:04 2006"), "-", true
	case "mounted":
		if d.Type != "filesystem" {
			return "-", "-", true
		}
		if st.mountpoint(d) != "" {
			return "yes", "-", true
		}
		return "no", "-", true
	case "used", "referenced", "refer", "available", "avail":
		return "0", "-", true // sizes are not modelled
	case "origin":
		if v, ok := d.Props["origin"]; ok {
			return v, "-", true
		}
		return "-", "-", true
	case "mountpoint":
		if d.Type != "filesystem" {
			return "-", "-", true
		}
		return st.mountpointProp(d)
	}
	if strings.Contains(p, ":") { // user property (zfsprops(7), "User Properties")
		for n := d.Name; n != ""; n = zfsParent(n) {
			if x := st.find(n); x != nil {
				if v, ok := x.Props[p]; ok {
					if n == d.Name {
						return v, "local", true
					}
					return v, "inherited from " + n, true
				}
			}
		}
		return "-", "-", true
	}
	def, ok := zfsDefaults[p]
	if !ok {
		return "", "", false
	}
	if v, ok := d.Props[p]; ok {
		return v, "local", true
	}
	if d.Type == "filesystem" && zfsInheritable(p) {
		for n := zfsParent(d.Name); n != ""; n = zfsParent(n) {
			if x := st.find(n); x != nil {
				if v, ok := x.Props[p]; ok {
					return v, "inherited from " + n, true
				}
			}
		}
	}
	return def, "default", true
}

// mountpointProp: a local mountpoint, else the parent's with this
// dataset's last component appended, else /<pool path> (zfsprops(7),
// mountpoint).
func (st *zfsState) mountpointProp(d *zfsDataset) (string, string, bool) {
	if v, ok := d.Props["mountpoint"]; ok {
		return v, "local", true
	}
	rel := ""
	for n := d.Name; ; n = zfsParent(n) {
		x := st.find(n)
		if x != nil && n != d.Name {
			if v, ok := x.Props["mountpoint"]; ok {
				if v == "none" || v == "legacy" {
					return v, "inherited from " + n, true
				}
				return strings.TrimSuffix(v, "/") + "/" + strings.TrimPrefix(rel, "/"), "inherited from " + n, true
			}
		}
		if zfsParent(n) == "" {
			return "/" + d.Name, "default", true
		}
		rel = "/" + n[strings.LastIndexByte(n, '/')+1:] + rel
	}
}

// mountpoint is where a file system is mounted, or "" when it is not
// (mountpoint none or legacy, or canmount off).
func (st *zfsState) mountpoint(d *zfsDataset) string {
	if d.Type != "filesystem" {
		return ""
	}
	if c, _, _ := st.prop(d, "canmount"); c != "on" {
		return ""
	}
	mp, _, _ := st.mountpointProp(d)
	if mp == "none" || mp == "legacy" || mp == "" {
		return ""
	}
	return filepath.Clean(mp)
}

// zfsNicenum prints a size as zfs does (OpenZFS lib/libzutil
// zfs_nicenum_format, ZFS_NICENUM_1024): an exact multiple without
// decimals, otherwise the most decimals (2, 1, 0) that fit 5 characters.
func zfsNicenum(n uint64) string {
	units := []string{"", "K", "M", "G", "T", "P", "E"}
	i, v := 0, n
	for v >= 1024 && i < len(units)-1 {
		v /= 1024
		i++
	}
	div := uint64(math.Pow(1024, float64(i)))
	if i == 0 || n%div == 0 {
		return fmt.Sprintf("%d%s", v, units[i])
	}
	var s string
	for prec := 2; prec >= 0; prec-- {
		s = fmt.Sprintf("%.*f%s", prec, float64(n)/float64(div), units[i])
		if len(s) <= 5 {
			break
		}
	}
	return s
}

// zfsNicestrtonum parses a size ("20G", "1.5T", "512M", "100K", "1024"):
// a number and an optional suffix B, K, M, G, T, P, E with an optional
// trailing B, any case (OpenZFS lib/libzfs/libzfs_util.c,
// zfs_nicestrtonum).
func zfsNicestrtonum(s string) (uint64, error) {
	i := 0
	for i < len(s) && (s[i] >= '0' && s[i] <= '9' || s[i] == '.') {
		i++
	}
	num, suf := s[:i], strings.ToUpper(s[i:])
	if num == "" {
		return 0, fmt.Errorf("bad numeric value '%s'", s)
	}
	suf = strings.TrimSuffix(suf, "B")
	if len(s[i:]) == 1 && strings.ToUpper(s[i:]) == "B" {
		suf = ""
	}
	shift := 0
	if suf != "" {
		shift = strings.Index("KMGTPE", suf) + 1
	}
	if suf != "" && (len(suf) != 1 || shift == 0) {
		return 0, fmt.Errorf("invalid numeric suffix '%s'", s[i:])
	}
	f, err := strconv.ParseFloat(num, 64)
	if err != nil {
		return 0, fmt.Errorf("bad numeric value '%s'", s)
	}
	v := f * math.Pow(1024, float64(shift))
	if v > math.MaxUint64/2 {
		return 0, fmt.Errorf("numeric value is too large")
	}
	return uint64(v), nil
}

// zfsCheckProp validates prop=value for set and create -o.
func zfsCheckProp(p, v string) (string, error) {
	if strings.Contains(p, ":") {
		return v, nil
	}
	if zfsReadonly[p] {
		return "", fmt.Errorf("'%s' is readonly", p)
	}
	if _, ok := zfsDefaults[p]; !ok {
		return "", fmt.Errorf("invalid property '%s'", p)
	}
	switch p {
	case "quota", "refquota", "reservation", "refreservation":
		if v == "none" || v == "0" {
			return "none", nil
		}
		n, err := zfsNicestrtonum(v)
		if err != nil {
			return "", fmt.Errorf("'%s' %v", p, err)
		}
		if n == 0 {
			return "none", nil
		}
		return zfsNicenum(n), nil
	case "mountpoint":
		if v != "none" && v != "legacy" && !strings.HasPrefix(v, "/") {
			return "", fmt.Errorf("'mountpoint' must be an absolute path, 'none', or 'legacy'")
		}
	case "canmount":
		if v != "on" && v != "off" && v != "noauto" {
			return "", fmt.Errorf("'canmount' must be one of 'on | off | noauto'")
		}
	case "atime", "exec", "setuid", "readonly", "devices", "jailed":
		if v != "on" && v != "off" {
			return "", fmt.Errorf("'%s' must be one of 'on | off'", p)
		}
	}
	return v, nil
}

func zfsCmd(e *env, args []string) int {
	if len(args) < 2 {
		fmt.Fprintln(e.stderr, "usage: zfs command args ...")
		return 2
	}
	if e.jail != "" {
		// jails see no datasets unless delegated with zfs jail (not modelled).
		fmt.Fprintln(e.stderr, "no datasets available")
		return 1
	}
	st, err := e.zfsLoad()
	if err != nil {
		fmt.Fprintf(e.stderr, "zfs: %v\n", err)
		return 1
	}
	z := &zfsRun{e: e, st: st}
	sub, rest := args[1], args[2:]
	var code int
	switch sub {
	case "create":
		code = z.create(rest)
	case "destroy":
		code = z.destroy(rest)
	case "snapshot", "snap":
		code = z.snapshot(rest)
	case "rename":
		code = z.rename(rest)
	case "list":
		code = z.list(rest)
	case "get":
		code = z.get(rest)
	case "set":
		code = z.set(rest)
	case "inherit":
		code = z.inherit(rest)
	case "send":
		code = z.send(rest)
	case "receive", "recv":
		code = z.receive(rest)
	case "clone":
		code = z.clone(rest)
	default:
		// zfs jail, diff, promote, mount, ...: not modelled, and loudly so.
		fmt.Fprintf(e.stderr, "zfs: '%s' is not modelled by the lab\n", sub)
		return 2
	}
	if z.dirty {
		if err := e.zfsSave(st); err != nil {
			fmt.Fprintf(e.stderr, "zfs: %v\n", err)
			return 1
		}
	}
	return code
}

type zfsRun struct {
	e     *env
	st    *zfsState
	dirty bool
}

func (z *zfsRun) errf(code int, format string, a ...any) int {
	fmt.Fprintf(z.e.stderr, format+"\n", a...)
	return code
}

// validName checks a dataset name (OpenZFS zfs_namecheck.c: letters,
// digits, '_', '-', '.', ':', ' ' in components; no empty component).
func validName(name string, snapshot bool) error {
	fs, snap, isSnap := strings.Cut(name, "@")
	if isSnap != snapshot {
		if snapshot {
			return errors.New("missing '@' delimiter in snapshot name")
		}
		return errors.New("snapshot delimiter '@' is not expected here")
	}
	comps := strings.Split(fs, "/")
	if isSnap {
		comps = append(comps, snap)
	}
	for _, c := range comps {
		if c == "" {
			return errors.New("empty component or misplaced '@' or '#' delimiter in name")
		}
		for _, r := range c {
			if !(r >= 'a' && r <= 'z' || r >= 'A' && r <= 'Z' || r >= '0' && r <= '9' || strings.ContainsRune("_-.: ", r)) {
				return fmt.Errorf("invalid character '%c' in name", r)
			}
		}
	}
	return nil
}

// mountNew "mounts" a new or moved file system: its mountpoint directory
// is created (zfs_mount, libzfs_mount.c: mkdirp of a missing mountpoint).
// The lab cannot hide a directory's contents under a mount, so a non-empty
// directory is refused.
func (z *zfsRun) mountNew(d *zfsDataset) error {
	mp := z.st.mountpoint(d)
	if mp == "" {
		return nil
	}
	p := z.e.m(mp)
	if ents, err := os.ReadDir(p); err == nil && len(ents) > 0 {
		return fmt.Errorf("cannot mount '%s': directory is not empty (the lab cannot mount over files)", mp)
	}
	return os.MkdirAll(p, 0o755)
}

// busy reports a running jail whose root is at or below dir: its file
// system cannot be unmounted ("Device busy").
func (z *zfsRun) busy(dir string) bool {
	for _, r := range z.e.runningJails() {
		p := filepath.Clean(r.path)
		if p == dir || strings.HasPrefix(p, dir+"/") {
			return true
		}
	}
	for _, m := range z.e.mounts() {
		if strings.HasPrefix(m.dir, dir+"/") {
			return true
		}
	}
	return false
}

// childMounts returns the mountpoints of other mounted file systems at or
// below dir, which a tree copy of dir must skip.
func (z *zfsRun) childMounts(d *zfsDataset, dir string) map[string]bool {
	out := map[string]bool{}
	for _, x := range z.st.Datasets {
		if x == d {
			continue
		}
		if mp := z.st.mountpoint(x); mp != "" && strings.HasPrefix(mp, dir+"/") {
			out[z.e.m(mp)] = true
		}
	}
	return out
}

// clearTree removes the contents of dir, except other file systems
// mounted below it.
func clearTree(dir string, skip map[string]bool) error {
	ents, err := os.ReadDir(dir)
	if err != nil {
		if os.IsNotExist(err) {
			return nil
		}
		return err
	}
	for _, de := range ents {
		p := filepath.Join(dir, de.Name())
		if skip[p] {
			continue
		}
		keep := false
		for s := range skip {
			if strings.HasPrefix(s, p+"/") {
				keep = true
			}
		}
		if keep && de.IsDir() {
			if err := clearTree(p, skip); err != nil {
				return err
			}
			continue
		}
		if err := os.RemoveAll(p); err != nil {
			return err
		}
	}
	return nil
}

// copyTreeSkip copies src into dst, skipping the paths in skip.
func copyTreeSkip(src, dst string, skip map[string]bool) error {
	return filepath.Walk(src, func(path string, fi os.FileInfo, err error) error {
		if err != nil {
			return err
		}
		if skip[path] {
			return filepath.SkipDir
		}
		rel, _ := filepath.Rel(src, path)
		target := filepath.Join(dst, rel)
		switch {
		case fi.IsDir():
			if err := os.MkdirAll(target, 0o755); err != nil {
				return err
			}
			return os.Chmod(target, fi.Mode()&(os.ModePerm|os.ModeSticky|os.ModeSetuid|os.ModeSetgid))
		case fi.Mode()&os.ModeSymlink != 0:
			l, err := os.Readlink(path)
			if err != nil {
				return err
			}
			os.Remove(target)
			return os.Symlink(l, target)
		case fi.Mode().IsRegular():
			b, err := os.ReadFile(path)
			if err != nil {
				return err
			}
			os.Remove(target)
			return os.WriteFile(target, b, fi.Mode().Perm())
		}
		return nil
	})
}

func (z *zfsRun) create(args []string) int {
	opts, rest, err := getopts(args, "po:sV:b:u")
	if err != nil || len(rest) != 1 {
		return z.errf(2, "usage:\n\tcreate [-Pnpuv] [-o property=value] ... <filesystem>")
	}
	name := rest[0]
	if err := validName(name, false); err != nil {
		return z.errf(1, "cannot create '%s': %v", name, err)
	}
	props := map[string]string{}
	parents := false
	for _, o := range opts {
		switch o[0] {
		case "p":
			parents = true
		case "o":
			k, v, ok := strings.Cut(o[1], "=")
			if !ok {
				return z.errf(2, "missing '=' for property=value argument")
			}
			v, err := zfsCheckProp(k, v)
			if err != nil {
				return z.errf(1, "cannot create '%s': %v", name, err)
			}
			props[k] = v
		case "V", "s", "b":
			return z.errf(2, "zfs create: volumes are not modelled by the lab")
		}
	}
	if z.st.pool(strings.SplitN(name, "/", 2)[0]) == nil {
		return z.errf(1, "cannot create '%s': no such pool '%s'", name, strings.SplitN(name, "/", 2)[0])
	}
	if z.st.find(name) != nil {
		if parents {
			return 0 // zfs create -p of an existing file system succeeds (zfs_main.c, zfs_do_create)
		}
		return z.errf(1, "cannot create '%s': dataset already exists", name)
	}
	var chain []string
	for n := zfsParent(name); n != "" && z.st.find(n) == nil; n = zfsParent(n) {
		chain = append([]string{n}, chain...)
	}
	if len(chain) > 0 && !parents {
		return z.errf(1, "cannot create '%s': parent does not exist", name)
	}
	now := time.Now().Unix()
	for _, n := range append(chain, name) {
		d := &zfsDataset{Name: n, Type: "filesystem", Props: map[string]string{}, Created: now}
		if n == name {
			d.Props = props
		}
		z.st.Datasets = append(z.st.Datasets, d)
		z.dirty = true
		if err := z.mountNew(d); err != nil {
			// zfs create reports the failed mount but keeps the dataset.
			return z.errf(1, "%v\nfilesystem successfully created, but not mounted", err)
		}
	}
	return 0
}

func (z *zfsRun) snapshot(args []string) int {
	opts, rest, err := getopts(args, "ro:")
	if err != nil || len(rest) == 0 {
		return z.errf(2, "usage:\n\tsnapshot [-r] [-o property=value] ... <filesystem|volume>@<snap> ...")
	}
	_, recursive := optMap(opts)["r"]
	for _, name := range rest {
		if err := validName(name, true); err != nil {
			return z.errf(1, "cannot create snapshot '%s': %v", name, err)
		}
		fs, snap, _ := strings.Cut(name, "@")
		d := z.st.find(fs)
		if d == nil || d.Type != "filesystem" {
			return z.errf(1, "cannot open '%s': dataset does not exist\nusage:\n\tsnapshot [-r] [-o property=value] ... <filesystem|volume>@<snap> ...", fs)
		}
		targets := []*zfsDataset{d}
		if recursive {
			for _, x := range z.st.Datasets {
				if x.Type == "filesystem" && strings.HasPrefix(x.Name, fs+"/") {
					targets = append(targets, x)
				}
			}
		}
		for _, t := range targets {
			if z.st.find(t.Name+"@"+snap) != nil {
				return z.errf(1, "cannot create snapshot '%s@%s': dataset already exists", t.Name, snap)
			}
		}
		for _, t := range targets {
			if err := z.takeSnapshot(t, snap); err != nil {
				return z.errf(1, "cannot create snapshot '%s@%s': %v", t.Name, snap, err)
			}
		}
	}
	return 0
}

// takeSnapshot copies the file system's tree (not the file systems
// mounted below it) and records the snapshot.
func (z *zfsRun) takeSnapshot(d *zfsDataset, snap string) error {
	z.st.Seq++
	data := fmt.Sprintf("%s/%d", zfsSnapDir, z.st.Seq)
	if err := os.MkdirAll(z.e.m(data), 0o755); err != nil {
		return err
	}
	if mp := z.st.mountpoint(d); mp != "" && isDir(z.e.m(mp)) {
		if err := copyTreeSkip(z.e.m(mp), z.e.m(data), z.childMounts(d, mp)); err != nil {
			return err
		}
	}
	z.st.Datasets = append(z.st.Datasets, &zfsDataset{Name: d.Name + "@" + snap, Type: "snapshot", Created: time.Now().Unix(), Data: data})
	z.dirty = true
	return nil
}

func (z *zfsRun) destroy(args []string) int {
	opts, rest, err := getopts(args, "rRfnpvd")
	if err != nil || len(rest) != 1 {
		return z.errf(2, "usage:\n\tdestroy [-fnpRrv] <filesystem|volume>\n\tdestroy [-dnpRrv] <filesystem|volume>@<snap>[%%<snap>][,...]")
	}
	o := optMap(opts)
	_, r := o["r"]
	_, R := o["R"]
	name := rest[0]
	d := z.st.find(name)
	if d == nil {
		if strings.Contains(name, "@") {
			// zfs_main.c, zfs_do_destroy: a missing snapshot is not an
			// error unless its file system is missing too.
			fs, _, _ := strings.Cut(name, "@")
			if z.st.find(fs) != nil {
				return 0
			}
			return z.errf(1, "could not find any snapshots to destroy; check snapshot names.")
		}
		return z.errf(1, "cannot open '%s': dataset does not exist", name)
	}
	// Clones of this dataset's snapshots (or of the snapshot) need -R.
	var clones []string
	for _, x := range z.st.Datasets {
		if o := x.Props["origin"]; o != "" && (o == name || strings.HasPrefix(o, name+"@") || strings.HasPrefix(o, name+"/")) {
			clones = append(clones, x.Name)
		}
	}
	if len(clones) > 0 && !R {
		return z.errf(1, "cannot destroy '%s': filesystem has dependent clones\nuse '-R' to destroy the following datasets:\n%s", name, strings.Join(clones, "\n"))
	}
	desc := z.st.descendants(name)
	if len(desc) > 0 && !r && !R {
		var names []string
		for _, x := range desc {
			names = append(names, x.Name)
		}
		kind := "filesystem has children"
		return z.errf(1, "cannot destroy '%s': %s\nuse '-r' to destroy the following datasets:\n%s", name, kind, strings.Join(names, "\n"))
	}
	all := append(desc, d)
	for _, c := range clones {
		if x := z.st.find(c); x != nil {
			all = append(append(z.st.descendants(c), x), all...)
		}
	}
	for _, x := range all {
		if mp := z.st.mountpoint(x); mp != "" && z.busy(mp) {
			return z.errf(1, "cannot unmount '%s': pool or dataset is busy", mp)
		}
	}
	for _, x := range all {
		if z.st.find(x.Name) == nil {
			continue
		}
		if x.Type == "snapshot" {
			os.RemoveAll(z.e.m(x.Data))
		} else if mp := z.st.mountpoint(x); mp != "" && mp != "/" {
			// Unmounting hides the contents; libzfs_mount.c remove_mountpoint
			// then removes the (now empty) mountpoint directory.
			p := z.e.m(mp)
			if err := clearTree(p, z.childMounts(x, mp)); err != nil {
				return z.errf(1, "cannot unmount '%s': %v", mp, err)
			}
			os.Remove(p)
		}
		z.st.remove(x.Name)
		z.dirty = true
	}
	return 0
}

func (z *zfsRun) rename(args []string) int {
	_, rest, err := getopts(args, "fpu")
	if err != nil || len(rest) != 2 {
		return z.errf(2, "usage:\n\trename [-f] <filesystem|volume|snapshot> <filesystem|volume|snapshot>")
	}
	from, to := rest[0], rest[1]
	d := z.st.find(from)
	if d == nil {
		return z.errf(1, "cannot open '%s': dataset does not exist", from)
	}
	if err := validName(to, d.Type == "snapshot"); err != nil {
		return z.errf(1, "cannot rename to '%s': %v", to, err)
	}
	if strings.SplitN(from, "/", 2)[0] != strings.SplitN(to, "/", 2)[0] {
		return z.errf(1, "cannot rename to '%s': datasets must be within same pool", to)
	}
	if z.st.find(to) != nil {
		return z.errf(1, "cannot rename to '%s': dataset already exists", to)
	}
	if d.Type == "filesystem" && z.st.find(zfsParent(to)) == nil {
		return z.errf(1, "cannot rename to '%s': parent does not exist", to)
	}
	if d.Type == "filesystem" && strings.HasPrefix(to, from+"/") {
		return z.errf(1, "cannot rename to '%s': New dataset name cannot be a descendant of current dataset name", to)
	}
	oldMP := map[*zfsDataset]string{}
	moved := append(z.st.descendants(from), d)
	for _, x := range moved {
		oldMP[x] = z.st.mountpoint(x)
		if oldMP[x] != "" && z.busy(oldMP[x]) {
			return z.errf(1, "cannot unmount '%s': pool or dataset is busy", oldMP[x])
		}
	}
	for _, x := range moved {
		x.Name = to + strings.TrimPrefix(x.Name, from)
	}
	z.dirty = true
	// Remount where the mountpoints moved, shallowest first.
	sort.SliceStable(moved, func(i, j int) bool { return strings.Count(moved[i].Name, "/") < strings.Count(moved[j].Name, "/") })
	for _, x := range moved {
		old, now := oldMP[x], z.st.mountpoint(x)
		if old == now || old == "" || now == "" {
			continue
		}
		if exists(z.e.m(now)) {
			if ents, _ := os.ReadDir(z.e.m(now)); len(ents) > 0 {
				return z.errf(1, "cannot mount '%s': directory is not empty (the lab cannot mount over files)", now)
			}
			os.Remove(z.e.m(now))
		}
		if err := os.MkdirAll(filepath.Dir(z.e.m(now)), 0o755); err != nil {
			return z.errf(1, "cannot mount '%s': %v", now, err)
		}
		if err := os.Rename(z.e.m(old), z.e.m(now)); err != nil && !os.IsNotExist(err) {
			return z.errf(1, "cannot mount '%s': %v", now, err)
		}
	}
	return 0
}

// zfsColumns maps list's column names to headers.
func zfsHeader(p string) string {
	switch p {
	case "available", "avail":
		return "AVAIL"
	case "referenced", "refer":
		return "REFER"
	}
	return strings.ToUpper(p)
}

func (z *zfsRun) list(args []string) int {
	opts, rest, err := getopts(args, "Hprd:o:t:s:S:")
	if err != nil {
		return z.errf(2, "usage:\n\tlist [-Hp] [-r|-d max] [-o property[,...]] [-s property]...\n\t    [-S property]... [-t type[,...]] [filesystem|volume|snapshot] ...")
	}
	cols := []string{"name", "used", "available", "referenced", "mountpoint"}
	types := map[string]bool{"filesystem": true}
	header, recursive, depth, parsable := true, false, -1, false
	var sortKey string
	desc := false
	explicitTypes := false
	for _, o := range opts {
		switch o[0] {
		case "H":
			header = false
		case "p":
			parsable = true
		case "r":
			recursive = true
		case "d":
			recursive = true
			depth, _ = strconv.Atoi(o[1])
		case "o":
			cols = strings.Split(o[1], ",")
		case "t":
			explicitTypes = true
			types = map[string]bool{}
			for _, t := range strings.Split(o[1], ",") {
				if t == "all" {
					types["filesystem"], types["snapshot"] = true, true
				} else if t == "snap" {
					types["snapshot"] = true
				} else {
					types[t] = true
				}
			}
		case "s", "S":
			sortKey, desc = o[1], o[0] == "S"
		}
	}
	var rows []*zfsDataset
	if len(rest) == 0 {
		for _, d := range z.st.Datasets {
			if types[d.Type] {
				rows = append(rows, d)
			}
		}
	} else {
		for _, n := range rest {
			d := z.st.find(n)
			if d == nil {
				return z.errf(1, "cannot open '%s': dataset does not exist", n)
			}
			// A named snapshot is listed whatever -t says; a named file
			// system unless -t excludes it.
			if types[d.Type] || strings.Contains(n, "@") && !explicitTypes {
				rows = append(rows, d)
			}
			if recursive {
				base := strings.Count(n, "/")
				for _, x := range z.st.Datasets {
					if (strings.HasPrefix(x.Name, n+"/") || strings.HasPrefix(x.Name, n+"@")) && types[x.Type] {
						// -d: a snapshot counts one level below its file system.
						lvl := strings.Count(strings.SplitN(x.Name, "@", 2)[0], "/") - base
						if x.Type == "snapshot" {
							lvl++
						}
						if depth >= 0 && lvl > depth {
							continue
						}
						rows = append(rows, x)
					}
				}
			}
		}
	}
	if sortKey == "" {
		sort.SliceStable(rows, func(i, j int) bool { return rows[i].Name < rows[j].Name })
	} else {
		sort.SliceStable(rows, func(i, j int) bool {
			a, b := rows[i], rows[j]
			if sortKey == "creation" {
				if desc {
					return a.Created > b.Created
				}
				return a.Created < b.Created
			}
			va, _, _ := z.st.prop(a, sortKey)
			vb, _, _ := z.st.prop(b, sortKey)
			if desc {
				return va > vb
			}
			return va < vb
		})
	}
	var table [][]string
	if header {
		var h []string
		for _, c := range cols {
			h = append(h, zfsHeader(c))
		}
		table = append(table, h)
	}
	for _, d := range rows {
		var row []string
		for _, c := range cols {
			v, _, ok := z.st.prop(d, c)
			if !ok {
				return z.errf(2, "invalid field '%s'", c)
			}
			if parsable {
				v = zfsParsable(c, v)
			}
			row = append(row, v)
		}
		table = append(table, row)
	}
	z.printTable(table, header)
	return 0
}

// printTable prints tab-separated rows with -H, else columns padded with
// two spaces as zfs does.
func (z *zfsRun) printTable(table [][]string, header bool) {
	if !header {
		for _, r := range table {
			fmt.Fprintln(z.e.stdout, strings.Join(r, "\t"))
		}
		return
	}
	if len(table) == 0 {
		return
	}
	w := make([]int, len(table[0]))
	for _, r := range table {
		for i, c := range r {
			if len(c) > w[i] {
				w[i] = len(c)
			}
		}
	}
	for _, r := range table {
		var b strings.Builder
		for i, c := range r {
			if i == len(r)-1 {
				b.WriteString(c)
			} else {
				fmt.Fprintf(&b, "%-*s  ", w[i], c)
			}
		}
		fmt.Fprintln(z.e.stdout, b.String())
	}
}

func (z *zfsRun) get(args []string) int {
	opts, rest, err := getopts(args, "Hprd:o:s:t:")
	if err != nil || len(rest) < 1 {
		return z.errf(2, "usage:\n\tget [-rHp] [-d max] [-o \"all\" | field[,...]]\n\t    [-t type[,...]] [-s source[,...]]\n\t    <\"all\" | property[,...]> [filesystem|volume|snapshot|bookmark] ...")
	}
	fields := []string{"name", "property", "value", "source"}
	header, parsable, recursive := true, false, false
	for _, o := range opts {
		switch o[0] {
		case "H":
			header = false
		case "p":
			parsable = true
		case "r":
			recursive = true
		case "o":
			fields = strings.Split(o[1], ",")
		}
	}
	props := strings.Split(rest[0], ",")
	if rest[0] == "all" {
		props = []string{"type", "creation", "used", "available", "referenced", "mountpoint", "mounted", "origin"}
		for k := range zfsDefaults {
			if k != "mountpoint" {
				props = append(props, k)
			}
		}
		sort.Strings(props[8:])
	}
	names := rest[1:]
	if len(names) == 0 {
		for _, d := range z.st.Datasets {
			if d.Type == "filesystem" {
				names = append(names, d.Name)
			}
		}
	}
	var targets []*zfsDataset
	for _, n := range names {
		d := z.st.find(n)
		if d == nil {
			return z.errf(1, "cannot open '%s': dataset does not exist", n)
		}
		targets = append(targets, d)
		if recursive {
			for _, x := range z.st.Datasets {
				if strings.HasPrefix(x.Name, n+"/") || strings.HasPrefix(x.Name, n+"@") {
					targets = append(targets, x)
				}
			}
		}
	}
	var table [][]string
	if header {
		var h []string
		for _, f := range fields {
			h = append(h, strings.ToUpper(f))
		}
		table = append(table, h)
	}
	for _, d := range targets {
		for _, p := range props {
			v, src, ok := z.st.prop(d, p)
			if !ok {
				return z.errf(2, "bad property list: invalid property '%s'", p)
			}
			if parsable {
				v = zfsParsable(p, v)
			}
			var row []string
			for _, f := range fields {
				switch f {
				case "name":
					row = append(row, d.Name)
				case "property":
					row = append(row, p)
				case "value":
					row = append(row, v)
				case "source":
					row = append(row, src)
				case "received":
					row = append(row, "-")
				default:
					return z.errf(2, "invalid field '%s'", f)
				}
			}
			table = append(table, row)
		}
	}
	z.printTable(table, header)
	return 0
}

func (z *zfsRun) set(args []string) int {
	_, rest, err := getopts(args, "u")
	if err != nil || len(rest) < 2 {
		return z.errf(2, "usage:\n\tset <property=value> ... <filesystem|volume|snapshot> ...")
	}
	var kvs [][2]string
	i := 0
	for ; i < len(rest) && strings.Contains(rest[i], "="); i++ {
		k, v, _ := strings.Cut(rest[i], "=")
		kvs = append(kvs, [2]string{k, v})
	}
	names := rest[i:]
	if len(kvs) == 0 || len(names) == 0 {
		return z.errf(2, "usage:\n\tset <property=value> ... <filesystem|volume|snapshot> ...")
	}
	for _, n := range names {
		d := z.st.find(n)
		if d == nil {
			return z.errf(1, "cannot open '%s': dataset does not exist", n)
		}
		for _, kv := range kvs {
			v, err := zfsCheckProp(kv[0], kv[1])
			if err != nil {
				return z.errf(1, "cannot set property for '%s': %v", n, err)
			}
			if d.Type == "snapshot" && !strings.Contains(kv[0], ":") {
				return z.errf(1, "cannot set property for '%s': this property can not be modified for snapshots", n)
			}
			if code := z.setOne(d, kv[0], v); code != 0 {
				return code
			}
		}
	}
	return 0
}

// setOne sets a property; a mountpoint or canmount change remounts the
// file system and its children (their contents move with them).
func (z *zfsRun) setOne(d *zfsDataset, k, v string) int {
	affected := append([]*zfsDataset{d}, z.st.descendants(d.Name)...)
	old := map[*zfsDataset]string{}
	for _, x := range affected {
		old[x] = z.st.mountpoint(x)
	}
	if d.Props == nil {
		d.Props = map[string]string{}
	}
	if k == "quota" && v == "none" {
		delete(d.Props, k)
	} else {
		d.Props[k] = v
	}
	z.dirty = true
	if k != "mountpoint" && k != "canmount" {
		return 0
	}
	for _, x := range affected {
		now := z.st.mountpoint(x)
		if old[x] == now {
			continue
		}
		if old[x] != "" && z.busy(old[x]) {
			return z.errf(1, "cannot unmount '%s': pool or dataset is busy", old[x])
		}
		if old[x] != "" && now != "" {
			if ents, _ := os.ReadDir(z.e.m(now)); len(ents) > 0 {
				return z.errf(1, "cannot mount '%s': directory is not empty (the lab cannot mount over files)", now)
			}
			os.Remove(z.e.m(now))
			os.MkdirAll(filepath.Dir(z.e.m(now)), 0o755)
			if err := os.Rename(z.e.m(old[x]), z.e.m(now)); err != nil && !os.IsNotExist(err) {
				return z.errf(1, "cannot mount '%s': %v", now, err)
			}
		}
	}
	return 0
}

func (z *zfsRun) inherit(args []string) int {
	_, rest, err := getopts(args, "rS")
	if err != nil || len(rest) < 2 {
		return z.errf(2, "usage:\n\tinherit [-rS] <property> <filesystem|volume|snapshot> ...")
	}
	for _, n := range rest[1:] {
		d := z.st.find(n)
		if d == nil {
			return z.errf(1, "cannot open '%s': dataset does not exist", n)
		}
		if _, ok := zfsDefaults[rest[0]]; !ok && !strings.Contains(rest[0], ":") {
			return z.errf(1, "invalid property '%s'", rest[0])
		}
		delete(d.Props, rest[0])
		z.dirty = true
	}
	return 0
}

// zfsStreamMagic starts the lab's send stream (not OpenZFS's format: only
// the lab's receive reads it).
const zfsStreamMagic = "lab-zfs-stream 1"

func (z *zfsRun) send(args []string) int {
	_, rest, err := getopts(args, "DLPRcehnpvwi:I:")
	if err != nil || len(rest) != 1 {
		return z.errf(2, "usage:\n\tsend [-DLPbcehnpsvw] [-i|-I snapshot] <snapshot>")
	}
	d := z.st.find(rest[0])
	if d == nil {
		return z.errf(1, "cannot open '%s': dataset does not exist", rest[0])
	}
	if d.Type != "snapshot" {
		return z.errf(1, "Error: Unsupported flag with filesystem or bookmark.") // a file system needs -R/-I in OpenZFS; the lab sends snapshots only
	}
	if f, ok := z.e.stdout.(*os.File); ok {
		if fi, err := f.Stat(); err == nil && fi.Mode()&os.ModeCharDevice != 0 {
			return z.errf(1, "Error: Stream can not be written to a terminal.\nYou must redirect standard output.")
		}
	}
	w := bufio.NewWriter(z.e.stdout)
	fmt.Fprintf(w, "%s\n%s\n", zfsStreamMagic, d.Name)
	tw := tar.NewWriter(w)
	src := z.e.m(d.Data)
	err = filepath.Walk(src, func(path string, fi os.FileInfo, err error) error {
		if err != nil {
			return err
		}
		rel, _ := filepath.Rel(src, path)
		if rel == "." {
			return nil
		}
		link := ""
		if fi.Mode()&os.ModeSymlink != 0 {
			link, _ = os.Readlink(path)
		}
		h, err := tar.FileInfoHeader(fi, link)
		if err != nil {
			return err
		}
		h.Name = rel
		if err := tw.WriteHeader(h); err != nil {
			return err
		}
		if fi.Mode().IsRegular() {
			f, err := os.Open(path)
			if err != nil {
				return err
			}
			defer f.Close()
			_, err = io.Copy(tw, f)
			return err
		}
		return nil
	})
	if err == nil {
		err = tw.Close()
	}
	if err == nil {
		err = w.Flush()
	}
	if err != nil {
		return z.errf(1, "warning: cannot send '%s': %v", d.Name, err)
	}
	return 0
}

func (z *zfsRun) receive(args []string) int {
	opts, rest, err := getopts(args, "FnuvdesAhMo:x:")
	if err != nil || len(rest) != 1 {
		return z.errf(2, "usage:\n\treceive [-vMnsFhu] [-o <property>=<value>] ... [-x <property>] ...\n\t    <filesystem|volume|snapshot>")
	}
	_, force := optMap(opts)["F"]
	target := rest[0]
	r := bufio.NewReader(z.e.stdin)
	magic, _ := r.ReadString('\n')
	if strings.TrimSpace(magic) != zfsStreamMagic {
		return z.errf(1, "cannot receive: invalid stream (bad magic number)")
	}
	srcName, _ := r.ReadString('\n')
	srcName = strings.TrimSpace(srcName)
	_, snap, _ := strings.Cut(srcName, "@")
	fs := target
	if f, s, ok := strings.Cut(target, "@"); ok {
		fs, snap = f, s
	}
	d := z.st.find(fs)
	if d != nil && !force {
		return z.errf(1, "cannot receive new filesystem stream: destination '%s' exists\nmust specify -F to overwrite it", fs)
	}
	if d == nil {
		parent := zfsParent(fs)
		if parent == "" || z.st.find(parent) == nil {
			return z.errf(1, "cannot receive new filesystem stream: parent of '%s' does not exist", fs)
		}
		d = &zfsDataset{Name: fs, Type: "filesystem", Props: map[string]string{}, Created: time.Now().Unix()}
		z.st.Datasets = append(z.st.Datasets, d)
		z.dirty = true
		if err := z.mountNew(d); err != nil {
			return z.errf(1, "%v", err)
		}
	} else {
		// -F: the destination's snapshots go, its contents are replaced;
		// its local properties (mountpoint, quota) stay.
		for _, x := range z.st.descendants(fs) {
			if x.Type == "snapshot" && strings.HasPrefix(x.Name, fs+"@") {
				os.RemoveAll(z.e.m(x.Data))
				z.st.remove(x.Name)
				z.dirty = true
			}
		}
		if mp := z.st.mountpoint(d); mp != "" {
			if z.busy(mp) {
				return z.errf(1, "cannot unmount '%s': pool or dataset is busy", mp)
			}
			if err := clearTree(z.e.m(mp), z.childMounts(d, mp)); err != nil {
				return z.errf(1, "cannot receive: %v", err)
			}
		}
	}
	mp := z.st.mountpoint(d)
	if mp != "" {
		if err := untarTo(tar.NewReader(r), z.e.m(mp)); err != nil {
			return z.errf(1, "cannot receive new filesystem stream: %v", err)
		}
	} else if _, err := io.Copy(io.Discard, r); err != nil {
		return z.errf(1, "cannot receive: %v", err)
	}
	if err := z.takeSnapshot(d, snap); err != nil {
		return z.errf(1, "cannot receive: %v", err)
	}
	z.dirty = true
	return 0
}

func untarTo(tr *tar.Reader, dst string) error {
	for {
		h, err := tr.Next()
		if err == io.EOF {
			return nil
		}
		if err != nil {
			return err
		}
		name := filepath.Clean("/" + h.Name)
		p := filepath.Join(dst, name)
		switch h.Typeflag {
		case tar.TypeDir:
			if err := os.MkdirAll(p, 0o755); err != nil {
				return err
			}
			if err := os.Chmod(p, os.FileMode(h.Mode)&os.ModePerm|modeBits(h.Mode)); err != nil {
				return err
			}
		case tar.TypeSymlink:
			os.Remove(p)
			if err := os.Symlink(h.Linkname, p); err != nil {
				return err
			}
		case tar.TypeReg:
			if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
				return err
			}
			f, err := os.OpenFile(p, os.O_WRONLY|os.O_CREATE|os.O_TRUNC, os.FileMode(h.Mode)&os.ModePerm)
			if err != nil {
				return err
			}
			_, err = io.Copy(f, tr)
			f.Close()
			if err != nil {
				return err
			}
		}
	}
}

// modeBits maps tar's setuid/setgid/sticky bits to os.FileMode.
func modeBits(m int64) os.FileMode {
	var out os.FileMode
	if m&0o4000 != 0 {
		out |= os.ModeSetuid
	}
	if m&0o2000 != 0 {
		out |= os.ModeSetgid
	}
	if m&0o1000 != 0 {
		out |= os.ModeSticky
	}
	return out
}

func (z *zfsRun) clone(args []string) int {
	opts, rest, err := getopts(args, "po:")
	if err != nil || len(rest) != 2 {
		return z.errf(2, "usage:\n\tclone [-p] [-o property=value] ... <snapshot> <filesystem|volume>")
	}
	snap := z.st.find(rest[0])
	if snap == nil || snap.Type != "snapshot" {
		return z.errf(1, "cannot open '%s': dataset does not exist", rest[0])
	}
	to := rest[1]
	if z.st.find(to) != nil {
		return z.errf(1, "cannot create '%s': dataset already exists", to)
	}
	if z.st.find(zfsParent(to)) == nil {
		return z.errf(1, "cannot create '%s': parent does not exist", to)
	}
	d := &zfsDataset{Name: to, Type: "filesystem", Props: map[string]string{"origin": snap.Name}, Created: time.Now().Unix()}
	for _, o := range opts {
		if o[0] == "o" {
			k, v, _ := strings.Cut(o[1], "=")
			v, err := zfsCheckProp(k, v)
			if err != nil {
				return z.errf(1, "cannot create '%s': %v", to, err)
			}
			d.Props[k] = v
		}
	}
	z.st.Datasets = append(z.st.Datasets, d)
	z.dirty = true
	if err := z.mountNew(d); err != nil {
		return z.errf(1, "%v", err)
	}
	if mp := z.st.mountpoint(d); mp != "" {
		if err := copyTreeSkip(z.e.m(snap.Data), z.e.m(mp), nil); err != nil {
			return z.errf(1, "cannot create '%s': %v", to, err)
		}
	}
	return 0
}

// zpoolCmd: zpool list [-H] [-o prop,...] [pool ...], zpool status [pool]
// (zpool(8)); pools come from the machine's ZFS state.
func zpoolCmd(e *env, args []string) int {
	if len(args) < 2 {
		fmt.Fprintln(e.stderr, "usage: zpool command args ...")
		return 2
	}
	st, err := e.zfsLoad()
	if err != nil {
		fmt.Fprintf(e.stderr, "zpool: %v\n", err)
		return 1
	}
	z := &zfsRun{e: e, st: st}
	switch args[1] {
	case "list":
		opts, rest, err := getopts(args[2:], "Hgo:pPLvT:")
		if err != nil {
			return z.errf(2, "usage:\n\tlist [-gHLpPv] [-o property[,...]] [-T d|u] [pool] ...")
		}
		o := optMap(opts)
		cols := []string{"name", "size", "alloc", "free", "ckpoint", "expandsz", "frag", "cap", "dedup", "health", "altroot"}
		if v, ok := o["o"]; ok {
			cols = strings.Split(v, ",")
		}
		_, noHeader := o["H"]
		pools := st.Pools
		if len(rest) > 0 {
			pools = nil
			for _, n := range rest {
				p := st.pool(n)
				if p == nil {
					return z.errf(1, "cannot open '%s': no such pool", n)
				}
				pools = append(pools, *p)
			}
		}
		var table [][]string
		if !noHeader {
			var h []string
			for _, c := range cols {
				h = append(h, strings.ToUpper(c))
			}
			table = append(table, h)
		}
		for _, p := range pools {
			var row []string
			for _, c := range cols {
				switch c {
				case "name":
					row = append(row, p.Name)
				case "health":
					row = append(row, p.Health)
				case "size":
					row = append(row, "100G")
				case "alloc", "allocated":
					row = append(row, "10G")
				case "free":
					row = append(row, "90G")
				case "cap", "capacity":
					row = append(row, "10%")
				case "frag", "fragmentation":
					row = append(row, "1%")
				case "dedup", "dedupratio":
					row = append(row, "1.00x")
				case "ckpoint", "expandsz", "altroot":
					row = append(row, "-")
				default:
					return z.errf(2, "invalid property '%s'", c)
				}
			}
			table = append(table, row)
		}
		z.printTable(table, !noHeader)
		return 0
	case "status":
		for _, p := range st.Pools {
			if len(args) > 2 && args[2] != p.Name {
				continue
			}
			fmt.Fprintf(e.stdout, "  pool: %s\n state: %s\nconfig:\n\n\tNAME        STATE     READ WRITE CKSUM\n\t%-11s %-9s 0     0     0\n\nerrors: No known data errors\n", p.Name, p.Health, p.Name, p.Health)
			return 0
		}
		if len(args) > 2 {
			return z.errf(1, "cannot open '%s': no such pool", args[2])
		}
		fmt.Fprintln(e.stdout, "no pools available")
		return 0
	}
	fmt.Fprintf(e.stderr, "zpool: '%s' is not modelled by the lab\n", args[1])
	return 2
}

// zfsParsable is a value as -p prints it: sizes in bytes (none is 0),
// times in seconds (zfs(8), -p "Display numbers in parsable (exact)
// values").
func zfsParsable(p, v string) string {
	switch p {
	case "quota", "refquota", "reservation", "refreservation", "recordsize":
		if v == "none" {
			return "0"
		}
		if n, err := zfsNicestrtonum(v); err == nil {
			return strconv.FormatUint(n, 10)
		}
	}
	return v
}
