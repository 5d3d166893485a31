package inventory

import (
	"errors"
	"flag"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

var update = flag.Bool("update", false, "rewrite testdata/bad/*.want from the current output (review the diff!)")

// TestBadFiles loads every testdata/bad/*.yaml, which must fail, and checks
// that each line of the sibling .want file is a substring of some problem.
// With -update the .want files are rewritten with the full problem lines,
// without the file name.
func TestBadFiles(t *testing.T) {
	files, err := filepath.Glob("testdata/bad/*.yaml")
	if err != nil || len(files) < 40 {
		t.Fatalf("want at least 40 bad files, found %d (%v)", len(files), err)
	}
	for _, f := range files {
		t.Run(filepath.Base(f), func(t *testing.T) {
			_, err := Load(f)
			var le *LoadError
			if !errors.As(err, &le) || len(le.Problems) == 0 {
				t.Fatalf("loaded without a LoadError: %v", err)
			}
			var got []string
			for _, p := range le.Problems {
				got = append(got, strings.TrimPrefix(p.String(), f))
			}
			wantFile := strings.TrimSuffix(f, ".yaml") + ".want"
			if *update {
				if err := os.WriteFile(wantFile, []byte(strings.Join(got, "\n")+"\n"), 0o644); err != nil {
					t.Fatal(err)
				}
				return
			}
			data, err := os.ReadFile(wantFile)
			if err != nil {
				t.Fatal(err)
			}
			all := strings.Join(got, "\n")
			for _, w := range strings.Split(strings.TrimSpace(string(data)), "\n") {
				if w != "" && !strings.Contains(all, w) {
					t.Errorf("missing problem %q in:\n%s", w, all)
				}
			}
		})
	}
}
