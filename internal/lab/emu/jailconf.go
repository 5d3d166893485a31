package emu

import (
	"fmt"
	"os"
	"path/filepath"
	"strings"
)

// jail(8) with a jail.conf(5) file, as rc.d/jail runs it
// (rc.d/jail:529: `$command $rc_flags -i -f $_conf -c $_j` and
// rc.d/jail:583: `$command -q -f $_conf -r $_j`), and the mount table that
// its mount.* parameters and mount(8) share.

// jailParams are the jail(8) parameters the lab knows (jail(8),
// "Jail Parameters" and "Pseudo-parameters"); a parameter not listed is
// refused as jail(8) refuses one the kernel does not know.
var jailParams = map[string]bool{
	"jid": true, "name": true, "path": true, "host.hostname": true, "host.domainname": true, "host.hostuuid": true,
	"host.hostid": true, "host": true, "ip4.addr": true, "ip4": true, "ip4.saddrsel": true, "ip6.addr": true,
	"ip6": true, "ip6.saddrsel": true, "vnet": true, "vnet.interface": true, "interface": true, "securelevel": true,
	"devfs_ruleset": true, "enforce_statfs": true, "children.max": true, "persist": true, "nopersist": true,
	"osrelease": true, "osreldate": true, "ip_hostname": true, "depend": true, "command": true,
	"exec.prepare": true, "exec.prestart": true, "exec.created": true, "exec.start": true, "exec.poststart": true,
	"exec.prestop": true, "exec.stop": true, "exec.poststop": true, "exec.release": true, "exec.clean": true,
	"exec.jail_user": true, "exec.system_jail_user": true, "exec.system_user": true, "exec.timeout": true,
	"exec.consolelog": true, "exec.fib": true, "stop.timeout": true, "mount": true, "mount.fstab": true,
	"mount.devfs": true, "mount.fdescfs": true, "mount.procfs": true, "allow.dying": true,
	"allow.set_hostname": true, "allow.sysvipc": true, "allow.raw_sockets": true, "allow.chflags": true,
	"allow.mount": true, "allow.mount.devfs": true, "allow.mount.nullfs": true, "allow.mount.procfs": true,
	"allow.mount.zfs": true, "allow.mount.tmpfs": true, "allow.mount.fdescfs": true, "allow.quotas": true,
	"allow.socket_af": true, "allow.mlock": true, "allow.reserved_ports": true, "allow.unprivileged_proc_debug": true,
	"allow.suser": true, "allow.nfsd": true, "allow.read_msgbuf": true, "allow.extattr": true, "allow.adjtime": true,
	"allow.settime": true, "allow.routing": true, "sysvmsg": true, "sysvsem": true, "sysvshm": true,
}

// jailConf is one jail's parameters: each name maps to its values
// (`+=` appends, `=` replaces); a bare name is "true".
type jailConf map[string][]string

// parseJailConf reads jail.conf(5): `name { param; param = value;
// param += value; }`, values quoted or not, comma lists, # and // and
// /* */ comments, and global parameters outside blocks (which every jail
// inherits). Variables and wildcards are not modelled.
func parseJailConf(text string) (map[string]jailConf, []string, error) {
	toks, err := jailConfTokens(text)
	if err != nil {
		return nil, nil, err
	}
	global := jailConf{}
	jails := map[string]jailConf{}
	var order []string
	var cur jailConf
	for i := 0; i < len(toks); i++ {
		t := toks[i]
		switch {
		case t.s == "}" && !t.quoted:
			if cur == nil {
				return nil, nil, fmt.Errorf("line %d: syntax error near '}'", t.line)
			}
			cur = nil
		case i+1 < len(toks) && toks[i+1].s == "{" && !toks[i+1].quoted:
			if cur != nil {
				return nil, nil, fmt.Errorf("line %d: nested jail %s", t.line, t.s)
			}
			if strings.ContainsAny(t.s, "*$") {
				return nil, nil, fmt.Errorf("line %d: wildcards and variables are not modelled by the lab", t.line)
			}
			cur = jailConf{}
			for k, v := range global {
				cur[k] = append([]string(nil), v...)
			}
			jails[t.s] = cur
			order = append(order, t.s)
			i++
		default:
			name := t.s
			target := global
			if cur != nil {
				target = cur
			}
			if !jailParams[name] && !strings.HasPrefix(name, "allow.") {
				return nil, nil, fmt.Errorf("unknown parameter: %s", name)
			}
			if i+1 >= len(toks) {
				return nil, nil, fmt.Errorf("line %d: syntax error: missing ';'", t.line)
			}
			op := toks[i+1]
			switch {
			case op.s == ";" && !op.quoted:
				target[name] = []string{"true"}
				i++
			case (op.s == "=" || op.s == "+=") && !op.quoted:
				var vals []string
				j := i + 2
				for ; j < len(toks) && !(toks[j].s == ";" && !toks[j].quoted); j++ {
					if toks[j].s == "," && !toks[j].quoted {
						continue
					}
					vals = append(vals, toks[j].s)
				}
				if j >= len(toks) {
					return nil, nil, fmt.Errorf("line %d: syntax error: missing ';' after %s", t.line, name)
				}
				if op.s == "=" {
					target[name] = vals
				} else {
					target[name] = append(target[name], vals...)
				}
				i = j
			default:
				return nil, nil, fmt.Errorf("line %d: syntax error near '%s'", op.line, op.s)
			}
		}
	}
	if cur != nil {
		return nil, nil, fmt.Errorf("syntax error: missing '}'")
	}
	return jails, order, nil
}

type jailTok struct {
	s      string
	quoted bool
	line   int
}

func jailConfTokens(text string) ([]jailTok, error) {
	var toks []jailTok
	line := 1
	for i := 0; i < len(text); {
		c := text[i]
		switch {
		case c == '\n':
			line++
			i++
		case c == ' ' || c == '\t' || c == '\r':
			i++
		case c == '#' || strings.HasPrefix(text[i:], "//"):
			for i < len(text) && text[i] != '\n' {
				i++
			}
		case strings.HasPrefix(text[i:], "/*"):
			end := strings.Index(text[i+2:], "*/")
			if end < 0 {
				return nil, fmt.Errorf("line %d: unterminated comment", line)
			}
			line += strings.Count(text[i:i+2+end], "\n")
			i += end + 4
		case c == '"' || c == '\'':
			var b strings.Builder
			j := i + 1
			for ; j < len(text) && text[j] != c; j++ {
				if text[j] == '\\' && c == '"' && j+1 < len(text) {
					j++
				}
				if text[j] == '\n' {
					line++
				}
				b.WriteByte(text[j])
			}
			if j >= len(text) {
				return nil, fmt.Errorf("line %d: unterminated string", line)
			}
			toks = append(toks, jailTok{b.String(), true, line})
			i = j + 1
		case strings.HasPrefix(text[i:], "+="):
			toks = append(toks, jailTok{"+=", false, line})
			i += 2
		case strings.IndexByte("{};=,", c) >= 0:
			toks = append(toks, jailTok{string(c), false, line})
			i++
		default:
			j := i
			for j < len(text) && strings.IndexByte(" \t\r\n{};=,\"'#", text[j]) < 0 && !strings.HasPrefix(text[j:], "+=") {
				j++
			}
			toks = append(toks, jailTok{text[i:j], false, line})
			i = j
		}
	}
	return toks, nil
}

func (c jailConf) one(k string) string {
	if v := c[k]; len(v) > 0 {
		return v[len(v)-1]
	}
	return ""
}

func (c jailConf) on(k string) bool {
	v, ok := c[k]
	return ok && len(v) > 0 && v[len(v)-1] != "0" && v[len(v)-1] != "false"
}

// jailFromConf runs `jail [-i] [-q] -f conf -c|-r|-rc name...`.
func (e *env) jailFromConf(file string, create, remove, printJID, quiet bool, names []string) int {
	b, err := os.ReadFile(e.p(file))
	if err != nil {
		fmt.Fprintf(e.stderr, "jail: %s: No such file or directory\n", file)
		return 1
	}
	jails, order, err := parseJailConf(string(b))
	if err != nil {
		fmt.Fprintf(e.stderr, "jail: %s: %v\n", file, err)
		return 1
	}
	if len(names) == 0 {
		names = order
	}
	code := 0
	for _, n := range names {
		c, ok := jails[n]
		if remove {
			r := e.findRunning(n)
			if r == nil {
				if !create {
					fmt.Fprintf(e.stderr, "jail: \"%s\" not found\n", n)
					code = 1
				}
			} else {
				if err := e.unmountJail(c, r.path); err != nil {
					fmt.Fprintf(e.stderr, "jail: %s: %v\n", n, err)
					code = 1
					continue
				}
				if err := e.stopJail(r.name); err != nil {
					fmt.Fprintf(e.stderr, "jail: %s: %v\n", n, err)
					code = 1
					continue
				}
				if !quiet {
					fmt.Fprintf(e.stdout, "%s: removed\n", n)
				}
			}
		}
		if !create {
			continue
		}
		if !ok {
			fmt.Fprintf(e.stderr, "jail: %s: no such jail in %s\n", n, file)
			code = 1
			continue
		}
		if e.jailRunning(n) != nil {
			fmt.Fprintf(e.stderr, "jail: %s: already exists\n", n)
			code = 1
			continue
		}
		r := runJail{name: n, path: c.one("path"), hostname: c.one("host.hostname")}
		if r.path == "" {
			fmt.Fprintf(e.stderr, "jail: %s: path: no value\n", n)
			code = 1
			continue
		}
		if c.on("vnet") {
			fmt.Fprintf(e.stderr, "jail: %s: vnet jails are not modelled by the lab\n", n)
			code = 1
			continue
		}
		var ips []string
		iface := c.one("interface")
		for _, a := range append(append([]string(nil), c["ip4.addr"]...), c["ip6.addr"]...) {
			if !strings.Contains(a, "|") && iface != "" {
				a = iface + "|" + a
			}
			ips = append(ips, a)
		}
		r.ip = strings.Join(ips, ",")
		// jail(8), "Jail Parameters": mounts happen before the jail is
		// created, in the order mount.fstab, mount.devfs, mount.fdescfs,
		// mount.procfs; a failed one fails the jail.
		if err := e.mountJail(c, r.path); err != nil {
			fmt.Fprintf(e.stderr, "jail: %s: %v\n", n, err)
			code = 1
			continue
		}
		if err := e.startJail(r); err != nil {
			e.unmountJail(c, r.path)
			fmt.Fprintln(e.stderr, err)
			code = 1
			continue
		}
		// exec.start (/bin/sh /etc/rc) is recorded, not run: the lab's
		// jails have no userland of their own (docs/lab-emulation.md).
		r2 := e.jailRunning(n)
		if r2 != nil {
			appendLine(e.m(runningDir+"/"+n), "exec.start="+strings.Join(c["exec.start"], "; "))
		}
		if printJID && r2 != nil {
			fmt.Fprintln(e.stdout, r2.jid)
		} else if !quiet {
			fmt.Fprintf(e.stdout, "%s: created\n", n)
		}
	}
	return code
}

// jailMounts lists a jail's mounts in mount order: fstab lines, then
// devfs, fdescfs, procfs (jail(8), mount.* parameters).
func (e *env) jailMounts(c jailConf, root string) ([]mountEntry, error) {
	var out []mountEntry
	for _, fstab := range c["mount.fstab"] {
		lines, err := readLines(e.p(fstab))
		if err != nil {
			return nil, fmt.Errorf("mount.fstab: %s: %v", fstab, err)
		}
		for _, l := range lines {
			f := strings.Fields(l)
			if len(f) == 0 || strings.HasPrefix(f[0], "#") {
				continue
			}
			if len(f) < 4 {
				return nil, fmt.Errorf("%s: bad fstab line %q", fstab, l)
			}
			out = append(out, mountEntry{dev: f[0], dir: f[1], typ: f[2], opts: f[3]})
		}
	}
	if c.on("mount.devfs") {
		opts := "rw"
		if rs := c.one("devfs_ruleset"); rs != "" {
			opts = "ruleset=" + rs
		}
		out = append(out, mountEntry{dev: "devfs", dir: root + "/dev", typ: "devfs", opts: opts})
	}
	if c.on("mount.fdescfs") {
		out = append(out, mountEntry{dev: "fdescfs", dir: root + "/dev/fd", typ: "fdescfs", opts: "rw"})
	}
	if c.on("mount.procfs") {
		out = append(out, mountEntry{dev: "procfs", dir: root + "/proc", typ: "procfs", opts: "rw"})
	}
	return out, nil
}

func (e *env) mountJail(c jailConf, root string) error {
	ms, err := e.jailMounts(c, root)
	if err != nil {
		return err
	}
	for i, m := range ms {
		if err := e.mount(m); err != nil {
			for j := i - 1; j >= 0; j-- {
				e.umount(ms[j].dir)
			}
			return err
		}
	}
	return nil
}

func (e *env) unmountJail(c jailConf, root string) error {
	ms, err := e.jailMounts(c, root)
	if err != nil {
		return err
	}
	for j := len(ms) - 1; j >= 0; j-- {
		e.umount(ms[j].dir)
	}
	return nil
}

// MountsFile lists the machine's mounts besides ZFS's: "dev dir type opts".
const MountsFile = "/var/run/lab/mounts"

type mountEntry struct{ dev, dir, typ, opts string }

func (e *env) mounts() []mountEntry {
	lines, _ := readLines(e.m(MountsFile))
	var out []mountEntry
	for _, l := range lines {
		f := strings.Fields(l)
		if len(f) == 4 {
			out = append(out, mountEntry{f[0], f[1], f[2], f[3]})
		}
	}
	return out
}

func (e *env) saveMounts(ms []mountEntry) error {
	var lines []string
	for _, m := range ms {
		lines = append(lines, strings.Join([]string{m.dev, m.dir, m.typ, m.opts}, " "))
	}
	return writeLines(e.m(MountsFile), lines)
}

// mount records a mount after mount(8)'s checks: the mount point must be
// a directory, a nullfs source must exist, and the file system type must
// be one the lab knows.
func (e *env) mount(m mountEntry) error {
	m.dir = filepath.Clean(m.dir)
	ms := e.mounts()
	// devfs has a directory fd (devfs(5)): fdescfs mounts on it.
	onDevfs := false
	for _, x := range ms {
		if x.typ == "devfs" && m.dir == x.dir+"/fd" {
			onDevfs = true
		}
	}
	if !isDir(e.m(m.dir)) && !onDevfs {
		return fmt.Errorf("mount: %s: No such file or directory", m.dir)
	}
	switch m.typ {
	case "nullfs":
		if !exists(e.m(m.dev)) {
			return fmt.Errorf("mount_nullfs: %s: No such file or directory", m.dev)
		}
	case "devfs", "fdescfs", "procfs", "tmpfs":
	default:
		return fmt.Errorf("mount: %s: file system type %s is not modelled by the lab", m.dir, m.typ)
	}
	for _, x := range ms {
		if x.dir == m.dir && x.typ == m.typ && x.dev == m.dev {
			return fmt.Errorf("mount: %s: Device busy", m.dir)
		}
	}
	return e.saveMounts(append(ms, m))
}

// umount removes the last mount on dir (or of dev); it fails while a
// mount lies below it ("Device busy").
func (e *env) umount(target string) error {
	target = filepath.Clean(target)
	ms := e.mounts()
	for i := len(ms) - 1; i >= 0; i-- {
		if ms[i].dir == target || ms[i].dev == target {
			for _, x := range ms[i+1:] {
				if strings.HasPrefix(x.dir, ms[i].dir+"/") {
					return fmt.Errorf("umount: unmount of %s failed: Device busy", ms[i].dir)
				}
			}
			return e.saveMounts(append(ms[:i:i], ms[i+1:]...))
		}
	}
	return fmt.Errorf("umount: %s: not a file system root directory", target)
}

func init() {
	commands["mount"] = mountCmd
	commands["umount"] = umountCmd
	commands["mount_nullfs"] = mountNullfsCmd
	commands["mount_devfs"] = mountDevfsCmd
}

// mountCmd: mount [-p] [-v] (list: ZFS's mounted file systems, then the
// mount table, fstab format with -p), and mount -t type [-o opts] dev dir
// (mount(8)).
func mountCmd(e *env, args []string) int {
	opts, rest, err := getopts(args[1:], "adflpruvwt:o:F:")
	if err != nil {
		fmt.Fprintf(e.stderr, "mount: %v\n", err)
		return 1
	}
	o := optMap(opts)
	if len(rest) == 0 {
		if _, ok := o["a"]; ok {
			fmt.Fprintln(e.stderr, "mount: -a is not modelled by the lab")
			return 1
		}
		_, fstab := o["p"]
		var all []mountEntry
		if st, err := e.zfsLoad(); err == nil {
			for _, d := range st.Datasets {
				if mp := st.mountpoint(d); mp != "" {
					all = append(all, mountEntry{d.Name, mp, "zfs", "rw"})
				}
			}
		}
		all = append(all, e.mounts()...)
		for _, m := range all {
			if fstab {
				fmt.Fprintf(e.stdout, "%s\t%s\t%s\t%s\t0 0\n", m.dev, m.dir, m.typ, m.opts)
			} else {
				fmt.Fprintf(e.stdout, "%s on %s (%s, local)\n", m.dev, m.dir, m.typ)
			}
		}
		return 0
	}
	typ, ok := o["t"]
	if !ok || len(rest) != 2 {
		fmt.Fprintln(e.stderr, "mount: the lab models only mount -t type [-o options] special node")
		return 1
	}
	mo := o["o"]
	if mo == "" {
		mo = "rw"
	}
	if _, ro := o["r"]; ro {
		mo = "ro"
	}
	if err := e.mount(mountEntry{rest[0], rest[1], typ, mo}); err != nil {
		fmt.Fprintln(e.stderr, err)
		return 1
	}
	return 0
}

// mountNullfsCmd: mount_nullfs [-o options] target mount-point (mount_nullfs(8)).
func mountNullfsCmd(e *env, args []string) int {
	a, ok := e.parseArgs(args, "o:", 2, "usage: mount_nullfs [-o options] target mount-point")
	if !ok || len(a.rest) != 2 {
		return 1
	}
	mo, rest := a.opts["o"], a.rest
	if mo == "" {
		mo = "rw"
	}
	if err := e.mount(mountEntry{rest[0], rest[1], "nullfs", mo}); err != nil {
		fmt.Fprintln(e.stderr, err)
		return 1
	}
	return 0
}

// mountDevfsCmd: mount_devfs [-o options] devfs mount-point.
func mountDevfsCmd(e *env, args []string) int {
	a, ok := e.parseArgs(args, "o:", 2, "usage: mount_devfs [-o options] special node")
	if !ok || len(a.rest) != 2 {
		return 1
	}
	mo, rest := a.opts["o"], a.rest
	if mo == "" {
		mo = "rw"
	}
	if err := e.mount(mountEntry{rest[0], rest[1], "devfs", mo}); err != nil {
		fmt.Fprintln(e.stderr, err)
		return 1
	}
	return 0
}

// umountCmd: umount [-f] special | node ... (umount(8)).
func umountCmd(e *env, args []string) int {
	a, ok := e.parseArgs(args, "afnvt:F:h:", 1, "usage: umount [-fnv] special ... | node ...")
	if !ok {
		return 1
	}
	rest := a.rest
	code := 0
	for _, t := range rest {
		if err := e.umount(t); err != nil {
			fmt.Fprintln(e.stderr, err)
			code = 1
		}
	}
	return code
}
