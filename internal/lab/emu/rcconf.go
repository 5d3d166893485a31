package emu

import (
	"os"
	"strings"
)

// rcVar is one assignment found in an rc.conf-style file.
type rcVar struct {
	name, value string
	line        int // index into the file's lines
}

// parseRC reads the assignments of a /bin/sh fragment in rc.conf style:
// name="value", name='value', name=value, optional "export ", comments and
// blank lines ignored. This is the subset sysrc(8) itself edits
// (freebsd.md §3.3); anything else is kept verbatim and never evaluated.
func parseRC(text string) (lines []string, vars []rcVar) {
	lines = strings.Split(text, "\n")
	if len(lines) > 0 && lines[len(lines)-1] == "" {
		lines = lines[:len(lines)-1]
	}
	for i, l := range lines {
		name, value, ok := parseRCLine(l)
		if ok {
			vars = append(vars, rcVar{name: name, value: value, line: i})
		}
	}
	return lines, vars
}

func parseRCLine(l string) (name, value string, ok bool) {
	s := strings.TrimSpace(l)
	if s == "" || s[0] == '#' {
		return "", "", false
	}
	s = strings.TrimPrefix(s, "export ")
	k, v, found := strings.Cut(s, "=")
	if !found || !validVarName(k) {
		return "", "", false
	}
	v = strings.TrimSpace(v)
	switch {
	case len(v) >= 1 && (v[0] == '"' || v[0] == '\''):
		q := v[0]
		if end := strings.IndexByte(v[1:], q); end >= 0 {
			v = v[1 : 1+end]
		} else {
			v = v[1:]
		}
	default:
		if i := strings.Index(v, " #"); i >= 0 {
			v = v[:i]
		}
		v = strings.TrimSpace(v)
	}
	return k, v, true
}

func validVarName(k string) bool {
	if k == "" {
		return false
	}
	for i, c := range k {
		alpha := c == '_' || (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z')
		if !alpha && (i == 0 || c < '0' || c > '9') {
			return false
		}
	}
	return true
}

// rcValue looks a variable up in files in order; the last assignment wins,
// as when rc.conf and then rc.conf.local are sourced (freebsd.md §3.2).
func rcValue(paths []string, name string) (string, bool) {
	val, found := "", false
	for _, p := range paths {
		b, err := os.ReadFile(p)
		if err != nil {
			continue
		}
		_, vars := parseRC(string(b))
		for _, v := range vars {
			if v.name == name {
				val, found = v.value, true
			}
		}
	}
	return val, found
}

// rcConfFiles returns the host paths of rc_conf_files (freebsd.md §3.2).
func (e *env) rcConfFiles() []string {
	return []string{e.p("/etc/rc.conf"), e.p("/etc/rc.conf.local")}
}

// rcGet reads a variable from /etc/defaults/rc.conf (if the machine has
// one), rc.conf and rc.conf.local, or returns def.
func (e *env) rcGet(name, def string) string {
	files := append([]string{e.p("/etc/defaults/rc.conf")}, e.rcConfFiles()...)
	if v, ok := rcValue(files, name); ok {
		return v
	}
	return def
}

func yes(v string) bool {
	switch strings.ToLower(v) {
	case "yes", "true", "on", "1":
		return true
	}
	return false
}
