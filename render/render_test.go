package render

import (
	"bytes"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/arbo-project/arbo/internal/golden"

	"github.com/arbo-project/arbo/dns"
	"github.com/arbo-project/arbo/inventory"
	"github.com/arbo-project/arbo/pf"
	"github.com/arbo-project/arbo/state"
	"github.com/arbo-project/arbo/templates"
)

const testCookie = "0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef"

func renderTree(t *testing.T, c *inventory.Cluster, o Options, dir string) []state.Machine {
	t.Helper()
	ms, err := Cluster(c, o)
	if err != nil {
		t.Fatal(err)
	}
	zones, err := dns.ZoneFiles(c, templates.Default())
	if err != nil {
		t.Fatal(err)
	}
	if err := WriteDir(dir, c, ms, zones); err != nil {
		t.Fatal(err)
	}
	return ms
}

// tree reads every file under dir: path → mode and content.
func tree(t *testing.T, dir string) map[string]string {
	t.Helper()
	out := map[string]string{}
	err := filepath.WalkDir(dir, func(p string, d fs.DirEntry, err error) error {
		if err != nil || d.IsDir() {
			return err
		}
		st, err := d.Info()
		if err != nil {
			return err
		}
		b, err := os.ReadFile(p)
		if err != nil {
			return err
		}
		rel, _ := filepath.Rel(dir, p)
		out[filepath.ToSlash(rel)] = st.Mode().Perm().String() + "\n" + string(b)
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	return out
}

func TestDeterministic(t *testing.T) {
	for _, ex := range []string{"arboreus", "single-host"} {
		c := golden.Example(t, ex)
		o := Options{Cookie: []byte(testCookie), Revision: time.Unix(1700000000, 0).UTC()}
		a, b := t.TempDir(), t.TempDir()
		renderTree(t, c, o, a)
		renderTree(t, golden.Example(t, ex), o, b)
		ta, tb := tree(t, a), tree(t, b)
		if len(ta) < 5 {
			t.Fatalf("%s: only %d files rendered", ex, len(ta))
		}
		for p, v := range ta {
			if tb[p] != v {
				t.Errorf("%s: %s differs between two renders", ex, p)
			}
		}
		if len(ta) != len(tb) {
			t.Errorf("%s: %d files, then %d", ex, len(ta), len(tb))
		}
	}
}

func TestLayout(t *testing.T) {
	c := golden.Example(t, "arboreus")
	dir := t.TempDir()
	ms := renderTree(t, c, Options{Cookie: []byte(testCookie)}, dir)
	var names []string
	for _, m := range ms {
		names = append(names, m.Name)
	}
	if strings.Join(names, ",") != "gate,server1,server2" {
		t.Errorf("machines %v, want gate,server1,server2 (sorted)", names)
	}
	for _, m := range ms {
		for i := 1; i < len(m.Files); i++ {
			if m.Files[i-1].Path >= m.Files[i].Path {
				t.Errorf("%s: files not sorted: %s, %s", m.Name, m.Files[i-1].Path, m.Files[i].Path)
			}
		}
	}
	for _, want := range []string{"server1/etc/pf.conf", "gate/cf/conf/config.xml", "manifest.json", "exports/arboreus.internal.zone"} {
		if _, err := os.Stat(filepath.Join(dir, want)); err != nil {
			t.Errorf("missing %s: %v", want, err)
		}
	}
	gw := ms[0]
	f := gw.File(ConfigXML)
	if f == nil || f.Mode != 0o644 || f.Owner != "root" || f.Group != "wheel" {
		t.Fatalf("config.xml: %+v", f)
	}
	kinds := []string{}
	for _, r := range f.Reload {
		kinds = append(kinds, r.Kind)
	}
	if strings.Join(kinds, ",") != state.ReloadPfSense+","+state.ReloadPfSenseNS {
		t.Errorf("config.xml reloads %v", kinds)
	}
	if len(ms[1].Routes) == 0 {
		t.Error("server1 has no routes to server2's jails")
	}
	// Sensitive files are at most 0600 in the output directory, and their
	// manifest entry carries no hash.
	sens := 0
	for _, m := range ms {
		for _, f := range m.Files {
			if !f.Sensitive {
				continue
			}
			sens++
			st, err := os.Stat(filepath.Join(dir, m.Name, f.Path))
			if err != nil {
				t.Fatal(err)
			}
			if st.Mode().Perm()&^0o600 != 0 {
				t.Errorf("%s%s: mode %v, want at most 0600", m.Name, f.Path, st.Mode().Perm())
			}
		}
	}
	if sens == 0 {
		t.Error("no sensitive file rendered; the cookie should be one")
	}
	mb, _ := os.ReadFile(filepath.Join(dir, ManifestName))
	if bytes.Contains(mb, []byte(testCookie)) {
		t.Error("the manifest holds the cookie")
	}
}

func TestResolverPackage(t *testing.T) {
	c := golden.Example(t, "single-host")
	ms, err := Cluster(c, Options{Cookie: []byte(testCookie)})
	if err != nil {
		t.Fatal(err)
	}
	for _, j := range ms[0].Jails {
		if j.Name == c.DNS.ResolverJail {
			for _, p := range j.Packages {
				if p == dns.ResolverPackage {
					return
				}
			}
			t.Fatalf("resolver jail %s packages %v lack %s", j.Name, j.Packages, dns.ResolverPackage)
		}
	}
	t.Fatal("resolver jail not rendered")
}

func TestManifestGolden(t *testing.T) {
	c := golden.Example(t, "arboreus")
	dir := t.TempDir()
	renderTree(t, c, Options{Cookie: []byte(testCookie), Revision: time.Unix(1700000000, 0).UTC()}, dir)
	got, err := os.ReadFile(filepath.Join(dir, ManifestName))
	if err != nil {
		t.Fatal(err)
	}
	golden.Check(t, "arboreus.manifest.json", got)
}

func TestCookieMissingPlaceholder(t *testing.T) {
	c := golden.Example(t, "arboreus")
	ms, err := Cluster(c, Options{CookieMissing: true})
	if err != nil {
		t.Fatal(err)
	}
	n := 0
	for _, m := range ms {
		for _, f := range m.Files {
			if bytes.Contains(f.Content, []byte(PlaceholderCookie)) {
				n++
				if !f.Sensitive {
					t.Errorf("%s%s holds the placeholder cookie but is not sensitive", m.Name, f.Path)
				}
			}
		}
	}
	if n == 0 {
		t.Error("no file carries the placeholder cookie")
	}
	dir := t.TempDir()
	if err := WriteDirPlaceholder(dir, c, ms, nil); err != nil {
		t.Fatal(err)
	}
	mb, _ := os.ReadFile(filepath.Join(dir, ManifestName))
	if !bytes.Contains(mb, []byte(`"cookie_missing": true`)) {
		t.Error("manifest does not say the cookie is missing")
	}
}

func TestReadCookie(t *testing.T) {
	dir := t.TempDir()
	c := &inventory.Cluster{Dir: dir, Erlang: &inventory.Erlang{CookieFile: "secrets/erlang.cookie",
		CookiePath: filepath.Join(dir, "secrets", "erlang.cookie")}}
	_, err := ReadCookie(c)
	want := "openssl rand -hex 32 > secrets/erlang.cookie && chmod 600 secrets/erlang.cookie"
	if err == nil || !strings.Contains(err.Error(), want) || !strings.Contains(err.Error(), c.Erlang.CookiePath) {
		t.Fatalf("missing cookie: got %v, want the path and %q", err, want)
	}
	if err := os.MkdirAll(filepath.Dir(c.Erlang.CookiePath), 0o700); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(c.Erlang.CookiePath, []byte(testCookie+"\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	if _, err := ReadCookie(c); err == nil || !strings.Contains(err.Error(), "chmod 600") {
		t.Errorf("a group/world-readable cookie must be refused, got %v", err)
	}
	if err := os.Chmod(c.Erlang.CookiePath, 0o600); err != nil {
		t.Fatal(err)
	}
	b, err := ReadCookie(c)
	if err != nil || string(b) != testCookie+"\n" {
		t.Errorf("ReadCookie = %q, %v", b, err)
	}
	if b, err := ReadCookie(&inventory.Cluster{}); b != nil || err != nil {
		t.Errorf("no erlang: want nil, nil; got %q, %v", b, err)
	}
}

func TestTemplatesOverrideFlowsThrough(t *testing.T) {
	tdir := t.TempDir()
	b, err := os.ReadFile(filepath.Join("..", "templates", "files", pf.TemplateName))
	if err != nil {
		t.Fatal(err)
	}
	custom := append([]byte("# site override marker\n"), b...)
	if err := os.WriteFile(filepath.Join(tdir, pf.TemplateName), custom, 0o644); err != nil {
		t.Fatal(err)
	}
	ts, err := templates.Load(tdir)
	if err != nil {
		t.Fatal(err)
	}
	ms, err := Cluster(golden.Example(t, "arboreus"), Options{Templates: ts, Cookie: []byte(testCookie)})
	if err != nil {
		t.Fatal(err)
	}
	f := ms[1].File(pf.Path)
	if f == nil || !bytes.HasPrefix(f.Content, []byte("# site override marker\n")) {
		t.Error("the --templates override did not reach pf.conf")
	}
}

func TestWriteDirRefusesForeignDir(t *testing.T) {
	dir := t.TempDir()
	if err := os.WriteFile(filepath.Join(dir, "precious"), []byte("x"), 0o644); err != nil {
		t.Fatal(err)
	}
	c := golden.Example(t, "arboreus")
	ms, err := Cluster(c, Options{Cookie: []byte(testCookie)})
	if err != nil {
		t.Fatal(err)
	}
	if err := WriteDir(dir, c, ms, nil); err == nil || !strings.Contains(err.Error(), "not empty") {
		t.Errorf("want a refusal of a non-empty foreign directory, got %v", err)
	}
}

// A second render into the same directory removes what the topology no
// longer produces, so that the tree always matches its manifest.
func TestWriteDirRemovesStale(t *testing.T) {
	dir := t.TempDir()
	c := golden.Example(t, "arboreus")
	renderTree(t, c, Options{Cookie: []byte(testCookie)}, dir)
	ms, err := Cluster(c, Options{Cookie: []byte(testCookie)})
	if err != nil {
		t.Fatal(err)
	}
	ms = ms[:1] // only the gateway this time
	if err := WriteDir(dir, c, ms, nil); err != nil {
		t.Fatal(err)
	}
	if _, err := os.Stat(filepath.Join(dir, "server1", "etc", "pf.conf")); !os.IsNotExist(err) {
		t.Errorf("stale server1/etc/pf.conf survived: %v", err)
	}
	if _, err := os.Stat(filepath.Join(dir, "gate", "cf", "conf", "config.xml")); err != nil {
		t.Error(err)
	}
	matches, _ := filepath.Glob(filepath.Join(dir, "gate", "cf", "conf", ".*arbo-tmp*"))
	if len(matches) != 0 {
		t.Errorf("temporary files left: %v", matches)
	}
}

// TestCookiePolicy: the cookie comes from under the topology's directory,
// also after symlinks, unless --cookie-file names it; it must look like a
// cookie; errors name the topology position and never the content
// (issue 11, item 5).
func TestCookiePolicy(t *testing.T) {
	outside := t.TempDir()
	secret := "https://ci:ghp_SECRETTOKEN@example.com" // a git credential: one printable line
	if err := os.WriteFile(filepath.Join(outside, ".git-credentials"), []byte(secret+"\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	long := strings.Repeat("a", 256)
	tests := []struct {
		name    string
		setup   func(dir string) // makes dir/cookie
		flag    string           // --cookie-file ("" = none)
		wantErr string           // "" = read fine
	}{
		{name: "plain", setup: func(dir string) { write(t, filepath.Join(dir, "cookie"), testCookie+"\n") }},
		{name: "symlink out of the directory", wantErr: "outside the topology's directory",
			setup: func(dir string) { symlink(t, filepath.Join(outside, ".git-credentials"), filepath.Join(dir, "cookie")) }},
		{name: "symlink inside the directory", setup: func(dir string) {
			write(t, filepath.Join(dir, "real"), testCookie)
			symlink(t, "real", filepath.Join(dir, "cookie"))
		}},
		{name: "two lines", wantErr: "control or non-ASCII byte at offset",
			setup: func(dir string) { write(t, filepath.Join(dir, "cookie"), "abc\ndef\n") }},
		{name: "too long", wantErr: "256 characters long: at most 255",
			setup: func(dir string) { write(t, filepath.Join(dir, "cookie"), long) }},
		{name: "too big", wantErr: "bytes: an Erlang cookie is one line",
			setup: func(dir string) { write(t, filepath.Join(dir, "cookie"), strings.Repeat("a", MaxCookieFile+1)) }},
		{name: "a credential with a space is no cookie", wantErr: "whitespace",
			setup: func(dir string) { write(t, filepath.Join(dir, "cookie"), "user "+secret) }},
		{name: "flag outside the directory", flag: filepath.Join(outside, "ci.cookie"),
			setup: func(string) { write(t, filepath.Join(outside, "ci.cookie"), testCookie) }},
		{name: "flag, but no cookie", flag: filepath.Join(outside, "nothing"), wantErr: "--cookie-file " + filepath.Join(outside, "nothing") + " does not exist",
			setup: func(string) {}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			dir := t.TempDir()
			tt.setup(dir)
			c := &inventory.Cluster{File: filepath.Join(dir, "topology.yaml"), Dir: dir, Erlang: &inventory.Erlang{
				CookieFile: "cookie", CookiePath: filepath.Join(dir, "cookie"), CookiePos: inventory.Pos{Line: 7, Col: 16}}}
			if err := UseCookieFile(c, tt.flag); err != nil {
				t.Fatal(err)
			}
			b, err := ReadCookie(c)
			if tt.wantErr == "" {
				if err != nil || len(b) == 0 {
					t.Fatalf("ReadCookie = %q, %v", b, err)
				}
				return
			}
			if err == nil {
				t.Fatalf("read %q; want an error with %q", b, tt.wantErr)
			}
			if !strings.Contains(err.Error(), tt.wantErr) {
				t.Errorf("error %q lacks %q", err, tt.wantErr)
			}
			if tt.flag == "" && !strings.Contains(err.Error(), "topology.yaml:7:16: erlang.cookie_file") {
				t.Errorf("error %q does not give the topology position", err)
			}
			if strings.Contains(err.Error(), "SECRETTOKEN") || strings.Contains(err.Error(), long) {
				t.Errorf("error shows the file's content: %q", err)
			}
		})
	}
	if err := UseCookieFile(&inventory.Cluster{}, "/x"); err == nil {
		t.Error("--cookie-file without an erlang section must be refused")
	}
}

func write(t *testing.T, p, s string) {
	t.Helper()
	if err := os.WriteFile(p, []byte(s), 0o600); err != nil {
		t.Fatal(err)
	}
}

func symlink(t *testing.T, target, p string) {
	t.Helper()
	if err := os.Symlink(target, p); err != nil {
		t.Fatal(err)
	}
}
