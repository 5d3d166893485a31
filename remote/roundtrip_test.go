package remote

import (
	"bytes"
	"errors"
	"io"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// countingReader is a reader whose every Read is a round trip, as an
// sftp.File's is; it returns at most what was asked and EOF on its own call.
type countingReader struct {
	data  []byte
	off   int
	reads int
}

func (r *countingReader) Read(b []byte) (int, error) {
	r.reads++
	if r.off >= len(r.data) {
		return 0, io.EOF
	}
	n := copy(b, r.data[r.off:])
	r.off += n
	return n, nil
}

func TestReadAllRoundTrips(t *testing.T) {
	tests := []struct {
		size, maxReads int
	}{
		{0, 1},
		{1, 2},
		{1000, 2},
		{14 << 10, 2}, // a pfSense config.xml
		{readChunk, 2},
		{readChunk + 1, 3},
		{100 << 10, 5},
	}
	for _, tt := range tests {
		data := bytes.Repeat([]byte("0123456789abcdef"), tt.size/16+1)[:tt.size]
		r := &countingReader{data: data}
		got, err := readAll(r)
		if err != nil {
			t.Fatalf("size %d: %v", tt.size, err)
		}
		if !bytes.Equal(got, data) {
			t.Errorf("size %d: read %d bytes, not the content", tt.size, len(got))
		}
		if r.reads > tt.maxReads {
			t.Errorf("size %d: %d reads, want at most %d", tt.size, r.reads, tt.maxReads)
		}
	}
}

type failingReader struct{ n int }

func (r *failingReader) Read(b []byte) (int, error) {
	if r.n == 0 {
		return 0, errors.New("connection lost")
	}
	r.n--
	return copy(b, "x"), nil
}

func TestReadAllError(t *testing.T) {
	if _, err := readAll(&failingReader{n: 3}); err == nil || !strings.Contains(err.Error(), "connection lost") {
		t.Errorf("readAll = %v, want the reader's error", err)
	}
}

// The lstats of CheckNoSymlinks go out together, but the verdict is the
// one a walk from the root gives: the first symlink on the path is named,
// and a missing component ends the check before any link below it.
func TestCheckNoSymlinksOrder(t *testing.T) {
	f := newFixture(t)
	c := dial(t, f.tgt)
	dir := t.TempDir()
	os.MkdirAll(filepath.Join(dir, "real", "sub"), 0o755)
	os.Symlink(filepath.Join(dir, "real"), filepath.Join(dir, "l1"))
	os.Symlink(filepath.Join(dir, "real", "sub"), filepath.Join(dir, "real", "l2"))
	tests := []struct {
		p       string
		wantErr string // "" = no error; else the component the message names
	}{
		{filepath.Join(dir, "real", "sub", "f"), ""},
		{filepath.Join(dir, "real", "l2", "f"), filepath.Join(dir, "real", "l2") + " is a symlink"},
		{filepath.Join(dir, "l1", "l2", "f"), filepath.Join(dir, "l1") + " is a symlink"},
		{filepath.Join(dir, "missing", "l2", "f"), ""},
		{filepath.Join(dir, "real", "l2"), filepath.Join(dir, "real", "l2") + " is a symlink"},
	}
	for _, tt := range tests {
		err := c.CheckNoSymlinks(dir, tt.p)
		switch {
		case tt.wantErr == "" && err != nil:
			t.Errorf("%s: %v", tt.p, err)
		case tt.wantErr != "" && (err == nil || !strings.Contains(err.Error(), tt.wantErr)):
			t.Errorf("%s: %v, want an error naming %q", tt.p, err, tt.wantErr)
		}
	}
}
