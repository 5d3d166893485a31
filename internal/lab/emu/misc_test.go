package emu

import (
	"debug/elf"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
)

func TestSmallCommands(t *testing.T) {
	l := newLab(t, "name=host1\nkind=host\nrelease=14.2-RELEASE-p1\n")
	l.write("/etc/rc.conf", "hostname=\"host1.example.net\"\n")
	l.write("/etc/f", "abc")
	tests := []struct {
		args []string
		code int
		out  string
	}{
		{[]string{"uname"}, 0, "FreeBSD\n"},
		{[]string{"uname", "-r"}, 0, "14.2-RELEASE-p1\n"},
		{[]string{"uname", "-m"}, 0, "amd64\n"},
		{[]string{"uname", "-sr"}, 0, "FreeBSD 14.2-RELEASE-p1\n"},
		{[]string{"uname", "-a"}, 0, "FreeBSD host1.example.net 14.2-RELEASE-p1 FreeBSD 14.2-RELEASE-p1 GENERIC amd64\n"},
		{[]string{"freebsd-version"}, 0, "14.2-RELEASE-p1\n"},
		{[]string{"freebsd-version", "-u"}, 0, "14.2-RELEASE-p1\n"},
		{[]string{"hostname"}, 0, "host1.example.net\n"},
		{[]string{"hostname", "-s"}, 0, "host1\n"},
		{[]string{"sha256", "/etc/f"}, 0, "SHA256 (/etc/f) = ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad\n"},
		{[]string{"sha256", "-q", "/etc/f"}, 0, "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad\n"},
		{[]string{"sha256", "-r", "/etc/f"}, 0, "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad /etc/f\n"},
		{[]string{"sha256", "-q", "/etc/missing"}, 1, ""},
		{[]string{"logger", "-t", "arbo", "pf", "rolled", "back"}, 0, ""},
	}
	for _, tt := range tests {
		t.Run(strings.Join(tt.args, " "), func(t *testing.T) {
			code, out, errs := l.run(tt.args...)
			if code != tt.code || out != tt.out {
				t.Errorf("exit %d stdout %q (stderr %q), want %d %q", code, out, errs, tt.code, tt.out)
			}
		})
	}
	if log := l.read("/var/log/messages"); !strings.Contains(log, " host1.example.net arbo: pf rolled back\n") {
		t.Errorf("messages = %q", log)
	}
}

func TestInterfacesAndRoutes(t *testing.T) {
	l := newLab(t, "")
	if out := l.must("ifconfig", "-l"); out != "lo0 em0\n" {
		t.Errorf("boot interfaces %q", out)
	}
	if out := l.must("ifconfig", "em0"); !strings.Contains(out, "inet 192.168.1.11 netmask 0xffffff00") {
		t.Errorf("em0:\n%s", out)
	}
	l.fails(1, "ifconfig", "lo1")
	l.must("ifconfig", "lo1", "create")
	l.fails(1, "ifconfig", "lo1", "create")
	l.must("ifconfig", "lo1", "inet", "10.0.1.1/24", "alias")
	if out := l.must("ifconfig", "lo1"); !strings.Contains(out, "inet 10.0.1.1 netmask 0xffffff00") || !strings.Contains(out, "groups: lo") {
		t.Errorf("lo1:\n%s", out)
	}
	l.must("route", "add", "-net", "10.0.2.0/24", "192.168.1.12")
	l.fails(1, "route", "add", "-net", "10.0.2.0/24", "192.168.1.12")
	l.fails(1, "route", "change", "10.0.3.0/24", "192.168.1.12")
	l.must("route", "change", "10.0.2.0/24", "192.168.1.13")
	out := l.must("route", "-n", "get", "10.0.2.7")
	for _, want := range []string{"destination: 10.0.2.0", "mask: 255.255.255.0", "gateway: 192.168.1.13", "interface: em0"} {
		if !strings.Contains(out, want) {
			t.Errorf("route get lacks %q:\n%s", want, out)
		}
	}
	l.fails(1, "route", "-n", "get", "172.16.0.1")
	l.must("route", "add", "default", "192.168.1.1")
	if out := l.must("route", "show", "172.16.0.1"); !strings.Contains(out, "destination: default") {
		t.Errorf("default route:\n%s", out)
	}
	l.must("route", "delete", "10.0.2.0/24")
	l.fails(1, "route", "delete", "10.0.2.0/24")
	if out := l.must("netstat", "-rn"); !strings.Contains(out, "default            192.168.1.1") {
		t.Errorf("netstat:\n%s", out)
	}
}

func TestPkg(t *testing.T) {
	l := newLab(t, "")
	l.fails(1, "pkg", "info", "-e", "unbound")
	l.must("pkg", "install", "-y", "unbound", "ezjail")
	l.must("pkg", "info", "-e", "unbound")
	// Into a jail root from the host, by -r and by -c.
	l.must("pkg", "-r", "/usr/jails/web", "install", "-y", "nginx")
	l.must("pkg", "-c", "/usr/jails/web", "install", "-y", "postgresql16-client")
	if out := l.must("pkg", "-r", "/usr/jails/web", "info", "-q"); out != "nginx-0.lab\npostgresql16-client-0.lab\n" {
		t.Errorf("jail pkg info = %q", out)
	}
	l.fails(1, "pkg", "info", "-e", "nginx") // not on the host
	// Without -y pkg asks; no answer means no.
	code, _, _ := l.runIn("", "pkg", "install", "curl")
	if code != 1 {
		t.Errorf("install without -y and no answer: exit %d", code)
	}
	if code, _, _ := l.runIn("y\n", "pkg", "install", "curl"); code != 0 {
		t.Errorf("install answered y: exit %d", code)
	}
	if got := l.read(PkgDB); got != "curl\nezjail\nunbound\n" {
		t.Errorf("db = %q", got)
	}
}

func TestJexecAndServiceInJail(t *testing.T) {
	l := setupJail(t)
	l.must("service", "netif", "cloneup")
	l.must("ezjail-admin", "start", "web")
	// unbound-checkconf fails without a config or a server: clause.
	conf := "/usr/local/etc/unbound/unbound.conf"
	l.fails(1, "jexec", "web", "/usr/local/sbin/unbound-checkconf", conf)
	l.fails(1, "service", "-j", "web", "unbound", "restart")
	l.write("/usr/jails/web"+conf, "# nothing\n")
	l.fails(1, "jexec", "web", "/usr/local/sbin/unbound-checkconf", conf)
	l.write("/usr/jails/web"+conf, "server:\n  interface: 10.0.1.10\n")
	l.must("jexec", "web", "/usr/local/sbin/unbound-checkconf", conf)
	// The port's rc script has no configtest (unbound.in:85): rc.subr
	// refuses it (rc.subr:1709) even with a valid config.
	if _, _, errOut := l.runIn("", "service", "-j", "web", "unbound", "configtest"); !strings.Contains(errOut, "unknown directive 'configtest'") {
		t.Errorf("port unbound configtest: stderr %q", errOut)
	}
	l.fails(1, "jexec", "web", "service", "unbound", "configtest")
	l.must("service", "-j", "web", "unbound", "restart")
	l.fails(1, "service", "-j", "nosuch", "unbound", "restart")
	if log := l.read(ServicesLog); !strings.Contains(log, " web unbound restart\n") {
		t.Errorf("services.log = %q", log)
	}
	// jexec'd emulated commands see the jail root and are logged with it.
	l.must("jexec", "web", "sysrc", "sshd_enable=YES")
	if got := l.read("/usr/jails/web/etc/rc.conf"); got != "sshd_enable=\"YES\"\n" {
		t.Errorf("jail rc.conf %q", got)
	}
	calls, err := ReadCalls(l.root)
	if err != nil {
		t.Fatal(err)
	}
	last := calls[len(calls)-2]
	if last.Jail != "web" || last.Argv[0] != "sysrc" {
		t.Errorf("inner call logged as %+v", last)
	}
	if out := l.must("jexec", "web", "hostname"); out != "web\n" {
		t.Errorf("hostname in jail %q", out)
	}
	// No /bin/sh in the jail: a non-emulated command cannot run.
	l.fails(127, "jexec", "web", "id", "-u")
	l.fails(1, "jexec", "nosuch", "hostname")
	if out := l.must("jls", "-j", "web", "jid", "name", "path"); out != "1 web /usr/jails/web\n" {
		t.Errorf("jls params %q", out)
	}
	l.fails(1, "jls", "-j", "nosuch")
}

func TestDangerousServicesAreRecorded(t *testing.T) {
	l := newLab(t, "")
	l.must("service", "routing", "restart")
	l.must("service", "netif", "restart")
	if log := l.read(ServicesLog); !strings.Contains(log, " - routing restart\n") || !strings.Contains(log, " - netif restart\n") {
		t.Errorf("services.log = %q", log)
	}
}

// TestStaticBinary builds the command as the lab does and checks that it
// has no ELF interpreter (fully static) and dispatches through a symlink.
func TestStaticBinary(t *testing.T) {
	if testing.Short() {
		t.Skip("builds a binary")
	}
	dir := t.TempDir()
	bin := filepath.Join(dir, "lab-emu")
	cmd := exec.Command("go", "build", "-o", bin, "github.com/arbo-project/arbo/internal/lab/cmd/lab-emu")
	cmd.Env = append(os.Environ(), "CGO_ENABLED=0")
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("build: %v\n%s", err, out)
	}
	f, err := elf.Open(bin)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	for _, p := range f.Progs {
		if p.Type == elf.PT_INTERP {
			t.Error("binary has an ELF interpreter: not static")
		}
	}
	if libs, _ := f.ImportedLibraries(); len(libs) > 0 {
		t.Errorf("binary imports %v", libs)
	}
	root := t.TempDir()
	link := filepath.Join(dir, "freebsd-version")
	if err := os.Symlink(bin, link); err != nil {
		t.Fatal(err)
	}
	if err := os.MkdirAll(filepath.Join(root, "etc"), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(root, "etc/lab-machine"), []byte("release=13.3-RELEASE\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	run := exec.Command(link)
	run.Env = append(withoutLabEnv(os.Environ()), RootEnv+"="+root)
	out, err := run.Output()
	if err != nil || string(out) != "13.3-RELEASE\n" {
		t.Errorf("via symlink: %q, %v", out, err)
	}
	if calls, err := ReadCalls(root); err != nil || len(calls) != 1 || calls[0].Argv[0] != link {
		t.Errorf("calls %+v %v", calls, err)
	}
}
