package view

import (
	"fmt"
	"io"
	"strings"

	"github.com/arbo-project/arbo/plan"
	"github.com/arbo-project/arbo/ui"
)

var symbols = map[string]string{
	plan.OpCreate:   "+",
	plan.OpUpdate:   "~",
	plan.OpAdopt:    "~",
	plan.OpEnable:   "~",
	plan.OpDelete:   "-",
	plan.OpArchive:  "-",
	plan.OpDestroy:  "-",
	plan.OpConflict: "!",
}

func symbol(op string) string {
	if s, ok := symbols[op]; ok {
		return s
	}
	return ">" // an activation step
}

func colourSym(st ui.Style, op, s string) string {
	switch symbol(op) {
	case "+":
		return st.Green(s)
	case "~":
		return st.Yellow(s)
	case "-", "!":
		return st.Red(s)
	}
	return st.Blue(s)
}

// PlanText prints a plan the way Terraform prints one: per machine the
// actions with +/~/- and their diffs, then the summary line, then the
// machines arbo refuses to touch, with why (a long plan must not bury
// them). Whatever came from a machine or the topology (paths, diffs of
// file content, reasons, errors) is shown through ui.Escape: a jail's file
// can neither drive the terminal nor fake a line of the plan.
func PlanText(w io.Writer, st ui.Style, p *plan.Plan) error {
	if len(p.Moves) > 0 {
		fmt.Fprintln(w, st.Bold("# moves"))
		for _, mv := range p.Moves {
			line := fmt.Sprintf("  ~ move jail %s: %s → %s", mv.Jail, mv.From, mv.To)
			if mv.Data {
				line += " (has held data)"
			}
			if mv.Refused != "" {
				fmt.Fprintln(w, st.Red(ui.EscapeLine(line+": refused")))
				continue
			}
			fmt.Fprintln(w, st.Yellow(ui.EscapeLine(line)))
			for i, s := range mv.Steps {
				fmt.Fprintf(w, "      %d. %s\n", i+1, ui.EscapeLine(s))
			}
		}
		fmt.Fprintln(w)
	}
	for _, m := range p.Machines {
		if len(m.Actions) == 0 && m.Error == "" && len(m.Warnings) == 0 {
			continue
		}
		fmt.Fprintf(w, "%s %s (%s)\n", st.Bold("#"), st.Bold(ui.EscapeLine(m.Name)), ui.EscapeLine(m.Kind))
		for _, wn := range m.Warnings {
			fmt.Fprintf(w, "  %s %s\n", st.Yellow("warning:"), ui.EscapeLine(wn))
		}
		for _, a := range m.Actions {
			line := fmt.Sprintf("  %s %s %s %s", symbol(a.Op), a.Op, a.Kind, a.Target)
			if a.Jail != "" && a.Kind != plan.KindJail && a.Jail != a.Target {
				line += " (jail " + a.Jail + ")"
			}
			if a.Sensitive {
				line += " (sensitive)"
				if a.From != "" {
					line += " from " + ui.Escape(a.From)
				}
			}
			if a.TakeOver {
				line += " (taken over: the current file is kept as " + a.Target + ".arbo-orig)"
			}
			if a.Reason != "" && a.Op != plan.OpConflict {
				line += ": " + a.Reason
			}
			if a.Op == plan.OpConflict {
				line = "  ! refused: " + a.Reason
			}
			fmt.Fprintln(w, colourSym(st, a.Op, ui.EscapeLine(line)))
			if a.Diff != "" {
				for _, l := range strings.Split(strings.TrimRight(a.Diff, "\n"), "\n") {
					l = ui.Escape(l)
					switch {
					case strings.HasPrefix(l, "+") && !strings.HasPrefix(l, "+++"):
						l = st.Green(l)
					case strings.HasPrefix(l, "-") && !strings.HasPrefix(l, "---"):
						l = st.Red(l)
					}
					fmt.Fprintln(w, "      "+l)
				}
			}
		}
		if m.Error != "" && !hasConflict(m) {
			fmt.Fprintf(w, "  %s %s\n", st.Red("error:"), ui.EscapeLine(m.Error))
		}
		fmt.Fprintln(w)
	}
	defer refusals(w, st, p)
	if p.HasErrors() {
		fmt.Fprintln(w, st.Red("Planning failed on some machines (see above)."))
		if !p.HasChanges() {
			return nil
		}
	}
	if !p.HasChanges() {
		fmt.Fprintln(w, st.Green("No changes.")+" The machines match the topology.")
		return nil
	}
	c := p.Count()
	fmt.Fprintf(w, "%s %d to add, %d to change, %d to destroy.", st.Bold("Plan:"), c.Add, c.Change, c.Destroy)
	if c.Other > 0 {
		fmt.Fprintf(w, " Then %d activation %s.", c.Other, pluralS(c.Other, "step", "steps"))
	}
	fmt.Fprintln(w)
	return nil
}

// refusals ends a plan with the machines arbo will not touch, one line per
// refusal or error, so that a long plan does not bury them.
func refusals(w io.Writer, st ui.Style, p *plan.Plan) {
	var lines []string
	machines := 0
	for _, m := range p.Machines {
		var why []string
		for _, a := range m.Actions {
			if a.Op == plan.OpConflict {
				why = append(why, "refused: "+a.Reason)
			}
		}
		if len(why) == 0 && m.Error != "" {
			why = append(why, "not planned: "+m.Error)
		}
		if len(why) == 0 {
			continue
		}
		machines++
		for _, y := range why {
			lines = append(lines, "  ! "+ui.EscapeLine(m.Name+": "+y))
		}
	}
	if machines == 0 {
		return
	}
	fmt.Fprintf(w, "\n%s\n", st.Red(fmt.Sprintf("Refused on %d %s (nothing is done there; the others apply):", machines, pluralS(machines, "machine", "machines"))))
	for _, l := range lines {
		fmt.Fprintln(w, st.Red(l))
	}
}

func hasConflict(m plan.MachinePlan) bool {
	for _, a := range m.Actions {
		if a.Op == plan.OpConflict {
			return true
		}
	}
	return false
}

func pluralS(n int, one, many string) string {
	if n == 1 {
		return one
	}
	return many
}

// PlanJSON prints the plan document: the same as a saved plan, less the
// file contents (a saved plan needs them to apply; a report does not).
func PlanJSON(w io.Writer, p *plan.Plan) error {
	cp := *p
	cp.Machines = make([]plan.MachinePlan, len(p.Machines))
	for i, m := range p.Machines {
		m.Files = nil
		m.Reads = nil
		cp.Machines[i] = m
	}
	c := p.Count()
	type summary struct {
		Add      int  `json:"add"`
		Change   int  `json:"change"`
		Destroy  int  `json:"destroy"`
		Activate int  `json:"activate"`
		Changes  bool `json:"changes"`
	}
	return WriteJSON(w, struct {
		*plan.Plan
		Summary summary `json:"summary"`
	}{&cp, summary{c.Add, c.Change, c.Destroy, c.Other, p.HasChanges()}})
}

// ApplyText prints what apply did and did not do, per machine.
func ApplyText(w io.Writer, st ui.Style, r *plan.Result) error {
	for _, m := range r.Machines {
		status := st.Green("ok")
		if m.Error != "" {
			status = st.Red("FAILED")
		}
		fmt.Fprintf(w, "%s %s: %s (%d %s done)\n", st.Bold("#"), ui.EscapeLine(m.Machine), status, len(m.Done), pluralS(len(m.Done), "step", "steps"))
		for _, d := range m.Done {
			fmt.Fprintf(w, "  done: %s\n", ui.EscapeLine(d))
		}
		if m.Error != "" {
			fmt.Fprintf(w, "  %s %s\n", st.Red("error:"), ui.EscapeLine(m.Error))
			for _, n := range m.NotDone {
				fmt.Fprintf(w, "  not done: %s\n", ui.EscapeLine(n))
			}
		}
	}
	if r.Failed() {
		fmt.Fprintln(w, st.Red("Apply failed on some machines; the others are done. A new apply finishes the work."))
		return nil
	}
	fmt.Fprintln(w, st.Green("Apply complete!")+" The machines match the topology.")
	return nil
}

// ApplyJSON prints the apply summary document.
func ApplyJSON(w io.Writer, r *plan.Result) error {
	if r.Machines == nil {
		cp := *r
		cp.Machines = []plan.MachineResult{}
		r = &cp
	}
	return WriteJSON(w, struct {
		FormatVersion int `json:"format_version"`
		*plan.Result
		Failed bool `json:"failed"`
	}{FormatVersion, r, r.Failed()})
}
