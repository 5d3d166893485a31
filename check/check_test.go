package check

import (
	"fmt"
	"net/netip"
	"slices"
	"strings"
	"testing"

	examples "github.com/arbo-project/arbo/internal/golden"

	"github.com/arbo-project/arbo/inventory"
)

func arboreus(t testing.TB) *inventory.Cluster {
	t.Helper()
	return examples.Example(t, "arboreus")
}

// variant is the example changed by change, re-indexed as Load would.
func variant(t testing.TB, change func(c *inventory.Cluster)) *inventory.Cluster {
	t.Helper()
	c := arboreus(t)
	if change != nil {
		change(c)
	}
	return c.Finish()
}

// summarize lists findings as "ID machine subject".
func summarize(fs []Finding) []string {
	out := make([]string, 0, len(fs))
	for _, f := range fs {
		out = append(out, fmt.Sprintf("%s %s %s", f.ID, f.Machine, f.Subject))
	}
	return out
}

func of(r *Report, id string) []Finding {
	var out []Finding
	for _, f := range r.Findings {
		if f.ID == id {
			out = append(out, f)
		}
	}
	return out
}

func TestArboreusExample(t *testing.T) {
	r := Run(arboreus(t), Options{})
	got := summarize(r.Findings)
	want := []string{"ARBO009 cluster app", "ARBO011 gate gate"}
	if !slices.Equal(got, want) {
		t.Fatalf("findings %q, want %q", got, want)
	}
	// TOPOLOGY.md: "arbo check on this example reports one warning".
	if e, w, i, a := r.Counts(); e != 0 || w != 1 || i != 1 || a != 0 {
		t.Errorf("counts = %d errors, %d warnings, %d infos, %d accepted; want 0, 1, 1, 0", e, w, i, a)
	}
	f := r.Findings[0]
	if f.Severity != Warning || f.Pos.Line != 64 {
		t.Errorf("ARBO009: %+v, want a warning at line 64 (erlang.consensus)", f)
	}
	if r.HasErrors() {
		t.Error("HasErrors on the example without --strict")
	}
}

func TestCasesCoverEveryRuleAndMachine(t *testing.T) {
	r := Run(arboreus(t), Options{})
	var got []string
	for _, cs := range r.Cases {
		got = append(got, cs.ID+" "+cs.Machine)
	}
	want := []string{
		"ARBO003 server1", "ARBO003 server2",
		"ARBO004 server1", "ARBO004 server2",
		"ARBO005 gate", "ARBO005 server1", "ARBO005 server2",
		"ARBO006 cluster",
		"ARBO007 server1", "ARBO007 server2",
		"ARBO008 cluster",
		"ARBO009 cluster",
		"ARBO010 gate", "ARBO010 server1", "ARBO010 server2",
		"ARBO011 gate",
		"ARBO012 server1", "ARBO012 server2",
		"ARBO013 cluster",
		"ARBO016 server1", "ARBO016 server2",
	}
	if !slices.Equal(got, want) {
		t.Fatalf("cases:\n%q\nwant:\n%q", got, want)
	}
	if c := variant(t, func(c *inventory.Cluster) { c.Gateway = nil }); true {
		for _, cs := range Run(c, Options{}).Cases {
			if cs.Machine == "gate" {
				t.Errorf("case %s on gate without a gateway", cs.ID)
			}
		}
	}
}

func TestStrict(t *testing.T) {
	r := Run(arboreus(t), Options{Strict: true})
	if !r.HasErrors() {
		t.Fatal("--strict: ARBO009 should fail the run")
	}
	if f := of(r, "ARBO009"); len(f) != 1 || f[0].Severity != Error {
		t.Fatalf("--strict ARBO009 = %+v, want one error", f)
	}
	if f := of(r, "ARBO011"); len(f) != 1 || f[0].Severity != Info {
		t.Fatalf("--strict ARBO011 = %+v, want info still", f)
	}
}

func TestAccept(t *testing.T) {
	// data jails on the app network: ARBO003 on both hosts.
	sharedNet := func(c *inventory.Cluster) {
		c.Jail("db1").IPs = []netip.Addr{netip.MustParseAddr("10.20.1.21")}
		c.Jail("db2").IPs = []netip.Addr{netip.MustParseAddr("10.20.1.22")}
	}
	tests := []struct {
		name       string
		accept     []inventory.Accept
		strict     bool
		wantAcc    []string // "ID machine" of accepted findings
		wantErrors bool
	}{
		{"none", nil, false, nil, true},
		{"one machine", []inventory.Accept{{ID: "ARBO003", Machine: "server1", Reason: "lab"}}, false,
			[]string{"ARBO003 server1"}, true},
		{"every machine", []inventory.Accept{{ID: "ARBO003", Reason: "lab"}}, false,
			[]string{"ARBO003 server1", "ARBO003 server2"}, false},
		{"other id", []inventory.Accept{{ID: "ARBO004", Reason: "lab"}}, false, nil, true},
		{"cluster under strict", []inventory.Accept{{ID: "ARBO003", Reason: "lab"}, {ID: "ARBO009", Machine: "cluster", Reason: "two nodes by design"}}, true,
			[]string{"ARBO009 cluster", "ARBO003 server1", "ARBO003 server2"}, false},
		{"cluster entry does not match a host", []inventory.Accept{{ID: "ARBO003", Machine: "cluster", Reason: "x"}}, false, nil, true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c := variant(t, func(c *inventory.Cluster) { sharedNet(c); c.Accept = tt.accept })
			r := Run(c, Options{Strict: tt.strict})
			var acc []string
			for _, f := range r.Findings {
				if f.Accepted {
					acc = append(acc, f.ID+" "+f.Machine)
					if f.AcceptReason == "" {
						t.Errorf("%s accepted without its reason", f.ID)
					}
				}
			}
			if !slices.Equal(acc, tt.wantAcc) {
				t.Errorf("accepted %q, want %q", acc, tt.wantAcc)
			}
			if r.HasErrors() != tt.wantErrors {
				t.Errorf("HasErrors = %v, want %v", r.HasErrors(), tt.wantErrors)
			}
		})
	}
}

// TestRules runs each rule on a passing and failing variants of the
// example and compares the rule's findings ("machine subject").
func TestRules(t *testing.T) {
	ip := netip.MustParseAddr
	cidr := netip.MustParsePrefix
	addService := func(tier string, s inventory.Service) func(*inventory.Cluster) {
		return func(c *inventory.Cluster) { c.Tier(tier).Services = append(c.Tier(tier).Services, s) }
	}
	setMnesiaFrom := func(from ...inventory.Source) func(*inventory.Cluster) {
		return func(c *inventory.Cluster) { c.Tier("data").Services[0].From = from }
	}
	tests := []struct {
		id     string
		name   string
		change func(*inventory.Cluster)
		want   []string
	}{
		{"ARBO003", "example passes", nil, nil},
		{"ARBO003", "data jail on the app network", func(c *inventory.Cluster) {
			c.Jail("db1").IPs = []netip.Addr{ip("10.20.1.21")}
		}, []string{"server1 app"}},
		{"ARBO003", "infra jail may share", func(c *inventory.Cluster) {
			c.Tier("data").Role = inventory.RoleInfra
			c.Jail("db1").IPs = []netip.Addr{ip("10.20.1.21")}
		}, nil},

		{"ARBO004", "example passes", nil, nil},
		{"ARBO004", "a CIDR in from is an allowance", addService("data", inventory.Service{Name: "pg", Proto: "tcp",
			Ports: inventory.PortRange{Min: 5432, Max: 5432}, From: []inventory.Source{{Kind: inventory.SourceCIDR, CIDR: cidr("10.20.1.0/24")}}}), nil},

		{"ARBO005", "example passes", nil, nil},
		{"ARBO005", "forward to data", func(c *inventory.Cluster) {
			c.Gateway.Forwards = append(c.Gateway.Forwards, inventory.Forward{Proto: "tcp", Port: inventory.PortRange{Min: 5432, Max: 5432}, To: "data"})
		}, []string{"gate data"}},
		{"ARBO005", "data jail on a WAN network", func(c *inventory.Cluster) {
			c.Networks = append(c.Networks, &inventory.Network{Name: "wan", CIDR: cidr("203.0.113.0/24")})
			c.Jail("db2").IPs = append(c.Jail("db2").IPs, ip("203.0.113.50"))
		}, []string{"server2 db2"}},
		{"ARBO005", "data service from gateway", setMnesiaFrom(inventory.Source{Kind: inventory.SourceTier, Name: "app"}, inventory.Source{Kind: inventory.SourceGateway}),
			[]string{"server1 data/mnesia", "server2 data/mnesia"}},
		{"ARBO005", "data service from the internet", addService("data", inventory.Service{Name: "pg", Proto: "tcp",
			Ports: inventory.PortRange{Min: 5432, Max: 5432}, From: []inventory.Source{{Kind: inventory.SourceCIDR, CIDR: cidr("0.0.0.0/0")}}}),
			[]string{"server1 data/pg", "server2 data/pg"}},
		{"ARBO005", "data service from a cluster network", addService("data", inventory.Service{Name: "pg", Proto: "tcp",
			Ports: inventory.PortRange{Min: 5432, Max: 5432}, From: []inventory.Source{{Kind: inventory.SourceCIDR, CIDR: cidr("192.168.1.0/24")}}}), nil},

		{"ARBO006", "example passes", nil, nil},
		{"ARBO006", "data egress any", func(c *inventory.Cluster) { c.Tier("data").Egress.Mode = inventory.EgressAny }, []string{"cluster data"}},
		{"ARBO006", "data egress to the internet", func(c *inventory.Cluster) {
			c.Tier("data").Egress = inventory.Egress{Mode: inventory.EgressList, Rules: []inventory.EgressRule{
				{To: cidr("192.168.2.0/24")}, {To: cidr("1.1.1.0/24"), Proto: "udp", Ports: inventory.PortRange{Min: 53, Max: 53}}}}
		}, []string{"cluster data"}},
		{"ARBO006", "data egress inside the cluster", func(c *inventory.Cluster) {
			c.Tier("data").Egress = inventory.Egress{Mode: inventory.EgressList, Rules: []inventory.EgressRule{{To: cidr("192.168.2.0/24")}}}
		}, nil},
		{"ARBO006", "app egress any is fine", func(c *inventory.Cluster) { c.Tier("app").Egress.Mode = inventory.EgressAny }, nil},

		{"ARBO007", "example passes", nil, nil},
		{"ARBO007", "erlang service on a non-Erlang tier", func(c *inventory.Cluster) { c.Erlang.Tiers = []string{"app"} },
			[]string{"server1 data/mnesia", "server2 data/mnesia"}},
		{"ARBO007", "Erlang ports from the gateway", setMnesiaFrom(inventory.Source{Kind: inventory.SourceGateway}),
			[]string{"server1 data/mnesia", "server2 data/mnesia"}},
		{"ARBO007", "Erlang ports from a CIDR", setMnesiaFrom(inventory.Source{Kind: inventory.SourceCIDR, CIDR: cidr("10.20.1.0/24")}),
			[]string{"server1 data/mnesia", "server2 data/mnesia"}},
		{"ARBO007", "Erlang ports from a non-Erlang tier", func(c *inventory.Cluster) {
			c.Tiers = append(c.Tiers, &inventory.Tier{Name: "web", Role: inventory.RoleApp, Network: "app"})
			c.Tier("data").Services[0].From = append(c.Tier("data").Services[0].From, inventory.Source{Kind: inventory.SourceTier, Name: "web"})
		}, []string{"server1 data/mnesia", "server2 data/mnesia"}},
		{"ARBO007", "tcp service overlapping dist_ports", addService("app", inventory.Service{Name: "admin", Proto: "tcp",
			Ports: inventory.PortRange{Min: 9000, Max: 9100}, From: []inventory.Source{{Kind: inventory.SourceTier, Name: "app"}}}),
			[]string{"server1 app/admin", "server2 app/admin"}},
		{"ARBO007", "udp on 4369 is not Erlang", addService("app", inventory.Service{Name: "odd", Proto: "udp",
			Ports: inventory.PortRange{Min: 4369, Max: 4369}, From: []inventory.Source{{Kind: inventory.SourceTier, Name: "app"}}}), nil},

		{"ARBO008", "example passes", nil, nil},
		{"ARBO008", "one app jail", func(c *inventory.Cluster) { c.Host("server2").Jails = c.Host("server2").Jails[1:] }, []string{"cluster app"}},
		{"ARBO008", "data on one host", func(c *inventory.Cluster) {
			c.Host("server1").Jails = append(c.Host("server1").Jails, c.Jail("db2"))
			c.Host("server2").Jails = c.Host("server2").Jails[:1]
		}, []string{"cluster data"}},
		{"ARBO008", "tier without jails", func(c *inventory.Cluster) {
			c.Tiers = append(c.Tiers, &inventory.Tier{Name: "web", Role: inventory.RoleApp, Network: "app"})
		}, []string{"cluster web"}},

		{"ARBO009", "consensus 1 passes", func(c *inventory.Cluster) { c.Erlang.Consensus = 1 }, nil},
		{"ARBO009", "example: consensus 2 of 2", nil, []string{"cluster app"}},
		{"ARBO009", "data on one host", func(c *inventory.Cluster) {
			c.Erlang.Consensus = 1
			c.Host("server1").Jails = append(c.Host("server1").Jails, c.Jail("db2"))
			c.Host("server2").Jails = c.Host("server2").Jails[:1]
		}, []string{"cluster data"}},
		{"ARBO009", "three app nodes, consensus 2", func(c *inventory.Cluster) {
			c.Hosts = append(c.Hosts, &inventory.Host{Name: "server3", SSH: inventory.SSH{Address: "192.168.1.13"},
				Interfaces: []inventory.HostInterface{{Device: "em0", Network: "segment1", Address: ip("192.168.1.13")}},
				Jails:      []*inventory.Jail{{Name: "app3", Tier: "app", IPs: []netip.Addr{ip("10.20.1.13")}}}})
		}, nil},

		{"ARBO010", "example passes", nil, nil},
		{"ARBO010", "no management network for a machine", func(c *inventory.Cluster) {
			c.Management = nil
			c.Host("server2").SSH.Address = "server2.example.org"
		}, []string{"server2 server2"}},

		{"ARBO011", "gateway", nil, []string{"gate gate"}},
		{"ARBO011", "no gateway", func(c *inventory.Cluster) { c.Gateway = nil }, nil},
	}
	for _, tt := range tests {
		t.Run(tt.id+"/"+tt.name, func(t *testing.T) {
			r := Run(variant(t, tt.change), Options{})
			var got []string
			for _, f := range of(r, tt.id) {
				got = append(got, f.Machine+" "+f.Subject)
				if f.Message == "" {
					t.Errorf("%s finding without a message", tt.id)
				}
			}
			if !slices.Equal(got, tt.want) {
				t.Fatalf("%s findings %q, want %q\n%v", tt.id, got, tt.want, r.Findings)
			}
			assertFindingsOnCases(t, r)
		})
	}
}

// assertFindingsOnCases: every finding names a machine its rule applies
// to, so that JUnit shows it.
func assertFindingsOnCases(t *testing.T, r *Report) {
	t.Helper()
	n := 0
	for _, cs := range r.Cases {
		n += len(cs.Findings)
	}
	if n != len(r.Findings) {
		for _, f := range r.Findings {
			t.Logf("finding %s %s", f.ID, f.Machine)
		}
		t.Fatalf("%d findings, %d of them on a rule × machine case", len(r.Findings), n)
	}
}

// fakeRuleset is a firewall that allows what its policy does plus extra.
type fakeRuleset struct {
	base      Ruleset
	extra     func(src, dst netip.Addr, proto string, port int) bool
	skips     []string
	sshBlocks bool // a block rule ahead of the management pass
}

func (f fakeRuleset) Allows(src, dst netip.Addr, proto string, port int) bool {
	return f.base.Allows(src, dst, proto, port) || (f.extra != nil && f.extra(src, dst, proto, port))
}
func (f fakeRuleset) FirstMatchPasses(src, dst netip.Addr, proto string, port int) bool {
	return !f.sshBlocks && f.base.FirstMatchPasses(src, dst, proto, port)
}
func (f fakeRuleset) Skips() []string { return f.skips }

func TestFirewallRulesOnGivenRulesets(t *testing.T) {
	c := arboreus(t)
	base := newEnv(c, Options{}).model
	db1, app1 := netip.MustParseAddr("10.20.2.11"), netip.MustParseAddr("10.20.1.11")
	tests := []struct {
		name string
		rs   fakeRuleset
		want []string // "ID machine subject" on server1
	}{
		{"the policy itself", fakeRuleset{base: base}, nil},
		{"skip lo0 only (the policy model has no lo0 crossing: ARBO012 judges a parsed ruleset)", fakeRuleset{base: base, skips: []string{"lo0"}}, nil},
		{"set skip on lo", fakeRuleset{base: base, skips: []string{"lo"}}, []string{"ARBO004 server1 set skip on lo"}},
		{"set skip on lo1", fakeRuleset{base: base, skips: []string{"lo1"}}, []string{"ARBO004 server1 set skip on lo1"}},
		{"data to app on the same host", fakeRuleset{base: base, extra: func(src, dst netip.Addr, proto string, port int) bool {
			return src == db1 && dst == app1
		}}, []string{"ARBO004 server1 data -> app"}}, // both Erlang tiers: not an ARBO007 matter
		{"pass all", fakeRuleset{base: base, extra: func(netip.Addr, netip.Addr, string, int) bool { return true }},
			[]string{
				"ARBO004 server1 app -> app", "ARBO004 server1 app -> data", "ARBO004 server1 app -> data",
				"ARBO004 server1 data -> app", "ARBO004 server1 data -> app", "ARBO004 server1 data -> data",
				"ARBO004 server1 gateway -> app", "ARBO004 server1 gateway -> data",
				"ARBO004 server1 outside -> app", "ARBO004 server1 outside -> data",
				"ARBO007 server1 app1", "ARBO007 server1 app1", "ARBO007 server1 db1", "ARBO007 server1 db1",
				"ARBO012 server1 app1", "ARBO012 server1 app1",
				"ARBO012 server1 db1", "ARBO012 server1 db1",
			}},
		// ARBO012: what `set skip on lo0` did (issue 10 item 4).
		{"a jail reaches its host's sshd", fakeRuleset{base: base, extra: func(src, dst netip.Addr, proto string, port int) bool {
			return src == app1 && dst == netip.MustParseAddr("192.168.1.11") && proto == "tcp" && port == 22
		}}, []string{"ARBO012 server1 app1"}},
		{"management ssh after a block", fakeRuleset{base: base, sshBlocks: true}, []string{"ARBO010 server1 192.168.1.0/24"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			r := Run(c, Options{Rulesets: map[string]Ruleset{"server1": tt.rs}})
			var got []string
			for _, f := range r.Findings {
				if f.ID == "ARBO009" || f.ID == "ARBO011" {
					continue
				}
				got = append(got, fmt.Sprintf("%s %s %s", f.ID, f.Machine, f.Subject))
			}
			if !slices.Equal(got, tt.want) {
				t.Fatalf("findings:\n%s\nwant:\n%s\n%v", strings.Join(got, "\n"), strings.Join(tt.want, "\n"), r.Findings)
			}
			if len(tt.want) > 0 && !r.HasErrors() {
				t.Error("findings but no error")
			}
		})
	}
}

func TestRuleTable(t *testing.T) {
	// IDs in order, from ARBO003 to ARBO016 (the allocated ones land in
	// any order, so the table may have gaps).
	prev := 2
	for i, r := range Rules {
		var n int
		if _, err := fmt.Sscanf(r.ID, "ARBO%03d", &n); err != nil || n <= prev || n > 16 || r.ID != fmt.Sprintf("ARBO%03d", n) {
			t.Errorf("rule %d is %s, want an ID after ARBO%03d, at most ARBO016", i, r.ID, prev)
		}
		prev = n
		if r.Title == "" || r.Check == nil || r.Machines == nil {
			t.Errorf("%s incomplete", r.ID)
		}
		if _, ok := RuleByID(r.ID); !ok {
			t.Errorf("RuleByID(%s) not found", r.ID)
		}
	}
	if _, ok := RuleByID("ARBO001"); ok {
		t.Error("ARBO001 is a load error, not a check rule")
	}
}
