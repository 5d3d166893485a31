package inventory

import "strings"

// rcOwned are the rc.conf variables arbo writes in a host's
// /etc/rc.conf.local (jail.RCConfVars; a jail test keeps the two in step)
// or relies on, each with why, for the load error. rc_conf may not set them
// (issue 11, item 9): an override would, after the next reboot, turn off
// the firewall check proved, point pf at other rules, or cut arbo's own way
// in, and nothing before the reboot would show it.
var rcOwned = map[string]string{
	"ezjail_enable":            "the jails start with the host",
	"pf_enable":                "the firewall arbo proves must run",
	"pf_rules":                 "pf loads the rules arbo writes to /etc/pf.conf",
	"pf_flags":                 "pf loads the rules arbo writes, as written",
	"pf_program":               "pf loads the rules arbo writes, with pfctl",
	"pf_fallback_rules_enable": "the fallback ruleset keeps SSH open when /etc/pf.conf fails",
	"pf_fallback_rules":        "the fallback ruleset keeps SSH open when /etc/pf.conf fails",
	"pf_fallback_rules_file":   "the fallback ruleset keeps SSH open when /etc/pf.conf fails",
	"pflog_enable":             "pf logs what it blocks",
	"sshd_enable":              "arbo manages the host over SSH",
	"gateway_enable":           "a host does not forward packets: check proves the firewall of a host that does not route",
	"ipv6_gateway_enable":      "a host does not forward packets: check proves the firewall of a host that does not route",
	"cloned_interfaces":        "arbo creates lo1 for host-local jail addresses",
	"defaultrouter":            "the default router comes from the topology's way out",
	"ipv6_defaultrouter":       "the default router comes from the topology's way out",
	"static_routes":            "the static routes come from the topology",
	"ipv6_static_routes":       "the static routes come from the topology",
}

// rcOwnedPrefix are families of such variables.
var rcOwnedPrefix = []struct{ prefix, why string }{
	{"ifconfig_lo1", "lo1's addresses are the jails', added by ezjail when each starts"},
	{"route_", "the static routes come from the topology"},
	{"ipv6_route_", "the static routes come from the topology"},
}

// RCConfOwned reports whether rc.conf variable name is arbo's, and why; the
// rc_conf extras of a topology may not set it.
func RCConfOwned(name string) (why string, owned bool) {
	if why, ok := rcOwned[name]; ok {
		return why, true
	}
	for _, p := range rcOwnedPrefix {
		if strings.HasPrefix(name, p.prefix) {
			return p.why, true
		}
	}
	return "", false
}
