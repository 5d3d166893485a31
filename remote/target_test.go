package remote

import (
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"
	"time"

	"github.com/arbo-project/arbo/inventory"
)

// cluster builds a topology with a gateway and two hosts by hand.
func cluster(top, gate, host1, host2 inventory.SSH) *inventory.Cluster {
	return (&inventory.Cluster{
		Name:    "t",
		SSH:     top,
		Gateway: &inventory.Gateway{Name: "gate", Kind: "pfsense", SSH: gate},
		Hosts: []*inventory.Host{
			{Name: "host1", SSH: host1},
			{Name: "host2", SSH: host2},
		},
	}).Finish()
}

const testSSHConfig = `
Host gw
  HostName 192.0.2.1
  Port 2201
  User cfguser
  IdentityFile ~/.ssh/gw_key
  UserKnownHostsFile ~/.ssh/kh_gw
  HostKeyAlias gate.example

Host 192.0.2.11
  User admin
  Port 2222
  ProxyJump jumper@bastion:2022

Host 192.0.2.12
  ProxyJump none

Host bastion
  HostName 198.51.100.7
  IdentityFile %d/.ssh/bastion_%r

Host chain
  ProxyJump hop1,hop2

Host loop1
  ProxyJump loop2
Host loop2
  ProxyJump loop1

Host *
  ConnectTimeout 7
  ServerAliveInterval 5
`

func TestResolvePrecedence(t *testing.T) {
	home := t.TempDir()
	t.Setenv("HOME", home)
	os.MkdirAll(filepath.Join(home, ".ssh"), 0o700)
	cfgFile := filepath.Join(home, "cfg")
	os.WriteFile(cfgFile, []byte(testSSHConfig), 0o600)
	// Only id_ed25519 and id_rsa exist: defaults list the ones present.
	os.WriteFile(filepath.Join(home, ".ssh", "id_ed25519"), nil, 0o600)
	os.WriteFile(filepath.Join(home, ".ssh", "id_rsa"), nil, 0o600)
	sshDir := filepath.Join(home, ".ssh")
	kh := filepath.Join(sshDir, "known_hosts")
	me := localUser()

	type want struct {
		host, user, alias string
		port              int
		ids               []string
		kh                []string
		jump              string // "machine user@host:port"
		timeout           time.Duration
	}
	tests := []struct {
		name    string
		c       *inventory.Cluster
		machine string
		o       Overrides
		want    want
	}{
		{
			name:    "ssh_config applies under an address alias",
			c:       cluster(inventory.SSH{}, inventory.SSH{Address: "gw"}, inventory.SSH{}, inventory.SSH{}),
			machine: "gate",
			want: want{host: "192.0.2.1", port: 2201, user: "cfguser", alias: "gate.example",
				ids: []string{filepath.Join(sshDir, "gw_key")}, kh: []string{filepath.Join(sshDir, "kh_gw")}, timeout: 7 * time.Second},
		},
		{
			name:    "topology beats ssh_config",
			c:       cluster(inventory.SSH{User: "root", KnownHosts: "~/kh_top"}, inventory.SSH{Address: "gw", Port: 22, IdentityFile: "~/top_key", Timeout: 3 * time.Second}, inventory.SSH{}, inventory.SSH{}),
			machine: "gate",
			want: want{host: "192.0.2.1", port: 22, user: "root", alias: "gate.example",
				ids: []string{filepath.Join(home, "top_key")}, kh: []string{filepath.Join(home, "kh_top")}, timeout: 3 * time.Second},
		},
		{
			name:    "machine's own ssh beats the top-level ssh",
			c:       cluster(inventory.SSH{User: "root", Port: 2000}, inventory.SSH{Address: "gw", User: "admin"}, inventory.SSH{}, inventory.SSH{}),
			machine: "gate",
			want: want{host: "192.0.2.1", port: 2000, user: "admin", alias: "gate.example",
				ids: []string{filepath.Join(sshDir, "gw_key")}, kh: []string{filepath.Join(sshDir, "kh_gw")}, timeout: 7 * time.Second},
		},
		{
			name:    "command line beats everything",
			c:       cluster(inventory.SSH{User: "root", Port: 2000, IdentityFile: "/k", KnownHosts: "/kh"}, inventory.SSH{Address: "gw"}, inventory.SSH{}, inventory.SSH{}),
			machine: "gate",
			o:       Overrides{User: "cli", Port: 3000, IdentityFiles: []string{"~/cli_key"}, KnownHostsFile: "/cli_kh"},
			want: want{host: "192.0.2.1", port: 3000, user: "cli", alias: "gate.example",
				ids: []string{filepath.Join(home, "cli_key")}, kh: []string{"/cli_kh"}, timeout: 7 * time.Second},
		},
		{
			name:    "OpenSSH defaults",
			c:       cluster(inventory.SSH{}, inventory.SSH{Address: "203.0.113.5"}, inventory.SSH{}, inventory.SSH{}),
			machine: "gate",
			want: want{host: "203.0.113.5", port: 22, user: me,
				ids: []string{filepath.Join(sshDir, "id_ed25519"), filepath.Join(sshDir, "id_rsa")}, kh: []string{kh}, timeout: 7 * time.Second},
		},
		{
			name:    "ssh_config ProxyJump with user@host:port, resolved through ssh_config",
			c:       cluster(inventory.SSH{}, inventory.SSH{Address: "gw"}, inventory.SSH{Address: "192.0.2.11"}, inventory.SSH{}),
			machine: "host1",
			want: want{host: "192.0.2.11", port: 2222, user: "admin",
				ids: []string{filepath.Join(sshDir, "id_ed25519"), filepath.Join(sshDir, "id_rsa")}, kh: []string{kh},
				jump: "bastion jumper@198.51.100.7:2022", timeout: 7 * time.Second},
		},
		{
			name:    "topology jump beats ProxyJump",
			c:       cluster(inventory.SSH{Jump: "gate"}, inventory.SSH{Address: "gw"}, inventory.SSH{Address: "192.0.2.11"}, inventory.SSH{}),
			machine: "host1",
			want: want{host: "192.0.2.11", port: 2222, user: "admin",
				ids: []string{filepath.Join(sshDir, "id_ed25519"), filepath.Join(sshDir, "id_rsa")}, kh: []string{kh},
				jump: "gate cfguser@192.0.2.1:2201", timeout: 7 * time.Second},
		},
		{
			name:    "ProxyJump none",
			c:       cluster(inventory.SSH{}, inventory.SSH{}, inventory.SSH{}, inventory.SSH{Address: "192.0.2.12"}),
			machine: "host2",
			want: want{host: "192.0.2.12", port: 22, user: me,
				ids: []string{filepath.Join(sshDir, "id_ed25519"), filepath.Join(sshDir, "id_rsa")}, kh: []string{kh}, timeout: 7 * time.Second},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			o := tt.o
			o.SSHConfigFile = cfgFile
			got, err := Resolve(tt.c, tt.machine, o)
			if err != nil {
				t.Fatal(err)
			}
			g := want{host: got.Host, user: got.User, alias: got.HostKeyAlias, port: got.Port,
				ids: got.IdentityFiles, kh: got.KnownHostsFiles, timeout: got.Timeout}
			if got.Jump != nil {
				g.jump = got.Jump.Machine + " " + got.Jump.User + "@" + got.Jump.Addr()
			}
			if !reflect.DeepEqual(g, tt.want) {
				t.Errorf("got  %+v\nwant %+v", g, tt.want)
			}
		})
	}
}

func TestResolveJumpDetails(t *testing.T) {
	home := t.TempDir()
	t.Setenv("HOME", home)
	cfgFile := filepath.Join(home, "cfg")
	os.WriteFile(cfgFile, []byte(testSSHConfig), 0o600)
	o := Overrides{SSHConfigFile: cfgFile, User: "cli", TrustNewHosts: true}

	// The bastion's IdentityFile uses %d and %r; the command line's user
	// does not apply to a ProxyJump hop (as with ssh -l), its own user does.
	c := cluster(inventory.SSH{}, inventory.SSH{}, inventory.SSH{Address: "192.0.2.11"}, inventory.SSH{})
	got, err := Resolve(c, "host1", o)
	if err != nil {
		t.Fatal(err)
	}
	if got.User != "cli" || got.Jump.User != "jumper" || !got.Jump.TrustNewHosts {
		t.Errorf("users %q via %q (trust %v)", got.User, got.Jump.User, got.Jump.TrustNewHosts)
	}
	if want := []string{filepath.Join(home, ".ssh", "bastion_jumper")}; !reflect.DeepEqual(got.Jump.IdentityFiles, want) {
		t.Errorf("bastion identity %v, want %v", got.Jump.IdentityFiles, want)
	}

	// A chain: hop1 then hop2 then the target.
	c = cluster(inventory.SSH{}, inventory.SSH{Address: "chain"}, inventory.SSH{}, inventory.SSH{})
	got, err = Resolve(c, "gate", o)
	if err != nil {
		t.Fatal(err)
	}
	if got.Jump == nil || got.Jump.Host != "hop2" || got.Jump.Jump == nil || got.Jump.Jump.Host != "hop1" || got.Jump.Jump.Jump != nil {
		t.Errorf("chain resolved wrongly: %v", got)
	}

	// A topology jump resolves the jump machine recursively.
	c = cluster(inventory.SSH{}, inventory.SSH{Address: "203.0.113.1"}, inventory.SSH{Address: "10.0.0.1", Jump: "host2"}, inventory.SSH{Address: "10.0.0.2", Jump: "gate"})
	got, err = Resolve(c, "host1", o)
	if err != nil {
		t.Fatal(err)
	}
	if got.String() != "host1 (cli@10.0.0.1:22) via host2" || got.Jump.Jump == nil || got.Jump.Jump.Machine != "gate" {
		t.Errorf("got %v via %v", got, got.Jump)
	}
}

func TestResolveErrors(t *testing.T) {
	home := t.TempDir()
	t.Setenv("HOME", home)
	cfgFile := filepath.Join(home, "cfg")
	os.WriteFile(cfgFile, []byte(testSSHConfig), 0o600)
	o := Overrides{SSHConfigFile: cfgFile}
	tests := []struct {
		name    string
		c       *inventory.Cluster
		machine string
		o       Overrides
		want    string
	}{
		{"jump cycle in the topology", cluster(inventory.SSH{}, inventory.SSH{Jump: "host1"}, inventory.SSH{Jump: "host2"}, inventory.SSH{Jump: "host1"}), "host1", o, "loop: host1 -> host2 -> host1"},
		{"ProxyJump cycle", cluster(inventory.SSH{}, inventory.SSH{Address: "loop1"}, inventory.SSH{}, inventory.SSH{}), "gate", o, "loop"},
		{"unknown machine", cluster(inventory.SSH{}, inventory.SSH{}, inventory.SSH{}, inventory.SSH{}), "nope", o, `no machine named "nope"`},
		{"unknown jump machine", cluster(inventory.SSH{}, inventory.SSH{Jump: "nope"}, inventory.SSH{}, inventory.SSH{}), "gate", o, `no machine named "nope"`},
		{"missing --ssh-config", cluster(inventory.SSH{}, inventory.SSH{}, inventory.SSH{}, inventory.SSH{}), "gate", Overrides{SSHConfigFile: filepath.Join(home, "absent")}, "--ssh-config"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := Resolve(tt.c, tt.machine, tt.o)
			if err == nil || !strings.Contains(err.Error(), tt.want) {
				t.Errorf("got %v, want an error with %q", err, tt.want)
			}
		})
	}
	// No ~/.ssh/config at all is fine.
	if _, err := Resolve(cluster(inventory.SSH{}, inventory.SSH{Address: "x"}, inventory.SSH{}, inventory.SSH{}), "gate", Overrides{}); err != nil {
		t.Errorf("without any ssh_config: %v", err)
	}
}

func TestParseJumpSpec(t *testing.T) {
	tests := []struct {
		in         string
		user, host string
		port       int
		bad        bool
	}{
		{in: "bastion", host: "bastion"},
		{in: "me@bastion", user: "me", host: "bastion"},
		{in: "me@bastion:2022", user: "me", host: "bastion", port: 2022},
		{in: "ssh://me@bastion:2022", user: "me", host: "bastion", port: 2022},
		{in: "[2001:db8::1]:2022", host: "2001:db8::1", port: 2022},
		{in: "2001:db8::1", host: "2001:db8::1"},
		{in: "bastion:notaport", bad: true},
		{in: "", bad: true},
	}
	for _, tt := range tests {
		u, h, p, err := parseJumpSpec(tt.in)
		if tt.bad != (err != nil) || (!tt.bad && (u != tt.user || h != tt.host || p != tt.port)) {
			t.Errorf("parseJumpSpec(%q) = %q %q %d %v", tt.in, u, h, p, err)
		}
	}
}
