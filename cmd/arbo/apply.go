package main

import (
	"bufio"
	"errors"
	"fmt"
	"os"
	"strings"
	"time"

	"github.com/spf13/cobra"

	"github.com/arbo-project/arbo/deploy"
	"github.com/arbo-project/arbo/plan"
	"github.com/arbo-project/arbo/ui"
	"github.com/arbo-project/arbo/view"
)

type applyOptions struct {
	runOptions
	autoApprove bool
}

func newApplyCommand(g *globalOptions) *cobra.Command {
	var o applyOptions
	cmd := &cobra.Command{
		Use:   "apply FILE",
		Short: "Make the machines match the topology, over SSH",
		Long: `apply makes every machine match the topology: ezjail, rc.conf, pf, DNS and
the pfSense configuration, atomically and idempotently; a second apply
changes nothing.

FILE is a topology or a plan saved with "arbo plan --out". A saved plan is
applied exactly, or refused as stale if any machine changed since it was
made. With a topology, apply shows the plan and asks for "yes" on a
terminal; without one it needs --auto-approve (or a saved plan).

Every machine is locked first (exit 4 if another run holds a lock); firewall
changes are commit-confirmed: an on-box timer restores the previous rules
unless a new SSH connection still gets in.`,
		Args: cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			return runApply(cmd, g, o, args[0])
		},
	}
	o.addFlags(cmd.Flags())
	cmd.Flags().BoolVar(&o.autoApprove, "auto-approve", false, "apply without asking (for pipelines)")
	cmd.Flags().DurationVar(&o.lockTimeout, "lock-timeout", 0, "wait this long for a machine's lock held by another run (default: do not wait; exit 4)")
	cmd.Flags().DurationVar(&o.confirm, "confirm-timeout", 60*time.Second, "how long the on-box timer waits for the confirmation of a firewall change before it rolls back")
	return cmd
}

func runApply(cmd *cobra.Command, g *globalOptions, o applyOptions, file string) error {
	if err := formatFlag(o.format, "text", "json"); err != nil {
		return err
	}
	ctx := cmd.Context()
	d := o.deploy(g)
	d.Progress = progress(g)
	b, err := os.ReadFile(file)
	if err != nil {
		return err
	}
	var pr *deploy.Prepared
	saved := plan.IsPlan(b)
	// Refuse before connecting anywhere: a pipeline that forgot both options
	// should fail at once, not after planning every machine.
	if !saved && !o.autoApprove && !o.interactive(g) {
		return errors.New(noApprovalMsg)
	}
	topology := file
	var p *plan.Plan
	if saved {
		if cmd.Flags().Changed("allow-destroy") || cmd.Flags().Changed("allow-empty") || cmd.Flags().Changed("bootstrap") || cmd.Flags().Changed("host") {
			return errors.New("--allow-destroy, --allow-empty, --bootstrap and --host are decisions of the plan: make a new plan with them")
		}
		if p, err = plan.Decode(b); err != nil {
			return fmt.Errorf("%s: %w", file, err)
		}
		topology = p.Topology
	}
	// Error-level findings stop apply before it connects anywhere: a
	// refused run leaves no trace on the machines, not even reads.
	if _, rep, _, err := deploy.Load(topology, d.Strict, d.TemplatesDir); err == nil && rep.HasErrors() {
		writeFindings(g, rep)
		return &ui.StatusError{Code: ui.ExitFindings, Err: &deploy.FindingsError{Report: rep}}
	}
	if saved {
		pr, err = deploy.FromSavedPlan(ctx, p, d)
		if err != nil {
			return err
		}
	} else {
		pr, err = deploy.Plan(ctx, file, d)
		if err != nil {
			return err
		}
	}
	defer deploy.Close(pr.Session)
	if pr.Report.HasErrors() {
		writeFindings(g, pr.Report)
		return &ui.StatusError{Code: ui.ExitFindings, Err: &deploy.FindingsError{Report: pr.Report}}
	}
	if pr.Plan.HasErrors() {
		// Those machines are refused and left alone; the others go on.
		_ = view.PlanText(g.stderr, g.style, pr.Plan)
	}
	if !pr.Plan.HasChanges() {
		// Machines that could not be planned make it a failure, with the
		// cause per machine, never "No changes".
		res := &plan.Result{Machines: plan.Refused(pr.Plan)}
		switch {
		case o.format == "json":
			err = view.ApplyJSON(g.stdout, res)
		case res.Failed():
			err = view.ApplyText(g.stdout, g.style, res)
		default:
			fmt.Fprintln(g.stdout, "No changes. The machines match the topology.")
		}
		if err == nil && res.Failed() {
			return ui.Exit(ui.ExitError)
		}
		return err
	}
	if !saved && o.autoApprove {
		// Unattended, the log still shows what is about to change and every
		// finding (warnings and accepted ones too) before anything does.
		if len(pr.Report.Findings) > 0 {
			writeFindings(g, pr.Report)
		}
		if !pr.Plan.HasErrors() { // else shown above already
			w := g.stdout
			if o.format == "json" {
				w = g.stderr // stdout holds one JSON document
			}
			_ = view.PlanText(w, g.style, pr.Plan)
			fmt.Fprintln(w)
		}
	}
	if !saved && !o.autoApprove {
		if len(pr.Report.Findings) > 0 {
			writeFindings(g, pr.Report)
		}
		_ = view.PlanText(g.stdout, g.style, pr.Plan)
		fmt.Fprint(g.stdout, "\nDo you want to apply this plan? Only 'yes' will be accepted: ")
		answer, _ := bufio.NewReader(g.stdin).ReadString('\n')
		if strings.TrimSpace(answer) != "yes" {
			return errors.New("apply cancelled; nothing was changed")
		}
	}
	res, err := deploy.Apply(ctx, pr, d)
	var lh *plan.LockHeldError
	switch {
	case errors.As(err, &lh):
		return &ui.StatusError{Code: ui.ExitLocked, Err: err}
	case err != nil:
		return err
	}
	if o.format == "json" {
		err = view.ApplyJSON(g.stdout, res)
	} else {
		err = view.ApplyText(g.stdout, g.style, res)
	}
	if err != nil {
		return err
	}
	if res.Failed() {
		return ui.Exit(ui.ExitError)
	}
	return nil
}

const noApprovalMsg = "apply needs approval and there is no terminal to ask on: review a plan and pass --auto-approve, or apply a saved plan (arbo plan --out plan.json, then arbo apply plan.json)"

// interactive reports whether apply can ask for approval: both its input
// and its output are a terminal.
func (o applyOptions) interactive(g *globalOptions) bool {
	return ui.IsTerminal(g.stdin) && ui.IsTerminal(g.stdout)
}

// progress shows which machine is at which step on stderr: live on a
// terminal, plain lines otherwise.
func progress(g *globalOptions) func(machine, step string) {
	return view.NewProgress(g.stderr, ui.IsTerminal(g.stderr)).Step
}
