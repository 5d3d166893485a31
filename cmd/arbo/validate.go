package main

import (
	"errors"

	"github.com/spf13/cobra"

	"github.com/arbo-project/arbo/inventory"
	"github.com/arbo-project/arbo/ui"
	"github.com/arbo-project/arbo/view"
)

type validateOptions struct {
	format string
}

func newValidateCommand(g *globalOptions) *cobra.Command {
	var o validateOptions
	cmd := &cobra.Command{
		Use:   "validate FILE",
		Short: "Load a topology file and report every problem in it",
		Long: `validate loads a topology file, applies its defaults and reports every
problem found, one per line as FILE:LINE:COL: key.path: message. It checks
the file, not the design: see "arbo check" for that.`,
		Args: cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			return runValidate(g, o, args[0])
		},
	}
	cmd.Flags().StringVar(&o.format, "format", "text", "output format: text or json")
	return cmd
}

func runValidate(g *globalOptions, o validateOptions, file string) error {
	if err := formatFlag(o.format, "text", "json"); err != nil {
		return err
	}
	c, err := inventory.Load(file)
	var le *inventory.LoadError
	if err != nil && !errors.As(err, &le) {
		return err
	}
	if o.format == "json" {
		if werr := view.ValidateJSON(g.stdout, file, c, le); werr != nil {
			return werr
		}
		if le != nil {
			return ui.Exit(ui.ExitError)
		}
		return nil
	}
	if le != nil {
		return err
	}
	return view.ValidateText(g.stdout, g.style, file, c)
}
