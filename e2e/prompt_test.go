//go:build linux

package e2e

import (
	"errors"
	"os"
	"os/exec"
	"strings"
	"testing"

	"github.com/arbo-project/arbo/internal/lab"
)

// TestApprovalPrompt: on a terminal, apply shows the plan and asks; any
// answer but "yes" changes nothing, and "yes" applies. script(1) gives arbo
// a pseudo-terminal on stdin and stdout, as an operator's shell does.
func TestApprovalPrompt(t *testing.T) {
	t.Parallel()
	scriptBin, err := exec.LookPath("script")
	if err != nil {
		if os.Getenv("CI") == "true" {
			t.Fatal("script(1) (util-linux) is needed to give arbo a terminal")
		}
		t.Skip("no script(1)")
	}
	e := newEnv(t, exampleTopology(t), lab.WithBasejail())
	ask := func(answer string) (int, string) {
		argv := []string{arboBin, "apply", "--ssh-config", e.lab.SSHConfig(), "--confirm-timeout", confirmTimeout, e.topo}
		for _, a := range argv {
			if strings.ContainsAny(a, "' \n") { // the paths are the test's own; keep the quoting trivial
				t.Fatalf("unexpected character in %q", a)
			}
		}
		cmd := exec.Command(scriptBin, "-q", "-e", "-c", "'"+strings.Join(argv, "' '")+"'", "/dev/null")
		cmd.Dir = e.dir
		cmd.Env = cleanEnv()
		cmd.Stdin = strings.NewReader(answer + "\n")
		out, err := cmd.CombinedOutput()
		var ee *exec.ExitError
		switch {
		case errors.As(err, &ee):
			return ee.ExitCode(), string(out)
		case err != nil:
			t.Fatalf("script: %v", err)
		}
		return 0, string(out)
	}

	before := e.snapshotAll()
	code, out := ask("no")
	if code != 1 || !strings.Contains(out, "Do you want to apply this plan?") || !strings.Contains(out, "apply cancelled") {
		t.Fatalf("answering no: exit %d\n%s", code, out)
	}
	if !strings.Contains(out, "create jail app1") {
		t.Errorf("the plan was not shown before the question:\n%s", out)
	}
	e.unchangedSince(before)

	code, out = ask("yes")
	if code != 0 || !strings.Contains(out, "Apply complete") {
		t.Fatalf("answering yes: exit %d\n%s", code, out)
	}
	e.converged()
}
