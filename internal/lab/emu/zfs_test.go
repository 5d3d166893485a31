package emu

import (
	"os"
	"strings"
	"testing"
)

func zfsLab(t *testing.T) *lab {
	t.Helper()
	l := newLab(t, "")
	l.write(ZFSStateFile, string(DefaultZFSState()))
	return l
}

// TestZFSEzjailSequence runs the zfs calls of ezjail-admin's ZFS paths in
// their order (ensure_jailzfs, install, ezjail_splitworld, create with -s,
// delete -w) and checks the datasets and the trees.
func TestZFSEzjailSequence(t *testing.T) {
	l := zfsLab(t)
	if out := l.must("zpool", "list", "-H", "-o", "health", "zroot"); out != "ONLINE\n" {
		t.Errorf("zpool health = %q", out)
	}
	l.fails(1, "zpool", "list", "-H", "-o", "health", "tank")
	// ensure_jailzfs (ezjail-admin:423-431).
	l.fails(1, "zfs", "list", "-H", "-o", "name", "zroot/usr/jails")
	l.must("zfs", "create", "-p", "zroot/usr") // exists: -p is a no-op
	l.must("zfs", "create", "-o", "mountpoint=/usr/jails", "zroot/usr/jails")
	if out := l.must("zfs", "list", "-H", "-o", "name", "zroot/usr/jails"); out != "zroot/usr/jails\n" {
		t.Errorf("list = %q", out)
	}
	// install: fulljail, then splitworld's basejail and the rename to newjail.
	l.must("zfs", "create", "zroot/usr/jails/fulljail")
	l.write("/usr/jails/fulljail/etc/passwd", "root:*:0:0::/root:/bin/sh\n")
	l.must("zfs", "create", "zroot/usr/jails/basejail")
	l.must("zfs", "snapshot", "zroot/usr/jails/basejail@20260101_00:00:00")
	l.must("zfs", "rename", "zroot/usr/jails/fulljail", "zroot/usr/jails/newjail")
	if l.read("/usr/jails/newjail/etc/passwd") == "" || exists(l.path("/usr/jails/fulljail")) {
		t.Fatal("rename did not move the inherited mountpoint")
	}
	// create -s 20G of a ZFS jail (ezjail-admin:735-742, 748-752).
	l.must("zfs", "create", "-o", "mountpoint=/usr/jails/db1", "-o", "quota=20G", "zroot/usr/jails/db1")
	l.must("zfs", "snapshot", "zroot/usr/jails/newjail@_vanilla_newjail_")
	l.fails(1, "zfs", "snapshot", "zroot/usr/jails/newjail@_vanilla_newjail_")
	code, stream, errs := l.run("zfs", "send", "zroot/usr/jails/newjail@_vanilla_newjail_")
	if code != 0 {
		t.Fatalf("send: %d %s", code, errs)
	}
	if code, _, errs = l.runIn(stream, "zfs", "receive", "zroot/usr/jails/db1"); code != 1 || !strings.Contains(errs, "must specify -F") {
		t.Errorf("receive without -F: %q", errs)
	}
	if code, _, errs := l.runIn(stream, "zfs", "receive", "-F", "zroot/usr/jails/db1"); code != 0 {
		t.Fatalf("receive -F: %d %s", code, errs)
	}
	if got := l.read("/usr/jails/db1/etc/passwd"); !strings.HasPrefix(got, "root:") {
		t.Errorf("received tree: passwd %q", got)
	}
	l.must("zfs", "destroy", "zroot/usr/jails/db1@_vanilla_newjail_")
	l.must("zfs", "destroy", "zroot/usr/jails/newjail@_vanilla_newjail_")
	if out := l.must("zfs", "get", "-H", "-o", "value", "quota,mountpoint", "zroot/usr/jails/db1"); out != "20G\n/usr/jails/db1\n" {
		t.Errorf("get quota,mountpoint = %q", out)
	}
	if out := l.must("zfs", "get", "-Hp", "-o", "value", "quota", "zroot/usr/jails/db1"); out != "21474836480\n" {
		t.Errorf("get -p quota = %q", out)
	}
	if out := l.must("zfs", "list", "-H", "-p", "-o", "name,quota", "-t", "filesystem", "-r", "-d", "1", "zroot/usr/jails"); out != "zroot/usr/jails\t0\nzroot/usr/jails/basejail\t0\nzroot/usr/jails/db1\t21474836480\nzroot/usr/jails/newjail\t0\n" {
		t.Errorf("list -p name,quota -d 1 = %q", out)
	}
	l.must("zfs", "set", "quota=1.5G", "zroot/usr/jails/db1")
	if out := l.must("zfs", "get", "-H", "-o", "value,source", "quota", "zroot/usr/jails/db1"); out != "1.50G\tlocal\n" {
		t.Errorf("quota after set = %q", out)
	}
	if errs := l.fails(1, "zfs", "set", "quota=lots", "zroot/usr/jails/db1"); !strings.Contains(errs, "bad numeric value") {
		t.Errorf("bad quota: %q", errs)
	}
	if out := l.must("zfs", "get", "-H", "-o", "value,source", "mountpoint", "zroot/usr/jails/newjail"); out != "/usr/jails/newjail\tinherited from zroot/usr/jails\n" {
		t.Errorf("inherited mountpoint = %q", out)
	}
	// A running jail's file system is busy.
	l.write(runningDir+"/db1", "jid=1\nname=db1\nhostname=db1\npath=/usr/jails/db1\nip=lo1|10.0.0.1\n")
	if errs := l.fails(1, "zfs", "destroy", "-r", "zroot/usr/jails/db1"); !strings.Contains(errs, "busy") {
		t.Errorf("destroy of a running jail's dataset: %q", errs)
	}
	os.Remove(l.path(runningDir + "/db1"))
	// delete -w: the parent has children, -r takes them all.
	if errs := l.fails(1, "zfs", "destroy", "zroot/usr/jails"); !strings.Contains(errs, "filesystem has children") {
		t.Errorf("destroy with children: %q", errs)
	}
	l.must("zfs", "destroy", "-r", "zroot/usr/jails/db1")
	if exists(l.path("/usr/jails/db1")) {
		t.Error("destroy left the mountpoint directory")
	}
	l.fails(1, "zfs", "list", "zroot/usr/jails/db1")
	out := l.must("zfs", "list", "-H", "-t", "snapshot", "-o", "name")
	if out != "zroot/usr/jails/basejail@20260101_00:00:00\n" {
		t.Errorf("snapshots = %q", out)
	}
}

func TestZFSRefusals(t *testing.T) {
	l := zfsLab(t)
	for _, tt := range []struct {
		args []string
		want string
	}{
		{[]string{"zfs", "create", "zroot/a/b"}, "parent does not exist"},
		{[]string{"zfs", "create", "tank/a"}, "no such pool"},
		{[]string{"zfs", "create", "zroot/tmp"}, "dataset already exists"},
		{[]string{"zfs", "create", "-o", "mountpoint=rel", "zroot/x"}, "absolute path"},
		{[]string{"zfs", "create", "-o", "colour=red", "zroot/x"}, "invalid property 'colour'"},
		{[]string{"zfs", "set", "used=1G", "zroot/tmp"}, "'used' is readonly"},
		{[]string{"zfs", "snapshot", "zroot/nope@s"}, "dataset does not exist"},
		{[]string{"zfs", "rename", "zroot/tmp", "tank/tmp"}, "same pool"},
	} {
		if errs := l.fails(1, tt.args...); !strings.Contains(errs, tt.want) {
			t.Errorf("%v: stderr %q, want %q", tt.args, errs, tt.want)
		}
	}
	if errs := l.fails(2, "zfs", "jail", "1", "zroot/tmp"); !strings.Contains(errs, "not modelled") {
		t.Errorf("zfs jail: %q", errs)
	}
	// A non-empty directory cannot be mounted over in the lab.
	l.write("/srv/x/file", "x")
	if errs := l.fails(1, "zfs", "create", "-o", "mountpoint=/srv/x", "zroot/srv"); !strings.Contains(errs, "not empty") {
		t.Errorf("mount over files: %q", errs)
	}
}

func TestZFSNicenum(t *testing.T) {
	for _, tt := range []struct {
		in   string
		want string
	}{{"20G", "20G"}, {"20g", "20G"}, {"1.5G", "1.50G"}, {"512M", "512M"}, {"1024", "1K"}, {"100", "100"}, {"10GB", "10G"}, {"1.25T", "1.25T"}, {"1000M", "1000M"}} {
		n, err := zfsNicestrtonum(tt.in)
		if err != nil {
			t.Errorf("%s: %v", tt.in, err)
			continue
		}
		if got := zfsNicenum(n); got != tt.want {
			t.Errorf("%s: %s, want %s", tt.in, got, tt.want)
		}
	}
	for _, bad := range []string{"", "G", "1Q", "1.5X"} {
		if _, err := zfsNicestrtonum(bad); err == nil {
			t.Errorf("%q accepted", bad)
		}
	}
}
