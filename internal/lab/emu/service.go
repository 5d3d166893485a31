package emu

import (
	"fmt"
	"strings"
	"time"
)

func init() {
	commands["service"] = serviceCmd
}

// recordService appends "<jail or -> <service> <action>" to ServicesLog, so
// that tests can assert which services were touched (and that dangerous
// ones, such as routing restart, never were).
func (e *env) recordService(name, action string) {
	j := e.jail
	if j == "" {
		j = "-"
	}
	_ = appendLine(e.m(ServicesLog), fmt.Sprintf("%s %s %s %s", time.Now().UTC().Format(time.RFC3339), j, name, action))
}

// serviceCmd: service [-j jail] name action (service(8), rc.d scripts as
// freebsd.md §3.1 and §4.4 describe them).
func serviceCmd(e *env, args []string) int {
	opts, rest, err := getopts(args[1:], "eElrRvj:")
	if err != nil || len(rest) < 2 {
		fmt.Fprintln(e.stderr, "usage: service [-j <jail name or id>] <rc.d script> <start|stop|etc.>")
		return 1
	}
	o := optMap(opts)
	if j, ok := o["j"]; ok {
		r := e.findRunning(j)
		if r == nil {
			fmt.Fprintf(e.stderr, "service: jail %s is not running\n", j)
			return 1
		}
		je := &env{root: e.m(r.path), logRoot: e.logRoot, jail: r.name, stdin: e.stdin, stdout: e.stdout, stderr: e.stderr}
		return je.run("service", append([]string{"service"}, rest...))
	}
	name, action := rest[0], rest[1]
	e.recordService(name, action)
	switch name {
	case "pf":
		return e.servicePF(action)
	case "unbound", "local_unbound":
		return e.serviceUnbound(name, action)
	case "ezjail":
		return e.ezStartStop(action, rest[2:], false)
	case "netif":
		return e.serviceNetif(action, rest[2:])
	case "routing":
		if strings.HasSuffix(action, "restart") || strings.HasSuffix(action, "stop") {
			// rc.d/routing stop runs `route -n flush -inet` (freebsd.md
			// §3.1); arbo must never run it remotely. The lab lets it
			// succeed and records it in ServicesLog for tests to assert on.
			fmt.Fprintf(e.stderr, "lab: WARNING: service routing %s flushes routes on a real host\n", action)
		}
		return 0
	}
	return 0
}

// servicePF follows rc.d/pf (freebsd.md §4.4): check = pfctl -n -f;
// reload = check then load, no flush; start = pfctl -F all, load, enable;
// stop = pfctl -d; restart = stop + start, so it flushes states.
func (e *env) servicePF(action string) int {
	rules := e.rcGet("pf_rules", "/etc/pf.conf")
	load := func(parseOnly bool) int { return e.pfLoad(rules, "", parseOnly, false) }
	switch strings.TrimPrefix(strings.TrimPrefix(action, "one"), "force") {
	case "check":
		return load(true)
	case "reload", "resync":
		if c := load(true); c != 0 {
			return c
		}
		return load(false)
	case "start":
		return e.pfStart(load)
	case "stop":
		if e.pfEnabled() {
			return e.pfEnable(false, true)
		}
		return 0
	case "restart":
		if e.pfEnabled() {
			if c := e.pfEnable(false, true); c != 0 {
				return c
			}
		}
		return e.pfStart(load)
	case "status":
		if e.pfEnabled() {
			fmt.Fprintln(e.stdout, "Status: Enabled")
			return 0
		}
		fmt.Fprintln(e.stdout, "Status: Disabled")
		return 1
	}
	fmt.Fprintf(e.stderr, "pf: unknown directive '%s'.\n", action)
	return 1
}

func (e *env) pfStart(load func(bool) int) int {
	fmt.Fprintln(e.stdout, "Enabling pf.")
	if c := e.pfFlush("all", "", true); c != 0 {
		return c
	}
	if c := load(false); c != 0 {
		return c
	}
	if !e.pfEnabled() {
		return e.pfEnable(true, true)
	}
	return 0
}

// serviceUnbound: reload/restart/start run unbound-checkconf first, as the
// port's start_precmd and reload_precmd do (unbound.in:69, :87); only base
// local_unbound has configtest. The port's unbound
// reads /usr/local/etc/unbound/unbound.conf, base local_unbound reads
// /var/unbound/unbound.conf (freebsd.md §3.1).
func (e *env) serviceUnbound(name, action string) int {
	conf := "/usr/local/etc/unbound/unbound.conf"
	if name == "local_unbound" {
		conf = "/var/unbound/unbound.conf"
	}
	test := func() int { return e.unboundCheckconf(conf) }
	switch strings.TrimPrefix(action, "one") {
	case "configtest":
		if name == "unbound" {
			// The dns/unbound port's rc script has no configtest (freebsd-ports
			// dns/unbound/files/unbound.in:85 extra_commands="reload"), so
			// rc.subr answers as for any unknown argument (rc.subr:1709).
			break
		}
		if c := test(); c != 0 {
			return c
		}
		fmt.Fprintf(e.stdout, "unbound-checkconf: no errors in %s\n", conf)
		return 0
	case "reload", "restart", "start":
		return test()
	case "stop", "status":
		return 0
	}
	fmt.Fprintf(e.stderr, "%s: unknown directive '%s'.\n", name, action)
	return 1
}

// serviceNetif: cloneup creates the cloned_interfaces of rc.conf (and
// rc.conf.local) that do not exist yet (freebsd.md §3.1); restart is
// dangerous remotely and only recorded.
func (e *env) serviceNetif(action string, names []string) int {
	switch action {
	case "cloneup":
		ifs, err := e.interfaces()
		if err != nil {
			fmt.Fprintf(e.stderr, "netif: %v\n", err)
			return 1
		}
		created := []string{}
		for _, n := range strings.Fields(e.rcGet("cloned_interfaces", "")) {
			n, _, _ = strings.Cut(n, ":") // ifn:sticky
			if len(names) > 0 && !contains(names, n) {
				continue
			}
			if ifs.find(n) == nil {
				ifs = append(ifs, &iface{name: n})
				created = append(created, n)
			}
		}
		if len(created) > 0 {
			fmt.Fprintf(e.stdout, "Created clone interfaces: %s.\n", strings.Join(created, " "))
		}
		return e.saveOrFail(ifs)
	case "restart", "stop", "start":
		fmt.Fprintf(e.stderr, "lab: WARNING: service netif %s reconfigures interfaces on a real host\n", action)
		return 0
	}
	return 0
}

func contains(list []string, s string) bool {
	for _, x := range list {
		if x == s {
			return true
		}
	}
	return false
}
