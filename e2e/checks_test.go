//go:build linux

package e2e

import (
	"testing"

	"github.com/arbo-project/arbo/internal/lab"
)

// TestChecks: an error-level finding stops apply before it touches any
// machine (exit 3); accepted with a reason, the same topology applies.
func TestChecks(t *testing.T) {
	t.Parallel()
	open := edit(t, exampleTopology(t), "{ name: mnesia, erlang: true, from: [app] }", "{ name: mnesia, erlang: true, from: [app, 0.0.0.0/0] }")
	e := newEnv(t, open, lab.WithBasejail())

	before := e.snapshotAll()
	r := e.run("apply", "--auto-approve", "--confirm-timeout", confirmTimeout, e.topo)
	e.want(r, 3, "ARBO005", "accept")
	e.unchangedSince(before)
	for _, m := range e.machines() {
		if cs := e.calls(m); len(cs) > 0 {
			t.Errorf("%s: apply refused on findings but ran %d commands there, first %v", m, len(cs), cs[0].Argv)
		}
	}
	// plan shows the findings and exits 3 as well.
	e.want(e.run("plan", e.topo), 3, "ARBO005")

	accepted := open + `
accept:
  - { id: ARBO005, subject: data/mnesia, reason: "e2e: the data tier is open on purpose" }
  - { id: ARBO007, reason: "e2e: the data tier is open on purpose" }
  - { id: ARBO013, subject: data/mnesia, reason: "e2e: the data tier is open on purpose" }
`
	e.writeTopology(accepted)
	e.applyOK()
	pf := e.read("server1", "/etc/pf.conf")
	if !containsAll(pf, "0.0.0.0/0") {
		t.Errorf("the accepted rule is not in server1's pf.conf:\n%s", pf)
	}
	e.converged()
}
