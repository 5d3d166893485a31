// Package ui holds arbo's output rules (DESIGN.md "Rules of the house"):
// when colour is on, the exit codes, and the error that carries one. The
// commands in cmd/arbo decide nothing themselves; they ask here.
package ui

import (
	"errors"
	"fmt"
	"os"

	"golang.org/x/term"
)

// Exit codes are part of arbo's interface: pipelines branch on them.
const (
	ExitOK       = 0 // success; for plan --detailed-exitcode: no changes
	ExitError    = 1 // an error, a file that does not load included
	ExitChanges  = 2 // plan --detailed-exitcode: changes pending
	ExitFindings = 3 // error-level check findings that are not accepted
	ExitLocked   = 4 // a machine's lock is held by someone else
)

// ExitCodesHelp is the one table of exit codes, shown by `arbo help` and
// copied into the README (a test keeps the two in step).
const ExitCodesHelp = `Exit codes:
  0  success (plan --detailed-exitcode: no changes)
  1  error, including a topology file that does not load
  2  plan --detailed-exitcode: changes pending
  3  check findings at error level that are not accepted
  4  a machine's lock is held by someone else
A run that meets several reports the first of 1, 4, 3, 2.`

// StatusError makes a command end with Code. Err, when set, has already been
// reported (or is reported by main); Silent means nothing more to print.
type StatusError struct {
	Code   int
	Err    error
	Silent bool
}

func (e *StatusError) Error() string {
	if e.Err != nil {
		return e.Err.Error()
	}
	return fmt.Sprintf("exit status %d", e.Code)
}

func (e *StatusError) Unwrap() error { return e.Err }

// Exit returns an error that ends the run with code and prints nothing more.
func Exit(code int) error { return &StatusError{Code: code, Silent: true} }

// CodeOf maps an error returned by a command to the process exit code.
func CodeOf(err error) int {
	if err == nil {
		return ExitOK
	}
	var ee *StatusError
	if errors.As(err, &ee) {
		return ee.Code
	}
	return ExitError
}

// Worst combines exit codes of parts of a run: the first of 1, 4, 3, 2, else 0.
func Worst(codes ...int) int {
	for _, want := range []int{ExitError, ExitLocked, ExitFindings, ExitChanges} {
		for _, c := range codes {
			if c == want {
				return want
			}
		}
	}
	return ExitOK
}

// Env is the part of the environment the output rules read; tests pass
// their own.
type Env func(key string) string

// ColorMode decides whether output is coloured. flag is --color
// (auto|always|never, "" when not given); noColor is --no-color. The command
// line wins over the environment: --color=auto or an explicit never/always
// ignores ARBO_FORCE_COLOR and NO_COLOR only where the flag says so.
func ColorMode(flag string, noColor bool, env Env, isTerminal bool) (bool, error) {
	if noColor {
		if flag == "always" {
			return false, errors.New("--no-color and --color=always contradict each other")
		}
		return false, nil
	}
	switch flag {
	case "always":
		return true, nil
	case "never":
		return false, nil
	case "", "auto":
	default:
		return false, fmt.Errorf("--color %q: want auto, always or never", flag)
	}
	// auto (given or default). ARBO_FORCE_COLOR is for Jenkins' AnsiColor
	// plugin, where stdout is a file but ANSI is rendered; it is an explicit
	// request, so it beats NO_COLOR, a general preference.
	if flag == "" && env("ARBO_FORCE_COLOR") != "" {
		return true, nil
	}
	if env("NO_COLOR") != "" {
		return false, nil
	}
	return isTerminal, nil
}

// IsTerminal reports whether a stream (stdin, stdout, stderr) is a terminal.
func IsTerminal(w any) bool {
	f, ok := w.(*os.File)
	return ok && term.IsTerminal(int(f.Fd()))
}

// Style is a set of ANSI sequences; the zero Style prints plain text.
type Style struct{ on bool }

// NewStyle returns a Style that colours when on.
func NewStyle(on bool) Style { return Style{on: on} }

func (s Style) wrap(code, text string) string {
	if !s.on || text == "" {
		return text
	}
	return "\x1b[" + code + "m" + text + "\x1b[0m"
}

func (s Style) Red(t string) string    { return s.wrap("31", t) }
func (s Style) Green(t string) string  { return s.wrap("32", t) }
func (s Style) Yellow(t string) string { return s.wrap("33", t) }
func (s Style) Blue(t string) string   { return s.wrap("34", t) }
func (s Style) Bold(t string) string   { return s.wrap("1", t) }
func (s Style) Dim(t string) string    { return s.wrap("2", t) }
func (s Style) On() bool               { return s.on }
