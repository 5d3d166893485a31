package live

import (
	"context"
	"errors"
	"io/fs"
	"strings"
	"testing"

	"github.com/arbo-project/arbo/check"
	"github.com/arbo-project/arbo/inventory"
	"github.com/arbo-project/arbo/plan"
	"github.com/arbo-project/arbo/remote"
)

// machine is a read-only fake: the answer to plan's pf script and files.
type machine struct {
	pf    string
	files map[string][]byte
}

func (m *machine) ReadFiles(_ context.Context, paths []string) (map[string][]byte, error) {
	out := map[string][]byte{}
	for _, p := range paths {
		if b, ok := m.files[p]; ok {
			out[p] = b
		}
	}
	return out, nil
}
func (m *machine) Run(_ context.Context, argv []string, _ remote.RunOpts) (remote.Result, error) {
	if len(argv) == 3 && argv[0] == "/bin/sh" && strings.Contains(argv[2], "pfctl -s info") {
		return remote.Result{Stdout: []byte(m.pf)}, nil
	}
	return remote.Result{}, errors.New("check --live ran a command that is not a read: " + strings.Join(argv, " "))
}
func (m *machine) Stat(string) (fs.FileInfo, error)  { return nil, fs.ErrNotExist }
func (m *machine) Lstat(string) (fs.FileInfo, error) { return nil, fs.ErrNotExist }
func (m *machine) WriteFileAtomic(string, []byte, fs.FileMode, int, int) error {
	return errors.New("write")
}
func (m *machine) WriteFileAtomicKeepPrev(string, []byte, fs.FileMode, int, int) error {
	return errors.New("write")
}
func (m *machine) MkdirAll(string, fs.FileMode) error   { return errors.New("write") }
func (m *machine) Remove(string) error                  { return errors.New("write") }
func (m *machine) CheckNoSymlinks(string, string) error { return nil }

func pfOut(status, rules string) string {
	return "Status: " + status + " for 0 days 00:00:01           Debug: Urgent\n--arbo-- 0\n" + rules + "--arbo-- 0\n--arbo-- 0\nlo0 (skip)\n--arbo-- 0\n--arbo-- 0\n"
}

func run(t *testing.T, machines map[string]*machine, hosts ...string) (*check.Report, error) {
	t.Helper()
	c, err := inventory.Load("../../examples/arboreus/topology.yaml")
	if err != nil {
		t.Fatal(err)
	}
	dial := func(_ context.Context, name string) (plan.Target, error) {
		if m, ok := machines[name]; ok {
			return m, nil
		}
		return nil, errors.New("dial tcp: connection refused")
	}
	return Run(context.Background(), c, Options{Dial: dial, Parallel: 2, Hosts: hosts})
}

func findings(r *check.Report, id, machine string) []string {
	var out []string
	for _, f := range r.Findings {
		if f.ID == id && f.Machine == machine {
			out = append(out, f.Message)
		}
	}
	return out
}

func TestLive(t *testing.T) {
	manifest := func(listing string) map[string][]byte {
		return map[string][]byte{plan.ManifestPath: []byte(`{"format_version": 1, "cluster": "arboreus", "machine": "server1", "files": [], "jails": [], "activated": {"pf_listing_sha256": "` + listing + `"}}`)}
	}
	t.Run("unreachable", func(t *testing.T) {
		r, err := run(t, nil, "server1")
		if err != nil {
			t.Fatal(err)
		}
		if f := findings(r, "ARBO015", "server1"); len(f) != 1 || !strings.Contains(f[0], "connection refused") || !r.HasErrors() {
			t.Errorf("%v", f)
		}
	})
	t.Run("pf disabled", func(t *testing.T) {
		r, err := run(t, map[string]*machine{"server1": {pf: pfOut("Disabled", "block drop all\n"), files: manifest("x")}}, "server1")
		if err != nil {
			t.Fatal(err)
		}
		if f := findings(r, "ARBO015", "server1"); len(f) != 1 || !strings.Contains(f[0], "pf does not filter") {
			t.Errorf("ARBO015 %v", f)
		}
		if f := findings(r, "ARBO004", "server1"); len(f) == 0 {
			t.Error("pf off, yet the tiers are judged apart")
		}
	})
	t.Run("not what arbo loaded", func(t *testing.T) {
		r, err := run(t, map[string]*machine{"server1": {pf: pfOut("Enabled", "block drop all\n"), files: manifest("0123")}}, "server1")
		if err != nil {
			t.Fatal(err)
		}
		if f := findings(r, "ARBO015", "server1"); len(f) != 1 || !strings.Contains(f[0], "not the ones arbo loaded") {
			t.Errorf("ARBO015 %v", f)
		}
		// block drop all keeps the tiers apart, and locks out SSH.
		if len(findings(r, "ARBO004", "server1")) != 0 || len(findings(r, "ARBO010", "server1")) == 0 {
			t.Errorf("findings %+v", r.Findings)
		}
	})
	t.Run("unparsable listing", func(t *testing.T) {
		_, err := run(t, map[string]*machine{"server1": {pf: pfOut("Enabled", "block drop all\npass in quick frobnicate\n"), files: manifest("x")}}, "server1")
		if err == nil || !strings.Contains(err.Error(), "machine server1") || !strings.Contains(err.Error(), "pfctl -s rules:2:") {
			t.Errorf("err %v", err)
		}
	})
	t.Run("unjudgeable listing", func(t *testing.T) {
		_, err := run(t, map[string]*machine{"server1": {pf: pfOut("Enabled", "anchor \"x/*\" all\nblock drop all\n"), files: manifest("x")}}, "server1")
		if err == nil || !strings.Contains(err.Error(), "cannot be judged") || !strings.Contains(err.Error(), ":1:") {
			t.Errorf("err %v", err)
		}
	})
	t.Run("gateway trackers", func(t *testing.T) {
		cfg := []byte(`<?xml version="1.0"?><pfsense><filter>
<rule><tracker>500000001</tracker><descr>arbo:arboreus:ssh:lan:x</descr></rule>
<rule><tracker>500000002</tracker><descr>arbo:arboreus:fwd:y</descr></rule>
<rule><tracker>500000003</tracker><descr>arbo:arboreus:fwd:z</descr><disabled/></rule>
<rule><tracker>77</tracker><descr>the operator's</descr></rule>
</filter></pfsense>`)
		gw := &machine{pf: pfOut("Enabled", "pass in quick on em1 inet proto tcp from 192.168.1.0/24 to any port = 22 flags any keep state ridentifier 500000001 label \"USER_RULE\"\n"),
			files: map[string][]byte{plan.ConfigXML: cfg}}
		r, err := run(t, map[string]*machine{"gate": gw}, "gate")
		if err != nil {
			t.Fatal(err)
		}
		if f := findings(r, "ARBO015", "gate"); len(f) != 1 || !strings.Contains(f[0], "500000002") || strings.Contains(f[0], "500000003") {
			t.Errorf("ARBO015 %v", f)
		}
	})
}
