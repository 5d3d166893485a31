//go:build linux

package e2e

import (
	"encoding/json"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/arbo-project/arbo/internal/lab"
)

// threeServers is the Arboreus example with a third server and an app jail
// on it.
func threeServers(t *testing.T) string {
	return exampleTopology(t) + `  - name: server3
    ssh: { address: 192.168.1.13 }
    interfaces:
      - { device: em0, network: segment1, address: 192.168.1.13 }
      - { device: em1, network: segment2, address: 192.168.2.13 }
    jails:
      - { name: app3, tier: app,  ip: 10.20.1.13 }
`
}

// wantedRoutes renders the topology file as it is now and returns each
// host's static routes as "dest via" lines, host routes without /32.
func (e *env) wantedRoutes() map[string][]string {
	e.t.Helper()
	out := filepath.Join(e.t.TempDir(), "rendered")
	e.want(e.runWith("", "render", e.topo, "-o", out), 0)
	b, err := os.ReadFile(filepath.Join(out, "manifest.json"))
	if err != nil {
		e.t.Fatal(err)
	}
	var mf struct {
		Machines []renderedMachine `json:"machines"`
	}
	if err := json.Unmarshal(b, &mf); err != nil {
		e.t.Fatal(err)
	}
	routes := map[string][]string{}
	for _, m := range mf.Machines {
		if m.Kind != "host" {
			continue
		}
		for _, r := range m.Routes {
			routes[m.Name] = append(routes[m.Name], strings.TrimSuffix(r.Dest, "/32")+" "+r.Via)
		}
		slices.Sort(routes[m.Name])
	}
	return routes
}

// liveRoutes is a host's kernel routes as the lab's route(8) keeps them.
func (e *env) liveRoutes(machine string) []string {
	var out []string
	for _, l := range e.lines(machine, "/var/run/lab/routes") {
		f := strings.Fields(l)
		if len(f) == 2 {
			out = append(out, strings.TrimSuffix(f[0], "/32")+" "+f[1])
		}
	}
	slices.Sort(out)
	return out
}

// TestRemovedHostRoutes (issue 14 item 5): when a host leaves the topology,
// one apply deletes the routes to its jails on every other host, through
// route(8), while a route the operator added by hand stays; before, only
// rc.conf.local changed and the kernel kept the old route until a reboot.
func TestRemovedHostRoutes(t *testing.T) {
	t.Parallel()
	e := newEnv(t, threeServers(t), lab.WithBasejail())
	e.applyOK()
	want := e.wantedRoutes()
	for _, h := range []string{"server1", "server2", "server3"} {
		if got := e.liveRoutes(h); !slices.Equal(got, want[h]) {
			t.Fatalf("%s: live routes %q, want %q", h, got, want[h])
		}
	}
	// The operator's own route on server1, which arbo never installed.
	const hand = "10.77.0.0/16 192.168.2.99"
	rf := e.path("server1", "/var/run/lab/routes")
	b, err := os.ReadFile(rf)
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(rf, append(b, []byte(hand+"\n")...), 0o644); err != nil {
		t.Fatal(err)
	}
	toServer3 := func(h string) []string {
		var out []string
		for _, r := range e.liveRoutes(h) {
			if strings.HasSuffix(r, " 192.168.2.13") {
				out = append(out, r)
			}
		}
		return out
	}
	if len(toServer3("server1")) == 0 || len(toServer3("server2")) == 0 {
		t.Fatalf("no route to server3's jails before it leaves: %q %q", e.liveRoutes("server1"), e.liveRoutes("server2"))
	}

	// server3 leaves the topology.
	e.writeTopology(exampleTopology(t))
	r := e.run("plan", e.topo)
	e.want(r, 0, "- delete net ")
	e.applyOK()
	want = e.wantedRoutes()
	for _, h := range []string{"server1", "server2"} {
		if got := toServer3(h); len(got) != 0 {
			t.Errorf("%s: routes to the removed server3 are still live: %q", h, got)
		}
		got := slices.DeleteFunc(e.liveRoutes(h), func(r string) bool { return r == strings.TrimSuffix(hand, "/32") })
		if !slices.Equal(got, want[h]) {
			t.Errorf("%s: live routes %q, want %q", h, got, want[h])
		}
	}
	if !slices.Contains(e.liveRoutes("server1"), hand) {
		t.Errorf("server1: the operator's route %s was deleted: %q", hand, e.liveRoutes("server1"))
	}
	e.converged()
}
