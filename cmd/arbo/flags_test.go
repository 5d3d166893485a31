package main

import (
	"slices"
	"testing"

	"github.com/spf13/pflag"
)

// TestSSHFlagsReachRemote: the SSH flags of plan and apply end up in the
// overrides remote resolves first (TOPOLOGY.md "SSH": the command line wins).
func TestSSHFlagsReachRemote(t *testing.T) {
	var o runOptions
	fs := pflag.NewFlagSet("plan", pflag.ContinueOnError)
	o.addFlags(fs)
	args := []string{"--ssh-config", "/x/ssh_config", "-i", "/k1", "-i", "/k2", "--known-hosts", "/kh",
		"--ssh-user", "deploy", "--ssh-port", "2222", "--trust-new-hosts", "--host", "h1", "--host", "gate",
		"--allow-destroy", "--allow-empty", "--bootstrap"}
	if err := fs.Parse(args); err != nil {
		t.Fatal(err)
	}
	d := o.deploy(&globalOptions{getenv: func(string) string { return "" }})
	s := d.SSH
	if s.SSHConfigFile != "/x/ssh_config" || !slices.Equal(s.IdentityFiles, []string{"/k1", "/k2"}) || s.KnownHostsFile != "/kh" ||
		s.User != "deploy" || s.Port != 2222 || !s.TrustNewHosts {
		t.Fatalf("SSH overrides: %+v", s)
	}
	if !slices.Equal(d.Plan.Hosts, []string{"h1", "gate"}) || !d.Plan.AllowDestroy || !d.Plan.AllowEmpty || !d.Plan.Bootstrap {
		t.Fatalf("plan decisions: %+v", d.Plan)
	}
}
