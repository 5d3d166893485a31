package emu

import (
	"fmt"
	"strings"
)

// mount_nullfs(8) and umount(8), as far as arbo uses them: a no-symlink
// view of a jail root (mount_nullfs -o nosymfollow ROOT VIEW), through
// which apply reads and writes the jail's files so that no symlink the
// jail plants can lead it out (issue 11, item 1).
//
// FreeBSD: mount_nullfs takes -o through getmntopts with MOPT_STDOPTS
// (sbin/mount_nullfs/mount_nullfs.c, mopts[]), and MOPT_STDOPTS holds
// MOPT_NOSYMFOLLOW { "symfollow", 1, MNT_NOSYMFOLLOW } (sbin/mount/mntopts.h);
// the flag is the nullfs mount's own, and vfs_lookup.c lookup() refuses to
// follow a symlink whose vnode is on such a mount, as an intermediate
// component or a followed last one: `if (dp->v_mount->mnt_flag &
// MNT_NOSYMFOLLOW) { error = EACCES; ... }`. mount_nullfs refuses a target
// inside the source or the other way round (subdir(), "are not distinct
// paths"). nullfs shows the lower file system only: mounts under the
// source (a jail's devfs, its basejail) are not crossed.
//
// The lab: a Linux bind mount (not recursive, so submounts are not crossed
// either), remounted MS_NOSYMFOLLOW (Linux 5.10; fs/namei.c refuses a
// symlink on such a mount with ELOOP, which OpenSSH's sftp-server reports as
// "no such file"). Linux-only; mountView/unmountView are in
// nullfs_linux.go and nullfs_other.go.

// viewPrev are the mount_nullfs and umount stand-ins registered before
// these (h-lab's mount table, when present): they still record what they
// record; these add the real mount a no-symlink view needs.
var viewPrev = map[string]command{}

func init() {
	for _, n := range []string{"mount_nullfs", "umount"} {
		if c, ok := commands[n]; ok {
			viewPrev[n] = c
		}
	}
	commands["mount_nullfs"] = mountNullfsView
	commands["umount"] = umountView
	Links["mount_nullfs"] = []string{"/sbin/mount_nullfs"}
	Links["umount"] = []string{"/sbin/umount"}
}

// mountNullfsView: mount_nullfs [-o options] target mount-point. With
// nosymfollow (or when no other stand-in models nullfs) the mount is real,
// and only real.
func mountNullfsView(e *env, args []string) int {
	opts, rest, err := getopts(args[1:], "o:")
	if err != nil || len(rest) != 2 {
		fmt.Fprintln(e.stderr, "usage: mount_nullfs [-o options] target mount-point")
		return 1
	}
	var ro, nosymfollow bool
	for _, o := range opts {
		for _, w := range strings.Split(o[1], ",") {
			switch w {
			case "ro", "rdonly":
				ro = true
			case "nosymfollow":
				nosymfollow = true
			case "rw", "":
			default:
				// getmntopts(3) without a matching entry: FreeBSD passes it on
				// to nmount, which refuses what nullfs does not know.
				fmt.Fprintf(e.stderr, "mount_nullfs: %s: the lab knows ro and nosymfollow only\n", w)
				return 1
			}
		}
	}
	src, dst := strings.TrimRight(rest[0], "/"), strings.TrimRight(rest[1], "/")
	if src == "" || dst == "" || !strings.HasPrefix(src, "/") || !strings.HasPrefix(dst, "/") {
		fmt.Fprintln(e.stderr, "mount_nullfs: the lab needs absolute paths")
		return 1
	}
	if subdir(dst, src) || subdir(src, dst) {
		fmt.Fprintf(e.stderr, "mount_nullfs: %s (%s) and %s are not distinct paths\n", rest[0], src, rest[1])
		return 64 // EX_USAGE
	}
	prev := viewPrev["mount_nullfs"]
	if !nosymfollow && prev != nil {
		return prev(e, args)
	}
	// A real mount only: the other stand-in's table models the jails'
	// own mounts, and a view left by a cut run must not stay "busy" there
	// after the real one is gone.
	if err := mountView(e.p(src), e.p(dst), ro, nosymfollow); err != nil {
		fmt.Fprintf(e.stderr, "mount_nullfs: %s: %v\n", dst, err)
		return 1
	}
	return 0
}

// subdir is mount_nullfs.c's: p is dir or below it.
func subdir(p, dir string) bool {
	return p == dir || strings.HasPrefix(p, dir+"/")
}

// umountView: umount [-f] node ...: a real mount is unmounted; the other
// stand-in, if any, forgets what it recorded.
func umountView(e *env, args []string) int {
	_, rest, err := getopts(args[1:], "afnvt:F:h:")
	if err != nil || len(rest) < 1 {
		fmt.Fprintln(e.stderr, "usage: umount [-fnv] special ... | node ...")
		return 1
	}
	code := 0
	for _, p := range rest {
		realErr := unmountView(e.p(p))
		if realErr == nil {
			continue
		}
		if prev := viewPrev["umount"]; prev != nil {
			var msg strings.Builder
			pe := *e
			pe.stderr = &msg
			if prev(&pe, []string{args[0], p}) == 0 {
				continue
			}
			fmt.Fprint(e.stderr, msg.String())
			code = 1
			continue
		}
		if realErr != nil {
			// umount(8): "not a file system root directory" for a path
			// nothing is mounted on.
			fmt.Fprintf(e.stderr, "umount: %s: not a file system root directory\n", p)
			code = 1
		}
	}
	return code
}
