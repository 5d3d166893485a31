package main

import (
	"github.com/spf13/cobra"

	"github.com/arbo-project/arbo/check"
	"github.com/arbo-project/arbo/check/rendered"
	"github.com/arbo-project/arbo/inventory"
	"github.com/arbo-project/arbo/templates"
	"github.com/arbo-project/arbo/ui"
)

type checkOptions struct {
	format    string
	strict    bool
	templates string
}

func newCheckCommand(g *globalOptions) *cobra.Command {
	var o checkOptions
	cmd := &cobra.Command{
		Use:   "check FILE",
		Short: "Prove the design safe: tiers apart, data never exposed, no single point of failure",
		Long: `check runs the rules ARBO003-ARBO011 on a topology: app and data tiers on
different networks on every host, the firewall denying every flow between
tiers that no service allows, data never reachable from outside, Erlang
ports only between Erlang tiers, management SSH always open, and enough
jails on enough hosts to survive the loss of one. The firewall rules are
judged on each host's rendered /etc/pf.conf (with --templates overrides),
parsed; a rendered file arbo cannot parse is an error (exit 1).

Findings listed under "accept:" in the topology are reported as accepted
and never fail a run. Exit code 3 when an error-level finding remains.`,
		Args: cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			return runCheck(g, o, args[0])
		},
	}
	cmd.Flags().StringVar(&o.format, "format", "text", "output format: text, json or junit")
	cmd.Flags().BoolVar(&o.strict, "strict", false, "treat warnings (ARBO008, ARBO009) as errors")
	cmd.Flags().StringVar(&o.templates, "templates", "", "directory whose *.tmpl files replace the embedded templates of the same name")
	return cmd
}

func runCheck(g *globalOptions, o checkOptions, file string) error {
	if err := formatFlag(o.format, "text", "json", "junit"); err != nil {
		return err
	}
	c, err := inventory.Load(file)
	if err != nil {
		return err
	}
	ts, err := templates.Load(o.templates)
	if err != nil {
		return err
	}
	r, err := rendered.Run(c, ts, check.Options{Strict: o.strict})
	if err != nil {
		return err
	}
	switch o.format {
	case "json":
		err = check.WriteJSON(g.stdout, r)
	case "junit":
		err = check.WriteJUnit(g.stdout, r)
	default:
		st := check.Plain
		if g.style.On() {
			st = check.ANSI
		}
		err = check.WriteText(g.stdout, r, st)
	}
	if err != nil {
		return err
	}
	if r.HasErrors() {
		return ui.Exit(ui.ExitFindings)
	}
	return nil
}
