package verify

import (
	"bytes"
	"context"
	"errors"
	"io/fs"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/arbo-project/arbo/inventory"
	"github.com/arbo-project/arbo/plan"
	"github.com/arbo-project/arbo/remote"
)

func arboreus(t *testing.T) *inventory.Cluster {
	t.Helper()
	c, err := inventory.Load("../../examples/arboreus/topology.yaml")
	if err != nil {
		t.Fatal(err)
	}
	return c
}

func TestPlan(t *testing.T) {
	c := arboreus(t)
	ps := Plan(c)
	n := map[string]int{}
	has := func(kind, from, label string) bool {
		for _, p := range ps {
			if p.Kind == kind && p.From == from && p.label() == label {
				return true
			}
		}
		return false
	}
	for _, p := range ps {
		n[p.Kind]++
	}
	// 4 jails each resolve 2 tier names and 4 jail names; 18 allowed
	// connections (each tier pair's jails, first port of each range); the
	// data tier may not reach the app tier, and no jail its own host; epmd
	// in the 2 jails of the Erlang tiers... as the example declares them.
	if n[Resolve] != 24 || n[Connect] != 18 || n[Refuse] != 3 {
		t.Errorf("probes %v", n)
	}
	if !has(Connect, "app1", "app1 -> 10.20.2.12 tcp/4369") || !has(Refuse, "db1", "db1 -> 10.20.1.11 tcp/8443") || !has(Refuse, "app1", "app1 -> 192.168.1.11 tcp/22") {
		t.Errorf("missing probes: %+v", ps)
	}
	for _, p := range ps {
		if p.Kind == Resolve && p.Name == "app.arboreus.internal" && strings.Join(p.Want, ",") != "10.20.1.11,10.20.1.12" {
			t.Errorf("want %v", p.Want)
		}
		if p.Kind == Connect && p.From == "db1" && strings.HasPrefix(p.To, "10.20.1.") {
			t.Errorf("data -> app is not allowed, yet probed as allowed: %+v", p)
		}
	}
	if e := n[EPMD]; c.Erlang == nil || e == 0 {
		t.Errorf("epmd probes %d", e)
	}
}

// jailHost answers the probe script as a FreeBSD host's jails would, from
// a table: names resolve from dns, connections by open/closed/blocked.
type jailHost struct {
	mu    sync.Mutex
	dns   map[string][]string
	port  map[string]string // "jail addr port" → "open" | "closed"; absent: blocked
	epmd  string
	hang  string // jail whose command never returns
	calls [][]string
}

func (h *jailHost) Run(ctx context.Context, argv []string, _ remote.RunOpts) (remote.Result, error) {
	h.mu.Lock()
	h.calls = append(h.calls, argv)
	h.mu.Unlock()
	if argv[0] != "jexec" || argv[2] != "/bin/sh" || argv[4] != probeScript {
		return remote.Result{}, errors.New("not the probe script")
	}
	if argv[1] == h.hang {
		<-ctx.Done()
		return remote.Result{}, ctx.Err()
	}
	var b strings.Builder
	args := argv[7:]
	for i := 0; i+2 < len(args); i += 3 {
		rc := 0
		switch args[i] {
		case "r":
			for _, a := range h.dns[args[i+1]] {
				b.WriteString(args[i+1] + " has address " + a + "\n")
			}
			if len(h.dns[args[i+1]]) == 0 {
				b.WriteString("Host " + args[i+1] + " not found: 3(NXDOMAIN)\n")
				rc = 1
			}
		case "c":
			switch h.port[argv[1]+" "+args[i+1]+" "+args[i+2]] {
			case "open":
			case "closed":
				b.WriteString("nc: connect to " + args[i+1] + " port " + args[i+2] + " (tcp) failed: Connection refused\n")
				rc = 1
			default:
				rc = 1
			}
		case "e":
			b.WriteString(h.epmd)
		}
		b.WriteString("--arbo-probe-- " + itoa(rc) + "\n")
	}
	return remote.Result{Stdout: []byte(b.String())}, nil
}

func itoa(n int) string { return string(rune('0' + n)) }

func (h *jailHost) ReadFiles(context.Context, []string) (map[string][]byte, error) { return nil, nil }
func (h *jailHost) Stat(string) (fs.FileInfo, error)                               { return nil, fs.ErrNotExist }
func (h *jailHost) Lstat(string) (fs.FileInfo, error)                              { return nil, fs.ErrNotExist }
func (h *jailHost) WriteFileAtomic(string, []byte, fs.FileMode, int, int) error {
	return errors.New("verify writes nothing")
}
func (h *jailHost) WriteFileAtomicKeepPrev(string, []byte, fs.FileMode, int, int) error {
	return errors.New("verify writes nothing")
}
func (h *jailHost) MkdirAll(string, fs.FileMode) error   { return errors.New("verify writes nothing") }
func (h *jailHost) Remove(string) error                  { return errors.New("verify writes nothing") }
func (h *jailHost) CheckNoSymlinks(string, string) error { return nil }

// healthy answers every probe of Plan as the topology says.
func healthy(c *inventory.Cluster) *jailHost {
	h := &jailHost{dns: map[string][]string{}, port: map[string]string{}, epmd: "epmd: up and running on port 4369 with data:\nname arbo at port 9100\n"}
	for _, p := range Plan(c) {
		switch p.Kind {
		case Resolve:
			h.dns[p.Name] = p.Want
		case Connect:
			h.port[p.From+" "+p.To+" "+strconv.Itoa(p.Port)] = "open"
		}
	}
	return h
}

func run(t *testing.T, c *inventory.Cluster, h *jailHost, hosts ...string) *Report {
	t.Helper()
	dial := func(_ context.Context, m string) (plan.Target, error) {
		if m == "unreachable" {
			return nil, errors.New("no route")
		}
		return h, nil
	}
	return Run(context.Background(), c, Plan(c), Options{Dial: dial, Parallel: 2, Wait: time.Second, Hosts: hosts})
}

func TestRun(t *testing.T) {
	c := arboreus(t)
	if c.Erlang != nil {
		c.Erlang.Basename = "arbo"
	}
	h := healthy(c)
	r := run(t, c, h)
	if p, n, f, u := r.Counts(); f != 0 || u != 0 || n != 0 || p != len(Plan(c)) {
		var b bytes.Buffer
		WriteText(&b, r)
		t.Fatalf("healthy cluster: %d passed %d no listener %d failed %d unknown\n%s", p, n, f, u, b.String())
	}
	// One command per jail: 4 jails.
	if len(h.calls) != 4 {
		t.Errorf("%d commands, want one per jail (4)", len(h.calls))
	}

	// A rule removed by hand: app1 no longer reaches db2's epmd; a
	// forbidden flow opened; a listener gone; a name wrong.
	h = healthy(c)
	delete(h.port, "app1 10.20.2.12 4369")
	h.port["db1 10.20.1.11 8443"] = "open" // forbidden: data may not reach app
	h.port["app1 10.20.1.12 9100"] = "closed"
	h.dns["db1.arboreus.internal"] = []string{"10.9.9.9"}
	r = run(t, c, h)
	var b bytes.Buffer
	if err := WriteText(&b, r); err != nil {
		t.Fatal(err)
	}
	out := b.String()
	for _, want := range []string{
		"failed      connect app1 -> 10.20.2.12 tcp/4369 (tier app -> tier data tcp 4369,9100-9115 (service mnesia)): no connection",
		"failed      refuse db1 -> 10.20.1.11 tcp/8443 (tier data -> tier app: no service allows it): connected",
		"no listener connect app1 -> 10.20.1.12 tcp/9100",
		"failed      resolve app1: db1.arboreus.internal (jail db1 (tier data)): resolves to [10.9.9.9], want [10.20.2.11]",
	} {
		if !strings.Contains(out, want) {
			t.Errorf("output lacks %q:\n%s", want, out)
		}
	}
	if !r.HasFailures() {
		t.Error("contradictions, yet no failure")
	}
	var j bytes.Buffer
	if err := WriteJSON(&j, r); err != nil || !strings.Contains(j.String(), `"failing": true`) || !strings.Contains(j.String(), `"outcome": "no listener"`) {
		t.Errorf("json %v\n%s", err, j.String())
	}
	var x bytes.Buffer
	if err := WriteJUnit(&x, r); err != nil || !strings.Contains(x.String(), `classname="arbo.verify.refuse"`) || !strings.Contains(x.String(), "<failure") || !strings.Contains(x.String(), "<skipped") {
		t.Errorf("junit %v\n%s", err, x.String())
	}
}

// TestRunHungJail: a jail whose command never returns makes its probes
// unknown after the timeout; the others are judged.
func TestRunHungJail(t *testing.T) {
	c := arboreus(t)
	h := healthy(c)
	h.hang = "db2"
	start := time.Now()
	dial := func(_ context.Context, m string) (plan.Target, error) { return h, nil }
	ps := Plan(c)
	var mine []Probe
	for _, p := range ps {
		if p.From == "db2" || p.From == "app1" {
			mine = append(mine, p)
		}
	}
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Second)
	defer cancel()
	r := Run(ctx, c, mine, Options{Dial: dial, Parallel: 2, Wait: time.Second})
	if time.Since(start) > 10*time.Second {
		t.Fatalf("took %v", time.Since(start))
	}
	for _, x := range r.Results {
		if x.From == "db2" && x.Outcome != Unknown || x.From == "app1" && x.Outcome == Unknown {
			t.Errorf("%s: %s %s", x.label(), x.Outcome, x.Detail)
		}
	}
}

func TestJudge(t *testing.T) {
	if r := judge(Probe{Kind: Connect}, "sh: nc: not found\n", 127); r.Outcome != Unknown {
		t.Errorf("%+v", r)
	}
	if r := judge(Probe{Kind: EPMD, Name: "arbo"}, "epmd: Cannot connect to local epmd\n", 1); r.Outcome != Failed {
		t.Errorf("%+v", r)
	}
	if r := judge(Probe{Kind: EPMD, Name: "arbo"}, "epmd: up and running on port 4369 with data:\nname other at port 9101\n", 0); r.Outcome != Failed {
		t.Errorf("%+v", r)
	}
	if r := judge(Probe{Kind: Resolve, Want: []string{"10.0.0.1", "::1"}}, "x has address 10.0.0.1\nx has IPv6 address ::1\n", 0); r.Outcome != Passed {
		t.Errorf("%+v", r)
	}
	sec, codes := split("a\n--arbo-probe-- 0\nb\nc\n--arbo-probe-- 1\n")
	if len(sec) != 2 || sec[1] != "b\nc\n" || codes[1] != 1 {
		t.Errorf("%q %v", sec, codes)
	}
}
