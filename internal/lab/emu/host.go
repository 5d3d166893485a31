package emu

import (
	"fmt"
	"os"
	"sort"
	"strings"
)

// Stand-ins for the FreeBSD base binaries that the upstream rc framework,
// service(8) and ezjail call on a host (the lab's "real code" mode). They
// are linked on hosts only (HostLinks).

func init() {
	commands["sysctl"] = sysctlCmd
	commands["kldload"] = kldloadCmd
	commands["kldstat"] = kldstatCmd
	commands["kldunload"] = kldunloadCmd
	commands["env"] = envCmd
	commands["bash"] = loginShellCmd
	commands["-bash"] = loginShellCmd
}

// HostLinks are linked on hosts that run the upstream code, in addition to
// Links. /usr/bin/env replaces busybox's env, which has no -L (service.sh:
// `exec env -i -L -/daemon …`).
var HostLinks = map[string][]string{
	"sysctl":    {"/sbin/sysctl"},
	"kldstat":   {"/sbin/kldstat"},
	"kldunload": {"/sbin/kldunload"},
	"env":       {"/usr/bin/env"},
	"bash":      {"/bin/bash"},
	// hostbin.go, expr.go, jailconf.go: where busybox's applet differs
	// from FreeBSD's or Debian has none. An applet of the same name is
	// then not linked in /bin (machine.go).
	"fetch":          {"/usr/bin/fetch"},
	"xzdec":          {"/usr/bin/xzdec"},
	"tar":            {"/usr/bin/tar"},
	"freebsd-update": {"/usr/sbin/freebsd-update"},
	"chflags":        {"/bin/chflags"},
	"cpio":           {"/usr/bin/cpio"},
	"mktemp":         {"/usr/bin/mktemp"},
	"tail":           {"/usr/bin/tail"},
	"stat":           {"/usr/bin/stat"},
	"rcorder":        {"/sbin/rcorder"},
	"ls":             {"/bin/ls"},
	"expr":           {"/bin/expr"},
	"sockstat":       {"/usr/bin/sockstat"},
	"pgrep":          {"/bin/pgrep"},
	"mount":          {"/sbin/mount"},
	"umount":         {"/sbin/umount"},
	"mount_nullfs":   {"/sbin/mount_nullfs"},
	"mount_devfs":    {"/sbin/mount_devfs"},
	"install":        {"/usr/bin/install"},
	"kenv":           {"/bin/kenv"},
	"pax":            {"/bin/pax"},
	"ping":           {"/sbin/ping"},
	"ping6":          {"/sbin/ping6"},
}

// HostApplets are busybox applets a FreeBSD host has at another path
// (rc.d/jail:208 runs /usr/bin/install), linked there on hosts that run
// the upstream code.
var HostApplets = map[string]string{
	"/usr/bin/bc": "bc",
	"/usr/bin/dc": "dc",
}

// KLDFile lists the loaded kernel modules, one per line.
const KLDFile = "/var/run/lab/kld"

// PFDevice is pf's device node: it exists only while pf.ko is loaded
// (pf(4)); pfctl without -n opens it (pfctl.c, main: `open(pf_device, mode)`,
// `err(1, "%s", pf_device)` when that fails).
const PFDevice = "/dev/pf"

// kernelModules are the modules kldload knows: pf.ko and pflog.ko, what
// rc.d/pf and rc.d/pflog load (required_modules), and the file systems
// ezjail's ZFS and nullfs paths load.
var kernelModules = map[string]bool{"pf": true, "pflog": true, "pfsync": true, "nullfs": true, "zfs": true}

func (e *env) loadedModules() []string {
	l, _ := readLines(e.m(KLDFile))
	return l
}

func modName(a string) string {
	a = a[strings.LastIndex(a, "/")+1:]
	return strings.TrimSuffix(a, ".ko")
}

// kldloadCmd: kldload [-nqv] file ... (kldload(8)): loading a loaded module
// fails ("module already loaded or in kernel", exit 1) unless -n; an unknown
// one fails with "No such file or directory".
func kldloadCmd(e *env, args []string) int {
	flags, names := splitFlags(args[1:])
	if len(names) == 0 {
		fmt.Fprintln(e.stderr, "usage: kldload [-nqv] file ...")
		return 1
	}
	loaded := e.loadedModules()
	code := 0
	for _, n := range names {
		m := modName(n)
		switch {
		case contains(loaded, m):
			if !flags["n"] {
				fmt.Fprintf(e.stderr, "kldload: can't load %s: module already loaded or in kernel\n", n)
				code = 1
			}
		case !kernelModules[m]:
			fmt.Fprintf(e.stderr, "kldload: can't load %s: No such file or directory\n", n)
			code = 1
		default:
			loaded = append(loaded, m)
			if m == "pf" {
				if err := os.WriteFile(e.m(PFDevice), nil, 0o600); err != nil {
					fmt.Fprintf(e.stderr, "kldload: %v\n", err)
					return 1
				}
			}
		}
	}
	if err := writeLines(e.m(KLDFile), loaded); err != nil {
		fmt.Fprintf(e.stderr, "kldload: %v\n", err)
		return 1
	}
	return code
}

// kldunloadCmd: kldunload name (kldunload(8)).
func kldunloadCmd(e *env, args []string) int {
	_, names := splitFlags(args[1:])
	loaded := e.loadedModules()
	for _, n := range names {
		m := modName(n)
		if !contains(loaded, m) {
			fmt.Fprintf(e.stderr, "kldunload: can't find file %s\n", n)
			return 1
		}
		var keep []string
		for _, x := range loaded {
			if x != m {
				keep = append(keep, x)
			}
		}
		loaded = keep
		if m == "pf" {
			_ = os.Remove(e.m(PFDevice))
		}
	}
	if err := writeLines(e.m(KLDFile), loaded); err != nil {
		fmt.Fprintf(e.stderr, "kldunload: %v\n", err)
		return 1
	}
	return 0
}

// kldstatCmd: kldstat [-q] [-m module | -n file] (kldstat(8)): with -m or
// -n, exit 1 ("can't find file") when it is not loaded, silently with -q.
func kldstatCmd(e *env, args []string) int {
	a := args[1:]
	quiet, want := false, ""
	for len(a) > 0 {
		switch a[0] {
		case "-q":
			quiet = true
			a = a[1:]
		case "-m", "-n":
			if len(a) < 2 {
				fmt.Fprintln(e.stderr, "usage: kldstat [-dhqv] [-i id] [-n filename] [-m modname]")
				return 1
			}
			want = modName(a[1])
			a = a[2:]
		default:
			a = a[1:] // -v, -d, -h: the listing below is all the lab has
		}
	}
	loaded := e.loadedModules()
	if want != "" {
		if !contains(loaded, want) {
			if !quiet {
				fmt.Fprintf(e.stderr, "kldstat: can't find file %s\n", want)
			}
			return 1
		}
		if !quiet {
			fmt.Fprintf(e.stdout, "Id Refs Address                Size Name\n 1    1 0xffffffff80000000  1000 %s.ko\n", want)
		}
		return 0
	}
	fmt.Fprintln(e.stdout, "Id Refs Address                Size Name")
	fmt.Fprintln(e.stdout, " 1    1 0xffffffff80200000 1f3e2d0 kernel")
	for i, m := range loaded {
		fmt.Fprintf(e.stdout, "%2d    1 0xffffffff82000000   10000 %s.ko\n", i+2, m)
	}
	return 0
}

// sysctlCmd: sysctl [-n] name ... (sysctl(8)) for the few OIDs the rc
// framework and ezjail read; an unknown OID fails as sysctl does ("unknown
// oid", exit 1) so that a script reading something the lab does not model
// shows in the call log.
func sysctlCmd(e *env, args []string) int {
	flags, names := splitFlags(args[1:])
	if flags["f"] {
		return 0 // sysctl -f FILE: the lab has no tunables to set
	}
	jailed := "0"
	if e.jail != "" {
		jailed = "1"
	}
	oids := map[string]string{
		"security.jail.jailed":                jailed,
		"security.jail.vnet":                  "0",
		"kern.ostype":                         "FreeBSD",
		"kern.osrelease":                      e.machineInfo().release,
		"hw.ncpu":                             "2",
		"security.jail.param.allow.mount.zfs": "0",
		"kern.securelevel":                    "-1",
		// rc.subr:2329 (load_rc_config) and network.subr ask these.
		"user.localbase":      "/usr/local",
		"kern.features.inet":  "1",
		"kern.features.inet6": "1",
	}
	// OpenZFS's module sets vfs.zfs.version.spa (5000, feature flags);
	// ezjail's check_for_zfs reads it (ezjail-admin:402).
	if contains(e.loadedModules(), "zfs") {
		oids["vfs.zfs.version.spa"] = "5000"
	}
	if len(names) == 0 {
		keys := make([]string, 0, len(oids))
		for k := range oids {
			keys = append(keys, k)
		}
		sort.Strings(keys)
		names = keys
	}
	code := 0
	for _, n := range names {
		if i := strings.IndexByte(n, '='); i >= 0 {
			continue // setting a value: accepted, nothing the lab models
		}
		v, ok := oids[n]
		if !ok {
			if !flags["q"] { // -q: no error for an unknown oid (sysctl(8))
				fmt.Fprintf(e.stderr, "sysctl: unknown oid '%s'\n", n)
			}
			code = 1
			continue
		}
		if flags["n"] {
			fmt.Fprintln(e.stdout, v)
		} else {
			fmt.Fprintf(e.stdout, "%s: %s\n", n, v)
		}
	}
	return code
}

func splitFlags(a []string) (map[string]bool, []string) {
	flags, rest := map[string]bool{}, []string{}
	for _, x := range a {
		if strings.HasPrefix(x, "-") && len(x) > 1 {
			for _, c := range x[1:] {
				flags[string(c)] = true
			}
		} else {
			rest = append(rest, x)
		}
	}
	return flags, rest
}
