package plan

import (
	"context"
	"strings"
	"testing"

	"github.com/arbo-project/arbo/state"
)

// Read sends the desired paths and the manifest's together; the files only
// the manifest names (what arbo wrote before and may now remove) must still
// be read, and a broken manifest must still stop the read.
func TestReadManifestPaths(t *testing.T) {
	manifest := `{"format_version":1,"cluster":"c","machine":"h1","files":[` +
		`{"path":"/etc/wanted.conf","sha256":"x"},{"path":"/etc/old.conf","sha256":"y"},{"path":"/etc/gone.conf","sha256":"z"}]}`
	tests := []struct {
		name     string
		manifest string
		wantErr  string
		want     map[string]string // path → content; "-" = absent
	}{
		{"no manifest", "", "", map[string]string{"/etc/wanted.conf": "new", "/etc/old.conf": "-"}},
		{"manifest adds its files", manifest, "", map[string]string{"/etc/wanted.conf": "new", "/etc/old.conf": "old", "/etc/gone.conf": "-"}},
		{"broken manifest", "{", "move it away", nil},
		{"unknown format", `{"format_version":9}`, "this arbo knows 1", nil},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			m := newMem()
			m.files["/etc/wanted.conf"] = memFile{content: []byte("new"), mode: 0o644}
			m.files["/etc/old.conf"] = memFile{content: []byte("old"), mode: 0o600}
			if tt.manifest != "" {
				m.files[ManifestPath] = memFile{content: []byte(tt.manifest), mode: 0o600}
			}
			d := &state.Machine{Name: "h1", Kind: state.KindHost, Files: []state.File{{Path: "/etc/wanted.conf", Mode: 0o644}}}
			snap, err := Read(context.Background(), m, d)
			if tt.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tt.wantErr) || !strings.Contains(err.Error(), "machine h1") {
					t.Fatalf("Read = %v, want an error with %q", err, tt.wantErr)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			for p, want := range tt.want {
				f, ok := snap.Files[p]
				switch {
				case want == "-" && f.Exists:
					t.Errorf("%s: exists, want absent", p)
				case want == "-":
					if !ok && strings.Contains(tt.manifest, p) {
						t.Errorf("%s: named by the manifest but not read", p)
					}
				case !ok || !f.Exists || string(f.Content) != want:
					t.Errorf("%s: %+v, want content %q", p, f, want)
				}
			}
			if tt.manifest == "" {
				if _, ok := snap.Files["/etc/old.conf"]; ok {
					t.Error("/etc/old.conf read without a manifest naming it")
				}
			}
			if f := snap.Files["/etc/old.conf"]; f.Exists && f.Mode != 0o600 {
				t.Errorf("/etc/old.conf mode %o, want 600 (its lstat)", f.Mode)
			}
		})
	}
}
