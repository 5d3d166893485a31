package emu

import (
	"fmt"
	"net/netip"
	"strings"
)

func init() {
	commands["ifconfig"] = ifconfigCmd
	commands["route"] = routeCmd
	commands["netstat"] = netstatCmd
}

// iface is one interface of InterfacesFile: "<name> [addr/prefix …]".
type iface struct {
	name  string
	addrs []string
}

type ifaceList []*iface

func (l ifaceList) find(name string) *iface {
	for _, i := range l {
		if i.name == name {
			return i
		}
	}
	return nil
}

func (i *iface) addAddr(a string) {
	for _, x := range i.addrs {
		if x == a {
			return
		}
	}
	i.addrs = append(i.addrs, a)
}

func (i *iface) delAddr(a string) bool {
	for k, x := range i.addrs {
		if x == a || strings.SplitN(x, "/", 2)[0] == strings.SplitN(a, "/", 2)[0] {
			i.addrs = append(i.addrs[:k], i.addrs[k+1:]...)
			return true
		}
	}
	return false
}

// interfaces reads InterfacesFile; before the first change it is the boot
// state: lo0 plus the iface= lines of MachineFile.
func (e *env) interfaces() (ifaceList, error) {
	lines, err := readLines(e.m(InterfacesFile))
	if err != nil {
		return nil, fmt.Errorf("read interfaces: %w", err)
	}
	if lines == nil && !exists(e.m(InterfacesFile)) {
		lines = append([]string{"lo0 127.0.0.1/8"}, e.machineInfo().ifaces...)
	}
	var out ifaceList
	for _, l := range lines {
		f := strings.Fields(l)
		if out.find(f[0]) == nil {
			out = append(out, &iface{name: f[0]})
		}
		for _, a := range f[1:] {
			out.find(f[0]).addAddr(a)
		}
	}
	return out, nil
}

func (e *env) saveInterfaces(l ifaceList) error {
	var lines []string
	for _, i := range l {
		lines = append(lines, strings.Join(append([]string{i.name}, i.addrs...), " "))
	}
	if len(lines) == 0 {
		return writeFile(e.m(InterfacesFile), []byte("\n"), 0o644)
	}
	return writeLines(e.m(InterfacesFile), lines)
}

// printIface prints an ifconfig(8)-like stanza (flags abridged).
func (e *env) printIface(i *iface) {
	if strings.HasPrefix(i.name, "lo") {
		fmt.Fprintf(e.stdout, "%s: flags=8049<UP,LOOPBACK,RUNNING,MULTICAST> metric 0 mtu 16384\n", i.name)
	} else {
		fmt.Fprintf(e.stdout, "%s: flags=8863<UP,BROADCAST,RUNNING,SIMPLEX,MULTICAST> metric 0 mtu 1500\n", i.name)
	}
	for _, a := range i.addrs {
		p, err := netip.ParsePrefix(a)
		if err != nil {
			continue
		}
		if p.Addr().Is4() {
			mask := uint32(0xffffffff) << (32 - p.Bits())
			if p.Bits() == 0 {
				mask = 0
			}
			fmt.Fprintf(e.stdout, "\tinet %s netmask 0x%08x\n", p.Addr(), mask)
		} else {
			fmt.Fprintf(e.stdout, "\tinet6 %s prefixlen %d\n", p.Addr(), p.Bits())
		}
	}
	group := strings.TrimRight(i.name, "0123456789")
	fmt.Fprintf(e.stdout, "\tgroups: %s\n", group)
}

// ifconfigCmd: list, `ifconfig -l`, `ifconfig IF`, `IF create|destroy`,
// `IF [inet|inet6] ADDR[/len] [alias|-alias|delete]` (ifconfig(8)).
func ifconfigCmd(e *env, args []string) int {
	ifs, err := e.interfaces()
	if err != nil {
		fmt.Fprintf(e.stderr, "ifconfig: %v\n", err)
		return 1
	}
	a := args[1:]
	if len(a) == 0 || a[0] == "-a" {
		for _, i := range ifs {
			e.printIface(i)
		}
		return 0
	}
	if a[0] == "-l" {
		var names []string
		for _, i := range ifs {
			names = append(names, i.name)
		}
		fmt.Fprintln(e.stdout, strings.Join(names, " "))
		return 0
	}
	name, a := a[0], a[1:]
	i := ifs.find(name)
	if len(a) > 0 && a[0] == "create" {
		// Cloning an existing interface fails (ifconfig(8), SIOCIFCREATE2).
		if i != nil {
			fmt.Fprintf(e.stderr, "ifconfig: SIOCIFCREATE2 (%s): File exists\n", name)
			return 1
		}
		if !strings.HasPrefix(name, "lo") && !strings.HasPrefix(name, "bridge") && !strings.HasPrefix(name, "epair") && !strings.HasPrefix(name, "vlan") && !strings.HasPrefix(name, "tap") {
			fmt.Fprintf(e.stderr, "ifconfig: SIOCIFCREATE2 (%s): Invalid argument\n", name)
			return 1
		}
		ifs = append(ifs, &iface{name: name})
		if len(name) > 2 && name[:2] == "lo" {
			fmt.Fprintln(e.stdout, name)
		}
		return e.saveOrFail(ifs)
	}
	if i == nil {
		fmt.Fprintf(e.stderr, "ifconfig: interface %s does not exist\n", name)
		return 1
	}
	if len(a) == 0 {
		e.printIface(i)
		return 0
	}
	if a[0] == "destroy" {
		for k, x := range ifs {
			if x == i {
				ifs = append(ifs[:k], ifs[k+1:]...)
				break
			}
		}
		return e.saveOrFail(ifs)
	}
	if a[0] == "inet" || a[0] == "inet6" {
		a = a[1:]
	}
	if len(a) == 0 {
		e.printIface(i)
		return 0
	}
	addr := defaultMask(a[0])
	if _, err := netip.ParsePrefix(addr); err != nil {
		fmt.Fprintf(e.stderr, "ifconfig: %s: bad value\n", a[0])
		return 1
	}
	remove := false
	for _, w := range a[1:] {
		if w == "-alias" || w == "delete" {
			remove = true
		}
	}
	if remove {
		if !i.delAddr(addr) {
			fmt.Fprintln(e.stderr, "ifconfig: ioctl (SIOCDIFADDR): Can't assign requested address")
			return 1
		}
	} else {
		i.addAddr(addr)
	}
	return e.saveOrFail(ifs)
}

func (e *env) saveOrFail(ifs ifaceList) int {
	if err := e.saveInterfaces(ifs); err != nil {
		fmt.Fprintf(e.stderr, "ifconfig: %v\n", err)
		return 1
	}
	return 0
}

// route is one line of RoutesFile: "<dest prefix> <gateway>".
type route struct {
	dest netip.Prefix
	gw   string
}

func (e *env) routes() ([]route, error) {
	lines, err := readLines(e.m(RoutesFile))
	if err != nil {
		return nil, fmt.Errorf("read routes: %w", err)
	}
	var out []route
	for _, l := range lines {
		f := strings.Fields(l)
		if len(f) != 2 {
			continue
		}
		p, err := netip.ParsePrefix(f[0])
		if err != nil {
			continue
		}
		out = append(out, route{p, f[1]})
	}
	return out, nil
}

func (e *env) saveRoutes(rs []route) error {
	var lines []string
	for _, r := range rs {
		lines = append(lines, r.dest.String()+" "+r.gw)
	}
	return writeLines(e.m(RoutesFile), lines)
}

// parseDest reads route(8) destinations: "default", a prefix, or an address
// (a host, or a network when -net was given with a classful address).
func parseDest(s string, v6 bool) (netip.Prefix, error) {
	if s == "default" {
		if v6 {
			return netip.MustParsePrefix("::/0"), nil
		}
		return netip.MustParsePrefix("0.0.0.0/0"), nil
	}
	if strings.Contains(s, "/") {
		p, err := netip.ParsePrefix(s)
		return p.Masked(), err
	}
	a, err := netip.ParseAddr(s)
	if err != nil {
		return netip.Prefix{}, err
	}
	return netip.PrefixFrom(a, a.BitLen()), nil
}

// routeCmd: route [-n] add|change|delete [-net|-host|-inet|-inet6] DEST GW,
// route [-n] get|show DEST (route(8)). Messages follow route(8)'s.
func routeCmd(e *env, args []string) int {
	a := args[1:]
	for len(a) > 0 && strings.HasPrefix(a[0], "-") {
		a = a[1:] // -n, -q, -v
	}
	if len(a) == 0 {
		fmt.Fprintln(e.stderr, "usage: route [-46dnqtv] command [[modifiers] args]")
		return 1
	}
	cmd := a[0]
	var pos []string
	net, v6 := false, false
	for _, w := range a[1:] {
		switch w {
		case "-net":
			net = true
		case "-host":
		case "-inet":
		case "-inet6", "-6":
			v6 = true
		default:
			pos = append(pos, w)
		}
	}
	if cmd == "flush" {
		if err := e.saveRoutes(nil); err != nil {
			fmt.Fprintf(e.stderr, "route: %v\n", err)
			return 1
		}
		return 0
	}
	if len(pos) == 0 {
		fmt.Fprintf(e.stderr, "route: %s: destination required\n", cmd)
		return 1
	}
	dest, err := parseDest(pos[0], v6)
	if err != nil {
		fmt.Fprintf(e.stderr, "route: bad address: %s\n", pos[0])
		return 1
	}
	kind := "host"
	if net || dest.Bits() < dest.Addr().BitLen() {
		kind = "net"
	}
	rs, err := e.routes()
	if err != nil {
		fmt.Fprintf(e.stderr, "route: %v\n", err)
		return 1
	}
	idx := -1
	for k, r := range rs {
		if r.dest == dest {
			idx = k
		}
	}
	switch cmd {
	case "add", "change":
		if len(pos) < 2 {
			fmt.Fprintf(e.stderr, "route: %s: gateway required\n", cmd)
			return 1
		}
		gw := pos[1]
		if cmd == "add" && idx >= 0 {
			fmt.Fprintln(e.stderr, "route: message indicates error: File exists")
			fmt.Fprintf(e.stderr, "add %s %s: gateway %s fib 0: route already in table\n", kind, pos[0], gw)
			return 1
		}
		if cmd == "change" && idx < 0 {
			fmt.Fprintf(e.stderr, "route: route has not been found\nchange %s %s: gateway %s fib 0: not in table\n", kind, pos[0], gw)
			return 1
		}
		if idx >= 0 {
			rs[idx].gw = gw
		} else {
			rs = append(rs, route{dest, gw})
		}
		if err := e.saveRoutes(rs); err != nil {
			fmt.Fprintf(e.stderr, "route: %v\n", err)
			return 1
		}
		fmt.Fprintf(e.stdout, "%s %s %s: gateway %s\n", cmd, kind, pos[0], gw)
		return 0
	case "delete", "del":
		if idx < 0 {
			fmt.Fprintf(e.stderr, "route: route has not been found\ndelete %s %s fib 0: not in table\n", kind, pos[0])
			return 1
		}
		gw := rs[idx].gw
		rs = append(rs[:idx], rs[idx+1:]...)
		if err := e.saveRoutes(rs); err != nil {
			fmt.Fprintf(e.stderr, "route: %v\n", err)
			return 1
		}
		fmt.Fprintf(e.stdout, "delete %s %s: gateway %s\n", kind, pos[0], gw)
		return 0
	case "get", "show":
		return e.routeGet(dest, rs)
	}
	fmt.Fprintf(e.stderr, "route: %s: not emulated by the lab\n", cmd)
	return 1
}

// routeGet prints the longest-prefix match among static routes and the
// connected networks of the interfaces, in route(8) get format.
func (e *env) routeGet(dest netip.Prefix, rs []route) int {
	ifs, _ := e.interfaces()
	best, bestBits, gw, ifn := netip.Prefix{}, -1, "", ""
	for _, i := range ifs {
		for _, a := range i.addrs {
			p, err := netip.ParsePrefix(a)
			if err == nil && p.Masked().Contains(dest.Addr()) && p.Bits() > bestBits {
				best, bestBits, gw, ifn = p.Masked(), p.Bits(), "", i.name
			}
		}
	}
	for _, r := range rs {
		if r.dest.Contains(dest.Addr()) && r.dest.Bits() > bestBits {
			best, bestBits, gw, ifn = r.dest, r.dest.Bits(), r.gw, ""
		}
	}
	if bestBits < 0 {
		fmt.Fprintln(e.stderr, "route: route has not been found")
		return 1
	}
	if gw != "" {
		if a, err := netip.ParseAddr(gw); err == nil {
			for _, i := range ifs {
				for _, x := range i.addrs {
					if p, err := netip.ParsePrefix(x); err == nil && p.Masked().Contains(a) {
						ifn = i.name
					}
				}
			}
		}
	}
	fmt.Fprintf(e.stdout, "   route to: %s\n", dest.Addr())
	if best.Bits() == 0 {
		fmt.Fprintln(e.stdout, "destination: default")
	} else {
		fmt.Fprintf(e.stdout, "destination: %s\n", best.Addr())
	}
	if best.Addr().Is4() {
		mask := uint32(0xffffffff) << (32 - best.Bits())
		if best.Bits() == 0 {
			mask = 0
		}
		fmt.Fprintf(e.stdout, "       mask: %d.%d.%d.%d\n", byte(mask>>24), byte(mask>>16), byte(mask>>8), byte(mask))
	}
	flags := "<UP,DONE>"
	if gw != "" {
		fmt.Fprintf(e.stdout, "    gateway: %s\n", gw)
		flags = "<UP,GATEWAY,DONE,STATIC>"
	}
	fmt.Fprintf(e.stdout, "        fib: 0\n  interface: %s\n      flags: %s\n", ifn, flags)
	return 0
}

// netstatCmd supports `netstat -rn` (static routes and connected networks).
func netstatCmd(e *env, args []string) int {
	flags := strings.Join(args[1:], "")
	if !strings.Contains(flags, "r") {
		fmt.Fprintln(e.stderr, "netstat: only -r is emulated by the lab")
		return 1
	}
	rs, err := e.routes()
	if err != nil {
		fmt.Fprintf(e.stderr, "netstat: %v\n", err)
		return 1
	}
	fmt.Fprintln(e.stdout, "Routing tables\n\nInternet:")
	fmt.Fprintf(e.stdout, "%-18s %-18s %-9s %s\n", "Destination", "Gateway", "Flags", "Netif Expire")
	for _, r := range rs {
		// netstat prints a host route as the bare address (routename) and a
		// network as address/length (netname4: inet_ntop, then domask's
		// "/%d"; usr.bin/netstat/route.c in FreeBSD 14).
		d := r.dest.String()
		if r.dest.Bits() == 0 {
			d = "default"
		} else if r.dest.IsSingleIP() {
			d = r.dest.Addr().String()
		}
		fmt.Fprintf(e.stdout, "%-18s %-18s %-9s %s\n", d, r.gw, "UGS", "")
	}
	ifs, _ := e.interfaces()
	for _, i := range ifs {
		for _, a := range i.addrs {
			if p, err := netip.ParsePrefix(a); err == nil {
				fmt.Fprintf(e.stdout, "%-18s %-18s %-9s %s\n", p.Masked().String(), "link#"+i.name, "U", i.name)
			}
		}
	}
	return 0
}
