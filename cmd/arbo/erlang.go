package main

import (
	"fmt"
	"path/filepath"
	"time"

	"github.com/spf13/cobra"

	"github.com/arbo-project/arbo/erlang/tlsca"
	"github.com/arbo-project/arbo/inventory"
	"github.com/arbo-project/arbo/ui"
)

func newErlangCommand(g *globalOptions) *cobra.Command {
	cmd := &cobra.Command{
		Use:   "erlang",
		Short: "The Erlang cluster's TLS distribution: its CA and node certificates",
		Long: `With erlang.tls: true, Erlang distribution runs over TLS (inet_tls_dist):
every node presents a certificate of the cluster's own CA and checks the
other end's. The CA and the node certificates live in erlang-tls/ beside
erlang.cookie_file; keys are written with mode 0600 and never printed.

  arbo erlang ca init topology.yaml   create the CA and every node certificate
  arbo erlang certs topology.yaml     issue missing ones, renew those near their end`,
	}
	ca := &cobra.Command{
		Use:   "ca",
		Short: "The cluster CA",
	}
	ca.AddCommand(&cobra.Command{
		Use:   "init FILE",
		Short: "Create the cluster CA and issue every node's certificate",
		Long: `init creates the cluster CA (ECDSA P-256, valid ten years) in erlang-tls/
beside erlang.cookie_file, then issues one certificate per Erlang node (valid
one year) naming the node's host part: its address, or its FQDN with
node_host: fqdn. It says what it made; keys are never printed. It refuses to
replace an existing CA.`,
		Args: cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			c, err := inventory.Load(args[0])
			if err != nil {
				return err
			}
			acts, err := tlsca.Init(c, time.Now())
			printActions(g, acts)
			return err
		},
	})
	cmd.AddCommand(ca, &cobra.Command{
		Use:   "certs FILE",
		Short: "Issue missing node certificates and renew those near their end",
		Long: `certs issues a certificate to every Erlang node that has none, or whose
certificate is not the CA's, does not name the node, or ends within 30 days;
the others are kept. A renewed certificate is a change the next plan shows.`,
		Args: cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			c, err := inventory.Load(args[0])
			if err != nil {
				return err
			}
			acts, err := tlsca.Issue(c, time.Now())
			printActions(g, acts)
			return err
		},
	})
	return cmd
}

// printActions says what was made: paths and dates, never key material.
func printActions(g *globalOptions, acts []tlsca.Action) {
	for _, a := range acts {
		till := a.Till.UTC().Format("2006-01-02")
		key := filepath.Base(a.Key)
		switch a.What {
		case "created the CA":
			fmt.Fprintf(g.stdout, "Created the cluster CA %s (key %s, mode 0600), valid until %s\n", ui.Escape(a.Path), ui.Escape(key), till)
		case "kept":
			fmt.Fprintf(g.stdout, "Kept %s: %s, valid until %s\n", ui.Escape(a.Node), ui.Escape(a.Path), till)
		default:
			why := ""
			if a.Why != "" {
				why = " (" + ui.Escape(a.Why) + ")"
			}
			fmt.Fprintf(g.stdout, "%s %s%s: %s (key %s, mode 0600), valid until %s\n",
				upperFirst(a.What), ui.Escape(a.Node), why, ui.Escape(a.Path), ui.Escape(key), till)
		}
	}
}

func upperFirst(s string) string {
	if s == "" {
		return s
	}
	return string(s[0]-'a'+'A') + s[1:]
}
