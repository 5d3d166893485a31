package rendered

import (
	"net/netip"
	"os"
	"strings"
	"testing"

	"github.com/arbo-project/arbo/check"
	"github.com/arbo-project/arbo/inventory"
	"github.com/arbo-project/arbo/pf"
	"github.com/arbo-project/arbo/templates"
)

func load(t *testing.T, path string) *inventory.Cluster {
	t.Helper()
	c, err := inventory.Load(path)
	if err != nil {
		t.Fatal(err)
	}
	return c
}

func failing(r *check.Report, id string) []string {
	var out []string
	for _, f := range r.Findings {
		if f.ID == id && f.Fails() {
			out = append(out, f.Machine+" "+f.Subject+": "+f.Message)
		}
	}
	return out
}

// The examples' rendered files pass the firewall rules.
func TestExamplesPass(t *testing.T) {
	ts, err := templates.Load("")
	if err != nil {
		t.Fatal(err)
	}
	for _, ex := range []string{"arboreus", "single-host"} {
		c := load(t, "../../examples/"+ex+"/topology.yaml")
		rs, err := Rulesets(c, ts)
		if err != nil {
			t.Fatalf("%s: %v", ex, err)
		}
		if len(rs) != len(c.Hosts) {
			t.Fatalf("%s: %d rulesets for %d hosts", ex, len(rs), len(c.Hosts))
		}
		r, err := Run(c, ts, check.Options{})
		if err != nil {
			t.Fatal(err)
		}
		for _, id := range []string{"ARBO004", "ARBO007", "ARBO010"} {
			if f := failing(r, id); len(f) > 0 {
				t.Errorf("%s: %s fails on the rendered pf.conf: %v", ex, id, f)
			}
		}
	}
}

// withFile checks arboreus with server1's pf.conf replaced by text.
func withFile(t *testing.T, text string) *check.Report {
	t.Helper()
	c := load(t, "../../examples/arboreus/topology.yaml")
	r, err := pf.Parse("server1.pf.conf", []byte(text))
	if err != nil {
		t.Fatal(err)
	}
	h := c.Host("server1")
	holder := map[netip.Addr]*inventory.Host{}
	for _, hh := range c.Hosts {
		for _, j := range hh.Jails {
			for _, a := range j.IPs {
				holder[a] = hh
			}
		}
	}
	r.Net = network(c, h, holder)
	return check.Run(c, check.Options{Rulesets: map[string]check.Ruleset{"server1": r}})
}

func golden(t *testing.T) string {
	b, err := os.ReadFile("../../pf/testdata/golden/arboreus.server1.pf.conf")
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}

func TestHandWrittenRulesets(t *testing.T) {
	base := golden(t)
	if f := withFile(t, base); len(failing(f, "ARBO004"))+len(failing(f, "ARBO010"))+len(failing(f, "ARBO007"))+len(failing(f, "ARBO012")) > 0 {
		t.Fatalf("the golden file fails: %v %v %v %v", failing(f, "ARBO004"), failing(f, "ARBO007"), failing(f, "ARBO010"), failing(f, "ARBO012"))
	}
	tests := []struct {
		name, id, old, new, want string
	}{
		{"app reaches data on a port no data service has", "ARBO004", "# tier app asks the cluster's resolvers (udp 53)",
			"pass quick proto tcp from <arbo_app> to <arbo_data> port 8443 keep state", "tcp 8443"},
		// A port the topology never names: the ruleset's own ports are probed too.
		{"app reaches data on a port nobody names", "ARBO004", "# tier app asks the cluster's resolvers (udp 53)",
			"pass quick proto tcp from <arbo_app> to <arbo_data> port 5432 keep state", "tcp 5432"},
		{"set skip on lo", "ARBO004", "\n# --- Normalization", "set skip on lo\n\n# --- Normalization", "set skip on lo"},
		// ARBO012 (issue 10 item 4): arbo's own file before the fix skipped
		// lo0, and every jail reached its host's sshd over lo0.
		{"set skip on lo0 (arbo before ARBO012)", "ARBO012", "\n# --- Normalization", "set skip on lo0\n\n# --- Normalization",
			"jail app1 (10.20.1.11, tier app) reach its own host server1 at 192.168.1.11 on tcp 1, tcp 22"},
		{"a hand-written pass on lo0 for the app jails", "ARBO012",
			"block drop log quick on lo0 from <arbo_local_jails> to ! <arbo_local_jails>", "pass quick on lo0 from <arbo_app> to any keep state",
			"jail app1 (10.20.1.11, tier app) reach its own host server1 at 192.168.2.11"},
		{"first SSH rule is a block", "ARBO010", "pass in quick proto tcp from $mgmt_nets",
			"block in quick proto tcp to any port 22\npass in quick proto tcp from $mgmt_nets", "SSH from management network"},
		{"management SSH removed", "ARBO010", "pass in quick proto tcp from $mgmt_nets", "# pass in quick proto tcp from $mgmt_nets", "SSH from management network"},
		{"Erlang ports open to the gateway", "ARBO007", "# tier app asks the cluster's resolvers (udp 53)",
			"pass quick proto tcp from <arbo_gateway> to <arbo_data> port 4369 keep state", "Erlang ports"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			if !strings.Contains(base, tc.old) {
				t.Fatalf("golden lacks %q", tc.old)
			}
			r := withFile(t, strings.Replace(base, tc.old, tc.new, 1))
			f := failing(r, tc.id)
			if len(f) == 0 || !strings.Contains(strings.Join(f, "\n"), tc.want) {
				t.Errorf("%s findings %v, want one mentioning %q", tc.id, f, tc.want)
			}
			for _, s := range f {
				if !strings.HasPrefix(s, "server1 ") {
					t.Errorf("finding on another machine: %s", s)
				}
			}
		})
	}
}

// A template override that pfctl would accept but the parser does not
// understand is an error, not a silent pass.
func TestUnparsableOverride(t *testing.T) {
	dir := t.TempDir()
	b, err := os.ReadFile("../../templates/files/pf.conf.tmpl")
	if err != nil {
		t.Fatal(err)
	}
	over := strings.Replace(string(b), "# --- Filtering", "# --- Filtering\npass in quick proto tcp from any to any port 22 user root", 1)
	if err := os.WriteFile(dir+"/pf.conf.tmpl", []byte(over), 0o644); err != nil {
		t.Fatal(err)
	}
	ts, err := templates.Load(dir)
	if err != nil {
		t.Fatal(err)
	}
	_, err = Run(load(t, "../../examples/arboreus/topology.yaml"), ts, check.Options{})
	if err == nil || !strings.Contains(err.Error(), `"user" cannot be judged`) || !strings.Contains(err.Error(), "server1:/etc/pf.conf:") {
		t.Errorf("err = %v", err)
	}
}
