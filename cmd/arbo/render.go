package main

import (
	"errors"
	"fmt"
	"time"

	"github.com/spf13/cobra"

	"github.com/arbo-project/arbo/deploy"
	"github.com/arbo-project/arbo/ui"
)

func newRenderCommand(g *globalOptions) *cobra.Command {
	var o deploy.RenderOptions
	cmd := &cobra.Command{
		Use:   "render FILE -o DIR",
		Short: "Write every file each machine needs into a directory, touching no machine",
		Long: `render writes each machine's files under DIR/<machine>/<absolute path>
(e.g. DIR/server1/etc/pf.conf, DIR/gate/cf/conf/config.xml), DIR/manifest.json
listing every file with its mode, owner, sensitivity and reload actions, and
the zone as RFC 1035 files under DIR/exports/. Output is deterministic; set
SOURCE_DATE_EPOCH to fix config.xml's revision time.

The Erlang cookie file must exist (the rendered files hold it).`,
		Args: cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			if o.Dir == "" {
				return errors.New("render needs -o DIR: where to write the files")
			}
			o.Getenv, o.Now = g.getenv, time.Now
			machines, warnings, err := deploy.Render(args[0], o)
			if err != nil {
				return err
			}
			for _, w := range warnings {
				fmt.Fprintf(g.stderr, "warning: %s\n", ui.EscapeLine(w)) // may quote the --pfsense-base config.xml
			}
			files := 0
			for _, m := range machines {
				files += len(m.Files)
			}
			fmt.Fprintf(g.stdout, "Rendered %d files for %d machines into %s\n", files, len(machines), o.Dir)
			return nil
		},
	}
	cmd.Flags().StringVarP(&o.Dir, "output", "o", "", "directory to write into")
	cmd.Flags().StringVar(&o.PfSenseBase, "pfsense-base", "", "the gateway's current config.xml to merge into (default: pfSense's factory config)")
	cmd.Flags().StringVar(&o.CookieFile, "cookie-file", "", "read the Erlang cookie from this file instead of the topology's erlang.cookie_file")
	cmd.Flags().StringVar(&o.TemplatesDir, "templates", "", "directory whose *.tmpl files replace the embedded templates of the same name")
	return cmd
}
