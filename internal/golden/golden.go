// Package golden is the one golden-file helper of arbo's tests: rendered
// configuration is compared byte for byte with testdata/golden/<name>, and
// `go test ./PKG -update` rewrites the files (review the diff before
// committing it).
package golden

import (
	"bytes"
	"flag"
	"os"
	"path/filepath"
	"runtime"
	"testing"

	"github.com/arbo-project/arbo/inventory"
)

// Update is the -update flag of every test binary that imports golden.
var Update = flag.Bool("update", false, "rewrite the golden files")

// Check compares got with testdata/golden/<name>, or rewrites it.
func Check(t testing.TB, name string, got []byte) {
	t.Helper()
	p := filepath.Join("testdata", "golden", name)
	if *Update {
		if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(p, got, 0o644); err != nil {
			t.Fatal(err)
		}
		return
	}
	want, err := os.ReadFile(p)
	if err != nil {
		t.Fatalf("%v (run go test with -update to create it)", err)
	}
	if !bytes.Equal(got, want) {
		t.Errorf("%s differs from the golden file:\n--- got\n%s\n--- want\n%s", name, got, want)
	}
}

// Example loads examples/<name>/topology.yaml of the repository.
func Example(t testing.TB, name string) *inventory.Cluster {
	t.Helper()
	c, err := inventory.Load(ExamplePath(name))
	if err != nil {
		t.Fatalf("%s: %v", name, err)
	}
	return c
}

// ExamplePath is the path of examples/<name>/topology.yaml, wherever the
// test runs from.
func ExamplePath(name string) string {
	_, file, _, _ := runtime.Caller(0)
	return filepath.Join(filepath.Dir(file), "..", "..", "examples", name, "topology.yaml")
}

// Shared is the path of ../shared/<rel> beside the module root, wherever
// the test runs from. Without it the test skips with the reason, and fails
// under CI=true, where ../shared is always present.
func Shared(t testing.TB, rel ...string) string {
	t.Helper()
	_, file, _, _ := runtime.Caller(0)
	p := filepath.Join(append([]string{filepath.Dir(file), "..", "..", "..", "shared"}, rel...)...)
	if _, err := os.Stat(p); err != nil {
		if os.Getenv("CI") == "true" {
			t.Fatalf("../shared beside the module root is missing: %v", err)
		}
		t.Skipf("../shared beside the module root is missing: %v", err)
	}
	return p
}
