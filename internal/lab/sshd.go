//go:build linux

package lab

import (
	"bufio"
	"fmt"
	"net"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"time"
)

const (
	sshdConfigName = "sshd_config"
	hostKeyName    = "ssh_host_ed25519_key"
	sshdLogName    = "sshd.log"
	sshdPIDName    = "sshd.pid"
)

// sshdConfig is the machine's sshd configuration (LAB.md step 4). Everything
// sshd reads before entering the chroot lives outside the root, so nothing
// done inside a machine can change how one logs in to it.
func sshdConfig(m machineState, authKeys string, gateway bool) string {
	forwarding, logLevel := "no", "VERBOSE"
	if gateway {
		// The jump host. OpenSSH 9.2 logs a direct-tcpip request
		// ("server_request_direct_tcpip: originator … target …") only at
		// DEBUG1, so the gateway logs that much to show forwarded connections.
		forwarding, logLevel = "yes", "DEBUG1"
	}
	sftp := "internal-sftp"
	if m.PfSense {
		// pfSense's sshd_config (written by its src/etc/sshd): the
		// subsystem is a command, which sshd runs through root's login
		// shell, /etc/rc.initial, and which prints its rc.local banner
		// first (issue 10 item 14). pfsense.go installs Debian's
		// sftp-server there.
		sftp = pfSenseSFTPServer
	}
	lines := []string{
		"# arbo-lab machine " + m.Name + "; generated, do not edit",
		fmt.Sprintf("ListenAddress 127.0.0.1:%d", m.SSHDPort),
		"HostKey " + quoteConf(filepath.Join(m.State, hostKeyName)),
		"PidFile " + quoteConf(filepath.Join(m.State, sshdPIDName)),
		"ChrootDirectory " + quoteConf(m.Root),
		"Subsystem sftp " + sftp,
		"UsePAM no",
		"PermitRootLogin prohibit-password",
		"PubkeyAuthentication yes",
		"PasswordAuthentication no",
		"KbdInteractiveAuthentication no",
		// sshd checks this file and its parents (StrictModes): it lives in
		// the lab's root-owned home, never in /root/.ssh of the machine.
		"AuthorizedKeysFile " + quoteConf(authKeys),
		"StrictModes yes",
		"AllowTcpForwarding " + forwarding,
		"AllowAgentForwarding no",
		"X11Forwarding no",
		"PermitUserEnvironment no",
		"PrintMotd no",
		"PrintLastLog no",
		"UseDNS no",
		"LogLevel " + logLevel,
	}
	return strings.Join(lines, "\n") + "\n"
}

// quoteConf quotes a path for sshd_config/ssh_config when it needs it.
func quoteConf(s string) string {
	if strings.ContainsAny(s, " \t\"#") {
		return `"` + strings.ReplaceAll(s, `"`, `\"`) + `"`
	}
	return s
}

func (m machineState) sshdConfigPath() string { return filepath.Join(m.State, sshdConfigName) }
func (m machineState) sshdLogPath() string    { return filepath.Join(m.State, sshdLogName) }

// startSSHD runs sshd in the foreground of a detached session (-D), logging
// to the machine's sshd.log, and waits until it answers. The log goes there
// with -E, not -e: with -e a chrooted session's messages ("Changed root
// directory to …") land on the session's stderr, that is, on the client.
func startSSHD(m *machineState) error {
	if err := os.MkdirAll("/run/sshd", 0o755); err != nil { // privilege separation directory
		return fmt.Errorf("machine %s: %w", m.Name, err)
	}
	cmd := execCommand(sshdPath, "-D", "-E", m.sshdLogPath(), "-f", m.sshdConfigPath())
	pid, err := startDetached(cmd, m.sshdLogPath())
	if err != nil {
		return fmt.Errorf("machine %s: %w", m.Name, err)
	}
	m.SSHDPID = pid
	if err := waitBanner(fmt.Sprintf("127.0.0.1:%d", m.SSHDPort), 10*time.Second, func() bool { return running(pid) }); err != nil {
		return fmt.Errorf("machine %s: sshd did not come up: %w%s", m.Name, err, logTail(m.sshdLogPath()))
	}
	return nil
}

// startSSHDOnFreePort writes the machine's sshd_config and starts sshd on
// m.SSHDPort. That port was free only until someone else bound it (another
// lab, a client's ephemeral port): when sshd lost that race, it takes
// another port and tries again.
func startSSHDOnFreePort(m *machineState, authKeys string, gateway bool) error {
	for attempt := 1; ; attempt++ {
		if err := writeFileAtomic(m.sshdConfigPath(), []byte(sshdConfig(*m, authKeys, gateway)), 0o600); err != nil {
			return err
		}
		err := startSSHD(m)
		if err == nil || attempt == 3 || !strings.Contains(err.Error(), "Address already in use") {
			return err
		}
		if m.SSHDPort, err = freePort("127.0.0.1"); err != nil {
			return err
		}
	}
}

// stopSSHDAndSessions stops sshd and then every process it had forked (open
// sessions and pre-auth children), and waits until they are gone: a late
// pre-auth child logs "Connection closed … [preauth]" through -E, which
// re-creates sshd.log in a state directory being removed.
func stopSSHDAndSessions(m *machineState) error {
	kids := children(m.SSHDPID)
	err := stopSSHD(m)
	for _, k := range kids {
		_ = syscall.Kill(k, syscall.SIGKILL)
	}
	deadline := time.Now().Add(5 * time.Second)
	for _, k := range kids {
		for running(k) && time.Now().Before(deadline) {
			time.Sleep(10 * time.Millisecond)
		}
	}
	return err
}

func stopSSHD(m *machineState) error {
	if err := stop(m.SSHDPID, m.sshdConfigPath()); err != nil {
		return fmt.Errorf("machine %s: stop sshd: %w", m.Name, err)
	}
	m.SSHDPID = 0
	return nil
}

// waitBanner waits until addr greets with an SSH identification line.
func waitBanner(addr string, timeout time.Duration, running func() bool) error {
	deadline := time.Now().Add(timeout)
	var last error
	for time.Now().Before(deadline) {
		if running != nil && !running() {
			return fmt.Errorf("the process exited")
		}
		c, err := net.DialTimeout("tcp", addr, time.Second)
		if err == nil {
			_ = c.SetDeadline(time.Now().Add(2 * time.Second))
			line, rerr := bufio.NewReader(c).ReadString('\n')
			c.Close()
			if rerr == nil && strings.HasPrefix(line, "SSH-") {
				return nil
			}
			err = fmt.Errorf("no SSH banner from %s: %v", addr, rerr)
		}
		last = err
		time.Sleep(20 * time.Millisecond)
	}
	return last
}

// logTail returns the end of a log file, for error messages.
func logTail(path string) string {
	b, err := os.ReadFile(path)
	if err != nil || len(b) == 0 {
		return ""
	}
	if len(b) > 2000 {
		b = b[len(b)-2000:]
	}
	return "\n" + path + ":\n" + strings.TrimRight(string(b), "\n")
}

// freePort asks the kernel for a free TCP port on addr.
func freePort(addr string) (int, error) {
	ln, err := net.Listen("tcp", net.JoinHostPort(addr, "0"))
	if err != nil {
		return 0, fmt.Errorf("free port: %w", err)
	}
	defer ln.Close()
	return ln.Addr().(*net.TCPAddr).Port, nil
}
