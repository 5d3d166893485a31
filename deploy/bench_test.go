package deploy

import (
	"context"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"runtime"
	"testing"

	"github.com/arbo-project/arbo/examples/gen"
	"github.com/arbo-project/arbo/ui"
	"github.com/arbo-project/arbo/view"
)

// BenchmarkPlanOffline is `arbo plan --offline` without the CLI: load,
// check, render, plan against fresh machines, print the human plan
// (issue 17 item 2: memory and time linear in the cluster). live-MB is the
// heap the finished plan holds (after a GC): what a plan of this size keeps
// at once. One size: -bench 'PlanOffline/^hosts=100$' (anchored: hosts=10
// matches hosts=100 and 1000 too).
func BenchmarkPlanOffline(b *testing.B) {
	for _, sz := range []struct{ hosts, jails int }{{10, 20}, {100, 20}, {1000, 20}} {
		b.Run(fmt.Sprintf("hosts=%d/jails=%d", sz.hosts, sz.jails), func(b *testing.B) {
			dir := b.TempDir()
			file := filepath.Join(dir, "topology.yaml")
			if err := os.WriteFile(file, gen.Topology(sz.hosts, sz.jails), 0o644); err != nil {
				b.Fatal(err)
			}
			if err := os.WriteFile(filepath.Join(dir, "erlang.cookie"), []byte("bench-cookie-0123456789abcdef0123456789abcdef\n"), 0o600); err != nil {
				b.Fatal(err)
			}
			var o Options
			o.Plan.Offline = true
			b.ReportAllocs()
			var live uint64
			actions := 0
			for b.Loop() {
				pr, err := Plan(context.Background(), file, o)
				if err != nil {
					b.Fatal(err)
				}
				if err := view.PlanText(io.Discard, ui.Style{}, pr.Plan); err != nil {
					b.Fatal(err)
				}
				b.StopTimer()
				runtime.GC()
				var ms runtime.MemStats
				runtime.ReadMemStats(&ms)
				live = ms.HeapAlloc
				actions = 0
				for _, m := range pr.Plan.Machines {
					actions += len(m.Actions)
				}
				runtime.KeepAlive(pr)
				b.StartTimer()
			}
			b.ReportMetric(float64(live)/(1<<20), "live-MB")
			b.ReportMetric(float64(actions), "actions/op")
		})
	}
}
