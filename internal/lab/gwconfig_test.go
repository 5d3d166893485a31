//go:build linux

package lab

import (
	"strings"
	"testing"

	"github.com/arbo-project/arbo/inventory"
)

// TestInstalledGatewayConfig: the lab's gateway starts from the factory
// config.xml as the console's interface assignment, IP setup and SSH toggle
// leave it for the Arboreus gateway (installedGatewayConfig), and pfSense's
// own parser reads it (TestPfSenseInstalledConfigLoads runs it).
func TestInstalledGatewayConfig(t *testing.T) {
	c := loadExample(t)
	b, err := installedGatewayConfig(defaultGatewayConfig, c.Gateway)
	if err != nil {
		t.Fatal(err)
	}
	s := string(b)
	for _, want := range []string{
		"\t\t<wan>\n\t\t\t<enable></enable>\n\t\t\t<if>igb0</if>\n",
		"\t\t\t<ipaddr>203.0.113.10</ipaddr>\n\t\t\t<ipaddrv6></ipaddrv6>\n\t\t\t<subnet>24</subnet>\n\t\t\t<gateway></gateway>\n",
		"\t\t<lan>\n\t\t\t<enable></enable>\n\t\t\t<if>igb2</if>\n\t\t\t<ipaddr>192.168.1.1</ipaddr>\n\t\t\t<subnet>24</subnet>\n",
		"\t\t</lan>\n\t\t<opt1>\n\t\t\t<if>igb1</if>\n\t\t\t<descr>OPT1</descr>\n\t\t\t<ipaddr>198.51.100.10</ipaddr>\n\t\t\t<subnet>24</subnet>\n\t\t\t<gateway></gateway>\n\t\t\t<ipaddrv6></ipaddrv6>\n\t\t\t<subnetv6></subnetv6>\n\t\t\t<gatewayv6></gatewayv6>\n\t\t\t<enable></enable>\n\t\t</opt1>\n\t</interfaces>\n",
		"\t\t<ssh>\n\t\t\t<enable>enabled</enable>\n\t\t</ssh>\n\t</system>\n",
	} {
		if !strings.Contains(s, want) {
			t.Errorf("installed config lacks %q:\n%s", want, s)
		}
	}
	if strings.Contains(s, "em0") || strings.Contains(s, "em1") {
		t.Errorf("factory NICs left:\n%s", s)
	}
	// Without a lan in the topology the assignment removes it.
	one := *c.Gateway
	one.Interfaces = []inventory.GatewayInterface{c.Gateway.Interfaces[0]}
	b, err = installedGatewayConfig(defaultGatewayConfig, &one)
	if err != nil {
		t.Fatal(err)
	}
	ifs, _, _ := strings.Cut(string(b), "</interfaces>")
	if strings.Contains(ifs, "<lan>") || !strings.Contains(string(b), "<if>igb0</if>") {
		t.Errorf("wan-only gateway:\n%s", b)
	}
}
