package render

import (
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"

	"github.com/arbo-project/arbo/internal/golden"
	"github.com/arbo-project/arbo/state"
)

// A render that fails part way (here: a file name the local file system
// refuses, after other files were written) changes nothing: a previous
// render stays byte for byte, a new directory is not created, and no
// temporary tree is left beside it (issue 11, item 10).
func TestWriteDirAllOrNothing(t *testing.T) {
	c := golden.Example(t, "arboreus")
	ms, err := Cluster(c, Options{Cookie: []byte(testCookie)})
	if err != nil {
		t.Fatal(err)
	}
	bad := append([]state.Machine(nil), ms...)
	last := len(bad) - 1
	bad[last].Files = append(append([]state.File(nil), bad[last].Files...),
		state.File{Path: "/usr/local/etc/" + strings.Repeat("x", 300), Mode: 0o644, Content: []byte("x")})

	parent := t.TempDir()
	fresh := filepath.Join(parent, "fresh")
	if err := WriteDir(fresh, c, bad, nil); err == nil || !strings.Contains(err.Error(), "file name too long") {
		t.Fatalf("want the file system's refusal, got %v", err)
	}
	if _, err := os.Stat(fresh); !os.IsNotExist(err) {
		t.Errorf("a failed first render left %s: %v", fresh, err)
	}

	prev := filepath.Join(parent, "prev")
	renderTree(t, c, Options{Cookie: []byte(testCookie)}, prev)
	before := tree(t, prev)
	if err := WriteDir(prev, c, bad, nil); err == nil {
		t.Fatal("the failing render succeeded")
	}
	if after := tree(t, prev); !reflect.DeepEqual(before, after) {
		t.Errorf("a failed render changed the previous one (%d files before, %d after)", len(before), len(after))
	}
	ents, _ := os.ReadDir(parent)
	var names []string
	for _, e := range ents {
		names = append(names, e.Name())
	}
	if !reflect.DeepEqual(names, []string{"prev"}) {
		t.Errorf("beside the output: %v, want only prev", names)
	}

	// A good render then replaces it whole, and keeps the directory's mode.
	if err := os.Chmod(prev, 0o750); err != nil {
		t.Fatal(err)
	}
	if err := WriteDir(prev, c, ms[:1], nil); err != nil {
		t.Fatal(err)
	}
	if st, err := os.Stat(prev); err != nil || st.Mode().Perm() != 0o750 {
		t.Errorf("mode after the swap: %v %v", st.Mode(), err)
	}
	if ents, _ := os.ReadDir(parent); len(ents) != 1 {
		t.Errorf("left beside the output: %v", ents)
	}
}

// A previous render holding a file its manifest does not list is refused,
// not replaced: the swap would lose that file.
func TestWriteDirKeepsUnlistedFiles(t *testing.T) {
	dir := t.TempDir()
	c := golden.Example(t, "arboreus")
	ms := renderTree(t, c, Options{Cookie: []byte(testCookie)}, dir)
	notes := filepath.Join(dir, "server1", "NOTES")
	if err := os.WriteFile(notes, []byte("mine"), 0o644); err != nil {
		t.Fatal(err)
	}
	err := WriteDir(dir, c, ms, nil)
	if err == nil || !strings.Contains(err.Error(), "server1/NOTES") {
		t.Fatalf("want a refusal naming server1/NOTES, got %v", err)
	}
	if b, err := os.ReadFile(notes); err != nil || string(b) != "mine" {
		t.Errorf("NOTES: %q %v", b, err)
	}
}

// Through a symlink, the directory it names is replaced, not the link.
func TestWriteDirThroughSymlink(t *testing.T) {
	parent := t.TempDir()
	real := filepath.Join(parent, "real")
	if err := os.Mkdir(real, 0o755); err != nil {
		t.Fatal(err)
	}
	link := filepath.Join(parent, "link")
	if err := os.Symlink(real, link); err != nil {
		t.Fatal(err)
	}
	c := golden.Example(t, "arboreus")
	renderTree(t, c, Options{Cookie: []byte(testCookie)}, link)
	if st, err := os.Lstat(link); err != nil || st.Mode()&os.ModeSymlink == 0 {
		t.Fatalf("the link was replaced: %v %v", st, err)
	}
	if _, err := os.Stat(filepath.Join(real, ManifestName)); err != nil {
		t.Error(err)
	}
}
