//go:build linux

package emu

import (
	"errors"
	"os"
	"strings"
	"syscall"
	"testing"
)

// TestNullfsView: mount_nullfs -o nosymfollow is a real mount under which
// the kernel follows no symlink, at any component; umount ends it.
func TestNullfsView(t *testing.T) {
	if os.Geteuid() != 0 {
		t.Skip("mounting needs root")
	}
	l := newLab(t, "")
	l.write("/usr/jails/app1/etc/resolv.conf", "nameserver 10.0.0.1\n")
	l.write("/etc/secret", "host\n")
	// A planted link to the machine's /etc (as a host path: this test runs
	// outside a chroot; were it followed, the write below lands there).
	if err := os.Symlink(l.path("/etc"), l.path("/usr/jails/app1/usr")); err != nil {
		t.Fatal(err)
	}
	if err := os.Symlink("resolv.conf", l.path("/usr/jails/app1/etc/link")); err != nil {
		t.Fatal(err)
	}
	if err := os.MkdirAll(l.path("/var/db/arbo/jailfs/app1"), 0o700); err != nil {
		t.Fatal(err)
	}
	l.must("mount_nullfs", "-o", "nosymfollow", "/usr/jails/app1", "/var/db/arbo/jailfs/app1")
	t.Cleanup(func() { _ = unmountView(l.path("/var/db/arbo/jailfs/app1")) })
	if got := l.read("/var/db/arbo/jailfs/app1/etc/resolv.conf"); got != "nameserver 10.0.0.1\n" {
		t.Errorf("through the view: %q", got)
	}
	for _, p := range []string{"/var/db/arbo/jailfs/app1/etc/link", "/var/db/arbo/jailfs/app1/usr/secret"} {
		_, err := os.ReadFile(l.path(p))
		if !errors.Is(err, syscall.ELOOP) {
			t.Errorf("%s: want ELOOP (a symlink refused), got %v", p, err)
		}
	}
	if err := os.WriteFile(l.path("/var/db/arbo/jailfs/app1/usr/new"), []byte("x"), 0o600); !errors.Is(err, syscall.ELOOP) {
		t.Errorf("a write through a symlinked directory: want ELOOP, got %v", err)
	}
	if _, err := os.Stat(l.path("/etc/new")); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("the write went through the link: %v", err)
	}
	// A symlink is still a name: lstat sees it, and a rename replaces it.
	if fi, err := os.Lstat(l.path("/var/db/arbo/jailfs/app1/etc/link")); err != nil || fi.Mode()&os.ModeSymlink == 0 {
		t.Errorf("lstat of the link: %v %v", fi, err)
	}
	if errs := l.fails(64, "mount_nullfs", "-o", "nosymfollow", "/usr/jails", "/usr/jails/app1/mnt"); !strings.Contains(errs, "are not distinct paths") {
		t.Errorf("nested paths: %s", errs)
	}
	l.fails(1, "mount_nullfs", "-o", "union", "/usr/jails/app1", "/var/db/arbo/jailfs/app1")
	l.must("umount", "/var/db/arbo/jailfs/app1")
	if _, err := os.Stat(l.path("/var/db/arbo/jailfs/app1/etc")); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("after umount the view still shows the jail: %v", err)
	}
	if errs := l.fails(1, "umount", "/var/db/arbo/jailfs/app1"); !strings.Contains(errs, "not a file system root directory") {
		t.Errorf("umount of nothing: %s", errs)
	}
}

func TestNullfsViewRemount(t *testing.T) {
	if os.Geteuid() != 0 {
		t.Skip("mounting needs root")
	}
	l := newLab(t, "")
	l.write("/usr/jails/app1/etc/resolv.conf", "x\n")
	if err := os.MkdirAll(l.path("/var/db/arbo/jailfs/app1"), 0o700); err != nil {
		t.Fatal(err)
	}
	for i := 0; i < 3; i++ {
		l.must("mount_nullfs", "-o", "nosymfollow", "/usr/jails/app1", "/var/db/arbo/jailfs/app1")
		t.Log(l.must("mount"))
		l.must("umount", "/var/db/arbo/jailfs/app1")
		t.Log(l.must("mount"))
	}
}
