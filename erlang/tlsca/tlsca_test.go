package tlsca

import (
	"crypto/x509"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/arbo-project/arbo/inventory"
)

// cluster loads a copy of a topology with erlang.tls in a fresh directory.
func cluster(t *testing.T, nodeHost string) *inventory.Cluster {
	t.Helper()
	dir := t.TempDir()
	nh := ""
	if nodeHost != "" {
		nh = ", node_host: " + nodeHost
	}
	src := `version: 1
cluster: t
domain: t.internal
networks:
  lan: { cidr: 192.168.1.0/24 }
  app: { cidr: 10.1.0.0/24 }
tiers:
  app: { role: app, network: app }
erlang: { tiers: [app], basename: t, dist_ports: 9100-9101, cookie_file: secrets/cookie, discovery: app, consensus: 1, tls: true` + nh + ` }
hosts:
  - name: h1
    ssh: { address: 192.168.1.11 }
    interfaces: [{ device: em0, network: lan, address: 192.168.1.11 }]
    jails: [{ name: a1, tier: app, ip: 10.1.0.11 }, { name: a2, tier: app, ip: 10.1.0.12 }]
`
	p := filepath.Join(dir, "topology.yaml")
	if err := os.WriteFile(p, []byte(src), 0o644); err != nil {
		t.Fatal(err)
	}
	c, err := inventory.Load(p)
	if err != nil {
		t.Fatal(err)
	}
	return c
}

func readCert(t *testing.T, path string) *x509.Certificate {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	c, err := parseCert(b)
	if err != nil {
		t.Fatal(err)
	}
	return c
}

var now = time.Date(2026, 12, 6, 3, 0, 0, 0, time.UTC)

func TestInitIssueLoad(t *testing.T) {
	c := cluster(t, "")
	l := For(c)

	_, err := Load(c)
	if err == nil || !strings.Contains(err.Error(), "arbo erlang ca init "+c.File) || !strings.Contains(err.Error(), l.CACert()) {
		t.Fatalf("Load before init: %v", err)
	}
	if ps := Inspect(c, now); len(ps) != 1 || ps[0].Subject != "ca" || !ps[0].Error {
		t.Fatalf("Inspect before init: %+v", ps)
	}

	acts, err := Init(c, now)
	if err != nil {
		t.Fatal(err)
	}
	if len(acts) != 3 || acts[0].What != "created the CA" || acts[1].What != "issued" || acts[2].Node != "t@10.1.0.12" {
		t.Fatalf("actions: %+v", acts)
	}
	st, _ := os.Stat(l.Dir)
	if st.Mode().Perm() != 0o700 {
		t.Errorf("dir mode %04o", st.Mode().Perm())
	}
	for _, k := range []string{l.CAKey(), l.NodeKey("a1"), l.NodeKey("a2")} {
		st, err := os.Stat(k)
		if err != nil || st.Mode().Perm() != 0o600 {
			t.Errorf("%s: %v mode %v", k, err, st.Mode())
		}
	}
	ca := readCert(t, l.CACert())
	if !ca.IsCA || !ca.NotAfter.Equal(now.Add(CAValidity).Truncate(time.Second)) {
		t.Errorf("CA: IsCA %v NotAfter %v", ca.IsCA, ca.NotAfter)
	}
	a1 := readCert(t, l.NodeCert("a1"))
	if a1.Subject.CommonName != "t@10.1.0.11" || len(a1.IPAddresses) != 1 || a1.IPAddresses[0].String() != "10.1.0.11" ||
		len(a1.DNSNames) != 1 || a1.DNSNames[0] != "10.1.0.11" {
		t.Errorf("a1: CN %s IPs %v DNS %v", a1.Subject.CommonName, a1.IPAddresses, a1.DNSNames)
	}
	pool := x509.NewCertPool()
	pool.AddCert(ca)
	if _, err := a1.Verify(x509.VerifyOptions{Roots: pool, CurrentTime: now, DNSName: "10.1.0.11",
		KeyUsages: []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth, x509.ExtKeyUsageClientAuth}}); err != nil {
		t.Errorf("a1 does not verify against the CA: %v", err)
	}

	if _, err := Init(c, now); err == nil || !strings.Contains(err.Error(), "already exists") {
		t.Errorf("second init: %v", err)
	}
	if ps := Inspect(c, now); len(ps) != 0 {
		t.Errorf("Inspect after init: %+v", ps)
	}
	files, err := Load(c)
	if err != nil || len(files) != 2 || !strings.Contains(string(files["a2"].Key), "PRIVATE KEY") {
		t.Fatalf("Load: %v %d", err, len(files))
	}

	// Nothing to do; then, 20 days before the end, a renewal.
	acts, err = Issue(c, now.Add(24*time.Hour))
	if err != nil || acts[0].What != "kept" || acts[1].What != "kept" {
		t.Fatalf("issue: %+v %v", acts, err)
	}
	late := now.Add(NodeValidity - 20*24*time.Hour)
	ps := Inspect(c, late)
	if len(ps) != 2 || ps[0].Error || !strings.Contains(ps[0].Message, "arbo erlang certs") {
		t.Errorf("Inspect near the end: %+v", ps)
	}
	if ps := Inspect(c, now.Add(NodeValidity+time.Hour)); len(ps) != 2 || !ps[0].Error || !strings.Contains(ps[0].Message, "expired") {
		t.Errorf("Inspect after the end: %+v", ps)
	}
	acts, err = Issue(c, late)
	if err != nil || acts[0].What != "renewed" || !strings.Contains(acts[0].Why, "ends on") {
		t.Fatalf("renewal: %+v %v", acts, err)
	}
	if got := readCert(t, l.NodeCert("a1")); !got.NotAfter.After(a1.NotAfter) {
		t.Errorf("renewed a1 ends %v, the old one %v", got.NotAfter, a1.NotAfter)
	}
	if ps := Inspect(c, now.Add(CAValidity+time.Hour)); len(ps) != 1 || ps[0].Subject != "ca" || !strings.Contains(ps[0].Message, "expired") {
		t.Errorf("Inspect after the CA's end: %+v", ps)
	}
}

func TestRefusals(t *testing.T) {
	c := cluster(t, "")
	l := For(c)
	if _, err := Init(c, now); err != nil {
		t.Fatal(err)
	}
	// a2's certificate and key in a1's place: a certificate of the CA, but
	// for another node.
	for _, p := range [][2]string{{l.NodeCert("a2"), l.NodeCert("a1")}, {l.NodeKey("a2"), l.NodeKey("a1")}} {
		b, _ := os.ReadFile(p[0])
		if err := os.WriteFile(p[1], b, 0o600); err != nil {
			t.Fatal(err)
		}
	}
	_, err := Load(c)
	if err == nil || !strings.Contains(err.Error(), "does not name the node's address 10.1.0.11") || !strings.Contains(err.Error(), "arbo erlang certs") {
		t.Fatalf("swapped certificate: %v", err)
	}
	if ps := Inspect(c, now); len(ps) != 1 || ps[0].Subject != "a1" || !ps[0].Error {
		t.Errorf("Inspect swapped: %+v", ps)
	}
	if acts, err := Issue(c, now); err != nil || acts[0].What != "renewed" || acts[1].What != "kept" {
		t.Fatalf("Issue replaces the wrong one: %+v %v", acts, err)
	}
	if _, err := Load(c); err != nil {
		t.Fatal(err)
	}

	// A key its group can read is refused.
	if err := os.Chmod(l.NodeKey("a2"), 0o640); err != nil {
		t.Fatal(err)
	}
	if _, err := Load(c); err == nil || !strings.Contains(err.Error(), "chmod 600") {
		t.Errorf("group-readable key: %v", err)
	}
	os.Chmod(l.NodeKey("a2"), 0o600)

	// A certificate of another CA is refused.
	other := cluster(t, "")
	if _, err := Init(other, now); err != nil {
		t.Fatal(err)
	}
	ol := For(other)
	for _, p := range [][2]string{{ol.NodeCert("a1"), l.NodeCert("a1")}, {ol.NodeKey("a1"), l.NodeKey("a1")}} {
		b, _ := os.ReadFile(p[0])
		os.WriteFile(p[1], b, 0o600)
	}
	if _, err := Load(c); err == nil || !strings.Contains(err.Error(), "not signed by the cluster CA") {
		t.Errorf("another CA's certificate: %v", err)
	}

	// A missing node certificate names the command that issues it.
	if _, err := Issue(c, now); err != nil {
		t.Fatal(err)
	}
	os.Remove(l.NodeCert("a2"))
	if _, err := Load(c); err == nil || !strings.Contains(err.Error(), "has no certificate") {
		t.Errorf("missing certificate: %v", err)
	}

	// An unreadable CA names the command that creates it; no message holds key material.
	os.Remove(l.CACert())
	for _, err := range []error{func() error { _, err := Load(c); return err }(), func() error { _, err := Issue(c, now); return err }()} {
		if err == nil || !strings.Contains(err.Error(), "arbo erlang ca init") || strings.Contains(err.Error(), "PRIVATE") {
			t.Errorf("missing CA: %v", err)
		}
	}
}

func TestFQDN(t *testing.T) {
	c := cluster(t, "fqdn")
	if _, err := Init(c, now); err != nil {
		t.Fatal(err)
	}
	a1 := readCert(t, For(c).NodeCert("a1"))
	if len(a1.IPAddresses) != 0 || len(a1.DNSNames) != 1 || a1.DNSNames[0] != "a1.t.internal" || a1.Subject.CommonName != "t@a1.t.internal" {
		t.Errorf("a1: %v %v %s", a1.IPAddresses, a1.DNSNames, a1.Subject.CommonName)
	}
	if err := Matches(a1, "a2.t.internal"); err == nil {
		t.Error("a1's certificate matches a2")
	}
	if err := Matches(a1, "10.1.0.11"); err == nil {
		t.Error("an FQDN certificate matches an address")
	}
}

func TestWithoutTLS(t *testing.T) {
	c := cluster(t, "")
	c.Erlang.TLS = false
	if _, err := Init(c, now); err == nil || !strings.Contains(err.Error(), "erlang.tls: true") {
		t.Errorf("init without tls: %v", err)
	}
	if ps := Inspect(c, now); ps != nil {
		t.Errorf("Inspect without tls: %v", ps)
	}
}

func TestIPv6Node(t *testing.T) {
	dir := t.TempDir()
	p := filepath.Join(dir, "topology.yaml")
	src := `version: 1
cluster: t
domain: t.internal
networks:
  lan: { cidr: 192.168.1.0/24 }
  app: { cidr: "fd00:1::/64" }
tiers:
  app: { role: app, network: app }
erlang: { tiers: [app], basename: t, dist_ports: 9100-9101, cookie_file: c, discovery: app, consensus: 1, tls: true }
hosts:
  - name: h1
    ssh: { address: 192.168.1.11 }
    interfaces: [{ device: em0, network: lan, address: 192.168.1.11 }]
    jails: [{ name: a1, tier: app, ip: "fd00:1::11" }]
`
	if err := os.WriteFile(p, []byte(src), 0o644); err != nil {
		t.Fatal(err)
	}
	c, err := inventory.Load(p)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := Init(c, now); err != nil {
		t.Fatal(err)
	}
	a1 := readCert(t, For(c).NodeCert("a1"))
	if len(a1.IPAddresses) != 1 || a1.IPAddresses[0].String() != "fd00:1::11" || a1.DNSNames[0] != "fd00:1::11" {
		t.Errorf("a1: %v %v", a1.IPAddresses, a1.DNSNames)
	}
	if _, err := Load(c); err != nil {
		t.Error(err)
	}
}

func TestNoChurnBeforeTheCAEnds(t *testing.T) {
	c := cluster(t, "")
	if _, err := Init(c, now); err != nil {
		t.Fatal(err)
	}
	// Late in the CA's life a node certificate ends with the CA: renewing
	// it again cannot extend it, so certs keeps it (check warns about the CA).
	late := now.Add(CAValidity - 200*24*time.Hour)
	acts, err := Issue(c, late)
	if err != nil || acts[0].What != "renewed" {
		t.Fatalf("first renewal: %+v %v", acts, err)
	}
	ca := readCert(t, For(c).CACert())
	if got := readCert(t, For(c).NodeCert("a1")); !got.NotAfter.Equal(ca.NotAfter) {
		t.Errorf("a1 ends %v, the CA %v", got.NotAfter, ca.NotAfter)
	}
	acts, err = Issue(c, ca.NotAfter.Add(-10*24*time.Hour))
	if err != nil || acts[0].What != "kept" || acts[1].What != "kept" {
		t.Errorf("renewal that cannot extend: %+v %v", acts, err)
	}
}
