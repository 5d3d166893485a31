package pfsense

import (
	"fmt"
	"strings"
)

// RuleTrackers returns the trackers of cluster c's own filter rules in a
// config.xml (those whose descr starts with "arbo:<c>:"), enabled ones only.
// pfSense writes every enabled filter rule with "ridentifier <tracker>"
// (pfsense-2.7.2 src/etc/inc/filter.inc:3688), and pfctl prints it back in
// `pfctl -sr` (FreeBSD's pfctl regression pf1016.ok: "... ridentifier
// 12345678"): the trackers are how apply proves that the ruleset pf runs is
// the one generated from the config.xml it wrote.
func RuleTrackers(cluster string, config []byte) ([]string, error) {
	d, err := parse(config)
	if err != nil {
		return nil, fmt.Errorf("pfsense: %w", err)
	}
	f := d.root.child("filter")
	if f == nil {
		return nil, nil
	}
	prefix := "arbo:" + cluster + ":"
	var out []string
	for _, r := range f.elems("rule") {
		if !strings.HasPrefix(r.childValue("descr"), prefix) || r.child("disabled") != nil {
			continue
		}
		if t := r.childValue("tracker"); t != "" {
			out = append(out, t)
		}
	}
	return out, nil
}
