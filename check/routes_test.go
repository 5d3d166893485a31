package check

import (
	"fmt"
	"strings"
	"testing"

	"github.com/arbo-project/arbo/examples/gen"
	"github.com/arbo-project/arbo/inventory"
)

func TestRouteCost(t *testing.T) {
	// Numbered by arbo-gen (one block of 32 per host and network): quiet.
	c, err := inventory.Parse("gen.yaml", gen.Topology(20, 20))
	if err != nil {
		t.Fatal(err)
	}
	if f := of(Run(c, Options{}), "ARBO016"); len(f) != 0 {
		t.Errorf("arbo-gen's numbering: %v", f)
	}

	// Two hosts whose jails alternate addresses: nothing aggregates, each
	// jail costs the other host and the gateway a route.
	var b strings.Builder
	b.WriteString(`version: 1
cluster: t
domain: t.internal
networks:
  lan: { cidr: 192.168.1.0/24 }
  app: { cidr: 10.1.0.0/24 }
tiers:
  app: { role: app, network: app }
hosts:
`)
	for h := 1; h <= 2; h++ {
		fmt.Fprintf(&b, "  - name: h%d\n    ssh: { address: 192.168.1.%d }\n    interfaces: [{ device: em0, network: lan, address: 192.168.1.%d }]\n    jails:\n", h, 10+h, 10+h)
		for k := 0; k < 4; k++ {
			fmt.Fprintf(&b, "      - { name: j%d-%d, tier: app, ip: 10.1.0.%d }\n", h, k, 2*k+h)
		}
	}
	c, err = inventory.Parse("t.yaml", []byte(b.String()))
	if err != nil {
		t.Fatal(err)
	}
	fs := of(Run(c, Options{}), "ARBO016")
	if len(fs) != 2 || fs[0].Machine != "h1" || fs[1].Machine != "h2" {
		t.Fatalf("ARBO016 = %+v, want h1 and h2", fs)
	}
	if fs[0].Severity != Warning || fs[0].Pos.Line == 0 || !strings.Contains(fs[0].Message, "cost every other machine 4 static routes") {
		t.Errorf("finding: %+v", fs[0])
	}
}
