package pfsense

import "testing"

func BenchmarkMergeRich(b *testing.B) {
	c := loadCluster(b)
	base := base(b, natRepaired)
	opts := Options{DNS: dnsData(c)}
	for b.Loop() {
		if _, _, err := Merge(c, base, opts); err != nil {
			b.Fatal(err)
		}
	}
}

func BenchmarkParseRich(b *testing.B) {
	base := base(b, natRepaired)
	for b.Loop() {
		if _, err := parse(base); err != nil {
			b.Fatal(err)
		}
	}
}
