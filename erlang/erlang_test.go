package erlang

import (
	"bytes"
	"fmt"
	"path/filepath"
	"reflect"
	"strings"
	"testing"

	"github.com/arbo-project/arbo/internal/golden"

	"github.com/arbo-project/arbo/inventory"
	"github.com/arbo-project/arbo/state"
	"github.com/arbo-project/arbo/templates"
)

const testCookie = "TESTCOOKIE_0123456789abcdef"

func TestGolden(t *testing.T) {
	for _, ex := range []string{"arboreus", "single-host"} {
		c := golden.Example(t, ex)
		for _, h := range c.Hosts {
			files, err := Render(c, h, templates.Default(), []byte(testCookie+"\n"))
			if err != nil {
				t.Fatal(err)
			}
			var meta bytes.Buffer
			for _, f := range files {
				golden.Check(t, filepath.Join(ex, h.Name, f.Path), f.Content)
				fmt.Fprintf(&meta, "%s mode=%04o owner=%s:%s jail=%q sensitive=%v reload=%v source=%s\n",
					f.Path, f.Mode, f.Owner, f.Group, f.Jail, f.Sensitive, f.Reload, f.Source)
			}
			golden.Check(t, filepath.Join(ex, h.Name, "files.txt"), meta.Bytes())
			again, _ := Render(c, h, templates.Default(), []byte(testCookie+"\n"))
			if !reflect.DeepEqual(files, again) {
				t.Errorf("%s/%s: two renders differ", ex, h.Name)
			}
		}
	}
}

func TestFiles(t *testing.T) {
	c := golden.Example(t, "arboreus")
	files, err := Render(c, c.Host("server1"), templates.Default(), []byte(testCookie))
	if err != nil {
		t.Fatal(err)
	}
	byPath := map[string]state.File{}
	for _, f := range files {
		byPath[f.Path] = f
		if f.Jail == "" {
			t.Errorf("%s: File.Jail not set", f.Path)
		}
	}
	if len(files) != 6 {
		t.Errorf("want 3 files for each of 2 jails, got %d", len(files))
	}
	vm := byPath["/usr/jails/db1/usr/local/etc/arbo/vm.args"]
	for _, bad := range []string{"\n-name", "\n-sname", "\n-setcookie", testCookie} {
		if strings.Contains(string(vm.Content), bad) {
			t.Errorf("vm.args holds %q", bad)
		}
	}
	if !strings.Contains(string(vm.Content), "\n-hidden") || vm.Sensitive {
		t.Errorf("db1 vm.args: %s", vm.Content)
	}
	if app := byPath["/usr/jails/app1/usr/local/etc/arbo/vm.args"]; strings.Contains(string(app.Content), "-hidden") {
		t.Error("app1 is not hidden")
	}
	env := byPath["/usr/jails/app1/usr/local/etc/arbo/env"]
	if env.Mode != 0o400 || env.Owner != "root" || !env.Sensitive {
		t.Errorf("env: mode %o owner %s sensitive %v", env.Mode, env.Owner, env.Sensitive)
	}
	ck := byPath["/usr/jails/app1/root/.erlang.cookie"]
	if string(ck.Content) != testCookie || ck.Mode != 0o400 || !ck.Sensitive {
		t.Errorf("cookie: %q mode %o sensitive %v", ck.Content, ck.Mode, ck.Sensitive)
	}
	if len(env.Reload) != 0 {
		t.Errorf("no erlang.service: no reload, got %v", env.Reload)
	}
}

func TestOptions(t *testing.T) {
	c := golden.Example(t, "arboreus")
	c.Erlang.User = "app"
	c.Erlang.NodeHost = inventory.NodeHostFQDN
	c.Erlang.Service = "myapp"
	files, err := Render(c, c.Host("server2"), templates.Default(), []byte(testCookie))
	if err != nil {
		t.Fatal(err)
	}
	var ck, env *state.File
	for i, f := range files {
		switch f.Path {
		case "/usr/jails/app2/home/app/.erlang.cookie":
			ck = &files[i]
		case "/usr/jails/app2/usr/local/etc/arbo/env":
			env = &files[i]
		}
	}
	if ck == nil || ck.Owner != "app" {
		t.Fatalf("cookie for user app: %+v", ck)
	}
	if env == nil || env.Owner != "app" || !strings.Contains(string(env.Content), "export RELEASE_NODE='arboreus@app2.arboreus.internal'\n") {
		t.Fatalf("env: %+v", env)
	}
	if !reflect.DeepEqual(env.Reload, []state.Reload{{Kind: state.ReloadErlang, Target: "app2"}}) {
		t.Errorf("reload %v", env.Reload)
	}
}

func TestIPv6(t *testing.T) {
	c, err := inventory.Parse("t.yaml", []byte(`
version: 1
cluster: t
domain: t.internal
networks:
  lan: { cidr: 192.168.1.0/24 }
  app: { cidr: "fd00:1::/64" }
tiers:
  app: { role: app, network: app }
erlang: { tiers: [app], basename: t, dist_ports: 9100-9101, cookie_file: c, discovery: app, consensus: 1 }
hosts:
  - name: h1
    ssh: { address: 192.168.1.11 }
    interfaces: [{ device: em0, network: lan, address: 192.168.1.11 }]
    jails: [{ name: a1, tier: app, ip: "fd00:1::11" }]
`))
	if err != nil {
		t.Fatal(err)
	}
	files, err := Render(c, c.Host("h1"), templates.Default(), []byte(testCookie))
	if err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(string(files[0].Content), "\n-proto_dist inet6_tcp\n") {
		t.Errorf("vm.args: %s", files[0].Content)
	}
	if !strings.Contains(string(files[1].Content), "RELEASE_NODE='t@fd00:1::11'") {
		t.Errorf("env: %s", files[1].Content)
	}
}

func TestCheckCookie(t *testing.T) {
	tests := []struct {
		in, want, err string
	}{
		{"abc_DEF-123\n", "abc_DEF-123", ""},
		{"abc\r\n", "abc", ""},
		{"abc", "abc", ""},
		{"", "", "empty"},
		{"\n", "", "empty"},
		{"ab c", "", "whitespace"},
		{"abc\n\n", "", "whitespace"},
		{"ab\"c", "", "quote"},
		{"ab'c", "", "quote"},
		{"ab\\c", "", "backslash"},
		{"abé", "", "non-ASCII"},
		{"a\tb", "", "whitespace"},
	}
	for _, tt := range tests {
		got, err := CheckCookie([]byte(tt.in))
		if tt.err != "" {
			if err == nil || !strings.Contains(err.Error(), tt.err) {
				t.Errorf("%q: want error %q, got %v", tt.in, tt.err, err)
			}
			if err != nil && len(tt.in) > 2 && strings.Contains(err.Error(), strings.TrimSpace(tt.in)) {
				t.Errorf("%q: the error shows the cookie: %v", tt.in, err)
			}
			continue
		}
		if err != nil || string(got) != tt.want {
			t.Errorf("%q: got %q, %v; want %q", tt.in, got, err, tt.want)
		}
	}
}

func TestBadCookieIsAnError(t *testing.T) {
	c := golden.Example(t, "arboreus")
	_, err := Render(c, c.Host("server1"), templates.Default(), nil)
	if err == nil || !strings.Contains(err.Error(), "secrets/erlang.cookie") {
		t.Errorf("want an error naming the cookie file, got %v", err)
	}
}

func TestTLS(t *testing.T) {
	c := golden.Example(t, "arboreus")
	c.Erlang.TLS = true
	c.Erlang.User = "app"
	h := c.Host("server1")
	files, err := Render(c, h, templates.Default(), []byte(testCookie))
	if err != nil {
		t.Fatal(err)
	}
	vm := string(files[0].Content)
	if !strings.Contains(vm, "\n-proto_dist inet_tls\n-ssl_dist_optfile /usr/local/etc/arbo/ssl_dist.conf\n") || strings.Contains(vm, "inet6") {
		t.Errorf("vm.args with tls:\n%s", vm)
	}
	if _, err := RenderTLS(c, h, templates.Default(), nil); err == nil || !strings.Contains(err.Error(), "app1") {
		t.Errorf("no material: %v", err)
	}
	tf := map[string]TLSFiles{}
	for _, j := range []string{"app1", "db1"} {
		tf[j] = TLSFiles{CA: []byte("CA\n"), Cert: []byte("CERT " + j + "\n"), Key: []byte("KEY " + j + "\n")}
	}
	out, err := RenderTLS(c, h, templates.Default(), tf)
	if err != nil {
		t.Fatal(err)
	}
	var meta bytes.Buffer
	for _, f := range out {
		fmt.Fprintf(&meta, "%s mode=%04o owner=%s:%s jail=%q sensitive=%v source=%s\n", f.Path, f.Mode, f.Owner, f.Group, f.Jail, f.Sensitive, f.Source)
		switch filepath.Base(f.Path) {
		case "ssl_dist.conf":
			golden.Check(t, filepath.Join("tls", f.Path), f.Content)
			for _, want := range []string{"{verify, verify_peer}", "{fail_if_no_peer_cert, true}", `{cacertfile, "/usr/local/etc/arbo/dist-ca.pem"}`} {
				if !strings.Contains(string(f.Content), want) {
					t.Errorf("%s lacks %s", f.Path, want)
				}
			}
		default:
			if !f.Sensitive || f.Mode != 0o600 || f.Owner != "app" {
				t.Errorf("%s: sensitive %v mode %04o owner %s", f.Path, f.Sensitive, f.Mode, f.Owner)
			}
		}
	}
	golden.Check(t, filepath.Join("tls", "files.txt"), meta.Bytes())
	if len(out) != 8 {
		t.Errorf("want 4 files for each of 2 jails, got %d", len(out))
	}
	if key := out[3]; string(key.Content) != "KEY app1\n" || key.Path != "/usr/jails/app1/usr/local/etc/arbo/dist.key" {
		t.Errorf("app1 key file: %s %q", key.Path, key.Content)
	}

	c.Erlang.TLS = false
	if out, err := RenderTLS(c, h, templates.Default(), tf); err != nil || out != nil {
		t.Errorf("without tls: %v %v", out, err)
	}
}

func TestTLSIPv6(t *testing.T) {
	c, err := inventory.Parse("t.yaml", []byte(`
version: 1
cluster: t
domain: t.internal
networks:
  lan: { cidr: 192.168.1.0/24 }
  app: { cidr: "fd00:1::/64" }
tiers:
  app: { role: app, network: app }
erlang: { tiers: [app], basename: t, dist_ports: 9100-9101, cookie_file: c, discovery: app, consensus: 1, tls: true }
hosts:
  - name: h1
    ssh: { address: 192.168.1.11 }
    interfaces: [{ device: em0, network: lan, address: 192.168.1.11 }]
    jails: [{ name: a1, tier: app, ip: "fd00:1::11" }]
`))
	if err != nil {
		t.Fatal(err)
	}
	files, err := Render(c, c.Host("h1"), templates.Default(), []byte(testCookie))
	if err != nil {
		t.Fatal(err)
	}
	if vm := string(files[0].Content); !strings.Contains(vm, "\n-proto_dist inet6_tls\n") || strings.Contains(vm, "inet6_tcp") {
		t.Errorf("vm.args: %s", vm)
	}
}

func TestNoEPMD(t *testing.T) {
	c := golden.Example(t, "arboreus")
	c.Erlang.NoEPMD = true
	c.Erlang.DistPorts = inventory.PortRange{Min: 9100, Max: 9100}
	files, err := Render(c, c.Host("server1"), templates.Default(), []byte(testCookie))
	if err != nil {
		t.Fatal(err)
	}
	if vm := string(files[0].Content); !strings.Contains(vm, "\n-start_epmd false\n-erl_epmd_port 9100\n") {
		t.Errorf("vm.args with epmd: false:\n%s", vm)
	}
	if got := c.ErlangPorts(); len(got) != 1 || got[0] != (inventory.PortRange{Min: 9100, Max: 9100}) {
		t.Errorf("ErlangPorts with epmd: false: %v, want only 9100", got)
	}
}
