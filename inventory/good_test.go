package inventory

import (
	"net/netip"
	"path/filepath"
	"testing"
)

// Every file under testdata/good and every example must load.
func TestGoodFilesLoad(t *testing.T) {
	files, _ := filepath.Glob("testdata/good/*.yaml")
	ex, _ := filepath.Glob("../examples/*/topology.yaml")
	files = append(files, ex...)
	if len(files) < 3 {
		t.Fatalf("only %d good files", len(files))
	}
	for _, f := range files {
		if _, err := Load(f); err != nil {
			t.Errorf("%s:\n%v", f, err)
		}
	}
}

func TestLoadSingleHost(t *testing.T) {
	c, err := Load("../examples/single-host/topology.yaml")
	if err != nil {
		t.Fatal(err)
	}
	h := c.Host("box")
	dev, router, ok := c.WayOut(h)
	if !ok || dev != "em0" || router != netip.MustParseAddr("192.168.10.1") {
		t.Errorf("WayOut = %s %s %v", dev, router, ok)
	}
	if h.ZFS == nil || h.ZFS.Dataset != "zroot/usr/jails" {
		t.Errorf("zfs = %+v", h.ZFS)
	}
	db := c.Jail("db1")
	if db.ZFS == nil || db.ZFS.Quota != "20G" || db.Flavour != "erlang" {
		t.Errorf("db1 = %+v", db)
	}
	if got := c.Jail("app1").StartAfter; len(got) != 2 || got[1] != "db1" {
		t.Errorf("start_after = %v", got)
	}
	if c.Jail("ns1").Flavour != "" {
		t.Errorf("ns1 flavour = %q", c.Jail("ns1").Flavour)
	}
	if len(c.DNS.Records) != 2 || c.DNS.Records[1].SRV[0] != (SRV{10, 5, 8443, "app1"}) {
		t.Errorf("records = %+v", c.DNS.Records)
	}
	if f := c.Flavour("erlang"); f == nil || f.Files[0].Content != "managed by arbo\n" || f.Packages[0] != "erlang-runtime27" {
		t.Errorf("flavour = %+v", f)
	}
	if len(c.Accept) != 2 || c.Accept[1].ID != "ARBO009" || c.Accept[1].Machine != "cluster" {
		t.Errorf("accept = %+v", c.Accept)
	}
	if r := c.Resolvers(); len(r) != 1 || r[0] != netip.MustParseAddr("10.30.3.10") {
		t.Errorf("resolvers = %v", r)
	}
	if h.RCConf[0] != (KV{"ntpd_enable", "YES", h.RCConf[0].Pos}) {
		t.Errorf("rc_conf = %+v", h.RCConf)
	}
	if m := c.ManagementPrefixes("box"); len(m) != 1 || m[0] != netip.MustParsePrefix("192.168.10.0/24") {
		t.Errorf("management = %v", m)
	}
}
