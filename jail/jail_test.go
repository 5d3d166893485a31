package jail

import (
	"bytes"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"reflect"
	"slices"
	"strings"
	"testing"

	"github.com/arbo-project/arbo/internal/golden"

	"github.com/arbo-project/arbo/inventory"
	"github.com/arbo-project/arbo/state"
	"github.com/arbo-project/arbo/templates"
)

var examples = []string{"arboreus", "single-host"}

func parse(t *testing.T, y string) *inventory.Cluster {
	t.Helper()
	c, err := inventory.Parse("test.yaml", []byte(y))
	if err != nil {
		t.Fatalf("topology does not load: %v", err)
	}
	return c
}

func dumpJails(js []state.Jail) []byte {
	var b bytes.Buffer
	for _, j := range js {
		fmt.Fprintf(&b, "%+v\n", j)
	}
	return b.Bytes()
}

func dumpMeta(fs []state.File) []byte {
	var b bytes.Buffer
	for _, f := range fs {
		fmt.Fprintf(&b, "%s mode=%04o owner=%s:%s jail=%q sensitive=%v reload=%v source=%s\n",
			f.Path, f.Mode, f.Owner, f.Group, f.Jail, f.Sensitive, f.Reload, f.Source)
	}
	return b.Bytes()
}

func TestGolden(t *testing.T) {
	for _, ex := range examples {
		c := golden.Example(t, ex)
		for _, h := range c.Hosts {
			files, jails, err := Render(c, h, templates.Default())
			if err != nil {
				t.Fatalf("%s/%s: %v", ex, h.Name, err)
			}
			for _, f := range files {
				golden.Check(t, filepath.Join(ex, h.Name, f.Path), f.Content)
			}
			golden.Check(t, filepath.Join(ex, h.Name, "files.txt"), dumpMeta(files))
			golden.Check(t, filepath.Join(ex, h.Name, "jails.txt"), dumpJails(jails))
		}
	}
}

func TestDeterministic(t *testing.T) {
	for _, ex := range examples {
		c := golden.Example(t, ex)
		for _, h := range c.Hosts {
			f1, j1, err1 := Render(c, h, templates.Default())
			f2, j2, err2 := Render(golden.Example(t, ex), c.Host(h.Name), templates.Default())
			if err1 != nil || err2 != nil {
				t.Fatal(err1, err2)
			}
			if !reflect.DeepEqual(f1, f2) || !reflect.DeepEqual(j1, j2) {
				t.Errorf("%s/%s: two renders differ", ex, h.Name)
			}
		}
	}
}

// The per-jail file must be what ezjail-admin's writejailinfo writes, so
// that jails created by hand can be adopted (freebsd.md §1.3).
func TestEzjailFormat(t *testing.T) {
	c := golden.Example(t, "single-host")
	files, _, err := Render(c, c.Host("box"), templates.Default())
	if err != nil {
		t.Fatal(err)
	}
	var f *state.File
	for i := range files {
		if files[i].Path == "/usr/local/etc/ezjail/app1" {
			f = &files[i]
		}
	}
	if f == nil {
		t.Fatal("no /usr/local/etc/ezjail/app1")
	}
	lines := strings.Split(string(f.Content), "\n")
	header := []string{
		"# To specify the start up order of your ezjails, use these lines to",
		"# create a Jail dependency tree. See rcorder(8) for more details.",
		"#",
		"# PROVIDE: standard_ezjail ezjail_app1",
		"# REQUIRE: ezjail_ns1 ezjail_db1",
		"# BEFORE: ",
		"#",
		"",
	}
	if !reflect.DeepEqual(lines[:len(header)], header) {
		t.Errorf("header:\n%q\nwant\n%q", lines[:len(header)], header)
	}
	names := []string{"hostname", "ip", "rootdir", "exec_start", "exec_stop", "mount_enable", "devfs_enable",
		"devfs_ruleset", "procfs_enable", "fdescfs_enable", "image", "imagetype", "attachparams", "attachblocking",
		"forceblocking", "zfs_datasets", "cpuset", "fib", "parentzfs", "parameters", "post_start_script", "retention_policy"}
	exports := lines[len(header):]
	if len(exports) != len(names)+1 || exports[len(names)] != "" {
		t.Fatalf("want %d export lines and a final newline, got %q", len(names), exports)
	}
	for i, n := range names {
		if !strings.HasPrefix(exports[i], "export jail_app1_"+n+"=\"") {
			t.Errorf("line %d: %q, want jail_app1_%s", i, exports[i], n)
		}
	}
	for _, want := range []string{
		`export jail_app1_hostname="app1.solo.internal"`,
		`export jail_app1_ip="lo1|10.30.1.10"`,
		`export jail_app1_rootdir="/usr/jails/app1"`,
		`export jail_app1_exec_stop="/bin/sh /etc/rc.shutdown jail"`,
		`export jail_app1_imagetype="zfs"`,
		`export jail_app1_parentzfs="zroot/usr/jails"`,
	} {
		if !strings.Contains(string(f.Content), want+"\n") {
			t.Errorf("missing %s", want)
		}
	}
}

// shellValue sources an rc.conf-style file with /bin/sh and prints one
// variable: the real test that the quoting holds.
func shellValue(t *testing.T, content []byte, name string) string {
	t.Helper()
	sh, err := exec.LookPath("sh")
	if err != nil {
		if os.Getenv("CI") == "true" {
			t.Fatal("sh not found")
		}
		t.Skip("sh not found")
	}
	p := filepath.Join(t.TempDir(), "rc.conf")
	if err := os.WriteFile(p, content, 0o644); err != nil {
		t.Fatal(err)
	}
	out, err := exec.Command(sh, "-c", `. "$1" && eval "printf %s \"\${$2}\""`, "sh", p, name).CombinedOutput()
	if err != nil {
		t.Fatalf("sh: %v: %s", err, out)
	}
	return string(out)
}

const base = `
version: 1
cluster: t
domain: t.internal
networks:
  lan:  { cidr: 192.168.1.0/24 }
  link: { cidr: 192.168.2.0/24, interconnect: true }
  app:  { cidr: 10.1.1.0/24 }
tiers:
  app: { role: app, network: app }
`

func TestRCConfLocal(t *testing.T) {
	twoHosts := `
hosts:
  - name: h1
    ssh: { address: 192.168.1.11 }
    interfaces:
      - { device: em0, network: lan,  address: 192.168.1.11 }
      - { device: em1, network: link, address: 192.168.2.11 }
    jails: [{ name: a1, tier: app, ip: 10.1.1.11 }]
  - name: h2
    ssh: { address: 192.168.1.12 }
    interfaces:
      - { device: em0, network: lan,  address: 192.168.1.12 }
      - { device: em1, network: link, address: 192.168.2.12 }
    jails: [{ name: a-2, tier: app, ip: [10.1.1.12, 10.1.1.22] }]
`
	gateway := `
gateway:
  name: gw
  kind: pfsense
  ssh: { address: 192.168.1.1 }
  interfaces:
    - { name: wan, device: igb0, address: 203.0.113.10/24, gateway: 203.0.113.1 }
    - { name: lan, device: igb1, network: lan, address: 192.168.1.1 }
`
	tests := []struct {
		name    string
		yaml    string
		host    string
		want    map[string]string // variable → value ("" = must be absent)
		wantErr string
	}{
		{
			name: "gateway: defaultrouter, routes via the interconnect, lo1",
			yaml: base + gateway + twoHosts,
			host: "h1",
			want: map[string]string{
				"defaultrouter":     "192.168.1.1",
				"cloned_interfaces": "lo1",
				// h1's a-1 at 10.1.1.11 sits between h2's two addresses:
				// they cannot share a prefix, so each keeps a host route.
				"static_routes":          "arbo_h2 arbo_h2_2",
				"route_arbo_h2":          "-host 10.1.1.12 192.168.2.12",
				"route_arbo_h2_2":        "-host 10.1.1.22 192.168.2.12",
				"ezjail_enable":          "YES",
				"pf_enable":              "YES",
				"pflog_enable":           "YES",
				"ipv6_static_routes":     "",
				"pf_fallback_rules":      "",
				"pf_fallback_rules_file": "/etc/pf-fallback.conf",
				FallbackConf: "table <arbo_local_jails> const { 10.1.1.11 }\nblock drop log all\n" +
					"pass quick on lo0 from ! <arbo_local_jails> to any keep state\n" +
					"pass in quick proto tcp from 192.168.1.0/24 to any port 22 flags S/SA keep state\n" +
					"pass out quick all keep state",
			},
		},
		{
			name: "no gateway, uplink: defaultrouter from the uplink",
			yaml: base + `
hosts:
  - name: h1
    ssh: { address: 192.168.1.11, port: 2222 }
    interfaces: [{ device: em0, network: lan, address: 192.168.1.11 }]
    uplink: { device: em0, router: 192.168.1.254 }
    jails: [{ name: a1, tier: app, ip: 10.1.1.11 }]
`,
			host: "h1",
			want: map[string]string{
				"defaultrouter":          "192.168.1.254",
				"static_routes":          "",
				"pf_fallback_rules":      "",
				"pf_fallback_rules_file": "/etc/pf-fallback.conf",
				FallbackConf: "table <arbo_local_jails> const { 10.1.1.11 }\nblock drop log all\n" +
					"pass quick on lo0 from ! <arbo_local_jails> to any keep state\n" +
					"pass in quick proto tcp from 192.168.1.0/24 to any port 2222 flags S/SA keep state\n" +
					"pass out quick all keep state",
			},
		},
		{
			name: "no gateway, no uplink: no defaultrouter; management CIDRs",
			yaml: base + `
management: [10.9.0.0/16, lan]
hosts:
  - name: h1
    ssh: { address: 192.168.1.11 }
    interfaces: [{ device: em0, network: lan, address: 192.168.1.11 }]
    jails: [{ name: a1, tier: app, ip: 10.1.1.11 }]
`,
			host: "h1",
			want: map[string]string{
				"defaultrouter":          "",
				"pf_fallback_rules":      "",
				"pf_fallback_rules_file": "/etc/pf-fallback.conf",
				FallbackConf: "table <arbo_local_jails> const { 10.1.1.11 }\nblock drop log all\n" +
					"pass quick on lo0 from ! <arbo_local_jails> to any keep state\n" +
					"pass in quick proto tcp from 10.9.0.0/16 to any port 22 flags S/SA keep state\n" +
					"pass in quick proto tcp from 192.168.1.0/24 to any port 22 flags S/SA keep state\n" +
					"pass out quick all keep state",
			},
		},
		{
			name: "jails on an attached network only: no lo1",
			yaml: `
version: 1
cluster: t
domain: t.internal
networks:
  lan: { cidr: 192.168.1.0/24 }
tiers:
  app: { role: app, network: lan }
hosts:
  - name: h1
    ssh: { address: 192.168.1.11 }
    interfaces: [{ device: em0, network: lan, address: 192.168.1.11 }]
    jails: [{ name: a1, tier: app, ip: 192.168.1.50 }]
`,
			host: "h1",
			want: map[string]string{"cloned_interfaces": "", "defaultrouter": ""},
		},
		{
			name: "rc_conf extras: host overrides top level by name, after arbo's own variables",
			yaml: base + `
rc_conf:
  ntpd_enable: "YES"
  sshd_flags: "-o UseDNS=no"
  syslogd_flags: "-ss"
hosts:
  - name: h1
    ssh: { address: 192.168.1.11 }
    interfaces: [{ device: em0, network: lan, address: 192.168.1.11 }]
    rc_conf:
      ntpd_enable: "NO"
      sendmail_enable: "NONE"
    jails: [{ name: a1, tier: app, ip: 10.1.1.11 }]
`,
			host: "h1",
			want: map[string]string{
				"ntpd_enable":     "NO",
				"sshd_flags":      "-o UseDNS=no",
				"syslogd_flags":   "-ss",
				"sendmail_enable": "NONE",
				"pflog_enable":    "YES",
			},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c := parse(t, tt.yaml)
			files, _, err := Render(c, c.Host(tt.host), templates.Default())
			if tt.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tt.wantErr) {
					t.Fatalf("want error %q, got %v", tt.wantErr, err)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			// Every variable arbo writes itself is one rc_conf may not set
			// (inventory.RCConfOwned), so that the two lists never drift.
			vars, err := RCConfVars(c, c.Host(tt.host))
			if err != nil {
				t.Fatal(err)
			}
			extra := map[string]bool{}
			for _, kv := range append(slices.Clone(c.RCConf), c.Host(tt.host).RCConf...) {
				extra[kv.Name] = true
			}
			for _, v := range vars {
				if _, owned := inventory.RCConfOwned(v.Name); !owned && !extra[v.Name] {
					t.Errorf("arbo writes %s, which inventory.RCConfOwned does not list", v.Name)
				}
			}
			var rc *state.File
			for i := range files {
				if files[i].Path == "/etc/rc.conf.local" {
					rc = &files[i]
				}
			}
			if rc == nil {
				t.Fatal("no /etc/rc.conf.local")
			}
			if !reflect.DeepEqual(rc.Reload, []state.Reload{{Kind: state.ReloadNetif}, {Kind: state.ReloadRoutes}}) {
				t.Errorf("reload = %v", rc.Reload)
			}
			for name, want := range tt.want {
				if name == FallbackConf {
					// The fallback rules are a file of their own, not a
					// multi-line pf_fallback_rules that rc.d/pf:41 would
					// join into one line (echo unquoted).
					var body []string
					for _, f := range files {
						if f.Path != FallbackConf {
							continue
						}
						for _, l := range strings.Split(strings.TrimSuffix(string(f.Content), "\n"), "\n") {
							if !strings.HasPrefix(l, "#") {
								body = append(body, l)
							}
						}
					}
					if got := strings.Join(body, "\n"); got != want {
						t.Errorf("%s = %q, want %q", FallbackConf, got, want)
					}
					continue
				}
				if got := shellValue(t, rc.Content, name); got != want {
					t.Errorf("%s = %q, want %q\n%s", name, got, want, rc.Content)
				}
				// Each variable is assigned once: no override hides in a later line.
				if n := strings.Count(string(rc.Content), "\n"+name+"="); want != "" && n != 1 {
					t.Errorf("%s assigned %d times", name, n)
				}
			}
			if strings.Contains(string(rc.Content), "ifconfig_lo1") {
				t.Error("lo1 aliases must not be in rc.conf: ezjail adds them")
			}
		})
	}
}

func TestRCConfLocalIsShell(t *testing.T) {
	for _, ex := range examples {
		c := golden.Example(t, ex)
		for _, h := range c.Hosts {
			files, _, err := Render(c, h, templates.Default())
			if err != nil {
				t.Fatal(err)
			}
			for _, f := range files {
				if f.Path == RCConfLocal || strings.HasPrefix(f.Path, EzjailCfgDir+"/") || f.Path == EzjailConf {
					if got := shellValue(t, f.Content, "ezjail_enable"); f.Path == RCConfLocal && got != "YES" {
						t.Errorf("%s: ezjail_enable = %q", f.Path, got)
					}
				}
			}
		}
	}
}

func TestRenderErrors(t *testing.T) {
	c := parse(t, base+`
hosts:
  - name: h1
    ssh: { address: 192.168.1.11 }
    interfaces: [{ device: em0, network: lan, address: 192.168.1.11 }]
    jails: [{ name: a1, tier: app, ip: 10.1.1.11 }]
`)
	h := c.Host("h1")
	h.RCConf = append(h.RCConf, inventory.KV{Name: "bad name", Value: "x"})
	if _, _, err := Render(c, h, templates.Default()); err == nil || !strings.Contains(err.Error(), "bad name") {
		t.Errorf("bad rc.conf name: %v", err)
	}
	h.RCConf = []inventory.KV{{Name: "x", Value: `a"b`}}
	if _, _, err := Render(c, h, templates.Default()); err == nil || !strings.Contains(err.Error(), "double quotes") {
		t.Errorf("quote in value: %v", err)
	}
	// A cluster built without loading cannot override arbo's own variables
	// either (the load refuses them with their position).
	for _, name := range []string{"pf_enable", "pf_rules", "sshd_enable", "ifconfig_lo1_alias0", "route_x"} {
		h.RCConf = []inventory.KV{{Name: name, Value: "NO"}}
		if _, _, err := Render(c, h, templates.Default()); err == nil || !strings.Contains(err.Error(), name+" is arbo's") {
			t.Errorf("rc_conf %s: %v", name, err)
		}
	}
	h.RCConf = nil
	h.Jails[0].StartAfter = []string{"nosuch"}
	if _, _, err := Render(c, h, templates.Default()); err == nil || !strings.Contains(err.Error(), "nosuch") {
		t.Errorf("unknown start_after: %v", err)
	}
}

func TestArgs(t *testing.T) {
	j := state.Jail{Name: "app1", IP: "lo1|10.1.1.11,em0|192.168.1.50", Flavour: "erlang"}
	plain := state.Jail{Name: "db1", IP: "lo1|10.1.2.11"}
	tests := []struct {
		name string
		got  []string
		want []string
	}{
		{"create with flavour", CreateArgs(j), []string{"ezjail-admin", "create", "-f", "erlang", "app1", "lo1|10.1.1.11,em0|192.168.1.50"}},
		{"create", CreateArgs(plain), []string{"ezjail-admin", "create", "db1", "lo1|10.1.2.11"}},
		{"start", StartArgs(plain), []string{"ezjail-admin", "onestart", "db1"}},
		{"stop", StopArgs(plain), []string{"ezjail-admin", "onestop", "db1"}},
		{"restart", RestartArgs(plain), []string{"ezjail-admin", "onerestart", "db1"}},
		{"archive", ArchiveArgs(plain), []string{"ezjail-admin", "archive", "db1"}},
		{"delete", DeleteArgs(plain, false), []string{"ezjail-admin", "delete", "db1"}},
		{"delete wipe", DeleteArgs(plain, true), []string{"ezjail-admin", "delete", "-w", "db1"}},
		{"zfs destroy", ZFSDestroyArgs("zroot/usr/jails", plain), []string{"zfs", "destroy", "-r", "zroot/usr/jails/db1"}},
		{"install", InstallBasejailArgs("14.2-RELEASE"), []string{"ezjail-admin", "install", "-r", "14.2-RELEASE"}},
		{"install host release", InstallBasejailArgs(""), []string{"ezjail-admin", "install"}},
		{"pkg", PkgInstallArgs("/usr/jails/app1", []string{"erlang-runtime27", "unbound"}),
			[]string{"pkg", "-r", "/usr/jails/app1", "install", "-y", "erlang-runtime27", "unbound"}},
		{"config test", ConfigTestArgs(plain), []string{"ezjail-admin", "config", "-r", "test", "db1"}},
	}
	for _, tt := range tests {
		if !reflect.DeepEqual(tt.got, tt.want) {
			t.Errorf("%s: %q, want %q", tt.name, tt.got, tt.want)
		}
	}
}

func TestJailSpecs(t *testing.T) {
	c := golden.Example(t, "single-host")
	_, jails, err := Render(c, c.Host("box"), templates.Default())
	if err != nil {
		t.Fatal(err)
	}
	byName := map[string]state.Jail{}
	for _, j := range jails {
		byName[j.Name] = j
	}
	app := byName["app1"]
	if app.Flavour != "erlang" || !reflect.DeepEqual(app.Packages, []string{"erlang-runtime27"}) ||
		app.Hostname != "app1.solo.internal" || app.Root != "/usr/jails/app1" || app.IP != "lo1|10.30.1.10" ||
		!reflect.DeepEqual(app.StartAfter, []string{"ns1", "db1"}) || app.Data {
		t.Errorf("app1 = %+v", app)
	}
	if !byName["db1"].Data || byName["ns1"].Data {
		t.Errorf("Data: db1 %v, ns1 %v", byName["db1"].Data, byName["ns1"].Data)
	}
	if byName["ns1"].Flavour != "" || len(byName["ns1"].Packages) != 0 {
		t.Errorf("ns1 has no flavour: %+v", byName["ns1"])
	}
}

func TestLiveRoutes(t *testing.T) {
	c := golden.Example(t, "arboreus")
	got := LiveRoutes(c, c.Host("server1"))
	want := []state.Route{{Dest: "10.20.1.12/32", Via: "192.168.2.12"}, {Dest: "10.20.2.12/32", Via: "192.168.2.12"}}
	if !reflect.DeepEqual(got, want) {
		t.Errorf("got %v, want %v", got, want)
	}
}
