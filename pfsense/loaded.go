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

// RouteChanges compares cluster c's own gateways and static routes in the
// config.xml pfSense runs (old) and the one arbo writes (new). removed are
// the indexes, among old's <staticroutes><route> elements (pfSense's
// staticroutes/route/<id>), of arbo's routes that new no longer has with
// the same network and gateway: pfSense's GUI deletes such a route from the
// kernel with delete_static_route(id) before it removes it from the config
// (system_routes.php:72, system.inc:1573-1617). changed says whether arbo's
// gateways or routes differ at all, so that they must be applied
// (system_routing_configure(), system_routes.php:59).
func RouteChanges(cluster string, old, new []byte) (removed []int, changed bool, err error) {
	prefix := "arbo:" + cluster + ":"
	list := func(conf []byte) (routes []string, owned []int, gws []string, err error) {
		d, err := parse(conf)
		if err != nil {
			return nil, nil, nil, fmt.Errorf("pfsense: %w", err)
		}
		if s := d.root.child("staticroutes"); s != nil {
			for i, r := range s.elems("route") {
				if strings.HasPrefix(r.childValue("descr"), prefix) {
					routes = append(routes, r.childValue("network")+" "+r.childValue("gateway"))
					owned = append(owned, i)
				}
			}
		}
		if g := d.root.child("gateways"); g != nil {
			for _, it := range g.elems("gateway_item") {
				if strings.HasPrefix(it.childValue("descr"), prefix) {
					gws = append(gws, it.childValue("name")+" "+it.childValue("interface")+" "+it.childValue("gateway"))
				}
			}
		}
		return routes, owned, gws, nil
	}
	oldRoutes, oldIdx, oldGws, err := list(old)
	if err != nil {
		return nil, false, err
	}
	newRoutes, _, newGws, err := list(new)
	if err != nil {
		return nil, false, err
	}
	keep := map[string]bool{}
	for _, r := range newRoutes {
		keep[r] = true
	}
	for k, r := range oldRoutes {
		if !keep[r] {
			removed = append(removed, oldIdx[k])
		}
	}
	changed = strings.Join(oldRoutes, "\n") != strings.Join(newRoutes, "\n") || strings.Join(oldGws, "\n") != strings.Join(newGws, "\n")
	return removed, changed, nil
}
