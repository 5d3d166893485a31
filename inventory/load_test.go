package inventory

import (
	"net/netip"
	"path/filepath"
	"testing"
)

func TestLoadExample(t *testing.T) {
	path := filepath.Join("..", "examples", "arboreus", "topology.yaml")
	c, err := Load(path)
	if err != nil {
		t.Fatalf("Load: %v", err)
	}
	eq := func(what string, got, want any) {
		t.Helper()
		if got != want {
			t.Errorf("%s = %v, want %v", what, got, want)
		}
	}
	eq("version", c.Version, 1)
	eq("name", c.Name, "arboreus")
	eq("domain", c.Domain, "arboreus.internal")
	eq("ssh.user", c.SSH.User, "root")
	eq("dir", c.Dir, filepath.Dir(path))
	if len(c.Management) != 1 {
		t.Fatalf("management = %v", c.Management)
	}
	eq("management kind", c.Management[0].Kind, SourceNetwork)
	eq("management cidr", c.Management[0].CIDR, netip.MustParsePrefix("192.168.1.0/24"))

	eq("networks", len(c.Networks), 4)
	eq("segment2 interconnect", c.Network("segment2").Interconnect, true)
	eq("segment1 attached", c.Network("segment1").Attached, true)
	eq("app host-local", c.Network("app").HostLocal(), true)
	eq("data cidr", c.Network("data").CIDR, netip.MustParsePrefix("10.20.2.0/24"))

	g := c.Gateway
	if g == nil {
		t.Fatal("no gateway")
	}
	eq("gateway name", g.Name, "gate")
	eq("gateway kind", g.Kind, "pfsense")
	eq("gateway ssh", g.SSH.Address, "192.168.1.1")
	eq("gateway dns", g.DNS, true)
	eq("gateway interfaces", len(g.Interfaces), 3)
	wan := g.Interfaces[0]
	eq("wan uplink", wan.Uplink(), true)
	eq("wan prefix", wan.Prefix, netip.MustParsePrefix("203.0.113.0/24"))
	eq("wan address", wan.Address, netip.MustParseAddr("203.0.113.10"))
	eq("opt1 failover", g.Interfaces[1].Failover, true)
	lan := g.Interfaces[2]
	eq("lan network", lan.Network, "segment1")
	eq("lan prefix", lan.Prefix, netip.MustParsePrefix("192.168.1.0/24"))
	eq("lan uplink", lan.Uplink(), false)
	eq("forwards", len(g.Forwards), 1)
	eq("forward", g.Forwards[0].To+":"+g.Forwards[0].Port.String()+">"+g.Forwards[0].ToPort.String(), "app:443>8443")

	app, data := c.Tier("app"), c.Tier("data")
	eq("app role", app.Role, RoleApp)
	eq("app egress default", app.Egress.Mode, EgressAny)
	eq("data egress default", data.Egress.Mode, EgressNone)
	eq("https port", app.Services[0].Ports, PortRange{8443, 8443})
	eq("https from", app.Services[0].From[0].Kind, SourceGateway)
	eq("mnesia erlang", data.Services[0].Erlang, true)
	eq("mnesia proto default", data.Services[0].Proto, "tcp")
	eq("mnesia from", data.Services[0].From[0].Kind+"/"+data.Services[0].From[0].Name, "tier/app")

	e := c.Erlang
	eq("erlang basename", e.Basename, "arboreus")
	eq("erlang dist", e.DistPorts, PortRange{9100, 9115})
	eq("erlang user default", e.User, "root")
	eq("erlang node_host default", e.NodeHost, NodeHostAddress)
	eq("erlang cookie path", e.CookiePath, filepath.Join(filepath.Dir(path), "secrets", "erlang.cookie"))
	eq("erlang discovery", e.Discovery, "app")
	eq("erlang hidden", len(e.Hidden), 1)
	eq("erlang consensus", e.Consensus, 2)
	eq("erlang tiers", len(e.Tiers), 2)

	eq("hosts", len(c.Hosts), 2)
	h := c.Host("server2")
	eq("server2 index", h.Index, 1)
	eq("server2 ssh", h.SSH.Address, "192.168.1.12")
	eq("server2 em1", h.Interfaces[1].Address, netip.MustParseAddr("192.168.2.12"))
	j := c.Jail("db2")
	eq("db2 host", j.Host, "server2")
	eq("db2 tier", j.Tier, "data")
	eq("db2 ip", j.IPs[0], netip.MustParseAddr("10.20.2.12"))
	eq("db2 tier addr", c.TierAddr(j), netip.MustParseAddr("10.20.2.12"))
	via, ok := c.RouteVia("server1", h)
	eq("route via", via, netip.MustParseAddr("192.168.2.12"))
	eq("route ok", ok, true)

	for path, want := range map[string]Pos{
		"version":                        {11, 10},
		"networks.segment1":              {25, 13},
		"hosts[1].jails[1].ip":           {82, 39},
		"tiers.data.services[0].from[0]": {53, 46},
		"gateway.interfaces[1].failover": {37, 19},
		"erlang.consensus":               {64, 14},
	} {
		eq("pos "+path, c.Pos(path), want)
	}
	eq("jail pos", c.Jail("app1").Pos, Pos{73, 9})
	eq("network pos", c.Network("data").Pos, Pos{28, 3})
}
