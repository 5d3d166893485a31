//go:build linux

package lab

import (
	"bytes"
	"context"
	"crypto/rand"
	"errors"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"golang.org/x/crypto/ssh"
	"golang.org/x/crypto/ssh/knownhosts"

	"github.com/arbo-project/arbo/internal/lab/emu"
	"github.com/arbo-project/arbo/inventory"
)

const topology = "../../examples/arboreus/topology.yaml"

func loadExample(t *testing.T) *inventory.Cluster {
	t.Helper()
	c, err := inventory.Load(topology)
	if err != nil {
		t.Fatalf("load %s: %v", topology, err)
	}
	return c
}

// sshCmd runs OpenSSH's own client (or sftp) with the lab's ssh_config.
func sshCmd(l *Lab, prog string, args ...string) *exec.Cmd {
	full := append([]string{"-F", l.SSHConfig(), "-o", "BatchMode=yes", "-o", "ConnectTimeout=5"}, args...)
	cmd := exec.Command(prog, full...)
	cmd.Env = append(os.Environ(), "HOME="+l.Dir()) // keep the user's ~/.ssh out of it
	return cmd
}

func runSSH(t *testing.T, l *Lab, args ...string) (stdout, stderr string, err error) {
	t.Helper()
	cmd := sshCmd(l, "ssh", args...)
	var o, e bytes.Buffer
	cmd.Stdout, cmd.Stderr = &o, &e
	err = cmd.Run()
	return o.String(), e.String(), err
}

// goClient logs in with x/crypto/ssh, verifying the host key from the lab's
// known_hosts, as arbo does.
func goClient(t *testing.T, l *Lab, m *Machine) *ssh.Client {
	t.Helper()
	signer, err := readSigner(l.KeyFile())
	if err != nil {
		t.Fatal(err)
	}
	hk, err := knownhosts.New(l.KnownHosts())
	if err != nil {
		t.Fatal(err)
	}
	cl, err := ssh.Dial("tcp", m.Addr.String(), &ssh.ClientConfig{User: "root",
		Auth: []ssh.AuthMethod{ssh.PublicKeys(signer)}, HostKeyCallback: hk, Timeout: 5 * time.Second})
	if err != nil {
		t.Fatalf("log in to %s: %v", m.Name, err)
	}
	t.Cleanup(func() { cl.Close() })
	return cl
}

func remoteRun(cl *ssh.Client, cmd string) (string, error) {
	s, err := cl.NewSession()
	if err != nil {
		return "", err
	}
	defer s.Close()
	out, err := s.CombinedOutput(cmd)
	return string(out), err
}

// TestLab runs the example topology's three machines through what arbo and
// a person do with them, then through every fault. The subtests share one
// lab and run in order: faults change the machines.
func TestLab(t *testing.T) {
	t.Parallel()
	c := loadExample(t)
	l := Start(t, c)
	gate, server1, server2 := l.Machine("gate"), l.Machine("server1"), l.Machine("server2")
	if gate == nil || server1 == nil || server2 == nil {
		t.Fatalf("machines: %v", l.Machines())
	}

	t.Run("files", func(t *testing.T) {
		cfg, err := os.ReadFile(l.SSHConfig())
		if err != nil {
			t.Fatal(err)
		}
		for _, want := range []string{"Host 192.168.1.1 gate\n", "Host 192.168.1.11 server1\n",
			"HostName " + server1.Addr.Addr().String() + "\n", "StrictHostKeyChecking yes\n",
			"IdentityFile " + l.KeyFile() + "\n", "UserKnownHostsFile " + l.KnownHosts() + "\n"} {
			if !strings.Contains(string(cfg), want) {
				t.Errorf("ssh_config lacks %q:\n%s", want, cfg)
			}
		}
		ms, err := os.ReadFile(filepath.Join(l.Dir(), machinesFile))
		if err != nil {
			t.Fatal(err)
		}
		want := fmt.Sprintf("machine gate root %s\nmachine server1 root %s\nmachine server2 root %s\n", gate.Root, server1.Root, server2.Root)
		if string(ms) != want {
			t.Errorf("machines = %q, want %q", ms, want)
		}
		if fi, err := os.Stat(l.KeyFile()); err != nil || fi.Mode().Perm() != 0o600 {
			t.Errorf("key file: %v %v", fi, err)
		}
		addrs := map[string]bool{}
		for _, m := range l.Machines() {
			addrs[m.Addr.Addr().String()] = true
		}
		if len(addrs) != 3 {
			t.Errorf("machines share loopback addresses: %v", addrs)
		}
		mf, err := os.ReadFile(emu.Path(server1.Root, emu.MachineFile))
		if err != nil {
			t.Fatal(err)
		}
		for _, want := range []string{"name=server1\n", "kind=host\n", "iface=em0 192.168.1.11/24\n", "iface=em1 192.168.2.11/24\n"} {
			if !strings.Contains(string(mf), want) {
				t.Errorf("%s lacks %q:\n%s", emu.MachineFile, want, mf)
			}
		}
		if _, err := os.Stat(filepath.Join(gate.Root, "cf/conf/config.xml")); err != nil {
			t.Errorf("gateway config.xml: %v", err)
		}
		if target, err := os.Readlink(filepath.Join(gate.Root, "conf")); err != nil || target != "/cf/conf" {
			t.Errorf("gateway /conf -> %q, %v", target, err)
		}
		if _, err := os.Lstat(filepath.Join(server1.Root, "etc/rc.filter_configure_sync")); err == nil {
			t.Errorf("a host has the gateway's rc.filter_configure_sync")
		}
	})

	t.Run("openssh", func(t *testing.T) {
		out, errOut, err := runSSH(t, l, "192.168.1.11", "uname; id; ls -ld /tmp; touch /etc/x && chown root:wheel /etc/x && stat -f %Su:%Sg /etc/x")
		if err != nil {
			t.Fatalf("ssh: %v\n%s", err, errOut)
		}
		want := "FreeBSD\nuid=0(root) gid=0(wheel) groups=0(wheel)\n"
		if !strings.HasPrefix(out, want) || !strings.Contains(out, "drwxrwxrwt") || !strings.HasSuffix(out, "root:wheel\n") {
			t.Errorf("ssh output = %q", out)
		}
		if errOut != "" {
			t.Errorf("ssh stderr = %q, want nothing (sshd's log must not reach clients)", errOut)
		}
	})

	t.Run("sftp", func(t *testing.T) {
		local := filepath.Join(t.TempDir(), "app1")
		content := []byte("export jail_app1_hostname=\"app1\"\n")
		if err := os.WriteFile(local, content, 0o644); err != nil {
			t.Fatal(err)
		}
		batch := filepath.Join(t.TempDir(), "batch")
		if err := os.WriteFile(batch, []byte("put "+local+" /usr/local/etc/ezjail/app1\n"), 0o644); err != nil {
			t.Fatal(err)
		}
		cmd := sshCmd(l, "sftp", "-b", batch, "192.168.1.11")
		if out, err := cmd.CombinedOutput(); err != nil {
			t.Fatalf("sftp: %v\n%s", err, out)
		}
		got, err := os.ReadFile(filepath.Join(server1.Root, "usr/local/etc/ezjail/app1"))
		if err != nil || !bytes.Equal(got, content) {
			t.Errorf("uploaded file = %q, %v", got, err)
		}
	})

	t.Run("jump", func(t *testing.T) {
		out, errOut, err := runSSH(t, l, "-J", "192.168.1.1", "192.168.1.12", "hostname")
		if err != nil {
			t.Fatalf("ssh -J: %v\n%s", err, errOut)
		}
		if out != "server2.arboreus.internal\n" {
			t.Errorf("hostname through the jump = %q", out)
		}
		if want := "target " + server2.Addr.Addr().String() + " port " + strconv.Itoa(int(server2.Addr.Port())); !strings.Contains(gate.SSHDLog(), want) {
			t.Errorf("gateway's sshd log lacks %q:\n%s", want, gate.SSHDLog())
		}
	})

	t.Run("firewall", func(t *testing.T) {
		cl := goClient(t, l, server2)
		if err := server2.SetFirewall(true); err != nil {
			t.Fatal(err)
		}
		if _, errOut, err := runSSH(t, l, "192.168.1.12", "true"); err == nil {
			t.Errorf("a new connection got in through a blocked firewall")
		} else if strings.Contains(errOut, "Permission denied") {
			t.Errorf("refused by sshd, not the firewall: %s", errOut)
		}
		if out, err := remoteRun(cl, "echo still"); err != nil || out != "still\n" {
			t.Errorf("existing connection after pfctl -f: %q, %v", out, err)
		}
		// service pf restart flushes the states: the existing one goes too.
		if err := os.WriteFile(emu.Path(server2.Root, emu.FlushFile), []byte("1\n"), 0o644); err != nil {
			t.Fatal(err)
		}
		done := make(chan error, 1)
		go func() { done <- cl.Wait() }()
		select {
		case <-done:
		case <-time.After(5 * time.Second):
			t.Errorf("existing connection survived a state flush while blocked")
		}
		if err := server2.SetFirewall(false); err != nil {
			t.Fatal(err)
		}
		if _, errOut, err := runSSH(t, l, "192.168.1.12", "true"); err != nil {
			t.Errorf("after opening the firewall: %v\n%s", err, errOut)
		}
	})

	t.Run("cut", func(t *testing.T) {
		cmd := sshCmd(l, "ssh", "192.168.1.11", "echo started; sleep 30")
		stdout, err := cmd.StdoutPipe()
		if err != nil {
			t.Fatal(err)
		}
		if err := cmd.Start(); err != nil {
			t.Fatal(err)
		}
		buf := make([]byte, 8)
		if _, err := stdout.Read(buf); err != nil {
			t.Fatalf("session did not start: %v", err)
		}
		start := time.Now()
		if err := server1.CutConnections(); err != nil {
			t.Fatal(err)
		}
		werr := cmd.Wait()
		if werr == nil || time.Since(start) > 20*time.Second {
			t.Errorf("ssh after cut: %v after %v, want a failure at once", werr, time.Since(start))
		}
	})

	t.Run("cut-after-bytes", func(t *testing.T) {
		local := filepath.Join(t.TempDir(), "big")
		data := make([]byte, 2<<20)
		_, _ = rand.Read(data)
		if err := os.WriteFile(local, data, 0o644); err != nil {
			t.Fatal(err)
		}
		batch := filepath.Join(t.TempDir(), "batch")
		if err := os.WriteFile(batch, []byte("put "+local+" /root/big\n"), 0o644); err != nil {
			t.Fatal(err)
		}
		if err := server1.CutAfterBytes(256 << 10); err != nil {
			t.Fatal(err)
		}
		out, err := sshCmd(l, "sftp", "-b", batch, "192.168.1.11").CombinedOutput()
		if err == nil {
			t.Errorf("upload went through a cut:\n%s", out)
		}
		if got, _ := os.ReadFile(filepath.Join(server1.Root, "root/big")); len(got) >= len(data) {
			t.Errorf("remote file has %d bytes, want fewer than %d", len(got), len(data))
		}
		// One shot: the next connection works.
		if _, errOut, err := runSSH(t, l, "192.168.1.11", "true"); err != nil {
			t.Errorf("after the cut: %v\n%s", err, errOut)
		}
	})

	t.Run("stop-sshd", func(t *testing.T) {
		if err := server1.StopSSHD(); err != nil {
			t.Fatal(err)
		}
		if _, _, err := runSSH(t, l, "192.168.1.11", "true"); err == nil {
			t.Errorf("connected to a machine whose sshd is stopped")
		}
		if err := server1.StartSSHD(); err != nil {
			t.Fatal(err)
		}
		if _, errOut, err := runSSH(t, l, "192.168.1.11", "true"); err != nil {
			t.Errorf("after start-sshd: %v\n%s", err, errOut)
		}
	})

	t.Run("fail-command", func(t *testing.T) {
		if err := server1.FailCommand("pfctl", "pfctl: DIOCADDRULE: Device busy"); err != nil {
			t.Fatal(err)
		}
		_, errOut, err := runSSH(t, l, "192.168.1.11", "pfctl -sr")
		var ee *exec.ExitError
		if !errors.As(err, &ee) || ee.ExitCode() != 1 || !strings.Contains(errOut, "DIOCADDRULE: Device busy") {
			t.Errorf("failed pfctl: %v, stderr %q; want exit 1 with the message", err, errOut)
		}
		if err := server1.ClearFail("pfctl"); err != nil {
			t.Fatal(err)
		}
		// A fresh host has no pf.ko: pfctl needs kldload pf first.
		if _, errOut, err := runSSH(t, l, "192.168.1.11", "kldload -n pf && pfctl -sr"); err != nil {
			t.Errorf("pfctl after clear: %v\n%s", err, errOut)
		}
		calls, err := server1.Calls()
		if err != nil {
			t.Fatal(err)
		}
		var n int
		for _, c := range calls {
			if len(c.Argv) > 0 && filepath.Base(c.Argv[0]) == "pfctl" {
				n++
			}
		}
		if n != 2 {
			t.Errorf("calls log has %d pfctl calls, want 2: %+v", n, calls)
		}
	})

	t.Run("reject-next-config", func(t *testing.T) {
		if err := server1.RejectNextConfig(); err == nil {
			t.Errorf("reject-next-config on a host succeeded")
		}
		// The gateway runs pfSense's own parser, which the lab does not
		// override: the fault is refused there, and writes nothing.
		if err := gate.RejectNextConfig(); err == nil || !strings.Contains(err.Error(), "reject-next-ruleset") {
			t.Errorf("reject-next-config on the real gateway: %v, want a refusal naming reject-next-ruleset", err)
		}
		if _, err := os.Stat(emu.Path(gate.Root, emu.FailConfigLoad)); err == nil {
			t.Error("a refused fault left its switch")
		}
	})

	t.Run("reject-next-ruleset", func(t *testing.T) {
		if err := gate.RejectNextRuleset(); err != nil {
			t.Fatal(err)
		}
		_, errOut, err := runSSH(t, l, "192.168.1.1", "echo pass all > /tmp/lab.conf; pfctl -f /tmp/lab.conf")
		if err == nil || !strings.Contains(errOut, "pf rules not loaded") {
			t.Errorf("the first load after the fault: %v, stderr %q", err, errOut)
		}
		// One shot.
		if _, errOut, err := runSSH(t, l, "192.168.1.1", "echo pass all > /tmp/lab.conf; pfctl -f /tmp/lab.conf"); err != nil {
			t.Errorf("the second load: %v\n%s", err, errOut)
		}
	})

	t.Run("fill-disk", func(t *testing.T) {
		if _, errOut, err := runSSH(t, l, "192.168.1.12", "echo keep > /usr/local/etc/ezjail/keep"); err != nil {
			t.Fatalf("%v\n%s", err, errOut)
		}
		if err := server2.FillDisk("/usr/local/etc/ezjail", 256<<10); err != nil {
			t.Fatal(err)
		}
		out, errOut, err := runSSH(t, l, "192.168.1.12", "cat /usr/local/etc/ezjail/keep; echo data > /usr/local/etc/ezjail/new")
		if err == nil || !strings.Contains(errOut, "No space left on device") {
			t.Errorf("write to a full disk: %v, stderr %q", err, errOut)
		}
		if out != "keep\n" {
			t.Errorf("what was there before = %q, want it kept", out)
		}
	})

	t.Run("rekey", func(t *testing.T) {
		if err := server2.ChangeHostKey(); err != nil {
			t.Fatal(err)
		}
		_, errOut, err := runSSH(t, l, "192.168.1.12", "true")
		if err == nil || !strings.Contains(errOut, "HOST IDENTIFICATION HAS CHANGED") {
			t.Errorf("ssh to a rekeyed machine: %v, stderr %q", err, errOut)
		}
	})

	t.Run("fill-disk-symlink", func(t *testing.T) {
		if err := gate.FillDisk("/conf", 4096); err == nil {
			t.Errorf("fill-disk followed the machine's /conf symlink")
		}
	})

	t.Run("down", func(t *testing.T) {
		var ports []string
		for _, m := range l.st.Machines {
			ports = append(ports, m.Proxy, fmt.Sprintf("127.0.0.1:%d", m.SSHDPort))
		}
		home := l.st.Home
		if err := l.Down(); err != nil {
			t.Fatal(err)
		}
		assertGone(t, home, ports)
		if err := l.Down(); err != nil {
			t.Errorf("second down: %v", err)
		}
	})
}

// assertGone checks that nothing listens on addrs and home is gone, with
// no file system mounted below it.
func assertGone(t *testing.T, home string, addrs []string) {
	t.Helper()
	for _, a := range addrs {
		if c, err := net.DialTimeout("tcp", a, time.Second); err == nil {
			c.Close()
			t.Errorf("%s still accepts connections after down", a)
		}
	}
	if _, err := os.Stat(home); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("%s still exists after down: %v", home, err)
	}
	mi, _ := os.ReadFile("/proc/self/mountinfo")
	if strings.Contains(string(mi), home+"/") {
		t.Errorf("a file system is still mounted below %s", home)
	}
}

// TestUpFailureCleansUp fails Up after the first machine's sshd runs, as a
// failure midway would, and checks that nothing is left.
func TestUpFailureCleansUp(t *testing.T) {
	if err := Requirements(); err != nil {
		if os.Getenv("CI") == "true" {
			t.Fatal(err)
		}
		t.Skip(err)
	}
	bin, err := testEmuBinary()
	if err != nil {
		t.Fatal(err)
	}
	dir := t.TempDir()
	var addrs []string
	var home string
	o := Options{Dir: dir, EmuBinary: bin, afterMachine: func(name string) error {
		st, err := readState(dir)
		if err != nil {
			return err
		}
		home = st.Home
		for _, m := range st.Machines {
			addrs = append(addrs, fmt.Sprintf("127.0.0.1:%d", m.SSHDPort))
		}
		if _, err := os.Stat(filepath.Join(home, name, "bin/busybox")); err != nil {
			return err
		}
		return errors.New("injected failure")
	}}
	_, err = Up(context.Background(), loadExample(t), o)
	if err == nil || !strings.Contains(err.Error(), "injected failure") {
		t.Fatalf("Up = %v, want the injected failure", err)
	}
	if home == "" || len(addrs) != 1 {
		t.Fatalf("the hook did not run after the first machine: home %q, addrs %v", home, addrs)
	}
	assertGone(t, home, addrs)
	if err := DownDir(dir); err != nil {
		t.Errorf("down after a failed up: %v", err)
	}
	if err := DownDir(dir); err != nil {
		t.Errorf("second down: %v", err)
	}
}

func TestUpRefusesUnsafeBase(t *testing.T) {
	if err := Requirements(); err != nil {
		if os.Getenv("CI") == "true" {
			t.Fatal(err)
		}
		t.Skip(err)
	}
	base := filepath.Join(t.TempDir(), "base") // under /tmp: world-writable
	_, err := Up(context.Background(), loadExample(t), Options{Dir: t.TempDir(), Base: base, EmuBinary: "/nonexistent"})
	if err == nil || !strings.Contains(err.Error(), "OpenSSH refuses") {
		t.Errorf("Up under /tmp = %v, want a refusal naming the chroot rule", err)
	}
}

// TestOptions checks what a test can ask of a lab: a basejail, another
// config.xml, extra files.
func TestOptions(t *testing.T) {
	t.Parallel()
	conf := []byte("<?xml version=\"1.0\"?>\n<pfsense><version>23.3</version></pfsense>\n")
	l := Start(t, loadExample(t), WithBasejail(), WithGatewayConfig(conf),
		WithFile("server1", "/usr/local/etc/arbo-test", []byte("x\n"), 0o600),
		WithFile("", "/etc/motd", []byte("lab\n"), 0))
	got, err := os.ReadFile(filepath.Join(l.Machine("gate").Root, "cf/conf/config.xml"))
	if err != nil || !bytes.Equal(got, conf) {
		t.Errorf("gateway config.xml = %q, %v", got, err)
	}
	for _, m := range l.Machines() {
		_, err := os.Stat(filepath.Join(m.Root, "usr/jails/basejail"))
		if hasIt := err == nil; hasIt != (m.Name != "gate") {
			t.Errorf("%s: basejail present = %v", m.Name, hasIt)
		}
		if b, err := os.ReadFile(filepath.Join(m.Root, "etc/motd")); err != nil || string(b) != "lab\n" {
			t.Errorf("%s: /etc/motd = %q, %v", m.Name, b, err)
		}
		calls, err := m.Calls()
		if err != nil || len(calls) != 0 {
			t.Errorf("%s: calls log starts with %v, %v; want empty", m.Name, calls, err)
		}
	}
	fi, err := os.Stat(filepath.Join(l.Machine("server1").Root, "usr/local/etc/arbo-test"))
	if err != nil || fi.Mode().Perm() != 0o600 {
		t.Errorf("extra file: %v, %v", fi, err)
	}
	if _, err := os.Stat(filepath.Join(l.Machine("server2").Root, "usr/local/etc/arbo-test")); err == nil {
		t.Errorf("a file for server1 landed on server2")
	}
	out, errOut, err := runSSH(t, l, "192.168.1.12", "ezjail-admin create app2 10.20.1.12 >/dev/null && test -d /usr/jails/app2 && echo made")
	if err != nil || out != "made\n" {
		t.Errorf("ezjail-admin create on a pre-installed basejail: %q, %v\n%s", out, err, errOut)
	}
}
