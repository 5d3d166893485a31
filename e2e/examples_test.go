//go:build linux

package e2e

import (
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/arbo-project/arbo/internal/lab"
)

// TestExamplesRealLab applies both examples with --bootstrap to fresh
// hosts that run FreeBSD's rc framework and ezjail 3.4.2's own code
// (issue 10, "Done when"): the apply succeeds, a second plan is empty
// (exit 0 with --detailed-exitcode), every jail runs, and no host called a
// command the lab does not provide.
func TestExamplesRealLab(t *testing.T) {
	t.Parallel()
	up, why := lab.FindUpstream(".")
	if up == "" {
		if os.Getenv("CI") == "true" {
			t.Fatal("upstream: " + why)
		}
		t.Skip("upstream: " + why)
	}
	for _, ex := range []string{"arboreus", "single-host"} {
		t.Run(ex, func(t *testing.T) {
			t.Parallel()
			b, err := os.ReadFile(filepath.Join("..", "examples", ex, "topology.yaml"))
			if err != nil {
				t.Fatal(err)
			}
			e := newEnv(t, string(b), lab.WithUpstream(up), lab.WithRealCode())
			// single-host names its cookie beside the topology.
			if err := os.WriteFile(filepath.Join(e.dir, "erlang.cookie"), []byte(e.cookie+"\n"), 0o600); err != nil {
				t.Fatal(err)
			}
			r := e.applyOK("--bootstrap")
			if p := e.run("plan", "--detailed-exitcode", e.topo); p.code != 0 {
				t.Logf("apply --bootstrap:\n%s\n%s", r.stdout, r.stderr)
			}
			e.converged()
			for _, h := range e.c.Hosts {
				for _, j := range h.Jails {
					if !e.exists(h.Name, "/var/run/lab/jails/"+j.Name) {
						t.Errorf("%s: jail %s is not running", h.Name, j.Name)
					}
				}
				for _, c := range e.calls(h.Name) {
					if c.Exit == 127 {
						t.Errorf("%s: a command the lab does not provide: %s", h.Name, strings.Join(c.Argv, " "))
					}
				}
			}
		})
	}
}
