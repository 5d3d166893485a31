package remote

import (
	"bufio"
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"net"
	"os"
	"path"
	"strings"
	"sync"

	"github.com/pkg/sftp"
	"golang.org/x/sync/errgroup"
)

// readParallel bounds concurrent file reads in ReadFiles. They share the one
// SFTP session (pipelined requests), so this bounds memory and server load,
// not sessions.
const readParallel = 8

// SFTP returns the connection's one SFTP client, opening it on first use.
// Every file operation shares it: each SFTP client is an SSH session, and
// OpenSSH allows 10 per connection.
func (c *Conn) SFTP() (*sftp.Client, error) {
	c.sftpMu.Lock()
	defer c.sftpMu.Unlock()
	if c.sftp != nil {
		return c.sftp, nil
	}
	select {
	case <-c.done:
		return nil, c.wrapErr("sftp", net.ErrClosed)
	default:
	}
	s, err := c.startSFTP()
	if errors.Is(err, ErrReadTimeout) {
		return nil, c.wrapErr("starting the SFTP subsystem", err)
	}
	if err != nil {
		return nil, c.wrapErr("starting the SFTP subsystem (is `Subsystem sftp` enabled in sshd_config?)", err)
	}
	c.sftp = s
	return s, nil
}

// maxBanner bounds the text skipBanner drops.
const maxBanner = 4096

// skipBanner drops whole lines of text that come before the SFTP server's
// first packet. Every SFTP packet starts with its uint32 length, big-endian
// (draft-ietf-secsh-filexfer-02 §3), and the server's first one
// (SSH_FXP_VERSION) is far shorter than 16 MiB, so its first byte is 0; a
// line of text never starts with a NUL.
func skipBanner(r io.Reader) io.Reader { return &bannerSkipper{r: bufio.NewReader(r)} }

type bannerSkipper struct {
	r       *bufio.Reader
	checked bool
}

func (b *bannerSkipper) Read(p []byte) (int, error) {
	if !b.checked {
		var dropped []byte
		for {
			c, err := b.r.Peek(1)
			if err != nil {
				return 0, err
			}
			if c[0] == 0 {
				break
			}
			line, err := b.r.ReadSlice('\n')
			dropped = append(dropped, line...)
			if err != nil || len(dropped) > maxBanner {
				return 0, fmt.Errorf("sftp: the server sent %q instead of an SFTP packet", clip(dropped))
			}
		}
		b.checked = true
	}
	return b.r.Read(p)
}

// MaxReadSize bounds every remote read: arbo's files are small, and a jail
// must not make arbo read a huge (or sparse) file into memory.
const MaxReadSize = 32 << 20

// ErrNotRegular says a path arbo reads is not a regular file (a FIFO, a
// device, a socket, a directory): reading it could hang or never end.
var ErrNotRegular = errors.New("not a regular file")

// ErrTooLarge says a remote file is larger than MaxReadSize.
var ErrTooLarge = fmt.Errorf("larger than %d MiB", MaxReadSize>>20)

// ReadFile reads a remote regular file of at most MaxReadSize bytes. A
// missing file gives an error that errors.Is(err, fs.ErrNotExist)
// recognises; a FIFO or device is refused before it is opened (opening a
// FIFO blocks until a writer comes).
func (c *Conn) ReadFile(p string) ([]byte, error) {
	s, err := c.SFTP()
	if err != nil {
		return nil, fmt.Errorf("read %s: %w", p, err)
	}
	// Every request below is bounded in time (readtimeout.go): a FIFO
	// swapped in between the stat and the open, or a stalled file system,
	// cannot hang arbo.
	var fi fs.FileInfo
	if err := c.bounded(s, func() (e error) { fi, e = s.Stat(p); return }); err != nil {
		return nil, c.wrapErr("read "+p, err)
	}
	if err := readable(fi); err != nil {
		return nil, c.wrapErr("read "+p, err)
	}
	var f *sftp.File
	if err := c.bounded(s, func() (e error) { f, e = s.Open(p); return }); err != nil {
		return nil, c.wrapErr("read "+p, err)
	}
	defer func() { _ = c.bounded(s, f.Close) }()
	// Again on the open handle: the path may have been swapped meanwhile.
	if err := c.bounded(s, func() (e error) { fi, e = f.Stat(); return }); err != nil {
		return nil, c.wrapErr("read "+p, err)
	}
	if err := readable(fi); err != nil {
		return nil, c.wrapErr("read "+p, err)
	}
	b, err := readAll(io.LimitReader(boundedReader{c, s, f}, MaxReadSize+1))
	if err != nil {
		return nil, c.wrapErr("read "+p, err)
	}
	if len(b) > MaxReadSize { // grew while read
		return nil, c.wrapErr("read "+p, ErrTooLarge)
	}
	return b, nil
}

// readable refuses what ReadFile must not read.
func readable(fi fs.FileInfo) error {
	switch {
	case !fi.Mode().IsRegular():
		return fmt.Errorf("%w (%s): arbo reads only regular files; remove it or replace it with a file", ErrNotRegular, fi.Mode().Type())
	case fi.Size() > MaxReadSize:
		return fmt.Errorf("%w (%d bytes): arbo's files are small; remove or shrink it", ErrTooLarge, fi.Size())
	}
	return nil
}

// readChunk is the largest SFTP read pkg/sftp sends as one request (its
// default maximum packet).
const readChunk = 32 << 10

// readAll reads r to its end in readChunk pieces. io.ReadAll starts with
// 512 bytes and grows slowly, and every Read of an sftp.File is a round
// trip: a 1 KiB file took four reads, a 14 KiB config.xml about eight.
// With whole chunks, a file under 32 KiB takes two (the data, then EOF).
func readAll(r io.Reader) ([]byte, error) {
	b := make([]byte, 0, readChunk)
	for {
		if cap(b)-len(b) < readChunk {
			b = append(b, make([]byte, readChunk)...)[:len(b)]
		}
		n, err := r.Read(b[len(b) : len(b)+readChunk])
		b = b[:len(b)+n]
		if err == io.EOF {
			return b, nil
		}
		if err != nil {
			return b, err
		}
	}
}

// ReadFiles reads several files concurrently. A file that does not exist
// is absent from the map; any other failure is an error.
func (c *Conn) ReadFiles(ctx context.Context, paths []string) (map[string][]byte, error) {
	out := make(map[string][]byte, len(paths))
	var mu sync.Mutex
	var timedOut error
	g, ctx := errgroup.WithContext(ctx)
	g.SetLimit(readParallel)
	for _, p := range paths {
		g.Go(func() error {
			if err := ctx.Err(); err != nil {
				return err
			}
			b, err := c.ReadFile(p)
			if errors.Is(err, fs.ErrNotExist) {
				return nil
			}
			if errors.Is(err, ErrReadTimeout) {
				mu.Lock()
				if timedOut == nil {
					timedOut = err
				}
				mu.Unlock()
			}
			if err != nil {
				return err
			}
			mu.Lock()
			out[p] = b
			mu.Unlock()
			return nil
		})
	}
	if err := g.Wait(); err != nil {
		// A read that timed out closed the session under the others: its
		// error says why, theirs only that the session ended.
		if timedOut != nil {
			return nil, timedOut
		}
		return nil, err
	}
	return out, nil
}

// Stat follows symlinks; Sys() of the result is a *sftp.FileStat (see Owner).
func (c *Conn) Stat(p string) (fs.FileInfo, error) {
	s, err := c.SFTP()
	if err != nil {
		return nil, fmt.Errorf("stat %s: %w", p, err)
	}
	var fi fs.FileInfo
	if err := c.bounded(s, func() (e error) { fi, e = s.Stat(p); return }); err != nil {
		return nil, c.wrapErr("stat "+p, err)
	}
	return fi, nil
}

// Lstat does not follow a final symlink.
func (c *Conn) Lstat(p string) (fs.FileInfo, error) {
	s, err := c.SFTP()
	if err != nil {
		return nil, fmt.Errorf("lstat %s: %w", p, err)
	}
	var fi fs.FileInfo
	if err := c.bounded(s, func() (e error) { fi, e = s.Lstat(p); return }); err != nil {
		return nil, c.wrapErr("lstat "+p, err)
	}
	return fi, nil
}

// Owner gives the numeric owner of a FileInfo from Stat or Lstat.
func Owner(fi fs.FileInfo) (uid, gid int, ok bool) {
	if st, isStat := fi.Sys().(*sftp.FileStat); isStat {
		return int(st.UID), int(st.GID), true
	}
	return 0, 0, false
}

// ReadLink reads a symlink's target.
func (c *Conn) ReadLink(p string) (string, error) {
	s, err := c.SFTP()
	if err != nil {
		return "", fmt.Errorf("readlink %s: %w", p, err)
	}
	var t string
	if err := c.bounded(s, func() (e error) { t, e = s.ReadLink(p); return }); err != nil {
		return "", c.wrapErr("readlink "+p, err)
	}
	return t, nil
}

// MkdirAll creates p and missing parents with mode (set explicitly, so the
// server's umask does not decide). Existing directories are left as they are.
func (c *Conn) MkdirAll(p string, mode fs.FileMode) error {
	s, err := c.SFTP()
	if err != nil {
		return err
	}
	if !path.IsAbs(p) {
		return fmt.Errorf("machine %s: mkdir %s: remote paths must be absolute", c.Target.Machine, p)
	}
	// Most calls are for directories that exist already (every file of a
	// jail lands in one): one round trip settles those, instead of a stat
	// per component.
	if fi, err := s.Stat(p); err == nil && fi.IsDir() {
		return nil
	}
	cur := "/"
	for _, part := range strings.Split(path.Clean(p), "/") {
		if part == "" {
			continue
		}
		cur = path.Join(cur, part)
		fi, err := s.Stat(cur)
		if err == nil {
			if !fi.IsDir() {
				return fmt.Errorf("machine %s: mkdir %s: %s exists and is not a directory", c.Target.Machine, p, cur)
			}
			continue
		}
		if !errors.Is(err, fs.ErrNotExist) {
			return c.wrapErr("mkdir "+cur, err)
		}
		if err := s.Mkdir(cur); err != nil {
			// Someone else may have made it meanwhile.
			if fi, serr := s.Stat(cur); serr != nil || !fi.IsDir() {
				return c.wrapErr("mkdir "+cur, err)
			}
			continue
		}
		if err := s.Chmod(cur, mode); err != nil {
			return c.wrapErr("chmod "+cur, err)
		}
	}
	return nil
}

// Remove removes a file or an empty directory.
func (c *Conn) Remove(p string) error {
	s, err := c.SFTP()
	if err != nil {
		return err
	}
	if err := s.Remove(p); err != nil {
		return c.wrapErr("remove "+p, err)
	}
	return nil
}

// Rename replaces newpath with oldpath atomically (posix-rename@openssh.com:
// plain SFTP rename fails on OpenSSH when newpath exists).
func (c *Conn) Rename(oldpath, newpath string) error {
	s, err := c.SFTP()
	if err != nil {
		return err
	}
	if _, ok := s.HasExtension("posix-rename@openssh.com"); !ok {
		return fmt.Errorf("machine %s: rename %s: the SFTP server lacks posix-rename@openssh.com, which atomic replacement needs (OpenSSH's sftp-server has it)", c.Target.Machine, newpath)
	}
	if err := s.PosixRename(oldpath, newpath); err != nil {
		return c.wrapErr("rename "+oldpath+" to "+newpath, err)
	}
	return nil
}

// ErrSymlink says a path inside a jail root goes through a symlink.
var ErrSymlink = errors.New("a symlink inside a jail root")

// CheckNoSymlinks refuses p when any component of it below root (p itself
// included, when it exists) is a symlink: inside a jail root, a symlink
// planted by the jail could make root write outside it. Components that do
// not exist yet are fine: what arbo creates there is not a link.
func (c *Conn) CheckNoSymlinks(root, p string) error {
	s, err := c.SFTP()
	if err != nil {
		return err
	}
	root, p = path.Clean(root), path.Clean(p)
	rel := strings.TrimPrefix(p, root)
	if rel == p && p != root || (rel != "" && !strings.HasPrefix(rel, "/")) {
		return fmt.Errorf("machine %s: %s is not under %s", c.Target.Machine, p, root)
	}
	var comps []string
	cur := root
	for _, part := range strings.Split(rel, "/") {
		if part == "" {
			continue
		}
		if part == ".." {
			return fmt.Errorf("machine %s: %s climbs out of %s", c.Target.Machine, p, root)
		}
		cur = path.Join(cur, part)
		comps = append(comps, cur)
	}
	// All the lstats go out at once (the SFTP client pipelines them: one
	// round trip, not one per component); the answers are then judged in
	// path order, as a walk from root would.
	type answer struct {
		fi  fs.FileInfo
		err error
	}
	answers := make([]answer, len(comps))
	var wg sync.WaitGroup
	for i, comp := range comps {
		wg.Add(1)
		go func() {
			defer wg.Done()
			fi, err := s.Lstat(comp)
			answers[i] = answer{fi, err}
		}()
	}
	wg.Wait()
	for i, comp := range comps {
		fi, err := answers[i].fi, answers[i].err
		if errors.Is(err, fs.ErrNotExist) {
			return nil
		}
		if err != nil {
			return c.wrapErr("lstat "+comp, err)
		}
		if fi.Mode()&fs.ModeSymlink != 0 {
			return fmt.Errorf("machine %s: refusing to write %s: %s is %w %s; remove it (and find out who made it)", c.Target.Machine, p, comp, ErrSymlink, root)
		}
	}
	return nil
}

// WriteFileAtomic replaces p with content, mode and owner so that p holds
// the old content or the new one, never a mix or nothing, whatever cuts the
// connection. uid or gid -1 leaves that one to the server (the login user).
func (c *Conn) WriteFileAtomic(p string, content []byte, mode fs.FileMode, uid, gid int) error {
	return c.writeFileAtomic(p, content, mode, uid, gid, false)
}

// WriteFileAtomicKeepPrev is WriteFileAtomic that first keeps the current
// regular file at p, if any, as p.arbo-prev.
func (c *Conn) WriteFileAtomicKeepPrev(p string, content []byte, mode fs.FileMode, uid, gid int) error {
	return c.writeFileAtomic(p, content, mode, uid, gid, true)
}

// PrevSuffix names the previous version kept by WriteFileAtomicKeepPrev.
const PrevSuffix = ".arbo-prev"

// TempMarker is in the name of every temporary file arbo writes
// (.<base>.arbo-tmp-<random>), so that leftovers of a cut run can be found.
const TempMarker = ".arbo-tmp-"

func (c *Conn) writeFileAtomic(p string, content []byte, mode fs.FileMode, uid, gid int, keepPrev bool) (err error) {
	s, err := c.SFTP()
	if err != nil {
		return err
	}
	if !path.IsAbs(p) {
		return fmt.Errorf("machine %s: write %s: remote paths must be absolute", c.Target.Machine, p)
	}
	if _, ok := s.HasExtension("posix-rename@openssh.com"); !ok {
		return fmt.Errorf("machine %s: write %s: the SFTP server lacks posix-rename@openssh.com, which atomic replacement needs (OpenSSH's sftp-server has it)", c.Target.Machine, p)
	}
	dir, base := path.Split(p)
	var rnd [6]byte
	if _, err := rand.Read(rnd[:]); err != nil {
		return fmt.Errorf("write %s: %w", p, err)
	}
	tmp := path.Join(dir, "."+base+TempMarker+hex.EncodeToString(rnd[:]))

	f, err := s.OpenFile(tmp, os.O_WRONLY|os.O_CREATE|os.O_EXCL)
	if err != nil {
		return c.wrapErr("write "+p+": creating "+tmp, err)
	}
	closed := false
	defer func() {
		if err != nil {
			if !closed {
				f.Close()
			}
			// Best effort: when the connection is what failed, the
			// temporary file stays (named with TempMarker) for a later run.
			_ = s.Remove(tmp)
		}
	}()
	// Owner and mode before any content: a secret (an Erlang cookie) must
	// never sit readable by others, not even in the temporary file.
	// chown before chmod, since chown may clear set-id bits.
	if uid >= 0 || gid >= 0 {
		if err = f.Chown(uid, gid); err != nil {
			return c.wrapErr(fmt.Sprintf("write %s: chown %d:%d", p, uid, gid), err)
		}
	}
	if err = f.Chmod(mode); err != nil {
		return c.wrapErr(fmt.Sprintf("write %s: chmod %o", p, mode.Perm()), err)
	}
	if _, err = f.Write(content); err != nil {
		return c.wrapErr("write "+p, err)
	}
	if _, ok := s.HasExtension("fsync@openssh.com"); ok {
		// The rename must not reach the disk before the data does, or a
		// crash could leave an empty file under the real name.
		if err = f.Sync(); err != nil {
			return c.wrapErr("write "+p+": fsync", err)
		}
	}
	closed = true
	if err = f.Close(); err != nil {
		return c.wrapErr("write "+p+": close", err)
	}
	if keepPrev {
		if err = c.keepPrev(s, p); err != nil {
			return err
		}
	}
	if err = s.PosixRename(tmp, p); err != nil {
		return c.wrapErr("write "+p+": rename into place", err)
	}
	return nil
}

// keepPrev keeps the current p as p.arbo-prev. A hard link, not a rename:
// renaming p away would leave a moment with no file at p (a reader, or a
// cut connection, would find it missing); and not a copy when the server
// can link (hardlink@openssh.com): the link is atomic and exact, keeping
// the content, mode and owner of the very inode that the rename replaces.
// The copy is only the fallback for servers without the extension.
func (c *Conn) keepPrev(s *sftp.Client, p string) error {
	fi, err := s.Lstat(p)
	if errors.Is(err, fs.ErrNotExist) {
		return nil
	}
	if err != nil {
		return c.wrapErr("lstat "+p, err)
	}
	if !fi.Mode().IsRegular() {
		return nil // a symlink or stranger: nothing of ours to keep
	}
	prev := p + PrevSuffix
	if err := s.Remove(prev); err != nil && !errors.Is(err, fs.ErrNotExist) {
		return c.wrapErr("remove "+prev, err)
	}
	if _, ok := s.HasExtension("hardlink@openssh.com"); ok {
		if err := s.Link(p, prev); err != nil {
			return c.wrapErr("link "+p+" to "+prev, err)
		}
		return nil
	}
	old, err := c.ReadFile(p)
	if err != nil {
		return err
	}
	uid, gid, ok := Owner(fi)
	if !ok {
		uid, gid = -1, -1
	}
	return c.writeFileAtomic(prev, old, fi.Mode().Perm(), uid, gid, false)
}
