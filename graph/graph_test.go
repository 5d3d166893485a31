package graph

import (
	"bytes"
	"context"
	"encoding/xml"
	"errors"
	"flag"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/arbo-project/arbo/inventory"
	"github.com/arbo-project/arbo/policy"
)

var update = flag.Bool("update", false, "rewrite the golden files")

func load(t *testing.T, path string) *inventory.Cluster {
	t.Helper()
	c, err := inventory.Load(path)
	if err != nil {
		t.Fatalf("load %s: %v", path, err)
	}
	return c
}

// TestGolden pins the DOT of the examples byte for byte.
func TestGolden(t *testing.T) {
	for _, tc := range []struct{ name, file string }{
		{"arboreus", "../examples/arboreus/topology.yaml"},
		{"single-host", "../examples/single-host/topology.yaml"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			var b bytes.Buffer
			if err := DOT(&b, load(t, tc.file)); err != nil {
				t.Fatal(err)
			}
			golden := filepath.Join("testdata", tc.name+".dot")
			if *update {
				if err := os.WriteFile(golden, b.Bytes(), 0o644); err != nil {
					t.Fatal(err)
				}
			}
			want, err := os.ReadFile(golden)
			if err != nil {
				t.Fatal(err)
			}
			if !bytes.Equal(b.Bytes(), want) {
				t.Errorf("DOT differs from %s (run go test ./graph -update and review the diff):\n%s", golden, b.String())
			}
		})
	}
}

// TestEdges checks which flows are drawn and how they are labelled: the
// services, same-tier replication, Erlang distribution and egress, never DNS
// or management SSH.
func TestEdges(t *testing.T) {
	for _, tc := range []struct {
		file      string
		want      []Edge
		forbidden []string // substrings no edge label may hold
	}{
		{
			file: "../examples/arboreus/topology.yaml",
			want: []Edge{
				{From: "gateway", To: "tier:app", Label: "https\ntcp 8443", Color: "#1f4e79"},
				{From: "tier:app", To: "tier:app", Label: "https (same tier)\ntcp 8443", Color: "#1f4e79"},
				{From: "tier:app", To: "tier:app", Label: "erlang distribution\ntcp 4369,9100-9115", Color: "#1f4e79"},
				{From: "tier:app", To: "tier:data", Label: "mnesia\ntcp 4369,9100-9115", Color: "#b2182b"},
				{From: "tier:data", To: "tier:data", Label: "mnesia (same tier)\ntcp 4369,9100-9115", Color: "#b2182b"},
				{From: "tier:app", To: "internet", Label: "egress any", Color: "#777777", Dashed: true},
			},
			forbidden: []string{"53", " 22"},
		},
		{
			file: "../examples/single-host/topology.yaml",
			want: []Edge{
				{From: "cidr:192.168.10.0/24", To: "tier:app", Label: "https\ntcp 8443", Color: "#1f4e79"},
				{From: "tier:app", To: "tier:infra", Label: "dns\nudp 53", Color: "#1f4e79"},
				{From: "tier:data", To: "tier:infra", Label: "dns\nudp 53", Color: "#1f4e79"},
				{From: "tier:infra", To: "internet", Label: "egress any", Color: "#777777", Dashed: true},
			},
		},
	} {
		t.Run(filepath.Base(filepath.Dir(tc.file)), func(t *testing.T) {
			c := load(t, tc.file)
			got := Edges(c, policy.Derive(c))
			for _, w := range tc.want {
				if !slices.Contains(got, w) {
					t.Errorf("missing edge %+v; got %+v", w, got)
				}
			}
			for _, e := range got {
				for _, f := range tc.forbidden {
					if strings.Contains(e.Label, f) {
						t.Errorf("edge %+v: label holds %q", e, f)
					}
				}
			}
			seen := map[Edge]bool{}
			for _, e := range got {
				if seen[e] {
					t.Errorf("edge %+v drawn twice", e)
				}
				seen[e] = true
			}
		})
	}
}

// TestTierColors: a stable palette by tier order, data tiers apart from the
// others.
func TestTierColors(t *testing.T) {
	c := load(t, "../examples/single-host/topology.yaml")
	got := TierColors(c)
	want := map[string]string{"app": coolPalette[0], "data": warmPalette[0], "infra": coolPalette[1]}
	for tier, col := range want {
		if got[tier] != col {
			t.Errorf("tier %s: colour %s, want %s", tier, got[tier], col)
		}
	}
	for _, w := range warmPalette {
		if slices.Contains(coolPalette, w) {
			t.Errorf("colour %s is in both palettes: data tiers would not stand out", w)
		}
	}
}

func TestQuote(t *testing.T) {
	for _, tc := range []struct{ in, want string }{
		{"app1", `"app1"`},
		{`a"b`, `"a\"b"`},
		{`a\b`, `"a\\b"`},
		{"a\nb", `"a\nb"`},
	} {
		if got := q(tc.in); got != tc.want {
			t.Errorf("q(%q) = %s, want %s", tc.in, got, tc.want)
		}
	}
}

// TestDotAcceptsOutput runs Graphviz on the example and reads the SVG back.
// CI installs Graphviz; without it the test says so and skips.
func TestDotAcceptsOutput(t *testing.T) {
	if _, err := exec.LookPath("dot"); err != nil {
		t.Skip("Graphviz's dot is not installed (apt-get install graphviz)")
	}
	for _, file := range []string{"../examples/arboreus/topology.yaml", "../examples/single-host/topology.yaml"} {
		var b bytes.Buffer
		if err := DOT(&b, load(t, file)); err != nil {
			t.Fatal(err)
		}
		svg, err := Render(context.Background(), b.Bytes(), "svg")
		if err != nil {
			t.Fatalf("%s: %v", file, err)
		}
		var doc struct {
			XMLName xml.Name
			Titles  []string `xml:"g>g>title"`
		}
		if err := xml.Unmarshal(svg, &doc); err != nil {
			t.Fatalf("%s: dot's SVG does not parse: %v", file, err)
		}
		if doc.XMLName.Local != "svg" || len(doc.Titles) == 0 {
			t.Fatalf("%s: not an SVG with nodes: %s %v", file, doc.XMLName.Local, doc.Titles)
		}
	}
	// dot rejects a broken document, and Render says what dot said.
	if _, err := Render(context.Background(), []byte("digraph {"), "svg"); err == nil || !strings.Contains(err.Error(), "dot -Tsvg") {
		t.Errorf("broken DOT: err = %v, want dot's complaint", err)
	}
}

func TestRenderWithoutGraphviz(t *testing.T) {
	t.Setenv("PATH", t.TempDir())
	_, err := Render(context.Background(), []byte("digraph {}"), "svg")
	if !errors.Is(err, ErrNoGraphviz) {
		t.Fatalf("err = %v, want ErrNoGraphviz", err)
	}
	if !strings.Contains(err.Error(), "install Graphviz") || !strings.Contains(err.Error(), "--format dot") {
		t.Errorf("message %q does not say what to do", err)
	}
}
