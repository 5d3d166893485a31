package emu

import (
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
)

func init() {
	commands["jls"] = jlsCmd
	commands["jail"] = jailCmd
	commands["jexec"] = jexecCmd
}

// runningDir holds one file per running jail (the lab's stand-in for the
// kernel's jail list): key=value lines jid, name, hostname, path, ip.
const runningDir = "/var/run/lab/jails"

type runJail struct {
	jid, name, hostname, path, ip string
}

func (e *env) jailRunning(name string) *runJail {
	lines, err := readLines(e.m(runningDir + "/" + name))
	if err != nil || len(lines) == 0 {
		return nil
	}
	r := &runJail{}
	for _, l := range lines {
		k, v, _ := strings.Cut(l, "=")
		switch k {
		case "jid":
			r.jid = v
		case "name":
			r.name = v
		case "hostname":
			r.hostname = v
		case "path":
			r.path = v
		case "ip":
			r.ip = v
		}
	}
	return r
}

func (e *env) runningJails() []*runJail {
	ents, _ := os.ReadDir(e.m(runningDir))
	var out []*runJail
	for _, de := range ents {
		if r := e.jailRunning(de.Name()); r != nil {
			out = append(out, r)
		}
	}
	// jls lists by JID.
	for i := 1; i < len(out); i++ {
		for k := i; k > 0 && atoi(out[k].jid) < atoi(out[k-1].jid); k-- {
			out[k], out[k-1] = out[k-1], out[k]
		}
	}
	return out
}

// findRunning finds a running jail by name or JID, as jexec and jls -j do.
func (e *env) findRunning(key string) *runJail {
	for _, r := range e.runningJails() {
		if r.name == key || r.jid == key {
			return r
		}
	}
	return nil
}

func atoi(s string) int { n, _ := strconv.Atoi(s); return n }

// startJail creates the jail: jail(8) first adds every iface|addr alias to
// its interface, which must exist (freebsd.md §1.6), then the jail gets the
// next JID and /var/run/jail_<name>.id (freebsd.md §1.4).
func (e *env) startJail(r runJail) error {
	ifs, err := e.interfaces()
	if err != nil {
		return err
	}
	for _, entry := range splitIPs(r.ip) {
		iface, addr, ok := strings.Cut(entry, "|")
		if !ok {
			continue
		}
		i := ifs.find(iface)
		if i == nil {
			return fmt.Errorf("ifconfig: interface %s does not exist\njail: %s: failed", iface, r.name)
		}
		i.addAddr(defaultMask(addr))
	}
	if !isDir(e.m(r.path)) {
		return fmt.Errorf("jail: %s: chdir %s: No such file or directory", r.name, r.path)
	}
	n, err := bumpCounter(e.m(StateDir + "/jid.next"))
	if err != nil {
		return err
	}
	r.jid = strconv.Itoa(n)
	if err := e.saveInterfaces(ifs); err != nil {
		return err
	}
	if err := writeFile(e.m("/var/run/jail_"+r.name+".id"), []byte(r.jid+"\n"), 0o644); err != nil {
		return err
	}
	return writeLines(e.m(runningDir+"/"+r.name), []string{"jid=" + r.jid, "name=" + r.name,
		"hostname=" + r.hostname, "path=" + r.path, "ip=" + r.ip})
}

// stopJail removes the jail and the aliases jail(8) added for it.
func (e *env) stopJail(name string) error {
	r := e.jailRunning(name)
	if r == nil {
		return nil
	}
	ifs, err := e.interfaces()
	if err != nil {
		return err
	}
	for _, entry := range splitIPs(r.ip) {
		if iface, addr, ok := strings.Cut(entry, "|"); ok {
			if i := ifs.find(iface); i != nil {
				i.delAddr(defaultMask(addr))
			}
		}
	}
	if err := e.saveInterfaces(ifs); err != nil {
		return err
	}
	os.Remove(e.m("/var/run/jail_" + name + ".id"))
	return os.Remove(e.m(runningDir + "/" + name))
}

// defaultMask adds the default /32 or /128 of rc.d/jail (freebsd.md §1.4).
func defaultMask(addr string) string {
	if strings.Contains(addr, "/") {
		return addr
	}
	if strings.Contains(addr, ":") {
		return addr + "/128"
	}
	return addr + "/32"
}

func stripIface(ips string) []string {
	var out []string
	for _, e := range splitIPs(ips) {
		if _, a, ok := strings.Cut(e, "|"); ok {
			e = a
		}
		if a, _, ok := strings.Cut(e, "/"); ok {
			e = a
		}
		out = append(out, e)
	}
	return out
}

// jlsCmd prints running jails in jls(8)'s default format, or selected
// parameters (jls [-hNnqs] [-j jail] [param …]).
func jlsCmd(e *env, args []string) int {
	opts, params, err := getopts(args[1:], "dhNnqsvj:")
	if err != nil {
		fmt.Fprintf(e.stderr, "jls: %v\n", err)
		return 1
	}
	o := optMap(opts)
	jails := e.runningJails()
	if key, ok := o["j"]; ok {
		r := e.findRunning(key)
		if r == nil {
			fmt.Fprintf(e.stderr, "jls: jail \"%s\" not found\n", key)
			return 1
		}
		jails = []*runJail{r}
	}
	_, byName := o["N"]
	_, nameVal := o["n"]
	if len(params) == 0 && !nameVal {
		if byName {
			fmt.Fprintln(e.stdout, " JID             IP Address      Hostname                      Path")
		} else {
			fmt.Fprintln(e.stdout, "   JID  IP Address      Hostname                      Path")
		}
		for _, r := range jails {
			ip := ""
			if ips := stripIface(r.ip); len(ips) > 0 {
				ip = ips[0]
			}
			if byName {
				fmt.Fprintf(e.stdout, " %-15s %-15.15s %-29.29s %s\n", r.name, ip, r.hostname, r.path)
			} else {
				fmt.Fprintf(e.stdout, "%6s  %-15.15s %-29.29s %s\n", r.jid, ip, r.hostname, r.path)
			}
		}
		return 0
	}
	if len(params) == 0 {
		// jls -n with no parameters prints them all (jls(8)); the lab has
		// these, in the kernel's alphabetical order with jid before ip4.addr
		// as ezjail's `jls -n | sed …jid=…ip4\.addr=…` expects
		// (ezjail-admin:839).
		params = []string{"devfs_ruleset", "enforce_statfs", "host", "ip4", "ip6", "jid", "name", "osreldate",
			"osrelease", "path", "persist", "securelevel", "host.hostname", "ip4.addr", "ip6.addr"}
	}
	for _, r := range jails {
		var fields []string
		for _, p := range params {
			v, ok := jailParam(r, p)
			if !ok {
				fmt.Fprintf(e.stderr, "jls: unknown parameter: %s\n", p)
				return 1
			}
			if nameVal {
				v = p + "=" + v
			}
			fields = append(fields, v)
		}
		fmt.Fprintln(e.stdout, strings.Join(fields, " "))
	}
	return 0
}

func jailParam(r *runJail, p string) (string, bool) {
	switch p {
	case "jid":
		return r.jid, true
	case "name":
		return r.name, true
	case "host.hostname", "hostname":
		return r.hostname, true
	case "path":
		return r.path, true
	case "devfs_ruleset":
		return "4", true
	case "enforce_statfs":
		return "2", true
	case "host", "ip4", "ip6":
		return "new", true
	case "osreldate":
		return "1402000", true
	case "osrelease":
		return "14.2-RELEASE", true
	case "persist":
		return "false", true
	case "securelevel":
		return "-1", true
	case "ip4.addr", "ip6.addr":
		var out []string
		for _, a := range stripIface(r.ip) {
			if strings.Contains(a, ":") == (p == "ip6.addr") {
				out = append(out, a)
			}
		}
		return strings.Join(out, ","), true
	}
	return "", false
}

// jailCmd is the part of jail(8) that matters here: -c name=… path=…
// host.hostname=… ip4.addr=…, -r name, -rc name (freebsd.md §2).
func jailCmd(e *env, args []string) int {
	opts, rest, err := getopts(args[1:], "cmrRdhilqsuUvf:J:")
	if err != nil {
		fmt.Fprintf(e.stderr, "jail: %v\n", err)
		return 1
	}
	o := optMap(opts)
	_, create := o["c"]
	_, remove := o["r"]
	if conf, ok := o["f"]; ok {
		_, printJID := o["i"]
		_, quiet := o["q"]
		if !create && !remove {
			fmt.Fprintln(e.stderr, "jail: -f needs -c, -r or -rc in the lab")
			return 1
		}
		return e.jailFromConf(conf, create, remove, printJID, quiet, rest)
	}
	if remove {
		if len(rest) == 0 {
			fmt.Fprintln(e.stderr, "usage: jail -r jail")
			return 1
		}
		for _, n := range rest {
			r := e.findRunning(n)
			if r == nil {
				if !create {
					fmt.Fprintf(e.stderr, "jail: \"%s\" not found\n", n)
					return 1
				}
				continue
			}
			if err := e.stopJail(r.name); err != nil {
				fmt.Fprintf(e.stderr, "jail: %v\n", err)
				return 1
			}
			if create {
				if err := e.startJail(*r); err != nil {
					fmt.Fprintln(e.stderr, err)
					return 1
				}
			}
		}
		return 0
	}
	if !create {
		fmt.Fprintln(e.stderr, "usage: jail [-dhilqv] [-J jid_file] [-u username] [-U username] -[cmr] param=value ... [command=command ...]")
		return 1
	}
	r := runJail{}
	var ips []string
	for _, kv := range rest {
		k, v, _ := strings.Cut(kv, "=")
		switch k {
		case "name":
			r.name = v
		case "path":
			r.path = v
		case "host.hostname":
			r.hostname = v
		case "ip4.addr", "ip6.addr":
			ips = append(ips, strings.Split(v, ",")...)
		}
	}
	r.ip = strings.Join(ips, ",")
	if r.name == "" || r.path == "" {
		fmt.Fprintln(e.stderr, "jail: name and path are required (lab)")
		return 1
	}
	if e.jailRunning(r.name) != nil {
		fmt.Fprintf(e.stderr, "jail: %s: already exists\n", r.name)
		return 1
	}
	if err := e.startJail(r); err != nil {
		fmt.Fprintln(e.stderr, err)
		return 1
	}
	fmt.Fprintf(e.stdout, "%s: created\n", r.name)
	return 0
}

// jexecCmd runs an emulated command with the jail's root as its root, or
// the jail's own /bin/sh for anything else.
func jexecCmd(e *env, args []string) int {
	_, rest, err := getopts(args[1:], "lu:U:")
	if err != nil || len(rest) < 1 {
		fmt.Fprintln(e.stderr, "usage: jexec [-l] [-u username | -U username] jail [command ...]")
		return 1
	}
	r := e.findRunning(rest[0])
	if r == nil {
		fmt.Fprintf(e.stderr, "jexec: jail \"%s\" not found\n", rest[0])
		return 1
	}
	cmd := rest[1:]
	if len(cmd) == 0 {
		cmd = []string{"/bin/sh"}
	}
	je := &env{root: e.m(r.path), logRoot: e.logRoot, jail: r.name, stdin: e.stdin, stdout: e.stdout, stderr: e.stderr}
	if _, ok := lookup(filepath.Base(cmd[0])); ok {
		return je.run(filepath.Base(cmd[0]), cmd)
	}
	sh := je.p("/bin/sh")
	if !exists(sh) {
		fmt.Fprintf(e.stderr, "jexec: execvp: %s: No such file or directory (the lab jail has no /bin/sh)\n", cmd[0])
		return 127
	}
	c := exec.Command(sh, "-c", `exec "$@"`, "sh")
	c.Args = append(c.Args, cmd...)
	c.Stdin, c.Stdout, c.Stderr = e.stdin, e.stdout, e.stderr
	c.Dir = je.root
	// As root, the jail's shell runs chrooted into the jail root, as jexec
	// does; its emulated commands then log to the jail's own call log.
	// Otherwise (unit tests as a user) LAB_ROOT points them at the jail.
	if chrootInto(c, je.root) {
		c.Path, c.Dir = "/bin/sh", "/"
		c.Env = append(withoutLabEnv(os.Environ()), JailEnv+"="+r.name)
	} else {
		c.Env = append(withoutLabEnv(os.Environ()), RootEnv+"="+je.root, LogRootEnv+"="+e.logRoot, JailEnv+"="+r.name)
	}
	if err := c.Run(); err != nil {
		if ee, ok := err.(*exec.ExitError); ok {
			return ee.ExitCode()
		}
		fmt.Fprintf(e.stderr, "jexec: %v\n", err)
		return 126
	}
	return 0
}

// withoutLabEnv drops the emulator's own variables from an environment.
func withoutLabEnv(env []string) []string {
	var out []string
	for _, kv := range env {
		k, _, _ := strings.Cut(kv, "=")
		if k != RootEnv && k != LogRootEnv && k != JailEnv {
			out = append(out, kv)
		}
	}
	return out
}
