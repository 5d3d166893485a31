package render

import (
	"bytes"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"testing"

	"github.com/arbo-project/arbo/dns"
	"github.com/arbo-project/arbo/examples/gen"
	"github.com/arbo-project/arbo/inventory"
	"github.com/arbo-project/arbo/templates"
)

// The files are written side by side: every rendered file is on disk once,
// with its bytes and mode, and nothing else is (the exports and the
// manifest aside).
func TestWriteDirEveryFile(t *testing.T) {
	c, err := inventory.Parse("gen.yaml", gen.Topology(30, 5))
	if err != nil {
		t.Fatal(err)
	}
	dir := filepath.Join(t.TempDir(), "out")
	ms := renderTree(t, c, Options{Templates: templates.Default(), Cookie: []byte(testCookie)}, dir)
	want := map[string]bool{}
	for _, m := range ms {
		for _, f := range m.Files {
			p := filepath.Join(dir, m.Name, filepath.FromSlash(f.Path))
			want[p] = true
			st, err := os.Stat(p)
			if err != nil {
				t.Fatal(err)
			}
			mode := f.Mode.Perm()
			if f.Sensitive {
				mode &= 0o600
			}
			if st.Mode().Perm() != mode {
				t.Errorf("%s: mode %v, want %v", p, st.Mode().Perm(), mode)
			}
			if b, err := os.ReadFile(p); err != nil || !bytes.Equal(b, f.Content) {
				t.Errorf("%s: content differs (%v)", p, err)
			}
		}
	}
	if len(want) < 30*5 {
		t.Fatalf("only %d files rendered", len(want))
	}
	err = filepath.WalkDir(dir, func(p string, d fs.DirEntry, err error) error {
		if err != nil || d.IsDir() {
			return err
		}
		rel, _ := filepath.Rel(dir, p)
		if !want[p] && rel != ManifestName && filepath.Dir(rel) != "exports" {
			t.Errorf("unexpected file %s", rel)
		}
		delete(want, p)
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	if len(want) != 0 {
		t.Errorf("%d files missing", len(want))
	}
}

// A file that cannot be made durable fails the render instead of being
// reported as written.
func TestSyncPathsReportsFailure(t *testing.T) {
	ok := filepath.Join(t.TempDir(), "f")
	if err := os.WriteFile(ok, []byte("x"), 0o644); err != nil {
		t.Fatal(err)
	}
	if err := syncPaths([]string{ok, filepath.Dir(ok)}); err != nil {
		t.Fatalf("sync of a file and its directory: %v", err)
	}
	if err := syncPaths([]string{ok, filepath.Join(filepath.Dir(ok), "missing")}); err == nil {
		t.Fatal("a missing path synced without error")
	}
}

// BenchmarkWriteDir is render -o's writing alone, at 100 hosts × 20 jails
// (about 10,000 files), into a fresh directory each time.
func BenchmarkWriteDir(b *testing.B) {
	c, err := inventory.Parse("gen.yaml", gen.Topology(100, 20))
	if err != nil {
		b.Fatal(err)
	}
	ms, err := Cluster(c, Options{Templates: templates.Default(), Cookie: []byte(testCookie)})
	if err != nil {
		b.Fatal(err)
	}
	zones, err := dns.ZoneFiles(c, templates.Default())
	if err != nil {
		b.Fatal(err)
	}
	root := b.TempDir()
	n := 0
	for b.Loop() {
		n++
		if err := WriteDir(filepath.Join(root, fmt.Sprintf("out%d", n)), c, ms, zones); err != nil {
			b.Fatal(err)
		}
	}
}
