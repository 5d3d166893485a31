package emu

import (
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"time"
)

func init() {
	commands["daemon"] = daemonCmd
	commands["logger"] = loggerCmd
	commands["sha256"] = sha256Cmd
	commands["uname"] = unameCmd
	commands["freebsd-version"] = freebsdVersionCmd
	commands["hostname"] = hostnameCmd
}

// daemonCmd: daemon [-f] [-p pidfile] [-P pidfile] [-o file] [-t title]
// [-T tag] [-r] [-S] cmd … (daemon(8)). The child gets a new session
// (setsid) and /dev/null (or -o) as stdio, so it survives the SSH session
// closing (freebsd.md §4.5 step 3). Approximation: there is no supervisor
// process, so -P writes the child's pid as -p does, and -r is ignored.
func daemonCmd(e *env, args []string) int {
	opts, rest, err := getopts(args[1:], "cfHrSm:o:p:P:R:l:s:T:t:u:")
	if err != nil || len(rest) == 0 {
		fmt.Fprintln(e.stderr, "usage: daemon [-cfHrS] [-p child_pidfile] [-P supervisor_pidfile] [-t title] [-u user] [-m output_mask] [-o output_file] [-s syslog_priority] [-T syslog_tag] [-l syslog_facility] [-R restart_delay_secs] command arguments ...")
		return 1
	}
	o := optMap(opts)
	// Inside a machine the command is found on PATH (emulated ones are
	// links to this binary). Under LAB_ROOT (tests) an emulated name is not
	// on the host's PATH, so this binary runs it.
	c := exec.Command(rest[0], rest[1:]...)
	if _, emulated := lookup(filepath.Base(rest[0])); c.Err != nil && emulated {
		self, err := os.Executable()
		if err == nil && !isTestBinary(self) {
			c = &exec.Cmd{Path: self, Args: rest}
		}
	}
	c.Env = append(withoutLabEnv(os.Environ()), RootEnv+"="+e.root, LogRootEnv+"="+e.logRoot, JailEnv+"="+e.jail)
	devnull, err := os.OpenFile(os.DevNull, os.O_RDWR, 0)
	if err != nil {
		fmt.Fprintf(e.stderr, "daemon: %v\n", err)
		return 1
	}
	defer devnull.Close()
	c.Stdin, c.Stdout, c.Stderr = devnull, devnull, devnull
	if out := o["o"]; out != "" {
		f, err := os.OpenFile(e.p(out), os.O_WRONLY|os.O_APPEND|os.O_CREATE, 0o600)
		if err != nil {
			fmt.Fprintf(e.stderr, "daemon: %s: %v\n", out, unwrapPathErr(err))
			return 1
		}
		defer f.Close()
		c.Stdout, c.Stderr = f, f
	}
	detach(c)
	if err := c.Start(); err != nil {
		fmt.Fprintf(e.stderr, "daemon: %v\n", err)
		return 1
	}
	pid := []byte(strconv.Itoa(c.Process.Pid) + "\n")
	for _, k := range []string{"p", "P"} {
		if pf := o[k]; pf != "" {
			if err := writeFile(e.p(pf), pid, 0o600); err != nil {
				fmt.Fprintf(e.stderr, "daemon: pidfile: %v\n", err)
				return 1
			}
		}
	}
	// Reap the child in the background while we live; once we exit, init
	// adopts it.
	go c.Wait()
	return 0
}

func isTestBinary(path string) bool { return strings.HasSuffix(filepath.Base(path), ".test") }

// loggerCmd appends a syslog-style line to /var/log/messages (logger(1)).
func loggerCmd(e *env, args []string) int {
	opts, rest, err := getopts(args[1:], "46Aisf:h:P:p:t:")
	if err != nil {
		fmt.Fprintf(e.stderr, "logger: %v\n", err)
		return 1
	}
	o := optMap(opts)
	tag := o["t"]
	if tag == "" {
		tag = "root"
	}
	if _, ok := o["i"]; ok {
		tag += "[" + strconv.Itoa(os.Getpid()) + "]"
	}
	var msgs []string
	if len(rest) > 0 {
		msgs = []string{strings.Join(rest, " ")}
	} else if e.stdin != nil {
		b, _ := io.ReadAll(e.stdin)
		msgs = append(msgs, strings.Split(strings.TrimRight(string(b), "\n"), "\n")...)
	}
	host := e.hostname()
	for _, m := range msgs {
		line := fmt.Sprintf("%s %s %s: %s", time.Now().Format(time.Stamp), host, tag, m)
		if err := appendLine(e.p("/var/log/messages"), line); err != nil {
			fmt.Fprintf(e.stderr, "logger: %v\n", err)
			return 1
		}
	}
	return 0
}

// sha256Cmd prints "SHA256 (file) = hex", -q only the hex, -r "hex file"
// (md5(1) family on FreeBSD).
func sha256Cmd(e *env, args []string) int {
	opts, rest, err := getopts(args[1:], "pqrtxc:s:")
	if err != nil {
		fmt.Fprintf(e.stderr, "sha256: %v\n", err)
		return 1
	}
	o := optMap(opts)
	_, quiet := o["q"]
	_, rev := o["r"]
	print := func(name string, sum []byte) {
		h := hex.EncodeToString(sum)
		switch {
		case quiet:
			fmt.Fprintln(e.stdout, h)
		case rev:
			fmt.Fprintf(e.stdout, "%s %s\n", h, name)
		default:
			fmt.Fprintf(e.stdout, "SHA256 (%s) = %s\n", name, h)
		}
	}
	if s, ok := o["s"]; ok {
		sum := sha256.Sum256([]byte(s))
		print(`"`+s+`"`, sum[:])
		return 0
	}
	if len(rest) == 0 {
		h := sha256.New()
		if e.stdin != nil {
			io.Copy(h, e.stdin)
		}
		fmt.Fprintln(e.stdout, hex.EncodeToString(h.Sum(nil)))
		return 0
	}
	code := 0
	for _, f := range rest {
		p := f
		if filepath.IsAbs(f) {
			p = e.p(f)
		}
		fh, err := os.Open(p)
		if err != nil {
			fmt.Fprintf(e.stderr, "sha256: %s: %v\n", f, unwrapPathErr(err))
			code = 1
			continue
		}
		h := sha256.New()
		_, err = io.Copy(h, fh)
		fh.Close()
		if err != nil {
			fmt.Fprintf(e.stderr, "sha256: %s: %v\n", f, err)
			code = 1
			continue
		}
		print(f, h.Sum(nil))
	}
	return code
}

// unameCmd prints FreeBSD's answers (uname(1)); the release comes from
// MachineFile.
func unameCmd(e *env, args []string) int {
	opts, _, err := getopts(args[1:], "abiKmnoprsUv")
	if err != nil {
		fmt.Fprintf(e.stderr, "uname: %v\nusage: uname [-abiKmnoprsUv]\n", err)
		return 1
	}
	m := e.machineInfo()
	rel := kernelRelease(m.release)
	fields := map[string]string{"s": "FreeBSD", "o": "FreeBSD", "n": e.hostname(), "r": rel,
		"v": "FreeBSD " + rel + " GENERIC", "m": "amd64", "p": "amd64", "i": "GENERIC",
		"K": "1402000", "U": "1402000", "b": "0"}
	set := map[string]bool{}
	for _, x := range opts {
		set[x[0]] = true
	}
	if set["a"] {
		for _, k := range "snrvm" {
			set[string(k)] = true
		}
	}
	if len(set) == 0 {
		set["s"] = true
	}
	var out []string
	for _, k := range []string{"s", "n", "r", "v", "m", "p", "i", "K", "U", "b"} {
		if set[k] {
			out = append(out, fields[k])
		}
	}
	if set["o"] && !set["s"] {
		out = append([]string{"FreeBSD"}, out...)
	}
	fmt.Fprintln(e.stdout, strings.Join(out, " "))
	return 0
}

// kernelRelease: the lab does not model a kernel patch level that differs
// from the userland's, so both report MachineFile's release.
func kernelRelease(r string) string { return r }

// freebsdVersionCmd prints the release of MachineFile (freebsd-version(1));
// -k, -r and -u print the same string in the lab.
func freebsdVersionCmd(e *env, args []string) int {
	if _, _, err := getopts(args[1:], "kruj:"); err != nil {
		fmt.Fprintf(e.stderr, "usage: freebsd-version [-kru] [-j jail]\n")
		return 1
	}
	fmt.Fprintln(e.stdout, e.machineInfo().release)
	return 0
}

// hostname: inside a jail its host.hostname; else rc.conf's hostname, else
// the machine name of MachineFile.
func (e *env) hostname() string {
	if e.jail != "" {
		if r := e.jailRunning(e.jail); r != nil {
			return r.hostname
		}
	}
	if b, err := os.ReadFile(e.m(StateDir + "/hostname")); err == nil {
		return strings.TrimSpace(string(b))
	}
	if h := e.rcGet("hostname", ""); h != "" {
		return h
	}
	if n := e.machineInfo().name; n != "" {
		return n
	}
	return "localhost"
}

func hostnameCmd(e *env, args []string) int {
	opts, rest, err := getopts(args[1:], "fsd")
	if err != nil {
		fmt.Fprintln(e.stderr, "usage: hostname [-f] [-s | -d] [name-of-host]")
		return 1
	}
	if len(rest) == 1 {
		if err := writeFile(e.m(StateDir+"/hostname"), []byte(rest[0]+"\n"), 0o644); err != nil {
			fmt.Fprintf(e.stderr, "hostname: %v\n", err)
			return 1
		}
		return 0
	}
	h := e.hostname()
	o := optMap(opts)
	if _, ok := o["s"]; ok {
		h, _, _ = strings.Cut(h, ".")
	} else if _, ok := o["d"]; ok {
		_, h, _ = strings.Cut(h, ".")
	}
	fmt.Fprintln(e.stdout, h)
	return 0
}
