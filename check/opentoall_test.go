package check

import (
	"net/netip"
	"slices"
	"testing"

	"github.com/arbo-project/arbo/inventory"
)

func TestOpenToAll(t *testing.T) {
	c := variant(t, func(c *inventory.Cluster) {
		c.Management = []inventory.Source{
			{Kind: inventory.SourceCIDR, CIDR: netip.MustParsePrefix("192.168.1.0/24")},
			{Kind: inventory.SourceCIDR, CIDR: netip.MustParsePrefix("::/0"), Pos: inventory.Pos{Line: 7, Col: 3}},
		}
		app := c.Tier("app")
		app.Services = append(slices.Clone(app.Services), inventory.Service{Name: "admin", Proto: "tcp",
			Ports: inventory.PortRange{Min: 9000, Max: 9000},
			From:  []inventory.Source{{Kind: inventory.SourceCIDR, CIDR: netip.MustParsePrefix("0.0.0.0/0"), Pos: inventory.Pos{Line: 9, Col: 1}}}})
	})
	r := Run(c, Options{})
	got := summarize(of(r, "ARBO013"))
	want := []string{"ARBO013 cluster app/admin", "ARBO013 cluster management"}
	if !slices.Equal(got, want) {
		t.Fatalf("ARBO013: %q, want %q", got, want)
	}
	for _, f := range of(r, "ARBO013") {
		if f.Severity != Error || f.Pos.Line == 0 || !f.Fails() {
			t.Errorf("%+v: want an unaccepted error with a position", f)
		}
	}
	// The example itself has none.
	if fs := of(Run(arboreus(t), Options{}), "ARBO013"); len(fs) != 0 {
		t.Errorf("arboreus: %v", fs)
	}
}

// An accept entry with a subject covers that subject (and, for a tier, its
// services) only; without one, every subject.
func TestAcceptSubject(t *testing.T) {
	for _, tc := range []struct {
		subject string
		want    []bool // accepted: app/admin, management
	}{
		{"", []bool{true, true}},
		{"management", []bool{false, true}},
		{"app", []bool{true, false}},
		{"app/admin", []bool{true, false}},
		{"app/adm", []bool{false, false}},
		{"data", []bool{false, false}},
	} {
		c := variant(t, func(c *inventory.Cluster) {
			c.Management = []inventory.Source{{Kind: inventory.SourceCIDR, CIDR: netip.MustParsePrefix("0.0.0.0/0")}}
			app := c.Tier("app")
			app.Services = append(slices.Clone(app.Services), inventory.Service{Name: "admin", Proto: "tcp",
				Ports: inventory.PortRange{Min: 9000, Max: 9000},
				From:  []inventory.Source{{Kind: inventory.SourceCIDR, CIDR: netip.MustParsePrefix("::/0")}}})
			c.Accept = []inventory.Accept{{ID: "ARBO013", Subject: tc.subject, Reason: "test"}}
		})
		var got []bool
		for _, f := range of(Run(c, Options{}), "ARBO013") {
			got = append(got, f.Accepted)
		}
		if !slices.Equal(got, tc.want) {
			t.Errorf("subject %q: accepted %v, want %v", tc.subject, got, tc.want)
		}
	}
}
