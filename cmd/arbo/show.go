package main

import (
	"fmt"
	"os"

	"github.com/spf13/cobra"

	"github.com/arbo-project/arbo/plan"
	"github.com/arbo-project/arbo/view"
)

func newShowCommand(g *globalOptions) *cobra.Command {
	var format string
	cmd := &cobra.Command{
		Use:   "show PLANFILE",
		Short: "Print a saved plan the way plan printed it",
		Args:  cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			if err := formatFlag(format, "text", "json"); err != nil {
				return err
			}
			b, err := os.ReadFile(args[0])
			if err != nil {
				return err
			}
			p, err := plan.Decode(b)
			if err != nil {
				return fmt.Errorf("%s: %w", args[0], err)
			}
			if format == "json" {
				return view.PlanJSON(g.stdout, p)
			}
			return view.PlanText(g.stdout, g.style, p)
		},
	}
	cmd.Flags().StringVar(&format, "format", "text", "output format: text or json")
	return cmd
}
