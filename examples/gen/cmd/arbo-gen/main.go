// Command arbo-gen writes a large, valid topology file to standard output:
//
//	arbo-gen -hosts 1000 -jails 20 > topology.yaml
package main

import (
	"flag"
	"fmt"
	"os"

	"github.com/arbo-project/arbo/examples/gen"
)

func main() {
	hosts := flag.Int("hosts", 3, fmt.Sprintf("number of hosts (1-%d)", gen.MaxHosts))
	jails := flag.Int("jails", 2, fmt.Sprintf("jails per host (1-%d), alternating app and data", gen.MaxJailsPerHost))
	flag.Parse()
	if flag.NArg() > 0 || *hosts < 1 || *hosts > gen.MaxHosts || *jails < 1 || *jails > gen.MaxJailsPerHost {
		fmt.Fprintln(os.Stderr, "usage: arbo-gen [-hosts N] [-jails M] > topology.yaml")
		flag.PrintDefaults()
		os.Exit(2)
	}
	if _, err := os.Stdout.Write(gen.Topology(*hosts, *jails)); err != nil {
		fmt.Fprintln(os.Stderr, "arbo-gen:", err)
		os.Exit(1)
	}
}
