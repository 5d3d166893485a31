package view

import (
	"fmt"
	"io"
	"sync"

	"github.com/arbo-project/arbo/ui"
)

// Progress shows which machine is at which step, on stderr. On a terminal
// it keeps one line per machine and redraws them in place; otherwise (a
// Jenkins log, a file) it prints one plain line per step, which is what
// such logs need.
type Progress struct {
	w     io.Writer
	live  bool
	mu    sync.Mutex
	order []string
	last  map[string]string
	drawn int
}

// NewProgress returns a progress view; live redraws in place.
func NewProgress(w io.Writer, live bool) *Progress {
	return &Progress{w: w, live: live, last: map[string]string{}}
}

// Step records that machine has reached step.
func (p *Progress) Step(machine, step string) {
	machine, step = ui.EscapeLine(machine), ui.EscapeLine(step)
	p.mu.Lock()
	defer p.mu.Unlock()
	if !p.live {
		fmt.Fprintf(p.w, "%s: %s\n", machine, step)
		return
	}
	if _, ok := p.last[machine]; !ok {
		p.order = append(p.order, machine)
	}
	p.last[machine] = step
	if p.drawn > 0 {
		fmt.Fprintf(p.w, "\x1b[%dA", p.drawn) // back to the first machine's line
	}
	for _, m := range p.order {
		fmt.Fprintf(p.w, "\r\x1b[K%s: %s\n", m, p.last[m])
	}
	p.drawn = len(p.order)
}
