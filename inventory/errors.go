package inventory

import (
	"fmt"
	"strings"
)

// Problem is one reason a topology file does not load.
type Problem struct {
	File string
	Pos  Pos
	Path string // key path, e.g. hosts[0].jails[1].ip; empty for the document
	Msg  string // what is wrong and, where it helps, what to do; check IDs (ARBO001/002) lead
}

// String renders FILE:LINE:COL: key.path: message, the form editors and CI
// annotators understand.
func (p Problem) String() string {
	var b strings.Builder
	b.WriteString(p.File)
	if p.Pos.Line > 0 {
		fmt.Fprintf(&b, ":%d:%d", p.Pos.Line, p.Pos.Col)
	}
	b.WriteString(": ")
	if p.Path != "" {
		b.WriteString(p.Path)
		b.WriteString(": ")
	}
	b.WriteString(p.Msg)
	return b.String()
}

// LoadError carries every problem found, sorted by position.
type LoadError struct {
	Problems []Problem
}

func (e *LoadError) Error() string {
	lines := make([]string, len(e.Problems))
	for i, p := range e.Problems {
		lines[i] = p.String()
	}
	return strings.Join(lines, "\n")
}
