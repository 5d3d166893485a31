package plan

import (
	"context"
	"errors"
	"fmt"
	"io/fs"
	"path"
	"strconv"
	"strings"
	"time"

	"github.com/arbo-project/arbo/remote"
)

// LockHeldError says another run holds a machine's lock (exit code 4).
type LockHeldError struct {
	Machine string
	Owner   string
}

func (e *LockHeldError) Error() string {
	return fmt.Sprintf("machine %s: locked by %s; wait for that run to finish, or remove %s on the machine if it is dead", e.Machine, e.Owner, LockPath)
}

// lockInfo is the owner file inside the lock directory.
const lockOwner = "owner"

// Lock takes a machine's lock: a directory created with mkdir(1), which
// either creates it or fails, so two runs cannot both succeed. A lock older
// than stale is taken over (its run died).
func Lock(ctx context.Context, t Target, machine, owner string, now time.Time, stale time.Duration) error {
	if err := t.MkdirAll(StateDir, 0o700); err != nil {
		return fmt.Errorf("machine %s: %w", machine, err)
	}
	for attempt := 0; attempt < 2; attempt++ {
		res, err := t.Run(ctx, []string{"mkdir", LockPath}, remote.RunOpts{})
		if err != nil {
			return fmt.Errorf("machine %s: lock: %w", machine, err)
		}
		if res.Exit == 0 {
			info := fmt.Sprintf("%s\n%d\n", owner, now.Unix())
			if err := t.WriteFileAtomic(path.Join(LockPath, lockOwner), []byte(info), 0o600, -1, -1); err != nil {
				// A lock without its owner would block every later run
				// (disk full under StateDir): release what was taken.
				if uerr := Unlock(ctx, t); uerr != nil {
					return fmt.Errorf("machine %s: lock: writing the owner: %w (and removing %s failed: %v; remove it by hand)", machine, err, LockPath, uerr)
				}
				return fmt.Errorf("machine %s: lock: writing the owner: %w", machine, err)
			}
			return nil
		}
		got, err := t.ReadFiles(ctx, []string{path.Join(LockPath, lockOwner)})
		if err != nil {
			return fmt.Errorf("machine %s: lock: %w", machine, err)
		}
		who, since := "", time.Time{}
		if b, ok := got[path.Join(LockPath, lockOwner)]; ok {
			lines := strings.Split(strings.TrimSpace(string(b)), "\n")
			who = lines[0]
			// Complete only with its final newline: a cut write such as
			// "who\n17" must not date the lock to 1970.
			if len(lines) > 1 && strings.HasSuffix(string(b), "\n") {
				if sec, err := strconv.ParseInt(strings.TrimSpace(lines[1]), 10, 64); err == nil {
					since = time.Unix(sec, 0)
				}
			}
		}
		if since.IsZero() {
			// No owner file, or a half-written one (a run died between
			// mkdir and the owner write): date the lock by its directory,
			// so it becomes stale like any other.
			fi, err := t.Lstat(LockPath)
			if errors.Is(err, fs.ErrNotExist) && attempt == 0 {
				continue // released meanwhile: try again
			}
			if err != nil {
				return fmt.Errorf("machine %s: lock: %w", machine, err)
			}
			since = fi.ModTime()
			if who == "" {
				who = "an unknown run (no owner file)"
			} else {
				who += " (owner file incomplete)"
			}
		}
		who += fmt.Sprintf(" since %s (%s ago)", since.UTC().Format(time.RFC3339), now.Sub(since).Round(time.Second))
		if now.Sub(since) < stale || attempt > 0 {
			return &LockHeldError{Machine: machine, Owner: who}
		}
		if err := Unlock(ctx, t); err != nil {
			return fmt.Errorf("machine %s: taking over a stale lock: %w", machine, err)
		}
	}
	return &LockHeldError{Machine: machine, Owner: "another run"}
}

// Unlock releases a machine's lock.
func Unlock(ctx context.Context, t Target) error {
	if err := t.Remove(path.Join(LockPath, lockOwner)); err != nil && !errors.Is(err, fs.ErrNotExist) {
		return err
	}
	if err := t.Remove(LockPath); err != nil && !errors.Is(err, fs.ErrNotExist) {
		return err
	}
	return nil
}

// LockWait is Lock that, while another run holds the lock, tries again with
// a growing pause until wait has passed (wait 0: one try).
func LockWait(ctx context.Context, t Target, machine, owner string, now func() time.Time, stale, wait time.Duration) error {
	deadline := now().Add(wait)
	pause := 250 * time.Millisecond
	for {
		err := Lock(ctx, t, machine, owner, now(), stale)
		var lh *LockHeldError
		if !errors.As(err, &lh) || !now().Add(pause).Before(deadline) {
			return err
		}
		select {
		case <-ctx.Done():
			return err
		case <-time.After(pause):
		}
		pause = min(pause*2, 5*time.Second)
	}
}
