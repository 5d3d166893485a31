package jail

import (
	"bytes"
	"path/filepath"
	"slices"
	"testing"

	"github.com/arbo-project/arbo/internal/golden"
	"github.com/arbo-project/arbo/state"
	"github.com/arbo-project/arbo/templates"
)

// ezjail-admin create -s takes what its tr/sed/bc pipeline turns into an
// integer above 0: digits with K, M or G (ezjail-admin:576-579); zfs(8)
// takes more (fractions, T, P, E), which arbo sets with zfs set quota.
func TestCreateSizeOK(t *testing.T) {
	for q, want := range map[string]bool{
		"20G": true, "512M": true, "100K": true, "1073741824": true,
		"1.5G": false, "2T": false, "1P": false, "0": false, "none": false, "": false, "05G": false,
	} {
		if got := CreateSizeOK(q); got != want {
			t.Errorf("CreateSizeOK(%q) = %v, want %v", q, got, want)
		}
	}
}

func TestCreateArgsQuota(t *testing.T) {
	tests := []struct {
		j         state.Jail
		want      []string
		afterwith bool // zfs set quota after the create
	}{
		{state.Jail{Name: "db1", IP: "lo1|10.0.0.1", ZFS: "zroot/j/db1", Quota: "20G"},
			[]string{EzjailAdmin, "create", "-s", "20G", "db1", "lo1|10.0.0.1"}, false},
		{state.Jail{Name: "db1", IP: "lo1|10.0.0.1", ZFS: "zroot/j/db1", Quota: "1.5T", Flavour: "f"},
			[]string{EzjailAdmin, "create", "-f", "f", "db1", "lo1|10.0.0.1"}, true},
		{state.Jail{Name: "db1", IP: "lo1|10.0.0.1", ZFS: "zroot/j/db1", Quota: "none"},
			[]string{EzjailAdmin, "create", "db1", "lo1|10.0.0.1"}, false},
		// Not a ZFS host: -s would make ezjail parse an image size for nothing.
		{state.Jail{Name: "db1", IP: "lo1|10.0.0.1", Quota: "20G"},
			[]string{EzjailAdmin, "create", "db1", "lo1|10.0.0.1"}, false},
	}
	for _, tt := range tests {
		if got := CreateArgs(tt.j); !slices.Equal(got, tt.want) {
			t.Errorf("CreateArgs(%+v) = %v, want %v", tt.j, got, tt.want)
		}
		if got := QuotaAfterCreate(tt.j); got != tt.afterwith {
			t.Errorf("QuotaAfterCreate(%+v) = %v, want %v", tt.j, got, tt.afterwith)
		}
	}
}

// zfs_nicestrtonum: 1024 per suffix step, a fraction truncated to bytes.
func TestQuotaBytes(t *testing.T) {
	for q, want := range map[string]uint64{
		"none": 0, "0": 0, "1024": 1024, "1K": 1024, "20G": 20 << 30, "1.5T": 3 << 39, "512M": 512 << 20, "2E": 2 << 60,
	} {
		got, err := QuotaBytes(q)
		if err != nil || got != want {
			t.Errorf("QuotaBytes(%q) = %d, %v; want %d", q, got, err, want)
		}
	}
	for _, bad := range []string{"", "G", "1e3", "-1G", "1GB", "ten"} {
		if _, err := QuotaBytes(bad); err == nil {
			t.Errorf("QuotaBytes(%q): no error", bad)
		}
	}
}

// ezjail's ensure_jailzfs (ezjail-admin:444-448): the parents with -p, then
// the dataset itself without -p, mounted at the jail directory.
func TestZFSParentCmds(t *testing.T) {
	got := ZFSParentCmds("zroot/usr/jails")
	want := [][]string{{"zfs", "create", "-p", "zroot/usr"}, {"zfs", "create", "-o", "mountpoint=/usr/jails", "zroot/usr/jails"}}
	if !slices.EqualFunc(got, want, slices.Equal) {
		t.Errorf("ZFSParentCmds = %v, want %v", got, want)
	}
	if got := ZFSParentCmds("tank"); len(got) != 1 || got[0][len(got[0])-1] != "tank" {
		t.Errorf("ZFSParentCmds(tank) = %v", got)
	}
	if got := ZFSParentCmds("tank/jails"); len(got) != 1 {
		t.Errorf("ZFSParentCmds(tank/jails) = %v: its parent is the pool", got)
	}
}

// A ZFS host's ezjail.conf comes in two forms: with ezjail_use_zfs for a
// basejail of datasets (what install makes with it, ezjail-admin:275-278),
// without it for a basejail of plain directories, where create's zfs send
// of newjail@ fails (ezjail-admin:747-757). Both are golden files.
func TestEzjailConfVariants(t *testing.T) {
	c := golden.Example(t, "single-host")
	files, _, err := Render(c, c.Hosts[0], templates.Default())
	if err != nil {
		t.Fatal(err)
	}
	for _, f := range files {
		if f.Path != EzjailConf {
			continue
		}
		if f.Variants == nil || !bytes.Equal(f.Content, f.Variants.Datasets) {
			t.Fatalf("ezjail.conf: no variants, or Content is not the datasets form")
		}
		if !bytes.Contains(f.Variants.Datasets, []byte(`ezjail_use_zfs="YES"`)) || bytes.Contains(f.Variants.Plain, []byte("ezjail_use_zfs=")) {
			t.Errorf("ezjail_use_zfs in the wrong form:\n%s\n---\n%s", f.Variants.Datasets, f.Variants.Plain)
		}
		golden.Check(t, filepath.Join("single-host", c.Hosts[0].Name, "ezjail.conf.plain-base"), f.Variants.Plain)
		return
	}
	t.Fatal("no ezjail.conf")
}
