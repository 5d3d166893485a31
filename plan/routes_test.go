package plan

import (
	"context"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/arbo-project/arbo/state"
)

func withRoutes(rs ...string) *state.Machine {
	d := desired()
	d.Routes = nil
	for _, r := range rs {
		dest, via, _ := strings.Cut(r, " ")
		d.Routes = append(d.Routes, state.Route{Dest: dest, Via: via})
	}
	return d
}

func kernelRoutes(t *testing.T, m *memTarget) map[string]string {
	t.Helper()
	snap, err := Read(context.Background(), m, desired())
	if err != nil {
		t.Fatal(err)
	}
	return snap.Routes
}

// Issue 14 item 5: a route arbo installed that the topology no longer has
// (a removed host's prefix) is deleted live, after the new routes are
// added; a route arbo did not install (there before it, by hand) is never
// deleted, even when the topology once wanted the same one.
func TestStaleRoutesDeleted(t *testing.T) {
	m := newMem()
	fakeHost(m)
	// Routes that were there before arbo: one by hand, one the topology
	// will want as it is (so arbo never adds it).
	m.run([]string{"/bin/sh", "-c", routesScript}, "-inet -host 10.9.9.9 192.168.2.9\n-inet -net 10.0.3.0/24 192.168.2.3\n")

	first := withRoutes("10.0.1.1/32 192.168.2.2", "10.0.2.0/24 192.168.2.3", "10.0.3.0/24 192.168.2.3")
	if _, res, err := applyMachine(t, m, first); err != nil || res.Failed() {
		t.Fatalf("first apply: %v %+v", err, res)
	}
	man := readManifest(t, m)
	if want := []string{"10.0.1.1/32 192.168.2.2", "10.0.2.0/24 192.168.2.3"}; !slices.Equal(man.Activated.Installed, want) {
		t.Fatalf("routes_installed = %q, want %q (only what arbo added)", man.Activated.Installed, want)
	}

	// The host behind 192.168.2.3 leaves; another prefix arrives.
	second := withRoutes("10.0.1.1/32 192.168.2.2", "10.0.4.0/24 192.168.2.4")
	mp, res, err := applyMachine(t, m, second)
	if err != nil || res.Failed() {
		t.Fatalf("second apply: %v %+v", err, res)
	}
	if !has(mp, "delete net 10.0.2.0/24") {
		t.Fatalf("the stale route arbo installed is not deleted: %v", ops(mp))
	}
	for _, never := range []string{"delete net 10.0.3.0/24", "delete net 10.9.9.9/32", "delete net 10.9.9.9"} {
		if has(mp, never) {
			t.Fatalf("%s: arbo did not install that route: %v", never, ops(mp))
		}
	}
	add, del := m.callIndex("/bin/sh", "-c", routesScript), m.callIndex("/bin/sh", "-c", unroutesScript)
	if del < 0 || add < 0 || del < add {
		t.Fatalf("routes added at call %d, stale ones deleted at %d: the new ones must come first", add, del)
	}
	k := kernelRoutes(t, m)
	if _, ok := k["10.0.2.0/24"]; ok {
		t.Fatalf("10.0.2.0/24 still in the kernel: %v", k)
	}
	for _, kept := range []string{"10.0.3.0/24", "10.9.9.9", "10.0.4.0/24", "10.0.1.1"} {
		if _, ok := k[kept]; !ok {
			t.Fatalf("%s is gone from the kernel: %v", kept, k)
		}
	}
	man = readManifest(t, m)
	if want := []string{"10.0.1.1/32 192.168.2.2", "10.0.4.0/24 192.168.2.4"}; !slices.Equal(man.Activated.Installed, want) {
		t.Fatalf("routes_installed = %q, want %q", man.Activated.Installed, want)
	}
	// Converged: a third plan deletes nothing.
	snap, err := Read(context.Background(), m, second)
	if err != nil {
		t.Fatal(err)
	}
	if mp := Diff(second, snap, Options{}); len(mp.Actions) != 0 {
		t.Fatalf("not converged: %v", ops(mp))
	}
}

func readManifest(t *testing.T, m *memTarget) *Manifest {
	t.Helper()
	got, err := m.ReadFiles(context.Background(), []string{ManifestPath})
	if err != nil {
		t.Fatal(err)
	}
	man, err := parseManifest(got[ManifestPath])
	if err != nil {
		t.Fatal(err)
	}
	return man
}

// TestUnroutesScript runs the constant delete script through a real sh with
// a stand-in route(8): a route already gone ("not in table", route(8)'s
// ESRCH message) is no error, any other failure stops it, naming the route.
func TestUnroutesScript(t *testing.T) {
	dir := t.TempDir()
	log := filepath.Join(dir, "log")
	fake := "#!/bin/sh\necho \"$*\" >> " + log + "\n" +
		"case \"$*\" in\n" +
		"  *10.0.0.5*) echo 'delete host 10.0.0.5 fib 0: not in table' >&2; exit 1 ;;\n" +
		"  *10.0.0.6*) echo 'route: writing to routing socket: Operation not permitted' >&2; exit 1 ;;\n" +
		"esac\n"
	if err := os.WriteFile(filepath.Join(dir, "route"), []byte(fake), 0o755); err != nil {
		t.Fatal(err)
	}
	run := func(stdin string) (string, error) {
		cmd := exec.Command("/bin/sh", "-c", unroutesScript)
		cmd.Env = append(os.Environ(), "PATH="+dir+":"+os.Getenv("PATH"))
		cmd.Stdin = strings.NewReader(stdin)
		out, err := cmd.CombinedOutput()
		return string(out), err
	}
	if out, err := run("-inet -net 10.0.2.0/24 192.168.2.3\n-inet -host 10.0.0.5 192.168.2.2\n"); err != nil {
		t.Fatalf("script failed: %v %s", err, out)
	}
	got, _ := os.ReadFile(log)
	if want := "-q delete -inet -net 10.0.2.0/24 192.168.2.3\n-q delete -inet -host 10.0.0.5 192.168.2.2\n"; string(got) != want {
		t.Fatalf("route calls:\n%s\nwant:\n%s", got, want)
	}
	out, err := run("-inet -host 10.0.0.6 192.168.2.2\n")
	if err == nil || !strings.Contains(out, "route to 10.0.0.6 via 192.168.2.2") || !strings.Contains(out, "Operation not permitted") {
		t.Fatalf("a failing delete must fail the script, naming it: %v %q", err, out)
	}
}
