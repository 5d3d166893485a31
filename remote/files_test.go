package remote

import (
	"bytes"
	"context"
	"errors"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"
)

func TestWriteFileAtomic(t *testing.T) {
	f := newFixture(t)
	c := dial(t, f.tgt)
	dir := t.TempDir()
	uid, gid := os.Getuid(), os.Getgid()

	tests := []struct {
		name     string
		existing string // "" = no file before
		keepPrev bool
		mode     fs.FileMode
	}{
		{name: "new file", mode: 0o644},
		{name: "replace", existing: "old\n", mode: 0o600},
		{name: "replace keeping prev", existing: "old\n", keepPrev: true, mode: 0o640},
		{name: "new file keeping prev", keepPrev: true, mode: 0o755},
	}
	for i, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			p := filepath.Join(dir, "f"+string(rune('a'+i)), "rc.conf")
			if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
				t.Fatal(err)
			}
			if tt.existing != "" {
				if err := os.WriteFile(p, []byte(tt.existing), 0o644); err != nil {
					t.Fatal(err)
				}
			}
			content := []byte("new content: $x 'quoted'\n")
			write := c.WriteFileAtomic
			if tt.keepPrev {
				write = c.WriteFileAtomicKeepPrev
			}
			if err := write(p, content, tt.mode, uid, gid); err != nil {
				t.Fatal(err)
			}
			got, err := os.ReadFile(p)
			if err != nil || !bytes.Equal(got, content) {
				t.Errorf("content %q, %v", got, err)
			}
			st, _ := os.Stat(p)
			if st.Mode().Perm() != tt.mode {
				t.Errorf("mode %o, want %o", st.Mode().Perm(), tt.mode)
			}
			prev, err := os.ReadFile(p + PrevSuffix)
			switch {
			case tt.keepPrev && tt.existing != "":
				if string(prev) != tt.existing {
					t.Errorf("prev = %q, %v; want %q", prev, err, tt.existing)
				}
			case !errors.Is(err, fs.ErrNotExist):
				t.Errorf("unexpected %s: %q %v", PrevSuffix, prev, err)
			}
			ents, _ := os.ReadDir(filepath.Dir(p))
			for _, e := range ents {
				if strings.Contains(e.Name(), TempMarker) {
					t.Errorf("temporary file left: %s", e.Name())
				}
			}
			// Read back through SFTP with owner.
			fi, err := c.Stat(p)
			if err != nil {
				t.Fatal(err)
			}
			if u, g, ok := Owner(fi); !ok || u != uid || g != gid {
				t.Errorf("owner %d:%d (%v), want %d:%d", u, g, ok, uid, gid)
			}
		})
	}
}

func TestWriteFileAtomicSurvivesCut(t *testing.T) {
	f := newFixture(t)
	p := filepath.Join(t.TempDir(), "pf.conf")
	old := []byte("pass all\n")
	if err := os.WriteFile(p, old, 0o600); err != nil {
		t.Fatal(err)
	}
	// The connection dies after 256 KiB of a 2 MiB write.
	f.srv.CutSFTPAfter.Store(256 << 10)
	c := dial(t, f.tgt)
	big := bytes.Repeat([]byte("block in all\n"), 2<<20/13)
	err := c.WriteFileAtomic(p, big, 0o600, -1, -1)
	if err == nil {
		t.Fatal("a write cut in the middle reported success")
	}
	if !strings.Contains(err.Error(), "m1") {
		t.Errorf("error does not name the machine: %v", err)
	}
	got, rerr := os.ReadFile(p)
	if rerr != nil || !bytes.Equal(got, old) {
		t.Errorf("after the cut the target holds %d bytes (%v), want the old %q", len(got), rerr, old)
	}
}

func TestReadFiles(t *testing.T) {
	f := newFixture(t)
	c := dial(t, f.tgt)
	dir := t.TempDir()
	want := map[string][]byte{}
	var paths []string
	for i := range 20 {
		p := filepath.Join(dir, "f", string(rune('a'+i)))
		paths = append(paths, p)
		if i%4 == 3 {
			continue // missing
		}
		want[p] = bytes.Repeat([]byte{byte('a' + i)}, 1000*i+1)
	}
	os.MkdirAll(filepath.Join(dir, "f"), 0o755)
	for p, b := range want {
		os.WriteFile(p, b, 0o644)
	}
	got, err := c.ReadFiles(context.Background(), paths)
	if err != nil {
		t.Fatal(err)
	}
	if len(got) != len(want) {
		t.Errorf("%d files, want %d", len(got), len(want))
	}
	for p, b := range want {
		if !bytes.Equal(got[p], b) {
			t.Errorf("%s: %d bytes, want %d", p, len(got[p]), len(b))
		}
	}
	_, err = c.ReadFile(filepath.Join(dir, "nope"))
	if !errors.Is(err, fs.ErrNotExist) || !strings.Contains(err.Error(), "machine m1") {
		t.Errorf("missing file: %v", err)
	}
}

func TestFileOperations(t *testing.T) {
	f := newFixture(t)
	c := dial(t, f.tgt)
	dir := t.TempDir()

	deep := filepath.Join(dir, "a", "b", "c")
	if err := c.MkdirAll(deep, 0o750); err != nil {
		t.Fatal(err)
	}
	for _, d := range []string{filepath.Join(dir, "a"), filepath.Join(dir, "a", "b"), deep} {
		st, err := os.Stat(d)
		if err != nil || !st.IsDir() || st.Mode().Perm() != 0o750 {
			t.Errorf("%s: %v %v", d, st.Mode(), err)
		}
	}
	if err := c.MkdirAll(deep, 0o700); err != nil {
		t.Errorf("MkdirAll on existing: %v", err)
	}
	file := filepath.Join(dir, "file")
	os.WriteFile(file, []byte("x"), 0o644)
	if err := c.MkdirAll(filepath.Join(file, "sub"), 0o755); err == nil {
		t.Error("MkdirAll through a file succeeded")
	}

	link := filepath.Join(dir, "link")
	os.Symlink("/etc", link)
	if fi, err := c.Lstat(link); err != nil || fi.Mode()&fs.ModeSymlink == 0 {
		t.Errorf("Lstat: %v %v", fi, err)
	}
	if target, err := c.ReadLink(link); err != nil || target != "/etc" {
		t.Errorf("ReadLink = %q, %v", target, err)
	}
	if err := c.CheckNoSymlinks(dir, filepath.Join(link, "passwd")); err == nil || !strings.Contains(err.Error(), "symlink") {
		t.Errorf("CheckNoSymlinks through a link: %v", err)
	}
	if err := c.CheckNoSymlinks(dir, filepath.Join(deep, "not", "yet")); err != nil {
		t.Errorf("CheckNoSymlinks on a plain path: %v", err)
	}
	if err := c.CheckNoSymlinks(dir, "/etc/passwd"); err == nil {
		t.Error("CheckNoSymlinks outside root succeeded")
	}

	other := filepath.Join(dir, "other")
	os.WriteFile(other, []byte("y"), 0o644)
	if err := c.Rename(other, file); err != nil {
		t.Fatalf("Rename over an existing file: %v", err)
	}
	if b, _ := os.ReadFile(file); string(b) != "y" {
		t.Errorf("after rename: %q", b)
	}
	if err := c.Remove(file); err != nil {
		t.Fatal(err)
	}
	if _, err := c.Stat(file); !errors.Is(err, fs.ErrNotExist) {
		t.Errorf("Stat after Remove: %v", err)
	}
}

func TestOneSFTPSessionForConcurrentUse(t *testing.T) {
	f := newFixture(t)
	c := dial(t, f.tgt)
	p := filepath.Join(t.TempDir(), "x")
	os.WriteFile(p, []byte("x"), 0o644)
	var wg sync.WaitGroup
	for range 30 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			if _, err := c.ReadFile(p); err != nil {
				t.Error(err)
			}
		}()
	}
	wg.Wait()
	if n := f.srv.MaxOpen.Load(); n != 1 {
		t.Errorf("%d sessions open at once, want the one SFTP session", n)
	}
}

// BenchmarkWriteFileAtomic measures one small config-file write over the
// in-process server (create, chmod, write, rename: five SFTP round trips).
func BenchmarkWriteFileAtomic(b *testing.B) {
	f := newFixture(b)
	c, err := Dial(context.Background(), f.tgt)
	if err != nil {
		b.Fatal(err)
	}
	defer c.Close()
	p := filepath.Join(b.TempDir(), "rc.conf.local")
	content := bytes.Repeat([]byte("ifconfig_lo1_alias0=\"inet 10.20.1.11/32\"\n"), 50)
	b.ResetTimer()
	for range b.N {
		if err := c.WriteFileAtomic(p, content, 0o644, -1, -1); err != nil {
			b.Fatal(err)
		}
	}
}

// A FIFO, a device or a huge (sparse) file at a path arbo reads is refused
// with the machine and the path, never read (issue 11 item 8): opening a
// FIFO would block until a writer came.
func TestReadFileRefusesNonRegularAndHuge(t *testing.T) {
	f := newFixture(t)
	c := dial(t, f.tgt)
	dir := t.TempDir()
	fifo := filepath.Join(dir, "fifo")
	if err := syscall.Mkfifo(fifo, 0o644); err != nil {
		t.Fatal(err)
	}
	huge := filepath.Join(dir, "huge")
	if err := os.WriteFile(huge, nil, 0o644); err != nil {
		t.Fatal(err)
	}
	if err := os.Truncate(huge, MaxReadSize+1); err != nil { // sparse: no disk used
		t.Fatal(err)
	}
	ok := filepath.Join(dir, "ok")
	if err := os.WriteFile(ok, []byte("fine\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		path string
		want error
	}{{fifo, ErrNotRegular}, {"/dev/null", ErrNotRegular}, {dir, ErrNotRegular}, {huge, ErrTooLarge}} {
		done := make(chan error, 1)
		go func() {
			_, err := c.ReadFiles(context.Background(), []string{ok, tc.path})
			done <- err
		}()
		select {
		case err := <-done:
			if !errors.Is(err, tc.want) || !strings.Contains(err.Error(), "machine m1") || !strings.Contains(err.Error(), tc.path) {
				t.Errorf("%s: %v, want %v naming machine m1 and the path", tc.path, err, tc.want)
			}
		case <-time.After(10 * time.Second):
			t.Fatalf("%s: ReadFiles hangs", tc.path)
		}
	}
	if b, err := c.ReadFile(ok); err != nil || string(b) != "fine\n" {
		t.Fatalf("regular file: %q %v", b, err)
	}
}

// A read the sftp-server never answers (stuck in an open() of a FIFO, a
// hung file system) fails after the read timeout, naming the machine and
// path, instead of hanging arbo; the next read gets a fresh SFTP session
// (issue 11, item 8).
func TestReadTimesOut(t *testing.T) {
	f := newFixture(t)
	f.tgt.ReadTimeout = 300 * time.Millisecond
	c := dial(t, f.tgt)
	dir := t.TempDir()
	ok := filepath.Join(dir, "ok")
	if err := os.WriteFile(ok, []byte("fine\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	if _, err := c.ReadFile(ok); err != nil { // the SFTP session is up
		t.Fatal(err)
	}
	f.srv.StallSFTP.Store(true)
	// The first read meets the open session (its stat is never answered);
	// the later ones a new session whose sftp-server never says hello.
	for _, tc := range []struct {
		name string
		read func() error
	}{
		{"ReadFile", func() error { _, err := c.ReadFile(ok); return err }},
		{"ReadFiles", func() error {
			_, err := c.ReadFiles(context.Background(), []string{ok, ok + "2", dir + "/x"})
			return err
		}},
		{"Lstat", func() error { _, err := c.Lstat(ok); return err }},
		{"ReadLink", func() error { _, err := c.ReadLink(ok); return err }},
	} {
		name, read := tc.name, tc.read
		start := time.Now()
		done := make(chan error, 1)
		go func() { done <- read() }()
		select {
		case err := <-done:
			if !errors.Is(err, ErrReadTimeout) || !strings.Contains(err.Error(), "machine m1") || !strings.Contains(err.Error(), dir+"/") {
				t.Errorf("%s: %v, want ErrReadTimeout naming machine m1 and a path in %s", name, err, dir)
			}
			if el := time.Since(start); el < 300*time.Millisecond {
				t.Errorf("%s: failed after %s, before the timeout", name, el)
			}
		case <-time.After(10 * time.Second):
			t.Fatalf("%s hangs", name)
		}
	}
	f.srv.StallSFTP.Store(false)
	if b, err := c.ReadFile(ok); err != nil || string(b) != "fine\n" {
		t.Fatalf("after a timeout, the next read: %q %v", b, err)
	}
}
