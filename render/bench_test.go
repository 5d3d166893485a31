package render

import (
	"fmt"
	"testing"

	"github.com/arbo-project/arbo/examples/gen"
	"github.com/arbo-project/arbo/inventory"
	"github.com/arbo-project/arbo/templates"
)

// BenchmarkRender renders every machine of generated clusters: the bench
// lab's shape (20 hosts × 3 jails) and a large one (100 hosts × 20 jails).
// It is on the critical path of every plan, between reading the gateway's
// config.xml and reading the hosts.
func BenchmarkRender(b *testing.B) {
	for _, sz := range []struct{ hosts, jails int }{{20, 3}, {100, 20}} {
		c, err := inventory.Parse("gen.yaml", gen.Topology(sz.hosts, sz.jails))
		if err != nil {
			b.Fatal(err)
		}
		o := Options{Templates: templates.Default(), Cookie: []byte(testCookie)}
		b.Run(fmt.Sprintf("hosts=%d/jails=%d", sz.hosts, sz.jails), func(b *testing.B) {
			b.ReportAllocs()
			files := 0
			for b.Loop() {
				ms, err := Cluster(c, o)
				if err != nil {
					b.Fatal(err)
				}
				files = 0
				for _, m := range ms {
					files += len(m.Files)
				}
			}
			b.ReportMetric(float64(files), "files/op")
		})
	}
}
