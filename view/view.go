// Package view prints arbo's results for people (text) and for programs
// (JSON with a format_version). Commands choose a view; views choose no
// behaviour.
package view

import (
	"encoding/json"
	"fmt"
	"io"
	"runtime"
	"runtime/debug"

	"github.com/arbo-project/arbo/inventory"
	"github.com/arbo-project/arbo/ui"
)

// FormatVersion is the version of every JSON document arbo prints. It
// changes only when a field changes meaning or goes away; new fields do not
// change it.
const FormatVersion = 1

// WriteJSON writes v indented, with a trailing newline.
func WriteJSON(w io.Writer, v any) error {
	enc := json.NewEncoder(w)
	enc.SetIndent("", "  ")
	return enc.Encode(v)
}

type problemJSON struct {
	File    string `json:"file"`
	Line    int    `json:"line"`
	Column  int    `json:"column"`
	Path    string `json:"path"`
	Message string `json:"message"`
}

type summaryJSON struct {
	Cluster  string `json:"cluster"`
	Gateways int    `json:"gateways"`
	Hosts    int    `json:"hosts"`
	Jails    int    `json:"jails"`
	Tiers    int    `json:"tiers"`
	Networks int    `json:"networks"`
}

// ValidateJSON prints the result of `arbo validate --format json`.
func ValidateJSON(w io.Writer, file string, c *inventory.Cluster, le *inventory.LoadError) error {
	doc := struct {
		FormatVersion int           `json:"format_version"`
		File          string        `json:"file"`
		Valid         bool          `json:"valid"`
		Problems      []problemJSON `json:"problems"`
		Summary       *summaryJSON  `json:"summary,omitempty"`
	}{FormatVersion: FormatVersion, File: file, Valid: le == nil, Problems: []problemJSON{}}
	if le != nil {
		for _, p := range le.Problems {
			doc.Problems = append(doc.Problems, problemJSON{p.File, p.Pos.Line, p.Pos.Col, p.Path, p.Msg})
		}
	} else if c != nil {
		s := summarize(c)
		doc.Summary = &s
	}
	return WriteJSON(w, doc)
}

func summarize(c *inventory.Cluster) summaryJSON {
	s := summaryJSON{Cluster: c.Name, Hosts: len(c.Hosts), Jails: len(c.Jails()), Tiers: len(c.Tiers), Networks: len(c.Networks)}
	if c.Gateway != nil {
		s.Gateways = 1
	}
	return s
}

// ValidateText prints the one-line result of `arbo validate`.
func ValidateText(w io.Writer, st ui.Style, file string, c *inventory.Cluster) error {
	s := summarize(c)
	_, err := fmt.Fprintf(w, "%s: %s: cluster %s, %d %s, %d %s, %d %s, %d %s, %d %s\n",
		file, st.Green("valid"), s.Cluster,
		s.Gateways, plural(s.Gateways, "gateway", "gateways"),
		s.Hosts, plural(s.Hosts, "host", "hosts"),
		s.Jails, plural(s.Jails, "jail", "jails"),
		s.Tiers, plural(s.Tiers, "tier", "tiers"),
		s.Networks, plural(s.Networks, "network", "networks"))
	return err
}

func plural(n int, one, many string) string {
	if n == 1 {
		return one
	}
	return many
}

// BuildInfo is what `arbo version` reports.
type BuildInfo struct {
	Version   string `json:"version"`
	GoVersion string `json:"go_version"`
	Platform  string `json:"platform"`
	Revision  string `json:"vcs_revision,omitempty"`
	Time      string `json:"vcs_time,omitempty"`
	Modified  bool   `json:"vcs_modified,omitempty"`
}

// ReadBuildInfo reads the module version and VCS stamp Go embeds at build time.
func ReadBuildInfo() BuildInfo {
	bi := BuildInfo{Version: "(devel)", GoVersion: runtime.Version(), Platform: runtime.GOOS + "/" + runtime.GOARCH}
	info, ok := debug.ReadBuildInfo()
	if !ok {
		return bi
	}
	if v := info.Main.Version; v != "" {
		bi.Version = v
	}
	for _, s := range info.Settings {
		switch s.Key {
		case "vcs.revision":
			bi.Revision = s.Value
		case "vcs.time":
			bi.Time = s.Value
		case "vcs.modified":
			bi.Modified = s.Value == "true"
		}
	}
	return bi
}

// Version prints build information as text or JSON.
func Version(w io.Writer, format string, bi BuildInfo) error {
	if format == "json" {
		return WriteJSON(w, struct {
			FormatVersion int `json:"format_version"`
			BuildInfo
		}{FormatVersion, bi})
	}
	fmt.Fprintf(w, "arbo %s %s %s\n", bi.Version, bi.GoVersion, bi.Platform)
	if bi.Revision != "" {
		mod := ""
		if bi.Modified {
			mod = " (modified)"
		}
		fmt.Fprintf(w, "revision %s %s%s\n", bi.Revision, bi.Time, mod)
	}
	return nil
}
