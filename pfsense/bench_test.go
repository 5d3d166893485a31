package pfsense

import "testing"

func BenchmarkMergeRich(b *testing.B) {
	c := loadCluster(b)
	base := fixture(b, "pfsensible-nat-port-forward-config.repaired.xml")
	opts := Options{DNS: dnsData(c)}
	for b.Loop() {
		if _, _, err := Merge(c, base, opts); err != nil {
			b.Fatal(err)
		}
	}
}

func BenchmarkParseRich(b *testing.B) {
	base := fixture(b, "pfsensible-nat-port-forward-config.repaired.xml")
	for b.Loop() {
		if _, err := parse(base); err != nil {
			b.Fatal(err)
		}
	}
}
