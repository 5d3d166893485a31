package emu

import (
	"archive/tar"
	"bufio"
	"bytes"
	"compress/gzip"
	"crypto/rand"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"sort"
	"strconv"
	"strings"
)

// FreeBSD-semantics stand-ins for the base utilities that ezjail-admin,
// ezjail's rc script (ezjail.sh) and rc.d/jail call where busybox's applet
// of the same name differs (tail -r, stat -f, mktemp -t, expr --, ls -I,
// cpio -p, tar --unlink), or where Debian has none (fetch, xzdec,
// freebsd-update, chflags, rcorder, sockstat). Each follows the FreeBSD
// manual page named in its comment; what it does not model is refused
// loudly or documented in docs/lab-emulation.md.

func init() {
	commands["fetch"] = fetchCmd
	commands["xzdec"] = xzdecCmd
	commands["tar"] = tarCmd
	commands["freebsd-update"] = freebsdUpdateCmd
	commands["chflags"] = chflagsCmd
	commands["cpio"] = cpioCmd
	commands["mktemp"] = mktempCmd
	commands["tail"] = tailCmd
	commands["stat"] = statCmd
	commands["rcorder"] = rcorderCmd
	commands["ls"] = lsCmd
	commands["sockstat"] = sockstatCmd
}

// busybox runs busybox's applet for what a stand-in delegates.
func (e *env) busybox(applet string, args []string) int {
	bb := "/bin/busybox"
	if !exists(bb) {
		fmt.Fprintf(e.stderr, "%s: no /bin/busybox to delegate to\n", applet)
		return 127
	}
	c := exec.Command(bb, append([]string{applet}, args...)...)
	c.Stdin, c.Stdout, c.Stderr = e.stdin, e.stdout, e.stderr
	if err := c.Run(); err != nil {
		if x, ok := err.(*exec.ExitError); ok {
			return x.ExitCode()
		}
		fmt.Fprintf(e.stderr, "%s: %v\n", applet, err)
		return 126
	}
	return 0
}

// cwdPath maps a path given to a command (relative to the working
// directory, or absolute in the machine) to a host path.
func (e *env) cwdPath(p string) string {
	if filepath.IsAbs(p) {
		return e.p(p)
	}
	return p
}

// distURL matches the distribution sets ezjail-admin install fetches
// (ezjail-admin:1185: ${proto}://${host}/${path}/${platform}/${arch}/${release}/${pkg}.txz).
var distURL = regexp.MustCompile(`^(?:ftp|https?)://[^/]+/pub/FreeBSD/releases/(amd64)/(amd64)/([0-9]+\.[0-9]+-RELEASE)/(base|lib32)\.txz$`)

// fetchCmd: fetch [-qv] [-o file] URL ... (fetch(1)). The lab's mirror
// serves the base and lib32 distribution sets of the machine's release
// (a small tree, see distSet); any other URL is "File unavailable", as a
// mirror without it answers.
func fetchCmd(e *env, args []string) int {
	a, ok := e.parseArgs(args, "146AadFilMmnPpqRrUvo:S:T:N:", 1, "usage: fetch [-146AadFilMmnPpqRrsUv] [-N file] [-o file] [-S bytes] [-T seconds] URL ...")
	if !ok {
		return 1
	}
	out, urls := a.opts["o"], a.rest
	rel := strings.SplitN(e.machineInfo().release, "-p", 2)[0]
	for _, u := range urls {
		m := distURL.FindStringSubmatch(u)
		if m == nil || m[3] != rel {
			fmt.Fprintf(e.stderr, "fetch: %s: File unavailable (e.g., file not found, no access)\n", u)
			return 1
		}
		dst := out
		if dst == "" {
			dst = u[strings.LastIndexByte(u, '/')+1:]
		}
		data, err := distSet(m[4])
		if err != nil {
			fmt.Fprintf(e.stderr, "fetch: %v\n", err)
			return 1
		}
		if dst == "-" {
			e.stdout.Write(data)
			continue
		}
		if err := os.WriteFile(e.cwdPath(dst), data, 0o644); err != nil {
			fmt.Fprintf(e.stderr, "fetch: %s: %v\n", dst, err)
			return 1
		}
	}
	return 0
}

// distSet is the lab's FreeBSD distribution set: base has the directory
// tree of a FreeBSD 14 world (the directories ezjail's ezjail_dirlist
// splits into the basejail, and the rest a jail needs) with /etc/passwd
// and /etc/group of src/etc; lib32 has usr/lib32. No programs: jails
// run the emulator's commands (jexec).
func distSet(set string) ([]byte, error) {
	var dirs []string
	files := map[string]string{}
	switch set {
	case "base":
		dirs = []string{"bin", "boot", "dev", "etc", "etc/rc.d", "lib", "libexec", "media", "mnt", "net", "proc", "rescue", "root", "sbin", "tmp",
			"usr", "usr/bin", "usr/include", "usr/lib", "usr/libdata", "usr/libexec", "usr/sbin", "usr/share", "usr/src",
			"usr/local", "usr/local/etc", "var", "var/db", "var/log", "var/run", "var/tmp"}
		files["etc/passwd"] = newjailAccounts["passwd"]
		files["etc/group"] = newjailAccounts["group"]
		files["COPYRIGHT"] = "The lab's FreeBSD distribution set: directories and accounts only.\n"
	case "lib32":
		dirs = []string{"usr", "usr/lib32"}
	default:
		return nil, fmt.Errorf("no distribution set %s", set)
	}
	var b bytes.Buffer
	tw := tar.NewWriter(&b)
	for _, d := range dirs {
		mode := int64(0o755)
		if d == "tmp" || d == "var/tmp" {
			mode = 0o1777
		}
		if err := tw.WriteHeader(&tar.Header{Name: "./" + d + "/", Typeflag: tar.TypeDir, Mode: mode}); err != nil {
			return nil, err
		}
	}
	names := make([]string, 0, len(files))
	for n := range files {
		names = append(names, n)
	}
	sort.Strings(names)
	for _, n := range names {
		if err := tw.WriteHeader(&tar.Header{Name: "./" + n, Typeflag: tar.TypeReg, Mode: 0o644, Size: int64(len(files[n]))}); err != nil {
			return nil, err
		}
		tw.Write([]byte(files[n]))
	}
	if err := tw.Close(); err != nil {
		return nil, err
	}
	return xzStore(b.Bytes()), nil
}

// xzdecCmd: xzdec [file ...] (xzdec(1)): decompress to stdout; busybox's
// xzcat is the decoder.
func xzdecCmd(e *env, args []string) int {
	var files []string
	for _, a := range args[1:] {
		if strings.HasPrefix(a, "-") && a != "-" {
			continue // -d, -k, -c, -q: xzdec always decompresses to stdout
		}
		files = append(files, e.cwdPath(a))
	}
	return e.busybox("xzcat", files)
}

// tarCmd is bsdtar (tar(1)) for extraction and listing: -x/-t with -f
// (- is stdin), -C dir, -p, -v, --unlink/-U; -z, -j, -J, -y are ignored
// on extraction as bsdtar does (the format is detected: gzip, xz, plain).
// Creation is busybox's tar.
func tarCmd(e *env, args []string) int {
	a := args[1:]
	if len(a) > 0 && !strings.HasPrefix(a[0], "-") {
		a = append([]string{"-" + a[0]}, a[1:]...) // bundled first word: tar xpf ...
	}
	var mode byte
	file, dir, verbose := "", "", false
	var rest []string
	for i := 0; i < len(a); i++ {
		x := a[i]
		switch {
		case x == "--unlink" || x == "--unlink-first":
			continue
		case strings.HasPrefix(x, "--"):
			fmt.Fprintf(e.stderr, "tar: option %s is not modelled by the lab\n", x)
			return 1
		case strings.HasPrefix(x, "-") && len(x) > 1:
			for j := 1; j < len(x); j++ {
				switch c := x[j]; c {
				case 'x', 't', 'c', 'r', 'u':
					mode = c
				case 'f', 'C':
					v := x[j+1:]
					if v == "" {
						i++
						if i >= len(a) {
							fmt.Fprintf(e.stderr, "tar: Option -%c requires an argument\n", c)
							return 1
						}
						v = a[i]
					}
					if c == 'f' {
						file = v
					} else {
						dir = v
					}
					j = len(x)
				case 'v':
					verbose = true
				case 'p', 'z', 'j', 'J', 'y', 'U', 'o', 'm', 'k':
				default:
					fmt.Fprintf(e.stderr, "tar: option -%c is not modelled by the lab\n", c)
					return 1
				}
			}
		default:
			rest = append(rest, x)
		}
	}
	if mode == 'c' || mode == 'r' || mode == 'u' {
		return e.busybox("tar", args[1:])
	}
	if mode == 0 {
		fmt.Fprintln(e.stderr, "tar: Must specify one of -c, -r, -t, -u, -x")
		return 1
	}
	var in io.Reader = e.stdin
	if file != "" && file != "-" {
		f, err := os.Open(e.cwdPath(file))
		if err != nil {
			fmt.Fprintf(e.stderr, "tar: Error opening archive: Failed to open '%s'\n", file)
			return 1
		}
		defer f.Close()
		in = f
	}
	br := bufio.NewReader(in)
	magic, _ := br.Peek(6)
	var r io.Reader = br
	switch {
	case bytes.HasPrefix(magic, []byte{0x1f, 0x8b}):
		z, err := gzip.NewReader(br)
		if err != nil {
			fmt.Fprintf(e.stderr, "tar: %v\n", err)
			return 1
		}
		r = z
	case bytes.HasPrefix(magic, []byte{0xFD, '7', 'z', 'X', 'Z', 0}):
		c := exec.Command("/bin/busybox", "xzcat")
		c.Stdin = br
		out, err := c.Output()
		if err != nil {
			fmt.Fprintf(e.stderr, "tar: xz: %v\n", err)
			return 1
		}
		r = bytes.NewReader(out)
	}
	tr := tar.NewReader(r)
	base := "."
	if dir != "" {
		base = e.cwdPath(dir)
	}
	for {
		h, err := tr.Next()
		if err == io.EOF {
			return 0
		}
		if err != nil {
			fmt.Fprintf(e.stderr, "tar: Error reading archive: %v\n", err)
			return 1
		}
		if len(rest) > 0 && !contains(rest, strings.TrimPrefix(h.Name, "./")) && !contains(rest, h.Name) {
			continue
		}
		if mode == 't' || verbose {
			fmt.Fprintln(map[bool]io.Writer{true: e.stdout, false: e.stderr}[mode == 't'], h.Name)
		}
		if mode == 't' {
			continue
		}
		p := filepath.Join(base, filepath.Clean("/"+h.Name))
		switch h.Typeflag {
		case tar.TypeDir:
			if err = os.MkdirAll(p, 0o755); err == nil {
				err = os.Chmod(p, os.FileMode(h.Mode)&os.ModePerm|modeBits(h.Mode))
			}
		case tar.TypeSymlink:
			os.Remove(p)
			err = os.Symlink(h.Linkname, p)
		case tar.TypeLink:
			os.Remove(p)
			err = os.Link(filepath.Join(base, filepath.Clean("/"+h.Linkname)), p)
		case tar.TypeReg:
			os.Remove(p) // --unlink: replace, never write through
			var f *os.File
			if f, err = os.OpenFile(p, os.O_WRONLY|os.O_CREATE|os.O_TRUNC, os.FileMode(h.Mode)&os.ModePerm); err == nil {
				_, err = io.Copy(f, tr)
				f.Close()
			}
		}
		if err != nil {
			fmt.Fprintf(e.stderr, "tar: %s: %v\n", h.Name, err)
			return 1
		}
	}
}

// freebsdUpdateCmd: freebsd-update [-b basedir] [-d workdir] [-r release]
// command ... (freebsd-update(8)). The lab's release has no updates:
// fetch reports none, install has nothing to install.
func freebsdUpdateCmd(e *env, args []string) int {
	a, ok := e.parseArgs(args, "Fb:d:f:j:k:r:s:t:", 1, "usage: freebsd-update [options] command ...")
	if !ok {
		return 1
	}
	cmds := a.rest
	rel := e.machineInfo().release
	fetched := false
	for _, c := range cmds {
		switch c {
		case "fetch", "cron":
			fmt.Fprintf(e.stdout, "Looking up update.FreeBSD.org mirrors... none found.\nNo updates needed to update system to %s.\n", rel)
			fetched = true
		case "install":
			fmt.Fprintln(e.stdout, "No updates are available to install.")
			if !fetched {
				fmt.Fprintln(e.stdout, "Run '/usr/sbin/freebsd-update fetch' first.")
				return 2
			}
		default:
			fmt.Fprintf(e.stderr, "freebsd-update: %s is not modelled by the lab\n", c)
			return 1
		}
	}
	return 0
}

// chflagsFlags are the flag names of chflags(1) (strtofflags(3)).
var chflagsFlags = map[string]bool{"arch": true, "archived": true, "nodump": true, "opaque": true,
	"sappnd": true, "sappend": true, "schg": true, "schange": true, "simmutable": true, "snapshot": true,
	"sunlnk": true, "sunlink": true, "uappnd": true, "uappend": true, "uarch": true, "uarchive": true,
	"uchg": true, "uchange": true, "uimmutable": true, "uhidden": true, "hidden": true, "uoffline": true,
	"offline": true, "urdonly": true, "rdonly": true, "readonly": true, "usparse": true, "sparse": true,
	"usystem": true, "system": true, "ureparse": true, "reparse": true, "uunlnk": true, "uunlink": true, "dump": true}

// chflagsCmd: chflags [-fhvx] [-R [-H | -L | -P]] flags file ...
// (chflags(1)). Linux files have no BSD flags: the lab checks the flags
// and the files and changes nothing (nothing in the lab sets schg, so
// clearing it is always what FreeBSD would leave).
func chflagsCmd(e *env, args []string) int {
	a, ok := e.parseArgs(args, "fhvxRHLP", 2, "usage: chflags [-fhvx] [-R [-H | -L | -P]] flags file ...")
	if !ok {
		return 1
	}
	force, rest := a.has("f"), a.rest
	for _, f := range strings.Split(rest[0], ",") {
		if _, err := strconv.ParseUint(f, 8, 32); err == nil {
			continue
		}
		if !chflagsFlags[strings.TrimPrefix(f, "no")] && !chflagsFlags[f] {
			fmt.Fprintf(e.stderr, "chflags: invalid flag: %s\n", f)
			return 1
		}
	}
	code := 0
	for _, f := range rest[1:] {
		if _, err := os.Lstat(e.cwdPath(f)); err != nil && !force {
			fmt.Fprintf(e.stderr, "chflags: %s: No such file or directory\n", f)
			code = 1
		}
	}
	return code
}

// cpioCmd is bsdcpio's pass mode (cpio(1)): cpio -p [-dlLmuv] destdir
// copies the files named on stdin (relative to the working directory)
// into destdir, keeping modes and symlinks; without -u an existing file
// newer than (or as new as) the source is not overwritten; -v names each
// file on stderr; the block count ends on stderr. Other modes are busybox's.
func cpioCmd(e *env, args []string) int {
	opts, rest, err := getopts(args[1:], "pdlLmuvaioFtH:R:")
	if err != nil {
		fmt.Fprintf(e.stderr, "cpio: %v\n", err)
		return 1
	}
	o := optMap(opts)
	if _, ok := o["p"]; !ok {
		return e.busybox("cpio", args[1:])
	}
	if len(rest) != 1 {
		fmt.Fprintln(e.stderr, "Usage: cpio -p [options] dest-directory")
		return 1
	}
	_, mkdirs := o["d"]
	_, uncond := o["u"]
	_, verbose := o["v"]
	_, follow := o["L"]
	dest := e.cwdPath(rest[0])
	if !isDir(dest) {
		fmt.Fprintf(e.stderr, "cpio: %s: No such file or directory\n", rest[0])
		return 1
	}
	var total int64
	code := 0
	sc := bufio.NewScanner(e.stdin)
	sc.Buffer(make([]byte, 64*1024), 1024*1024)
	for sc.Scan() {
		name := sc.Text()
		if name == "" {
			continue
		}
		src := e.cwdPath(name)
		stat := os.Lstat
		if follow {
			stat = os.Stat
		}
		fi, err := stat(src)
		if err != nil {
			fmt.Fprintf(e.stderr, "cpio: %s: Couldn't stat\n", name)
			code = 1
			continue
		}
		dst := filepath.Join(dest, filepath.Clean("/"+name))
		if mkdirs {
			os.MkdirAll(filepath.Dir(dst), 0o755)
		} else if !isDir(filepath.Dir(dst)) {
			fmt.Fprintf(e.stderr, "cpio: %s: Can't create '%s'\n", name, dst)
			code = 1
			continue
		}
		if verbose {
			fmt.Fprintln(e.stderr, dst)
		}
		switch {
		case fi.IsDir():
			if err := os.MkdirAll(dst, 0o755); err != nil {
				fmt.Fprintf(e.stderr, "cpio: %s: %v\n", name, unwrapPathErr(err))
				code = 1
				continue
			}
			os.Chmod(dst, fi.Mode()&(os.ModePerm|os.ModeSticky|os.ModeSetuid|os.ModeSetgid))
		case fi.Mode()&os.ModeSymlink != 0:
			l, _ := os.Readlink(src)
			if old, err := os.Lstat(dst); err == nil && !uncond && !old.ModTime().Before(fi.ModTime()) {
				continue
			}
			os.Remove(dst)
			if err := os.Symlink(l, dst); err != nil {
				fmt.Fprintf(e.stderr, "cpio: %s: %v\n", name, err)
				code = 1
			}
		case fi.Mode().IsRegular():
			if old, err := os.Lstat(dst); err == nil && !uncond && !old.ModTime().Before(fi.ModTime()) {
				fmt.Fprintf(e.stderr, "cpio: %s: Not overwriting newer file\n", dst)
				continue
			}
			b, err := os.ReadFile(src)
			if err == nil {
				os.Remove(dst)
				err = os.WriteFile(dst, b, fi.Mode().Perm())
			}
			if err == nil {
				err = os.Chmod(dst, fi.Mode()&(os.ModePerm|os.ModeSetuid|os.ModeSetgid|os.ModeSticky))
			}
			if err != nil {
				fmt.Fprintf(e.stderr, "cpio: %s: %v\n", name, err)
				code = 1
			}
			total += fi.Size()
		}
	}
	fmt.Fprintf(e.stderr, "%d blocks\n", (total+511)/512)
	return code
}

// mktempCmd: mktemp [-d] [-q] [-t prefix] [-u] template ... (FreeBSD
// mktemp(1)): the trailing Xs of a template become random characters;
// -t makes a template $TMPDIR/prefix.XXXXXXXX (TMPDIR default /tmp), and
// with no template and no -t the prefix is "tmp".
func mktempCmd(e *env, args []string) int {
	a, ok := e.parseArgs(args, "dqut:", 0, "usage: mktemp [-d] [-p tmpdir] [-q] [-t prefix] [-u] template ...\n       mktemp [-d] [-p tmpdir] [-q] [-u] -t prefix")
	if !ok {
		return 1
	}
	o, tmpls := a.opts, a.rest
	var err error
	_, dir := o["d"]
	_, quiet := o["q"]
	_, unlink := o["u"]
	prefix, tflag := o["t"]
	tmpdir := os.Getenv("TMPDIR")
	if tmpdir == "" {
		tmpdir = "/tmp"
	}
	if tflag || len(tmpls) == 0 {
		if !tflag {
			prefix = "tmp"
		}
		tmpls = append([]string{strings.TrimSuffix(tmpdir, "/") + "/" + prefix + ".XXXXXXXX"}, tmpls...)
	}
	const chars = "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789"
	code := 0
	for _, t := range tmpls {
		n := len(t) - len(strings.TrimRight(t, "X"))
		var name string
		for try := 0; try < 100; try++ {
			rb := make([]byte, n)
			rand.Read(rb)
			for i := range rb {
				rb[i] = chars[int(rb[i])%len(chars)]
			}
			name = t[:len(t)-n] + string(rb)
			p := e.cwdPath(name)
			if dir {
				err = os.Mkdir(p, 0o700)
			} else {
				var f *os.File
				if f, err = os.OpenFile(p, os.O_CREATE|os.O_EXCL|os.O_WRONLY, 0o600); err == nil {
					f.Close()
				}
			}
			if !os.IsExist(err) {
				break
			}
		}
		if err != nil {
			if !quiet {
				fmt.Fprintf(e.stderr, "mktemp: mkstemp failed on %s: %v\n", t, unwrapPathErr(err))
			}
			code = 1
			continue
		}
		if unlink {
			os.Remove(e.cwdPath(name))
		}
		fmt.Fprintln(e.stdout, name)
	}
	return code
}

// tailCmd: tail [-F | -f | -r] [-q] [-b # | -c # | -n #] [file ...]
// (FreeBSD tail(1)); -r prints the input (or its last -n lines) last line
// first. -f/-F are busybox's.
func tailCmd(e *env, args []string) int {
	a := args[1:]
	// The obsolete forms -N and +N mean -n.
	if len(a) > 0 && len(a[0]) > 1 && (a[0][0] == '-' || a[0][0] == '+') && a[0][1] >= '0' && a[0][1] <= '9' {
		a = append([]string{"-n", a[0]}, a[1:]...)
	}
	opts, files, err := getopts(a, "Ffrqb:c:n:")
	if err != nil {
		fmt.Fprintln(e.stderr, "usage: tail [-F | -f | -r] [-q] [-b # | -c # | -n #] [file ...]")
		return 1
	}
	o := optMap(opts)
	if _, ok := o["f"]; ok {
		return e.busybox("tail", args[1:])
	}
	if _, ok := o["F"]; ok {
		return e.busybox("tail", args[1:])
	}
	_, reverse := o["r"]
	_, quiet := o["q"]
	count, fromStart, bytesMode := -1, false, false
	if v, ok := o["n"]; ok {
		fromStart = strings.HasPrefix(v, "+")
		count, err = strconv.Atoi(strings.TrimLeft(v, "+-"))
	} else if v, ok := o["c"]; ok {
		bytesMode = true
		fromStart = strings.HasPrefix(v, "+")
		count, err = strconv.Atoi(strings.TrimLeft(v, "+-"))
	}
	if err != nil {
		fmt.Fprintf(e.stderr, "tail: illegal offset -- %v\n", err)
		return 1
	}
	if count < 0 && !reverse {
		count = 10
	}
	readAll := func(f string) ([]byte, error) {
		if f == "" || f == "-" {
			return io.ReadAll(e.stdin)
		}
		return os.ReadFile(e.cwdPath(f))
	}
	if len(files) == 0 {
		files = []string{""}
	}
	code := 0
	for i, f := range files {
		b, err := readAll(f)
		if err != nil {
			fmt.Fprintf(e.stderr, "tail: %s: No such file or directory\n", f)
			code = 1
			continue
		}
		if len(files) > 1 && !quiet {
			if i > 0 {
				fmt.Fprintln(e.stdout)
			}
			fmt.Fprintf(e.stdout, "==> %s <==\n", f)
		}
		if bytesMode {
			switch {
			case fromStart && count > 0:
				if count-1 < len(b) {
					b = b[count-1:]
				} else {
					b = nil
				}
			case !fromStart && count < len(b):
				b = b[len(b)-count:]
			}
			e.stdout.Write(b)
			continue
		}
		lines := strings.SplitAfter(string(b), "\n")
		if lines[len(lines)-1] == "" {
			lines = lines[:len(lines)-1]
		}
		switch {
		case count < 0:
		case fromStart:
			if count > 0 {
				count--
			}
			if count < len(lines) {
				lines = lines[count:]
			} else {
				lines = nil
			}
		case count < len(lines):
			lines = lines[len(lines)-count:]
		}
		if reverse {
			for j := len(lines) - 1; j >= 0; j-- {
				l := lines[j]
				if !strings.HasSuffix(l, "\n") {
					l += "\n"
				}
				fmt.Fprint(e.stdout, l)
			}
			continue
		}
		fmt.Fprint(e.stdout, strings.Join(lines, ""))
	}
	return code
}

// statCmd: stat [-L] [-n] [-q] -f format file ... (FreeBSD stat(1)) with
// the fields ezjail and the rc scripts use: %N name, %Y symlink target,
// %z size, %u/%g ids, %Su/%Sg names, %p mode (octal, with the L, M, H
// sub-fields: permissions, suid bits, file type), %m/%a/%c times (seconds),
// %i inode, %l links, %n %t %%. Without -f (the long default form) the
// lab refuses.
func statCmd(e *env, args []string) int {
	a, ok := e.parseArgs(args, "FLnqsxlrf:t:", 0, "usage: stat [-FLnq] [-f format | -l | -r | -s | -x] [-t timefmt] [file|handle ...]")
	if !ok {
		return 1
	}
	o, files := a.opts, a.rest
	var err error
	format, ok := o["f"]
	if !ok {
		fmt.Fprintln(e.stderr, "stat: only -f format is modelled by the lab")
		return 2
	}
	_, follow := o["L"]
	_, noNL := o["n"]
	_, quiet := o["q"]
	code := 0
	for _, f := range files {
		p := e.cwdPath(f)
		var fi os.FileInfo
		if follow {
			fi, err = os.Stat(p)
		} else {
			fi, err = os.Lstat(p)
		}
		if err != nil {
			if !quiet {
				fmt.Fprintf(e.stderr, "stat: %s: stat: No such file or directory\n", f)
			}
			code = 1
			continue
		}
		out, err := statFormat(e, format, f, p, fi)
		if err != nil {
			fmt.Fprintf(e.stderr, "stat: %v\n", err)
			return 1
		}
		fmt.Fprint(e.stdout, out)
		if !noNL {
			fmt.Fprintln(e.stdout)
		}
	}
	return code
}

var statField = regexp.MustCompile(`%([#+\-0 ]*)([0-9]*)(?:\.([0-9]+))?([DOUXFS]?)([HML]?)([A-Za-z%])`)

func statFormat(e *env, format, name, p string, fi os.FileInfo) (string, error) {
	st := statSys(fi)
	var bad error
	out := statField.ReplaceAllStringFunc(format, func(m string) string {
		g := statField.FindStringSubmatch(m)
		outFmt, sub, field := g[4], g[5], g[6]
		num := func(v uint64, def string) string {
			f := outFmt
			if f == "" {
				f = def
			}
			switch f {
			case "O":
				return strconv.FormatUint(v, 8)
			case "X":
				return strconv.FormatUint(v, 16)
			}
			return strconv.FormatUint(v, 10)
		}
		switch field {
		case "%":
			return "%"
		case "n":
			return "\n"
		case "t":
			return "\t"
		case "N":
			return name
		case "Y":
			if fi.Mode()&os.ModeSymlink == 0 {
				return ""
			}
			l, _ := os.Readlink(p)
			return l
		case "z":
			return num(uint64(fi.Size()), "D")
		case "u":
			if outFmt == "S" {
				return lookupName(e, "/etc/passwd", st.uid)
			}
			return num(st.uid, "D")
		case "g":
			if outFmt == "S" {
				return lookupName(e, "/etc/group", st.gid)
			}
			return num(st.gid, "D")
		case "p":
			mode := st.mode
			switch sub {
			case "L":
				mode &= 0o777
			case "M":
				mode = (mode >> 9) & 0o7
			case "H":
				mode = mode >> 12
			}
			return num(mode, "O")
		case "m":
			return num(uint64(fi.ModTime().Unix()), "D")
		case "a", "c", "B":
			return num(uint64(fi.ModTime().Unix()), "D")
		case "i":
			return num(st.ino, "D")
		case "l":
			return num(st.nlink, "D")
		}
		bad = fmt.Errorf("%s: the field is not modelled by the lab", m)
		return ""
	})
	return out, bad
}

// lookupName finds the name of an id in a passwd or group file.
func lookupName(e *env, file string, id uint64) string {
	lines, _ := readLines(e.p(file))
	for _, l := range lines {
		f := strings.Split(l, ":")
		if len(f) > 2 && f[2] == strconv.FormatUint(id, 10) {
			return f[0]
		}
	}
	return strconv.FormatUint(id, 10)
}

// rcorderCmd: rcorder [-gp] [-k keep] [-s skip] file ... (rcorder(8),
// sbin/rcorder/rcorder.c): the files' "# PROVIDE:", "# REQUIRE:",
// "# BEFORE:" and "# KEYWORD:" lines give a dependency graph; files are
// emitted in dependency order. As rcorder.c's filenode_new links each new
// file at the head of its list and generate_ordering walks that list, files
// with no ordering between them come out last argument first. A cycle is
// reported ("Circular dependency on provision ...") and a requirement
// nobody provides ("requirement `x' in file `f' has no providers."), both
// with exit status 1.
func rcorderCmd(e *env, args []string) int {
	a, ok := e.parseArgs(args, "dgpk:s:", 1, "usage: rcorder [-dgp] [-k keep] [-s skip] file ...")
	if !ok {
		return 1
	}
	opts, files := a.order, a.rest
	var keep, skip []string
	for _, o := range opts {
		switch o[0] {
		case "k":
			keep = append(keep, o[1])
		case "s":
			skip = append(skip, o[1])
		}
	}
	type node struct {
		file                       string
		provide, require, keywords []string
		state                      int // 0 new, 1 in progress, 2 done
	}
	var nodes []*node
	providers := map[string][]*node{}
	code := 0
	for _, f := range files {
		b, err := os.ReadFile(e.cwdPath(f))
		if err != nil {
			fmt.Fprintf(e.stderr, "rcorder: could not open %s: No such file or directory\n", f)
			code = 1
			continue
		}
		n := &node{file: f}
		for _, l := range strings.Split(string(b), "\n") {
			if !strings.HasPrefix(l, "#") {
				continue
			}
			t := strings.TrimSpace(strings.TrimPrefix(l, "#"))
			key, val, ok := strings.Cut(t, ":")
			if !ok {
				continue
			}
			words := strings.Fields(val)
			switch key {
			case "PROVIDE", "PROVIDES":
				n.provide = append(n.provide, words...)
			case "REQUIRE", "REQUIRES":
				n.require = append(n.require, words...)
			case "BEFORE":
				n.require = append(n.require, "\x00before:"+strings.Join(words, " "))
			case "KEYWORD", "KEYWORDS":
				n.keywords = append(n.keywords, words...)
			}
		}
		for _, p := range n.provide {
			providers[p] = append(providers[p], n)
		}
		nodes = append([]*node{n}, nodes...) // filenode_new: at the head
	}
	// BEFORE: x makes every provider of x require this file.
	deps := map[*node][]*node{}
	for _, n := range nodes {
		for _, r := range n.require {
			if strings.HasPrefix(r, "\x00before:") {
				for _, b := range strings.Fields(strings.TrimPrefix(r, "\x00before:")) {
					for _, p := range providers[b] {
						deps[p] = append(deps[p], n)
					}
				}
				continue
			}
			ps, ok := providers[r]
			if !ok {
				fmt.Fprintf(e.stderr, "rcorder: requirement `%s' in file `%s' has no providers.\n", r, n.file)
				code = 1
			}
			deps[n] = append(deps[n], ps...)
		}
	}
	wanted := func(n *node) bool {
		for _, s := range skip {
			if contains(n.keywords, s) {
				return false
			}
		}
		if len(keep) == 0 {
			return true
		}
		for _, k := range keep {
			if contains(n.keywords, k) {
				return true
			}
		}
		return false
	}
	var visit func(n *node)
	visit = func(n *node) {
		if n.state == 2 {
			return
		}
		if n.state == 1 {
			fmt.Fprintf(e.stderr, "rcorder: Circular dependency on provision `%s' in file `%s'.\n", strings.Join(n.provide, " "), n.file)
			code = 1
			return
		}
		n.state = 1
		for _, d := range deps[n] {
			visit(d)
		}
		n.state = 2
		if wanted(n) {
			fmt.Fprintln(e.stdout, n.file)
		}
	}
	for _, n := range nodes {
		visit(n)
	}
	return code
}

// lsCmd is FreeBSD ls(1) for names only: [-1AaId] with one name per line
// (output is never a terminal in the lab); for the super-user -A is on
// unless -I (ls.c: `if (getuid() == 0 && !f_Iflag) f_listdot = 1`). Other
// options are busybox's ls.
func lsCmd(e *env, args []string) int {
	opts, names, err := getopts(args[1:], "1AaId")
	if err != nil {
		return e.busybox("ls", args[1:])
	}
	o := optMap(opts)
	_, all := o["a"]
	_, almost := o["A"]
	_, noAuto := o["I"]
	_, dirOnly := o["d"]
	if os.Geteuid() == 0 && !noAuto {
		almost = true
	}
	if len(names) == 0 {
		names = []string{"."}
	}
	sort.Strings(names)
	code := 0
	var dirs []string
	for _, n := range names {
		fi, err := os.Stat(e.cwdPath(n))
		if err != nil {
			fmt.Fprintf(e.stderr, "ls: %s: No such file or directory\n", n)
			code = 1
			continue
		}
		if fi.IsDir() && !dirOnly {
			dirs = append(dirs, n)
		} else {
			fmt.Fprintln(e.stdout, n)
		}
	}
	for i, d := range dirs {
		if len(names) > 1 {
			if i > 0 || len(dirs) < len(names) {
				fmt.Fprintln(e.stdout)
			}
			fmt.Fprintf(e.stdout, "%s:\n", d)
		}
		ents, err := os.ReadDir(e.cwdPath(d))
		if err != nil {
			fmt.Fprintf(e.stderr, "ls: %s: %v\n", d, unwrapPathErr(err))
			code = 1
			continue
		}
		var out []string
		if all {
			out = append(out, ".", "..")
		}
		for _, de := range ents {
			if strings.HasPrefix(de.Name(), ".") && !all && !almost {
				continue
			}
			out = append(out, de.Name())
		}
		sort.Strings(out)
		for _, x := range out {
			fmt.Fprintln(e.stdout, x)
		}
	}
	return code
}

// sockstatCmd: sockstat [-46cl...] (sockstat(1)). The lab has no socket
// table of its own: it prints the header and no sockets.
func sockstatCmd(e *env, args []string) int {
	if _, ok := e.parseArgs(args, "46CcIiLlnqSsUuvwj:p:P:f:", 0, "usage: sockstat [-46CciLlnqSsUuvw] [-f fib] [-j jid] [-p ports] [-P protocols]"); !ok {
		return 1
	}
	fmt.Fprintln(e.stdout, "USER     COMMAND    PID   FD  PROTO  LOCAL ADDRESS         FOREIGN ADDRESS")
	return 0
}

func init() {
	commands["install"] = installCmd
	commands["kenv"] = kenvCmd
}

// installCmd: install [-bCcpSsv] [-g group] [-m mode] [-o owner] file ...
// target, and install -d [-g group] [-m mode] [-o owner] directory ...
// (install(1)); rc.d/jail:208 makes its jail.conf with
// `/usr/bin/install -m 0644 -o root -g wheel /dev/null $_conf`. Owners
// and groups are names of the machine's passwd and group, or numbers.
func installCmd(e *env, args []string) int {
	a, ok := e.parseArgs(args, "bCcdMpSsUvB:D:f:g:h:l:m:N:o:T:", 1, "usage: install [-bCcpSsUv] [-f flags] [-g group] [-m mode] [-o owner] file1 file2")
	if !ok {
		return 64 // EX_USAGE
	}
	o, rest := a.opts, a.rest
	mode := os.FileMode(0o755)
	if m, ok := o["m"]; ok {
		v, err := strconv.ParseUint(m, 8, 32)
		if err != nil {
			fmt.Fprintf(e.stderr, "install: invalid file mode: %s\n", m)
			return 64
		}
		mode = os.FileMode(v)
	}
	uid, gid := -1, -1
	for k, file := range map[string]string{"o": "/etc/passwd", "g": "/etc/group"} {
		name, ok := o[k]
		if !ok {
			continue
		}
		id := lookupID(e, file, name)
		if id < 0 {
			what := map[string]string{"o": "user", "g": "group"}[k]
			fmt.Fprintf(e.stderr, "install: unknown %s %s\n", what, name)
			return 67
		}
		if k == "o" {
			uid = id
		} else {
			gid = id
		}
	}
	finish := func(p string) error {
		if err := os.Chmod(p, mode); err != nil {
			return err
		}
		if uid >= 0 || gid >= 0 {
			return os.Lchown(p, uid, gid)
		}
		return nil
	}
	if _, ok := o["d"]; ok {
		for _, d := range rest {
			err := os.MkdirAll(e.cwdPath(d), 0o755)
			if err == nil {
				err = finish(e.cwdPath(d))
			}
			if err != nil {
				fmt.Fprintf(e.stderr, "install: %s: %v\n", d, unwrapPathErr(err))
				return 71
			}
		}
		return 0
	}
	if len(rest) < 2 {
		fmt.Fprintln(e.stderr, "usage: install [-bCcpSsUv] [-f flags] [-g group] [-m mode] [-o owner] file1 file2")
		return 64
	}
	target := rest[len(rest)-1]
	srcs := rest[:len(rest)-1]
	if len(srcs) > 1 && !isDir(e.cwdPath(target)) {
		fmt.Fprintf(e.stderr, "install: %s: No such file or directory\n", target)
		return 64
	}
	for _, s := range srcs {
		b, err := os.ReadFile(e.cwdPath(s))
		if err != nil {
			fmt.Fprintf(e.stderr, "install: %s: No such file or directory\n", s)
			return 66
		}
		dst := e.cwdPath(target)
		if isDir(dst) {
			dst = filepath.Join(dst, filepath.Base(s))
		}
		os.Remove(dst)
		if err = os.WriteFile(dst, b, 0o600); err == nil {
			err = finish(dst)
		}
		if err != nil {
			fmt.Fprintf(e.stderr, "install: %s: %v\n", target, unwrapPathErr(err))
			return 71
		}
	}
	return 0
}

// lookupID finds a name (or takes a number) in a passwd or group file.
func lookupID(e *env, file, name string) int {
	if n, err := strconv.Atoi(name); err == nil {
		return n
	}
	lines, _ := readLines(e.p(file))
	for _, l := range lines {
		f := strings.Split(l, ":")
		if len(f) > 2 && f[0] == name {
			if n, err := strconv.Atoi(f[2]); err == nil {
				return n
			}
		}
	}
	return -1
}

// kenvCmd: kenv [-hNq] [variable[=value]] (kenv(1)): the lab's kernel
// environment is empty, so a variable is "not found" (exit 1; silent
// with -q), as rc.subr's `kenv -q rc.debug` expects on a host booted
// without it.
func kenvCmd(e *env, args []string) int {
	a, ok := e.parseArgs(args, "hNqu", 0, "usage: kenv [-hNq]\n       kenv [-q] variable[=value]\n       kenv [-q] -u variable")
	if !ok {
		return 1
	}
	rest := a.rest
	if len(rest) == 0 {
		return 0
	}
	if strings.Contains(rest[0], "=") {
		fmt.Fprintln(e.stderr, "kenv: unable to set: the lab's kernel environment is read-only")
		return 1
	}
	if !a.has("q") {
		fmt.Fprintf(e.stderr, "kenv: unable to get %s\n", rest[0])
	}
	return 1
}

func init() {
	commands["ping"] = pingCmd
	commands["ping6"] = pingCmd
}

// pingCmd: ping [-q] [-c count] [-S src_addr] host (ping(8)), as
// ezjail-admin create asks whether a jail's address is configured
// (ezjail-admin:820: `ping -S ip -q -c 1 localhost`). The lab has no
// network stack of its own: a source address must be on one of the
// machine's interfaces (else bind fails, exit 71 = EX_OSERR), and only the
// machine's own addresses answer; anything else is 100% packet loss
// (exit 2).
func pingCmd(e *env, args []string) int {
	a, ok := e.parseArgs(args, "46AaDdfHnoqRrvc:i:I:l:m:M:p:s:S:t:T:W:z:", 1, "usage: ping [-AaDdfHnoqRrv] [-c count] [-S src_addr] [-t timeout] host")
	if !ok {
		return 64
	}
	ifs, err := e.interfaces()
	if err != nil {
		fmt.Fprintf(e.stderr, "ping: %v\n", err)
		return 71
	}
	own := map[string]bool{"127.0.0.1": true, "::1": true, "localhost": true}
	for _, i := range ifs {
		for _, ad := range i.addrs {
			own[strings.SplitN(ad, "/", 2)[0]] = true
		}
	}
	if src, ok := a.opts["S"]; ok && !own[src] {
		fmt.Fprintln(e.stderr, "ping: bind: Can't assign requested address")
		return 71
	}
	host := a.rest[len(a.rest)-1]
	fmt.Fprintf(e.stdout, "PING %s: 56 data bytes\n\n--- %s ping statistics ---\n", host, host)
	if !own[host] {
		fmt.Fprintln(e.stdout, "1 packets transmitted, 0 packets received, 100.0% packet loss")
		return 2
	}
	fmt.Fprintln(e.stdout, "1 packets transmitted, 1 packets received, 0.0% packet loss")
	return 0
}
