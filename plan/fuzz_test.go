package plan

import (
	"testing"
)

// FuzzDecode: a saved plan is a file from a pipeline's workspace; whatever
// is in it, Decode returns a plan or an error, never a panic, and a plan it
// accepts survives a round trip.
func FuzzDecode(f *testing.F) {
	d := desired()
	p := &Plan{FormatVersion: 1, Kind: PlanKind, Machines: []MachinePlan{Diff(d, Fresh(d, nil), Options{Bootstrap: true})}}
	b, _ := p.Encode()
	f.Add(b)
	f.Add([]byte(`{"kind":"arbo-plan","format_version":1,"machines":[{"name":"h","actions":[{"action":"create"}]}]}`))
	f.Add([]byte(`{"kind":"arbo-plan"}`))
	f.Add([]byte(`{"kind":"arbo-plan","format_version":1,"ssh":{"config_file":"/x/ssh_config","identity_files":["/k"],"known_hosts":"/kh","user":"root","port":2222},"machines":[]}`))
	f.Add([]byte(`version: 1`))
	f.Fuzz(func(t *testing.T, b []byte) {
		p, err := Decode(b)
		if err != nil {
			return
		}
		out, err := p.Encode()
		if err != nil {
			t.Fatalf("an accepted plan does not encode: %v", err)
		}
		if _, err := Decode(out); err != nil {
			t.Fatalf("an encoded plan does not decode: %v", err)
		}
		_ = p.Count()
		_ = p.HasChanges()
	})
}

// FuzzMachineText: what a machine says (its manifest, the facts script's
// output, an ezjail config) is read by parsers that must never panic,
// whatever a compromised or broken machine sends.
func FuzzMachineText(f *testing.F) {
	f.Add([]byte("app1\ndb1\n--arbo--\nlo0 em0 lo1\n--arbo--\nRouting tables\n\nInternet:\nDestination Gateway Flags\n10.20.1.12/32 192.168.2.12 UGS\n"))
	f.Add([]byte(`{"format_version":1,"files":[{"path":"/etc/x","sha256":"ab"}],"jails":[{"name":"a","retired":true}]}`))
	f.Add([]byte("export jail_app1_hostname=\"app1\"\nexport jail_app1_ip=\"lo1|10.0.0.1\"\n"))
	f.Add([]byte("root:*:0:0::0:0:Charlie &:/root:/bin/sh\n"))
	f.Fuzz(func(t *testing.T, b []byte) {
		parseFacts(b)
		if m, err := parseManifest(b); err == nil {
			_ = m.encode()
			_ = m.file("/etc/x")
			_ = m.jail("a")
		}
		ezjailIdentity(b, "app1")
		parseIDs(b)
	})
}
