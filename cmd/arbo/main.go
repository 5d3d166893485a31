// Command arbo provisions FreeBSD jail clusters from one topology file.
//
// This package holds cobra wiring only: flags become an options struct, a
// run function calls into arbo's packages and prints with a view. Logic
// lives in those packages.
package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"os/signal"
	"syscall"

	"github.com/arbo-project/arbo/inventory"
	"github.com/arbo-project/arbo/ui"
)

func main() {
	os.Exit(run(os.Args[1:], os.Stdin, os.Stdout, os.Stderr, os.Getenv))
}

// run executes one command line and returns the process exit code.
func run(args []string, stdin io.Reader, stdout, stderr io.Writer, getenv func(string) string) int {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	g := &globalOptions{stdin: stdin, stdout: stdout, stderr: stderr, getenv: getenv}
	root := newRootCommand(g)
	root.SetArgs(args)
	root.SetIn(stdin)
	root.SetOut(stdout)
	root.SetErr(stderr)
	err := root.ExecuteContext(ctx)
	report(stderr, err)
	return ui.CodeOf(err)
}

// report prints a command's error once: load problems one per line in the
// FILE:LINE:COL form editors and CI annotators read, anything else as
// "arbo: error: …".
func report(w io.Writer, err error) {
	if err == nil {
		return
	}
	var se *ui.StatusError
	if errors.As(err, &se) && (se.Silent || se.Err == nil) {
		return
	}
	var le *inventory.LoadError
	if errors.As(err, &le) {
		for _, p := range le.Problems {
			fmt.Fprintln(w, ui.EscapeLine(p.String()))
		}
		fmt.Fprintf(w, "arbo: error: %s does not load (%d %s)\n", ui.EscapeLine(fileOf(le)), len(le.Problems), plural(len(le.Problems), "problem", "problems"))
		return
	}
	// An error may carry what a machine said (a command's stderr): shown
	// escaped, like every other text from a machine.
	fmt.Fprintf(w, "arbo: error: %s\n", ui.Escape(err.Error()))
}

func fileOf(le *inventory.LoadError) string {
	if len(le.Problems) > 0 {
		return le.Problems[0].File
	}
	return "the topology"
}

func plural(n int, one, many string) string {
	if n == 1 {
		return one
	}
	return many
}
