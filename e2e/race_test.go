//go:build linux

package e2e

import (
	"errors"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/arbo-project/arbo/internal/lab"
)

// raceTrials bounds TestSymlinkRace: applies while a jail swaps its
// directories for symlinks. Before the no-symlink views, about one apply in
// thirty wrote through a planted link (issue 11).
const (
	raceTrials  = 40
	raceTimeout = 90 * time.Second
)

// TestSymlinkRace: a compromised jail swaps the directories arbo writes
// into (etc, usr/local/etc/arbo, root) for symlinks to a directory of the
// host, back and forth as fast as it can, while arbo applies again and
// again; each apply must either write inside the jail or refuse, and no
// file of the host may ever change (issue 11, item 1).
func TestSymlinkRace(t *testing.T) {
	t.Parallel()
	e := newEnv(t, exampleTopology(t), lab.WithBasejail())
	e.applyOK()

	const jailRoot = "/usr/jails/app1"
	// The planted links point at copies of the jail's directories on the
	// host, so that what arbo reads through a link looks like the jail's
	// own (a careful attacker's decoy): any change in a copy is a write
	// that left the jail.
	const decoys = "/var/db/race-decoy"
	victims := []string{"etc", "usr/local/etc/arbo", "root"}
	drift := map[string]string{ // files the test edits before each apply, so that it rewrites them
		"etc/resolv.conf":            "nameserver 203.0.113.66\n",
		"usr/local/etc/arbo/vm.args": "-drifted\n",
		"usr/local/etc/arbo/env":     "DRIFTED=1\n",
	}
	decoyOf := func(v string) string { return filepath.Join(decoys, filepath.Base(v)) }
	for _, v := range victims {
		copyDir(t, e.path("server1", filepath.Join(jailRoot, v)), e.path("server1", decoyOf(v)))
	}
	hostEtc := snapshot(t, e.path("server1", "/etc"))
	writeDrift := func() {
		for rel, s := range drift {
			v := filepath.Dir(rel)
			for _, dir := range []string{filepath.Join(jailRoot, v), filepath.Join(jailRoot, v) + ".race", decoyOf(v)} {
				p := e.path("server1", filepath.Join(dir, filepath.Base(rel)))
				if fi, err := os.Lstat(filepath.Dir(p)); err == nil && fi.IsDir() {
					// Best effort: the swapping loop may move the directory
					// between the check and the write.
					_ = os.WriteFile(p, []byte(s), 0o400)
				}
			}
		}
	}

	stop := make(chan struct{})
	var swaps atomic.Int64
	var wg sync.WaitGroup
	var swapErr error
	var errOnce sync.Once
	for _, v := range victims {
		wg.Add(1)
		go func() {
			defer wg.Done()
			dir := e.path("server1", filepath.Join(jailRoot, v))
			aside := dir + ".race"
			for {
				select {
				case <-stop:
					return
				default:
				}
				// dir → aside, a link to the decoy in its place, then back:
				// the link is there about a tenth of the time, so that most
				// reads agree and applies go on to write.
				if err := os.Rename(dir, aside); err != nil {
					errOnce.Do(func() { swapErr = err })
					return
				}
				err1 := os.Symlink(decoyOf(v), dir)
				time.Sleep(300 * time.Microsecond)
				err2 := os.Remove(dir)
				err3 := os.Rename(aside, dir)
				if err := errors.Join(err1, err2, err3); err != nil {
					errOnce.Do(func() { swapErr = err })
					return
				}
				swaps.Add(1)
				time.Sleep(3 * time.Millisecond)
			}
		}()
	}
	stopSwapping := func() {
		select {
		case <-stop:
		default:
			close(stop)
		}
		wg.Wait()
	}
	defer stopSwapping()

	start := time.Now()
	var ok, refused, stale, trials int
	for trials < raceTrials && time.Since(start) < raceTimeout {
		writeDrift()
		decoySnap := snapshot(t, e.path("server1", decoys))
		r := e.run("apply", "--auto-approve", "--confirm-timeout", confirmTimeout, e.topo)
		trials++
		switch {
		case r.code == 0:
			ok++
		case strings.Contains(r.stdout+r.stderr, "FAILED"):
			if refused == 0 {
				t.Logf("a refusal: %s", r)
			}
			refused++
		case strings.Contains(r.stderr, "the plan is stale"):
			stale++ // what plan read and what apply read under the lock differ: nothing done
		default:
			t.Fatalf("apply neither succeeded nor refused a machine:\n%s", r)
		}
		if got := snapshot(t, e.path("server1", decoys)); !sameSnapshot(decoySnap, got) {
			sameFiles(t, "server1 "+decoys, decoySnap, got)
			t.Fatalf("trial %d: apply wrote through a planted symlink onto the host\n%s", trials, r)
		}
	}
	stopSwapping()
	if swapErr != nil {
		t.Fatalf("the swapping loop failed: %v", swapErr)
	}
	elapsed := time.Since(start)
	t.Logf("symlink race: %d applies in %s (%d complete, %d refused a machine, %d refused as stale), %d directory swaps, 0 host files changed",
		trials, elapsed.Round(time.Millisecond), ok, refused, stale, swaps.Load())
	if swaps.Load() < int64(trials) {
		t.Errorf("only %d swaps during %d applies: the race proves nothing", swaps.Load(), trials)
	}
	if got := snapshot(t, e.path("server1", "/etc")); !sameSnapshot(hostEtc, got) {
		t.Error("the host's /etc changed during the race")
	}
	// Without the race, arbo converges, and leaves no view mounted.
	e.applyOK()
	e.converged()
	if entries := entries(t, e.path("server1", "/var/db/arbo/jailfs")); len(entries) > 0 {
		t.Errorf("views left after the apply: %v", entries)
	}
}

// entries lists a directory's names (none when it does not exist).
func entries(t *testing.T, dir string) []string {
	t.Helper()
	des, err := os.ReadDir(dir)
	if errors.Is(err, fs.ErrNotExist) {
		return nil
	}
	if err != nil {
		t.Fatal(err)
	}
	var out []string
	for _, d := range des {
		out = append(out, d.Name())
	}
	return out
}

func sameSnapshot(a, b map[string]string) bool {
	if len(a) != len(b) {
		return false
	}
	for k, v := range a {
		if b[k] != v {
			return false
		}
	}
	return true
}

// copyDir copies a directory's regular files (not below it) with their
// modes and owners.
func copyDir(t *testing.T, src, dst string) {
	t.Helper()
	if err := os.MkdirAll(dst, 0o755); err != nil {
		t.Fatal(err)
	}
	des, err := os.ReadDir(src)
	if err != nil {
		t.Fatal(err)
	}
	for _, d := range des {
		if !d.Type().IsRegular() {
			continue
		}
		fi, err := d.Info()
		if err != nil {
			t.Fatal(err)
		}
		b, err := os.ReadFile(filepath.Join(src, d.Name()))
		if err != nil {
			t.Fatal(err)
		}
		p := filepath.Join(dst, d.Name())
		if err := os.WriteFile(p, b, fi.Mode().Perm()); err != nil {
			t.Fatal(err)
		}
		if st, ok := fi.Sys().(*syscall.Stat_t); ok {
			if err := os.Chown(p, int(st.Uid), int(st.Gid)); err != nil {
				t.Fatal(err)
			}
		}
		if err := os.Chmod(p, fi.Mode().Perm()); err != nil {
			t.Fatal(err)
		}
	}
}
