package render

import (
	"os"
	"path/filepath"
	"testing"

	"github.com/arbo-project/arbo/dns"
	"github.com/arbo-project/arbo/inventory"
	"github.com/arbo-project/arbo/templates"
)

// renderAll is everything `arbo render` does short of writing: every
// machine, the zone files and the manifest.
func renderAll(c *inventory.Cluster) error {
	ms, err := Cluster(c, Options{CookieMissing: true})
	if err != nil {
		return err
	}
	zones, err := dns.ZoneFiles(c, templates.Default())
	if err != nil {
		return err
	}
	_, err = BuildManifest(c, ms, zones, true)
	return err
}

func validateSeeds(tb testing.TB) []string {
	var seeds []string
	for _, g := range []string{"../inventory/testdata/good/*.yaml", "../inventory/testdata/bad/*.yaml", "../examples/*/topology.yaml"} {
		m, _ := filepath.Glob(g)
		seeds = append(seeds, m...)
	}
	if len(seeds) < 40 {
		tb.Fatalf("only %d seed topologies", len(seeds))
	}
	return seeds
}

// validate ⇔ render (issue 11, item 10): every topology that loads renders
// whole, so that render never fails on what validate accepted.
func TestEveryValidTopologyRenders(t *testing.T) {
	n := 0
	for _, s := range validateSeeds(t) {
		c, err := inventory.Load(s)
		if err != nil {
			continue
		}
		n++
		if err := renderAll(c); err != nil {
			t.Errorf("%s loads but does not render: %v", s, err)
		}
	}
	if n < 3 {
		t.Fatalf("only %d seeds load", n)
	}
}

// FuzzValidateRender: whatever Parse accepts, render accepts too.
func FuzzValidateRender(f *testing.F) {
	for _, s := range validateSeeds(f) {
		b, err := os.ReadFile(s)
		if err != nil {
			f.Fatal(err)
		}
		f.Add(b)
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		c, err := inventory.Parse("fuzz.yaml", data)
		if err != nil {
			return
		}
		if err := renderAll(c); err != nil {
			t.Fatalf("loads but does not render: %v\n%s", err, data)
		}
	})
}
