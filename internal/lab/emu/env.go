package emu

import (
	"encoding/json"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strings"
)

// env is one emulated call's context: where the machine (or jail) root is,
// which jail we are in, and where the call log goes.
type env struct {
	root    string // prefix of every machine path ("" inside a machine)
	logRoot string // where CallsLog lives (the host's root, also for jexec'd calls)
	jail    string
	stdin   io.Reader
	stdout  io.Writer
	stderr  io.Writer
}

func newEnv(stdin io.Reader, stdout, stderr io.Writer) *env {
	r := rootFromEnv()
	lr := os.Getenv(LogRootEnv)
	if lr == "" {
		lr = r
	}
	return &env{root: r, logRoot: lr, jail: os.Getenv(JailEnv), stdin: stdin, stdout: stdout, stderr: stderr}
}

// p maps a machine path to a host path.
func (e *env) p(machinePath string) string { return Path(e.root, machinePath) }

type command func(e *env, args []string) int

// commands is filled by init functions of the files implementing them.
var commands = map[string]command{}

func lookup(name string) (command, bool) {
	c, ok := commands[name]
	return c, ok
}

// run dispatches one call, honouring fault switches, and logs it.
func (e *env) run(name string, args []string) int {
	code := e.dispatch(name, args)
	// The login shell is sshd's plumbing, not a command: it logs the
	// session's command itself (loginShellCmd).
	if name != "bash" && name != "-bash" {
		e.logCall(args, code)
	}
	return code
}

func (e *env) dispatch(name string, args []string) int {
	c, ok := lookup(name)
	if !ok {
		fmt.Fprintf(e.stderr, "%s: not emulated by the lab\n", name)
		return 127
	}
	// LAB.md "Faults": a file FailDir/<command> makes the command fail.
	if b, err := os.ReadFile(Path(e.logRoot, FailDir+"/"+name)); err == nil {
		msg := string(b)
		if msg != "" && !strings.HasSuffix(msg, "\n") {
			msg += "\n"
		}
		fmt.Fprint(e.stderr, msg)
		return 1
	}
	return c(e, args)
}

// Call is one line of CallsLog.
type Call struct {
	Argv []string `json:"argv"`
	Jail string   `json:"jail"`
	Exit int      `json:"exit"`
}

func (e *env) logCall(args []string, code int) {
	b, err := json.Marshal(Call{Argv: args, Jail: e.jail, Exit: code})
	if err != nil {
		return
	}
	path := Path(e.logRoot, CallsLog)
	_ = os.MkdirAll(filepath.Dir(path), 0o755)
	f, err := os.OpenFile(path, os.O_WRONLY|os.O_APPEND|os.O_CREATE, 0o644)
	if err != nil {
		fmt.Fprintf(e.stderr, "lab-emu: call log: %v\n", err)
		return
	}
	defer f.Close()
	// One write per line, so that concurrent calls never interleave.
	if _, err := f.Write(append(b, '\n')); err != nil {
		fmt.Fprintf(e.stderr, "lab-emu: call log: %v\n", err)
	}
}

// ReadCalls returns the calls logged in the machine rooted at root.
func ReadCalls(root string) ([]Call, error) {
	b, err := os.ReadFile(Path(root, CallsLog))
	if err != nil {
		if os.IsNotExist(err) {
			return nil, nil
		}
		return nil, fmt.Errorf("read calls log: %w", err)
	}
	var calls []Call
	for i, line := range strings.Split(strings.TrimSpace(string(b)), "\n") {
		if line == "" {
			continue
		}
		var c Call
		if err := json.Unmarshal([]byte(line), &c); err != nil {
			return nil, fmt.Errorf("calls log line %d: %w", i+1, err)
		}
		calls = append(calls, c)
	}
	return calls, nil
}

// m maps a path of machine-wide state (interfaces, routes, pf, running
// jails): jails share the host's kernel, so inside a jail this still
// resolves against the host's root.
func (e *env) m(machinePath string) string { return Path(e.logRoot, machinePath) }

// cmdArgs is a stand-in's parsed command line.
type cmdArgs struct {
	order [][2]string       // options in order, for repeated ones
	opts  map[string]string // last value of each option ("" for a flag)
	rest  []string          // operands
}

func (a cmdArgs) has(flag string) bool { _, ok := a.opts[flag]; return ok }

// parseArgs is the preamble every stand-in shares: args[1:] parsed with a
// getopts(3) spec; a bad option, or fewer than min operands, prints the
// error (getopt's "illegal option -- x") and the usage line on stderr and
// returns ok=false, for the caller to exit with its utility's status.
func (e *env) parseArgs(args []string, spec string, min int, usage string) (cmdArgs, bool) {
	name := filepath.Base(args[0])
	opts, rest, err := getopts(args[1:], spec)
	if err != nil || len(rest) < min {
		if err != nil {
			fmt.Fprintf(e.stderr, "%s: %v\n", name, err)
		}
		fmt.Fprintln(e.stderr, usage)
		return cmdArgs{}, false
	}
	return cmdArgs{order: opts, opts: optMap(opts), rest: rest}, true
}
