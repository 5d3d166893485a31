//go:build linux

package lab

import (
	"bytes"
	"fmt"
	"slices"
	"strconv"
	"strings"

	"github.com/arbo-project/arbo/inventory"
)

// installedGatewayConfig is the config.xml a freshly installed pfSense has
// once its operator did what every install does at the console before arbo
// can manage it, for the topology's gateway: pfSense's factory config.xml
// (testdata/pfsense-default-config.xml) with
//
//  1. the interfaces assigned to the topology's NICs (console option 1,
//     set_networking_interfaces_ports() in pfSense's src/etc/inc/
//     config.console.inc): wan and lan get <if> and <enable>, each optN a
//     new element with <if> and <descr>OPTn</descr> and no <enable>, and a
//     lan the topology lacks is removed;
//  2. each interface's IPv4 address set (console option 2, src/etc/
//     rc.initial.setlanip, the block after console_configure_ip_address()):
//     ipaddr, subnet, gateway, ipaddrv6, subnetv6, gatewayv6 written, and
//     <enable> set, on every interface including optN. No upstream gateway
//     is entered (the lab has no upstream router) and IPv6 is left empty;
//  3. SSH enabled (console option 14, src/etc/rc.initial.toggle_sshd):
//     <system><ssh><enable>enabled</enable></ssh>, the path pfSense 2.7.2
//     reads (filter.inc:4905 config_path_enabled('system/ssh'), which puts
//     port 22 into the anti-lockout rule, filter.inc:4219).
//
// config.console.inc, rc.initial.setlanip and rc.initial.toggle_sshd are not
// in the shared upstream folder (they run only at the console); they were
// read at github.com/pfsense/pfsense. Values are written the way pfSense's
// dump_xml_config (xmlparse.inc) writes them: true as an empty element.
func installedGatewayConfig(factory []byte, g *inventory.Gateway) ([]byte, error) {
	if g == nil {
		return factory, nil
	}
	s := string(factory)
	const open, close = "\t<interfaces>\n", "\t</interfaces>\n"
	i := strings.Index(s, open)
	j := strings.Index(s, close)
	if i < 0 || j < i {
		return nil, fmt.Errorf("factory config.xml: no <interfaces> block")
	}
	have := map[string][]string{} // element name -> its lines, tags included
	var order []string
	lines := strings.SplitAfter(s[i+len(open):j], "\n")
	for k := 0; k < len(lines); k++ {
		l := lines[k]
		if !strings.HasPrefix(l, "\t\t<") || strings.HasPrefix(l, "\t\t</") {
			continue
		}
		name := strings.TrimSuffix(strings.TrimPrefix(l, "\t\t<"), ">\n")
		end := "\t\t</" + name + ">\n"
		el := []string{l}
		for k++; k < len(lines) && lines[k] != end; k++ {
			el = append(el, lines[k])
		}
		have[name] = append(el, end)
		order = append(order, name)
	}
	byName := map[string]inventory.GatewayInterface{}
	var opts []string
	for _, gi := range g.Interfaces {
		byName[gi.Name] = gi
		if gi.Name != "wan" && gi.Name != "lan" {
			opts = append(opts, gi.Name)
		}
	}
	// Console assignment numbers the optional interfaces opt1, opt2, ... in
	// the order entered; the topology names them.
	slices.SortFunc(opts, func(a, b string) int {
		na, _ := strconv.Atoi(strings.TrimPrefix(a, "opt"))
		nb, _ := strconv.Atoi(strings.TrimPrefix(b, "opt"))
		return na - nb
	})
	var b strings.Builder
	b.WriteString(open)
	for _, name := range append(order, opts...) {
		gi, ok := byName[name]
		if !ok {
			continue // a lan the topology lacks: unset by the assignment
		}
		el := have[name]
		if el == nil {
			el = []string{"\t\t<" + name + ">\n", "\t\t</" + name + ">\n"}
			el = setLeaf(el, "if", gi.Device)
			el = setLeaf(el, "descr", strings.ToUpper(name))
		} else {
			el = setLeaf(el, "if", gi.Device)
			el = setLeaf(el, "enable", "")
		}
		bits := gi.Prefix.Bits()
		if bits < 0 {
			bits = gi.Address.BitLen()
		}
		for _, kv := range [][2]string{{"ipaddr", gi.Address.String()}, {"subnet", strconv.Itoa(bits)},
			{"gateway", ""}, {"ipaddrv6", ""}, {"subnetv6", ""}, {"gatewayv6", ""}, {"enable", ""}} {
			el = setLeaf(el, kv[0], kv[1])
		}
		b.WriteString(strings.Join(el, ""))
	}
	b.WriteString(close)
	s = s[:i] + b.String() + s[j+len(close):]
	const sys = "\t</system>\n"
	if !strings.Contains(s, sys) {
		return nil, fmt.Errorf("factory config.xml: no </system>")
	}
	s = strings.Replace(s, sys, "\t\t<ssh>\n\t\t\t<enable>enabled</enable>\n\t\t</ssh>\n"+sys, 1)
	if !bytes.HasPrefix([]byte(s), []byte("<?xml")) {
		return nil, fmt.Errorf("factory config.xml: no XML declaration")
	}
	return []byte(s), nil
}

// setLeaf sets the leaf key of one interface element (its lines, the
// opening and closing tag included), appending it before the closing tag
// when it is missing, as PHP appends a new array key.
func setLeaf(el []string, key, val string) []string {
	line := "\t\t\t<" + key + ">" + val + "</" + key + ">\n"
	for k, l := range el {
		if strings.HasPrefix(l, "\t\t\t<"+key+">") || l == "\t\t\t<"+key+"/>\n" {
			el[k] = line
			return el
		}
	}
	return append(el[:len(el)-1:len(el)-1], line, el[len(el)-1])
}
