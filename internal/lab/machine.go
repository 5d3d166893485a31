//go:build linux

package lab

import (
	"debug/elf"
	_ "embed"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"regexp"
	"sort"
	"strings"
	"syscall"

	"golang.org/x/sys/unix"

	"github.com/arbo-project/arbo/internal/lab/emu"
)

//go:embed testdata/pfsense-default-config.xml
var defaultGatewayConfig []byte

// Where the Debian packages put what a machine needs (LAB.md, "How one
// machine is built").
var (
	sshdPath        = "/usr/sbin/sshd"
	busyboxPaths    = []string{"/bin/busybox", "/usr/bin/busybox"}
	bashStaticPaths = []string{"/bin/bash-static", "/usr/bin/bash-static"}
)

// emuPath is where the emulator binary lives inside a machine; emu.Links
// point at it.
const emuPath = "/usr/local/libexec/lab-emu"

// applets are the busybox commands a machine gets in /bin: the usual
// tools that arbo's remote steps and a person poking around use.
var applets = []string{
	"sh", "ash", "cat", "mv", "cp", "rm", "rmdir", "mkdir", "ls", "chmod", "chown", "chgrp",
	"sed", "grep", "egrep", "fgrep", "awk", "test", "[", "[[", "printf", "echo", "sleep",
	"touch", "ln", "stat", "find", "xargs", "tar", "gzip", "gunzip", "zcat", "xz", "unxz",
	"head", "tail", "wc", "sort", "uniq", "cut", "tr", "tee", "env", "id", "whoami", "date",
	"mktemp", "readlink", "realpath", "dirname", "basename", "true", "false", "kill", "ps",
	"pwd", "expr", "seq", "diff", "cmp", "od", "hexdump", "md5sum", "sha256sum", "du", "df",
	"truncate", "timeout", "which", "sync", "mkfifo", "less", "more", "vi", "nl", "rev",
	"tac", "yes", "usleep", "fold", "paste", "install", "base64", "dd", "mknod",
}

// dirs is the FreeBSD directory skeleton arbo writes into, plus what a
// chroot needs.
var dirs = []struct {
	path string
	mode os.FileMode
}{
	{"/bin", 0o755}, {"/sbin", 0o755}, {"/etc", 0o755}, {"/dev", 0o755},
	{"/tmp", os.ModeSticky | 0o777}, {"/root", 0o700},
	{"/usr/bin", 0o755}, {"/usr/sbin", 0o755}, {"/usr/libexec", 0o755},
	{"/usr/local/bin", 0o755}, {"/usr/local/sbin", 0o755}, {"/usr/local/libexec", 0o755},
	{"/usr/local/etc", 0o755}, {"/usr/local/etc/rc.d", 0o755}, {"/usr/local/etc/ezjail", 0o755},
	{"/usr/jails", 0o755}, {"/var/db", 0o755}, {"/var/run", 0o755}, {"/var/log", 0o755},
	{"/var/tmp", os.ModeSticky | 0o777}, {emu.StateDir, 0o755}, {emu.FailDir, 0o755},
}

const (
	passwd = `root:*:0:0:Charlie &:/root:/bin/bash
toor:*:0:0:Bourne-again Superuser:/root:
daemon:*:1:1:Owner of many system processes:/root:/usr/sbin/nologin
operator:*:2:5:System &:/:/usr/sbin/nologin
nobody:*:65534:65534:Unprivileged user:/nonexistent:/usr/sbin/nologin
`
	// group follows FreeBSD: root's primary group is wheel (gid 0), so that
	// `chown root:wheel` works by name.
	group = `wheel:*:0:root
daemon:*:1:
kmem:*:2:
sys:*:3:
tty:*:4:
operator:*:5:root
staff:*:20:
nogroup:*:65533:
nobody:*:65534:
`
	hosts = "::1\t\tlocalhost localhost.my.domain\n127.0.0.1\tlocalhost localhost.my.domain\n"
)

var safeName = regexp.MustCompile(`^[A-Za-z0-9][A-Za-z0-9._-]*$`)

// machineSpec is what building one machine needs.
type machineSpec struct {
	name, kind, domain string
	ifaces             []string // "em0 192.168.1.11/24"
	root               string
	emuBinary          string
	gatewayConfig      []byte
	basejail           bool
	// realCode: the upstream programs run (Options.RealCode); /bin/sh is
	// bash-static in POSIX mode, root's login shell as on FreeBSD 14.
	realCode bool
	// pfsense: the gateway runs pfSense's own PHP (pfsense.go).
	pfsense bool
	files   []File
}

// build makes the machine's root directory. It never follows the roots of
// other machines: everything is copied, so a command run inside one machine
// cannot change the host's binaries.
func (s machineSpec) build() error {
	if err := os.Mkdir(s.root, 0o755); err != nil {
		return fmt.Errorf("machine %s: %w", s.name, err)
	}
	if err := os.Chmod(s.root, 0o755); err != nil {
		return fmt.Errorf("machine %s: %w", s.name, err)
	}
	for _, d := range dirs {
		p := s.path(d.path)
		if err := os.MkdirAll(p, 0o755); err != nil {
			return fmt.Errorf("machine %s: %w", s.name, err)
		}
		if err := os.Chmod(p, d.mode); err != nil {
			return fmt.Errorf("machine %s: %w", s.name, err)
		}
	}
	busybox, err := findStatic(busyboxPaths)
	if err != nil {
		return err
	}
	bash, err := findStatic(bashStaticPaths)
	if err != nil {
		return err
	}
	if err := copyFile(busybox, s.path("/bin/busybox"), 0o755); err != nil {
		return err
	}
	emuNames := map[string]bool{}
	links := s.emuLinks()
	for cmd, paths := range links {
		emuNames[cmd] = true
		for _, p := range paths {
			emuNames[filepath.Base(p)] = true
		}
	}
	for _, a := range applets {
		if emuNames[a] {
			continue
		}
		if err := os.Symlink("busybox", s.path("/bin/"+a)); err != nil {
			return fmt.Errorf("machine %s: link %s: %w", s.name, a, err)
		}
	}
	if !emuNames["env"] {
		// Scripts start with #!/usr/bin/env.
		if err := os.Symlink("/bin/busybox", s.path("/usr/bin/env")); err != nil {
			return fmt.Errorf("machine %s: %w", s.name, err)
		}
	}
	// A bash link to busybox would make the copy land on busybox itself.
	_ = os.Remove(s.path("/bin/bash"))
	if err := copyFile(bash, s.path("/bin/bash"), 0o755); err != nil {
		return err
	}
	if err := os.Symlink("/bin/bash", s.path("/usr/local/bin/bash")); err != nil {
		return fmt.Errorf("machine %s: %w", s.name, err)
	}
	if s.realCode {
		for p, applet := range emu.HostApplets {
			if err := os.MkdirAll(filepath.Dir(s.path(p)), 0o755); err != nil {
				return fmt.Errorf("machine %s: %w", s.name, err)
			}
			if err := os.Symlink("/bin/busybox", s.path(p)); err != nil {
				return fmt.Errorf("machine %s: link %s (%s): %w", s.name, p, applet, err)
			}
		}
		// FreeBSD's rc.subr and network.subr need more than busybox's sh
		// (e.g. `;&` in network.subr); bash run by the name sh is in POSIX
		// mode (bash(1), INVOCATION). /bin/bash becomes emu's login-shell
		// stand-in (HostLinks), which runs /bin/sh.
		_ = os.Remove(s.path("/bin/sh"))
		if err := copyFile(bash, s.path("/bin/sh"), 0o755); err != nil {
			return err
		}
	}
	if err := copyFile(s.emuBinary, s.path(emuPath), 0o755); err != nil {
		return err
	}
	for _, cmd := range sortedKeys(links) {
		for _, p := range links[cmd] {
			if err := os.MkdirAll(filepath.Dir(s.path(p)), 0o755); err != nil {
				return fmt.Errorf("machine %s: %w", s.name, err)
			}
			_ = os.Remove(s.path(p))
			if err := os.Symlink(emuPath, s.path(p)); err != nil {
				return fmt.Errorf("machine %s: link %s: %w", s.name, p, err)
			}
		}
	}
	if err := s.devices(); err != nil {
		return err
	}
	files := []File{
		{Path: "/etc/passwd", Content: []byte(s.passwd()), Mode: 0o644},
		{Path: "/etc/group", Content: []byte(group), Mode: 0o644},
		{Path: "/etc/hosts", Content: []byte(hosts), Mode: 0o644},
		{Path: "/etc/rc.conf", Content: []byte(s.rcConf()), Mode: 0o644},
		{Path: emu.MachineFile, Content: []byte(s.machineFile()), Mode: 0o644},
		{Path: emu.FirewallFile, Content: []byte("open\n"), Mode: 0o644},
		{Path: emu.FlushFile, Content: []byte("0\n"), Mode: 0o644},
	}
	// A host is installed on ZFS (bsdinstall's default): pool zroot with
	// zfsboot's datasets, zfs.ko loaded by the loader.
	kld := ""
	if s.kind == kindHost {
		kld = "zfs\n"
		files = append(files, File{Path: emu.ZFSStateFile, Content: emu.DefaultZFSState(), Mode: 0o644})
	}
	if s.realCode {
		// A fresh FreeBSD host: no pf.ko, so no /dev/pf until kldload pf
		// (or rc.d/pf's required_modules); pf starts disabled.
		files = append(files, File{Path: emu.KLDFile, Content: []byte(kld), Mode: 0o644})
	} else {
		// The emulated lab: pf.ko loaded, as arbo's steps before issue 10's
		// kldload fix expect.
		files = append(files, File{Path: emu.KLDFile, Content: []byte("pf\npflog\n" + kld), Mode: 0o644},
			File{Path: emu.PFDevice, Content: nil, Mode: 0o600})
	}
	if s.kind == kindGateway {
		conf := s.gatewayConfig
		if conf == nil {
			conf = defaultGatewayConfig
		}
		if err := os.MkdirAll(s.path("/cf/conf/backup"), 0o755); err != nil {
			return fmt.Errorf("machine %s: %w", s.name, err)
		}
		if err := os.Symlink("/cf/conf", s.path("/conf")); err != nil {
			return fmt.Errorf("machine %s: %w", s.name, err)
		}
		files = append(files, File{Path: "/cf/conf/config.xml", Content: conf, Mode: 0o644})
	}
	files = append(files, s.files...)
	for _, f := range files {
		if err := s.writeFile(f); err != nil {
			return err
		}
	}
	if s.basejail {
		if err := s.installBasejail(); err != nil {
			return err
		}
	}
	if s.pfsense {
		if err := s.installPfSense(); err != nil {
			return err
		}
	}
	return nil
}

func (s machineSpec) path(p string) string { return filepath.Join(s.root, filepath.Clean("/"+p)) }

func (s machineSpec) emuLinks() map[string][]string {
	out := map[string][]string{}
	for k, v := range emu.Links {
		out[k] = v
	}
	if s.kind == kindGateway && !s.pfsense {
		for k, v := range emu.GatewayLinks {
			out[k] = v
		}
	}
	if s.pfsense {
		for k, v := range emu.PfSenseLinks {
			out[k] = v
		}
	}
	if s.realCode {
		for k, v := range emu.HostLinks {
			out[k] = v
		}
	}
	return out
}

func (s machineSpec) writeFile(f File) error {
	if !filepath.IsAbs(f.Path) {
		return fmt.Errorf("machine %s: file %q: path must be absolute", s.name, f.Path)
	}
	p := s.path(f.Path)
	if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
		return fmt.Errorf("machine %s: %w", s.name, err)
	}
	mode := f.Mode
	if mode == 0 {
		mode = 0o644
	}
	if err := writeFileAtomic(p, f.Content, mode); err != nil {
		return fmt.Errorf("machine %s: %w", s.name, err)
	}
	return nil
}

// passwd gives root FreeBSD 14's login shell, /bin/sh, when the real code
// runs; bash otherwise.
func (s machineSpec) passwd() string {
	if s.realCode {
		return strings.Replace(passwd, ":/root:/bin/bash\n", ":/root:/bin/sh\n", 1)
	}
	return passwd
}

func (s machineSpec) rcConf() string {
	host := s.name
	if s.domain != "" {
		host += "." + s.domain
	}
	zfs := ""
	if s.kind == kindHost {
		zfs = "zfs_enable=\"YES\"\n" // bsdinstall's zfsboot writes it on a ZFS install
	}
	return fmt.Sprintf("hostname=%q\nsshd_enable=\"YES\"\n%s", host, zfs)
}

func (s machineSpec) machineFile() string {
	var b strings.Builder
	fmt.Fprintf(&b, "name=%s\nkind=%s\nrelease=%s\n", s.name, s.kind, release)
	for _, i := range s.ifaces {
		fmt.Fprintf(&b, "iface=%s\n", i)
	}
	return b.String()
}

// devices makes the few device nodes a chrooted session needs (sshd and
// shells open /dev/null; tools read /dev/zero and /dev/urandom).
func (s machineSpec) devices() error {
	for _, d := range []struct {
		name         string
		major, minor uint32
	}{{"null", 1, 3}, {"zero", 1, 5}, {"random", 1, 8}, {"urandom", 1, 9}} {
		p := s.path("/dev/" + d.name)
		if err := unix.Mknod(p, syscall.S_IFCHR|0o666, int(unix.Mkdev(d.major, d.minor))); err != nil {
			return fmt.Errorf("machine %s: mknod %s: %w", s.name, p, err)
		}
		if err := os.Chmod(p, 0o666); err != nil {
			return fmt.Errorf("machine %s: %w", s.name, err)
		}
	}
	return nil
}

// installBasejail runs the emulator's own `ezjail-admin install` against the
// root from outside, so that a pre-installed basejail is exactly what arbo's
// --bootstrap would have made. Its call goes to a throwaway log, not the
// machine's, which starts empty.
func (s machineSpec) installBasejail() error {
	if s.realCode {
		return s.installRealBasejail()
	}
	logRoot, err := os.MkdirTemp("", "arbo-lab-install-")
	if err != nil {
		return fmt.Errorf("machine %s: basejail: %w", s.name, err)
	}
	defer os.RemoveAll(logRoot)
	cmd := execCommand(s.emuBinary, "ezjail-admin", "install", "-r", release)
	cmd.Env = append(os.Environ(), emu.RootEnv+"="+s.root, "LAB_LOG_ROOT="+logRoot)
	if out, err := cmd.CombinedOutput(); err != nil {
		return fmt.Errorf("machine %s: ezjail-admin install: %w: %s", s.name, err, strings.TrimSpace(string(out)))
	}
	return nil
}

// findStatic returns the first existing path that is a statically linked
// executable: a dynamic one cannot run inside the chroot, which has no C
// library.
func findStatic(paths []string) (string, error) {
	for _, p := range paths {
		f, err := elf.Open(p)
		if err != nil {
			continue
		}
		static := true
		for _, prog := range f.Progs {
			if prog.Type == elf.PT_INTERP {
				static = false
			}
		}
		f.Close()
		if static {
			return p, nil
		}
	}
	return "", fmt.Errorf("no statically linked %s (tried %s)", filepath.Base(paths[0]), strings.Join(paths, ", "))
}

func copyFile(src, dst string, mode os.FileMode) error {
	in, err := os.Open(src)
	if err != nil {
		return fmt.Errorf("copy %s: %w", src, err)
	}
	defer in.Close()
	out, err := os.OpenFile(dst, os.O_WRONLY|os.O_CREATE|os.O_EXCL, mode)
	if err != nil {
		return fmt.Errorf("copy %s: %w", src, err)
	}
	_, err = io.Copy(out, in)
	if cerr := out.Close(); err == nil {
		err = cerr
	}
	if err == nil {
		err = os.Chmod(dst, mode)
	}
	if err != nil {
		return fmt.Errorf("copy %s to %s: %w", src, dst, err)
	}
	return nil
}

func sortedKeys[V any](m map[string]V) []string {
	out := make([]string, 0, len(m))
	for k := range m {
		out = append(out, k)
	}
	sort.Strings(out)
	return out
}

// checkChrootPath reports the first component of p that OpenSSH would refuse
// as a ChrootDirectory component: not owned by root, or writable by group or
// others.
func checkChrootPath(p string) error {
	for cur := filepath.Clean(p); ; cur = filepath.Dir(cur) {
		fi, err := os.Stat(cur)
		if err != nil {
			return fmt.Errorf("lab base %s: %w", p, err)
		}
		st, ok := fi.Sys().(*syscall.Stat_t)
		if !ok || st.Uid != 0 || fi.Mode().Perm()&0o022 != 0 {
			return fmt.Errorf("lab base %s: %s must be owned by root and not group- or world-writable (OpenSSH refuses such a chroot)", p, cur)
		}
		if cur == "/" {
			return nil
		}
	}
}

// installRealBasejail runs the machine's own (upstream) `ezjail-admin
// install -r RELEASE` chrooted into its root, as arbo's --bootstrap does
// over SSH, then empties the call log: the machine starts with none.
func (s machineSpec) installRealBasejail() error {
	cmd := execCommand("chroot", s.root, "/bin/sh", "-c", "ezjail-admin install -r "+release)
	cmd.Env = append([]string{"PATH=/sbin:/bin:/usr/sbin:/usr/bin:/usr/local/sbin:/usr/local/bin", "HOME=/root"}, emu.ShellEnv...)
	if out, err := cmd.CombinedOutput(); err != nil {
		return fmt.Errorf("machine %s: ezjail-admin install: %w: %s", s.name, err, strings.TrimSpace(string(out)))
	}
	if err := os.Remove(s.path(emu.CallsLog)); err != nil && !os.IsNotExist(err) {
		return fmt.Errorf("machine %s: %w", s.name, err)
	}
	return nil
}
