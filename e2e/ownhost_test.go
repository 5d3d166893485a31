//go:build linux

package e2e

import (
	"net/netip"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/arbo-project/arbo/check"
	"github.com/arbo-project/arbo/check/rendered"
	"github.com/arbo-project/arbo/internal/lab"
	"github.com/arbo-project/arbo/pf"
)

// TestJailsOffTheirHost (issue 10 item 4, ARBO012): a jail's packets to its
// host's own addresses cross lo0 (FreeBSD routes every interface address
// through lo0: sys/netinet/in.c, "Add a loopback route to self"), so pf
// must filter lo0.
//
//   - A pf template that skips lo0 again (arbo's own file before the fix)
//     is refused by apply with ARBO012 (exit 3) before any machine changes.
//   - With arbo's template, apply loads (through the lab's strict pfctl
//     grammar) a ruleset that, read back from the machine and evaluated on
//     server1's addresses, keeps app1 and db1 off server1's sshd while the
//     host, its jails and management SSH keep working.
func TestJailsOffTheirHost(t *testing.T) {
	t.Parallel()
	e := newEnv(t, exampleTopology(t), lab.WithBasejail())

	tmpl, err := os.ReadFile("../templates/files/pf.conf.tmpl")
	if err != nil {
		t.Fatal(err)
	}
	tdir := filepath.Join(e.dir, "templates")
	if err := os.MkdirAll(tdir, 0o755); err != nil {
		t.Fatal(err)
	}
	skipping := edit(t, string(tmpl), "\n# --- Normalization", "\nset skip on lo0\n\n# --- Normalization")
	if err := os.WriteFile(filepath.Join(tdir, "pf.conf.tmpl"), []byte(skipping), 0o644); err != nil {
		t.Fatal(err)
	}
	before := e.snapshotAll()
	r := e.run("apply", "--auto-approve", "--confirm-timeout", confirmTimeout, "--templates", tdir, e.topo)
	e.want(r, 3, "ARBO012", "jail app1 (10.20.1.11, tier app) reach its own host server1 at 192.168.1.11 on tcp 1, tcp 22")
	e.unchangedSince(before)
	for _, m := range e.machines() {
		if cs := e.calls(m); len(cs) > 0 {
			t.Errorf("%s: apply refused on ARBO012 but ran %d commands there, first %v", m, len(cs), cs[0].Argv)
		}
	}

	e.applyOK()
	loaded := e.read("server1", "/var/run/lab/pf.loaded")
	if strings.Contains(loaded, "\nset skip") {
		t.Fatalf("the loaded ruleset still skips an interface:\n%s", loaded)
	}
	rs, err := pf.Parse("server1:/var/run/lab/pf.loaded", []byte(loaded))
	if err != nil {
		t.Fatal(err)
	}
	rs.Net = rendered.Networks(e.c)["server1"]
	a := netip.MustParseAddr
	app1, db1, app2 := a("10.20.1.11"), a("10.20.2.11"), a("10.20.1.12")
	host, host2 := a("192.168.1.11"), a("192.168.2.11")
	rs.Net.Local[a("127.0.0.1")] = "lo0"
	for _, tc := range []struct {
		what     string
		src, dst netip.Addr
		port     int
		want     bool
	}{
		{"app1 to server1's sshd", app1, host, 22, false},
		{"db1 to server1's sshd on the interconnect", db1, host2, 22, false},
		{"app1 to a daemon of server1 bound to *", app1, host, 8443, false},
		{"server1 to itself", a("127.0.0.1"), a("127.0.0.1"), 25, true},
		{"app1 to itself", app1, app1, 8443, true},
		{"app1 to db1 (mnesia, services.from)", app1, db1, 4369, true},
		{"app2 on server2 to app1 (same tier)", app2, app1, 9100, true},
	} {
		if got := rs.Allows(tc.src, tc.dst, "tcp", tc.port); got != tc.want {
			t.Errorf("%s (tcp %d): passes %v, want %v", tc.what, tc.port, got, tc.want)
		}
	}
	if !rs.FirstMatchPasses(a("192.168.1.50"), host, "tcp", 22) {
		t.Error("management SSH is not passed first by the loaded ruleset")
	}
	rep := check.Run(e.c, check.Options{Rulesets: map[string]check.Ruleset{"server1": rs}})
	for _, f := range rep.Findings {
		if f.Fails() {
			t.Errorf("the loaded ruleset fails %s: %s", f.ID, f.Message)
		}
	}
	e.converged()
}
