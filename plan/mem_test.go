package plan

import (
	"context"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path"
	"strings"
	"sync"
	"time"

	"github.com/arbo-project/arbo/remote"
)

// memTarget is an in-memory machine for unit tests: files with modes and
// owners, and a command handler. The lab (real sshd) is for e2e/.
type memTarget struct {
	mu    sync.Mutex
	files map[string]memFile
	dirs  map[string]bool
	run   func(argv []string, stdin string) remote.Result
	calls [][]string
	// mtimes dates paths for Stat/Lstat (zero when unset); writeErr, when
	// set, makes WriteFileAtomic fail for the paths it returns an error for.
	mtimes   map[string]time.Time
	writeErr func(p string) error
	// pf is the machine's pf, as pfScript shows it: pfctl -f loads a
	// file's text as the listing, -e and -d switch it (kept beside run,
	// which still sees every call).
	pfOn    bool
	pfRules string
	// mounts are the jail views apply mounted: view → jail root. Paths
	// under a view are the root's (a nullfs mount); views count as
	// infrastructure, not as calls.
	mounts map[string]string
}

// real maps a path under a mounted view to the jail root's (m.mu held).
func (m *memTarget) real(p string) string {
	for v, r := range m.mounts {
		if p == v || strings.HasPrefix(p, v+"/") {
			return r + strings.TrimPrefix(p, v)
		}
	}
	return p
}

// views runs apply's view scripts: mount (printing the roots that exist)
// and unmount.
func (m *memTarget) views(argv []string) (remote.Result, bool) {
	if len(argv) < 4 || argv[0] != "/bin/sh" {
		return remote.Result{}, false
	}
	m.mu.Lock()
	defer m.mu.Unlock()
	if m.mounts == nil {
		m.mounts = map[string]string{}
	}
	switch argv[2] {
	case mountViewsScript:
		var out strings.Builder
		args := argv[5:]
		for i := 0; i+1 < len(args); i += 2 {
			r, v := args[i], args[i+1]
			exists := m.dirs[r]
			for p := range m.files {
				exists = exists || strings.HasPrefix(p, r+"/")
			}
			if exists {
				m.mounts[v] = r
				out.WriteString(r + "\n")
			}
		}
		return remote.Result{Stdout: []byte(out.String())}, true
	case unmountViewsScript:
		for _, v := range argv[4:] {
			delete(m.mounts, v)
		}
		return remote.Result{}, true
	}
	return remote.Result{}, false
}

type memFile struct {
	content  []byte
	mode     fs.FileMode
	uid, gid int
	link     bool
}

func newMem() *memTarget {
	return &memTarget{files: map[string]memFile{}, dirs: map[string]bool{"/": true}}
}

type memInfo struct {
	name  string
	f     memFile
	dir   bool
	mtime time.Time
}

func (i memInfo) Name() string { return i.name }
func (i memInfo) Size() int64  { return int64(len(i.f.content)) }
func (i memInfo) Mode() fs.FileMode {
	switch {
	case i.dir:
		return fs.ModeDir | 0o755
	case i.f.link:
		return fs.ModeSymlink | 0o777
	}
	return i.f.mode
}
func (i memInfo) ModTime() time.Time { return i.mtime }
func (i memInfo) IsDir() bool        { return i.dir }
func (i memInfo) Sys() any           { return nil }

func (m *memTarget) ReadFiles(_ context.Context, paths []string) (map[string][]byte, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	out := map[string][]byte{}
	for _, p := range paths {
		if f, ok := m.files[m.real(p)]; ok && !f.link {
			out[p] = append([]byte(nil), f.content...)
		}
	}
	return out, nil
}

func (m *memTarget) stat(p string) (fs.FileInfo, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	p = m.real(p)
	if f, ok := m.files[p]; ok {
		return memInfo{name: path.Base(p), f: f, mtime: m.mtimes[p]}, nil
	}
	if m.dirs[p] {
		return memInfo{name: path.Base(p), dir: true, mtime: m.mtimes[p]}, nil
	}
	return nil, &fs.PathError{Op: "stat", Path: p, Err: fs.ErrNotExist}
}

func (m *memTarget) Stat(p string) (fs.FileInfo, error)  { return m.stat(p) }
func (m *memTarget) Lstat(p string) (fs.FileInfo, error) { return m.stat(p) }

func (m *memTarget) Run(_ context.Context, argv []string, o remote.RunOpts) (remote.Result, error) {
	var stdin string
	if o.Stdin != nil {
		b, err := io.ReadAll(o.Stdin)
		if err != nil {
			return remote.Result{}, err
		}
		stdin = string(b)
	}
	if r, ok := m.views(argv); ok {
		return r, nil
	}
	if r, ok := m.guard(argv); ok {
		return r, nil
	}
	m.mu.Lock()
	if len(argv) == 3 && argv[2] == pfScript {
		defer m.mu.Unlock()
		info := "Status: Disabled for 0 days 00:00:00           Debug: Urgent\n"
		if m.pfOn {
			info = "Status: Enabled for 0 days 00:00:00            Debug: Urgent\n"
		}
		return remote.Result{Stdout: []byte(info + "--arbo-- 0\n" + m.pfRules + "--arbo-- 0\n--arbo-- 0\nlo0 (skip)\n--arbo-- 0\n--arbo-- 0\n")}, nil
	}
	if len(argv) == 3 && argv[0] == "pfctl" && argv[1] == "-s" && argv[2] == "info" {
		m.calls = append(m.calls, argv)
		st := "Disabled"
		if m.pfOn {
			st = "Enabled"
		}
		m.mu.Unlock()
		return remote.Result{Stdout: []byte("Status: " + st + " for 0 days 00:00:00            Debug: Urgent\n")}, nil
	}
	if len(argv) >= 2 && argv[0] == "pfctl" {
		switch argv[1] {
		case "-e":
			m.pfOn = true
		case "-d":
			m.pfOn = false
		case "-f":
			if len(argv) > 2 {
				m.pfRules = string(m.files[argv[2]].content)
			}
		}
	}
	m.calls = append(m.calls, argv)
	h := m.run
	m.mu.Unlock()
	if h != nil {
		return h(argv, stdin), nil
	}
	return remote.Result{}, nil
}

func (m *memTarget) WriteFileAtomic(p string, content []byte, mode fs.FileMode, uid, gid int) error {
	m.mu.Lock()
	defer m.mu.Unlock()
	p = m.real(p)
	if m.writeErr != nil {
		if err := m.writeErr(p); err != nil {
			return err
		}
	}
	m.files[p] = memFile{content: append([]byte(nil), content...), mode: mode, uid: uid, gid: gid}
	return nil
}

func (m *memTarget) WriteFileAtomicKeepPrev(p string, content []byte, mode fs.FileMode, uid, gid int) error {
	m.mu.Lock()
	p = m.real(p)
	if old, ok := m.files[p]; ok {
		m.files[p+".arbo-prev"] = old
	}
	m.mu.Unlock()
	return m.WriteFileAtomic(p, content, mode, uid, gid)
}

func (m *memTarget) MkdirAll(p string, _ fs.FileMode) error {
	m.mu.Lock()
	defer m.mu.Unlock()
	p = m.real(p)
	for ; p != "/" && p != "."; p = path.Dir(p) {
		m.dirs[p] = true
	}
	return nil
}

func (m *memTarget) Remove(p string) error {
	m.mu.Lock()
	defer m.mu.Unlock()
	p = m.real(p)
	if _, ok := m.files[p]; ok {
		delete(m.files, p)
		return nil
	}
	if m.dirs[p] {
		delete(m.dirs, p)
		return nil
	}
	return &fs.PathError{Op: "remove", Path: p, Err: os.ErrNotExist}
}

func (m *memTarget) CheckNoSymlinks(root, p string) error {
	m.mu.Lock()
	defer m.mu.Unlock()
	root, p = m.real(root), m.real(p)
	for cur := p; strings.HasPrefix(cur, root+"/"); cur = path.Dir(cur) {
		if f, ok := m.files[cur]; ok && f.link {
			return fmt.Errorf("%s: %w", cur, remote.ErrSymlink)
		}
	}
	return nil
}

func (m *memTarget) ran(prefix ...string) bool {
	m.mu.Lock()
	defer m.mu.Unlock()
	for _, c := range m.calls {
		if len(c) >= len(prefix) && strings.Join(c[:len(prefix)], " ") == strings.Join(prefix, " ") {
			return true
		}
	}
	return false
}

// callIndex is the index of the first call starting with prefix, or -1.
func (m *memTarget) callIndex(prefix ...string) int {
	m.mu.Lock()
	defer m.mu.Unlock()
	for i, c := range m.calls {
		if len(c) >= len(prefix) && strings.Join(c[:len(prefix)], " ") == strings.Join(prefix, " ") {
			return i
		}
	}
	return -1
}

// guard plays the commit-confirmed guard scripts (plan/guard.go) on the
// state file; TestGuardScripts runs the real ones. The waiter is not
// started: it would act only after the test.
func (m *memTarget) guard(argv []string) (remote.Result, bool) {
	if len(argv) < 5 || argv[0] != "/bin/sh" || (argv[1] != pfGuard.path && argv[1] != configGuard.path) {
		return remote.Result{}, false
	}
	m.mu.Lock()
	defer m.mu.Unlock()
	m.calls = append(m.calls, argv)
	cmd, st, tok := argv[2], argv[3], argv[4]
	cur := strings.Fields(string(m.files[st].content))
	put := func(state, arg string) {
		m.files[st] = memFile{content: []byte(tok + " " + state + " 0 " + arg + "\n"), mode: 0o644}
	}
	switch cmd {
	case "arm":
		arg := argv[6]
		if len(cur) == 4 && cur[1] == "armed" && cur[0] != tok {
			arg = cur[3]
		}
		put("armed", arg)
		return remote.Result{Stdout: []byte("armed " + arg + "\n")}, true
	case "confirm", "standdown":
		if len(cur) != 4 || cur[0] != tok || cur[1] != "armed" {
			return remote.Result{Exit: 3}, true
		}
		if cmd == "confirm" {
			put("confirmed", cur[3])
		} else {
			put("stooddown", cur[3])
		}
		return remote.Result{}, true
	}
	return remote.Result{Exit: 2}, true
}
