package pfsense

import (
	"bytes"
	"os"
	"path/filepath"
	"testing"
)

// FuzzRoundTrip: the reader never panics; whatever parses is written back
// byte for byte and equals itself; whatever Validate accepts, Merge either
// refuses with an error or turns into a config Validate accepts, and a
// second merge leaves that unchanged.
func FuzzRoundTrip(f *testing.F) {
	files, _ := filepath.Glob("testdata/*.xml")
	for _, p := range files {
		if b, err := os.ReadFile(p); err == nil {
			f.Add(b)
		}
	}
	f.Add([]byte("<pfsense><filter><rule/><rule/></filter></pfsense>"))
	f.Add([]byte("<pfsense><unbound><custom_options>IyBhcmJvOmFyYm9yZXVzIGJlZ2luCg==</custom_options></unbound></pfsense>"))
	f.Add([]byte("<?xml version=\"1.0\"?>\n<!-- c --><pfsense a='1'><x/><![CDATA[y]]></pfsense>\n"))
	c := loadCluster(f)
	opts := Options{DNS: dnsData(c)}
	f.Fuzz(func(t *testing.T, data []byte) {
		d, err := parse(data)
		if err == nil {
			if !bytes.Equal(d.bytes(), data) {
				t.Fatalf("round trip changed the bytes of %q", data)
			}
			if !Equal(data, data) {
				t.Fatal("a parsed config is not Equal to itself")
			}
		}
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
