package pfsense

import (
	"bytes"
	"crypto/sha256"
	"encoding/base64"
	"encoding/hex"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"sort"
	"strings"
	"testing"
	"time"

	"github.com/arbo-project/arbo/internal/golden"

	"github.com/arbo-project/arbo/inventory"
)

const topology = "../examples/arboreus/topology.yaml"

func loadCluster(t testing.TB) *inventory.Cluster {
	t.Helper()
	c, err := inventory.Load(topology)
	if err != nil {
		t.Fatalf("loading %s: %v", topology, err)
	}
	return c
}

// dnsData stands in for dns.Gateway: a host override per jail, and a
// round-robin name per tier as local-data.
func dnsData(c *inventory.Cluster) DNSData {
	var d DNSData
	for _, j := range c.Jails() {
		d.Overrides = append(d.Overrides, HostOverride{Host: j.Name, Domain: c.Domain, IP: c.TierAddr(j).String()})
	}
	for _, t := range c.Tiers {
		for _, j := range c.TierJails(t.Name) {
			d.LocalData = append(d.LocalData, fmt.Sprintf(`local-data: "%s.%s. 300 IN A %s"`, t.Name, c.Domain, c.TierAddr(j)))
		}
	}
	return d
}

func fixture(t testing.TB, name string) []byte {
	t.Helper()
	b, err := os.ReadFile(filepath.Join("testdata", name))
	if err != nil {
		t.Fatal(err)
	}
	return b
}

const natRepaired = "pfsensible-nat-port-forward-config.repaired.xml"

// base is a fixture as a good base config.xml: the repaired NAT fixture
// still has one line indented "\t\t \t \t " (line 626), which pfSense's
// parser cannot read (see checkMixedText); it is re-indented here with tabs,
// so the rich fixture keeps serving as a base pfSense reads.
func base(t testing.TB, name string) []byte {
	t.Helper()
	b := fixture(t, name)
	if name == natRepaired {
		b = bytes.Replace(b, []byte("\t\t \t \t <direction>"), []byte("\t\t\t\t <direction>"), 1)
	}
	if err := Validate(b); err != nil {
		t.Fatalf("%s as a base: %v", name, err)
	}
	return b
}

// withUserHost adds a host override a user made in the GUI.
func withUserHost(t testing.TB, b []byte) []byte {
	t.Helper()
	const end = "\t</unbound>"
	i := bytes.LastIndex(b, []byte(end))
	if i < 0 {
		t.Fatal("fixture has no </unbound>")
	}
	user := "\t<hosts>\n\t\t\t<host>printer</host>\n\t\t\t<domain>home.arpa</domain>\n\t\t\t<ip>192.168.1.50</ip>\n" +
		"\t\t\t<descr><![CDATA[the office printer &amp; scanner]]></descr>\n\t\t\t<aliases></aliases>\n\t\t</hosts>\n"
	return slices.Concat(b[:i], []byte(user), b[i:])
}

// objects lists the identity of every object of the kinds arbo manages,
// with how often it occurs.
func objects(t testing.TB, b []byte) map[string]int {
	t.Helper()
	d, err := parse(b)
	if err != nil {
		t.Fatal(err)
	}
	out := map[string]int{}
	add := func(parent *node, name string, id func(*node) string) {
		if parent == nil {
			return
		}
		for _, n := range parent.elems(name) {
			out[name+"|"+id(n)]++
		}
	}
	r := d.root
	full := func(n *node) string {
		var s strings.Builder
		canon(&s, n, false)
		return s.String()
	}
	add(r.child("aliases"), "alias", full)
	add(r.child("filter"), "rule", full)
	add(r.child("nat"), "rule", func(n *node) string { return "nat " + full(n) })
	add(r.child("staticroutes"), "route", full)
	add(r.child("gateways"), "gateway_item", full)
	if ub := r.child("unbound"); ub != nil {
		add(ub, "hosts", full)
		add(ub, "acls", full)
	}
	return out
}

func arboOwned(key string) bool { return strings.Contains(key, "arbo:arboreus:") }

func xmllint(t *testing.T, b []byte) {
	t.Helper()
	path, err := exec.LookPath("xmllint")
	if err != nil {
		t.Fatal("xmllint not installed (apt-get install libxml2-utils)")
	}
	f := filepath.Join(t.TempDir(), "config.xml")
	if err := os.WriteFile(f, b, 0o644); err != nil {
		t.Fatal(err)
	}
	if out, err := exec.Command(path, "--noout", f).CombinedOutput(); err != nil {
		t.Fatalf("xmllint --noout: %v\n%s", err, out)
	}
}

var mergeFixtures = []string{
	"pfsense-default-config.xml",
	"pfsensible-dns-resolver-config-full.xml",
	"pfsensible-nat-port-forward-config.repaired.xml",
}

func TestMergeFixtures(t *testing.T) {
	c := loadCluster(t)
	opts := Options{Revision: time.Unix(1767225600, 0), DNS: dnsData(c)}
	for _, name := range mergeFixtures {
		t.Run(name, func(t *testing.T) {
			base := withUserHost(t, base(t, name))
			if err := Validate(base); err != nil {
				t.Fatalf("base with the user's host override: %v", err)
			}
			out, warns, err := Merge(c, base, opts)
			if err != nil {
				t.Fatal(err)
			}
			golden.Check(t, name, out)
			golden.Check(t, strings.TrimSuffix(name, ".xml")+".warnings.txt", []byte(strings.Join(warns, "\n")+"\n"))
			xmllint(t, out)
			if err := Validate(out); err != nil {
				t.Fatalf("merged config is refused: %v", err)
			}
			if Equal(base, out) {
				t.Fatal("merge changed nothing")
			}

			before, after := objects(t, base), objects(t, out)
			for k, n := range before {
				if after[k] != n {
					t.Errorf("pre-existing object lost or duplicated (%d → %d): %s", n, after[k], k)
				}
			}
			if before["hosts|"+`hosts{host="printer";domain="home.arpa";ip="192.168.1.50";descr="the office printer & scanner";aliases="";}`] != 1 {
				t.Errorf("the user's host override is not in the base as expected")
			}
			kinds := map[string]int{}
			for k, n := range after {
				if !arboOwned(k) {
					if before[k] != n {
						t.Errorf("object appeared that is not arbo's: %s", k)
					}
					continue
				}
				if n != 1 {
					t.Errorf("arbo object occurs %d times: %s", n, k)
				}
				kinds[strings.SplitN(k, "|", 2)[0]]++
			}
			// wan is assigned in every fixture; opt1 only in two of them, and
			// enabled only in one: pfSense loads nothing on a disabled one
			// (filter.inc:1327, util.inc:1680), so arbo writes no forward there.
			uplinks := 1
			if bd, _ := parse(base); bytes.Contains(base, []byte("<opt1>")) && bd.root.child("interfaces").child("opt1").child("enable") != nil {
				uplinks = 2
			}
			// rules: the management rule, the DNS rule of each jail network,
			// and per uplink a forward (nat) and its filter rule.
			want := map[string]int{"alias": 2, "rule": 3 + 2*uplinks, "route": 4, "gateway_item": 2, "hosts": 4, "acls": 1}
			for k, n := range want {
				if kinds[k] != n {
					t.Errorf("%d arbo %s objects, want %d (all: %v)", kinds[k], k, n, kinds)
				}
			}

			again, _, err := Merge(c, out, Options{Revision: time.Unix(1800000000, 0), DNS: dnsData(c)})
			if err != nil {
				t.Fatal(err)
			}
			if !bytes.Equal(again, out) {
				t.Error("a second merge changed the config")
			}
		})
	}
}

func TestRefusesInvalidBase(t *testing.T) {
	_, _, err := Merge(loadCluster(t), fixture(t, "pfsensible-nat-port-forward-config.xml"), Options{})
	if err == nil {
		t.Fatal("the original pfsensible NAT fixture was accepted")
	}
	for _, want := range []string{"config.xml:398:", "<ipprotocol> occurs twice", "first at line 382"} {
		if !strings.Contains(err.Error(), want) {
			t.Errorf("error %q does not say %q", err, want)
		}
	}
}

func TestValidate(t *testing.T) {
	tests := []struct {
		name string
		in   string
		want string // "" = valid; else a substring of the error
	}{
		{"default", string(fixture(t, "pfsense-default-config.xml")), ""},
		{"dns resolver", string(fixture(t, "pfsensible-dns-resolver-config-full.xml")), ""},
		// xmlparse.inc:135,146-147: "\t\t \t \t " trims to " \t \t ", not all
		// spaces, so it replaces <rule>'s children and <direction> fails.
		{"repaired nat", string(fixture(t, natRepaired)), "config.xml:626: whitespace that mixes spaces and tabs between the children of <pfsense/filter/rule>"},
		{"repaired nat re-indented", string(base(t, natRepaired)), ""},
		{"tab space tab space indent", "<pfsense>\n\t \t <system/>\n</pfsense>", "config.xml:2: whitespace that mixes"},
		{"space tab space after last child", "<pfsense>\n<system/>\n \t \n</pfsense>", "config.xml:3: whitespace that mixes"},
		{"tabs then spaces", "<pfsense>\n\t\t  <system/>\n  \t\t<version/>\n</pfsense>", ""},
		{"each line judged alone", "<pfsense>\t \n \t<system/>\r\n</pfsense>", ""},
		{"tab space tab trims to a space", "<pfsense>\n\t \t<system/>\n</pfsense>", ""},
		{"leaf value keeps mixed blanks", "<pfsense><descr> \t </descr></pfsense>", ""},
		{"stray text among children", "<pfsense>\n<system/>oops\n</pfsense>", `config.xml:2: text "oops" between the children of <pfsense>`},
		{"original nat", string(fixture(t, "pfsensible-nat-port-forward-config.xml")), "config.xml:398: <ipprotocol> occurs twice in <pfsense/filter/rule>"},
		{"list tags repeat", "<pfsense><filter><rule/><rule/></filter><aliases><alias/><alias/></aliases></pfsense>", ""},
		{"non-list repeats", "<pfsense>\n<system/>\n<system/>\n</pfsense>", "config.xml:3: <system> occurs twice in <pfsense> (first at line 2)"},
		{"names fold case", "<pfsense><Version>1</Version><version>2</version></pfsense>", "<version> occurs twice"},
		{"deep repeat", "<pfsense><nat><rule><target/><target/></rule></nat></pfsense>", "<target> occurs twice in <pfsense/nat/rule>"},
		{"not xml", "this is not xml", "text outside the root element"},
		{"unclosed", "<pfsense><system>", "not well-formed"},
		{"mismatched", "<pfsense><a></b></pfsense>", "not well-formed"},
		{"bad entity", "<pfsense><a>&nbsp;</a></pfsense>", "not well-formed"},
		{"wrong root", "<opnsense/>", "root element is <opnsense>"},
		{"two roots", "<pfsense/><pfsense/>", "second root"},
		{"empty", "", "no root element"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			err := Validate([]byte(tc.in))
			switch {
			case tc.want == "" && err != nil:
				t.Fatalf("refused: %v", err)
			case tc.want != "" && err == nil:
				t.Fatalf("accepted, want an error with %q", tc.want)
			case tc.want != "" && !strings.Contains(err.Error(), tc.want):
				t.Fatalf("error %q does not contain %q", err, tc.want)
			}
		})
	}
}

func TestRoundTrip(t *testing.T) {
	names := append(slices.Clone(mergeFixtures), "pfsensible-nat-port-forward-config.xml")
	for _, name := range names {
		b := fixture(t, name)
		d, err := parse(b)
		if err != nil {
			t.Fatalf("%s: %v", name, err)
		}
		if !bytes.Equal(d.bytes(), b) {
			t.Errorf("%s: parse and write changed the bytes", name)
		}
		if !Equal(b, b) {
			t.Errorf("%s: not Equal to itself", name)
		}
	}
}

func TestEqual(t *testing.T) {
	a := "<pfsense>\n\t<version>23.2</version>\n\t<revision>\n\t\t<time>1</time>\n\t</revision>\n\t<a><![CDATA[x &amp; y]]></a>\n</pfsense>\n"
	tests := []struct {
		name string
		b    string
		want bool
	}{
		{"same", a, true},
		{"other revision", strings.Replace(a, "<time>1</time>", "<time>2</time>", 1), true},
		{"no revision", strings.Replace(a, "\t<revision>\n\t\t<time>1</time>\n\t</revision>\n", "", 1), true},
		{"formatting and escaping", "<pfsense><version>23.2</version><a>x &amp;amp; y</a></pfsense>", true},
		{"attributes ignored", `<pfsense><version a="1">23.2</version><a>x &amp; y</a></pfsense>`, true},
		{"other value", strings.Replace(a, "23.2", "23.3", 1), false},
		{"other order", "<pfsense><a><![CDATA[x &amp; y]]></a><version>23.2</version></pfsense>", false},
		{"not xml", "<pfsense>", false},
	}
	for _, tc := range tests {
		if got := Equal([]byte(a), []byte(tc.b)); got != tc.want {
			t.Errorf("%s: Equal = %v, want %v", tc.name, got, tc.want)
		}
	}
}

func TestFactory(t *testing.T) {
	f := Factory()
	sum := sha256.Sum256(f)
	if got := hex.EncodeToString(sum[:]); got != "02f9c1edccfbedc2e27345491ce99ada2ee4ee949f0f5ced06bc19078f6a0b18" {
		t.Fatalf("factory config sha256 %s, not the published file", got)
	}
	if err := Validate(f); err != nil {
		t.Fatal(err)
	}
	f[0] = 'X'
	if Factory()[0] != '<' {
		t.Fatal("Factory hands out its shared bytes")
	}
}

// withoutTier is c without tier and its jails.
func withoutTier(t *testing.T, tier string) *inventory.Cluster {
	c := loadCluster(t)
	c.Tiers = slices.DeleteFunc(c.Tiers, func(x *inventory.Tier) bool { return x.Name == tier })
	for _, h := range c.Hosts {
		h.Jails = slices.DeleteFunc(h.Jails, func(j *inventory.Jail) bool { return j.Tier == tier })
	}
	return c.Finish()
}

func TestRemoveTier(t *testing.T) {
	full := loadCluster(t)
	small := withoutTier(t, "data")
	for _, name := range mergeFixtures {
		t.Run(name, func(t *testing.T) {
			base := withUserHost(t, base(t, name))
			out1, _, err := Merge(full, base, Options{DNS: dnsData(full)})
			if err != nil {
				t.Fatal(err)
			}
			out2, _, err := Merge(small, out1, Options{DNS: dnsData(small)})
			if err != nil {
				t.Fatal(err)
			}
			fresh, _, err := Merge(small, base, Options{DNS: dnsData(small)})
			if err != nil {
				t.Fatal(err)
			}
			if !Equal(out2, fresh) {
				t.Error("removing the tier from a merged config differs from merging the smaller topology")
			}
			o1, o2 := objects(t, out1), objects(t, out2)
			var gone, added []string
			for k := range o1 {
				if o2[k] == 0 {
					gone = append(gone, k)
				}
			}
			for k := range o2 {
				if o1[k] == 0 {
					added = append(added, k)
				}
			}
			sort.Strings(gone)
			want := []string{"10.20.2.11/32", "10.20.2.12/32", "arbo_arboreus_data", "db1", "db2", "arbo:arboreus:dns:lan:10.20.2.0/24", "acl"}
			// The access list stays but loses the data network's row: it
			// shows up once as gone and once as added.
			if len(gone) != len(want) || len(added) != 1 || !strings.HasPrefix(added[0], "acls|") {
				t.Fatalf("removed %d objects, added %d:\n%s\n--\n%s", len(gone), len(added), strings.Join(gone, "\n"), strings.Join(added, "\n"))
			}
			for _, k := range gone {
				if !arboOwned(k) {
					t.Errorf("removed an object that is not arbo's: %s", k)
				}
			}
			joined := strings.Join(gone, "\n")
			for _, w := range want[:6] {
				if !strings.Contains(joined, w) {
					t.Errorf("%s was not removed", w)
				}
			}
			for k := range o2 {
				if arboOwned(k) && (strings.Contains(k, "10.20.2.") || strings.Contains(k, "_data")) {
					t.Errorf("data tier object survived: %s", k)
				}
			}
			d, _ := parse(out2)
			if got := customOptions(t, d); strings.Contains(got, "data.arboreus.internal") || !strings.Contains(got, "app.arboreus.internal") {
				t.Errorf("custom options after removing the data tier:\n%s", got)
			}
		})
	}
}

func customOptions(t *testing.T, d *document) string {
	t.Helper()
	b, err := base64.StdEncoding.DecodeString(d.root.child("unbound").childValue("custom_options"))
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}

func TestCustomOptionsKeepUserLines(t *testing.T) {
	c := loadCluster(t)
	user := "server:\nprivate-domain: \"home.arpa\"\n"
	base := bytes.Replace(Factory(), []byte("<custom_options></custom_options>"),
		[]byte("<custom_options>"+base64.StdEncoding.EncodeToString([]byte(user))+"</custom_options>"), 1)
	out, _, err := Merge(c, base, Options{DNS: dnsData(c)})
	if err != nil {
		t.Fatal(err)
	}
	d, _ := parse(out)
	got := customOptions(t, d)
	want := user + "# arbo:arboreus begin\nserver:\n" + strings.Join(dnsData(c).LocalData, "\n") + "\n# arbo:arboreus end\n"
	if got != want {
		t.Fatalf("custom options:\n%s\nwant:\n%s", got, want)
	}
	c.Gateway.DNS = false
	off, _, err := Merge(c, out, Options{})
	if err != nil {
		t.Fatal(err)
	}
	d, _ = parse(off)
	if got := customOptions(t, d); got != user {
		t.Fatalf("after gateway.dns is turned off, custom options are %q, want the user's %q", got, user)
	}
	if n := objects(t, off); func() int {
		k := 0
		for key := range n {
			if strings.HasPrefix(key, "hosts|") || strings.HasPrefix(key, "acls|") {
				if arboOwned(key) {
					k++
				}
			}
		}
		return k
	}() != 0 {
		t.Fatal("arbo's host overrides or access list survived gateway.dns: false")
	}

	bad := bytes.Replace(Factory(), []byte("<custom_options></custom_options>"), []byte("<custom_options>not base64!</custom_options>"), 1)
	if _, _, err := Merge(loadCluster(t), bad, Options{DNS: dnsData(c)}); err == nil || !strings.Contains(err.Error(), "base64") {
		t.Fatalf("custom options that are not base64: err = %v", err)
	}
	open := bytes.Replace(Factory(), []byte("<custom_options></custom_options>"),
		[]byte("<custom_options>"+base64.StdEncoding.EncodeToString([]byte("# arbo:arboreus begin\nserver:\n"))+"</custom_options>"), 1)
	if _, _, err := Merge(loadCluster(t), open, Options{DNS: dnsData(c)}); err == nil || !strings.Contains(err.Error(), "without") {
		t.Fatalf("an unterminated arbo block: err = %v", err)
	}
}

func revisionOf(t *testing.T, b []byte) string {
	t.Helper()
	d, err := parse(b)
	if err != nil {
		t.Fatal(err)
	}
	r := d.root.child("revision")
	if r == nil {
		return ""
	}
	return r.childValue("time") + "|" + r.childValue("description") + "|" + r.childValue("username")
}

func TestRevision(t *testing.T) {
	c := loadCluster(t)
	base := fixture(t, "pfsensible-dns-resolver-config-full.xml")
	orig := revisionOf(t, base)
	tests := []struct {
		name string
		base []byte
		rev  time.Time
		want string
	}{
		{"stamped", base, time.Unix(1767225600, 0), "1767225600|arbo: cluster arboreus|arbo"},
		{"zero leaves it", base, time.Time{}, orig},
		{"added when missing", Factory(), time.Unix(1767225600, 0), "1767225600|arbo: cluster arboreus|arbo"},
		{"zero adds none", Factory(), time.Time{}, ""},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			out, _, err := Merge(c, tc.base, Options{Revision: tc.rev, DNS: dnsData(c)})
			if err != nil {
				t.Fatal(err)
			}
			if got := revisionOf(t, out); got != tc.want {
				t.Fatalf("revision %q, want %q", got, tc.want)
			}
			again, _, err := Merge(c, out, Options{Revision: time.Unix(1900000000, 0), DNS: dnsData(c)})
			if err != nil {
				t.Fatal(err)
			}
			if !bytes.Equal(again, out) {
				t.Fatalf("nothing changed, yet the config did (revision %q)", revisionOf(t, again))
			}
		})
	}
}

func trackers(t *testing.T, b []byte) map[string]string {
	t.Helper()
	d, _ := parse(b)
	out := map[string]string{}
	for _, r := range d.root.child("filter").elems("rule") {
		if strings.HasPrefix(r.childValue("descr"), "arbo:") {
			out[r.childValue("descr")] = r.childValue("tracker")
		}
	}
	return out
}

func TestTrackers(t *testing.T) {
	c := loadCluster(t)
	var runs []map[string]string
	for _, name := range mergeFixtures {
		out, _, err := Merge(c, base(t, name), Options{DNS: dnsData(c)})
		if err != nil {
			t.Fatal(err)
		}
		tr := trackers(t, out)
		seen := map[string]bool{}
		for d, v := range tr {
			if seen[v] {
				t.Errorf("%s: tracker %s used twice", name, v)
			}
			seen[v] = true
			if len(v) != 9 || v < "500000000" {
				t.Errorf("%s: tracker %s of %s outside arbo's range", name, v, d)
			}
		}
		runs = append(runs, tr)
	}
	for d, v := range runs[0] {
		for i, r := range runs[1:] {
			if w, ok := r[d]; ok && w != v {
				t.Errorf("tracker of %s is %s on one config and %s on %s", d, v, w, mergeFixtures[i+1])
			}
		}
	}
	seen := map[uint32]string{}
	for i := 0; i < 300; i++ {
		for _, kind := range []string{"ssh", "fwd"} {
			key := fmt.Sprintf("wan:tcp:%d", i)
			v := Tracker("arboreus", kind, key, 0)
			if v != Tracker("arboreus", kind, key, 0) {
				t.Fatal("Tracker is not stable")
			}
			if prev, ok := seen[v]; ok {
				t.Fatalf("tracker %d shared by %s and %s/%s", v, prev, kind, key)
			}
			seen[v] = kind + "/" + key
		}
	}
	// A tracker a user's rule already holds is not reused.
	first := Tracker("arboreus", "ssh", "lan:192.168.1.0/24", 0)
	taken := strings.Replace(string(Factory()), "<tracker>0100000101</tracker>", fmt.Sprintf("<tracker>%d</tracker>", first), 1)
	out, _, err := Merge(c, []byte(taken), Options{DNS: dnsData(c)})
	if err != nil {
		t.Fatal(err)
	}
	if got := trackers(t, out)["arbo:arboreus:ssh:lan:192.168.1.0/24"]; got == fmt.Sprint(first) || got == "" {
		t.Fatalf("arbo's rule took tracker %s, which a user rule holds", got)
	}
	once, again := AssociatedID("arboreus", "wan:tcp:443"), AssociatedID("arboreus", "wan:tcp:443")
	if once != again || once == AssociatedID("arboreus", "opt1:tcp:443") {
		t.Fatal("associated-rule-id is not stable and distinct")
	}
}

func TestInterfaceMismatch(t *testing.T) {
	c := loadCluster(t)
	out, warns, err := Merge(c, Factory(), Options{DNS: dnsData(c)})
	if err != nil {
		t.Fatal(err)
	}
	all := strings.Join(warns, "\n")
	for _, want := range []string{
		"gateway interface opt1 (igb1) is not assigned in config.xml; arbo renders no rules, forwards or routes on it",
		`gateway interface wan: config.xml has device "em0", the topology says "igb0"`,
		`gateway interface wan: config.xml has address "dhcp", the topology says "203.0.113.10"`,
	} {
		if !strings.Contains(all, want) {
			t.Errorf("no warning %q in:\n%s", want, all)
		}
	}
	if bytes.Contains(out, []byte("<interface>opt1</interface>")) || bytes.Contains(out, []byte("opt1ip")) {
		t.Error("a rule or forward was rendered for opt1, which config.xml lacks")
	}
	if !bytes.Contains(out, []byte("arbo:arboreus:fwd:wan:tcp:443")) {
		t.Error("the forward on wan, which config.xml has, is missing")
	}
}

func TestSeparatorsFollowTheirRules(t *testing.T) {
	c := loadCluster(t)
	out, _, err := Merge(c, base(t, natRepaired), Options{DNS: dnsData(c)})
	if err != nil {
		t.Fatal(err)
	}
	d, _ := parse(out)
	sep := d.root.child("filter").child("separator")
	// Three arbo rules (the management rule, then the DNS rules of the two
	// jail networks) now head lan; wan gets the forward rule, opt1 the
	// other, opt2 none.
	for _, tc := range []struct{ iface, sep, row string }{
		{"lan", "sep0", "fr4"},
		{"opt2", "sep0", "fr0"},
		{"opt2", "sep1", "fr3"},
	} {
		if got := sep.child(tc.iface).child(tc.sep).childValue("row"); got != tc.row {
			t.Errorf("separator %s/%s row %s, want %s", tc.iface, tc.sep, got, tc.row)
		}
	}
	// The management rule is the first rule on lan.
	for _, r := range d.root.child("filter").elems("rule") {
		if r.childValue("interface") == "lan" {
			if !strings.HasPrefix(r.childValue("descr"), "arbo:arboreus:ssh:") {
				t.Errorf("first lan rule is %q, not arbo's SSH rule", r.childValue("descr"))
			}
			break
		}
	}
}

func TestConflicts(t *testing.T) {
	c := loadCluster(t)
	userAlias := bytes.Replace(Factory(), []byte("<aliases>\n"),
		[]byte("<aliases>\n\t\t<alias>\n\t\t\t<name>arbo_arboreus_app</name>\n\t\t\t<type>host</type>\n\t\t\t<address>10.9.9.9</address>\n\t\t\t<descr><![CDATA[mine]]></descr>\n\t\t</alias>\n"), 1)
	if _, _, err := Merge(c, userAlias, Options{}); err == nil || !strings.Contains(err.Error(), "alias arbo_arboreus_app already exists") {
		t.Errorf("a user's alias with arbo's name: err = %v", err)
	}
	userHost := withUserHost(t, Factory())
	userHost = bytes.Replace(userHost, []byte("<host>printer</host>\n\t\t\t<domain>home.arpa</domain>"), []byte("<host>app1</host>\n\t\t\t<domain>arboreus.internal</domain>"), 1)
	out, warns, err := Merge(c, userHost, Options{DNS: dnsData(c)})
	if err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(strings.Join(warns, "\n"), "app1.arboreus.internal already exists") {
		t.Errorf("no warning about the user's override of app1: %v", warns)
	}
	if n := bytes.Count(out, []byte("<host>app1</host>")); n != 1 {
		t.Errorf("app1 has %d host overrides, want the user's one", n)
	}
	noGW := loadCluster(t)
	noGW.Gateway = nil
	if _, _, err := Merge(noGW, Factory(), Options{}); err == nil {
		t.Error("a cluster without a gateway was merged")
	}
}

func TestObjectName(t *testing.T) {
	long := ObjectName("a-very-long-name", "another-long-tier-name")
	tests := []struct{ cluster, name, want string }{
		{"arboreus", "app", "arbo_arboreus_app"},
		{"my-cluster", "web-front", "arbo_my_cluster_web_front"},
		{"a-very-long-name", "another-long-tier-name", long},
	}
	for _, tc := range tests {
		if got := ObjectName(tc.cluster, tc.name); got != tc.want {
			t.Errorf("ObjectName(%q, %q) = %q, want %q", tc.cluster, tc.name, got, tc.want)
		}
	}
	if len(long) != 31 || !strings.HasPrefix(long, "arbo_a_very_long_name_an") {
		t.Errorf("shortened name %q", long)
	}
	if ObjectName("a-very-long-name", "another-long-tier-name2") == long {
		t.Error("two long names shorten to the same name")
	}
}

func TestForwardToEmptyTierWarnsOnce(t *testing.T) {
	c := withoutTier(t, "app")
	out, warns, err := Merge(c, Factory(), Options{DNS: dnsData(c)})
	if err != nil {
		t.Fatal(err)
	}
	n := 0
	for _, w := range warns {
		if strings.Contains(w, "to tier app: the tier has no jails") {
			n++
		}
	}
	if n != 1 {
		t.Errorf("%d warnings about the empty tier, want 1: %v", n, warns)
	}
	if bytes.Contains(out, []byte("arbo:arboreus:fwd:")) {
		t.Error("a forward to a tier without jails was written")
	}
}

// TestHostOverridePrefixOnce: dns.Gateway writes descriptions that already
// start with "arbo:<cluster>:"; Merge puts the prefix on once (issue 10
// item 11), and a description without it still gets it.
func TestHostOverridePrefixOnce(t *testing.T) {
	c := loadCluster(t)
	d := DNSData{Overrides: []HostOverride{
		{Host: "a", Domain: c.Domain, IP: "10.20.1.10", Descr: "arbo:" + c.Name + ":jail:a"},
		{Host: "b", Domain: c.Domain, IP: "10.20.1.11", Descr: "jail:b"},
	}}
	out, _, err := Merge(c, Factory(), Options{DNS: d})
	if err != nil {
		t.Fatal(err)
	}
	for _, want := range []string{"<descr><![CDATA[arbo:arboreus:jail:a]]></descr>", "<descr><![CDATA[arbo:arboreus:jail:b]]></descr>"} {
		if !bytes.Contains(out, []byte(want)) {
			t.Errorf("config.xml lacks %s", want)
		}
	}
	if bytes.Contains(out, []byte("arbo:arboreus:arbo:")) {
		t.Error("a host override description carries the prefix twice")
	}
}

// automaticDefault is the gateway pfSense makes the default route when
// defaultgw4 is empty ("automatic"), for gateways read from config.xml with no
// monitoring status: fixup_default_gateway (pfsense-2.7.2
// src/etc/inc/gwlb.inc:1145-1160) skips force_down (1150) and takes the first
// that is unmonitored or has monitoring actions off (1154-1157); otherwise the
// first one not on lo0 is the fallback (1158-1165).
func automaticDefault(gws *node, proto string) string {
	fallback := ""
	for _, gw := range gws.elems("gateway_item") {
		if gw.childValue("ipprotocol") != proto || gw.child("force_down") != nil {
			continue
		}
		if gw.child("monitor_disable") != nil || gw.child("action_disable") != nil {
			return gw.childValue("name")
		}
		if fallback == "" && gw.childValue("interface") != "lo0" {
			fallback = gw.childValue("name")
		}
	}
	return fallback
}

func TestArboGatewaysNeverDefault(t *testing.T) {
	c := loadCluster(t)
	for _, name := range mergeFixtures {
		t.Run(name, func(t *testing.T) {
			out, _, err := Merge(c, base(t, name), Options{DNS: dnsData(c)})
			if err != nil {
				t.Fatal(err)
			}
			d, _ := parse(out)
			gws := d.root.child("gateways")
			n := 0
			for _, gw := range gws.elems("gateway_item") {
				if strings.HasPrefix(gw.childValue("descr"), "arbo:") {
					n++
				}
			}
			if n == 0 {
				t.Fatal("no arbo gateway in the merged config; the test proves nothing")
			}
			for _, proto := range []string{"inet", "inet6"} {
				got := automaticDefault(gws, proto)
				for _, gw := range gws.elems("gateway_item") {
					if got != "" && got == gw.childValue("name") && strings.HasPrefix(gw.childValue("descr"), "arbo:") {
						t.Errorf("%s: arbo gateway %s would be the automatic default", proto, got)
					}
				}
			}
		})
	}
}

// pfSense refuses a port forward whose destination port range overlaps
// another on the same interface (firewall_nat.inc:384-415); so does arbo,
// naming the other cluster's (or the user's) forward.
func TestForwardOverlapRefused(t *testing.T) {
	c := loadCluster(t)
	opts := Options{DNS: dnsData(c)}
	out, _, err := Merge(c, base(t, "pfsense-default-config.xml"), opts)
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Contains(out, []byte("arbo:arboreus:fwd:wan:tcp:443")) {
		t.Fatal("no forward of tcp/443 on wan to collide with; the test proves nothing")
	}
	for _, tc := range []struct{ name, from, to, want string }{
		{"other cluster", "arbo:arboreus:fwd:", "arbo:other:fwd:", `cluster other's port forward "arbo:other:fwd:wan:tcp:443" (tcp port 443 on wan)`},
		{"user's range", "<descr><![CDATA[arbo:arboreus:fwd:wan:tcp:443]]></descr>\n\t\t\t<associated-rule-id>", "<descr>my web</descr>\n\t\t\t<associated-rule-id>", `a port forward of yours "my web"`},
	} {
		t.Run(tc.name, func(t *testing.T) {
			b := bytes.ReplaceAll(out, []byte(tc.from), []byte(tc.to))
			if tc.name == "user's range" {
				i := bytes.LastIndex(b[:bytes.Index(b, []byte("<descr>my web"))], []byte("<port>443</port>"))
				b = slices.Concat(b[:i], []byte("<port>400-500</port>"), b[i+len("<port>443</port>"):])
			}
			_, _, err := Merge(c, b, opts)
			if err == nil || !strings.Contains(err.Error(), tc.want) || !strings.Contains(err.Error(), "topology line") {
				t.Fatalf("err = %v, want it to contain %q and the topology line", err, tc.want)
			}
		})
	}
	// A disabled forward of another cluster does not collide.
	b := bytes.ReplaceAll(out, []byte("arbo:arboreus:fwd:"), []byte("arbo:other:fwd:"))
	b = bytes.ReplaceAll(b, []byte("<target>"), []byte("<disabled></disabled><target>"))
	if _, _, err := Merge(c, b, opts); err != nil {
		t.Fatalf("a disabled forward collided: %v", err)
	}
}

// TestDNSRuleForJailNetworks: with gateway.dns the jails' queries come from
// their own networks (routed through their host, not NATed) on the
// interface that reaches the hosts, where pfSense's factory rules pass only
// the LAN subnet: arbo passes each jail network to (self) port 53, tcp and
// udp, on that interface (issue 10 item 9); without gateway.dns, none.
func TestDNSRuleForJailNetworks(t *testing.T) {
	c := loadCluster(t)
	out, _, err := Merge(c, base(t, natRepaired), Options{DNS: dnsData(c)})
	if err != nil {
		t.Fatal(err)
	}
	d, _ := parse(out)
	got := map[string]string{}
	for _, r := range d.root.child("filter").elems("rule") {
		if strings.HasPrefix(r.childValue("descr"), "arbo:arboreus:dns:") {
			got[r.childValue("descr")] = r.childValue("interface") + " " + r.childValue("protocol") + " " +
				r.child("source").childValue("address") + " " + r.child("destination").childValue("network") + ":" + r.child("destination").childValue("port")
		}
	}
	want := map[string]string{
		"arbo:arboreus:dns:lan:10.20.1.0/24": "lan tcp/udp 10.20.1.0/24 (self):53",
		"arbo:arboreus:dns:lan:10.20.2.0/24": "lan tcp/udp 10.20.2.0/24 (self):53",
	}
	if len(got) != len(want) {
		t.Errorf("DNS rules %v, want %v", got, want)
	}
	for k, v := range want {
		if got[k] != v {
			t.Errorf("%s = %q, want %q", k, got[k], v)
		}
	}
	c.Gateway.DNS = false
	out, _, err = Merge(c, base(t, natRepaired), Options{})
	if err != nil {
		t.Fatal(err)
	}
	if bytes.Contains(out, []byte(":dns:")) {
		t.Error("a DNS rule without gateway.dns")
	}
}
