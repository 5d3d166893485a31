//go:build linux

package e2e

import (
	"encoding/json"
	"os"
	"strings"
	"testing"

	"github.com/arbo-project/arbo/internal/lab"
)

// hostile is what a jail (or a careless topology) could put in a file arbo
// shows in a diff: a clear-screen and cursor-home escape with a fake "No
// changes.", a C1 CSI, a bidi override, a NUL, a carriage return and a byte
// that is not UTF-8.
const hostile = "nameserver 192.0.2.53\x1b[2J\x1b[HNo changes.\u009b31m \u202eevil\u202c\x00\rcr \xff\n"

// rawControls reports the first terminal-driving or XML-breaking character
// in s (newline and tab are fine).
func rawControls(s string) (rune, bool) {
	for _, r := range s {
		if (r < 0x20 && r != '\n' && r != '\t') || (r >= 0x7f && r <= 0x9f) || r == 0x202e || r == 0x202c {
			return r, true
		}
	}
	return 0, false
}

// TestHostileContentIsEscaped: content from a jail's file reaches plan's
// and apply's output escaped (issue 11, item 4), the JSON plan stays
// valid, and apply --auto-approve prints the plan and the findings before
// it applies (item 12).
func TestHostileContentIsEscaped(t *testing.T) {
	t.Parallel()
	e := newEnv(t, exampleTopology(t), lab.WithBasejail())
	r := e.applyOK()
	// --auto-approve: the plan and the findings are in the log, before the
	// outcome.
	plan, done := strings.Index(r.stdout, "Plan: "), strings.Index(r.stdout, "Apply complete!")
	if plan < 0 || done < plan {
		t.Fatalf("apply --auto-approve did not print the plan before applying:\n%s", r)
	}
	if !strings.Contains(r.stderr, "warning ARBO009") {
		t.Errorf("apply --auto-approve did not print the findings:\n%s", r)
	}

	const inJail = "/usr/jails/app1/etc/resolv.conf"
	if err := os.WriteFile(e.path("server1", inJail), []byte(hostile), 0o644); err != nil {
		t.Fatal(err)
	}
	r = e.run("plan", "--detailed-exitcode", e.topo)
	e.want(r, 2, inJail, `\x1b[2J\x1b[HNo changes.\x9b31m \u202eevil\u202c\x00\x0dcr \xff`)
	if c, bad := rawControls(r.stdout + r.stderr); bad {
		t.Errorf("plan printed a raw %U:\n%q", c, r.stdout)
	}
	r = e.run("plan", "--format", "json", e.topo)
	if !json.Valid([]byte(r.stdout)) {
		t.Fatalf("plan --format json is not valid JSON:\n%q", r.stdout)
	}
	var doc struct {
		Machines []struct {
			Actions []struct {
				Target string `json:"target"`
				Diff   string `json:"diff"`
			} `json:"actions"`
		} `json:"machines"`
	}
	if err := json.Unmarshal([]byte(r.stdout), &doc); err != nil {
		t.Fatal(err)
	}
	found := false
	for _, m := range doc.Machines {
		for _, a := range m.Actions {
			if a.Target == inJail && strings.Contains(a.Diff, "\x1b[2J") {
				found = true // JSON keeps the text as it is, escaped by JSON
			}
		}
	}
	if !found {
		t.Errorf("the JSON plan lacks the diff of %s", inJail)
	}
	r = e.applyOK()
	if c, bad := rawControls(r.stdout + r.stderr); bad {
		t.Errorf("apply printed a raw %U:\n%q", c, r.stdout)
	}
	e.converged()
}
