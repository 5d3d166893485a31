package main

import (
	"github.com/spf13/cobra"

	"github.com/arbo-project/arbo/view"
)

func newVersionCommand(g *globalOptions) *cobra.Command {
	var format string
	cmd := &cobra.Command{
		Use:   "version",
		Short: "Print arbo's version and build information",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, args []string) error {
			if err := formatFlag(format, "text", "json"); err != nil {
				return err
			}
			return view.Version(g.stdout, format, view.ReadBuildInfo())
		},
	}
	cmd.Flags().StringVar(&format, "format", "text", "output format: text or json")
	return cmd
}
