package e2e

import (
	"crypto/sha256"
	"encoding/hex"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/arbo-project/arbo/internal/lab"
)

// TestErlangTLSApply applies the Arboreus example with erlang.tls: true to
// the lab, as a user would: arbo erlang ca init, plan, apply. The TLS files
// reach every Erlang jail with mode 0600 and the bytes of erlang-tls/, and
// no key (nor its digest) appears in any output, saved plan, manifest,
// command line or sshd log. A certificate renewed by arbo erlang certs is a
// change the next plan shows (sensitive, no content), and apply installs it.
func TestErlangTLSApply(t *testing.T) {
	t.Parallel()
	e := newEnv(t, edit(t, exampleTopology(t), "  consensus: 2 ", "  tls: true\n  consensus: 2 "), lab.WithBasejail())
	var outputs []result

	r := e.run("erlang", "ca", "init", e.topo)
	e.want(r, 0, "Created the cluster CA", "Issued arboreus@10.20.1.11")
	outputs = append(outputs, r)
	tlsDir := filepath.Join(e.dir, "secrets", "erlang-tls")
	key := func(name string) string {
		b, err := os.ReadFile(filepath.Join(tlsDir, name))
		if err != nil {
			t.Fatal(err)
		}
		return string(b)
	}
	// The secret part of each key: its base64 body.
	secrets := map[string]string{}
	for _, k := range []string{"ca.key", "app1.key", "app2.key", "db1.key", "db2.key"} {
		s := key(k)
		body := strings.Join(strings.Split(s, "\n")[1:3], "")
		if len(body) < 40 {
			t.Fatalf("%s: unexpected PEM %d bytes", k, len(s))
		}
		secrets[k] = body
		sum := sha256.Sum256([]byte(s))
		secrets[k+" sha256"] = hex.EncodeToString(sum[:])
	}

	saved := filepath.Join(e.dir, "tls-plan.json")
	r = e.run("plan", "--out", saved, e.topo)
	e.want(r, 0, "create file /usr/jails/app1/usr/local/etc/arbo/dist.key (jail app1) (sensitive)",
		"create file /usr/jails/db2/usr/local/etc/arbo/ssl_dist.conf")
	outputs = append(outputs, r)
	r = e.run("plan", "--format", "json", e.topo)
	e.want(r, 0)
	outputs = append(outputs, r)
	outputs = append(outputs, e.applyOK())
	e.converged()

	for host, jails := range map[string][]string{"server1": {"app1", "db1"}, "server2": {"app2", "db2"}} {
		for _, j := range jails {
			dir := "/usr/jails/" + j + "/usr/local/etc/arbo/"
			for local, remote := range map[string]string{j + ".key": "dist.key", j + ".pem": "dist.pem", "ca.pem": "dist-ca.pem"} {
				if got := e.read(host, dir+remote); got != key(local) {
					t.Errorf("%s:%s is not erlang-tls/%s", host, dir+remote, local)
				}
				st, err := os.Stat(e.path(host, dir+remote))
				if err != nil || st.Mode().Perm() != 0o600 {
					t.Errorf("%s:%s: mode %v (%v), want 0600", host, dir+remote, st.Mode(), err)
				}
			}
			if vm := e.read(host, dir+"vm.args"); !strings.Contains(vm, "\n-proto_dist inet_tls\n-ssl_dist_optfile "+dir[len("/usr/jails/"+j):]+"ssl_dist.conf\n") {
				t.Errorf("%s:%svm.args:\n%s", host, dir, vm)
			}
		}
	}

	// A renewal (here: app1's certificate and key removed, so that certs
	// issues new ones) is a change of two sensitive files in app1.
	os.Remove(filepath.Join(tlsDir, "app1.pem"))
	os.Remove(filepath.Join(tlsDir, "app1.key"))
	r = e.run("erlang", "certs", e.topo)
	e.want(r, 0, "Issued arboreus@10.20.1.11", "Kept arboreus@10.20.1.12")
	outputs = append(outputs, r)
	r = e.run("plan", "--detailed-exitcode", e.topo)
	e.want(r, 2, "update file /usr/jails/app1/usr/local/etc/arbo/dist.key (jail app1) (sensitive)",
		"update file /usr/jails/app1/usr/local/etc/arbo/dist.pem (jail app1) (sensitive)")
	if strings.Contains(r.stdout, "/usr/jails/app2/") {
		t.Errorf("only app1's certificate changed:\n%s", r)
	}
	outputs = append(outputs, r, e.applyOK())
	e.converged()
	if e.read("server1", "/usr/jails/app1/usr/local/etc/arbo/dist.key") != key("app1.key") {
		t.Error("apply did not install app1's new key")
	}
	secrets["new app1.key"] = strings.Join(strings.Split(key("app1.key"), "\n")[1:3], "")

	for what, s := range secrets {
		for _, r := range outputs {
			if strings.Contains(r.stdout+r.stderr, s) {
				t.Errorf("%s is in the output of arbo %s", what, strings.Join(r.args, " "))
			}
		}
		if b, _ := os.ReadFile(saved); strings.Contains(string(b), s) {
			t.Errorf("%s is in the saved plan", what)
		}
		for _, m := range e.machines() {
			for _, c := range e.calls(m) {
				if strings.Contains(strings.Join(c.Argv, " "), s) {
					t.Errorf("%s: %s is on a command line", m, what)
				}
			}
			if strings.Contains(e.lab.Machine(m).SSHDLog(), s) {
				t.Errorf("%s: %s is in sshd's log", m, what)
			}
			// The machine's own manifest may hold a key's digest (plan
			// compares it to find drift): the machine holds the key itself.
			if !strings.HasSuffix(what, "sha256") && e.exists(m, "/var/db/arbo/manifest.json") && strings.Contains(e.read(m, "/var/db/arbo/manifest.json"), s) {
				t.Errorf("%s: %s is in arbo's manifest", m, what)
			}
		}
	}
	if secrets["ca.key"] == "" || strings.Contains(e.read("server1", "/usr/jails/app1/usr/local/etc/arbo/dist.key"), secrets["ca.key"]) {
		t.Error("the CA key reached a jail")
	}
}
