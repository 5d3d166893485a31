package remote

import (
	"context"
	"errors"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"
)

var nasty = []string{
	"plain",
	"",
	"two words",
	"it's",
	"''",
	`"double"`,
	"$HOME",
	"${x:-y}",
	"$(id)",
	"`id`",
	"a;b",
	"a && b || c",
	"a|b",
	"> /tmp/x",
	"*",
	"?",
	"[a-z]",
	"{a,b}",
	"~",
	"~root",
	"=x",
	"%1",
	"-n",
	"--",
	`back\slash`,
	`\`,
	`trailing\`,
	"tab\there",
	"héllo wörld ✓",
	"#comment",
	"a'b\"c$d`e\\f",
}

// printfArgv prints each argument between brackets, one a line.
func printfArgv(args ...string) []string {
	return append([]string{"printf", `[%s]\n`}, args...)
}

func bracketed(args []string) string {
	var b strings.Builder
	for _, a := range args {
		b.WriteString("[" + a + "]\n")
	}
	return b.String()
}

func TestQuoteRoundTripsThroughShells(t *testing.T) {
	shells := []string{"/bin/sh"}
	if p, err := exec.LookPath("tcsh"); err == nil {
		shells = append(shells, p) // root's shell on pfSense and older FreeBSD
	} else {
		t.Log("tcsh not installed: checking /bin/sh only (apt-get install tcsh to check csh too)")
	}
	for _, sh := range shells {
		for _, a := range nasty {
			t.Run(sh+"/"+a, func(t *testing.T) {
				q, err := Quote(printfArgv(a))
				if err != nil {
					t.Fatal(err)
				}
				out, err := exec.Command(sh, "-c", q).Output()
				if err != nil {
					t.Fatalf("%s -c %s: %v", sh, q, err)
				}
				if want := bracketed([]string{a}); string(out) != want {
					t.Errorf("%s -c %s\n got %q\nwant %q", sh, q, out, want)
				}
			})
		}
		t.Run(sh+"/all at once", func(t *testing.T) {
			q, err := Quote(printfArgv(nasty...))
			if err != nil {
				t.Fatal(err)
			}
			out, err := exec.Command(sh, "-c", q).Output()
			if err != nil || string(out) != bracketed(nasty) {
				t.Errorf("%s: %v\n got %q\nwant %q", sh, err, out, bracketed(nasty))
			}
		})
	}
}

func TestQuoteRefuses(t *testing.T) {
	for _, a := range []string{"bang!", "line\nbreak", "cr\r", "nul\x00"} {
		if q, err := Quote([]string{"echo", a}); err == nil {
			t.Errorf("Quote(%q) = %s, want an error", a, q)
		}
	}
	if _, err := Quote(nil); err == nil {
		t.Error("Quote(nil) succeeded")
	}
}

func TestQuoteForm(t *testing.T) {
	tests := []struct {
		argv []string
		want string
	}{
		{[]string{"ezjail-admin", "create", "-f", "app", "app1", "10.20.1.11"}, "ezjail-admin create -f app app1 10.20.1.11"},
		{[]string{"echo", "it's"}, `echo 'it'\''s'`},
		{[]string{"echo", ""}, "echo ''"},
		{[]string{"sysrc", "-f", "/etc/rc.conf.local", "cloned_interfaces=lo1"}, "sysrc -f /etc/rc.conf.local 'cloned_interfaces=lo1'"},
	}
	for _, tt := range tests {
		got, err := Quote(tt.argv)
		if err != nil || got != tt.want {
			t.Errorf("Quote(%q) = %s, %v; want %s", tt.argv, got, err, tt.want)
		}
	}
}

func TestRun(t *testing.T) {
	f := newFixture(t)
	c := dial(t, f.tgt)
	ctx := context.Background()

	t.Run("nasty arguments arrive intact", func(t *testing.T) {
		res, err := c.Run(ctx, printfArgv(nasty...), RunOpts{})
		if err != nil || res.Exit != 0 || string(res.Stdout) != bracketed(nasty) {
			t.Errorf("%v exit %d\n got %q\nwant %q", err, res.Exit, res.Stdout, bracketed(nasty))
		}
	})
	t.Run("non-zero exit is a result", func(t *testing.T) {
		res, err := c.Run(ctx, []string{"sh", "-c", "echo oops >&2; exit 3"}, RunOpts{})
		if err != nil || res.Exit != 3 || string(res.Stderr) != "oops\n" {
			t.Errorf("err %v exit %d stderr %q", err, res.Exit, res.Stderr)
		}
	})
	t.Run("stdin", func(t *testing.T) {
		res, err := c.Run(ctx, []string{"cat"}, RunOpts{Stdin: strings.NewReader("secret cookie\n")})
		if err != nil || string(res.Stdout) != "secret cookie\n" {
			t.Errorf("%v %q", err, res.Stdout)
		}
	})
	t.Run("refused argument is an error before anything runs", func(t *testing.T) {
		if _, err := c.Run(ctx, []string{"echo", "hi!"}, RunOpts{}); err == nil || !strings.Contains(err.Error(), "machine m1") {
			t.Errorf("got %v", err)
		}
	})
	t.Run("a read command that stalls is killed after its timeout", func(t *testing.T) {
		start := time.Now()
		_, err := c.Run(ctx, []string{"sleep", "30"}, RunOpts{Timeout: 200 * time.Millisecond})
		if !errors.Is(err, ErrReadTimeout) || !strings.Contains(err.Error(), "machine m1") {
			t.Errorf("got %v, want ErrReadTimeout naming machine m1", err)
		}
		if el := time.Since(start); el > 10*time.Second {
			t.Errorf("took %s", el)
		}
	})
	t.Run("output beyond MaxReadSize is refused", func(t *testing.T) {
		_, err := c.Run(ctx, []string{"head", "-c", strconv.Itoa(MaxReadSize + 1), "/dev/zero"}, RunOpts{})
		if !errors.Is(err, ErrTooLarge) || !strings.Contains(err.Error(), "machine m1") {
			t.Errorf("got %v, want ErrTooLarge naming machine m1", err)
		}
		res, err := c.Run(ctx, []string{"head", "-c", "1000", "/dev/zero"}, RunOpts{})
		if err != nil || len(res.Stdout) != 1000 {
			t.Errorf("a small output after it: %d bytes, %v", len(res.Stdout), err)
		}
	})
	t.Run("cancel", func(t *testing.T) {
		cctx, cancel := context.WithTimeout(ctx, 100*time.Millisecond)
		defer cancel()
		_, err := c.Run(cctx, []string{"sleep", "30"}, RunOpts{})
		if err == nil {
			t.Error("a cancelled command reported success")
		}
	})
}

func TestRunBoundsSessions(t *testing.T) {
	f := newFixture(t)
	c := dial(t, f.tgt)
	var wg sync.WaitGroup
	for range 12 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			res, err := c.Run(context.Background(), []string{"sleep", "0.05"}, RunOpts{})
			if err != nil || res.Exit != 0 {
				t.Errorf("%v exit %d", err, res.Exit)
			}
		}()
	}
	wg.Wait()
	if n := f.srv.MaxOpen.Load(); n < 2 || n > maxSessions {
		t.Errorf("%d sessions at once, want between 2 and %d", n, maxSessions)
	}
}

// TestLoginBanner: pfSense's root shell, /etc/rc.initial, prints ">>>
// Launching rc.local in background..." to stdout before it runs a command
// whenever /etc/rc.local exists (pfsense-2.7.2 src/etc/rc.initial:33-37,
// 52), and before the sftp-server pfSense's sshd runs as a command (issue
// 10 item 14). A command's output is what it printed, and SFTP works.
func TestLoginBanner(t *testing.T) {
	f := newFixture(t)
	f.srv.Banner.Store(">>> Launching rc.local in background...\n")
	c := dial(t, f.tgt)
	ctx := context.Background()
	res, err := c.Run(ctx, []string{"echo", "ridentifier", "42"}, RunOpts{})
	if err != nil || res.Exit != 0 || string(res.Stdout) != "ridentifier 42\n" {
		t.Errorf("Run under a banner: %v exit %d stdout %q", err, res.Exit, res.Stdout)
	}
	res, err = c.Run(ctx, []string{"sh", "-c", "echo out; exit 4"}, RunOpts{})
	if err != nil || res.Exit != 4 || string(res.Stdout) != "out\n" {
		t.Errorf("a failing command under a banner: %v exit %d stdout %q", err, res.Exit, res.Stdout)
	}
	// A command printing the marker text of another run cannot fake one.
	res, err = c.Run(ctx, []string{"echo", "arbo-start-0000000000000000"}, RunOpts{})
	if err != nil || string(res.Stdout) != "arbo-start-0000000000000000\n" {
		t.Errorf("marker-like output: %v %q", err, res.Stdout)
	}
	p := filepath.Join(f.srv.Dir, "f.txt")
	if err := c.WriteFileAtomic(p, []byte("data\n"), 0o644, -1, -1); err != nil {
		t.Fatalf("SFTP write under a banner: %v", err)
	}
	got, err := c.ReadFiles(ctx, []string{p})
	if err != nil || string(got[p]) != "data\n" {
		t.Errorf("SFTP read under a banner: %v %q", err, got[p])
	}
}

// TestShellThatRunsNothing: a login shell that prints something and never
// runs the command is an error, not an empty output.
func TestShellThatRunsNothing(t *testing.T) {
	out, ok := unframe([]byte(">>> Launching rc.local in background...\n"), "arbo-start-1")
	if ok {
		t.Errorf("unframe found a marker in %q", out)
	}
	out, ok = unframe([]byte("x arbo-start-1\nrest\n"), "arbo-start-1")
	if ok {
		t.Errorf("a marker inside a line counted: %q", out)
	}
	out, ok = unframe([]byte("banner\narbo-start-1\nrest\narbo-start-1\n"), "arbo-start-1")
	if !ok || string(out) != "rest\narbo-start-1\n" {
		t.Errorf("unframe = %q, %v", out, ok)
	}
}
