//go:build linux

package e2e

import (
	"bufio"
	"context"
	"fmt"
	"net/netip"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/arbo-project/arbo/check"
	"github.com/arbo-project/arbo/dns"
	"github.com/arbo-project/arbo/erlang"
	"github.com/arbo-project/arbo/inventory"
	"github.com/arbo-project/arbo/jail"
)

// TestErlangCluster starts one real BEAM node (Debian's erlang-base) per
// Erlang jail of each example and of a three-host topology
// (testdata/erl-three: node names by FQDN), from the files `arbo render`
// writes: the jail's vm.args is passed with -args_file, the variables of
// the jail's env file (RELEASE_NODE, RELEASE_COOKIE, ARBO_DISCOVERY,
// ARBO_CONSENSUS) are the node's environment and its name and cookie, as a
// release's start script does, and the jail's rendered resolv.conf is the
// node's /etc/resolv.conf (bind-mounted in a mount namespace of its own).
// The cluster's resolver runs too: the real unbound, with the resolver
// jail's rendered unbound.conf, or with the zone arbo hands the pfSense
// gateway written as pfSense writes it. Each node and each resolver lives in
// its own unnamed network namespace holding only its topology address, on a
// bridge inside another namespace: the test never touches the box's own
// network, and the namespaces end with the test's processes.
//
// Every node discovers its peers as libcluster's DNSPoll and Cloister do:
// it resolves ARBO_DISCOVERY through the resolver (inet_res, as they do)
// and connects to <basename>@<answer> (the answer's PTR name with
// node_host: fqdn). The test proves that the node names arbo writes are
// names the nodes are reachable at, that the discovery name lists exactly
// the discovery tier, that the nodes form the cluster (visible
// discovery-tier nodes, hidden tiers connected but outside nodes()), that
// every connection is on epmd's port or inside dist_ports, that a node with
// another cookie is refused, and that after the loss of a host the
// survivors' own count against ARBO_CONSENSUS is what ARBO009 predicted.
func TestErlangCluster(t *testing.T) {
	if err := erlClusterRequirements(); err != nil {
		if os.Getenv("CI") == "true" {
			t.Fatal(err)
		}
		t.Skip(err)
	}
	three := filepath.Join("testdata", "erl-three", "topology.yaml")
	for _, tc := range []struct {
		name, topo string
		noEPMD     bool // epmd: false, dist_ports one port
	}{
		{"arboreus", filepath.Join("..", "examples", "arboreus", "topology.yaml"), false},
		{"single-host", filepath.Join("..", "examples", "single-host", "topology.yaml"), false},
		{"three-hosts", three, false},
		{"three-hosts-noepmd", three, true},
	} {
		for _, tls := range []bool{false, true} {
			name := tc.name
			if tls {
				name += "-tls"
			}
			t.Run(name, func(t *testing.T) {
				t.Parallel()
				start := time.Now()
				testErlangCluster(t, tc.topo, tls, tc.noEPMD)
				t.Logf("%s: %v", name, time.Since(start).Round(time.Millisecond))
			})
		}
	}
}

func erlClusterRequirements() error {
	if os.Geteuid() != 0 {
		return fmt.Errorf("the Erlang cluster test needs root (network namespaces)")
	}
	for _, p := range []struct{ bin, pkg string }{
		{"erl", "erlang-base"}, {"epmd", "erlang-base"}, {"ip", "iproute2"},
		{"unshare", "util-linux"}, {"nsenter", "util-linux"}, {"mount", "mount"},
		{"unbound", "unbound"}, {"dig", "bind9-dnsutils"},
	} {
		if _, err := exec.LookPath(p.bin); err != nil {
			return fmt.Errorf("no %s: install the Debian package %s", p.bin, p.pkg)
		}
	}
	// TLS distribution is OTP's ssl application, a package of its own.
	if exec.Command("erl", "-noshell", "-eval", `halt(case code:which(inet_tls_dist) of non_existing -> 1; _ -> 0 end)`).Run() != nil {
		return fmt.Errorf("no inet_tls_dist: install the Debian package erlang-ssl")
	}
	return nil
}

// erlNode is one Erlang jail: its namespace, its rendered files, its node.
type erlNode struct {
	jail   *inventory.Jail
	host   string
	addr   netip.Addr
	name   string   // RELEASE_NODE
	cookie string   // RELEASE_COOKIE
	env    []string // every variable of the env file, NAME=value
	vmArgs string   // path of vm.args in the jail
	root   string   // the jail's rendered root
	hidden bool
	ns     *netns
	node   *proc
}

func testErlangCluster(t *testing.T, example string, tls, noEPMD bool) {
	c, err := inventory.Load(example)
	if err != nil {
		t.Fatal(err)
	}
	if c.Erlang == nil {
		t.Fatal(example + ": no erlang section")
	}
	if len(c.Resolvers()) == 0 {
		t.Fatal(example + ": no resolver (dns.resolver_jail or gateway.dns): discovery has nothing to ask")
	}

	// A copy of the topology beside a fresh cookie, rendered by arbo.
	dir := t.TempDir()
	b, err := os.ReadFile(example)
	if err != nil {
		t.Fatal(err)
	}
	if tls {
		b = withTLS(t, b)
	}
	if noEPMD {
		b = withoutEPMD(t, b, c.Erlang.DistPorts.Min)
	}
	topo := filepath.Join(dir, "topology.yaml")
	if err := os.WriteFile(topo, b, 0o644); err != nil {
		t.Fatal(err)
	}
	if c, err = inventory.Load(topo); err != nil {
		t.Fatal(err)
	}
	// With epmd: false no epmd runs anywhere: a node that needed one could
	// not register, nor find its peers. The test's extra nodes (intruders,
	// controls) share a jail's namespace, so they must not listen.
	var extra, plainExtra []string
	if c.Erlang.NoEPMD {
		extra = []string{"-dist_listen", "false"}
		plainExtra = []string{"-dist_listen", "false", "-start_epmd", "false", "-erl_epmd_port", strconv.Itoa(c.Erlang.DistPorts.Min)}
	}
	cookie := "arbo_e2e_" + strconv.FormatInt(time.Now().UnixNano(), 36)
	cookiePath := filepath.Join(dir, c.Erlang.CookieFile)
	if err := os.MkdirAll(filepath.Dir(cookiePath), 0o700); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(cookiePath, []byte(cookie+"\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	if tls {
		// What a user runs: the CA and every node's certificate.
		o, err := exec.Command(arboBin, "erlang", "ca", "init", topo).CombinedOutput()
		if err != nil || !strings.Contains(string(o), "Created the cluster CA") || strings.Contains(string(o), "PRIVATE KEY") {
			t.Fatalf("arbo erlang ca init: %v\n%s", err, o)
		}
	}
	out := filepath.Join(dir, "out")
	if o, err := exec.Command(arboBin, "render", topo, "-o", out).CombinedOutput(); err != nil {
		t.Fatalf("arbo render: %v\n%s", err, o)
	}

	ctx, cancel := context.WithTimeout(context.Background(), 90*time.Second)
	t.Cleanup(cancel)

	// The switch: a bridge in a namespace of its own.
	sw := newNetns(t, ctx, "switch")
	sw.ip(t, "link", "add", "br0", "type", "bridge")
	sw.ip(t, "link", "set", "br0", "up")
	ports := 0
	plug := func(ns *netns, addr netip.Addr) {
		ns.plug(t, sw, ports, addr)
		ports++
	}

	startResolvers(t, ctx, c, out, dir, plug)

	var nodes []*erlNode
	for _, h := range c.Hosts {
		for _, j := range h.Jails {
			if !c.IsErlangTier(j.Tier) {
				continue
			}
			root := filepath.Join(out, h.Name, jail.Root(j.Name))
			env, vars := readEnvFile(t, filepath.Join(root, erlang.EnvPath))
			n := &erlNode{jail: j, host: h.Name, addr: c.TierAddr(j), name: env["RELEASE_NODE"],
				cookie: env["RELEASE_COOKIE"], env: vars, vmArgs: erlang.VMArgsPath,
				hidden: c.IsHiddenTier(j.Tier), root: root}
			if env["RELEASE_DISTRIBUTION"] != "name" {
				t.Errorf("%s: RELEASE_DISTRIBUTION=%q, want name (long names)", j.Name, env["RELEASE_DISTRIBUTION"])
			}
			if want := c.Erlang.Basename + "@" + erlang.NodeHost(c, j); n.name != want {
				t.Errorf("%s: RELEASE_NODE=%q, want %s", j.Name, n.name, want)
			}
			if n.cookie != cookie {
				t.Errorf("%s: RELEASE_COOKIE is not the topology's cookie", j.Name)
			}
			ck, err := os.ReadFile(filepath.Join(root, erlang.Home(c.Erlang.User), erlang.CookieName))
			if err != nil || string(ck) != cookie {
				t.Errorf("%s: ~/.erlang.cookie is not the topology's cookie (err %v)", j.Name, err)
			}
			n.ns = newNetns(t, ctx, j.Name)
			plug(n.ns, n.addr)
			n.ns.bind(t, filepath.Join(root, "etc", "resolv.conf"), "/etc/resolv.conf")
			n.ns.bind(t, filepath.Join(root, "usr", "local", "etc"), "/usr/local/etc")
			nodes = append(nodes, n)
		}
	}
	if t.Failed() {
		t.FailNow()
	}

	// Who each node waits for: a visible node for every other Erlang node
	// (the hidden ones connect to it), a hidden node for the discovery tier.
	var peers []string
	for _, n := range nodes {
		if n.jail.Tier == c.Erlang.Discovery {
			peers = append(peers, n.name)
		}
	}
	slices.Sort(peers)
	for _, n := range nodes {
		var wait []string
		for _, m := range nodes {
			if m != n && (!n.hidden || m.jail.Tier == c.Erlang.Discovery) && !(n.hidden && m.hidden) {
				wait = append(wait, m.name)
			}
		}
		if !c.Erlang.NoEPMD {
			n.ns.epmd(t, ctx)
		}
		n.node = n.ns.erl(t, ctx, n.name, n.cookie, n.vmArgs, erlDiscovery, nil,
			append(slices.Clone(n.env), "ARBO_TEST_WAIT="+strings.Join(wait, ","))...)
	}

	// Every node reports what it sees once everything it waits for is there.
	start := time.Now()
	for _, n := range nodes {
		line := n.node.wait(t, "arbo-result ", 45*time.Second)
		f := fields(line)
		if got, want := f["dns"], strings.Join(peers, ","); got != want {
			t.Errorf("%s: discovery through the resolver found [%s], want the discovery tier [%s]", n.name, got, want)
		}
		var wantVisible, wantHidden []string
		for _, m := range nodes {
			switch {
			case m == n:
			case n.hidden || m.hidden:
				if !(n.hidden && m.hidden) {
					wantHidden = append(wantHidden, m.name)
				}
			default:
				wantVisible = append(wantVisible, m.name)
			}
		}
		slices.Sort(wantVisible)
		slices.Sort(wantHidden)
		if got, want := f["visible"], strings.Join(wantVisible, ","); got != want {
			t.Errorf("%s: nodes() = [%s], want [%s]", n.name, got, want)
		}
		if got, want := f["hidden"], strings.Join(wantHidden, ","); got != want {
			t.Errorf("%s: nodes(hidden) = [%s], want [%s]", n.name, got, want)
		}
		// The distribution controllers: ssl's processes with TLS, ports of
		// the plain-text driver without.
		if want := map[bool]string{false: "port", true: "pid"}[tls]; f["ctrl"] != want {
			t.Errorf("%s: distribution controllers %q, want all %s (tls=%v)", n.name, f["ctrl"], want, tls)
		}
		port, err := strconv.Atoi(f["port"])
		if err != nil || port < c.Erlang.DistPorts.Min || port > c.Erlang.DistPorts.Max {
			t.Errorf("%s: distribution listens on port %q, outside dist_ports %d-%d", n.name, f["port"], c.Erlang.DistPorts.Min, c.Erlang.DistPorts.Max)
		}
		// Every TCP connection of the node has an end on epmd's port or
		// inside dist_ports.
		in := func(p string) bool {
			n, err := strconv.Atoi(p)
			return err == nil && slices.ContainsFunc(c.ErlangPorts(), func(r inventory.PortRange) bool { return r.Contains(n) })
		}
		conns := strings.Split(f["conns"], ",")
		if len(conns) < len(wantVisible)+len(wantHidden) {
			t.Errorf("%s: %d TCP connections (%s), fewer than its %d peers", n.name, len(conns), f["conns"], len(wantVisible)+len(wantHidden))
		}
		for _, cn := range conns {
			l, r, _ := strings.Cut(cn, ":")
			if !in(l) && !in(r) {
				t.Errorf("%s: connection %s has no end on 4369 or dist_ports %d-%d", n.name, cn, c.Erlang.DistPorts.Min, c.Erlang.DistPorts.Max)
			}
		}
	}
	t.Logf("%d nodes formed the cluster in %v", len(nodes), time.Since(start).Round(time.Millisecond))

	// A node with the right name pattern and ports but another cookie is
	// refused by every node.
	first := nodes[0]
	intruder := first.ns.erl(t, ctx, "intruder@"+first.addr.String(), "not-the-cookie", first.vmArgs, erlIntruder, extra,
		"ARBO_TEST_PEERS="+strings.Join(peers, ","))
	line := intruder.wait(t, "arbo-pings ", 30*time.Second)
	for _, p := range peers {
		if !strings.Contains(line, p+"=pang") {
			t.Errorf("a node with another cookie reached %s: %s", p, line)
		}
	}
	if tls {
		erlTLSRefusals(t, ctx, c, first, peers, dir, extra, plainExtra)
	} else {
		// The control for the TLS run's refusal of plain-text distribution:
		// without TLS, such a node with the cookie does join.
		host := strings.SplitN(first.name, "@", 2)[1]
		p := first.ns.erl(t, ctx, "plain@"+host, first.cookie, "", erlIntruder, plainExtra, "ARBO_TEST_PEERS="+strings.Join(peers, ","))
		line := p.wait(t, "arbo-pings ", 30*time.Second)
		for _, peer := range peers {
			if !strings.Contains(line, peer+"=pong") {
				t.Errorf("a plain-text node with the cookie did not reach %s in a cluster without TLS: %s", peer, line)
			}
		}
	}
	if t.Failed() {
		t.FailNow()
	}

	// The loss of a host: stop its nodes; every surviving discovery node
	// counts the discovery nodes it still sees against ARBO_CONSENSUS.
	// ARBO009 predicts whether that count falls short.
	lost := c.Hosts[len(c.Hosts)-1].Name
	predicted, finding := false, ""
	for _, f := range check.Run(c, check.Options{}).Findings {
		if f.ID == "ARBO009" && f.Subject == c.Erlang.Discovery && strings.Contains(f.Message, lost) {
			predicted, finding = true, f.Message
		}
	}
	var survivors []*erlNode
	for _, n := range nodes {
		if n.host == lost {
			n.node.stop()
		} else if n.jail.Tier == c.Erlang.Discovery {
			survivors = append(survivors, n)
		}
	}
	short := len(survivors) == 0 // no node left to reach consensus
	for _, n := range survivors {
		f := fields(n.node.wait(t, fmt.Sprintf("arbo-count %d ", len(survivors)), 30*time.Second))
		if f["quorum"] != "true" {
			short = true
		}
	}
	if short != predicted {
		t.Errorf("after the loss of %s, %d discovery nodes remain for consensus %d (short=%v), but ARBO009 predicted short=%v (%s)",
			lost, len(survivors), c.Erlang.Consensus, short, predicted, finding)
	}
	t.Logf("loss of %s: %d discovery nodes remain, consensus %d short=%v, ARBO009 predicted %v", lost, len(survivors), c.Erlang.Consensus, short, predicted)
}

// startResolvers starts the cluster's resolvers, each the real unbound in a
// namespace of its own at its topology address: the resolver jail's with
// the unbound.conf arbo rendered for it, the gateway's with the zone arbo
// hands pfSense, written as pfSense's unbound.inc writes it. Only the paths
// of the FreeBSD port (chroot, directory, pidfile, user) change.
func startResolvers(t *testing.T, ctx context.Context, c *inventory.Cluster, out, dir string, plug func(*netns, netip.Addr)) {
	t.Helper()
	if rj := c.DNS.ResolverJail; rj != "" {
		j := c.Jail(rj)
		conf, err := os.ReadFile(filepath.Join(out, j.Host, jail.Root(j.Name), dns.UnboundConf))
		if err != nil {
			t.Fatal(err)
		}
		rdir := filepath.Join(dir, "unbound-"+j.Name)
		local, err := localUnbound(conf, rdir)
		if err != nil {
			t.Fatalf("%s: %v", j.Name, err)
		}
		startUnbound(t, ctx, c, j.Name, c.TierAddr(j), rdir, local, plug)
	}
	if g := c.Gateway; g != nil && g.DNS {
		for _, gi := range g.Interfaces {
			if gi.Network != "" {
				rdir := filepath.Join(dir, "unbound-"+g.Name)
				startUnbound(t, ctx, c, g.Name, gi.Address, rdir, gatewayUnbound(c, gi.Address, rdir), plug)
				break
			}
		}
	}
}

// localUnbound rewrites the FreeBSD paths of a rendered unbound.conf for
// this box: no chroot, no user change, the directory and pidfile in dir,
// logs on stderr. Every other line is arbo's.
func localUnbound(conf []byte, dir string) ([]byte, error) {
	repl := map[string]string{"username": `""`, "chroot": `""`, "directory": strconv.Quote(dir),
		"pidfile": strconv.Quote(dir + "/unbound.pid")}
	seen := map[string]bool{}
	lines := strings.Split(string(conf), "\n")
	for i, l := range lines {
		k, _, ok := strings.Cut(strings.TrimSpace(l), ":")
		if v, in := repl[k]; ok && in {
			lines[i] = "\t" + k + ": " + v
			seen[k] = true
		}
		if strings.TrimSpace(l) == "server:" {
			lines[i] = "server:\n\tuse-syslog: no"
		}
	}
	for k := range repl {
		if !seen[k] {
			return nil, fmt.Errorf("the rendered unbound.conf has no %s: line to rewrite", k)
		}
	}
	return []byte(strings.Join(lines, "\n")), nil
}

// gatewayUnbound is what pfSense's resolver serves of arbo's zone: each
// host override as unbound_generate_zone_data writes it
// (pfsense-2.7.2/src/etc/inc/unbound.inc:753,767: a local-data-ptr and a
// local-data per address), then arbo's custom local-data lines.
func gatewayUnbound(c *inventory.Cluster, addr netip.Addr, dir string) []byte {
	var b strings.Builder
	fmt.Fprintf(&b, "server:\n\tusername: \"\"\n\tchroot: \"\"\n\tdirectory: %q\n\tpidfile: %q\n\tuse-syslog: no\n\tinterface: %s\n",
		dir, dir+"/unbound.pid", addr)
	b.WriteString("\taccess-control: 0.0.0.0/0 allow\n\taccess-control: ::/0 allow\n")
	gd := dns.Gateway(c)
	for _, o := range gd.Overrides {
		for _, ip := range strings.Split(o.IP, ",") {
			typ := "A"
			if netip.MustParseAddr(ip).Is6() {
				typ = "AAAA"
			}
			fqdn := o.Host + "." + o.Domain
			fmt.Fprintf(&b, "\tlocal-data-ptr: \"%s %s\"\n\tlocal-data: \"%s. %s %s\"\n", ip, fqdn, fqdn, typ, ip)
		}
	}
	for _, l := range gd.LocalData {
		b.WriteString("\t" + l + "\n")
	}
	return []byte(b.String())
}

// startUnbound runs unbound in the foreground in a namespace at addr and
// waits until it answers the name of the cluster's first jail.
func startUnbound(t *testing.T, ctx context.Context, c *inventory.Cluster, name string, addr netip.Addr, dir string, conf []byte, plug func(*netns, netip.Addr)) {
	t.Helper()
	if err := os.MkdirAll(dir, 0o755); err != nil {
		t.Fatal(err)
	}
	path := filepath.Join(dir, "unbound.conf")
	if err := os.WriteFile(path, conf, 0o644); err != nil {
		t.Fatal(err)
	}
	ns := newNetns(t, ctx, name)
	plug(ns, addr)
	p := startProc(t, ctx, name+"/unbound", nil, ns.enter("unbound", "-d", "-c", path)...)
	probe := c.Jails()[0].Name + "." + c.Domain
	for i := 0; ; i++ {
		a := ns.enter("dig", "+short", "+time=1", "+tries=1", "@"+addr.String(), probe)
		if o, err := exec.Command(a[0], a[1:]...).Output(); err == nil && len(strings.TrimSpace(string(o))) > 0 {
			return
		}
		if i > 100 {
			p.mu.Lock()
			o := strings.Join(p.out, "\n")
			p.mu.Unlock()
			t.Fatalf("%s: unbound does not answer %s:\n%s", name, probe, o)
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// erlDiscovery does what libcluster's DNSPoll or Cloister do: resolve
// ARBO_DISCOVERY with inet_res (A and AAAA), make <basename>@<host> of each
// answer (the address, or with node_host: fqdn the answer's PTR name),
// ping them until every node the test waits for is connected; then report
// the discovered nodes, nodes(), nodes(hidden), the node's own distribution
// port (from its epmd), both ports of each TCP connection and the kinds of
// its distribution controllers (pid: TLS, port: plain TCP); then, each
// time it changes, the count of discovered nodes it sees (itself included)
// and whether that meets ARBO_CONSENSUS.
const erlDiscovery = `
Env = fun(V) -> os:getenv(V, "") end,
[Base, MyHost] = string:split(Env("RELEASE_NODE"), "@"),
ByAddr = element(1, inet:parse_address(MyHost)) =:= ok,
Query = Env("ARBO_DISCOVERY"),
Consensus = case Env("ARBO_CONSENSUS") of "" -> 1; CS -> list_to_integer(CS) end,
Wait = [list_to_atom(S) || S <- string:tokens(Env("ARBO_TEST_WAIT"), ",")],
Join = fun(L) -> lists:join(",", [atom_to_list(X) || X <- lists:sort(L)]) end,
HostOf = fun(IP) ->
    case ByAddr of
        true -> inet:ntoa(IP);
        false -> case inet_res:gethostbyaddr(IP) of {ok, HE} -> element(2, HE); _ -> inet:ntoa(IP) end
    end
end,
Discover = fun() ->
    IPs = inet_res:lookup(Query, in, a) ++ inet_res:lookup(Query, in, aaaa),
    [list_to_atom(Base ++ "@" ++ HostOf(IP)) || IP <- IPs]
end,
Loop = fun L(N) ->
    Found = Discover(),
    [net_adm:ping(P) || P <- Found, P =/= node()],
    case Wait -- nodes(connected) of
        [] -> Found;
        Missing when N > 0 -> timer:sleep(200), L(N - 1);
        Missing -> io:format("arbo-missing ~p dns=~p~n", [Missing, Found]), Found
    end
end,
Peers = Loop(200),
{port, Port, _} = erl_epmd:port_please(Base, {127,0,0,1}),
Conns = [integer_to_list(L) ++ ":" ++ integer_to_list(R)
         || S <- erlang:ports(), erlang:port_info(S, name) =:= {name, "tcp_inet"},
            {ok, {_, L}} <- [inet:sockname(S)], {ok, {_, R}} <- [inet:peername(S)]],
Ctrl = lists:usort([if is_pid(C) -> pid; is_port(C) -> port end || {_, C} <- erlang:system_info(dist_ctrl)]),
io:format("arbo-result dns=~s visible=~s hidden=~s port=~p conns=~s ctrl=~s~n",
          [Join(Peers), Join(nodes()), Join(nodes(hidden)), Port, lists:join(",", Conns), lists:join(",", [atom_to_list(X) || X <- Ctrl])]),
Count = fun C(Last) ->
    Seen = length([X || X <- [node() | nodes(connected)], lists:member(X, Peers)]),
    Seen =/= Last andalso io:format("arbo-count ~p quorum=~p~n", [Seen, Seen >= Consensus]),
    timer:sleep(200), C(Seen)
end,
Count(-1).
`

// withTLS sets erlang.tls: true in a topology's erlang: block (two-space
// indentation, as every topology of this test has).
func withTLS(t *testing.T, b []byte) []byte {
	t.Helper()
	lines := strings.Split(string(b), "\n")
	for i, l := range lines {
		if l == "erlang:" {
			return []byte(strings.Join(slices.Insert(lines, i+1, "  tls: true"), "\n"))
		}
	}
	t.Fatal("no erlang: block")
	return nil
}

// erlTLSRefusals proves, in the namespace of the node first, that the TLS
// cluster refuses a node whose certificate is not the cluster CA's (it
// trusts the cluster CA, has the right cookie and a certificate naming the
// right host, from another CA made by arbo for a copy of the topology), and
// a node speaking plain-text distribution with the right cookie: every
// discovery node answers pang to both.
func erlTLSRefusals(t *testing.T, ctx context.Context, c *inventory.Cluster, first *erlNode, peers []string, dir string, extra, plainExtra []string) {
	t.Helper()
	// Another CA, and certificates for the same node names.
	odir := filepath.Join(dir, "other")
	if err := os.MkdirAll(filepath.Join(odir, filepath.Dir(c.Erlang.CookieFile)), 0o700); err != nil {
		t.Fatal(err)
	}
	topo, _ := os.ReadFile(filepath.Join(dir, "topology.yaml"))
	if err := os.WriteFile(filepath.Join(odir, "topology.yaml"), topo, 0o644); err != nil {
		t.Fatal(err)
	}
	if o, err := exec.Command(arboBin, "erlang", "ca", "init", filepath.Join(odir, "topology.yaml")).CombinedOutput(); err != nil {
		t.Fatalf("another CA: %v\n%s", err, o)
	}
	// The rogue's /usr/local/etc: the jail's files, but the node
	// certificate and key of the other CA.
	etc := filepath.Join(dir, "rogue-etc")
	if o, err := exec.Command("cp", "-a", filepath.Join(first.root, "usr", "local", "etc"), etc).CombinedOutput(); err != nil {
		t.Fatalf("cp: %v\n%s", err, o)
	}
	otls := filepath.Join(odir, filepath.Dir(c.Erlang.CookieFile), "erlang-tls")
	for src, dst := range map[string]string{first.jail.Name + ".pem": "dist.pem", first.jail.Name + ".key": "dist.key"} {
		b, err := os.ReadFile(filepath.Join(otls, src))
		if err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(filepath.Join(etc, "arbo", dst), b, 0o600); err != nil {
			t.Fatal(err)
		}
	}
	rogue := first.ns.newMountns(t, ctx, first.jail.Name+"-rogue")
	rogue.bind(t, filepath.Join(first.root, "etc", "resolv.conf"), "/etc/resolv.conf")
	rogue.bind(t, etc, "/usr/local/etc")
	host := strings.SplitN(first.name, "@", 2)[1]
	for _, tc := range []struct {
		name   string
		ns     *netns
		vmArgs string
		extra  []string
	}{
		{"rogue", rogue, erlang.VMArgsPath, extra}, // TLS, a certificate of another CA
		{"plain", first.ns, "", plainExtra},        // plain-text distribution
	} {
		p := tc.ns.erl(t, ctx, tc.name+"@"+host, first.cookie, tc.vmArgs, erlIntruder, tc.extra, "ARBO_TEST_PEERS="+strings.Join(peers, ","))
		line := p.wait(t, "arbo-pings ", 30*time.Second)
		for _, peer := range peers {
			if !strings.Contains(line, peer+"=pang") {
				t.Errorf("a %s node reached %s: %s", tc.name, peer, line)
			}
		}
	}
}

// withoutEPMD sets erlang.epmd: false and dist_ports to its first port.
func withoutEPMD(t *testing.T, b []byte, port int) []byte {
	t.Helper()
	lines := strings.Split(string(b), "\n")
	for i, l := range lines {
		if strings.HasPrefix(l, "  dist_ports:") {
			lines[i] = fmt.Sprintf("  dist_ports: %d\n  epmd: false", port)
			return []byte(strings.Join(lines, "\n"))
		}
	}
	t.Fatal("no dist_ports line")
	return nil
}

// erlIntruder pings every discovery node and reports pong or pang.
const erlIntruder = `
Peers = [list_to_atom(S) || S <- string:tokens(os:getenv("ARBO_TEST_PEERS", ""), ",")],
R = [io_lib:format("~s=~s", [P, net_adm:ping(P)]) || P <- Peers],
io:format("arbo-pings ~s~n", [lists:join(" ", R)]),
halt().
`

// fields splits "k=v k=v" into a map.
func fields(line string) map[string]string {
	m := map[string]string{}
	for _, f := range strings.Fields(line) {
		if k, v, ok := strings.Cut(f, "="); ok {
			m[k] = v
		}
	}
	return m
}

// readEnvFile reads the export NAME='value' lines arbo's env file holds:
// as a map, and as NAME=value strings for a process's environment.
func readEnvFile(t *testing.T, path string) (map[string]string, []string) {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	m := map[string]string{}
	var vars []string
	for _, l := range strings.Split(string(b), "\n") {
		l, ok := strings.CutPrefix(l, "export ")
		if !ok {
			continue
		}
		k, v, ok := strings.Cut(l, "=")
		if !ok || len(v) < 2 || v[0] != '\'' || v[len(v)-1] != '\'' {
			t.Fatalf("%s: unexpected line %q", path, l)
		}
		m[k] = v[1 : len(v)-1]
		vars = append(vars, k+"="+m[k])
	}
	return m, vars
}

// netns is an unnamed network namespace, with a private mount namespace,
// held open by a sleeping process; both disappear, with the veth ends and
// the bind mounts, when that process and the ones entered into it end.
type netns struct {
	name string
	pid  int
}

func newNetns(t *testing.T, ctx context.Context, name string) *netns {
	t.Helper()
	ns := holdNamespaces(t, ctx, name, "net", "unshare", "--net", "--mount", "--propagation", "private", "sleep", "600")
	ns.ip(t, "link", "set", "lo", "up")
	return ns
}

// newMountns is a mount namespace of its own inside of's network namespace:
// another process of the same jail, with files of its own.
func (of *netns) newMountns(t *testing.T, ctx context.Context, name string) *netns {
	t.Helper()
	return holdNamespaces(t, ctx, name, "mnt", "nsenter", "-t", strconv.Itoa(of.pid), "-n", "--",
		"unshare", "--mount", "--propagation", "private", "sleep", "600")
}

// holdNamespaces starts the sleeping holder (nsenter and unshare exec, so
// the pid stays) and waits until its kind of namespace differs from ours.
func holdNamespaces(t *testing.T, ctx context.Context, name, kind string, args ...string) *netns {
	t.Helper()
	p := startProc(t, ctx, name+"/ns", nil, args...)
	ns := &netns{name: name, pid: p.cmd.Process.Pid}
	self, _ := os.Readlink("/proc/self/ns/" + kind)
	for i := 0; ; i++ {
		l, err := os.Readlink(fmt.Sprintf("/proc/%d/ns/%s", ns.pid, kind))
		if err == nil && l != self {
			return ns
		}
		if i > 200 {
			t.Fatalf("%s: namespace not created", name)
		}
		time.Sleep(5 * time.Millisecond)
	}
}

func (ns *netns) enter(args ...string) []string {
	return append([]string{"nsenter", "-t", strconv.Itoa(ns.pid), "-n", "-m", "--"}, args...)
}

// bind mounts the file src over dst inside the namespace's mount namespace.
func (ns *netns) bind(t *testing.T, src, dst string) {
	t.Helper()
	a := ns.enter("mount", "--bind", src, dst)
	if out, err := exec.Command(a[0], a[1:]...).CombinedOutput(); err != nil {
		t.Fatalf("%s: mount --bind %s %s: %v\n%s", ns.name, src, dst, err, out)
	}
}

func (ns *netns) ip(t *testing.T, args ...string) {
	t.Helper()
	a := ns.enter(append([]string{"ip"}, args...)...)
	if out, err := exec.Command(a[0], a[1:]...).CombinedOutput(); err != nil {
		t.Fatalf("%s: ip %s: %v\n%s", ns.name, strings.Join(args, " "), err, out)
	}
}

// plug joins ns to the switch's bridge with addr as its only address and
// every destination on the link (the bridge carries every jail address).
func (ns *netns) plug(t *testing.T, sw *netns, i int, addr netip.Addr) {
	t.Helper()
	veth := fmt.Sprintf("v%d", i)
	sw.ip(t, "link", "add", veth, "type", "veth", "peer", "name", "eth0", "netns", strconv.Itoa(ns.pid))
	sw.ip(t, "link", "set", veth, "master", "br0", "up")
	if addr.Is6() {
		ns.ip(t, "addr", "add", addr.String()+"/128", "dev", "eth0", "nodad")
	} else {
		ns.ip(t, "addr", "add", addr.String()+"/32", "dev", "eth0")
	}
	ns.ip(t, "link", "set", "eth0", "up")
	if addr.Is6() {
		ns.ip(t, "-6", "route", "add", "default", "dev", "eth0")
	} else {
		ns.ip(t, "route", "add", "default", "dev", "eth0")
	}
}

// epmd runs the namespace's epmd in the foreground, as the test's child,
// and waits until it answers.
func (ns *netns) epmd(t *testing.T, ctx context.Context) {
	t.Helper()
	startProc(t, ctx, ns.name+"/epmd", nil, ns.enter("epmd")...)
	for i := 0; ; i++ {
		a := ns.enter("epmd", "-names")
		if exec.Command(a[0], a[1:]...).Run() == nil {
			return
		}
		if i > 200 {
			t.Fatalf("%s: epmd does not answer", ns.name)
		}
		time.Sleep(10 * time.Millisecond)
	}
}

// erl starts a node as a release would: arbo's vm.args with -args_file
// (its path in the jail: the namespace has the jail's /usr/local/etc), the
// name and cookie of arbo's env file. Without vm.args, a node of Erlang's
// defaults (plain-text distribution).
func (ns *netns) erl(t *testing.T, ctx context.Context, name, cookie, vmArgs, eval string, extra []string, env ...string) *proc {
	t.Helper()
	args := []string{"erl", "-noshell", "-start_epmd", "false"}
	if vmArgs != "" {
		args = append(args, "-args_file", vmArgs)
	}
	args = append(args, extra...)
	args = append(args, "-name", name, "-setcookie", cookie, "-eval", eval)
	return startProc(t, ctx, ns.name+"/"+name, append(os.Environ(), env...), ns.enter(args...)...)
}

// proc is a child process whose output lines the test waits on.
type proc struct {
	name string
	cmd  *exec.Cmd
	mu   sync.Mutex
	out  []string
	more chan struct{}
	done chan struct{}
}

func startProc(t *testing.T, ctx context.Context, name string, env []string, args ...string) *proc {
	t.Helper()
	cmd := exec.CommandContext(ctx, args[0], args[1:]...)
	cmd.Env = env
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true, Pdeathsig: syscall.SIGKILL}
	cmd.Cancel = func() error { return syscall.Kill(-cmd.Process.Pid, syscall.SIGKILL) }
	r, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	cmd.Stderr = cmd.Stdout
	p := &proc{name: name, cmd: cmd, more: make(chan struct{}, 1), done: make(chan struct{})}
	if err := cmd.Start(); err != nil {
		t.Fatalf("%s: %v", name, err)
	}
	go func() {
		s := bufio.NewScanner(r)
		s.Buffer(make([]byte, 64<<10), 1<<20)
		for s.Scan() {
			p.mu.Lock()
			p.out = append(p.out, s.Text())
			p.mu.Unlock()
			select {
			case p.more <- struct{}{}:
			default:
			}
		}
		cmd.Wait()
		close(p.done)
	}()
	t.Cleanup(p.stop)
	return p
}

// stop kills the process group and waits for it.
func (p *proc) stop() {
	syscall.Kill(-p.cmd.Process.Pid, syscall.SIGKILL)
	<-p.done
}

// wait returns the first output line that starts with prefix, or fails
// the test with the process's output after d.
func (p *proc) wait(t *testing.T, prefix string, d time.Duration) string {
	t.Helper()
	deadline := time.After(d)
	for {
		p.mu.Lock()
		for _, l := range p.out {
			if strings.HasPrefix(l, prefix) {
				p.mu.Unlock()
				return l
			}
		}
		out := strings.Join(p.out, "\n")
		p.mu.Unlock()
		select {
		case <-p.more:
		case <-p.done:
			p.mu.Lock()
			for _, l := range p.out {
				if strings.HasPrefix(l, prefix) {
					p.mu.Unlock()
					return l
				}
			}
			out = strings.Join(p.out, "\n")
			p.mu.Unlock()
			t.Errorf("%s ended before %q:\n%s", p.name, prefix, out)
			return ""
		case <-deadline:
			t.Errorf("%s: no %q after %v:\n%s", p.name, prefix, d, out)
			return ""
		}
	}
}
