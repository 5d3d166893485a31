package templates

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
)

func TestEmbeddedParse(t *testing.T) {
	s := Default()
	if len(Names()) == 0 {
		t.Fatal("no embedded templates")
	}
	for _, n := range Names() {
		if _, ok := s.tmpl[n]; !ok {
			t.Errorf("%s not loaded", n)
		}
	}
}

func TestOverride(t *testing.T) {
	dir := t.TempDir()
	name := Names()[0]
	if err := os.WriteFile(filepath.Join(dir, name), []byte("custom {{len .}}"), 0o644); err != nil {
		t.Fatal(err)
	}
	s, err := Load(dir)
	if err != nil {
		t.Fatal(err)
	}
	out, err := s.Execute(name, "abc")
	if err != nil {
		t.Fatal(err)
	}
	if string(out) != "custom 3" {
		t.Errorf("override not used: %q", out)
	}
}

func TestOverrideUnknownName(t *testing.T) {
	dir := t.TempDir()
	if err := os.WriteFile(filepath.Join(dir, "pf.conf.tmpI"), nil, 0o644); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(dir, "nosuch.tmpl"), nil, 0o644); err != nil {
		t.Fatal(err)
	}
	_, err := Load(dir)
	if err == nil || !strings.Contains(err.Error(), "nosuch.tmpl") {
		t.Fatalf("want an error naming the unknown template, got %v", err)
	}
}

func TestOverrideBadSyntaxNamesFile(t *testing.T) {
	dir := t.TempDir()
	name := Names()[0]
	if err := os.WriteFile(filepath.Join(dir, name), []byte("{{ .Oops "), 0o644); err != nil {
		t.Fatal(err)
	}
	_, err := Load(dir)
	if err == nil || !strings.Contains(err.Error(), filepath.Join(dir, name)) {
		t.Fatalf("want an error naming %s, got %v", name, err)
	}
}
