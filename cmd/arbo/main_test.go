package main

import (
	"os"
	"path/filepath"
	"testing"

	"github.com/rogpeppe/go-internal/testscript"
)

func TestMain(m *testing.M) {
	testscript.Main(m, map[string]func(){
		"arbo": func() { os.Exit(run(os.Args[1:], os.Stdin, os.Stdout, os.Stderr, os.Getenv)) },
	})
}

// TestScripts pins the CLI's behaviour: output, formats and exit codes.
// Scripts see the repository's examples as $EXAMPLES.
func TestScripts(t *testing.T) {
	examples, err := filepath.Abs("../../examples")
	if err != nil {
		t.Fatal(err)
	}
	testscript.Run(t, testscript.Params{
		Dir: "testdata/script",
		Setup: func(e *testscript.Env) error {
			e.Setenv("EXAMPLES", examples)
			e.Setenv("TEMPLATES", filepath.Join(examples, "..", "templates", "files"))
			// Scripts decide colour explicitly; the caller's terminal settings must not leak in.
			e.Setenv("NO_COLOR", "")
			e.Setenv("ARBO_FORCE_COLOR", "")
			return nil
		},
		RequireExplicitExec: true,
	})
}
