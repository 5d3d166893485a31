package emu

import (
	"bufio"
	"fmt"
	"os"
	"sort"
	"strings"
)

func init() {
	commands["pkg"] = pkgCmd
}

// PkgDB is the lab's package database inside a root: one installed package
// name per line (it stands in for /var/db/pkg/local.sqlite).
const PkgDB = "/var/db/pkg/lab-installed"

// pkgVersion is the version every emulated package reports.
const pkgVersion = "0.lab"

// pkgCmd: pkg [-r root | -c chroot | -j jail] info|install|delete|bootstrap
// (pkg(8)). Every package name is installable; a failure is injected with
// the FailDir/pkg fault.
func pkgCmd(e *env, args []string) int {
	a := args[1:]
	root := e.root
	for len(a) > 1 && strings.HasPrefix(a[0], "-") {
		switch a[0] {
		case "-r", "-c":
			root = Path(e.root, a[1])
			a = a[2:]
		case "-j":
			r := e.findRunning(a[1])
			if r == nil {
				fmt.Fprintf(e.stderr, "pkg: jail '%s' not found\n", a[1])
				return 1
			}
			root = e.m(r.path)
			a = a[2:]
		default:
			a = a[1:] // -N, -4, -6, -d …
		}
	}
	if len(a) == 0 {
		fmt.Fprintln(e.stderr, "Usage: pkg [-v] [-d] [-l] [-N] [-j <jail name or id>|-c <chroot path>|-r <rootdir>] [-C <configuration file>] [-R <repo config dir>] [-o var=value] [-4|-6] <command> [<args>]")
		return 1
	}
	db := Path(root, PkgDB)
	installed, err := readLines(db)
	if err != nil {
		fmt.Fprintf(e.stderr, "pkg: %v\n", err)
		return 1
	}
	sub, rest := a[0], a[1:]
	flags, names := map[string]bool{}, []string{}
	for _, x := range rest {
		if strings.HasPrefix(x, "-") && len(x) > 1 {
			for _, c := range x[1:] {
				flags[string(c)] = true
			}
		} else {
			names = append(names, x)
		}
	}
	switch sub {
	case "bootstrap":
		return 0
	case "info":
		if flags["e"] {
			for _, n := range names {
				if !contains(installed, n) {
					return 1
				}
			}
			return 0
		}
		list := installed
		if len(names) > 0 {
			list = nil
			for _, n := range names {
				if !contains(installed, n) {
					fmt.Fprintf(e.stderr, "pkg: No package(s) matching %s\n", n)
					return 1
				}
				list = append(list, n)
			}
		}
		for _, n := range list {
			if flags["q"] {
				fmt.Fprintf(e.stdout, "%s-%s\n", n, pkgVersion)
			} else {
				fmt.Fprintf(e.stdout, "%-35s %s\n", n+"-"+pkgVersion, "lab package "+n)
			}
		}
		return 0
	case "install", "add":
		var todo []string
		for _, n := range names {
			if !contains(installed, n) && !contains(todo, n) {
				todo = append(todo, n)
			}
		}
		if len(todo) == 0 {
			fmt.Fprintln(e.stdout, "The most recent versions of packages are already installed")
			return 0
		}
		fmt.Fprintln(e.stdout, "The following packages will be affected (of 0 checked):\n\nNew packages to be INSTALLED:")
		for _, n := range todo {
			fmt.Fprintf(e.stdout, "\t%s: %s\n", n, pkgVersion)
		}
		if !e.pkgConfirm(flags["y"]) {
			return 1
		}
		installed = append(installed, todo...)
		for _, n := range todo {
			if err := e.pkgInstallFiles(root, n); err != nil {
				fmt.Fprintf(e.stderr, "pkg: %v\n", err)
				return 1
			}
		}
	case "delete", "remove":
		var keep []string
		for _, n := range installed {
			if !contains(names, n) {
				keep = append(keep, n)
			}
		}
		if !e.pkgConfirm(flags["y"]) {
			return 1
		}
		installed = keep
	default:
		fmt.Fprintf(e.stderr, "pkg: %s is not emulated by the lab\n", sub)
		return 1
	}
	sort.Strings(installed)
	if err := writeLines(db, installed); err != nil {
		fmt.Fprintf(e.stderr, "pkg: %v\n", err)
		return 1
	}
	return 0
}

// UnboundRCStage is where a host that runs the upstream code keeps the
// installed form of the dns/unbound port's rc script (files/unbound.in with
// %%PREFIX%% = /usr/local); `pkg install unbound` copies it to the root's
// /usr/local/etc/rc.d/unbound, where the port's pkg-plist puts it.
const UnboundRCStage = "/usr/libexec/lab-upstream/unbound"

// pkgInstallFiles installs the files of package n the lab has: only the
// unbound port's rc script, when the host has it staged.
func (e *env) pkgInstallFiles(root, n string) error {
	if n != "unbound" {
		return nil
	}
	b, err := os.ReadFile(e.m(UnboundRCStage))
	if os.IsNotExist(err) {
		return nil
	}
	if err != nil {
		return err
	}
	return writeFile(Path(root, "/usr/local/etc/rc.d/unbound"), b, 0o755)
}

// pkgConfirm asks as pkg does; without -y or ASSUME_ALWAYS_YES an answer
// other than y on stdin (or none) declines.
func (e *env) pkgConfirm(assume bool) bool {
	if assume || yes(os.Getenv("ASSUME_ALWAYS_YES")) {
		return true
	}
	fmt.Fprint(e.stdout, "\nProceed with this action? [y/N]: ")
	if e.stdin == nil {
		fmt.Fprintln(e.stdout)
		return false
	}
	line, _ := bufio.NewReader(e.stdin).ReadString('\n')
	ans := strings.ToLower(strings.TrimSpace(line))
	return ans == "y" || ans == "yes"
}
