//go:build linux

package e2e

import (
	"encoding/json"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

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

// up reports whether a machine's lo1 holds addr (jail(8) adds a jail's
// alias when it starts and removes it when it stops).
func (e *env) up(machine, addr string) bool {
	b, _ := os.ReadFile(e.path(machine, "/var/run/lab/interfaces"))
	return strings.Contains(string(b), addr+"/") || strings.Contains(string(b), addr+" ")
}

// TestMoveJail (issue 14 items 1-2) moves the app jail app1 from server1
// to server2 in one apply over real SSH: the plan shows one move; while
// apply runs, app1's address is never up on both hosts (a watcher reads
// both lo1s all along); afterwards server1's copy is stopped, archived and
// retired (root kept), server2 runs it, every host's routes are what the
// topology gives, and a second plan is empty. Then the data jail db1:
// refused (plan and apply exit 1, nothing stops) until --allow-empty.
func TestMoveJail(t *testing.T) {
	t.Parallel()
	e := newEnv(t, exampleTopology(t), lab.WithBasejail())
	e.applyOK()
	const addr = "10.20.1.11"
	if !e.up("server1", addr) || e.up("server2", addr) {
		t.Fatalf("before the move app1 should be up on server1 only")
	}

	app1 := "      - { name: app1, tier: app,  ip: 10.20.1.11 }\n"
	app2 := "      - { name: app2, tier: app,  ip: 10.20.1.12 }\n"
	moved := edit(t, edit(t, exampleTopology(t), app1, ""), app2, app2+app1)
	e.writeTopology(moved)
	r := e.run("plan", e.topo)
	e.want(r, 0, "# moves", "~ move jail app1: server1 → server2", "1. server1: stop it", "2. server2: create jail app1")

	stop := make(chan struct{})
	done := make(chan int)
	go func() {
		both, polls := 0, 0
		for {
			select {
			case <-stop:
				if both > 0 {
					t.Errorf("app1's address was up on both hosts in %d of %d reads", both, polls)
				}
				done <- polls
				return
			default:
			}
			if e.up("server1", addr) && e.up("server2", addr) {
				both++
			}
			polls++
			time.Sleep(time.Millisecond)
		}
	}()
	r = e.applyOK()
	close(stop)
	polls := <-done
	t.Logf("watched both lo1s %d times during the move", polls)
	out := r.stdout + r.stderr
	if a, s := strings.Index(out, "server1: archive jail app1"), strings.Index(out, "server2: start jail app1"); a < 0 || s < 0 || a > s {
		t.Errorf("progress: server1 archives app1 at %d, server2 starts it at %d: the old copy must be retired first\n%s", a, s, out)
	}
	if e.up("server1", addr) || !e.up("server2", addr) {
		t.Errorf("after the move app1 should be up on server2 only")
	}
	if e.exists("server1", "/var/run/lab/jails/app1") || !e.exists("server2", "/var/run/lab/jails/app1") {
		t.Errorf("app1 should run on server2 only")
	}
	if !e.exists("server1", "/usr/local/etc/ezjail/app1.norun") || !e.exists("server1", "/usr/jails/app1") {
		t.Errorf("server1: the old copy should be retired (app1.norun) with its root kept")
	}
	if ents, _ := os.ReadDir(e.path("server1", "/usr/jails/ezjail_archives")); len(ents) == 0 {
		t.Errorf("server1: no archive of app1")
	}
	want := e.wantedRoutes()
	for _, h := range []string{"server1", "server2"} {
		if got := e.liveRoutes(h); !slices.Equal(got, want[h]) {
			t.Errorf("%s: live routes %q, want %q", h, got, want[h])
		}
	}
	e.converged()

	// The data jail: refused while its data cannot travel.
	db1 := "      - { name: db1,  tier: data, ip: 10.20.2.11 }\n"
	db2 := "      - { name: db2,  tier: data, ip: 10.20.2.12 }\n"
	app3 := "      - { name: app3, tier: app,  ip: 10.20.1.13 }\n" // server1 keeps a jail
	e.writeTopology(edit(t, edit(t, moved, db1, app3), db2, db2+db1))
	r = e.run("plan", e.topo)
	e.want(r, 1, "move jail db1: server1 → server2 (has held data): refused", "has held data", "--allow-empty")
	r = e.run("apply", "--auto-approve", "--confirm-timeout", confirmTimeout, e.topo)
	e.want(r, 1, "has held data")
	if !e.exists("server1", "/var/run/lab/jails/db1") || e.exists("server2", "/usr/jails/db1") {
		t.Fatalf("a refused move of db1 acted")
	}
	e.applyOK("--allow-empty")
	if e.exists("server1", "/var/run/lab/jails/db1") || !e.exists("server2", "/var/run/lab/jails/db1") {
		t.Errorf("--allow-empty: db1 should run on server2 only")
	}
	if !e.exists("server1", "/usr/local/etc/ezjail/db1.norun") || !e.exists("server1", "/usr/jails/db1") {
		t.Errorf("server1: the data jail's old copy should be retired with its root kept")
	}
	e.converged()
}
