package emu

import (
	"os"
	"strings"
	"testing"
)

const goodConfig = `<?xml version="1.0"?>
<pfsense>
	<version>23.3</version>
	<revision><time>%s</time><description>x</description></revision>
	<system><hostname>gw</hostname></system>
	<filter><rule><tracker>1</tracker></rule><rule><tracker>2</tracker></rule></filter>
	<unbound><hosts><host>a</host></hosts><hosts><host>b</host></hosts></unbound>
</pfsense>
`

func cfg(rev string) string { return strings.Replace(goodConfig, "%s", rev, 1) }

func gatewayLab(t *testing.T) *lab {
	l := newLab(t, "name=gw\nkind=gateway\nrelease=14.0-CURRENT\n")
	l.write(PfBackupDir+"/config-100.xml", cfg("100"))
	l.write(PfBackupDir+"/config-200.xml", cfg("200"))
	l.write(PfBackupDir+"/config-300.xml", "<pfsense><system></system><system></system></pfsense>")
	return l
}

func TestFilterConfigureSync(t *testing.T) {
	tests := []struct {
		name      string
		config    string
		fault     bool
		wantRev   string
		wantBad   bool
		wantSaved string // content expected in config.xml afterwards ("" = unchanged)
	}{
		{name: "valid config loads", config: cfg("400"), wantRev: "400"},
		{name: "repeated system element", config: strings.Replace(cfg("400"), "<filter>", "<system><hostname>x</hostname></system><filter>", 1), wantRev: "200", wantBad: true, wantSaved: cfg("200")},
		{name: "repeated hostname under system", config: strings.Replace(cfg("400"), "<hostname>gw</hostname>", "<hostname>gw</hostname><hostname>gw2</hostname>", 1), wantRev: "200", wantBad: true, wantSaved: cfg("200")},
		{name: "not well-formed", config: "<pfsense><system></pfsense>", wantRev: "200", wantBad: true, wantSaved: cfg("200")},
		{name: "case-folded duplicate", config: strings.Replace(cfg("400"), "<filter>", "<SYSTEM></SYSTEM><filter>", 1), wantRev: "200", wantBad: true},
		{name: "config-load fault", config: cfg("400"), fault: true, wantRev: "200", wantBad: true, wantSaved: cfg("200")},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			l := gatewayLab(t)
			l.write(PfConfigXML, tt.config)
			if tt.fault {
				l.write(FailConfigLoad, "rejected by test")
			}
			// pfSense restores silently: exit 0 either way (pfsense.md §1.1).
			l.must("/etc/rc.filter_configure_sync")
			loaded := l.read(ConfigLoadedFile)
			if !strings.Contains(loaded, "revision="+tt.wantRev+"\n") || !strings.Contains(loaded, "source=config.xml\n") {
				t.Errorf("config.loaded = %q, want revision %s", loaded, tt.wantRev)
			}
			if exists(l.path(PfConfigBad)) != tt.wantBad {
				t.Errorf("config.xml.bad exists = %v, want %v", !tt.wantBad, tt.wantBad)
			}
			if tt.wantBad {
				if got := l.read(PfConfigBad); got != tt.config {
					t.Errorf("config.xml.bad is not the rejected file")
				}
				if log := l.read(PfSystemLog); !strings.Contains(log, `Restored "/cf/conf/backup/config-200.xml" because "/cf/conf/config.xml" is invalid`) {
					t.Errorf("system.log = %q", log)
				}
			}
			if tt.wantSaved != "" && l.read(PfConfigXML) != tt.wantSaved {
				t.Errorf("config.xml not restored from the newest valid backup")
			}
			if l.read(PfConfigCache) != l.read(PfConfigXML) {
				t.Error("cache not written from the loaded config")
			}
			if tt.fault && exists(l.path(FailConfigLoad)) {
				t.Error("config-load fault not consumed")
			}
		})
	}
}

func TestConfigCacheShadowsConfigXML(t *testing.T) {
	l := gatewayLab(t)
	l.write(PfConfigXML, cfg("400"))
	l.must("/etc/rc.filter_configure_sync")
	// A hand edit without rm /tmp/config.cache is ignored (pfsense.md §2.2).
	l.write(PfConfigXML, cfg("500"))
	l.must("/etc/rc.filter_configure_sync")
	if loaded := l.read(ConfigLoadedFile); !strings.Contains(loaded, "source=cache\n") || !strings.Contains(loaded, "revision=400\n") {
		t.Errorf("with cache: %q", loaded)
	}
	if err := os.Remove(l.path(PfConfigCache)); err != nil {
		t.Fatal(err)
	}
	l.must("/etc/rc.filter_configure_sync")
	if loaded := l.read(ConfigLoadedFile); !strings.Contains(loaded, "revision=500\n") {
		t.Errorf("after removing cache: %q", loaded)
	}
}

func TestFilterConfigureSyncNoBackup(t *testing.T) {
	l := newLab(t, "kind=gateway\n")
	l.write(PfConfigXML, "<pfsense><a/><a/></pfsense>")
	l.fails(1, "rc.filter_configure_sync")
}

func TestPfSshPlayback(t *testing.T) {
	l := gatewayLab(t)
	l.must("/usr/local/sbin/pfSsh.php", "playback", "svc", "restart", "unbound")
	if log := l.read(ServicesLog); !strings.HasSuffix(log, " - unbound restart\n") {
		t.Errorf("services.log = %q", log)
	}
}
