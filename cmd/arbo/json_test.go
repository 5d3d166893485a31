package main

import (
	"bytes"
	"encoding/json"
	"encoding/xml"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/rogpeppe/go-internal/txtar"

	"github.com/arbo-project/arbo/plan"
	"github.com/arbo-project/arbo/view"
)

// arbo runs one command line in-process and returns stdout and the exit code.
func arbo(t *testing.T, args ...string) ([]byte, int) {
	t.Helper()
	var stdout, stderr bytes.Buffer
	env := func(string) string { return "" }
	code := run(args, strings.NewReader(""), &stdout, &stderr, env)
	return stdout.Bytes(), code
}

// decode reads one JSON document into a map, failing on trailing data.
func decode(t *testing.T, b []byte) map[string]any {
	t.Helper()
	dec := json.NewDecoder(bytes.NewReader(b))
	var doc map[string]any
	if err := dec.Decode(&doc); err != nil {
		t.Fatalf("not JSON: %v\n%s", err, b)
	}
	if dec.More() {
		t.Fatalf("more than one JSON document:\n%s", b)
	}
	return doc
}

func hasKeys(t *testing.T, what string, doc map[string]any, keys ...string) {
	t.Helper()
	for _, k := range keys {
		if _, ok := doc[k]; !ok {
			t.Errorf("%s: no key %q in %v", what, k, slices.Sorted(mapKeys(doc)))
		}
	}
}

func mapKeys(m map[string]any) func(func(string) bool) {
	return func(yield func(string) bool) {
		for k := range m {
			if !yield(k) {
				return
			}
		}
	}
}

// TestJSONDocuments runs every JSON output of the CLI through encoding/json
// and checks the keys docs/json.md documents, format_version first.
func TestJSONDocuments(t *testing.T) {
	topo := "../../examples/arboreus/topology.yaml"
	dir := t.TempDir()
	planFile := filepath.Join(dir, "plan.json")
	bad := filepath.Join(dir, "bad.yaml")
	if err := os.WriteFile(bad, []byte("version: 1\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		name     string
		args     []string
		wantCode int
		keys     []string
		check    func(t *testing.T, doc map[string]any)
	}{
		{
			name: "validate", args: []string{"validate", "--format", "json", topo},
			keys: []string{"format_version", "file", "valid", "problems", "summary"},
			check: func(t *testing.T, doc map[string]any) {
				hasKeys(t, "summary", doc["summary"].(map[string]any), "cluster", "gateways", "hosts", "jails", "tiers", "networks")
			},
		},
		{
			name: "validate-invalid", args: []string{"validate", "--format", "json", bad}, wantCode: 1,
			keys: []string{"format_version", "file", "valid", "problems"},
			check: func(t *testing.T, doc map[string]any) {
				ps := doc["problems"].([]any)
				if doc["valid"] != false || len(ps) == 0 {
					t.Fatalf("valid=%v problems=%v", doc["valid"], ps)
				}
				hasKeys(t, "problems[0]", ps[0].(map[string]any), "file", "line", "column", "path", "message")
			},
		},
		{
			name: "version", args: []string{"version", "--format", "json"},
			keys: []string{"format_version", "version", "go_version", "platform"},
		},
		{
			name: "check", args: []string{"check", "--format", "json", topo},
			keys: []string{"format_version", "file", "strict", "findings", "summary"},
		},
		{
			name: "plan", args: []string{"plan", "--offline", "--format", "json", "--out", planFile, topo},
			keys:  []string{"format_version", "kind", "cluster", "topology", "topology_sha256", "options", "machines", "summary"},
			check: checkPlanDoc,
		},
		{
			name: "show", args: []string{"show", "--format", "json", planFile},
			keys:  []string{"format_version", "kind", "cluster", "topology", "topology_sha256", "options", "machines", "summary"},
			check: checkPlanDoc,
		},
	} {
		t.Run(tc.name, func(t *testing.T) {
			out, code := arbo(t, tc.args...)
			if code != tc.wantCode {
				t.Fatalf("exit %d, want %d", code, tc.wantCode)
			}
			doc := decode(t, out)
			hasKeys(t, tc.name, doc, tc.keys...)
			if v, ok := doc["format_version"].(float64); !ok || v != float64(view.FormatVersion) {
				t.Errorf("format_version = %v, want the integer %d", doc["format_version"], view.FormatVersion)
			}
			if tc.check != nil {
				tc.check(t, doc)
			}
		})
	}
}

func checkPlanDoc(t *testing.T, doc map[string]any) {
	t.Helper()
	if doc["kind"] != "arbo-plan" {
		t.Errorf("kind = %v", doc["kind"])
	}
	s := doc["summary"].(map[string]any)
	hasKeys(t, "summary", s, "add", "change", "destroy", "activate", "changes")
	if s["changes"] != true {
		t.Errorf("a plan against fresh machines has changes: %v", s)
	}
	ms := doc["machines"].([]any)
	if len(ms) != 3 {
		t.Fatalf("%d machines, want 3", len(ms))
	}
	for _, m := range ms {
		m := m.(map[string]any)
		hasKeys(t, "machine", m, "name", "kind", "actions")
		for _, a := range m["actions"].([]any) {
			a := a.(map[string]any)
			hasKeys(t, "action", a, "action", "kind", "target")
			if a["sensitive"] == true && a["diff"] != nil {
				t.Errorf("sensitive action %v carries a diff", a["target"])
			}
		}
		// The report leaves out file contents: only a saved plan needs them.
		if fs, ok := m["files"].([]any); ok && len(fs) > 0 {
			t.Errorf("machine %v: the JSON report holds file contents", m["name"])
		}
	}
}

// TestApplyJSON: apply needs machines, so its document is checked through
// the view it prints with, for a run that failed on one machine.
func TestApplyJSON(t *testing.T) {
	var b bytes.Buffer
	r := &plan.Result{Machines: []plan.MachineResult{
		{Machine: "server1", Done: []string{"write /etc/pf.conf"}},
		{Machine: "server2", Done: []string{}, NotDone: []string{"write /etc/pf.conf"}, Error: "connection refused"},
	}}
	if err := view.ApplyJSON(&b, r); err != nil {
		t.Fatal(err)
	}
	doc := decode(t, b.Bytes())
	hasKeys(t, "apply", doc, "format_version", "machines", "failed")
	if doc["failed"] != true {
		t.Errorf("failed = %v, want true", doc["failed"])
	}
	m := doc["machines"].([]any)[1].(map[string]any)
	hasKeys(t, "machines[1]", m, "machine", "done", "not_done", "error")
}

// TestJUnitParses reads `arbo check --format junit` back as XML: one
// testsuite per rule with a testcase per machine, as the JUnit plugin reads it.
func TestJUnitParses(t *testing.T) {
	// A design with an error finding, taken from check.txtar's archive.
	ar, err := txtar.ParseFile("testdata/script/check.txtar")
	if err != nil {
		t.Fatal(err)
	}
	exposed := filepath.Join(t.TempDir(), "exposed.yaml")
	for _, f := range ar.Files {
		if f.Name == "exposed.yaml" {
			if err := os.WriteFile(exposed, f.Data, 0o644); err != nil {
				t.Fatal(err)
			}
		}
	}
	for _, tc := range []struct {
		file         string
		wantCode     int
		wantFailures bool
	}{
		{"../../examples/arboreus/topology.yaml", 0, false},
		{"../../examples/single-host/topology.yaml", 0, false},
		{exposed, 3, true},
	} {
		out, code := arbo(t, "check", "--format", "junit", tc.file)
		if code != tc.wantCode {
			t.Fatalf("%s: exit %d", tc.file, code)
		}
		var doc struct {
			XMLName  xml.Name
			Tests    int `xml:"tests,attr"`
			Failures int `xml:"failures,attr"`
			Suites   []struct {
				Name  string `xml:"name,attr"`
				Cases []struct {
					ClassName string    `xml:"classname,attr"`
					Name      string    `xml:"name,attr"`
					Failure   *struct{} `xml:"failure"`
				} `xml:"testcase"`
			} `xml:"testsuite"`
		}
		if err := xml.Unmarshal(out, &doc); err != nil {
			t.Fatalf("%s: JUnit does not parse: %v", tc.file, err)
		}
		if doc.XMLName.Local != "testsuites" || len(doc.Suites) == 0 {
			t.Fatalf("%s: root %q with %d suites", tc.file, doc.XMLName.Local, len(doc.Suites))
		}
		n, failed := 0, 0
		for _, s := range doc.Suites {
			for _, c := range s.Cases {
				n++
				if !strings.HasPrefix(c.ClassName, "arbo.check.ARBO") || c.Name == "" {
					t.Errorf("%s: testcase classname=%q name=%q", tc.file, c.ClassName, c.Name)
				}
				if c.Failure != nil {
					failed++
				}
			}
		}
		if n != doc.Tests || failed != doc.Failures || (failed > 0) != tc.wantFailures {
			t.Errorf("%s: %d testcases (%d failed), root says tests=%d failures=%d", tc.file, n, failed, doc.Tests, doc.Failures)
		}
	}
}
