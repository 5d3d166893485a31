package emu

import (
	"archive/tar"
	"bufio"
	"bytes"
	"compress/gzip"
	"fmt"
	"io"
	"os"
	"path"
	"path/filepath"
	"regexp"
	"sort"
	"strconv"
	"strings"
	"time"
)

func init() { commands["pax"] = paxCmd }

// paxCmd is pax(1) as ezjail-admin runs it:
//
//	archive: pax -wzXt -x cpio -f ARCHIVE -s:old:new: … files … (ezjail-admin:1446)
//	restore: pax -zn -f ARCHIVE 'prop.ezjail-*'              (ezjail-admin:1481)
//	         pax -rzn -s:old:new: -f ARCHIVE NAME             (ezjail-admin:1506)
//	create -a: pax -rz -pe -f ARCHIVE -s:^ezjail:.: 'ezjail/*' (ezjail-admin:741)
//
// Write (-w) recurses into directory operands without following symlinks
// and writes the cpio (odc, "070707") or ustar format; -s substitutions
// are basic regular expressions, tried in order, the first that matches
// renames the file (pax(1), -s); -z gzips. List (no -r/-w) and read (-r)
// select members by pattern (fnmatch without FNM_PATHNAME: * matches /),
// -n only the first member each pattern matches. -X, -t and -p are
// accepted: the lab has no other devices below a jail root and keeps modes.
func paxCmd(e *env, args []string) int {
	var write, read, gz, first bool
	format, file := "ustar", ""
	var subs []paxSub
	var operands []string
	a := args[1:]
	for i := 0; i < len(a); i++ {
		x := a[i]
		if !strings.HasPrefix(x, "-") || x == "-" {
			operands = append(operands, a[i:]...)
			break
		}
		for j := 1; j < len(x); j++ {
			c := x[j]
			switch c {
			case 'w':
				write = true
			case 'r':
				read = true
			case 'z':
				gz = true
			case 'n':
				first = true
			case 'X', 't', 'v', 'd', 'D', 'k', 'u', 'H', 'L', 'P', 'O', 'l', 'i', 'c':
			case 'x', 'f', 's', 'p', 'b', 'o', 'T', 'U', 'G', 'B', 'E':
				v := x[j+1:]
				if v == "" {
					i++
					if i >= len(a) {
						fmt.Fprintf(e.stderr, "pax: option requires an argument -- %c\n", c)
						return 1
					}
					v = a[i]
				}
				switch c {
				case 'x':
					format = v
				case 'f':
					file = v
				case 's':
					s, err := parsePaxSub(v)
					if err != nil {
						fmt.Fprintf(e.stderr, "pax: %v\n", err)
						return 1
					}
					subs = append(subs, s)
				case 'p', 'b':
				default:
					fmt.Fprintf(e.stderr, "pax: option -%c is not modelled by the lab\n", c)
					return 1
				}
				j = len(x)
			default:
				fmt.Fprintf(e.stderr, "pax: unknown option -- %c\n", c)
				return 1
			}
		}
	}
	switch {
	case write && read:
		fmt.Fprintln(e.stderr, "pax: copy mode (-rw) is not modelled by the lab")
		return 1
	case write:
		if format != "cpio" && format != "ustar" {
			fmt.Fprintf(e.stderr, "pax: format %s is not modelled by the lab (cpio, ustar)\n", format)
			return 1
		}
		return e.paxWrite(file, format, gz, subs, operands)
	default:
		return e.paxRead(file, read, first, subs, operands)
	}
}

type paxSub struct {
	re   *regexp.Regexp
	repl string
	glob bool
}

// parsePaxSub parses -s /old/new/[gp] with any delimiter.
func parsePaxSub(s string) (paxSub, error) {
	if len(s) < 3 {
		return paxSub{}, fmt.Errorf("invalid replacement string %s", s)
	}
	d := s[0]
	parts := strings.Split(s[1:], string(d))
	if len(parts) != 3 {
		return paxSub{}, fmt.Errorf("invalid replacement string %s", s)
	}
	bre := parts[0]
	anchored := strings.HasPrefix(bre, "^")
	re, _, err := breToRegexp(bre)
	if err != nil {
		return paxSub{}, err
	}
	if !anchored {
		// breToRegexp anchors for expr; -s matches anywhere.
		re = regexp.MustCompile(strings.TrimPrefix(re.String(), "^"))
	}
	repl := strings.ReplaceAll(parts[1], "$", "$$")
	repl = regexp.MustCompile(`\\([0-9])`).ReplaceAllString(repl, "${$1}")
	repl = strings.ReplaceAll(repl, "&", "${0}")
	return paxSub{re: re, repl: repl, glob: strings.Contains(parts[2], "g")}, nil
}

func applySubs(subs []paxSub, name string) string {
	for _, s := range subs {
		loc := s.re.FindStringSubmatchIndex(name)
		if loc == nil {
			continue
		}
		if s.glob {
			return s.re.ReplaceAllString(name, s.repl)
		}
		var b []byte
		b = s.re.ExpandString(b, s.repl, name, loc)
		return name[:loc[0]] + string(b) + name[loc[1]:]
	}
	return name
}

type paxEntry struct {
	name, link string
	mode       int64 // unix mode with type bits
	uid, gid   int
	mtime      int64
	data       []byte
}

func (e *env) paxWrite(file, format string, gz bool, subs []paxSub, operands []string) int {
	var entries []paxEntry
	for _, op := range operands {
		root := e.cwdPath(op)
		err := filepath.Walk(root, func(p string, fi os.FileInfo, err error) error {
			if err != nil {
				return err
			}
			name := op
			if rel, _ := filepath.Rel(root, p); rel != "." {
				name = strings.TrimSuffix(op, "/") + "/" + rel
			}
			st := statSys(fi)
			en := paxEntry{name: applySubs(subs, name), mode: int64(st.mode), uid: int(st.uid), gid: int(st.gid), mtime: fi.ModTime().Unix()}
			switch {
			case fi.Mode()&os.ModeSymlink != 0:
				en.link, _ = os.Readlink(p)
			case fi.Mode().IsRegular():
				b, err := os.ReadFile(p)
				if err != nil {
					return err
				}
				en.data = b
			}
			entries = append(entries, en)
			return nil
		})
		if err != nil {
			fmt.Fprintf(e.stderr, "pax: %s: %v\n", op, unwrapPathErr(err))
			return 1
		}
	}
	var buf bytes.Buffer
	var w io.Writer = &buf
	var zw *gzip.Writer
	if gz {
		zw = gzip.NewWriter(&buf)
		w = zw
	}
	var err error
	if format == "cpio" {
		err = writeOdc(w, entries)
	} else {
		err = writeUstar(w, entries)
	}
	if err == nil && zw != nil {
		err = zw.Close()
	}
	if err == nil {
		if file == "" || file == "-" {
			_, err = e.stdout.Write(buf.Bytes())
		} else {
			err = os.WriteFile(e.cwdPath(file), buf.Bytes(), 0o644)
		}
	}
	if err != nil {
		fmt.Fprintf(e.stderr, "pax: %v\n", err)
		return 1
	}
	return 0
}

// writeOdc writes the POSIX.1 cpio format (odc): "070707", then dev, ino,
// mode, uid, gid, nlink, rdev as 6 octal digits, mtime 11, name size 6,
// file size 11, the name with its NUL and the data; "TRAILER!!!" ends it.
func writeOdc(w io.Writer, entries []paxEntry) error {
	bw := bufio.NewWriter(w)
	put := func(ino int, en paxEntry) {
		data := en.data
		if en.link != "" {
			data = []byte(en.link)
		}
		fmt.Fprintf(bw, "070707%06o%06o%06o%06o%06o%06o%06o%011o%06o%011o%s\x00",
			0, ino&0o777777, en.mode&0o777777, en.uid&0o777777, en.gid&0o777777, 1, 0, en.mtime, len(en.name)+1, len(data), en.name)
		bw.Write(data)
	}
	for i, en := range entries {
		put(i+1, en)
	}
	put(0, paxEntry{name: "TRAILER!!!"})
	return bw.Flush()
}

func writeUstar(w io.Writer, entries []paxEntry) error {
	tw := tar.NewWriter(w)
	for _, en := range entries {
		h := &tar.Header{Name: en.name, Mode: en.mode & 0o7777, Uid: en.uid, Gid: en.gid, ModTime: time.Unix(en.mtime, 0), Format: tar.FormatUSTAR}
		switch en.mode & 0o170000 {
		case 0o040000:
			h.Typeflag = tar.TypeDir
		case 0o120000:
			h.Typeflag, h.Linkname = tar.TypeSymlink, en.link
		default:
			h.Typeflag, h.Size = tar.TypeReg, int64(len(en.data))
		}
		if err := tw.WriteHeader(h); err != nil {
			return err
		}
		tw.Write(en.data)
	}
	return tw.Close()
}

func readOdc(b []byte) ([]paxEntry, error) {
	var out []paxEntry
	for len(b) >= 76 {
		if string(b[:6]) != "070707" {
			return nil, fmt.Errorf("bad cpio header")
		}
		num := func(off, n int) int64 { v, _ := strconv.ParseInt(string(b[off:off+n]), 8, 64); return v }
		mode, uid, gid, mtime := num(18, 6), num(24, 6), num(30, 6), num(48, 11)
		nsize, fsize := int(num(59, 6)), int(num(65, 11))
		if 76+nsize+fsize > len(b) || nsize < 1 {
			return nil, fmt.Errorf("truncated cpio archive")
		}
		name := string(b[76 : 76+nsize-1])
		data := b[76+nsize : 76+nsize+fsize]
		b = b[76+nsize+fsize:]
		if name == "TRAILER!!!" {
			break
		}
		en := paxEntry{name: name, mode: mode, uid: int(uid), gid: int(gid), mtime: mtime}
		if mode&0o170000 == 0o120000 {
			en.link = string(data)
		} else {
			en.data = data
		}
		out = append(out, en)
	}
	return out, nil
}

func readUstar(b []byte) ([]paxEntry, error) {
	tr := tar.NewReader(bytes.NewReader(b))
	var out []paxEntry
	for {
		h, err := tr.Next()
		if err == io.EOF {
			return out, nil
		}
		if err != nil {
			return nil, err
		}
		en := paxEntry{name: h.Name, mode: h.Mode & 0o7777, uid: h.Uid, gid: h.Gid, mtime: h.ModTime.Unix()}
		switch h.Typeflag {
		case tar.TypeDir:
			en.mode |= 0o040000
		case tar.TypeSymlink:
			en.mode |= 0o120000
			en.link = h.Linkname
		default:
			en.mode |= 0o100000
			en.data, _ = io.ReadAll(tr)
		}
		out = append(out, en)
	}
}

func (e *env) paxRead(file string, extract, first bool, subs []paxSub, patterns []string) int {
	var raw []byte
	var err error
	if file == "" || file == "-" {
		raw, err = io.ReadAll(e.stdin)
	} else {
		raw, err = os.ReadFile(e.cwdPath(file))
	}
	if err != nil {
		fmt.Fprintf(e.stderr, "pax: Failed open to read on %s (No such file or directory)\n", file)
		return 1
	}
	if bytes.HasPrefix(raw, []byte{0x1f, 0x8b}) {
		zr, err := gzip.NewReader(bytes.NewReader(raw))
		if err == nil {
			raw, err = io.ReadAll(zr)
		}
		if err != nil {
			fmt.Fprintf(e.stderr, "pax: %v\n", err)
			return 1
		}
	}
	var entries []paxEntry
	if bytes.HasPrefix(raw, []byte("070707")) {
		entries, err = readOdc(raw)
	} else {
		entries, err = readUstar(raw)
	}
	if err != nil {
		fmt.Fprintf(e.stderr, "pax: %s: %v\n", file, err)
		return 1
	}
	used := make([]bool, len(patterns))
	var dirs []paxEntry
	for _, en := range entries {
		sel := len(patterns) == 0
		for i, p := range patterns {
			if first && used[i] {
				continue
			}
			if ok, _ := path.Match(p, en.name); ok || globAny(p, en.name) {
				sel, used[i] = true, true
				break
			}
		}
		if !sel {
			continue
		}
		name := applySubs(subs, en.name)
		if !extract {
			fmt.Fprintln(e.stdout, name)
			continue
		}
		p := e.cwdPath(name)
		switch en.mode & 0o170000 {
		case 0o040000:
			if err = os.MkdirAll(p, 0o755); err == nil {
				dirs = append(dirs, paxEntry{name: p, mode: en.mode})
			}
		case 0o120000:
			os.MkdirAll(filepath.Dir(p), 0o755)
			os.Remove(p)
			err = os.Symlink(en.link, p)
		default:
			os.MkdirAll(filepath.Dir(p), 0o755)
			os.Remove(p)
			if err = os.WriteFile(p, en.data, 0o600); err == nil {
				err = os.Chmod(p, os.FileMode(en.mode&0o777)|modeBits(en.mode))
			}
		}
		if err == nil {
			os.Lchown(p, en.uid, en.gid)
		}
		if err != nil {
			fmt.Fprintf(e.stderr, "pax: %s: %v\n", name, unwrapPathErr(err))
			return 1
		}
	}
	// Directory modes last, as pax does, so that a read-only directory
	// still received its files.
	sort.SliceStable(dirs, func(i, j int) bool { return len(dirs[i].name) > len(dirs[j].name) })
	for _, d := range dirs {
		os.Chmod(d.name, os.FileMode(d.mode&0o777)|modeBits(d.mode))
	}
	for i, p := range patterns {
		if !used[i] {
			fmt.Fprintf(e.stderr, "pax: WARNING! These patterns were not matched:\n%s\n", p)
			return 1
		}
	}
	return 0
}

// globAny is fnmatch(3) without FNM_PATHNAME: * and ? also match '/'.
func globAny(pattern, name string) bool {
	var b strings.Builder
	b.WriteString("^")
	for _, r := range pattern {
		switch r {
		case '*':
			b.WriteString(".*")
		case '?':
			b.WriteString(".")
		default:
			b.WriteString(regexp.QuoteMeta(string(r)))
		}
	}
	b.WriteString("$")
	ok, _ := regexp.MatchString(b.String(), name)
	return ok
}
