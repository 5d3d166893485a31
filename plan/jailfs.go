package plan

import (
	"context"
	"errors"
	"fmt"
	"io/fs"
	"path"
	"sort"
	"strings"
	"sync"

	"github.com/arbo-project/arbo/remote"
	"github.com/arbo-project/arbo/state"
)

// JailViewDir holds apply's no-symlink views of jail roots: while apply
// holds a host's lock, each jail root is mounted at JailViewDir/<name> with
// `mount_nullfs -o nosymfollow`, and every read and write of a file inside
// the jail goes through that view (issue 11, item 1).
//
// Why a mount: a jail's root can swap a directory for a symlink at any
// moment, also between arbo's lstat of every component and its write. SFTP
// cannot open a path without following symlinks: OpenSSH's sftp-server maps
// the protocol's open flags to READ/WRITE/APPEND/CREAT/TRUNC/EXCL only
// (sftp-server.c, flags_from_portable), and lookup follows every
// intermediate symlink. On a mount with MNT_NOSYMFOLLOW the kernel itself
// refuses to follow any symlink, in the same lookup that opens, renames or
// creates: vfs_lookup.c lookup(), "Check for symbolic link": `if
// (dp->v_mount->mnt_flag & MNT_NOSYMFOLLOW) { error = EACCES; goto bad2; }`,
// for an intermediate component and a followed last one alike. No race
// can get between that check and the write. mount_nullfs takes
// `-o nosymfollow` through getmntopts and MOPT_STDOPTS
// (sbin/mount_nullfs/mount_nullfs.c mopts[]; sbin/mount/mntopts.h
// MOPT_NOSYMFOLLOW), the flag belongs to the nullfs mount whose vnodes
// every lookup below it returns, and nullfs does not cross the mounts
// under its source (a jail's devfs or basejail). The directory is 0700 in
// /var/db/arbo (0700): nothing in a jail can reach it.
const JailViewDir = StateDir + "/jailfs"

// mountViewsScript mounts a view per (root, view) pair given as arguments
// after the view directory, and prints each root it mounted. A view left by
// a run that was cut or killed is unmounted first; a root that does not
// exist (a jail still to be created) is skipped. One line: root's shell on
// older FreeBSD is csh, which cannot take a quoted newline. The script is a
// constant; the paths are arguments arbo builds from validated jail names.
const mountViewsScript = `d=$1; shift; mkdir -p "$d" && chmod 700 "$d" || exit 1; ` +
	`while [ $# -ge 2 ]; do r=$1; v=$2; shift 2; i=0; ` +
	`while [ $i -lt 8 ] && umount "$v" 2>/dev/null; do i=$((i+1)); done; ` +
	`if [ -d "$v" ]; then rmdir "$v" || { echo "cannot clear $v: a view left mounted?" >&2; exit 1; }; fi; ` +
	`[ -d "$r" ] || continue; mkdir -m 700 "$v" || exit 1; ` +
	`mount_nullfs -o nosymfollow "$r" "$v" || { rmdir "$v"; exit 1; }; echo "$r"; done`

// unmountViewsScript unmounts the views given as arguments and removes
// their directories.
const unmountViewsScript = `s=0; for v in "$@"; do umount "$v" && rmdir "$v" || s=1; done; exit $s`

// jailView is a Target whose paths inside jail roots go through the
// roots' no-symlink views. Paths outside them are the machine's own.
type jailView struct {
	Target
	mu    sync.Mutex
	views map[string]string // jail root → its mounted view ("" = not mounted: the root did not exist)
}

// jailRootsOf lists the jail roots of a machine's desired state: those of
// its jails and those its files live in.
func jailRootsOf(d *state.Machine) []string {
	set := map[string]bool{}
	for _, j := range d.Jails {
		set[j.Root] = true
	}
	for _, f := range d.Files {
		if f.Jail != "" {
			set[path.Join(JailDir, f.Jail)] = true
		}
	}
	delete(set, "")
	return sortedKeys(set)
}

// viewOf is the view directory of a jail root.
func viewOf(root string) string { return path.Join(JailViewDir, path.Base(root)) }

// openViews mounts a view of every existing jail root of d on t. The caller
// holds the machine's lock and must close the views.
func openViews(ctx context.Context, t Target, d *state.Machine) (*jailView, error) {
	v := &jailView{Target: t, views: map[string]string{}}
	roots := jailRootsOf(d)
	for _, r := range roots {
		v.views[r] = ""
	}
	return v, v.mount(ctx, roots)
}

// mount mounts views of the given roots that exist.
func (v *jailView) mount(ctx context.Context, roots []string) error {
	if len(roots) == 0 {
		return nil
	}
	argv := []string{"/bin/sh", "-c", mountViewsScript, "arbo-jailfs", JailViewDir}
	for _, r := range roots {
		argv = append(argv, r, viewOf(r))
	}
	res, err := v.Target.Run(ctx, argv, remote.RunOpts{})
	if err == nil && res.Exit != 0 {
		err = fmt.Errorf("exit %d: %s", res.Exit, strings.TrimSpace(string(res.Stderr)))
	}
	// Whatever it printed is mounted, also when a later one failed.
	v.mu.Lock()
	for _, l := range strings.Split(string(res.Stdout), "\n") {
		if _, ok := v.views[l]; ok && l != "" {
			v.views[l] = viewOf(l)
		}
	}
	v.mu.Unlock()
	if err != nil {
		return fmt.Errorf("mounting the no-symlink views of the jail roots (mount_nullfs -o nosymfollow under %s; needs FreeBSD 13 or later): %w", JailViewDir, err)
	}
	return nil
}

// close unmounts every view. Best effort: a view a cut run leaves is
// unmounted by the next run before it mounts its own.
func (v *jailView) close(ctx context.Context) error {
	v.mu.Lock()
	var mounted []string
	for r, view := range v.views {
		if view != "" {
			mounted = append(mounted, view)
			v.views[r] = ""
		}
	}
	v.mu.Unlock()
	if len(mounted) == 0 {
		return nil
	}
	sort.Strings(mounted)
	res, err := v.Target.Run(context.WithoutCancel(ctx), append([]string{"/bin/sh", "-c", unmountViewsScript, "arbo-jailfs"}, mounted...), remote.RunOpts{})
	if err == nil && res.Exit != 0 {
		err = fmt.Errorf("unmounting %s: %s", strings.Join(mounted, " "), strings.TrimSpace(string(res.Stderr)))
	}
	return err
}

// errNoView says a write inside a jail root found no view to go through.
var errNoView = errors.New("no no-symlink view of its jail root is mounted")

// resolve maps p to its view. write: p is about to be changed, which needs
// a mounted view; a read of a root without one (it did not exist when the
// views were mounted) reads the path as it is, where nothing exists.
func (v *jailView) resolve(p string, write bool) (string, error) {
	v.mu.Lock()
	defer v.mu.Unlock()
	for r, view := range v.views {
		if p != r && !strings.HasPrefix(p, r+"/") {
			continue
		}
		if view == "" {
			if write {
				return "", fmt.Errorf("%s: %w", p, errNoView)
			}
			return p, nil
		}
		return view + strings.TrimPrefix(p, r), nil
	}
	return p, nil
}

func (v *jailView) ReadFiles(ctx context.Context, paths []string) (map[string][]byte, error) {
	back := make(map[string]string, len(paths))
	mapped := make([]string, 0, len(paths))
	for _, p := range paths {
		m, err := v.resolve(p, false)
		if err != nil {
			return nil, err
		}
		back[m] = p
		mapped = append(mapped, m)
	}
	got, err := v.Target.ReadFiles(ctx, mapped)
	if err != nil {
		return nil, v.unmap(err)
	}
	out := make(map[string][]byte, len(got))
	for m, b := range got {
		out[back[m]] = b
	}
	return out, nil
}

func (v *jailView) Stat(p string) (fs.FileInfo, error) {
	m, err := v.resolve(p, false)
	if err != nil {
		return nil, err
	}
	fi, err := v.Target.Stat(m)
	return fi, v.unmap(err)
}

func (v *jailView) Lstat(p string) (fs.FileInfo, error) {
	m, err := v.resolve(p, false)
	if err != nil {
		return nil, err
	}
	fi, err := v.Target.Lstat(m)
	return fi, v.unmap(err)
}

func (v *jailView) WriteFileAtomic(p string, content []byte, mode fs.FileMode, uid, gid int) error {
	m, err := v.resolve(p, true)
	if err != nil {
		return err
	}
	return v.unmap(v.Target.WriteFileAtomic(m, content, mode, uid, gid))
}

func (v *jailView) WriteFileAtomicKeepPrev(p string, content []byte, mode fs.FileMode, uid, gid int) error {
	m, err := v.resolve(p, true)
	if err != nil {
		return err
	}
	return v.unmap(v.Target.WriteFileAtomicKeepPrev(m, content, mode, uid, gid))
}

func (v *jailView) MkdirAll(p string, mode fs.FileMode) error {
	m, err := v.resolve(p, true)
	if err != nil {
		return err
	}
	return v.unmap(v.Target.MkdirAll(m, mode))
}

func (v *jailView) Remove(p string) error {
	m, err := v.resolve(p, true)
	if err != nil {
		return err
	}
	return v.unmap(v.Target.Remove(m))
}

func (v *jailView) CheckNoSymlinks(root, p string) error {
	mr, err := v.resolve(root, false)
	if err != nil {
		return err
	}
	mp, err := v.resolve(p, false)
	if err != nil {
		return err
	}
	return v.unmap(v.Target.CheckNoSymlinks(mr, mp))
}

// unmap says, in an error about a view path, which jail path it was.
func (v *jailView) unmap(err error) error {
	if err == nil {
		return nil
	}
	v.mu.Lock()
	defer v.mu.Unlock()
	msg := err.Error()
	for r, view := range v.views {
		if view != "" && strings.Contains(msg, view) {
			return &viewError{msg: strings.ReplaceAll(msg, view, r) + " (through the no-symlink view " + view + ", where the kernel refuses to follow any symlink: did the jail plant one?)", err: err}
		}
	}
	return err
}

// viewError is an error whose text names the jail path instead of its view.
type viewError struct {
	msg string
	err error
}

func (e *viewError) Error() string { return e.msg }
func (e *viewError) Unwrap() error { return e.err }
