package verify

import (
	"encoding/json"
	"encoding/xml"
	"fmt"
	"io"

	"github.com/arbo-project/arbo/ui"
)

// Counts tallies results by outcome.
func (r *Report) Counts() (passed, noListener, failed, unknown int) {
	for _, x := range r.Results {
		switch x.Outcome {
		case Passed:
			passed++
		case NoListener:
			noListener++
		case Failed:
			failed++
		default:
			unknown++
		}
	}
	return
}

// WriteText prints one line per probe, grouped by host, failures marked,
// then a summary. Remote output in details is escaped (ui.EscapeLine).
func WriteText(w io.Writer, r *Report) error {
	host := ""
	for _, x := range r.Results {
		if x.Host != host {
			if host != "" {
				fmt.Fprintln(w)
			}
			host = x.Host
			fmt.Fprintln(w, host)
		}
		line := fmt.Sprintf("  %-11s %s %s (%s)", x.Outcome, x.Kind, x.label(), x.Flow)
		if x.Detail != "" {
			line += ": " + x.Detail
		}
		fmt.Fprintln(w, ui.EscapeLine(line))
	}
	p, n, f, u := r.Counts()
	if len(r.Results) > 0 {
		fmt.Fprintln(w)
	}
	_, err := fmt.Fprintf(w, "%d passed, %d no listener, %d failed, %d unknown\n", p, n, f, u)
	return err
}

// WriteJSON writes the report (docs/json.md, "arbo verify").
func WriteJSON(w io.Writer, r *Report) error {
	p, n, f, u := r.Counts()
	doc := struct {
		FormatVersion int      `json:"format_version"`
		File          string   `json:"file"`
		Results       []Result `json:"results"`
		Summary       struct {
			Passed     int  `json:"passed"`
			NoListener int  `json:"no_listener"`
			Failed     int  `json:"failed"`
			Unknown    int  `json:"unknown"`
			Failing    bool `json:"failing"`
		} `json:"summary"`
	}{FormatVersion: 1, File: r.File, Results: r.Results}
	if doc.Results == nil {
		doc.Results = []Result{}
	}
	doc.Summary.Passed, doc.Summary.NoListener, doc.Summary.Failed, doc.Summary.Unknown = p, n, f, u
	doc.Summary.Failing = r.HasFailures()
	b, err := json.MarshalIndent(doc, "", "  ")
	if err != nil {
		return err
	}
	_, err = w.Write(append(b, '\n'))
	return err
}

type jSuite struct {
	XMLName  xml.Name `xml:"testsuite"`
	Name     string   `xml:"name,attr"`
	Tests    int      `xml:"tests,attr"`
	Failures int      `xml:"failures,attr"`
	Errors   int      `xml:"errors,attr"`
	Skipped  int      `xml:"skipped,attr"`
	Cases    []jCase  `xml:"testcase"`
}

type jCase struct {
	ClassName string `xml:"classname,attr"`
	Name      string `xml:"name,attr"`
	Failure   *jMsg  `xml:"failure,omitempty"`
	Error     *jMsg  `xml:"error,omitempty"`
	Skipped   *jMsg  `xml:"skipped,omitempty"`
}

type jMsg struct {
	Message string `xml:"message,attr"`
	Body    string `xml:",chardata"`
}

// WriteJUnit writes one testcase per probe (classname arbo.verify.<kind>,
// name "<jail> -> <target>"): a contradiction is a failure, a probe that
// could not run an error, an allowed flow without a listener skipped.
func WriteJUnit(w io.Writer, r *Report) error {
	s := jSuite{Name: "arbo.verify"}
	for _, x := range r.Results {
		c := jCase{ClassName: "arbo.verify." + x.Kind, Name: ui.EscapeLine(x.Host + ": " + x.label())}
		msg := &jMsg{Message: ui.EscapeLine(x.Detail), Body: ui.EscapeLine(x.Flow)}
		switch x.Outcome {
		case Failed:
			c.Failure = msg
			s.Failures++
		case Unknown:
			c.Error = msg
			s.Errors++
		case NoListener:
			c.Skipped = msg
			s.Skipped++
		}
		s.Cases = append(s.Cases, c)
	}
	s.Tests = len(s.Cases)
	if _, err := io.WriteString(w, xml.Header); err != nil {
		return err
	}
	enc := xml.NewEncoder(w)
	enc.Indent("", "  ")
	if err := enc.Encode(s); err != nil {
		return err
	}
	_, err := io.WriteString(w, "\n")
	return err
}
