package check

import (
	"encoding/json"
	"encoding/xml"
	"fmt"
	"io"
	"strings"

	"github.com/arbo-project/arbo/inventory"
	"github.com/arbo-project/arbo/ui"
)

// Style holds the escape sequences the text view wraps words in. The CLI
// decides whether colour is on (DESIGN.md: --color, NO_COLOR,
// ARBO_FORCE_COLOR) and passes Plain or ANSI.
type Style struct {
	Error, Warning, Info, Accepted, Heading, Reset string
}

// Plain is no colour at all.
var Plain = Style{}

// ANSI colours: red errors, yellow warnings, cyan infos, dim accepted
// findings, bold machine headings.
var ANSI = Style{Error: "\x1b[31m", Warning: "\x1b[33m", Info: "\x1b[36m", Accepted: "\x1b[2m", Heading: "\x1b[1m", Reset: "\x1b[0m"}

func (s Style) wrap(code, text string) string {
	if code == "" {
		return text
	}
	return code + text + s.Reset
}

func (s Style) severity(sev Severity) string {
	switch sev {
	case Error:
		return s.wrap(s.Error, string(sev))
	case Warning:
		return s.wrap(s.Warning, string(sev))
	}
	return s.wrap(s.Info, string(sev))
}

// location is "file:line:col", or the file alone without a position.
func location(file string, p inventory.Pos) string {
	if p.Line == 0 {
		return file
	}
	return fmt.Sprintf("%s:%d:%d", file, p.Line, p.Col)
}

// WriteText writes the findings grouped per machine, "cluster" first and
// then the machines in topology order, one line each:
//
//	cluster
//	  warning ARBO009 app: with server1 or server2 down, … (topology.yaml:64:14)
//
// then a summary line: "0 errors, 1 warning, 1 info" (+ ", 2 accepted").
// Machines without findings are left out.
func WriteText(w io.Writer, r *Report, st Style) error {
	var b strings.Builder
	last := ""
	for i, f := range r.Findings {
		if i == 0 || f.Machine != last {
			if i > 0 {
				b.WriteString("\n")
			}
			b.WriteString(st.wrap(st.Heading, ui.EscapeLine(f.Machine)))
			b.WriteString("\n")
			last = f.Machine
		}
		// Subject, message and reason carry topology text: shown escaped
		// (ui.Escape), so that no reason can clear the screen or print a
		// fake "No changes" (issue 11, item 4).
		line := ui.EscapeLine(fmt.Sprintf("%s %s: %s (%s)", f.ID, f.Subject, f.Message, location(r.File, f.Pos)))
		if f.Accepted {
			b.WriteString("  ")
			b.WriteString(st.wrap(st.Accepted, fmt.Sprintf("%s %s [accepted: %s]", f.Severity, line, ui.EscapeLine(f.AcceptReason))))
		} else {
			b.WriteString("  ")
			b.WriteString(st.severity(f.Severity))
			b.WriteString(" ")
			b.WriteString(line)
		}
		b.WriteString("\n")
	}
	if len(r.Findings) > 0 {
		b.WriteString("\n")
	}
	b.WriteString(Summary(r))
	b.WriteString("\n")
	_, err := io.WriteString(w, b.String())
	return err
}

// Summary is the one-line tally: unaccepted findings by severity, then the
// accepted ones when there are any.
func Summary(r *Report) string {
	e, wn, i, a := r.Counts()
	s := fmt.Sprintf("%s, %s, %s", plural(e, "error"), plural(wn, "warning"), plural(i, "info"))
	if a > 0 {
		s += fmt.Sprintf(" (%d accepted)", a)
	}
	if r.Strict {
		s += " [strict]"
	}
	return s
}

func plural(n int, word string) string {
	if n == 1 {
		return "1 " + word
	}
	return fmt.Sprintf("%d %ss", n, word)
}

// JSONFormatVersion is the version of the JSON document; it changes only
// when a field changes meaning or goes away.
const JSONFormatVersion = 1

type jsonReport struct {
	FormatVersion int           `json:"format_version"`
	File          string        `json:"file"`
	Strict        bool          `json:"strict"`
	Findings      []jsonFinding `json:"findings"`
	Summary       jsonSummary   `json:"summary"`
}

type jsonFinding struct {
	ID           string `json:"id"`
	Severity     string `json:"severity"`
	Machine      string `json:"machine"`
	Subject      string `json:"subject"`
	Message      string `json:"message"`
	File         string `json:"file"`
	Line         int    `json:"line"`
	Column       int    `json:"column"`
	Accepted     bool   `json:"accepted"`
	AcceptReason string `json:"accept_reason"`
}

type jsonSummary struct {
	Errors   int  `json:"errors"`
	Warnings int  `json:"warnings"`
	Infos    int  `json:"infos"`
	Accepted int  `json:"accepted"`
	Failed   bool `json:"failed"`
}

// WriteJSON writes the report as one JSON document (docs/json.md, "arbo
// check --format json").
func WriteJSON(w io.Writer, r *Report) error {
	e, wn, i, a := r.Counts()
	doc := jsonReport{FormatVersion: JSONFormatVersion, File: r.File, Strict: r.Strict,
		Findings: make([]jsonFinding, 0, len(r.Findings)),
		Summary:  jsonSummary{Errors: e, Warnings: wn, Infos: i, Accepted: a, Failed: r.HasErrors()}}
	for _, f := range r.Findings {
		doc.Findings = append(doc.Findings, jsonFinding{ID: f.ID, Severity: string(f.Severity), Machine: f.Machine,
			Subject: f.Subject, Message: f.Message, File: r.File, Line: f.Pos.Line, Column: f.Pos.Col,
			Accepted: f.Accepted, AcceptReason: f.AcceptReason})
	}
	enc := json.NewEncoder(w)
	enc.SetIndent("", "  ")
	if err := enc.Encode(doc); err != nil {
		return fmt.Errorf("write check report as JSON: %w", err)
	}
	return nil
}

// JUnit document, the shape the Jenkins JUnit plugin reads
// (research/ux-conventions.md §4.1).
type junitSuites struct {
	XMLName  xml.Name     `xml:"testsuites"`
	Name     string       `xml:"name,attr"`
	Tests    int          `xml:"tests,attr"`
	Failures int          `xml:"failures,attr"`
	Errors   int          `xml:"errors,attr"`
	Skipped  int          `xml:"skipped,attr"`
	Suites   []junitSuite `xml:"testsuite"`
}

type junitSuite struct {
	Name     string      `xml:"name,attr"`
	Tests    int         `xml:"tests,attr"`
	Failures int         `xml:"failures,attr"`
	Errors   int         `xml:"errors,attr"`
	Skipped  int         `xml:"skipped,attr"`
	Time     string      `xml:"time,attr"`
	Cases    []junitCase `xml:"testcase"`
}

type junitCase struct {
	ClassName string        `xml:"classname,attr"`
	Name      string        `xml:"name,attr"`
	Time      string        `xml:"time,attr"`
	Failure   *junitMessage `xml:"failure,omitempty"`
	Skipped   *junitMessage `xml:"skipped,omitempty"`
	SystemOut *junitText    `xml:"system-out,omitempty"`
}

type junitMessage struct {
	Message string `xml:"message,attr"`
	Type    string `xml:"type,attr,omitempty"`
	Body    string `xml:",cdata"`
}

// junitText is an element holding only text, written as CDATA like the
// bodies, so that multi-line output stays readable in the file.
type junitText struct {
	Text string `xml:",cdata"`
}

// WriteJUnit writes one <testsuite name="arbo.check"> holding a testcase
// per rule × machine it applies to (classname arbo.check.<ID>, name the
// machine), passing ones included. A testcase fails (<failure>) when it has
// an unaccepted error-level finding (warnings count under --strict, where
// they are errors); otherwise it is skipped (<skipped message="accepted:
// …">) when it has accepted findings; otherwise it passes, with any
// warning or info in <system-out>, since a warning does not fail a run.
func WriteJUnit(w io.Writer, r *Report) error {
	suite := junitSuite{Name: "arbo.check", Time: "0"}
	for _, cs := range r.Cases {
		jc := junitCase{ClassName: "arbo.check." + cs.ID, Name: ui.EscapeLine(cs.Machine), Time: "0"}
		var failing, accepted, notes []Finding
		for _, f := range cs.Findings {
			switch {
			case f.Accepted:
				accepted = append(accepted, f)
			case f.Fails():
				failing = append(failing, f)
			default:
				notes = append(notes, f)
			}
		}
		var all strings.Builder
		for _, f := range cs.Findings {
			// encoding/xml writes CDATA unfiltered: a NUL or ESC from the
			// topology would make the file invalid XML, so every text
			// goes through ui.EscapeLine, whose output XML 1.0 allows.
			all.WriteString(ui.EscapeLine(fmt.Sprintf("%s %s %s: %s (%s)", f.Severity, f.ID, f.Subject, f.Message, location(r.File, f.Pos))))
			if f.Accepted {
				fmt.Fprintf(&all, " [accepted: %s]", ui.EscapeLine(f.AcceptReason))
			}
			all.WriteString("\n")
		}
		switch {
		case len(failing) > 0:
			msg := ui.EscapeLine(failing[0].Message)
			if len(failing) > 1 {
				msg += fmt.Sprintf(" (and %d more)", len(failing)-1)
			}
			jc.Failure = &junitMessage{Message: msg, Type: cs.ID, Body: ui.Escape(cs.Title) + "\n" + all.String()}
			suite.Failures++
		case len(accepted) > 0:
			reasons := make([]string, 0, len(accepted))
			for _, f := range accepted {
				if r := ui.EscapeLine(f.AcceptReason); !containsString(reasons, r) {
					reasons = append(reasons, r)
				}
			}
			jc.Skipped = &junitMessage{Message: "accepted: " + strings.Join(reasons, "; "), Body: all.String()}
			suite.Skipped++
		case len(notes) > 0:
			jc.SystemOut = &junitText{all.String()}
		}
		suite.Tests++
		suite.Cases = append(suite.Cases, jc)
	}
	doc := junitSuites{Name: "arbo check", Tests: suite.Tests, Failures: suite.Failures, Skipped: suite.Skipped,
		Suites: []junitSuite{suite}}
	if _, err := io.WriteString(w, xml.Header); err != nil {
		return fmt.Errorf("write check report as JUnit: %w", err)
	}
	enc := xml.NewEncoder(w)
	enc.Indent("", "  ")
	if err := enc.Encode(doc); err != nil {
		return fmt.Errorf("write check report as JUnit: %w", err)
	}
	if _, err := io.WriteString(w, "\n"); err != nil {
		return fmt.Errorf("write check report as JUnit: %w", err)
	}
	return nil
}

func containsString(list []string, s string) bool {
	for _, x := range list {
		if x == s {
			return true
		}
	}
	return false
}
