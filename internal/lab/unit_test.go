//go:build linux

package lab

import (
	"flag"
	"os"
	"path/filepath"
	"testing"
)

var update = flag.Bool("update", false, "rewrite golden files")

func golden(t *testing.T, name, got string) {
	t.Helper()
	path := filepath.Join("testdata", name)
	if *update {
		if err := os.WriteFile(path, []byte(got), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	want, err := os.ReadFile(path)
	if err != nil {
		t.Fatalf("%v (run with -update to create it)", err)
	}
	if got != string(want) {
		t.Errorf("%s differs (run with -update after checking):\n--- got\n%s\n--- want\n%s", name, got, want)
	}
}

func TestSSHDConfig(t *testing.T) {
	m := machineState{Name: "gate", Root: "/var/lib/arbo-lab/0a1b2c3d/gate", State: "/tmp/my lab/state/gate", SSHDPort: 40022}
	for _, tc := range []struct {
		name    string
		gateway bool
	}{{"sshd_config.host.golden", false}, {"sshd_config.gateway.golden", true}} {
		t.Run(tc.name, func(t *testing.T) {
			golden(t, tc.name, sshdConfig(m, "/var/lib/arbo-lab/0a1b2c3d/authorized_keys", tc.gateway))
		})
	}
}

func TestProxyBudget(t *testing.T) {
	for _, tc := range []struct {
		name        string
		budget      int64
		reads       []int64
		wantAllowed []int64
		wantCut     int // index of the read that cuts; -1 none
	}{
		{"disarmed", -1, []int64{100, 100}, []int64{100, 100}, -1},
		{"cut mid-read", 150, []int64{100, 100, 100}, []int64{100, 50}, 1},
		{"cut at once", 0, []int64{10}, []int64{0}, 0},
		{"exact", 100, []int64{100}, []int64{100}, 0},
	} {
		t.Run(tc.name, func(t *testing.T) {
			p := newProxy("m", t.TempDir(), "", nil)
			p.budget = tc.budget
			cut := -1
			for i, n := range tc.reads {
				allowed, c := p.take(n)
				if allowed != tc.wantAllowed[i] {
					t.Errorf("read %d: allowed %d, want %d", i, allowed, tc.wantAllowed[i])
				}
				if c {
					cut = i
					break
				}
			}
			if cut != tc.wantCut {
				t.Errorf("cut at read %d, want %d", cut, tc.wantCut)
			}
			if cut >= 0 && p.budget != -1 {
				t.Errorf("budget %d after the cut, want disarmed", p.budget)
			}
		})
	}
}

func TestProxyFirewallFile(t *testing.T) {
	root := t.TempDir()
	p := newProxy("m", root, "", nil)
	for _, tc := range []struct {
		content string // "" means no file
		blocked bool
	}{{"", false}, {"open\n", false}, {"blocked\n", true}, {"blocked", true}, {"garbage", false}} {
		fw := filepath.Join(root, "var/run/lab/firewall")
		os.Remove(fw)
		if tc.content != "" {
			if err := os.MkdirAll(filepath.Dir(fw), 0o755); err != nil {
				t.Fatal(err)
			}
			if err := os.WriteFile(fw, []byte(tc.content), 0o644); err != nil {
				t.Fatal(err)
			}
		}
		if got := p.blocked(); got != tc.blocked {
			t.Errorf("firewall %q: blocked = %v, want %v", tc.content, got, tc.blocked)
		}
	}
}

func TestUnescapeMount(t *testing.T) {
	for in, want := range map[string]string{`/a/b`: "/a/b", `/my\040lab/x`: "/my lab/x", `/t\011x`: "/t\tx", `/end\04`: `/end\04`} {
		if got := unescapeMount(in); got != want {
			t.Errorf("unescapeMount(%q) = %q, want %q", in, got, want)
		}
	}
}
