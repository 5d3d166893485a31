package main

import (
	"bytes"

	"github.com/spf13/cobra"

	"github.com/arbo-project/arbo/graph"
	"github.com/arbo-project/arbo/inventory"
)

func newGraphCommand(g *globalOptions) *cobra.Command {
	var format string
	cmd := &cobra.Command{
		Use:   "graph FILE",
		Short: "Draw the topology as a Graphviz graph (DOT or SVG)",
		Long: `graph draws the topology: the gateway, each host with its jails (coloured
by tier; data tiers as warm-coloured cylinders), the networks the machines
sit on, and the flows between tiers that the services allow, labelled with
protocol and ports.

--format dot (the default) prints Graphviz's DOT; --format svg runs Graphviz's
dot on it, which must be installed:

  arbo graph topology.yaml | dot -Tpng > topology.png
  arbo graph --format svg topology.yaml > topology.svg`,
		Args: cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			if err := formatFlag(format, "dot", "svg"); err != nil {
				return err
			}
			c, err := inventory.Load(args[0])
			if err != nil {
				return err
			}
			if format == "dot" {
				return graph.DOT(g.stdout, c)
			}
			var b bytes.Buffer
			if err := graph.DOT(&b, c); err != nil {
				return err
			}
			svg, err := graph.Render(cmd.Context(), b.Bytes(), "svg")
			if err != nil {
				return err
			}
			_, err = g.stdout.Write(svg)
			return err
		},
	}
	cmd.Flags().StringVar(&format, "format", "dot", "output format: dot or svg (svg needs Graphviz's dot)")
	return cmd
}
