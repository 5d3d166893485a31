package plan

import (
	"context"
	"strings"
	"testing"
)

func TestParsePFScript(t *testing.T) {
	out := "Status: Enabled for 0 days 00:01:00           Debug: Urgent\n\nState Table   Total  Rate\n--arbo-- 0\n" +
		"pass in quick inet proto tcp from 192.168.1.0/24 to any port = 22 flags any keep state\nblock drop log all\npass quick proto tcp from <arbo_app> to <arbo_app> port = 8443 flags S/SA keep state\n--arbo-- 0\n" +
		"nat on em0 inet from 10.20.1.11 to ! <arbo_cluster> tag t -> (em0) round-robin\n--arbo-- 0\n" +
		"all\nlo0 (skip)\nlo1\n--arbo-- 0\n" +
		"--arbo-table-- arbo_app\n   10.20.1.11\n   10.20.1.12\n--arbo-table-- arbo_cluster\n   10.20.0.0/16\n--arbo-- 0\n"
	p, err := parsePFScript("h1", []byte(out), nil)
	if err != nil {
		t.Fatal(err)
	}
	if !p.Enabled || p.Err != "" || len(p.Tables) != 2 || !strings.Contains(string(p.Tables["arbo_cluster"]), "10.20.0.0/16") || p.Digest == "" {
		t.Fatalf("%+v", p)
	}
	r, err := p.Ruleset("h1")
	if err != nil {
		t.Fatal(err)
	}
	if len(r.Rules) != 3 || len(r.Skip) != 1 || len(r.NatTags) != 1 || len(r.Unknowns()) != 0 {
		t.Errorf("rules %d skip %v tags %v unknowns %v", len(r.Rules), r.Skip, r.NatTags, r.Unknowns())
	}

	// pf.ko not loaded: pfctl cannot open /dev/pf; that is a state, not an error.
	p, err = parsePFScript("h1", []byte("--arbo-- 1\n--arbo-- 1\n--arbo-- 1\n--arbo-- 1\n--arbo-- 0\n"), []byte("pfctl: /dev/pf: No such file or directory\n"))
	if err != nil || p.Err == "" || p.Enabled {
		t.Errorf("%+v %v", p, err)
	}
	// Not pfctl's answer at all.
	if _, err := parsePFScript("h1", []byte("sh: pfctl: not found\n"), nil); err == nil || !strings.Contains(err.Error(), "machine h1") {
		t.Errorf("err %v", err)
	}
	// A listing arbo cannot read names the machine and pfctl's line.
	p, _ = parsePFScript("h1", []byte("Status: Enabled\n--arbo-- 0\npass all\npass frobnicate\n--arbo-- 0\n--arbo-- 0\n--arbo-- 0\n--arbo-- 0\n"), nil)
	if _, err := p.Ruleset("h1"); err == nil || !strings.Contains(err.Error(), "h1: pfctl -s rules:2:") {
		t.Errorf("err %v", err)
	}
}

// TestPlanSeesLiveDrift: after an apply, pf disabled by hand and then a
// ruleset loaded by hand are each a planned reload, which apply performs,
// after which the plan is empty again.
func TestPlanSeesLiveDrift(t *testing.T) {
	m := newMem()
	fakeHost(m)
	if res, err := planAndApply(t, m, applyEnv(nil)); err != nil || res.Failed() {
		t.Fatalf("apply: %v %+v", err, res)
	}
	man, err := parseManifest(m.files[ManifestPath].content)
	if err != nil || man.Activated.PFListing == "" {
		t.Fatalf("the manifest records no listing digest: %+v %v", man, err)
	}
	plan := func() []Action {
		snap, err := Read(context.Background(), m, desired())
		if err != nil {
			t.Fatal(err)
		}
		return Diff(desired(), snap, Options{}).Actions
	}
	if a := plan(); len(a) != 0 {
		t.Fatalf("plan after apply: %+v", a)
	}
	for _, tc := range []struct {
		name  string
		drift func()
		want  string
	}{
		{"pfctl -d", func() { m.pfOn = false }, "pf is disabled"},
		{"pass quick all", func() { m.pfRules = "pass quick all flags S/SA keep state\n" }, "the loaded rules differ from what arbo loaded"},
	} {
		tc.drift()
		a := plan()
		if len(a) != 1 || a[0].Op != OpReload || a[0].Kind != KindPF || !strings.Contains(a[0].Reason, tc.want) {
			t.Fatalf("%s: plan %+v, want one pf reload saying %q", tc.name, a, tc.want)
		}
		if res, err := planAndApply(t, m, applyEnv(nil)); err != nil || res.Failed() {
			t.Fatalf("%s: apply: %v %+v", tc.name, err, res)
		}
		if !m.pfOn || m.pfRules != "block all\n" {
			t.Errorf("%s: after apply pf on=%v rules %q", tc.name, m.pfOn, m.pfRules)
		}
		if a := plan(); len(a) != 0 {
			t.Fatalf("%s: plan after the repair: %+v", tc.name, a)
		}
	}
}

// TestPlanSeesAMissingAlias: a running jail whose lo1 address was removed
// by hand (ifconfig lo1 -alias) is restarted, which adds it back.
func TestPlanSeesAMissingAlias(t *testing.T) {
	if a := parseLo1([]byte("app1\n--arbo--\nlo0 lo1\n--arbo--\n--arbo--\nlo1: flags=8049<UP,LOOPBACK,RUNNING,MULTICAST> metric 0 mtu 16384\n\tinet 10.0.0.1 netmask 0xffffffff\n\tinet6 fe80::1%lo1 prefixlen 64 scopeid 0x3\n")); !a["10.0.0.1"] || !a["fe80::1"] || len(a) != 2 {
		t.Errorf("aliases %v", a)
	}
	if a := parseLo1([]byte("app1\n--arbo--\nlo0\n--arbo--\n")); a != nil {
		t.Errorf("no lo1 section read, yet aliases %v", a)
	}
	m := newMem()
	fakeHost(m)
	if res, err := planAndApply(t, m, applyEnv(nil)); err != nil || res.Failed() {
		t.Fatalf("apply: %v %+v", err, res)
	}
	snap, err := Read(context.Background(), m, desired())
	if err != nil {
		t.Fatal(err)
	}
	snap.Aliases = map[string]bool{"10.0.0.1": true}
	if a := Diff(desired(), snap, Options{}).Actions; len(a) != 0 {
		t.Fatalf("alias present, plan %+v", a)
	}
	snap.Aliases = map[string]bool{}
	a := Diff(desired(), snap, Options{}).Actions
	if len(a) != 1 || a[0].Op != OpRestart || a[0].Jail != "app1" || !strings.Contains(a[0].Reason, "lo1 address 10.0.0.1 is missing") {
		t.Fatalf("plan %+v", a)
	}
}

// TestPlanReloadsWithoutARecord: a manifest written before apply recorded
// the listing's digest gets one reload, after which plans can tell drift.
func TestPlanReloadsWithoutARecord(t *testing.T) {
	m := newMem()
	fakeHost(m)
	if res, err := planAndApply(t, m, applyEnv(nil)); err != nil || res.Failed() {
		t.Fatalf("apply: %v %+v", err, res)
	}
	man, _ := parseManifest(m.files[ManifestPath].content)
	man.Activated.PFListing = ""
	f := m.files[ManifestPath]
	f.content = man.encode()
	m.files[ManifestPath] = f
	snap, err := Read(context.Background(), m, desired())
	if err != nil {
		t.Fatal(err)
	}
	a := Diff(desired(), snap, Options{}).Actions
	if len(a) != 1 || a[0].Kind != KindPF || !strings.Contains(a[0].Reason, "no record") {
		t.Fatalf("plan %+v", a)
	}
}
