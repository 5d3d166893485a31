package main

import (
	"os"
	"regexp"
	"strings"
	"testing"

	"github.com/arbo-project/arbo/ui"
)

// TestExitCodesInStep keeps the README's exit code table and `arbo help`
// saying the same thing: pipelines are written against either.
func TestExitCodesInStep(t *testing.T) {
	readme, err := os.ReadFile("../../README.md")
	if err != nil {
		t.Fatal(err)
	}
	row := regexp.MustCompile(`^  (\d)  (.+)$`)
	n := 0
	for _, line := range strings.Split(ui.ExitCodesHelp, "\n") {
		m := row.FindStringSubmatch(line)
		if m == nil {
			continue
		}
		n++
		want := "| " + m[1] + " | " + m[2] + " |"
		if !strings.Contains(string(readme), want) {
			t.Errorf("README.md lacks the row %q of arbo help's exit codes", want)
		}
	}
	if n != 5 {
		t.Fatalf("arbo help lists %d exit codes, want 5", n)
	}
}

// TestReadmeQuickstart keeps the README's first two commands what CI and a
// newcomer run: an offline plan of the bundled example, then the tests.
func TestReadmeQuickstart(t *testing.T) {
	readme, err := os.ReadFile("../../README.md")
	if err != nil {
		t.Fatal(err)
	}
	var cmds []string
	for _, l := range strings.Split(string(readme), "\n") {
		if strings.HasPrefix(l, "    $ ") {
			cmds = append(cmds, strings.TrimPrefix(l, "    $ "))
		}
	}
	if len(cmds) < 2 || cmds[0] != "go run ./cmd/arbo plan --offline examples/arboreus/topology.yaml" || !strings.HasPrefix(cmds[1], "go test ") {
		t.Fatalf("the README's first commands changed: %q", cmds)
	}
}
