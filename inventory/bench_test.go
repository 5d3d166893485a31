package inventory_test

import (
	"fmt"
	"testing"

	"github.com/arbo-project/arbo/examples/gen"
	"github.com/arbo-project/arbo/inventory"
)

// BenchmarkLoad measures decode + defaults + validation on generated
// clusters of 20 jails per host; ns/op and B/op should grow linearly.
func BenchmarkLoad(b *testing.B) {
	for _, hosts := range []int{100, 1000, 5000} {
		data := gen.Topology(hosts, 20)
		b.Run(fmt.Sprintf("hosts=%d", hosts), func(b *testing.B) {
			b.ReportAllocs()
			b.SetBytes(int64(len(data)))
			for b.Loop() {
				if _, err := inventory.Parse("gen.yaml", data); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}

// TestLoadGenerated1000 loads 1,000 hosts × 20 jails; run its compiled test
// binary under /usr/bin/time -v to see the peak memory of load + validate.
func TestLoadGenerated1000(t *testing.T) {
	c, err := inventory.Parse("gen.yaml", gen.Topology(1000, 20))
	if err != nil {
		t.Fatal(err)
	}
	if n := len(c.Jails()); n != 20000 {
		t.Fatalf("%d jails", n)
	}
}
