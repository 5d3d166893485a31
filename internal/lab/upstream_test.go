//go:build linux

package lab

import (
	"bytes"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

func TestUpstreamFilesPinned(t *testing.T) {
	up, why := FindUpstream(".")
	if up == "" {
		if os.Getenv("CI") == "true" {
			t.Fatal("upstream: " + why)
		}
		t.Skip("upstream: " + why)
	}
	files, err := UpstreamFiles(up)
	if err != nil {
		t.Fatal(err)
	}
	if len(files) != len(hostUpstream) {
		t.Fatalf("%d files, want %d", len(files), len(hostUpstream))
	}
	byPath := map[string][]byte{}
	for _, f := range files {
		byPath[f.Path] = f.Content
	}
	if b := byPath["/usr/local/bin/ezjail-admin"]; bytes.Contains(b, []byte("EZJAIL_PREFIX")) || !bytes.Contains(b, []byte("\nezjail_prefix=/usr/local\n")) {
		t.Errorf("ezjail-admin: the Makefile's EZJAIL_PREFIX substitution is missing")
	}
	if b := byPath["/usr/libexec/lab-upstream/unbound"]; bytes.Contains(b, []byte("%%PREFIX%%")) {
		t.Errorf("unbound rc script: %%PREFIX%% left")
	}

	// A copy with one byte changed is refused, naming the file.
	tmp := t.TempDir()
	for _, u := range hostUpstream {
		b, err := os.ReadFile(filepath.Join(up, u.src))
		if err != nil {
			t.Fatal(err)
		}
		if u.src == "freebsd/libexec/rc/rc.d/pf" {
			b = append(b, '\n')
		}
		p := filepath.Join(tmp, u.src)
		if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(p, b, 0o644); err != nil {
			t.Fatal(err)
		}
	}
	_, err = UpstreamFiles(tmp)
	if err == nil || !strings.Contains(err.Error(), "rc.d/pf has sha256") || !strings.Contains(err.Error(), "refusing") {
		t.Errorf("changed rc.d/pf: %v", err)
	}
	if err := os.Remove(filepath.Join(tmp, "ezjail-3.4.2/ezjail-admin")); err != nil {
		t.Fatal(err)
	}
	if _, err := UpstreamFiles(tmp); err == nil {
		t.Error("a missing file was accepted")
	}
}
