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

	"github.com/arbo-project/arbo/erlang"
	"github.com/arbo-project/arbo/inventory"
	"github.com/arbo-project/arbo/jail"
)

// TestErlangCluster starts one real BEAM node (Debian's erlang-base) per
// Erlang jail of each example, from the files `arbo render` writes: the
// jail's vm.args is passed with -args_file and the node name and cookie come
// from the jail's env file (RELEASE_NODE, RELEASE_COOKIE), as a release's
// start script does. Each node lives in its own unnamed network namespace
// holding only the jail's address, on a bridge inside another namespace: the
// test never touches the box's own network. It proves that the node names
// arbo writes are the addresses the nodes are reachable at, that the nodes
// form the cluster (visible discovery-tier nodes, hidden tiers connected but
// outside nodes()), that distribution listens inside dist_ports, that a node
// with another cookie is refused, and that after the loss of a host the
// survivors meet erlang.consensus exactly when ARBO009 says they do.
//
// Discovery here connects to the addresses of the discovery tier taken from
// the topology, not yet through DNS (the resolver is not started).
func TestErlangCluster(t *testing.T) {
	if err := erlClusterRequirements(); err != nil {
		if os.Getenv("CI") == "true" {
			t.Fatal(err)
		}
		t.Skip(err)
	}
	for _, ex := range []string{"arboreus", "single-host"} {
		t.Run(ex, func(t *testing.T) {
			t.Parallel()
			testErlangCluster(t, filepath.Join("..", "examples", ex, "topology.yaml"))
		})
	}
}

func erlClusterRequirements() error {
	if os.Geteuid() != 0 {
		return fmt.Errorf("the Erlang cluster test needs root (network namespaces)")
	}
	for _, p := range []struct{ bin, pkg string }{
		{"erl", "erlang-base"}, {"epmd", "erlang-base"}, {"ip", "iproute2"},
		{"unshare", "util-linux"}, {"nsenter", "util-linux"},
	} {
		if _, err := exec.LookPath(p.bin); err != nil {
			return fmt.Errorf("no %s: install the Debian package %s", p.bin, p.pkg)
		}
	}
	return nil
}

// erlNode is one Erlang jail: its namespace, its rendered files, its node.
type erlNode struct {
	jail   *inventory.Jail
	host   string
	addr   netip.Addr
	name   string // RELEASE_NODE
	cookie string // RELEASE_COOKIE
	vmArgs string // path of the rendered vm.args
	hidden bool
	ns     *netns
	node   *proc
}

func testErlangCluster(t *testing.T, example string) {
	c, err := inventory.Load(example)
	if err != nil {
		t.Fatal(err)
	}
	if c.Erlang == nil {
		t.Fatal(example + ": no erlang section")
	}
	if c.Erlang.NodeHost == inventory.NodeHostFQDN {
		t.Fatal(example + ": node_host fqdn needs the resolver, which this test does not start yet")
	}

	// A copy of the topology beside a fresh cookie, rendered by arbo.
	dir := t.TempDir()
	b, err := os.ReadFile(example)
	if err != nil {
		t.Fatal(err)
	}
	topo := filepath.Join(dir, "topology.yaml")
	if err := os.WriteFile(topo, b, 0o644); err != nil {
		t.Fatal(err)
	}
	cookie := "arbo_e2e_" + strconv.FormatInt(time.Now().UnixNano(), 36)
	cookiePath := filepath.Join(dir, c.Erlang.CookieFile)
	if err := os.MkdirAll(filepath.Dir(cookiePath), 0o700); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(cookiePath, []byte(cookie+"\n"), 0o600); err != nil {
		t.Fatal(err)
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

	var nodes []*erlNode
	for _, h := range c.Hosts {
		for _, j := range h.Jails {
			if !c.IsErlangTier(j.Tier) {
				continue
			}
			root := filepath.Join(out, h.Name, jail.Root(j.Name))
			env := readEnvFile(t, filepath.Join(root, erlang.EnvPath))
			n := &erlNode{jail: j, host: h.Name, addr: c.TierAddr(j), name: env["RELEASE_NODE"],
				cookie: env["RELEASE_COOKIE"], vmArgs: filepath.Join(root, erlang.VMArgsPath),
				hidden: c.IsHiddenTier(j.Tier)}
			if env["RELEASE_DISTRIBUTION"] != "name" {
				t.Errorf("%s: RELEASE_DISTRIBUTION=%q, want name (long names: the host part is an address)", j.Name, env["RELEASE_DISTRIBUTION"])
			}
			if n.name != c.Erlang.Basename+"@"+n.addr.String() {
				t.Errorf("%s: RELEASE_NODE=%q, want %s@%s", j.Name, n.name, c.Erlang.Basename, n.addr)
			}
			if n.cookie != cookie {
				t.Errorf("%s: RELEASE_COOKIE is not the topology's cookie", j.Name)
			}
			ck, err := os.ReadFile(filepath.Join(root, erlang.Home(c.Erlang.User), erlang.CookieName))
			if err != nil || string(ck) != cookie {
				t.Errorf("%s: ~/.erlang.cookie is not the topology's cookie (err %v)", j.Name, err)
			}
			n.ns = newNetns(t, ctx, j.Name)
			n.ns.plug(t, sw, len(nodes), n.addr)
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
	for _, n := range nodes {
		var wait []string
		for _, m := range nodes {
			if m != n && (!n.hidden || m.jail.Tier == c.Erlang.Discovery) && !(n.hidden && m.hidden) {
				wait = append(wait, m.name)
			}
		}
		n.ns.epmd(t, ctx)
		n.node = n.ns.erl(t, ctx, n.name, n.cookie, n.vmArgs, erlDiscovery,
			"ARBO_TEST_PEERS="+strings.Join(peers, ","), "ARBO_TEST_WAIT="+strings.Join(wait, ","),
			"ARBO_TEST_BASENAME="+c.Erlang.Basename)
	}

	// Every node reports what it sees once everything it waits for is there.
	start := time.Now()
	for _, n := range nodes {
		line := n.node.wait(t, "arbo-result ", 45*time.Second)
		f := fields(line)
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
		port, err := strconv.Atoi(f["port"])
		if err != nil || port < c.Erlang.DistPorts.Min || port > c.Erlang.DistPorts.Max {
			t.Errorf("%s: distribution listens on port %q, outside dist_ports %d-%d", n.name, f["port"], c.Erlang.DistPorts.Min, c.Erlang.DistPorts.Max)
		}
		// Every TCP connection of the node has an end on epmd's port or
		// inside dist_ports.
		in := func(p string) bool {
			n, err := strconv.Atoi(p)
			return err == nil && (n == 4369 || n >= c.Erlang.DistPorts.Min && n <= c.Erlang.DistPorts.Max)
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
	intruder := first.ns.erl(t, ctx, "intruder@"+first.addr.String(), "not-the-cookie", first.vmArgs, erlIntruder,
		"ARBO_TEST_PEERS="+strings.Join(peers, ","))
	line := intruder.wait(t, "arbo-pings ", 30*time.Second)
	for _, p := range peers {
		if !strings.Contains(line, p+"=pang") {
			t.Errorf("a node with another cookie reached %s: %s", p, line)
		}
	}
	if t.Failed() {
		t.FailNow()
	}

	// The loss of a host: stop its nodes, then every surviving discovery
	// node counts the discovery nodes it still sees. ARBO009 predicts
	// whether that meets erlang.consensus.
	chk := exec.Command(arboBin, "check", topo)
	chkOut, _ := chk.CombinedOutput()
	predictsLoss := strings.Contains(string(chkOut), "ARBO009")
	lost := c.Hosts[0].Name
	var survivors []*erlNode
	for _, n := range nodes {
		if n.host == lost {
			n.node.stop()
		} else if n.jail.Tier == c.Erlang.Discovery {
			survivors = append(survivors, n)
		}
	}
	met := len(survivors) >= c.Erlang.Consensus && len(survivors) > 0
	for _, n := range survivors {
		n.node.wait(t, fmt.Sprintf("arbo-count %d", len(survivors)), 30*time.Second)
	}
	if met == predictsLoss {
		t.Errorf("after the loss of %s, %d discovery nodes remain for consensus %d, but ARBO009 reported=%v:\n%s",
			lost, len(survivors), c.Erlang.Consensus, predictsLoss, chkOut)
	}
	t.Logf("loss of %s: %d discovery nodes remain, consensus %d met=%v, ARBO009 reported=%v", lost, len(survivors), c.Erlang.Consensus, met, predictsLoss)
}

// erlDiscovery does what libcluster's DNSPoll or Cloister do, with the
// discovery answers given: ping every discovery node until every node the
// test waits for is connected, report nodes(), nodes(hidden), the node's own
// distribution port (from its epmd) and the remote ports of its
// distribution connections, then report the count of discovery nodes seen
// (itself included) whenever it changes.
const erlDiscovery = `
Split = fun(V) -> [list_to_atom(S) || S <- string:tokens(os:getenv(V, ""), ",")] end,
Peers = Split("ARBO_TEST_PEERS"), Wait = Split("ARBO_TEST_WAIT"),
Join = fun(L) -> lists:join(",", [atom_to_list(X) || X <- lists:sort(L)]) end,
Loop = fun L(N) ->
    [net_adm:ping(P) || P <- Peers, P =/= node()],
    case Wait -- nodes(connected) of
        [] -> ok;
        Missing when N > 0 -> timer:sleep(200), L(N - 1);
        Missing -> io:format("arbo-missing ~p~n", [Missing])
    end
end,
Loop(200),
{port, Port, _} = erl_epmd:port_please(os:getenv("ARBO_TEST_BASENAME"), {127,0,0,1}),
Conns = [integer_to_list(L) ++ ":" ++ integer_to_list(R)
         || S <- erlang:ports(), erlang:port_info(S, name) =:= {name, "tcp_inet"},
            {ok, {_, L}} <- [inet:sockname(S)], {ok, {_, R}} <- [inet:peername(S)]],
io:format("arbo-result visible=~s hidden=~s port=~p conns=~s~n",
          [Join(nodes()), Join(nodes(hidden)), Port, lists:join(",", Conns)]),
Count = fun C(Last) ->
    Seen = length([X || X <- [node() | nodes(connected)], lists:member(X, Peers)]),
    Seen =/= Last andalso io:format("arbo-count ~p~n", [Seen]),
    timer:sleep(200), C(Seen)
end,
Count(-1).
`

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

// readEnvFile reads the export NAME='value' lines arbo's env file holds.
func readEnvFile(t *testing.T, path string) map[string]string {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	m := map[string]string{}
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
	}
	return m
}

// netns is an unnamed network namespace held open by a sleeping process;
// it disappears, with its veth ends, when that process and the ones
// entered into it end.
type netns struct {
	name string
	pid  int
}

func newNetns(t *testing.T, ctx context.Context, name string) *netns {
	t.Helper()
	p := startProc(t, ctx, name+"/ns", nil, "unshare", "--net", "sleep", "600")
	ns := &netns{name: name, pid: p.cmd.Process.Pid}
	// unshare execs sleep after unshare(2): wait for the namespace to differ.
	self, _ := os.Readlink("/proc/self/ns/net")
	for i := 0; ; i++ {
		l, err := os.Readlink(fmt.Sprintf("/proc/%d/ns/net", ns.pid))
		if err == nil && l != self {
			break
		}
		if i > 200 {
			t.Fatalf("%s: namespace not created", name)
		}
		time.Sleep(5 * time.Millisecond)
	}
	ns.ip(t, "link", "set", "lo", "up")
	return ns
}

func (ns *netns) enter(args ...string) []string {
	return append([]string{"nsenter", "-t", strconv.Itoa(ns.pid), "-n", "--"}, args...)
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

// erl starts a node as a release would: arbo's vm.args with -args_file,
// the name and cookie of arbo's env file.
func (ns *netns) erl(t *testing.T, ctx context.Context, name, cookie, vmArgs, eval string, env ...string) *proc {
	t.Helper()
	return startProc(t, ctx, ns.name+"/"+name, append(os.Environ(), env...), ns.enter(
		"erl", "-noshell", "-start_epmd", "false", "-args_file", vmArgs,
		"-name", name, "-setcookie", cookie, "-eval", eval)...)
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
