package main

import (
	"time"

	"github.com/spf13/cobra"

	"github.com/arbo-project/arbo/check/verify"
	"github.com/arbo-project/arbo/deploy"
	"github.com/arbo-project/arbo/inventory"
	"github.com/arbo-project/arbo/plan"
	"github.com/arbo-project/arbo/ui"
)

type verifyOptions struct {
	format string
	wait   time.Duration
	ssh    runOptions
}

func newVerifyCommand(g *globalOptions) *cobra.Command {
	var o verifyOptions
	cmd := &cobra.Command{
		Use:   "verify FILE",
		Short: "Prove the cluster works: names resolve, allowed flows connect, forbidden ones do not",
		Long: `verify runs probes inside each jail after an apply, read-only, over SSH
(the same settings as plan), with FreeBSD's base tools through jexec: every
jail and tier name resolves to its addresses from every jail (host), every
allowed TCP flow between tiers connects (nc -z; a closed port is reported as
"no listener", not as a block), a sample of forbidden flows (each tier pair
no service allows, each host's jail to its own host) is refused, and epmd in
each jail of an Erlang tier lists the node. One command per jail, jails in
parallel, each with a timeout (--wait per probe).

Exit code 3 when a probe contradicts the topology or could not run.`,
		Args: cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			if err := formatFlag(o.format, "text", "json", "junit"); err != nil {
				return err
			}
			c, err := inventory.Load(args[0])
			if err != nil {
				return err
			}
			if _, err := plan.Selected(c, o.ssh.hosts); err != nil {
				return err
			}
			r := deploy.Verify(cmd.Context(), c, o.wait, o.ssh.deploy(g))
			switch o.format {
			case "json":
				err = verify.WriteJSON(g.stdout, r)
			case "junit":
				err = verify.WriteJUnit(g.stdout, r)
			default:
				err = verify.WriteText(g.stdout, r)
			}
			if err != nil {
				return err
			}
			if r.HasFailures() {
				return ui.Exit(ui.ExitFindings)
			}
			return nil
		},
	}
	cmd.Flags().StringVar(&o.format, "format", "text", "output format: text, json or junit")
	cmd.Flags().DurationVar(&o.wait, "wait", 3*time.Second, "how long one probe waits for an answer (nc -w, host -W)")
	cmd.Flags().StringArrayVar(&o.ssh.hosts, "host", nil, "only probe from the jails of this host (repeatable)")
	cmd.Flags().IntVar(&o.ssh.parallel, "parallel", 0, "hosts probed at once (default: all, up to 32)")
	o.ssh.addSSHFlags(cmd.Flags())
	return cmd
}
