package remote

import (
	"bytes"
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"strings"
	"time"

	"golang.org/x/crypto/ssh"
)

// Quote turns an argument list into the one command string that SSH
// carries. It is the only place in arbo where a command line is built.
//
// sshd hands the string to the login user's shell with -c: sh on FreeBSD
// 14+, csh/tcsh for root on older FreeBSD and on pfSense. Each argument is
// therefore single-quoted, and a quote inside it is closed, escaped and
// reopened:
//
//	it's  ->  'it'\''s'
//
// the one form that both sh and csh read back verbatim ($, `, \, ;, *,
// spaces and quotes are all literal inside single quotes in both). Two things csh does not leave
// alone even inside single quotes, so they are refused rather than quoted:
//   - '!' (csh history substitution runs before quotes are parsed);
//   - newline and carriage return (csh reports an unmatched quote).
//
// NUL cannot travel in an argument at all. Data with such bytes goes on
// standard input (RunOpts.Stdin), as do secrets, which must never appear on
// a command line (ps shows command lines to every user).
//
// Non-empty words made only of [A-Za-z0-9_./-] are left bare, so logs
// stay readable.
func Quote(argv []string) (string, error) {
	if len(argv) == 0 {
		return "", errors.New("quote: empty command")
	}
	var b strings.Builder
	for i, a := range argv {
		if i > 0 {
			b.WriteByte(' ')
		}
		if j := strings.IndexAny(a, "!\n\r\x00"); j >= 0 {
			return "", fmt.Errorf("quote: argument %d (%q) contains %q, which csh (root's shell on pfSense and older FreeBSD) cannot take safely: pass such data on standard input", i, a, a[j])
		}
		if bare(a) {
			b.WriteString(a)
			continue
		}
		b.WriteByte('\'')
		b.WriteString(strings.ReplaceAll(a, "'", `'\''`))
		b.WriteByte('\'')
	}
	return b.String(), nil
}

func bare(a string) bool {
	if a == "" {
		return false
	}
	for i := 0; i < len(a); i++ {
		c := a[i]
		switch {
		case c >= 'a' && c <= 'z', c >= 'A' && c <= 'Z', c >= '0' && c <= '9', c == '_', c == '.', c == '/', c == '-':
		default:
			return false
		}
	}
	return true
}

// RunOpts are a command's optional inputs.
type RunOpts struct {
	Stdin io.Reader // nil: none. Secrets go here, never in argv.
	// Timeout, when set, kills a command that has not ended by then: for
	// commands that only read (facts, pfctl -s), which must not hang arbo.
	// Commands that change things (pkg install, ezjail-admin) run without.
	Timeout time.Duration
}

// capped keeps at most MaxReadSize bytes of a command's output; more
// cancels the command (a jail must not make arbo hold gigabytes).
type capped struct {
	buf    bytes.Buffer
	over   bool
	cancel context.CancelCauseFunc
}

func (w *capped) Write(p []byte) (int, error) {
	if w.buf.Len()+len(p) > MaxReadSize {
		w.over = true
		w.cancel(ErrTooLarge)
		return 0, ErrTooLarge
	}
	return w.buf.Write(p)
}

// Result is how a command ended. A non-zero Exit is a result, not an error.
type Result struct {
	Stdout, Stderr []byte
	Exit           int
}

// Run runs argv on the machine and waits for it. Errors are transport
// problems (no session, connection lost, killed by a signal, cancelled);
// the command's own failure is Result.Exit. At most a few sessions run at
// once on one connection (OpenSSH's MaxSessions is 10); others wait.
func (c *Conn) Run(ctx context.Context, argv []string, opts RunOpts) (Result, error) {
	cmd, err := Quote(argv)
	if err != nil {
		return Result{}, fmt.Errorf("machine %s: %w", c.Target.Machine, err)
	}
	mark, err := startMark()
	if err != nil {
		return Result{}, fmt.Errorf("machine %s: %w", c.Target.Machine, err)
	}
	// The login shell may print before it runs the command (pfSense's
	// /etc/rc.initial echoes ">>> Launching rc.local in background..." to
	// stdout whenever /etc/rc.local exists, pfsense-2.7.2 src/etc/rc.initial
	// lines 33-37, then runs `/bin/sh -c "$@"`, line 52): the command's
	// output is what follows a marker the command line prints first. `echo
	// WORD;` reads the same in sh and csh.
	cmd = "echo " + mark + ";" + cmd
	select {
	case c.sessions <- struct{}{}:
	case <-ctx.Done():
		return Result{}, fmt.Errorf("machine %s: %s: %w", c.Target.Machine, argv[0], context.Cause(ctx))
	case <-c.done:
		return Result{}, c.wrapErr(argv[0], errors.New("connection closed"))
	}
	defer func() { <-c.sessions }()

	sess, err := c.client.NewSession()
	if err != nil {
		return Result{}, c.wrapErr("opening a session for "+argv[0], err)
	}
	defer sess.Close()
	ctx, cancel := context.WithCancelCause(ctx)
	defer cancel(nil)
	if opts.Timeout > 0 {
		var stop context.CancelFunc
		ctx, stop = context.WithTimeoutCause(ctx, opts.Timeout,
			fmt.Errorf("%w within %s: the command was killed", ErrReadTimeout, opts.Timeout))
		defer stop()
	}
	stdout, stderr := &capped{cancel: cancel}, &capped{cancel: cancel}
	sess.Stdout = stdout
	sess.Stderr = stderr
	if opts.Stdin != nil {
		sess.Stdin = opts.Stdin
	}

	finished := make(chan struct{})
	defer close(finished)
	go func() {
		select {
		case <-ctx.Done():
			_ = sess.Signal(ssh.SIGKILL)
			sess.Close()
		case <-finished:
		}
	}()

	err = sess.Run(cmd)
	out, framed := unframe(stdout.buf.Bytes(), mark)
	res := Result{Stdout: out, Stderr: stderr.buf.Bytes()}
	if stdout.over || stderr.over {
		return res, fmt.Errorf("machine %s: %s: output %w", c.Target.Machine, argv[0], ErrTooLarge)
	}
	if ctx.Err() != nil {
		return res, fmt.Errorf("machine %s: %s: %w", c.Target.Machine, argv[0], context.Cause(ctx))
	}
	var exitErr *ssh.ExitError
	switch {
	case (err == nil || errors.As(err, &exitErr) && exitErr.Signal() == "") && !framed:
		return res, fmt.Errorf("machine %s: the login shell did not run %s (its output lacks the start marker arbo's command line prints first): stdout %q, stderr %q", c.Target.Machine, argv[0], clip(res.Stdout), clip(res.Stderr))
	case err == nil:
		return res, nil
	case errors.As(err, &exitErr) && exitErr.Signal() == "":
		res.Exit = exitErr.ExitStatus()
		return res, nil
	case errors.As(err, &exitErr):
		return res, fmt.Errorf("machine %s: %s killed by signal %s", c.Target.Machine, argv[0], exitErr.Signal())
	}
	return res, c.wrapErr(argv[0], err)
}

// startMark is a word no banner prints: arbo's marker with 64 random bits.
func startMark() (string, error) {
	var b [8]byte
	if _, err := rand.Read(b[:]); err != nil {
		return "", err
	}
	return "arbo-start-" + hex.EncodeToString(b[:]), nil
}

// unframe returns what the command printed: stdout after the first line
// that is the marker. Whatever came before (a login banner) is dropped.
func unframe(out []byte, mark string) ([]byte, bool) {
	m := []byte(mark + "\n")
	i := bytes.Index(out, m)
	if i < 0 || (i > 0 && out[i-1] != '\n') {
		return out, false
	}
	return out[i+len(m):], true
}

func clip(b []byte) []byte {
	if len(b) > 200 {
		return b[:200]
	}
	return b
}
