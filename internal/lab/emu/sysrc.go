package emu

import (
	"fmt"
	"os"
	"strings"
)

func init() {
	commands["sysrc"] = sysrcCmd
}

// sysrcCmd follows sysrc(8) (freebsd.md §3.3): reads search rc_conf_files
// (last assignment wins), writes replace the last occurrence in the last
// file that has the variable or append to the first file; -f FILE replaces
// the file list; -c only checks; += appends words without duplicates.
func sysrcCmd(e *env, args []string) int {
	opts, rest, err := getopts(args[1:], "cdDeEFhinNqvxs:f:j:R:")
	if err != nil {
		fmt.Fprintf(e.stderr, "sysrc: %v\n", err)
		return 2
	}
	var files []string
	flag := map[string]bool{}
	root := e.root
	for _, o := range opts {
		switch o[0] {
		case "f":
			files = append(files, o[1])
		case "R":
			root = Path(e.root, o[1])
		case "j":
			r := e.findRunning(o[1])
			if r == nil {
				fmt.Fprintf(e.stderr, "sysrc: %s: not a running jail\n", o[1])
				return 1
			}
			root = e.m(r.path)
		default:
			flag[o[0]] = true
		}
	}
	if len(rest) == 0 {
		fmt.Fprintln(e.stderr, "usage: sysrc [-cdDeEFhinNqvx] [-s name] [-f file] [-j jail | -R dir] name[[+|-]=value] ...")
		return 2
	}
	writeFiles := files
	readFiles := files
	if len(files) == 0 {
		writeFiles = []string{"/etc/rc.conf", "/etc/rc.conf.local"}
		readFiles = append([]string{"/etc/defaults/rc.conf"}, writeFiles...)
	}
	hp := func(f string) string { return Path(root, f) }
	code := 0
	for _, arg := range rest {
		name, value, assign := strings.Cut(arg, "=")
		op := "="
		if assign && (strings.HasSuffix(name, "+") || strings.HasSuffix(name, "-")) {
			op = name[len(name)-1:] + "="
			name = name[:len(name)-1]
		}
		if !validVarName(name) {
			fmt.Fprintf(e.stderr, "sysrc: %s: name contains characters not allowed in shell\n", name)
			code = 1
			continue
		}
		var hpaths []string
		for _, f := range readFiles {
			hpaths = append(hpaths, hp(f))
		}
		cur, found := rcValue(hpaths, name)
		switch {
		case flag["x"]:
			if flag["c"] {
				if found {
					code = 1
				}
				continue
			}
			for _, f := range writeFiles {
				if err := rcEdit(hp(f), name, "", true); err != nil {
					fmt.Fprintf(e.stderr, "sysrc: %v\n", err)
					code = 1
				}
			}
		case !assign:
			if !found {
				if !flag["c"] && !flag["i"] {
					fmt.Fprintf(e.stderr, "sysrc: unknown variable '%s'\n", name)
				}
				if !flag["i"] {
					code = 1
				}
				continue
			}
			if flag["c"] {
				continue
			}
			e.sysrcPrint(flag, name, cur)
		default:
			newv := value
			switch op {
			case "+=":
				newv = wordsAdd(cur, value)
			case "-=":
				newv = wordsDel(cur, value)
			}
			if flag["c"] {
				if !found || newv != cur {
					code = 1
				}
				continue
			}
			// The last file that has the variable gets the change;
			// otherwise the first file (freebsd.md §3.3).
			target := writeFiles[0]
			for _, f := range writeFiles {
				if _, ok := rcValue([]string{hp(f)}, name); ok {
					target = f
				}
			}
			if err := rcEdit(hp(target), name, newv, false); err != nil {
				fmt.Fprintf(e.stderr, "sysrc: %v\n", err)
				code = 1
				continue
			}
			switch {
			case flag["q"]:
			case flag["n"]:
				fmt.Fprintln(e.stdout, newv)
			default:
				fmt.Fprintf(e.stdout, "%s: %s -> %s\n", name, cur, newv)
			}
		}
	}
	return code
}

func (e *env) sysrcPrint(flag map[string]bool, name, v string) {
	switch {
	case flag["n"]:
		fmt.Fprintln(e.stdout, v)
	case flag["e"]:
		fmt.Fprintf(e.stdout, "%s=\"%s\"\n", name, v)
	default:
		fmt.Fprintf(e.stdout, "%s: %s\n", name, v)
	}
}

// wordsAdd appends each word not already present, separated by a space
// (sysrc(8): an alphanumeric first character means whitespace separation).
func wordsAdd(cur, add string) string {
	words := strings.Fields(cur)
	for _, w := range strings.Fields(add) {
		dup := false
		for _, x := range words {
			dup = dup || x == w
		}
		if !dup {
			words = append(words, w)
		}
	}
	return strings.Join(words, " ")
}

func wordsDel(cur, del string) string {
	drop := map[string]bool{}
	for _, w := range strings.Fields(del) {
		drop[w] = true
	}
	var out []string
	for _, w := range strings.Fields(cur) {
		if !drop[w] {
			out = append(out, w)
		}
	}
	return strings.Join(out, " ")
}

// rcEdit sets (or with remove, deletes every assignment of) a variable in
// one file, replacing only its last assignment and keeping all other lines.
func rcEdit(path, name, value string, remove bool) error {
	b, err := os.ReadFile(path)
	if err != nil && !os.IsNotExist(err) {
		return fmt.Errorf("read %s: %w", path, err)
	}
	if remove && err != nil {
		return nil
	}
	lines, vars := parseRC(string(b))
	last := -1
	drop := map[int]bool{}
	for _, v := range vars {
		if v.name == name {
			last = v.line
			drop[v.line] = true
		}
	}
	newLine := fmt.Sprintf("%s=\"%s\"", name, value)
	var out []string
	for i, l := range lines {
		switch {
		case remove && drop[i]:
		case !remove && i == last:
			out = append(out, newLine)
		default:
			out = append(out, l)
		}
	}
	if !remove && last < 0 {
		out = append(out, newLine)
	}
	if remove && len(drop) == 0 {
		return nil
	}
	mode := os.FileMode(0o644)
	if fi, err := os.Stat(path); err == nil {
		mode = fi.Mode().Perm()
	}
	return writeFile(path, []byte(strings.Join(out, "\n")+"\n"), mode)
}
