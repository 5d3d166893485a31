package view

import (
	"bytes"
	"encoding/json"
	"strings"
	"testing"

	"github.com/arbo-project/arbo/plan"
	"github.com/arbo-project/arbo/ui"
)

const nasty = "x\x1b[2J\x1b[HNo changes.\u009b\u202e\x00\r\xff"

func hostilePlan() *plan.Plan {
	return &plan.Plan{FormatVersion: 1, Kind: plan.PlanKind, Machines: []plan.MachinePlan{
		{Name: "server1", Kind: "host", Warnings: []string{"w " + nasty},
			Actions: []plan.Action{
				{Op: plan.OpUpdate, Kind: plan.KindFile, Target: "/usr/jails/app1/etc/" + nasty, Jail: "app1",
					Reason: "r " + nasty, Diff: "--- a\n+++ b\n-old " + nasty + "\n+new\tline\n"},
				{Op: plan.OpConflict, Kind: plan.KindJail, Target: "app1", Reason: "refused " + nasty},
			}, Error: "conflict"},
		{Name: "gate", Kind: "gateway", Error: "not reachable: " + nasty},
		{Name: "server2", Kind: "host", Actions: []plan.Action{{Op: plan.OpCreate, Kind: plan.KindFile, Target: "/etc/pf.conf"}}},
	}}
}

// Every field that can carry a machine's or the topology's text is shown
// escaped; tabs in a diff stay; the refusals close the plan, per machine.
func TestPlanTextEscapesAndSummarises(t *testing.T) {
	var b bytes.Buffer
	if err := PlanText(&b, ui.NewStyle(false), hostilePlan()); err != nil {
		t.Fatal(err)
	}
	out := b.String()
	for _, r := range out {
		if (r < 0x20 && r != '\n' && r != '\t') || (r >= 0x7f && r <= 0x9f) || r == 0x202e || r == 0xfffd {
			t.Fatalf("raw %U in:\n%q", r, out)
		}
	}
	esc := `x\x1b[2J\x1b[HNo changes.\x9b\u202e\x00\x0d\xff`
	for _, want := range []string{"warning: w " + esc, "/usr/jails/app1/etc/" + esc, ": r " + esc, "-old " + esc, "+new\tline",
		"! refused: refused " + esc, "error: not reachable: " + esc} {
		if !strings.Contains(out, want) {
			t.Errorf("output lacks %q:\n%s", want, out)
		}
	}
	tail := out[strings.Index(out, "Plan: "):]
	want := "Refused on 2 machines (nothing is done there; the others apply):\n" +
		"  ! server1: refused: refused " + esc + "\n" +
		"  ! gate: not planned: not reachable: " + esc + "\n"
	if !strings.HasSuffix(tail, want) {
		t.Errorf("the plan does not end with the refusals:\n%s\nwant suffix:\n%s", tail, want)
	}
}

// JSON stays valid whatever the text holds.
func TestPlanJSONValidForAnyText(t *testing.T) {
	var b bytes.Buffer
	if err := PlanJSON(&b, hostilePlan()); err != nil {
		t.Fatal(err)
	}
	if !json.Valid(b.Bytes()) {
		t.Fatalf("invalid JSON:\n%s", b.String())
	}
	if bytes.ContainsAny(b.Bytes(), "\x1b\x00") {
		t.Errorf("raw controls in JSON:\n%q", b.String())
	}
}

func TestApplyTextEscapes(t *testing.T) {
	var b bytes.Buffer
	r := &plan.Result{Machines: []plan.MachineResult{{Machine: "server1", Done: []string{"d " + nasty}, Error: "e " + nasty, NotDone: []string{"n " + nasty}}}}
	if err := ApplyText(&b, ui.NewStyle(false), r); err != nil {
		t.Fatal(err)
	}
	if strings.ContainsAny(b.String(), "\x1b\x00\r\u202e") {
		t.Errorf("raw controls:\n%q", b.String())
	}
}

// A move is one action at the top of the plan, with its steps; a refused
// one says so, and its reason is among the refusals at the end.
func TestPlanTextMoves(t *testing.T) {
	p := &plan.Plan{FormatVersion: 1, Kind: plan.PlanKind,
		Moves: []plan.Move{
			{Jail: "app1", From: "server1", To: "server2", Steps: []string{"server1: stop it", "server2: create jail app1"}},
			{Jail: "db1", From: "server1", To: "server3", Data: true, Refused: "jail db1 has held data"},
		},
		Machines: []plan.MachinePlan{{Name: "server3", Kind: "host", Error: "jail db1 has held data",
			Actions: []plan.Action{{Op: plan.OpConflict, Kind: plan.KindJail, Target: "server3", Reason: "jail db1 has held data"}}}}}
	var b bytes.Buffer
	if err := PlanText(&b, ui.NewStyle(false), p); err != nil {
		t.Fatal(err)
	}
	out := b.String()
	for _, want := range []string{"# moves\n  ~ move jail app1: server1 → server2\n      1. server1: stop it\n      2. server2: create jail app1\n",
		"  ~ move jail db1: server1 → server3 (has held data): refused\n", "  ! server3: refused: jail db1 has held data"} {
		if !strings.Contains(out, want) {
			t.Errorf("output lacks %q:\n%s", want, out)
		}
	}
}
