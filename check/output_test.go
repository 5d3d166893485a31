package check

import (
	"bytes"
	"encoding/json"
	"encoding/xml"
	"net/netip"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	examples "github.com/arbo-project/arbo/internal/golden"

	"github.com/arbo-project/arbo/inventory"
)

// goldenReports are the reports whose three views are kept in testdata.
func goldenReports(t *testing.T) map[string]*Report {
	t.Helper()
	accepted := variant(t, func(c *inventory.Cluster) {
		c.Jail("db1").IPs = []netip.Addr{netip.MustParseAddr("10.20.1.21")}
		c.Accept = []inventory.Accept{{ID: "ARBO009", Machine: "cluster", Reason: "two nodes & <one> \"site\" by design ]]> ok"}}
	})
	reps := map[string]*Report{
		"arboreus":        Run(arboreus(t), Options{}),
		"arboreus-strict": Run(arboreus(t), Options{Strict: true}),
		"mixed":           Run(accepted, Options{Strict: true}),
	}
	for _, r := range reps {
		r.File = "examples/arboreus/topology.yaml" // as the CLI would be given it
	}
	return reps
}

func TestGolden(t *testing.T) {
	for name, r := range goldenReports(t) {
		var txt, col, js, ju bytes.Buffer
		if err := WriteText(&txt, r, Plain); err != nil {
			t.Fatal(err)
		}
		if err := WriteText(&col, r, ANSI); err != nil {
			t.Fatal(err)
		}
		if err := WriteJSON(&js, r); err != nil {
			t.Fatal(err)
		}
		if err := WriteJUnit(&ju, r); err != nil {
			t.Fatal(err)
		}
		examples.Check(t, name+".txt", txt.Bytes())
		examples.Check(t, name+".color.txt", col.Bytes())
		examples.Check(t, name+".json", js.Bytes())
		examples.Check(t, name+".xml", ju.Bytes())
	}
}

func TestTextShape(t *testing.T) {
	var b bytes.Buffer
	r := Run(arboreus(t), Options{})
	r.File = "topology.yaml"
	if err := WriteText(&b, r, Plain); err != nil {
		t.Fatal(err)
	}
	lines := strings.Split(strings.TrimRight(b.String(), "\n"), "\n")
	if lines[0] != "cluster" || !strings.HasPrefix(lines[1], "  warning ARBO009 app: ") || !strings.HasSuffix(lines[1], " (topology.yaml:64:14)") {
		t.Errorf("first group:\n%s", b.String())
	}
	if last := lines[len(lines)-1]; last != "0 errors, 1 warning, 1 info" {
		t.Errorf("summary %q", last)
	}
	var empty bytes.Buffer
	if err := WriteText(&empty, &Report{}, ANSI); err != nil {
		t.Fatal(err)
	}
	if empty.String() != "0 errors, 0 warnings, 0 infos\n" {
		t.Errorf("empty report: %q", empty.String())
	}
}

func TestJSONShape(t *testing.T) {
	r := goldenReports(t)["mixed"]
	var b bytes.Buffer
	if err := WriteJSON(&b, r); err != nil {
		t.Fatal(err)
	}
	var doc struct {
		FormatVersion int    `json:"format_version"`
		File          string `json:"file"`
		Strict        bool   `json:"strict"`
		Findings      []map[string]any
		Summary       map[string]any
	}
	dec := json.NewDecoder(&b)
	dec.DisallowUnknownFields()
	if err := dec.Decode(&doc); err != nil {
		t.Fatal(err)
	}
	if doc.FormatVersion != 1 || !doc.Strict || doc.File == "" {
		t.Errorf("header: %+v", doc)
	}
	keys := []string{"id", "severity", "machine", "subject", "message", "file", "line", "column", "accepted", "accept_reason"}
	for _, f := range doc.Findings {
		if len(f) != len(keys) {
			t.Errorf("finding has %d fields, want %d: %v", len(f), len(keys), f)
		}
		for _, k := range keys {
			if _, ok := f[k]; !ok {
				t.Errorf("finding lacks %q: %v", k, f)
			}
		}
	}
	if doc.Summary["errors"] != 1.0 || doc.Summary["accepted"] != 1.0 || doc.Summary["failed"] != true {
		t.Errorf("summary %v, want 1 error (ARBO003), 1 accepted (ARBO009), failed", doc.Summary)
	}
	// An empty report is still a document with a list, never null.
	b.Reset()
	if err := WriteJSON(&b, &Report{}); err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(b.String(), `"findings": []`) {
		t.Errorf("empty findings: %s", b.String())
	}
}

// TestJUnitShape reads the document back the way the Jenkins JUnit plugin
// does: testcase status from its failure/skipped children.
func TestJUnitShape(t *testing.T) {
	type msg struct {
		Message string `xml:"message,attr"`
	}
	type tc struct {
		ClassName string `xml:"classname,attr"`
		Name      string `xml:"name,attr"`
		Failure   *msg   `xml:"failure"`
		Skipped   *msg   `xml:"skipped"`
		SystemOut string `xml:"system-out"`
	}
	type doc struct {
		XMLName xml.Name `xml:"testsuites"`
		Tests   int      `xml:"tests,attr"`
		Suites  []struct {
			Name     string `xml:"name,attr"`
			Tests    int    `xml:"tests,attr"`
			Failures int    `xml:"failures,attr"`
			Skipped  int    `xml:"skipped,attr"`
			Cases    []tc   `xml:"testcase"`
		} `xml:"testsuite"`
	}
	tests := []struct {
		report                    string
		tests, failures, skipped  int
		failing, skipping, noting []string // "classname name"
	}{
		{"arboreus", 21, 0, 0, nil, nil, []string{"arbo.check.ARBO009 cluster", "arbo.check.ARBO011 gate"}},
		{"arboreus-strict", 21, 1, 0, []string{"arbo.check.ARBO009 cluster"}, nil, []string{"arbo.check.ARBO011 gate"}},
		{"mixed", 21, 1, 1, []string{"arbo.check.ARBO003 server1"}, []string{"arbo.check.ARBO009 cluster"}, []string{"arbo.check.ARBO011 gate"}},
	}
	reps := goldenReports(t)
	for _, tt := range tests {
		t.Run(tt.report, func(t *testing.T) {
			var b bytes.Buffer
			if err := WriteJUnit(&b, reps[tt.report]); err != nil {
				t.Fatal(err)
			}
			var d doc
			if err := xml.Unmarshal(b.Bytes(), &d); err != nil {
				t.Fatalf("not XML: %v\n%s", err, b.String())
			}
			if len(d.Suites) != 1 || d.Suites[0].Name != "arbo.check" {
				t.Fatalf("suites: %+v", d.Suites)
			}
			s := d.Suites[0]
			if d.Tests != tt.tests || s.Tests != tt.tests || s.Failures != tt.failures || s.Skipped != tt.skipped || len(s.Cases) != tt.tests {
				t.Errorf("counts: tests %d/%d (cases %d), failures %d, skipped %d; want %d, %d, %d",
					d.Tests, s.Tests, len(s.Cases), s.Failures, s.Skipped, tt.tests, tt.failures, tt.skipped)
			}
			var failing, skipping, noting []string
			for _, c := range s.Cases {
				id := c.ClassName + " " + c.Name
				if c.Failure != nil {
					failing = append(failing, id)
				}
				if c.Skipped != nil {
					skipping = append(skipping, id)
					if !strings.HasPrefix(c.Skipped.Message, "accepted: ") {
						t.Errorf("skipped message %q", c.Skipped.Message)
					}
				}
				if c.Failure == nil && c.Skipped == nil && c.SystemOut != "" {
					noting = append(noting, id)
				}
			}
			for _, cmp := range []struct {
				what      string
				got, want []string
			}{{"failing", failing, tt.failing}, {"skipped", skipping, tt.skipping}, {"passing with output", noting, tt.noting}} {
				if strings.Join(cmp.got, ",") != strings.Join(cmp.want, ",") {
					t.Errorf("%s: %q, want %q", cmp.what, cmp.got, cmp.want)
				}
			}
			xmllint(t, b.Bytes())
		})
	}
}

// xmllint validates well-formedness with libxml2 when it is installed (CI
// installs libxml2-utils); encoding/xml above already parsed the document.
func xmllint(t *testing.T, doc []byte) {
	t.Helper()
	path, err := exec.LookPath("xmllint")
	if err != nil {
		t.Log("xmllint not installed; encoding/xml round trip only")
		return
	}
	f := filepath.Join(t.TempDir(), "report.xml")
	if err := os.WriteFile(f, doc, 0o644); err != nil {
		t.Fatal(err)
	}
	if out, err := exec.Command(path, "--noout", f).CombinedOutput(); err != nil {
		t.Fatalf("xmllint: %v\n%s", err, out)
	}
}

// A reason holding a NUL, an escape sequence, a bidi override and bytes that
// are not UTF-8 (issue 11, item 4): the JUnit file still parses and the text
// view shows the characters escaped, never raw.
func TestHostileAcceptReason(t *testing.T) {
	data, err := os.ReadFile(filepath.Join("..", "examples", "single-host", "topology.yaml"))
	if err != nil {
		t.Fatal(err)
	}
	hostile := strings.Replace(string(data),
		`reason: "one host by design: losing it loses the cluster"`,
		`reason: "nul \0 then \e[2J\e[HNo changes. \u202e and \x9b2J"`, 1)
	if hostile == string(data) {
		t.Fatal("the example no longer holds the accept entry this test changes")
	}
	c, err := inventory.Parse("topology.yaml", []byte(hostile))
	if err != nil {
		t.Fatal(err)
	}
	r := Run(c, Options{})
	r.File = "topology.yaml"
	var txt, col, ju bytes.Buffer
	if err := WriteText(&txt, r, Plain); err != nil {
		t.Fatal(err)
	}
	if err := WriteText(&col, r, ANSI); err != nil {
		t.Fatal(err)
	}
	if err := WriteJUnit(&ju, r); err != nil {
		t.Fatal(err)
	}
	for name, out := range map[string]string{"text": txt.String(), "junit": ju.String()} {
		if strings.ContainsAny(out, "\x00\x1b\u009b\u202e") {
			t.Errorf("%s view holds raw control characters:\n%q", name, out)
		}
		if !strings.Contains(out, `nul \x00 then \x1b[2J\x1b[HNo changes. \u202e and \x9b2J`) {
			t.Errorf("%s view does not show the reason escaped:\n%s", name, out)
		}
	}
	if n := strings.Count(col.String(), "\x1b[2J"); n != 0 {
		t.Errorf("colour view clears the screen %d times", n)
	}
	var d struct {
		XMLName xml.Name `xml:"testsuites"`
	}
	if err := xml.Unmarshal(ju.Bytes(), &d); err != nil {
		t.Fatalf("JUnit is not XML: %v\n%q", err, ju.String())
	}
	xmllint(t, ju.Bytes())
}
