package emu

import (
	"archive/tar"
	"compress/gzip"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"time"
)

func init() {
	commands["ezjail-admin"] = ezjailAdmin
}

// ezjailConfigDir holds one sh fragment per jail (freebsd.md §1.3).
const ezjailConfigDir = "/usr/local/etc/ezjail"

// ezjailVars are the 22 variables writejailinfo() writes, in its order
// (freebsd.md §1.3).
var ezjailVars = []string{"hostname", "ip", "rootdir", "exec_start", "exec_stop", "mount_enable",
	"devfs_enable", "devfs_ruleset", "procfs_enable", "fdescfs_enable", "image", "imagetype",
	"attachparams", "attachblocking", "forceblocking", "zfs_datasets", "cpuset", "fib", "parentzfs",
	"parameters", "post_start_script", "retention_policy"}

// ezjailReserved are the names create refuses (freebsd.md §1.1).
var ezjailReserved = map[string]bool{"basejail": true, "newjail": true, "fulljail": true,
	"flavours": true, "ezjailtemp": true, "ezjail_archives": true}

// safeName is `tr -c '[:alnum:]' _` over bytes (freebsd.md §1.2).
func safeName(name string) string {
	b := []byte(name)
	for i, c := range b {
		if !((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9')) {
			b[i] = '_'
		}
	}
	return string(b)
}

// ezHostname is `tr '/~' '__'`: dots are kept (freebsd.md §1.2).
func ezHostname(name string) string {
	return strings.NewReplacer("/", "_", "~", "_").Replace(name)
}

// ezConf is ezjail.conf with the defaults of ezjail-admin lines 13-35
// (freebsd.md §1.7).
type ezConf map[string]string

func (e *env) ezjailConf() ezConf {
	c := ezConf{}
	if b, err := os.ReadFile(e.p("/usr/local/etc/ezjail.conf")); err == nil {
		_, vars := parseRC(string(b))
		for _, v := range vars {
			c[v.name] = v.value
		}
	}
	def := func(k, v string) {
		if c[k] == "" {
			c[k] = v
		}
	}
	def("ezjail_jaildir", "/usr/jails")
	jd := c["ezjail_jaildir"]
	def("ezjail_jailtemplate", jd+"/newjail")
	def("ezjail_jailbase", jd+"/basejail")
	def("ezjail_flavours_dir", jd+"/flavours")
	def("ezjail_archivedir", jd+"/ezjail_archives")
	def("ezjail_exec_start", "/bin/sh /etc/rc")
	def("ezjail_mount_enable", "YES")
	def("ezjail_devfs_enable", "YES")
	def("ezjail_devfs_ruleset", "devfsrules_jail")
	def("ezjail_procfs_enable", "YES")
	def("ezjail_fdescfs_enable", "YES")
	return c
}

// ezJail is one jail as its config file describes it.
type ezJail struct {
	safe  string
	file  string // config file name (safe or safe.norun)
	norun bool
	vars  map[string]string
}

func (e *env) readEzJail(file string) (*ezJail, error) {
	b, err := os.ReadFile(e.p(ezjailConfigDir + "/" + file))
	if err != nil {
		return nil, err
	}
	safe := strings.TrimSuffix(file, ".norun")
	j := &ezJail{safe: safe, file: file, norun: file != safe, vars: map[string]string{}}
	_, vars := parseRC(string(b))
	prefix := "jail_" + safe + "_"
	for _, v := range vars {
		if strings.HasPrefix(v.name, prefix) {
			j.vars[strings.TrimPrefix(v.name, prefix)] = v.value
		}
	}
	return j, nil
}

// findEzJail finds a jail by name (either config name form).
func (e *env) findEzJail(name string) *ezJail {
	safe := safeName(name)
	for _, f := range []string{safe, safe + ".norun"} {
		if j, err := e.readEzJail(f); err == nil {
			return j
		}
	}
	return nil
}

// ezJails lists all configs. rc.d/ezjail skips names containing a dot other
// than .norun (freebsd.md §1.3). Order: by name (approximation of rcorder).
func (e *env) ezJails() []*ezJail {
	ents, _ := os.ReadDir(e.p(ezjailConfigDir))
	var out []*ezJail
	for _, de := range ents {
		n := de.Name()
		if de.IsDir() || strings.Contains(strings.TrimSuffix(n, ".norun"), ".") {
			continue
		}
		if j, err := e.readEzJail(n); err == nil {
			out = append(out, j)
		}
	}
	return out
}

// ezjailHeader is the comment block writejailinfo() writes for a new jail.
const ezjailHeader = "# To specify the start up order of your ezjails, use these lines to\n" +
	"# create a Jail dependency tree. See rcorder(8) for more details.\n#\n" +
	"# PROVIDE: standard_ezjail\n# REQUIRE: \n# BEFORE: \n#\n"

// writeEzJail writes the file exactly as writejailinfo() (freebsd.md §1.3).
// A rewrite keeps the existing "#" lines (the rcorder headers) and the 22
// known variables only (freebsd.md §1.3 "Rewrite hazard").
func (e *env) writeEzJail(file, safe string, vars map[string]string) error {
	header := ezjailHeader
	if b, err := os.ReadFile(e.p(ezjailConfigDir + "/" + file)); err == nil {
		var hs []string
		for _, l := range strings.Split(string(b), "\n") {
			if strings.HasPrefix(l, "#") {
				hs = append(hs, l)
			}
		}
		header = strings.Join(hs, "\n") + "\n"
	}
	var sb strings.Builder
	sb.WriteString(header + "\n")
	for _, k := range ezjailVars {
		fmt.Fprintf(&sb, "export jail_%s_%s=\"%s\"\n", safe, k, vars[k])
	}
	return writeFile(e.p(ezjailConfigDir+"/"+file), []byte(sb.String()), 0o644)
}

func ezjailAdmin(e *env, args []string) int {
	if len(args) < 2 {
		fmt.Fprintln(e.stderr, "Usage: ezjail-admin [archive|config|console|create|delete|freeze|install|list|restore|snapshot|troubleshoot|update] {params}")
		return 1
	}
	sub, rest := args[1], args[2:]
	switch {
	case sub == "install":
		return e.ezInstall(rest)
	case sub == "create":
		return e.ezCreate(rest)
	case sub == "delete":
		return e.ezDelete(rest)
	case sub == "list":
		return e.ezList()
	case sub == "config":
		return e.ezConfig(rest)
	case sub == "archive":
		return e.ezArchive(rest)
	case sub == "restore":
		return e.ezRestore(rest)
	case strings.HasSuffix(sub, "start") || strings.HasSuffix(sub, "stop"):
		// The case arm is *start|*stop (freebsd.md §1.1).
		return e.ezStartStop(sub, rest, true)
	}
	fmt.Fprintf(e.stderr, "ezjail-admin: unknown or unemulated subcommand %q\n", sub)
	return 1
}

// getopts parses POSIX short options; spec is a getopts string. It returns
// the options in order and the operands.
func getopts(args []string, spec string) (opts [][2]string, rest []string, err error) {
	spec = strings.TrimPrefix(spec, ":")
	i := 0
	for ; i < len(args); i++ {
		a := args[i]
		if a == "--" {
			i++
			break
		}
		if len(a) < 2 || a[0] != '-' {
			break
		}
		for j := 1; j < len(a); j++ {
			c := a[j]
			k := strings.IndexByte(spec, c)
			if k < 0 || c == ':' {
				return nil, nil, fmt.Errorf("illegal option -- %c", c)
			}
			if k+1 < len(spec) && spec[k+1] == ':' {
				v := a[j+1:]
				if v == "" {
					i++
					if i >= len(args) {
						return nil, nil, fmt.Errorf("option requires an argument -- %c", c)
					}
					v = args[i]
				}
				opts = append(opts, [2]string{string(c), v})
				break
			}
			opts = append(opts, [2]string{string(c), ""})
		}
	}
	return opts, args[i:], nil
}

func optMap(opts [][2]string) map[string]string {
	m := map[string]string{}
	for _, o := range opts {
		m[o[0]] = o[1]
	}
	return m
}

// newjailAccounts are the first lines of FreeBSD's /etc/passwd and
// /etc/group (src/etc/master.passwd, src/etc/group), as a fresh jail has them.
var newjailAccounts = map[string]string{
	"passwd": "root:*:0:0:Charlie &:/root:/bin/sh\n" +
		"toor:*:0:0:Bourne-again Superuser:/root:\n" +
		"daemon:*:1:1:Owner of many system processes:/root:/usr/sbin/nologin\n" +
		"operator:*:2:5:System &:/:/usr/sbin/nologin\n" +
		"bin:*:3:7:Binaries Commands and Source:/:/usr/sbin/nologin\n" +
		"nobody:*:65534:65534:Unprivileged user:/nonexistent:/usr/sbin/nologin\n",
	"group": "wheel:*:0:root\n" +
		"daemon:*:1:\n" +
		"kmem:*:2:\n" +
		"sys:*:3:\n" +
		"tty:*:4:\n" +
		"operator:*:5:root\n" +
		"bin:*:7:\n" +
		"nogroup:*:65533:\n" +
		"nobody:*:65534:\n",
}

// ezInstall fakes the basejail/newjail split of `install` (freebsd.md §1.1)
// with a few empty directories; no world is downloaded.
func (e *env) ezInstall(args []string) int {
	if _, _, err := getopts(args, ":mMpPsSh:r:"); err != nil {
		fmt.Fprintf(e.stderr, "ezjail-admin: %v\n", err)
		return 1
	}
	c := e.ezjailConf()
	for _, d := range []string{"bin", "lib", "libexec", "sbin", "usr/bin", "usr/lib", "usr/sbin", "usr/share"} {
		if err := os.MkdirAll(e.p(c["ezjail_jailbase"]+"/"+d), 0o755); err != nil {
			fmt.Fprintf(e.stderr, "ezjail-admin: install: %v\n", err)
			return 1
		}
	}
	for _, d := range []string{"etc", "root", "tmp", "usr/local/etc", "var/run", "var/log", "var/db", "basejail"} {
		if err := os.MkdirAll(e.p(c["ezjail_jailtemplate"]+"/"+d), 0o755); err != nil {
			fmt.Fprintf(e.stderr, "ezjail-admin: install: %v\n", err)
			return 1
		}
	}
	os.Chmod(e.p(c["ezjail_jailtemplate"]+"/tmp"), 0o1777)
	// A real newjail has the base system's accounts: root and wheel at
	// least, which arbo resolves file owners against.
	for name, content := range newjailAccounts {
		if err := writeFile(e.p(c["ezjail_jailtemplate"]+"/etc/"+name), []byte(content), 0o644); err != nil {
			fmt.Fprintf(e.stderr, "ezjail-admin: install: %v\n", err)
			return 1
		}
	}
	if err := os.MkdirAll(e.p(c["ezjail_flavours_dir"]+"/example"), 0o755); err != nil {
		fmt.Fprintf(e.stderr, "ezjail-admin: install: %v\n", err)
		return 1
	}
	return 0
}

func (e *env) ezCreate(args []string) int {
	opts, rest, err := getopts(args, ":f:r:s:xbkic:C:a:A:z:")
	if err != nil || len(rest) != 2 {
		fmt.Fprintln(e.stderr, "Usage: ezjail-admin create [-xbi] [-f flavour] [-r jailroot] [-s size] [-c b|e|i|z] [-C args] [-a archive] jailname jailip")
		return 1
	}
	o := optMap(opts)
	name, ips := rest[0], rest[1]
	c := e.ezjailConf()
	safe, host := safeName(name), ezHostname(name)
	if name == "" || ezjailReserved[name] {
		fmt.Fprintf(e.stderr, "Error: Invalid jail name %q (reserved).\n", name)
		return 1
	}
	// create fails without a basejail (freebsd.md §1.1).
	if !isDir(e.p(c["ezjail_jailbase"])) || !isDir(e.p(c["ezjail_jailtemplate"])) {
		fmt.Fprintf(e.stderr, "Error: The basejail does not exist.\n  Maybe you want to run 'ezjail-admin install' first.\n")
		return 1
	}
	// Not idempotent: an existing config of the same safename is refused
	// (freebsd.md §1.1, §1.2).
	if exists(e.p(ezjailConfigDir+"/"+safe)) || exists(e.p(ezjailConfigDir+"/"+safe+".norun")) {
		fmt.Fprintf(e.stderr, "Error: A jail with name %s already exists.\n", safe)
		return 1
	}
	root := o["r"]
	if root == "" {
		root = c["ezjail_jaildir"] + "/" + host
	}
	_, register := o["x"]
	if !register && exists(e.p(root)) {
		fmt.Fprintf(e.stderr, "Error: The jail root directory %s exists.\n  Use -x to register an existing jail root.\n", root)
		return 1
	}
	if register && !isDir(e.p(root)) {
		fmt.Fprintf(e.stderr, "Error: Jail directory %s does not exist.\n", root)
		return 1
	}
	if !register {
		if err := copyTree(e.p(c["ezjail_jailtemplate"]), e.p(root)); err != nil {
			fmt.Fprintf(e.stderr, "Error: Could not copy template: %v\n", err)
			return 1
		}
		flavours := o["f"]
		if _, ok := o["f"]; !ok {
			flavours = c["ezjail_default_flavour"]
		}
		// Flavours are copied over the new root in order (freebsd.md §1.8).
		for _, f := range strings.Fields(flavours) {
			dir := e.p(c["ezjail_flavours_dir"] + "/" + f)
			if !isDir(dir) {
				fmt.Fprintf(e.stderr, "Error: Flavour %s not found.\n", f)
				os.RemoveAll(e.p(root))
				return 1
			}
			if err := copyTree(dir, e.p(root)); err != nil {
				fmt.Fprintf(e.stderr, "Error: Could not install flavour %s: %v\n", f, err)
				return 1
			}
		}
	}
	vars := map[string]string{
		"hostname": host, "ip": ips, "rootdir": root,
		"exec_start": c["ezjail_exec_start"], "exec_stop": c["ezjail_exec_stop"],
		"mount_enable": c["ezjail_mount_enable"], "devfs_enable": c["ezjail_devfs_enable"],
		"devfs_ruleset": c["ezjail_devfs_ruleset"], "procfs_enable": c["ezjail_procfs_enable"],
		"fdescfs_enable": c["ezjail_fdescfs_enable"],
	}
	if _, ok := o["b"]; ok {
		vars["forceblocking"] = "YES"
	}
	ctype := o["c"]
	if _, ok := o["i"]; ok && ctype == "" {
		ctype = "simple"
	}
	if o["z"] != "" {
		ctype = "zfs"
	}
	if ctype != "" {
		vars["imagetype"] = ctype
		if ctype == "zfs" {
			vars["parentzfs"] = o["z"]
			if vars["parentzfs"] == "" {
				vars["parentzfs"] = c["ezjail_jailzfs"]
			}
		} else {
			vars["image"] = root + ".img"
		}
	}
	fstab := fmt.Sprintf("%s %s/basejail nullfs ro 0 0\n", c["ezjail_jailbase"], root)
	if err := writeFile(e.p("/etc/fstab."+safe), []byte(fstab), 0o644); err != nil {
		fmt.Fprintf(e.stderr, "Error: %v\n", err)
		return 1
	}
	if err := e.writeEzJail(safe, safe, vars); err != nil {
		fmt.Fprintf(e.stderr, "Error: %v\n", err)
		return 1
	}
	return 0
}

func (e *env) ezDelete(args []string) int {
	opts, rest, err := getopts(args, ":wf")
	if err != nil || len(rest) != 1 {
		fmt.Fprintln(e.stderr, "Usage: ezjail-admin delete [-wf] jailname")
		return 1
	}
	o := optMap(opts)
	j := e.findEzJail(rest[0])
	if j == nil {
		fmt.Fprintf(e.stderr, "Error: Nothing known about jail %s.\n", rest[0])
		return 1
	}
	if e.jailRunning(j.safe) != nil {
		if _, force := o["f"]; !force {
			fmt.Fprintf(e.stderr, "Error: Jail appears to be still running.\n  'ezjail-admin stop %s' it first, or use -f.\n", rest[0])
			return 1
		}
		if err := e.stopJail(j.safe); err != nil {
			fmt.Fprintf(e.stderr, "Error: %v\n", err)
			return 1
		}
	}
	os.Remove(e.p(ezjailConfigDir + "/" + j.file))
	os.Remove(e.p("/etc/fstab." + j.safe))
	// -w wipes the root (freebsd.md §1.1); without it the data stays.
	if _, wipe := o["w"]; wipe && j.vars["rootdir"] != "" {
		if err := os.RemoveAll(e.p(j.vars["rootdir"])); err != nil {
			fmt.Fprintf(e.stderr, "Error: Could not wipe %s: %v\n", j.vars["rootdir"], err)
			return 1
		}
	}
	return 0
}

// ezList prints the columns of ezjail-admin lines 946-975 (freebsd.md §1.5).
func (e *env) ezList() int {
	fmt.Fprintf(e.stdout, "%-3s %-4s %-15s %-30s %s\n", "STA", "JID", "IP", "Hostname", "Root Directory")
	fmt.Fprintln(e.stdout, "--- ---- --------------- ------------------------------ ------------------------")
	for _, j := range e.ezJails() {
		sta := "D"
		switch j.vars["imagetype"] {
		case "zfs":
			sta = "Z"
		case "simple":
			sta = "I"
		case "eli":
			sta = "E"
		case "bde":
			sta = "B"
		}
		jid := "N/A"
		if r := e.jailRunning(j.safe); r != nil {
			sta += "R"
			jid = r.jid
		} else {
			sta += "S"
		}
		if j.norun {
			sta += "N"
		}
		ips := splitIPs(j.vars["ip"])
		first := "-"
		if len(ips) > 0 {
			first = ips[0]
			if _, a, ok := strings.Cut(first, "|"); ok {
				first = a
			}
		}
		fmt.Fprintf(e.stdout, "%-3s %-4s %-15s %-30s %s\n", sta, jid, first, j.vars["hostname"], j.vars["rootdir"])
		for _, ip := range ips[min(1, len(ips)):] {
			fmt.Fprintf(e.stdout, "    %-4s %s\n", jid, ip)
		}
	}
	return 0
}

func splitIPs(s string) []string {
	var out []string
	for _, p := range strings.Split(s, ",") {
		if p = strings.TrimSpace(p); p != "" {
			out = append(out, p)
		}
	}
	return out
}

// ezConfig implements -r run|norun|test (freebsd.md §1.1).
func (e *env) ezConfig(args []string) int {
	opts, rest, err := getopts(args, ":r:i:n:z:c:f:")
	if err != nil || len(rest) != 1 {
		fmt.Fprintln(e.stderr, "Usage: ezjail-admin config [-r run|norun|test] [-n newname] [-c cpuset] [-z zfs-datasets] [-f fib] [-i attach|detach|fsck] jailname")
		return 1
	}
	o := optMap(opts)
	name := rest[0]
	j := e.findEzJail(name)
	if j == nil {
		fmt.Fprintf(e.stderr, "Error: Nothing known about jail %s.\n", name)
		return 1
	}
	switch o["r"] {
	case "":
	case "test":
		if j.norun {
			fmt.Fprintf(e.stdout, "Jail %s is not runnable.\n", name)
		} else {
			fmt.Fprintf(e.stdout, "Jail %s is runnable.\n", name)
		}
		return 0
	case "run", "norun":
		target := j.safe
		if o["r"] == "norun" {
			target += ".norun"
		}
		if target != j.file {
			if err := os.Rename(e.p(ezjailConfigDir+"/"+j.file), e.p(ezjailConfigDir+"/"+target)); err != nil {
				fmt.Fprintf(e.stderr, "Error: %v\n", err)
				return 1
			}
		}
		return 0
	default:
		fmt.Fprintf(e.stderr, "Error: Invalid -r argument %q.\n", o["r"])
		return 1
	}
	// -c/-z/-f regenerate the file with writejailinfo, which drops unknown
	// lines (freebsd.md §1.3 "Rewrite hazard").
	changed := false
	for flag, v := range map[string]string{"c": "cpuset", "z": "zfs_datasets", "f": "fib"} {
		if val, ok := o[flag]; ok {
			j.vars[v] = val
			changed = true
		}
	}
	if _, ok := o["n"]; ok {
		fmt.Fprintln(e.stderr, "ezjail-admin: config -n is not emulated by the lab")
		return 1
	}
	if changed {
		if err := e.writeEzJail(j.file, j.safe, j.vars); err != nil {
			fmt.Fprintf(e.stderr, "Error: %v\n", err)
			return 1
		}
	}
	return 0
}

// ezStartStop hands off to rc.d/ezjail (freebsd.md §1.1, §1.4): plain
// start/stop need ezjail_enable=YES, the one- prefix skips that check, and
// after a start every named jail must have a JID.
func (e *env) ezStartStop(action string, names []string, fromAdmin bool) int {
	base := action
	for _, p := range []string{"one", "force", "quiet", "fast"} {
		base = strings.TrimPrefix(base, p)
	}
	if base != "start" && base != "stop" && base != "restart" {
		fmt.Fprintf(e.stderr, "ezjail: %s is not emulated by the lab\n", action)
		return 1
	}
	enabled := yes(e.rcGet("ezjail_enable", "NO")) || base != action
	var jails []*ezJail
	if len(names) == 0 {
		for _, j := range e.ezJails() {
			// Boot-time start skips norun and blocking jails (freebsd.md §1.4).
			if !j.norun && j.vars["forceblocking"] != "YES" {
				jails = append(jails, j)
			}
		}
	} else {
		for _, n := range names {
			j := e.findEzJail(n)
			if j == nil {
				fmt.Fprintf(e.stderr, "Error: Nothing known about jail %s.\n", n)
				return 1
			}
			jails = append(jails, j)
		}
	}
	if !enabled {
		fmt.Fprintf(e.stdout, "Cannot '%s' ezjail. Set ezjail_enable to YES in /etc/rc.conf or use 'one%s' instead of '%s'.\n", action, action, action)
		if fromAdmin && base != "stop" && len(names) > 0 {
			for _, n := range names {
				fmt.Fprintf(e.stderr, "Error: Could not start %s.\n", n)
			}
			return 1
		}
		return 0
	}
	code := 0
	if base == "stop" || base == "restart" {
		fmt.Fprint(e.stdout, "Stopping jails:")
		for i := len(jails) - 1; i >= 0; i-- {
			j := jails[i]
			if e.jailRunning(j.safe) != nil {
				if err := e.stopJail(j.safe); err != nil {
					fmt.Fprintf(e.stderr, "\n%v", err)
					code = 1
					continue
				}
				fmt.Fprintf(e.stdout, " %s", j.vars["hostname"])
			}
		}
		fmt.Fprintln(e.stdout, ".")
	}
	if base == "start" || base == "restart" {
		fmt.Fprint(e.stdout, "Configuring jails:.\nStarting jails:")
		for _, j := range jails {
			if e.jailRunning(j.safe) != nil {
				continue
			}
			if err := e.startJail(runJail{name: j.safe, hostname: j.vars["hostname"], path: j.vars["rootdir"], ip: j.vars["ip"]}); err != nil {
				fmt.Fprintf(e.stdout, " cannot start jail %q:\n%v\n", j.vars["hostname"], err)
				if fromAdmin {
					fmt.Fprintf(e.stderr, "Error: Could not start %s.\n", j.vars["hostname"])
				}
				code = 1
				continue
			}
			fmt.Fprintf(e.stdout, " %s", j.vars["hostname"])
		}
		fmt.Fprintln(e.stdout, ".")
	}
	return code
}

// ezArchive writes <safename>-YYYYmmddHHMM.SS.tar.gz with the config
// embedded as prop.ezjail-… (freebsd.md §1.1). The archive is a plain gzip
// tarball made by archive/tar (ezjail uses pax -x cpio; approximation).
func (e *env) ezArchive(args []string) int {
	opts, rest, err := getopts(args, ":Afa:d:")
	o := optMap(opts)
	if err != nil || len(rest) != 1 {
		fmt.Fprintln(e.stderr, "Usage: ezjail-admin archive [-Af] [-a archive] [-d archivedir] jailname")
		return 1
	}
	j := e.findEzJail(rest[0])
	if j == nil {
		fmt.Fprintf(e.stderr, "Error: Nothing known about jail %s.\n", rest[0])
		return 1
	}
	if _, force := o["f"]; !force && e.jailRunning(j.safe) != nil {
		fmt.Fprintf(e.stderr, "Error: Jail %s is running. Use -f to archive anyway.\n", rest[0])
		return 1
	}
	c := e.ezjailConf()
	dir := o["d"]
	if dir == "" {
		dir = c["ezjail_archivedir"]
	}
	name := o["a"]
	if name == "" {
		name = j.safe + "-" + time.Now().Format("200601021504.05")
	}
	path := e.p(dir + "/" + strings.TrimSuffix(name, ".tar.gz") + ".tar.gz")
	if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
		fmt.Fprintf(e.stderr, "Error: %v\n", err)
		return 1
	}
	cfg, err := os.ReadFile(e.p(ezjailConfigDir + "/" + j.file))
	if err == nil {
		err = writeTarGz(path, e.p(j.vars["rootdir"]), "prop.ezjail-"+j.safe+"-"+j.vars["hostname"]+"-"+e.machineInfo().release+"-amd64", cfg)
	}
	if err != nil {
		fmt.Fprintf(e.stderr, "Error: archive: %v\n", err)
		return 1
	}
	return 0
}

func writeTarGz(path, root, propName string, prop []byte) error {
	f, err := os.OpenFile(path, os.O_WRONLY|os.O_CREATE|os.O_EXCL, 0o600)
	if err != nil {
		return err
	}
	zw := gzip.NewWriter(f)
	tw := tar.NewWriter(zw)
	err = tw.WriteHeader(&tar.Header{Name: propName, Mode: 0o644, Size: int64(len(prop)), ModTime: time.Now()})
	if err == nil {
		_, err = tw.Write(prop)
	}
	if err == nil {
		err = filepath.Walk(root, func(p string, fi os.FileInfo, err error) error {
			if err != nil {
				return err
			}
			rel, err := filepath.Rel(root, p)
			if err != nil || rel == "." {
				return err
			}
			link := ""
			if fi.Mode()&os.ModeSymlink != 0 {
				if link, err = os.Readlink(p); err != nil {
					return err
				}
			}
			h, err := tar.FileInfoHeader(fi, link)
			if err != nil {
				return err
			}
			h.Name = "root/" + filepath.ToSlash(rel)
			if err := tw.WriteHeader(h); err != nil {
				return err
			}
			if fi.Mode().IsRegular() {
				src, err := os.Open(p)
				if err != nil {
					return err
				}
				_, err = io.Copy(tw, src)
				src.Close()
				return err
			}
			return nil
		})
	}
	for _, c := range []io.Closer{tw, zw, f} {
		if cerr := c.Close(); err == nil {
			err = cerr
		}
	}
	if err != nil {
		os.Remove(path)
	}
	return err
}

// ezRestore takes an archive path or a jail name; a name picks the newest
// <safename>* archive (freebsd.md §1.1). Restoring re-creates the jail, so
// it fails like create when the jail exists.
func (e *env) ezRestore(args []string) int {
	opts, rest, err := getopts(args, ":d:f")
	o := optMap(opts)
	if err != nil || len(rest) != 1 {
		fmt.Fprintln(e.stderr, "Usage: ezjail-admin restore [-f] [-d archivedir] archive|jailname")
		return 1
	}
	c := e.ezjailConf()
	dir := o["d"]
	if dir == "" {
		dir = c["ezjail_archivedir"]
	}
	arch := rest[0]
	if !strings.Contains(arch, "/") {
		safe := safeName(arch)
		ents, _ := os.ReadDir(e.p(dir))
		var cands []string
		for _, de := range ents {
			if strings.HasPrefix(de.Name(), safe) && strings.HasSuffix(de.Name(), ".tar.gz") {
				cands = append(cands, de.Name())
			}
		}
		if len(cands) == 0 {
			fmt.Fprintf(e.stderr, "Error: No archive for %s in %s.\n", arch, dir)
			return 1
		}
		sort.Strings(cands) // the timestamp format sorts by time
		arch = dir + "/" + cands[len(cands)-1]
	}
	if err := e.extractEzArchive(e.p(arch)); err != nil {
		fmt.Fprintf(e.stderr, "Error: restore %s: %v\n", arch, err)
		return 1
	}
	return 0
}

func (e *env) extractEzArchive(path string) error {
	f, err := os.Open(path)
	if err != nil {
		return err
	}
	defer f.Close()
	zr, err := gzip.NewReader(f)
	if err != nil {
		return err
	}
	tr := tar.NewReader(zr)
	var j *ezJail
	var root string
	for {
		h, err := tr.Next()
		if err == io.EOF {
			break
		}
		if err != nil {
			return err
		}
		if strings.HasPrefix(h.Name, "prop.ezjail-") {
			b, err := io.ReadAll(tr)
			if err != nil {
				return err
			}
			lines, vars := parseRC(string(b))
			_ = lines
			j = &ezJail{vars: map[string]string{}}
			for _, v := range vars {
				rest := strings.TrimPrefix(v.name, "jail_")
				for _, k := range ezjailVars {
					if strings.HasSuffix(rest, "_"+k) {
						j.safe = strings.TrimSuffix(rest, "_"+k)
						j.vars[k] = v.value
						break
					}
				}
			}
			if j.safe == "" || j.vars["rootdir"] == "" {
				return fmt.Errorf("archive has no usable jail config")
			}
			if e.findEzJail(j.safe) != nil {
				return fmt.Errorf("a jail with name %s already exists", j.safe)
			}
			root = e.p(j.vars["rootdir"])
			if exists(root) {
				return fmt.Errorf("the jail root directory %s exists", j.vars["rootdir"])
			}
			if err := os.MkdirAll(root, 0o755); err != nil {
				return err
			}
			continue
		}
		if root == "" {
			return fmt.Errorf("archive does not start with the jail config")
		}
		rel, ok := strings.CutPrefix(h.Name, "root/")
		if !ok || strings.Contains("/"+rel+"/", "/../") {
			return fmt.Errorf("unexpected archive member %q", h.Name)
		}
		target := filepath.Join(root, filepath.FromSlash(rel))
		switch h.Typeflag {
		case tar.TypeDir:
			err = os.MkdirAll(target, os.FileMode(h.Mode).Perm()|0o700)
		case tar.TypeSymlink:
			err = os.Symlink(h.Linkname, target)
		case tar.TypeReg:
			var out *os.File
			if out, err = os.OpenFile(target, os.O_WRONLY|os.O_CREATE|os.O_TRUNC, os.FileMode(h.Mode).Perm()); err == nil {
				_, err = io.Copy(out, tr)
				if cerr := out.Close(); err == nil {
					err = cerr
				}
			}
		}
		if err != nil {
			return err
		}
	}
	if j == nil {
		return fmt.Errorf("not an ezjail archive")
	}
	c := e.ezjailConf()
	fstab := fmt.Sprintf("%s %s/basejail nullfs ro 0 0\n", c["ezjail_jailbase"], j.vars["rootdir"])
	if err := writeFile(e.p("/etc/fstab."+j.safe), []byte(fstab), 0o644); err != nil {
		return err
	}
	return e.writeEzJail(j.safe, j.safe, j.vars)
}
