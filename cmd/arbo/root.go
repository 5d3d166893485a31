package main

import (
	"fmt"
	"io"

	"github.com/spf13/cobra"

	"github.com/arbo-project/arbo/ui"
)

// globalOptions are the flags every command shares, and the process's
// streams and environment, so that commands use no globals and tests can
// run them in-process.
type globalOptions struct {
	color   string
	noColor bool

	stdin          io.Reader
	stdout, stderr io.Writer
	getenv         func(string) string

	style ui.Style // decided once flags are parsed
}

func newRootCommand(g *globalOptions) *cobra.Command {
	cmd := &cobra.Command{
		Use:   "arbo",
		Short: "Provision FreeBSD jail clusters behind a pfSense gateway",
		Long: `arbo provisions FreeBSD jail clusters from one topology file: ezjail jails
for the application and data tiers, pf on every host, internal DNS, the
pfSense gateway and the Erlang cluster inside the jails.

  arbo check  topology.yaml   prove the design is safe
  arbo plan   topology.yaml   show what would change on every machine
  arbo apply  topology.yaml   make it so, over SSH`,
		SilenceUsage:  true,
		SilenceErrors: true,
		PersistentPreRunE: func(cmd *cobra.Command, args []string) error {
			on, err := ui.ColorMode(g.color, g.noColor, g.getenv, ui.IsTerminal(g.stdout))
			if err != nil {
				return err
			}
			g.style = ui.NewStyle(on)
			return nil
		},
	}
	f := cmd.PersistentFlags()
	f.StringVar(&g.color, "color", "", "colour output: auto, always or never (default auto: only on a terminal without NO_COLOR; ARBO_FORCE_COLOR forces it)")
	f.BoolVar(&g.noColor, "no-color", false, "same as --color=never")
	cmd.SetHelpTemplate(cmd.HelpTemplate() + "\n" + ui.ExitCodesHelp + "\n")
	cmd.AddCommand(
		newValidateCommand(g),
		newCheckCommand(g),
		newPlanCommand(g),
		newApplyCommand(g),
		newVerifyCommand(g),
		newShowCommand(g),
		newRenderCommand(g),
		newVersionCommand(g),
		newGraphCommand(g),
		newCompletionCommand(g),
		newManCommand(g),
		newErlangCommand(g),
	)
	return cmd
}

// formatFlag validates a --format value against the formats a command knows.
func formatFlag(value string, allowed ...string) error {
	for _, a := range allowed {
		if value == a {
			return nil
		}
	}
	return fmt.Errorf("--format %q: want one of %v", value, allowed)
}
