package emu

import (
	"fmt"
	"os"
	"strings"
)

func init() {
	commands["unbound-checkconf"] = unboundCheckconfCmd
}

// unboundCheckconfCmd: unbound-checkconf [file] (the port installs it as
// /usr/local/sbin/unbound-checkconf and its rc script runs it before start
// and reload: freebsd-ports dns/unbound/files/unbound.in:69 and :87). The
// default file is the port's /usr/local/etc/unbound/unbound.conf. The lab
// only checks that the file exists and has a server: clause.
func unboundCheckconfCmd(e *env, args []string) int {
	_, rest, err := getopts(args[1:], "fo:")
	if err != nil || len(rest) > 1 {
		fmt.Fprintln(e.stderr, "Usage:	unbound-checkconf [file]")
		return 1
	}
	conf := "/usr/local/etc/unbound/unbound.conf"
	if len(rest) == 1 {
		conf = rest[0]
	}
	if c := e.unboundCheckconf(conf); c != 0 {
		return c
	}
	fmt.Fprintf(e.stdout, "unbound-checkconf: no errors in %s\n", conf)
	return 0
}

// unboundCheckconf fails when conf is missing or has no "server:" clause.
func (e *env) unboundCheckconf(conf string) int {
	b, err := os.ReadFile(e.p(conf))
	if err != nil {
		fmt.Fprintf(e.stderr, "[lab] unbound-checkconf: could not open %s: %v\n", conf, unwrapPathErr(err))
		return 1
	}
	for _, l := range strings.Split(string(b), "\n") {
		if strings.HasPrefix(strings.TrimSpace(l), "server:") {
			return 0
		}
	}
	fmt.Fprintf(e.stderr, "%s: no server: clause\nunbound-checkconf: config file %s has errors\n", conf, conf)
	return 1
}
