package pfsense

import (
	"bytes"
	"testing"
)

// Small seeds keep each execution cheap; the 62 KB fixture is covered by the
// ordinary tests.
func fuzzSeeds(f *testing.F) {
	f.Add(Factory())
	f.Add(fixture(f, "pfsensible-dns-resolver-config-full.xml"))
	f.Add([]byte("<pfsense><filter><rule/><rule/></filter></pfsense>"))
	f.Add([]byte("<pfsense><unbound><custom_options>IyBhcmJvOmFyYm9yZXVzIGJlZ2luCg==</custom_options></unbound></pfsense>"))
	f.Add([]byte("<?xml version=\"1.0\"?>\n<!-- c --><pfsense a='1'><x/><![CDATA[y &amp; z]]></pfsense>\n"))
	f.Add([]byte("<pfsense><interfaces><wan><if>igb0</if></wan></interfaces><filter><separator><wan><sep0><row>fr0</row></sep0></wan></separator></filter></pfsense>"))
}

// FuzzRoundTrip: the reader never panics; whatever parses is written back
// byte for byte and is Equal to itself.
func FuzzRoundTrip(f *testing.F) {
	fuzzSeeds(f)
	f.Fuzz(func(t *testing.T, data []byte) {
		d, err := parse(data)
		_ = Validate(data)
		if err != nil {
			return
		}
		if !bytes.Equal(d.bytes(), data) {
			t.Fatalf("round trip changed the bytes of %q", data)
		}
		if !Equal(data, data) {
			t.Fatal("a parsed config is not Equal to itself")
		}
	})
}

// FuzzMerge: whatever Validate accepts, Merge either refuses with an error
// or turns into a config Validate accepts, and a second merge leaves that
// unchanged.
func FuzzMerge(f *testing.F) {
	fuzzSeeds(f)
	c := loadCluster(f)
	opts := Options{DNS: dnsData(c)}
	f.Fuzz(func(t *testing.T, data []byte) {
		if Validate(data) != nil {
			return
		}
		out, _, err := Merge(c, data, opts)
		if err != nil {
			return
		}
		if err := Validate(out); err != nil {
			t.Fatalf("merge produced a config Validate refuses: %v", err)
		}
		again, _, err := Merge(c, out, opts)
		if err != nil {
			t.Fatalf("second merge: %v", err)
		}
		if !bytes.Equal(again, out) {
			t.Fatalf("second merge changed the config of %q", data)
		}
	})
}
