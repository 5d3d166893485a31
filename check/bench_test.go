package check

import (
	"fmt"
	"testing"

	"github.com/arbo-project/arbo/examples/gen"
	"github.com/arbo-project/arbo/inventory"
)

// BenchmarkCheck measures load+check and check alone on generated
// topologies of 100, 1,000 and 5,000 hosts with 20 jails each.
func BenchmarkCheck(b *testing.B) {
	for _, hosts := range []int{100, 1000, 5000} {
		data := gen.Topology(hosts, 20)
		b.Run(fmt.Sprintf("load+check/hosts=%d", hosts), func(b *testing.B) {
			for b.Loop() {
				c, err := inventory.Parse("gen.yaml", data)
				if err != nil {
					b.Fatal(err)
				}
				Run(c, Options{})
			}
		})
		c, err := inventory.Parse("gen.yaml", data)
		if err != nil {
			b.Fatal(err)
		}
		b.Run(fmt.Sprintf("check/hosts=%d", hosts), func(b *testing.B) {
			for b.Loop() {
				Run(c, Options{})
			}
		})
	}
}

// The generated topologies are clean apart from ARBO009/011-style design
// notes: a benchmark of a run full of false findings would measure the
// wrong thing.
func TestGeneratedTopology(t *testing.T) {
	c, err := inventory.Parse("gen.yaml", gen.Topology(10, 20))
	if err != nil {
		t.Fatal(err)
	}
	r := Run(c, Options{})
	if r.HasErrors() {
		t.Fatalf("generated topology has errors: %v", summarize(r.Findings))
	}
	assertFindingsOnCases(t, r)
}
