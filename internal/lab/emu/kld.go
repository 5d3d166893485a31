package emu

import (
	"fmt"
	"os"
	"strings"
)

func init() { commands["kldload"] = kldloadCmd }

// kldloadCmd: kldload [-nqv] file ... (kldload(8)). The machine's loaded
// modules are the lines of StateDir/kld. Without -n loading a module that
// is already loaded fails ("module already loaded or in kernel"), as on
// FreeBSD; with -n it is skipped. Only pf and pflog exist (what arbo loads).
func kldloadCmd(e *env, args []string) int {
	opts, rest, err := getopts(args[1:], "nqv")
	if err != nil || len(rest) == 0 {
		fmt.Fprintln(e.stderr, "usage: kldload [-nqv] file ...")
		return 1
	}
	_, skip := optMap(opts)["n"]
	path := e.m(StateDir + "/kld")
	b, _ := os.ReadFile(path)
	loaded := map[string]bool{}
	for _, l := range strings.Fields(string(b)) {
		loaded[l] = true
	}
	for _, mod := range rest {
		mod = strings.TrimSuffix(mod, ".ko")
		if mod != "pf" && mod != "pflog" {
			fmt.Fprintf(e.stderr, "kldload: can't load %s: No such file or directory\n", mod)
			return 1
		}
		if loaded[mod] {
			if skip {
				continue
			}
			fmt.Fprintf(e.stderr, "kldload: can't load %s: module already loaded or in kernel\n", mod)
			return 1
		}
		loaded[mod] = true
		b = append(b, mod+"\n"...)
	}
	if err := writeFile(path, b, 0o644); err != nil {
		fmt.Fprintf(e.stderr, "kldload: %v\n", err)
		return 1
	}
	return 0
}
