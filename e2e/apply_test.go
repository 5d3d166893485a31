//go:build linux

package e2e

import (
	"encoding/json"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"syscall"
	"testing"
	"time"
)

// renderedFile is one entry of `arbo render`'s manifest (docs/json.md).
type renderedFile struct {
	Path      string `json:"path"`
	Local     string `json:"local"`
	Mode      string `json:"mode"`
	Owner     string `json:"owner"`
	Group     string `json:"group"`
	Sensitive bool   `json:"sensitive"`
	Jail      string `json:"jail"`
}

type renderedMachine struct {
	Name  string         `json:"name"`
	Kind  string         `json:"kind"`
	Files []renderedFile `json:"files"`
	Jails []struct {
		Name     string `json:"name"`
		SafeName string `json:"safename"`
	} `json:"jails"`
	Routes []struct {
		Dest string `json:"dest"`
		Via  string `json:"via"`
	} `json:"routes"`
}

// render runs `arbo render` and returns its manifest's machines and the
// directory that holds the files: what every machine must end up with.
func (e *env) render() (string, []renderedMachine) {
	e.t.Helper()
	out := filepath.Join(e.t.TempDir(), "rendered")
	e.want(e.runWith("", "render", e.topo, "-o", out), 0)
	b, err := os.ReadFile(filepath.Join(out, "manifest.json"))
	if err != nil {
		e.t.Fatal(err)
	}
	var mf struct {
		Machines []renderedMachine `json:"machines"`
	}
	if err := json.Unmarshal(b, &mf); err != nil {
		e.t.Fatal(err)
	}
	if len(mf.Machines) != len(e.machines()) {
		e.t.Fatalf("render manifest has %d machines, the topology %d", len(mf.Machines), len(e.machines()))
	}
	return out, mf.Machines
}

// snapshotAll snapshots every machine of the lab.
func (e *env) snapshotAll() map[string]map[string]string {
	out := map[string]map[string]string{}
	for _, m := range e.machines() {
		out[m] = snapshot(e.t, e.lab.Machine(m).Root)
	}
	return out
}

// unchangedSince checks that machines (default: all) hold exactly the files
// they held before.
func (e *env) unchangedSince(before map[string]map[string]string, machines ...string) {
	e.t.Helper()
	if len(machines) == 0 {
		machines = e.machines()
	}
	for _, m := range machines {
		sameFiles(e.t, m, before[m], snapshot(e.t, e.lab.Machine(m).Root))
	}
}

// lines reads a machine file's non-empty lines ("" when absent).
func (e *env) lines(machine, p string) []string {
	b, err := os.ReadFile(e.path(machine, p))
	if err != nil {
		return nil
	}
	var out []string
	for _, l := range strings.Split(string(b), "\n") {
		if l = strings.TrimSpace(l); l != "" {
			out = append(out, l)
		}
	}
	return out
}

// TestFreshApply takes the Arboreus example from fresh machines to a
// converged cluster, then checks that arbo keeps it there.
func TestFreshApply(t *testing.T) {
	t.Parallel()
	e := newEnv(t, exampleTopology(t))

	// Bootstrap: without --bootstrap apply stops on each host that lacks
	// ezjail's basejail, naming the fix, and touches nothing there (the
	// gateway, which needs none, goes on: one machine failing does not stop
	// the others).
	before := e.snapshotAll()
	r := e.run("apply", "--auto-approve", "--confirm-timeout", confirmTimeout, e.topo)
	e.want(r, 1, "--bootstrap", "ezjail-admin install", "server1: FAILED", "server2: FAILED")
	e.unchangedSince(before, "server1", "server2")

	e.applyOK("--bootstrap")
	for _, h := range []string{"server1", "server2"} {
		if !hasCall(e.calls(h), "ezjail-admin", "install") {
			t.Errorf("%s: --bootstrap did not run ezjail-admin install", h)
		}
		if !e.exists(h, "/usr/jails/basejail") {
			t.Errorf("%s: no basejail after --bootstrap", h)
		}
	}

	t.Run("files", func(t *testing.T) {
		e := e.with(t)
		dir, machines := e.render()
		for _, m := range machines {
			for _, f := range m.Files {
				p := e.path(m.Name, f.Path)
				fi, err := os.Lstat(p)
				if err != nil {
					t.Errorf("%s: %s: %v", m.Name, f.Path, err)
					continue
				}
				if got := fi.Mode().Perm(); "0"+strings.TrimPrefix(octal(uint32(got)), "0") != f.Mode {
					t.Errorf("%s: %s has mode %04o, want %s", m.Name, f.Path, got, f.Mode)
				}
				st := fi.Sys().(*syscall.Stat_t)
				if f.Owner == "root" && st.Uid != 0 || f.Group == "wheel" && st.Gid != 0 {
					t.Errorf("%s: %s is owned by %d:%d, want %s:%s", m.Name, f.Path, st.Uid, st.Gid, f.Owner, f.Group)
				}
				if f.Path == "/cf/conf/config.xml" {
					continue // stamped with the time of the apply, not of the render
				}
				want, err := os.ReadFile(filepath.Join(dir, filepath.FromSlash(f.Local)))
				if err != nil {
					t.Fatal(err)
				}
				if got, _ := os.ReadFile(p); string(got) != string(want) {
					t.Errorf("%s: %s differs from what arbo renders", m.Name, f.Path)
				}
			}
		}
	})

	t.Run("jails run", func(t *testing.T) {
		e := e.with(t)
		for h, jails := range map[string][]string{"server1": {"app1", "db1"}, "server2": {"app2", "db2"}} {
			for _, j := range jails {
				if !e.exists(h, "/usr/local/etc/ezjail/"+j) {
					t.Errorf("%s: jail %s has no ezjail config", h, j)
				}
				if !e.exists(h, "/var/run/lab/jails/"+j) {
					t.Errorf("%s: jail %s is not running", h, j)
				}
				for _, acct := range []string{"etc/passwd", "etc/group"} {
					if !e.exists(h, "/usr/jails/"+j+"/"+acct) {
						t.Errorf("%s: jail %s has no /%s", h, j, acct)
					}
				}
				if !hasCall(e.calls(h), "ezjail-admin", "create", j) && !hasCall(e.calls(h), "ezjail-admin", "create") {
					t.Errorf("%s: no ezjail-admin create for %s", h, j)
				}
			}
		}
	})

	t.Run("activation", func(t *testing.T) {
		e := e.with(t)
		_, machines := e.render()
		for _, m := range machines {
			if m.Kind != "host" {
				continue
			}
			ifs := strings.Join(e.lines(m.Name, "/var/run/lab/interfaces"), "\n")
			if !strings.Contains("\n"+ifs, "\nlo1") {
				t.Errorf("%s: lo1 is not live; interfaces:\n%s", m.Name, ifs)
			}
			routes := e.lines(m.Name, "/var/run/lab/routes")
			if len(m.Routes) == 0 {
				t.Errorf("%s: the example should give static routes", m.Name)
			}
			for _, rt := range m.Routes {
				dest := strings.TrimSuffix(rt.Dest, "/32")
				if !slices.ContainsFunc(routes, func(l string) bool {
					f := strings.Fields(l)
					return len(f) == 2 && strings.TrimSuffix(f[0], "/32") == dest && f[1] == rt.Via
				}) {
					t.Errorf("%s: route %s via %s is not live; routes: %q", m.Name, rt.Dest, rt.Via, routes)
				}
			}
			// pf: staged, loaded, confirmed, promoted.
			if e.exists(m.Name, "/etc/pf.conf.arbo-new") {
				t.Errorf("%s: /etc/pf.conf.arbo-new left behind after a confirmed load", m.Name)
			}
			pf := e.read(m.Name, "/etc/pf.conf")
			if loaded := e.read(m.Name, "/var/run/lab/pf.loaded"); loaded != pf {
				t.Errorf("%s: the loaded ruleset is not /etc/pf.conf", m.Name)
			}
			if !e.exists(m.Name, "/var/run/lab/pf.enabled") {
				t.Errorf("%s: pf is not enabled", m.Name)
			}
		}
		// The rollback guard saw its confirmation: once its time is up it
		// has stood down (its state file still says confirmed), logged no
		// rollback, and the promoted rules are still the loaded ones.
		wait, _ := time.ParseDuration(confirmTimeout)
		time.Sleep(wait + 1500*time.Millisecond)
		for _, m := range e.lab.Machines() {
			if m.Name == "gate" {
				continue
			}
			if st := strings.Fields(e.read(m.Name, "/var/db/arbo/pf-guard")); len(st) != 4 || st[1] != "confirmed" {
				t.Errorf("%s: the pf guard's state is %q, not confirmed", m.Name, st)
			}
			if msgs, _ := os.ReadFile(e.path(m.Name, "/var/log/messages")); strings.Contains(string(msgs), "no confirmation") { // absent: nothing logged
				t.Errorf("%s: a rollback timer fired after a confirmed load", m.Name)
			}
			if e.read(m.Name, "/var/run/lab/pf.loaded") != e.read(m.Name, "/etc/pf.conf") {
				t.Errorf("%s: after the timer, the loaded rules are not /etc/pf.conf", m.Name)
			}
		}
		// pfSense generated its ruleset from arbo's config.xml and pf runs
		// it: pfSense's /tmp/rules.debug is what pfctl loaded, and it holds
		// arbo's rules (labels "USER_RULE: arbo:...", filter.inc).
		rules := e.read("gate", "/tmp/rules.debug")
		if loaded := e.read("gate", "/var/run/lab/pf.loaded"); loaded != rules {
			t.Errorf("gate: pf does not run pfSense's /tmp/rules.debug")
		}
		for _, want := range []string{"USER_RULE: arbo:arboreus:ssh:lan:192.168.1.0/24", "USER_RULE: arbo:arboreus:fwd:wan:tcp:443", "rdr on igb0 inet proto tcp from any to 203.0.113.10 port 443 -> $arbo_arboreus_app port 8443",
			// The jails reach the gateway's DNS Resolver from their own
			// networks, which pfSense's LAN rules do not pass (issue 10 item 9).
			"pass  in  quick  on $LAN inet proto { tcp udp }  from 10.20.1.0/24 to (self) port 53 ",
			"pass  in  quick  on $LAN inet proto { tcp udp }  from 10.20.2.0/24 to (self) port 53 "} {
			if !strings.Contains(rules, want) {
				t.Errorf("gate: the loaded ruleset lacks %q:\n%s", want, rules)
			}
		}
	})

	t.Run("second run changes nothing", func(t *testing.T) {
		e := e.with(t)
		e.converged()
		before := e.snapshotAll()
		r := e.applyOK()
		e.want(r, 0, "No changes.")
		e.unchangedSince(before)
	})
}

func octal(n uint32) string {
	const digits = "01234567"
	if n == 0 {
		return "0"
	}
	var b []byte
	for n > 0 {
		b = append([]byte{digits[n%8]}, b...)
		n /= 8
	}
	return "0" + string(b)
}

// hasCall reports whether an emulated call's argv starts with prefix (the
// command by base name).
func hasCall(calls []emuCall, prefix ...string) bool {
	for _, c := range calls {
		if len(c.Argv) < len(prefix) {
			continue
		}
		if filepath.Base(c.Argv[0]) != prefix[0] {
			continue
		}
		if slices.Equal(c.Argv[1:len(prefix)], prefix[1:]) {
			return true
		}
	}
	return false
}
