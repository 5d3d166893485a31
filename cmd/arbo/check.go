package main

import (
	"context"
	"fmt"

	"github.com/spf13/cobra"

	"github.com/arbo-project/arbo/check"
	"github.com/arbo-project/arbo/check/rendered"
	"github.com/arbo-project/arbo/deploy"
	"github.com/arbo-project/arbo/inventory"
	"github.com/arbo-project/arbo/templates"
	"github.com/arbo-project/arbo/ui"
)

type checkOptions struct {
	format    string
	strict    bool
	templates string
	live      bool
	ssh       runOptions // --live: how to reach the machines, as plan
}

func newCheckCommand(g *globalOptions) *cobra.Command {
	var o checkOptions
	cmd := &cobra.Command{
		Use:   "check FILE",
		Short: "Prove the design safe: tiers apart, data never exposed, no single point of failure",
		Long: `check runs the rules ARBO003-ARBO015 on a topology: app and data tiers on
different networks on every host, the firewall denying every flow between
tiers that no service allows, data never reachable from outside, Erlang
ports only between Erlang tiers, management SSH always open, enough
jails on enough hosts to survive the loss of one, no jail reaching its
own host unless the topology allows it, and with erlang.tls the cluster CA
and every node certificate present, matching and not expired (ARBO014).
The firewall rules are
judged on each host's rendered /etc/pf.conf (with --templates overrides),
parsed; a rendered file arbo cannot parse is an error (exit 1).

With --live it judges what the machines run instead, read-only over SSH
(the same settings as plan): each host's loaded pf rules (pfctl -sr, -sn,
its tables), plus ARBO015: every machine can be read, pf is enabled, the
loaded rules are the ones arbo loaded, and pfSense runs arbo's rules. An
unreachable machine is an ARBO015 error; a listing arbo cannot parse is an
error naming the machine and the line (exit 1).

Findings listed under "accept:" in the topology are reported as accepted
and never fail a run. Exit code 3 when an error-level finding remains.`,
		Args: cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			return runCheck(cmd.Context(), g, o, args[0])
		},
	}
	cmd.Flags().StringVar(&o.format, "format", "text", "output format: text, json or junit")
	cmd.Flags().BoolVar(&o.strict, "strict", false, "treat warnings (ARBO008, ARBO009) as errors")
	cmd.Flags().StringVar(&o.templates, "templates", "", "directory whose *.tmpl files replace the embedded templates of the same name")
	cmd.Flags().BoolVar(&o.live, "live", false, "judge the rules the machines run (read-only, over SSH), and ARBO015")
	cmd.Flags().StringArrayVar(&o.ssh.hosts, "host", nil, "with --live: only this machine (repeatable)")
	cmd.Flags().IntVar(&o.ssh.parallel, "parallel", 0, "with --live: machines read at once (default: all, up to 32)")
	o.ssh.addSSHFlags(cmd.Flags())
	return cmd
}

func runCheck(ctx context.Context, g *globalOptions, o checkOptions, file string) error {
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
	var r *check.Report
	if o.live {
		r, err = deploy.CheckLive(ctx, c, o.strict, o.ssh.deploy(g))
	} else {
		if len(o.ssh.hosts) > 0 {
			return fmt.Errorf("--host needs --live")
		}
		r, err = rendered.Run(c, ts, check.Options{Strict: o.strict})
	}
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
