//go:build linux

package lab

import (
	"bufio"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
	"syscall"

	"golang.org/x/sys/unix"

	"github.com/arbo-project/arbo/internal/lab/emu"
)

// The faults of LAB.md, "Faults the lab can cause". Each works the same on a
// lab started by Up in this process and on one opened from its directory.

// CutConnections closes the machine's current connections now: clients see
// EOF, as when a cable is pulled and the peer notices.
func (m *Machine) CutConnections() error {
	if ps := m.lab.proxies; ps != nil {
		return ps.do("cut " + m.Name)
	}
	return controlRequest(m.lab.st.Control, "cut "+m.Name)
}

// CutAfterBytes lets n more bytes go from clients to the machine, then cuts
// every connection to it (e.g. in the middle of an upload). One shot.
func (m *Machine) CutAfterBytes(n int64) error {
	req := fmt.Sprintf("cut-after %s %d", m.Name, n)
	if ps := m.lab.proxies; ps != nil {
		return ps.do(req)
	}
	return controlRequest(m.lab.st.Control, req)
}

// StopSSHD stops the machine's sshd: new connections fail. Sessions already
// open go on, as with `service sshd stop` on FreeBSD.
func (m *Machine) StopSSHD() error {
	return m.lab.update(m.Name, stopSSHD)
}

// StartSSHD starts the machine's sshd again.
func (m *Machine) StartSSHD() error {
	return m.lab.update(m.Name, func(ms *machineState) error {
		if alive(ms.SSHDPID, ms.sshdConfigPath()) {
			return nil
		}
		return startSSHD(ms)
	})
}

// ChangeHostKey gives the machine a new host key and restarts its sshd. The
// lab's known_hosts keeps the old key, so careful clients must refuse.
func (m *Machine) ChangeHostKey() error {
	return m.lab.update(m.Name, func(ms *machineState) error {
		if err := stopSSHD(ms); err != nil {
			return err
		}
		key := filepath.Join(ms.State, hostKeyName)
		_ = os.Remove(key)
		_ = os.Remove(key + ".pub")
		if _, err := newKey(key, "root@"+ms.Name); err != nil {
			return err
		}
		return startSSHD(ms)
	})
}

// FailCommand makes the emulated command fail (exit 1, msg on stderr) until
// ClearFail.
func (m *Machine) FailCommand(name, msg string) error {
	if !safeName.MatchString(name) {
		return fmt.Errorf("fail: bad command name %q", name)
	}
	return m.writeState(filepath.Join(emu.FailDir, name), msg)
}

// ClearFail ends FailCommand.
func (m *Machine) ClearFail(name string) error {
	if !safeName.MatchString(name) {
		return fmt.Errorf("fail: bad command name %q", name)
	}
	err := os.Remove(emu.Path(m.Root, filepath.Join(emu.FailDir, name)))
	if err != nil && !errors.Is(err, fs.ErrNotExist) {
		return fmt.Errorf("clear fail %s: %w", name, err)
	}
	return nil
}

// RejectNextConfig makes the gateway's loader reject the next config.xml it
// loads.
func (m *Machine) RejectNextConfig() error {
	if m.state().Kind != kindGateway {
		return fmt.Errorf("reject-next-config: %s is not the gateway", m.Name)
	}
	if _, err := os.Stat(emu.Path(m.Root, "/etc/inc/filter.inc")); err == nil {
		// pfSense's own parser (xmlparse.inc) decides there; the lab does not
		// reach into it.
		return fmt.Errorf("reject-next-config: %s runs pfSense's own config parser, which the lab does not override: use reject-next-ruleset (pfctl refuses the generated ruleset)", m.Name)
	}
	return m.writeState(emu.FailConfigLoad, "lab: config.xml rejected (fault injected)")
}

// RejectNextRuleset makes pfctl refuse the next main ruleset it is asked to
// load (one shot). On the pfSense gateway that is the ruleset pfSense
// generates from the next config.xml: pfSense then loads its previous rules
// again and its reload still exits 0 (filter.inc:515-564).
func (m *Machine) RejectNextRuleset() error {
	return m.writeState(emu.FailRulesLoad, "syntax error (lab: ruleset rejected, fault injected)")
}

// SetFirewall sets the emulated firewall's verdict on SSH directly: while
// blocked, the machine refuses new connections and keeps existing ones.
func (m *Machine) SetFirewall(blocked bool) error {
	v := "open"
	if blocked {
		v = "blocked"
	}
	return m.writeState(emu.FirewallFile, v)
}

func (m *Machine) writeState(path, content string) error {
	p := emu.Path(m.Root, path)
	if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
		return fmt.Errorf("machine %s: %w", m.Name, err)
	}
	if content != "" && !strings.HasSuffix(content, "\n") {
		content += "\n"
	}
	return writeFileAtomic(p, []byte(content), 0o644)
}

// FillDisk mounts a file system of size bytes at path inside the machine,
// holding what was there, and fills it up: the next write there fails with
// ENOSPC. Down unmounts it.
func (m *Machine) FillDisk(path string, size int64) error {
	if !filepath.IsAbs(path) || filepath.Clean(path) == "/" {
		return fmt.Errorf("fill-disk: %q: give an absolute path below /", path)
	}
	if size < 4096 {
		size = 4096
	}
	target := emu.Path(m.Root, filepath.Clean(path))
	// A symlink inside the machine points at machine paths; following it
	// here would mount over the host's.
	rel := strings.TrimPrefix(filepath.Clean(path), "/")
	cur := m.Root
	for _, part := range strings.Split(rel, "/") {
		cur = filepath.Join(cur, part)
		fi, err := os.Lstat(cur)
		if errors.Is(err, fs.ErrNotExist) {
			if err := os.MkdirAll(target, 0o755); err != nil {
				return fmt.Errorf("fill-disk: %w", err)
			}
			break
		}
		if err != nil {
			return fmt.Errorf("fill-disk: %w", err)
		}
		if fi.Mode()&fs.ModeSymlink != 0 {
			return fmt.Errorf("fill-disk: %s is a symlink in the machine; give the path it points to", strings.TrimPrefix(cur, m.Root))
		}
	}
	return m.lab.update(m.Name, func(*machineState) error {
		tmp, err := os.MkdirTemp(m.lab.st.Home, ".fill-")
		if err != nil {
			return fmt.Errorf("fill-disk: %w", err)
		}
		defer os.Remove(tmp)
		if err := unix.Mount("tmpfs", tmp, "tmpfs", 0, "size="+strconv.FormatInt(size, 10)+",mode=0755"); err != nil {
			return fmt.Errorf("fill-disk: mount tmpfs: %w", err)
		}
		defer func() { _ = unix.Unmount(tmp, unix.MNT_DETACH) }()
		if err := copyTree(target, tmp); err != nil {
			return fmt.Errorf("fill-disk: %s does not fit in %d bytes: %w", path, size, err)
		}
		if err := unix.Mount(tmp, target, "", unix.MS_BIND, ""); err != nil {
			return fmt.Errorf("fill-disk: bind %s: %w", path, err)
		}
		m.lab.st.Mounts = append(m.lab.st.Mounts, target)
		return fill(filepath.Join(target, ".lab-fill"))
	})
}

// fill writes zeros to path until the file system is full.
func fill(path string) error {
	f, err := os.OpenFile(path, os.O_WRONLY|os.O_CREATE|os.O_TRUNC, 0o600)
	if err != nil {
		return fmt.Errorf("fill-disk: %w", err)
	}
	defer f.Close()
	buf := make([]byte, 64*1024)
	for {
		if _, err := f.Write(buf); err != nil {
			if errors.Is(err, syscall.ENOSPC) {
				break
			}
			return fmt.Errorf("fill-disk: %w", err)
		}
	}
	// Fill the last partial block too, one byte at a time.
	for {
		if _, err := f.Write(buf[:1]); err != nil {
			break
		}
	}
	return nil
}

// copyTree copies the directory src into dst (which exists), keeping modes,
// owners and symlinks.
func copyTree(src, dst string) error {
	return filepath.WalkDir(src, func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		rel, err := filepath.Rel(src, p)
		if err != nil {
			return err
		}
		to := filepath.Join(dst, rel)
		fi, err := os.Lstat(p)
		if err != nil {
			return err
		}
		switch {
		case fi.IsDir():
			if rel != "." {
				if err := os.Mkdir(to, fi.Mode().Perm()); err != nil {
					return err
				}
			}
		case fi.Mode()&fs.ModeSymlink != 0:
			t, err := os.Readlink(p)
			if err != nil {
				return err
			}
			return os.Symlink(t, to)
		case fi.Mode().IsRegular():
			if err := copyRegular(p, to, fi.Mode()); err != nil {
				return err
			}
		default:
			return nil // sockets, devices: not on the file systems arbo fills
		}
		if st, ok := fi.Sys().(*syscall.Stat_t); ok {
			_ = os.Lchown(to, int(st.Uid), int(st.Gid))
		}
		return os.Chmod(to, fi.Mode()&(fs.ModePerm|fs.ModeSticky|fs.ModeSetuid|fs.ModeSetgid))
	})
}

func copyRegular(src, dst string, mode fs.FileMode) error {
	in, err := os.Open(src)
	if err != nil {
		return err
	}
	defer in.Close()
	out, err := os.OpenFile(dst, os.O_WRONLY|os.O_CREATE|os.O_EXCL, mode.Perm())
	if err != nil {
		return err
	}
	_, err = io.Copy(out, in)
	if cerr := out.Close(); err == nil {
		err = cerr
	}
	return err
}

// unmountUnder unmounts every file system mounted below dir, deepest first.
func unmountUnder(dir string) error {
	f, err := os.Open("/proc/self/mountinfo")
	if err != nil {
		return fmt.Errorf("unmount: %w", err)
	}
	defer f.Close()
	prefix := filepath.Clean(dir) + "/"
	var points []string
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		fields := strings.Fields(sc.Text())
		if len(fields) < 5 {
			continue
		}
		mp := unescapeMount(fields[4])
		if strings.HasPrefix(mp, prefix) {
			points = append(points, mp)
		}
	}
	sort.Slice(points, func(i, j int) bool { return len(points[i]) > len(points[j]) })
	var errs []error
	for _, p := range points {
		if err := unix.Unmount(p, 0); err != nil {
			if err := unix.Unmount(p, unix.MNT_DETACH); err != nil && !errors.Is(err, unix.EINVAL) {
				errs = append(errs, fmt.Errorf("unmount %s: %w", p, err))
			}
		}
	}
	return errors.Join(errs...)
}

// unescapeMount undoes mountinfo's octal escapes (\040 for a space).
func unescapeMount(s string) string {
	if !strings.Contains(s, `\`) {
		return s
	}
	var b strings.Builder
	for i := 0; i < len(s); i++ {
		if s[i] == '\\' && i+3 < len(s) {
			if n, err := strconv.ParseUint(s[i+1:i+4], 8, 8); err == nil {
				b.WriteByte(byte(n))
				i += 3
				continue
			}
		}
		b.WriteByte(s[i])
	}
	return b.String()
}

// update changes one machine's processes under the directory lock and
// records the result, so that down finds what a fault command started.
func (l *Lab) update(name string, f func(*machineState) error) error {
	unlock, err := lockDir(l.dir)
	if err != nil {
		return err
	}
	defer unlock()
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.downed {
		return errors.New("the lab is down")
	}
	if cur, err := readState(l.dir); err == nil && cur.ID == l.st.ID {
		*l.st = *cur
	}
	var ms *machineState
	for i := range l.st.Machines {
		if l.st.Machines[i].Name == name {
			ms = &l.st.Machines[i]
		}
	}
	if ms == nil {
		return fmt.Errorf("no machine %q in this lab", name)
	}
	ferr := f(ms)
	if err := writeState(l.dir, l.st); err != nil {
		return errors.Join(ferr, err)
	}
	return ferr
}
