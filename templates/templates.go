// Package templates holds the text templates arbo renders configuration
// files from. They are embedded in the binary; --templates DIR overrides any
// of them by file name, so that a site can change a file's layout without
// forking arbo.
package templates

import (
	"bytes"
	"embed"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"text/template"
)

//go:embed files/*.tmpl
var embedded embed.FS

// Set is a loaded set of templates.
type Set struct {
	tmpl      map[string]*template.Template
	overrides map[string]string // name → file it came from
}

// Funcs available to every template.
var funcs = template.FuncMap{
	"join":  strings.Join,
	"quote": func(s string) string { return `"` + s + `"` },
	"upper": strings.ToUpper,
}

// Names lists the embedded template names.
func Names() []string {
	ents, _ := fs.ReadDir(embedded, "files")
	var out []string
	for _, e := range ents {
		out = append(out, e.Name())
	}
	sort.Strings(out)
	return out
}

// Default returns the embedded set.
func Default() *Set {
	s, err := Load("")
	if err != nil {
		panic(fmt.Sprintf("embedded templates do not parse: %v", err)) // a build defect, caught by tests
	}
	return s
}

// Load returns the embedded templates with any file of the same name in dir
// taking its place. A file in dir that matches no embedded template is an
// error: a typo would otherwise silently do nothing.
func Load(dir string) (*Set, error) {
	s := &Set{tmpl: map[string]*template.Template{}, overrides: map[string]string{}}
	for _, name := range Names() {
		b, err := embedded.ReadFile("files/" + name)
		if err != nil {
			return nil, err
		}
		t, err := template.New(name).Funcs(funcs).Option("missingkey=error").Parse(string(b))
		if err != nil {
			return nil, fmt.Errorf("embedded template %s: %w", name, err)
		}
		s.tmpl[name] = t
	}
	if dir == "" {
		return s, nil
	}
	ents, err := os.ReadDir(dir)
	if err != nil {
		return nil, fmt.Errorf("--templates: %w", err)
	}
	for _, e := range ents {
		if e.IsDir() || !strings.HasSuffix(e.Name(), ".tmpl") {
			continue
		}
		if _, ok := s.tmpl[e.Name()]; !ok {
			return nil, fmt.Errorf("--templates: %s: no embedded template has this name (known: %s)", filepath.Join(dir, e.Name()), strings.Join(Names(), ", "))
		}
		path := filepath.Join(dir, e.Name())
		b, err := os.ReadFile(path)
		if err != nil {
			return nil, fmt.Errorf("--templates: %w", err)
		}
		t, err := template.New(e.Name()).Funcs(funcs).Option("missingkey=error").Parse(string(b))
		if err != nil {
			return nil, fmt.Errorf("--templates: %s: %w", path, err)
		}
		s.tmpl[e.Name()] = t
		s.overrides[e.Name()] = path
	}
	return s, nil
}

// Execute renders the named template with data.
func (s *Set) Execute(name string, data any) ([]byte, error) {
	t, ok := s.tmpl[name]
	if !ok {
		return nil, errors.New("templates: no template " + name)
	}
	var b bytes.Buffer
	if err := t.Execute(&b, data); err != nil {
		if p, ok := s.overrides[name]; ok {
			return nil, fmt.Errorf("template %s (from %s): %w", name, p, err)
		}
		return nil, fmt.Errorf("template %s: %w", name, err)
	}
	// A copy of the exact size: the buffer grew by doubling, and a plan
	// keeps every machine's files at once (issue 17: a large cluster's
	// pf.conf files are a quarter of a megabyte each).
	return bytes.Clone(b.Bytes()), nil
}
