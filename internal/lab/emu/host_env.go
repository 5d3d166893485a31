package emu

import (
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"sort"
	"strings"
)

// envCmd: env [-0iv] [-L user/class] [-P altpath] [-u name] [name=value ...]
// [utility [argument ...]] (FreeBSD env(1)). -L adds the login class's
// environment (login.conf(5)); the lab has no login classes, so it adds
// nothing. The lab's own variables (LAB_*) survive -i: they are the lab's
// plumbing (which jail a call runs in), not the program's environment.
func envCmd(e *env, args []string) int {
	a := args[1:]
	vars := os.Environ()
	altPath := ""
	for len(a) > 0 && strings.HasPrefix(a[0], "-") && a[0] != "-" {
		switch a[0] {
		case "-i":
			var keep []string
			for _, v := range vars {
				if strings.HasPrefix(v, "LAB_") || strings.HasPrefix(v, "BASH_FUNC_command_not_found_handle") || strings.HasPrefix(v, "BASH_FUNC_setvar") {
					keep = append(keep, v)
				}
			}
			vars = keep
			a = a[1:]
		case "-L", "-P", "-u":
			if len(a) < 2 {
				fmt.Fprintln(e.stderr, "usage: env [-0iv] [-L|-U user[/class]] [-P utilpath] [-S string] [-u name] [name=value ...] [utility [argument ...]]")
				return 1
			}
			switch a[0] {
			case "-P":
				altPath = a[1]
			case "-u":
				vars = unsetVar(vars, a[1])
			}
			a = a[2:]
		case "-v", "-0":
			a = a[1:]
		case "--":
			a = a[1:]
			goto names
		default:
			fmt.Fprintf(e.stderr, "env: illegal option -- %s\n", strings.TrimPrefix(a[0], "-"))
			return 1
		}
	}
names:
	for len(a) > 0 && strings.Contains(a[0], "=") {
		name := a[0][:strings.IndexByte(a[0], '=')]
		vars = append(unsetVar(vars, name), a[0])
		a = a[1:]
	}
	if len(a) == 0 {
		sort.Strings(vars)
		for _, v := range vars {
			if !strings.HasPrefix(v, "LAB_") && !strings.HasPrefix(v, "BASH_FUNC_") {
				fmt.Fprintln(e.stdout, v)
			}
		}
		return 0
	}
	path := altPath
	if path == "" {
		for _, v := range vars {
			if strings.HasPrefix(v, "PATH=") {
				path = v[5:]
			}
		}
	}
	prog, err := lookPath(a[0], path)
	if err != nil {
		fmt.Fprintf(e.stderr, "env: %s: No such file or directory\n", a[0])
		return 127
	}
	c := exec.Command(prog, a[1:]...)
	c.Args[0] = a[0]
	c.Env = vars
	c.Stdin, c.Stdout, c.Stderr = e.stdin, e.stdout, e.stderr
	if err := c.Run(); err != nil {
		if x, ok := err.(*exec.ExitError); ok {
			return x.ExitCode()
		}
		fmt.Fprintf(e.stderr, "env: %s: %v\n", a[0], err)
		return 126
	}
	return 0
}

func unsetVar(vars []string, name string) []string {
	var out []string
	for _, v := range vars {
		if !strings.HasPrefix(v, name+"=") {
			out = append(out, v)
		}
	}
	return out
}

// lookPath finds prog in the colon-separated path (execvp(3)).
func lookPath(prog, path string) (string, error) {
	if strings.Contains(prog, "/") {
		if _, err := os.Stat(prog); err != nil {
			return "", err
		}
		return prog, nil
	}
	if path == "" {
		path = "/usr/bin:/bin"
	}
	for _, d := range strings.Split(path, ":") {
		if d == "" {
			d = "."
		}
		p := d + "/" + prog
		if fi, err := os.Stat(p); err == nil && !fi.IsDir() && fi.Mode()&0o111 != 0 {
			return p, nil
		}
	}
	return "", os.ErrNotExist
}

// LoginShell is /bin/bash on a host that runs the upstream code: sshd starts
// the shell that the lab machine's own passwd entry names on this box
// (/bin/bash for root on Debian), before and regardless of the chroot's
// /etc/passwd. The stand-in runs FreeBSD 14's root shell, /bin/sh, with the
// same arguments, so that a session gets what FreeBSD would give it.
func loginShellCmd(e *env, args []string) int {
	c := exec.Command("/bin/sh", args[1:]...)
	c.Args[0] = "sh"
	c.Env = append(os.Environ(), ShellEnv...)
	if strings.HasPrefix(filepath.Base(args[0]), "-") {
		c.Args[0] = "-sh" // a login shell (sshd prefixes argv[0] with '-')
	}
	c.Stdin, c.Stdout, c.Stderr = e.stdin, e.stdout, e.stderr
	code := 0
	if err := c.Run(); err != nil {
		if x, ok := err.(*exec.ExitError); ok {
			code = x.ExitCode()
		} else {
			fmt.Fprintf(e.stderr, "sh: %v\n", err)
			code = 126
		}
	}
	// A session's command that is one of the upstream programs the
	// emulator used to answer for is logged like an emulated call, so the
	// call log shows `ezjail-admin create …` in both modes.
	if len(args) == 3 && args[1] == "-c" {
		// arbo's command lines are `echo MARKER;CMD` (remote.Run frames
		// the command's output after any login banner): CMD is the command.
		line := args[2]
		if head, rest, ok := strings.Cut(line, ";"); ok {
			if w, ok := simpleCommand(head); ok && len(w) == 2 && w[0] == "echo" {
				line = rest
			}
		}
		if words, ok := simpleCommand(line); ok && upstreamProgram(words[0]) {
			e.logCall(words, code)
		}
	}
	return code
}

// upstreamProgram reports the programs that run from the upstream folder
// on a real-code host (internal/lab/upstream.go) and are entry points for
// arbo: ezjail-admin, service, and the rc scripts.
func upstreamProgram(p string) bool {
	switch filepath.Base(p) {
	case "ezjail-admin", "service":
		return true
	}
	return strings.HasPrefix(p, "/etc/rc.d/") || strings.HasPrefix(p, "/usr/local/etc/rc.d/")
}

// simpleCommand splits a command line of bare and single-quoted words (as
// arbo's remote.Quote writes them) into its words; anything else (an
// operator, a variable, double quotes) is not simple.
func simpleCommand(s string) ([]string, bool) {
	var words []string
	var cur strings.Builder
	inWord := false
	for i := 0; i < len(s); i++ {
		c := s[i]
		switch {
		case c == '\'':
			j := strings.IndexByte(s[i+1:], '\'')
			if j < 0 {
				return nil, false
			}
			cur.WriteString(s[i+1 : i+1+j])
			i += j + 1
			inWord = true
		case c == '\\' && i+1 < len(s):
			cur.WriteByte(s[i+1])
			i++
			inWord = true
		case c == ' ' || c == '\t':
			if inWord {
				words = append(words, cur.String())
				cur.Reset()
				inWord = false
			}
		case strings.IndexByte(";&|<>()$`\"\n*?[]~#{}", c) >= 0:
			return nil, false
		default:
			cur.WriteByte(c)
			inWord = true
		}
	}
	if inWord {
		words = append(words, cur.String())
	}
	return words, len(words) > 0
}
