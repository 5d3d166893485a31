package inventory

import (
	"errors"
	"os"
	"path/filepath"
	"testing"
	"time"
)

// FuzzParse feeds arbitrary bytes to Parse: it must never panic, must fail
// only with a *LoadError whose problems say something, and a cluster it
// accepts must survive the derived facts every other package uses.
func FuzzParse(f *testing.F) {
	var seeds []string
	for _, g := range []string{"testdata/good/*.yaml", "testdata/bad/*.yaml", "../examples/*/topology.yaml"} {
		m, _ := filepath.Glob(g)
		seeds = append(seeds, m...)
	}
	for _, s := range seeds {
		data, err := os.ReadFile(s)
		if err != nil {
			f.Fatal(err)
		}
		f.Add(data)
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		type result struct {
			c   *Cluster
			err error
		}
		done := make(chan result, 1)
		go func() {
			c, err := Parse("fuzz.yaml", data)
			done <- result{c, err}
		}()
		var r result
		select {
		case r = <-done:
		case <-time.After(10 * time.Second):
			t.Fatalf("Parse hangs on %q", data)
		}
		c, err := r.c, r.err
		if err != nil {
			var le *LoadError
			if !errors.As(err, &le) || len(le.Problems) == 0 {
				t.Fatalf("error is not a LoadError with problems: %v", err)
			}
			for _, p := range le.Problems {
				if p.Msg == "" {
					t.Fatalf("problem without a message: %+v", p)
				}
			}
			return
		}
		if c.Version != 1 || c.Name == "" || len(c.Hosts) == 0 {
			t.Fatalf("accepted an incomplete cluster: %+v", c)
		}
		for _, m := range c.Machines() {
			c.Routes(m)
			c.ManagementPrefixes(m)
			c.MachineSSH(m)
		}
		for _, h := range c.Hosts {
			c.WayOut(h)
			for _, j := range h.Jails {
				if c.Jail(j.Name) != j || !c.TierAddr(j).IsValid() {
					t.Fatalf("jail %s: lookup or tier address broken", j.Name)
				}
			}
		}
		c.Resolvers()
		c.ClusterPrefixes()
	})
}
