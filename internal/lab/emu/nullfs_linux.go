//go:build linux

package emu

import "golang.org/x/sys/unix"

// mountView bind-mounts src at dst, then makes the mount read-only and/or
// no-symlink-following (a bind mount takes its flags only on a remount).
func mountView(src, dst string, ro, nosymfollow bool) error {
	if err := unix.Mount(src, dst, "", unix.MS_BIND, ""); err != nil {
		return err
	}
	flags := uintptr(unix.MS_BIND | unix.MS_REMOUNT)
	if ro {
		flags |= unix.MS_RDONLY
	}
	if nosymfollow {
		flags |= unix.MS_NOSYMFOLLOW
	}
	if err := unix.Mount("", dst, "", flags, ""); err != nil {
		_ = unix.Unmount(dst, unix.MNT_DETACH)
		return err
	}
	return nil
}

func unmountView(p string) error { return unix.Unmount(p, 0) }
