package gen_test

import (
	"bytes"
	"testing"

	"github.com/arbo-project/arbo/examples/gen"
	"github.com/arbo-project/arbo/inventory"
)

func TestTopologyLoads(t *testing.T) {
	for _, tc := range []struct{ hosts, jails int }{{1, 1}, {1, 2}, {3, 2}, {50, 20}, {300, 31}} {
		data := gen.Topology(tc.hosts, tc.jails)
		c, err := inventory.Parse("gen.yaml", data)
		if err != nil {
			t.Fatalf("%d×%d: %v", tc.hosts, tc.jails, err)
		}
		if got := len(c.Hosts); got != tc.hosts {
			t.Errorf("%d×%d: %d hosts", tc.hosts, tc.jails, got)
		}
		if got := len(c.Jails()); got != tc.hosts*tc.jails {
			t.Errorf("%d×%d: %d jails", tc.hosts, tc.jails, got)
		}
	}
}

func TestTopologyDeterministic(t *testing.T) {
	if !bytes.Equal(gen.Topology(20, 5), gen.Topology(20, 5)) {
		t.Fatal("two runs differ")
	}
}

// The largest plan must still load: 5,000 hosts × 20 jails.
func TestTopologyLargest(t *testing.T) {
	if testing.Short() {
		t.Skip("large; run without -short")
	}
	if _, err := inventory.Parse("gen.yaml", gen.Topology(5000, 20)); err != nil {
		t.Fatal(err)
	}
}
