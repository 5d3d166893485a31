package pf

import (
	"net/netip"
	"testing"
)

// host is a jail host: em0 on 192.168.1.0/24 (the way out), app jail
// 10.0.1.10 and data jail 10.0.2.10 on lo1.
func hostNet() *Network {
	return &Network{
		Local: map[netip.Addr]string{
			netip.MustParseAddr("192.168.1.10"): "em0",
			netip.MustParseAddr("10.0.1.10"):    "lo1",
			netip.MustParseAddr("10.0.2.10"):    "lo1",
		},
		Attached: []Attached{{"em0", netip.MustParsePrefix("192.168.1.0/24")}},
		Default:  "em0",
	}
}

func TestEvaluate(t *testing.T) {
	a := netip.MustParseAddr
	app, data, mgmt, hostA := a("10.0.1.10"), a("10.0.2.10"), a("192.168.1.5"), a("192.168.1.10")
	tests := []struct {
		name, src     string
		from, to      netip.Addr
		proto         string
		port          int
		allows, first bool
	}{
		{"no rule passes", "", app, data, "tcp", 5432, true, false},
		{"last match wins", "pass all\nblock all\n", app, data, "tcp", 5432, false, false},
		{"quick stops", "pass quick all\nblock all\n", app, data, "tcp", 5432, true, true},
		{"non-quick pass first is not first-match-passes", "pass proto tcp to port 22\nblock quick all\n", mgmt, hostA, "tcp", 22, false, false},
		{"lo1 both directions must pass", "block all\npass in on lo1 proto tcp to port 5432\n", app, data, "tcp", 5432, false, false},
		{"undirected lo1 rule", "block all\npass on lo1 proto tcp to port 5432\n", app, data, "tcp", 5432, true, false},
		{"set skip on lo skips lo1", "set skip on lo\nblock all\n", app, data, "tcp", 5432, true, true},
		{"set skip on lo0 does not", "set skip on lo0\nblock all\n", app, data, "tcp", 5432, false, false},
		{"remote source arrives on em0", "block all\npass in on em0 proto tcp to port 22\n", mgmt, hostA, "tcp", 22, true, false},
		{"table negation", "table <j> { 10.0.0.0/8 }\nblock all\npass quick proto tcp from 192.168.1.0/24 to ! <j> port 22 flags any\n", mgmt, app, "tcp", 22, false, false},
		{"table negation passes host", "table <j> { 10.0.0.0/8 }\nblock all\npass quick proto tcp from 192.168.1.0/24 to ! <j> port 22 flags any\n", mgmt, hostA, "tcp", 22, true, false},
		{"first rule quick pass", "pass in quick proto tcp from 192.168.1.0/24 to any port 22 flags any\nblock all\n", mgmt, hostA, "tcp", 22, true, true},
		{"first ssh rule a block", "block in quick proto tcp to port 22\npass in quick proto tcp from 192.168.1.0/24 to any port 22\n", mgmt, hostA, "tcp", 22, false, false},
		{"tagged does not match untagged", "block all\npass quick tagged t\n", app, data, "tcp", 1, false, false},
		{"match rule tags", "block all\nmatch on lo1 tag t\npass quick tagged t\n", app, data, "tcp", 1, true, false},
		{"port range", "block all\npass quick proto tcp to port 9100:9115\n", app, data, "tcp", 9115, true, false},
		{"port range edge", "block all\npass quick proto tcp to port 9100:9115\n", app, data, "tcp", 9116, false, false},
		{"flags S/SA matches a SYN", "block all\npass quick proto tcp flags S/SA\n", app, data, "tcp", 1, true, false},
		{"flags A/A does not", "block all\npass quick proto tcp flags A/A\n", app, data, "tcp", 1, false, false},
		{"inet6 rule skips v4", "block all\npass quick inet6\n", app, data, "udp", 53, false, false},
		{"self", "block all\npass quick proto tcp to self port 22\n", mgmt, hostA, "tcp", 22, true, false},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			r := mustParse(t, tc.src)
			r.Net = hostNet()
			if got := r.Allows(tc.from, tc.to, tc.proto, tc.port); got != tc.allows {
				t.Errorf("Allows = %v, want %v", got, tc.allows)
			}
			if got := r.FirstMatchPasses(tc.from, tc.to, tc.proto, tc.port); got != tc.first {
				t.Errorf("FirstMatchPasses = %v, want %v", got, tc.first)
			}
		})
	}
}

func TestCrossings(t *testing.T) {
	n := hostNet()
	a := netip.MustParseAddr
	cases := []struct {
		src, dst string
		want     []Crossing
	}{
		{"10.0.1.10", "10.0.2.10", []Crossing{{"out", "lo1"}, {"in", "lo1"}}},
		{"10.0.1.10", "192.168.1.10", []Crossing{{"out", "lo0"}, {"in", "lo0"}}},
		{"192.168.1.5", "10.0.2.10", []Crossing{{"in", "em0"}}},
		{"8.8.8.8", "10.0.2.10", []Crossing{{"in", "em0"}}},
		{"10.0.1.10", "8.8.8.8", []Crossing{{"out", "em0"}}},
	}
	for _, c := range cases {
		got := n.Crossings(a(c.src), a(c.dst))
		if len(got) != len(c.want) {
			t.Errorf("%s -> %s: %v, want %v", c.src, c.dst, got, c.want)
			continue
		}
		for i := range got {
			if got[i] != c.want[i] {
				t.Errorf("%s -> %s: %v, want %v", c.src, c.dst, got, c.want)
			}
		}
	}
}

func TestSkipsAndUnknowns(t *testing.T) {
	r := mustParse(t, "set skip on { lo0 lo }\ntable <f> file \"/etc/x\"\npass from <f>\npass to <missing>\npass to em1\n")
	if s := r.Skips(); len(s) != 2 {
		t.Errorf("Skips = %v", s)
	}
	r.Net = hostNet()
	if u := r.Unknowns(); len(u) != 3 {
		t.Errorf("Unknowns = %v, want the file table, the missing table and em1", u)
	}
}
