//go:build linux

package lab

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/netip"
	"os"
	"os/exec"
	"os/signal"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"time"

	"golang.org/x/crypto/ssh"
	"golang.org/x/crypto/ssh/knownhosts"

	"github.com/arbo-project/arbo/internal/lab/emu"
	"github.com/arbo-project/arbo/inventory"
)

const (
	kindHost    = "host"
	kindGateway = "gateway"
	// release is what the machines report (uname -r, freebsd-version).
	release = "14.2-RELEASE"
	// DefaultBase holds the labs' machine roots. OpenSSH wants every
	// component of a chroot root-owned and not group/world-writable, so it
	// can never be under /tmp.
	DefaultBase = "/var/lib/arbo-lab"
)

// File is an extra file put into a machine's root before it starts.
type File struct {
	Machine string // empty: every machine
	Path    string // absolute path inside the machine
	Content []byte
	Mode    os.FileMode // 0 means 0644
}

// Options configure Up.
type Options struct {
	// Dir receives id_ed25519, ssh_config, known_hosts, machines and the
	// lab's state (LAB.md, "Using the lab by hand"). Required.
	Dir string
	// Base holds the machine roots, under Base/<lab id>; DefaultBase if empty.
	Base string
	// EmuBinary is a prebuilt lab-emu (CGO_ENABLED=0); empty builds one with
	// the go command from the module the current directory is in.
	EmuBinary string
	// Basejail pre-installs ezjail's basejail on the hosts (as
	// `ezjail-admin install` would), for tests that skip --bootstrap.
	Basejail bool
	// GatewayConfig replaces the gateway's /cf/conf/config.xml, which is
	// otherwise pfSense's factory one after the console's interface
	// assignment for the topology (installedGatewayConfig).
	GatewayConfig []byte
	// PfSense builds the gateway with pfSense 2.7.2's own PHP (pfsense.go)
	// even when $ARBO_LAB_PFSENSE=0 asks for the Go imitation of its reload;
	// the real gateway is the default.
	PfSense bool
	// Files are extra files for the machines.
	Files []File
	// Upstream is the shared upstream folder (fixtures/upstream, see
	// upstream.go). When set, Up checks every pinned file's sha256 (and
	// refuses on a mismatch) and installs FreeBSD's rc framework on every
	// host at its FreeBSD path, unchanged: /etc/rc.subr,
	// /etc/defaults/rc.conf, /etc/network.subr, /etc/rc.d/*.
	Upstream string
	// RealCode (with Upstream) also installs the upstream programs that
	// the emulator otherwise answers for and makes them what runs:
	// /usr/sbin/service (service.sh), /usr/local/bin/ezjail-admin and
	// /usr/local/etc/rc.d/ezjail, with /bin/sh the POSIX shell they need.
	RealCode bool
	// Emulated keeps Start from switching the real code on: the hosts run
	// the emulator's ezjail-admin and service (the lab before issue 9).
	Emulated bool
	// ProxyExec runs the proxies in a detached process: this command, with
	// "--dir DIR" appended, must call ServeProxies (arbo-lab's hidden
	// `proxy` command). Empty runs them inside this process, which suits
	// tests; the CLI needs them to outlive it.
	ProxyExec []string
	// Delay is added, one way, in each direction on every connection
	// through the machines' proxies, as a WAN would (proxy.go): 0 for
	// none, at most MaxDelay. For benchmarks that count round trips.
	Delay time.Duration

	// afterMachine is a test hook run after each machine's sshd is up; an
	// error makes Up fail there, as a failure midway would.
	afterMachine func(name string) error
}

// Option changes Options, for Start.
type Option func(*Options)

// WithBasejail pre-installs ezjail's basejail on every host.
func WithBasejail() Option { return func(o *Options) { o.Basejail = true } }

// WithGatewayConfig gives the gateway this config.xml instead of the
// factory default.
func WithGatewayConfig(xml []byte) Option { return func(o *Options) { o.GatewayConfig = xml } }

// WithFile puts a file into a machine (machine "" means every machine).
func WithFile(machine, path string, content []byte, mode os.FileMode) Option {
	return func(o *Options) {
		o.Files = append(o.Files, File{Machine: machine, Path: path, Content: content, Mode: mode})
	}
}

// WithBase keeps the machine roots under base instead of DefaultBase.
func WithBase(base string) Option { return func(o *Options) { o.Base = base } }

// WithUpstream installs the pinned upstream files from dir (Options.Upstream).
func WithUpstream(dir string) Option { return func(o *Options) { o.Upstream = dir } }

// WithRealCode makes the upstream programs what runs (Options.RealCode).
func WithRealCode() Option { return func(o *Options) { o.RealCode = true } }

// WithEmulatedHosts keeps the emulator's ezjail-admin and service on the
// hosts instead of the upstream code that Start runs by default.
func WithEmulatedHosts() Option { return func(o *Options) { o.Emulated = true } }

// WithDelay makes every machine's link delay bytes by d each way
// (Options.Delay).
func WithDelay(d time.Duration) Option { return func(o *Options) { o.Delay = d } }

// MaxDelay bounds Options.Delay: a longer one is a mistake, not a WAN.
const MaxDelay = 10 * time.Second

// WithEmuBinary uses a prebuilt lab-emu.
func WithEmuBinary(path string) Option { return func(o *Options) { o.EmuBinary = path } }

// Lab is a running lab.
type Lab struct {
	dir string

	mu       sync.Mutex
	st       *labState
	proxies  proxySet // in-process proxies; nil when a detached process runs them
	machines map[string]*Machine
	downed   bool
}

// Machine is one of the lab's machines.
type Machine struct {
	Name string
	Addr netip.AddrPort // its proxy: where clients connect
	Root string         // its root directory on this box
	lab  *Lab
}

// Requirements reports why the lab cannot run on this box, or nil.
func Requirements() error {
	if os.Geteuid() != 0 {
		return errors.New("the lab needs root (chroot, mknod, mount, sshd)")
	}
	if _, err := os.Stat(sshdPath); err != nil {
		return fmt.Errorf("no %s: install the Debian package openssh-server", sshdPath)
	}
	if _, err := findStatic(busyboxPaths); err != nil {
		return fmt.Errorf("%v: install the Debian package busybox-static", err)
	}
	if _, err := findStatic(bashStaticPaths); err != nil {
		return fmt.Errorf("%v: install the Debian package bash-static", err)
	}
	return nil
}

// TB is the part of testing.TB that Start uses.
type TB interface {
	Helper()
	Skip(args ...any)
	Fatal(args ...any)
	Fatalf(format string, args ...any)
	Errorf(format string, args ...any)
	TempDir() string
	Cleanup(func())
}

// Start brings a lab up for a test and takes it down when the test ends.
// When the lab cannot run here it skips the test, except under CI=true,
// where a skip would hide a broken set-up: then the test fails.
func Start(t TB, c *inventory.Cluster, opts ...Option) *Lab {
	t.Helper()
	if err := Requirements(); err != nil {
		if os.Getenv("CI") == "true" {
			t.Fatal("lab: " + err.Error())
		}
		t.Skip("lab: " + err.Error())
	}
	o := Options{Dir: t.TempDir()}
	for _, opt := range opts {
		opt(&o)
	}
	// The hosts of every lab run FreeBSD's rc framework and ezjail 3.4.2
	// (issue 9) unless a test asks for the emulated ones
	// (WithEmulatedHosts); the upstream folder is then needed.
	if !o.Emulated {
		if o.Upstream == "" {
			dir, why := FindUpstream(".")
			if dir == "" {
				if os.Getenv("CI") == "true" {
					t.Fatal("lab: upstream: " + why)
				}
				t.Skip("lab: upstream: " + why)
			}
			o.Upstream = dir
		}
		o.RealCode = true
	}
	if c.Gateway != nil && usePfSense(o) {
		_, err := PfSenseUpstream()
		if err == nil {
			_, err = hostPHP()
		}
		if err != nil {
			if os.Getenv("CI") == "true" {
				t.Fatal("lab: " + err.Error())
			}
			t.Skip("lab: " + err.Error())
		}
	}
	if o.EmuBinary == "" {
		bin, err := testEmuBinary()
		if err != nil {
			t.Fatal(err)
		}
		o.EmuBinary = bin
	}
	l, err := Up(context.Background(), c, o)
	if err != nil {
		t.Fatalf("lab up: %v", err)
	}
	t.Cleanup(func() {
		if err := l.Down(); err != nil {
			t.Errorf("lab down: %v", err)
		}
	})
	return l
}

var emuOnce struct {
	sync.Once
	path string
	err  error
}

// testEmuBinary builds lab-emu once per test process: every lab of a test
// binary shares it (each machine gets its own copy).
func testEmuBinary() (string, error) {
	emuOnce.Do(func() {
		// One directory per test process, named by its pid: nothing runs at
		// the end of a test binary to remove it, so each build removes those
		// of test processes that are gone.
		old, _ := filepath.Glob(filepath.Join(os.TempDir(), "arbo-lab-emu-*"))
		for _, d := range old {
			pid, err := strconv.Atoi(strings.TrimPrefix(filepath.Base(d), "arbo-lab-emu-"))
			if err == nil && pid != os.Getpid() && syscall.Kill(pid, 0) != nil {
				os.RemoveAll(d)
			}
		}
		dir := filepath.Join(os.TempDir(), "arbo-lab-emu-"+strconv.Itoa(os.Getpid()))
		if err := os.MkdirAll(dir, 0o700); err != nil {
			emuOnce.err = fmt.Errorf("build lab-emu: %w", err)
			return
		}
		emuOnce.path = filepath.Join(dir, emuBinaryName)
		emuOnce.err = buildEmu(emuOnce.path)
	})
	return emuOnce.path, emuOnce.err
}

const emuPackage = "github.com/arbo-project/arbo/internal/lab/cmd/lab-emu"

func buildEmu(out string) error {
	cmd := exec.Command("go", "build", "-o", out, emuPackage)
	cmd.Env = append(os.Environ(), "CGO_ENABLED=0")
	if b, err := cmd.CombinedOutput(); err != nil {
		return fmt.Errorf("build lab-emu (run inside arbo's module, or pass a prebuilt one): %w: %s", err, strings.TrimSpace(string(b)))
	}
	return nil
}

// Up builds and starts one machine for the gateway and one per host of c.
// On failure it takes down whatever it started.
func Up(ctx context.Context, c *inventory.Cluster, o Options) (_ *Lab, err error) {
	if o.Dir == "" {
		return nil, errors.New("lab up: no directory given")
	}
	if o.Delay < 0 || o.Delay > MaxDelay {
		return nil, fmt.Errorf("lab up: delay %v: want 0 to %v", o.Delay, MaxDelay)
	}
	if err := Requirements(); err != nil {
		return nil, fmt.Errorf("lab up: %w", err)
	}
	o.PfSense = usePfSense(o)
	if o.PfSense && c.Gateway != nil {
		// A changed or missing copy of pfSense's code is refused before
		// anything is built.
		if _, err := PfSenseUpstream(); err != nil {
			return nil, fmt.Errorf("lab up: the real pfSense gateway: %w", err)
		}
	}
	dir, err := filepath.Abs(o.Dir)
	if err != nil {
		return nil, fmt.Errorf("lab up: %w", err)
	}
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return nil, fmt.Errorf("lab up: %w", err)
	}
	unlock, err := lockDir(dir)
	if err != nil {
		return nil, err
	}
	defer unlock()
	if _, err := os.Stat(filepath.Join(dir, stateFile)); err == nil {
		return nil, fmt.Errorf("lab up: %s already holds a lab; run `arbo-lab down --dir %s` first", dir, dir)
	}
	names := c.Machines()
	if len(names) == 0 {
		return nil, errors.New("lab up: the topology has no gateway and no host")
	}
	if len(names) > 250 {
		return nil, errors.New("lab up: more than 250 machines")
	}
	for _, n := range names {
		if !safeName.MatchString(n) {
			return nil, fmt.Errorf("lab up: machine name %q cannot name a directory", n)
		}
	}
	var upstream []File
	if o.Upstream != "" {
		if upstream, err = UpstreamFiles(o.Upstream); err != nil {
			return nil, fmt.Errorf("lab up: %w", err)
		}
	} else if o.RealCode {
		return nil, errors.New("lab up: the real code needs the upstream folder (--upstream)")
	}
	base := o.Base
	if base == "" {
		base = DefaultBase
	}
	if base, err = filepath.Abs(base); err != nil {
		return nil, fmt.Errorf("lab up: %w", err)
	}
	if err := os.MkdirAll(base, 0o755); err != nil {
		return nil, fmt.Errorf("lab up: %w", err)
	}
	if err := checkChrootPath(base); err != nil {
		return nil, fmt.Errorf("lab up: %w", err)
	}
	id, idb, err := randomID()
	if err != nil {
		return nil, err
	}
	st := &labState{ID: id, Home: filepath.Join(base, id), Delay: o.Delay}
	l := &Lab{dir: dir, st: st}
	if err := writeState(dir, st); err != nil {
		return nil, err
	}
	defer func() {
		if err != nil {
			if derr := l.down(); derr != nil {
				err = fmt.Errorf("%w (and taking the lab down: %v)", err, derr)
			}
		}
	}()
	if err := os.Mkdir(st.Home, 0o755); err != nil {
		return nil, fmt.Errorf("lab up: %w", err)
	}
	if err := os.Chmod(st.Home, 0o755); err != nil {
		return nil, fmt.Errorf("lab up: %w", err)
	}
	clientKey, err := newKey(filepath.Join(dir, keyFile), "arbo-lab-"+id)
	if err != nil {
		return nil, err
	}
	authKeys := filepath.Join(st.Home, authorizedKeys)
	if err := writeFileAtomic(authKeys, ssh.MarshalAuthorizedKey(clientKey), 0o644); err != nil {
		return nil, err
	}
	emuBin := o.EmuBinary
	if emuBin == "" {
		emuBin = filepath.Join(st.Home, emuBinaryName)
		if err := buildEmu(emuBin); err != nil {
			return nil, err
		}
	}

	// Each machine's own loopback address, 127.X.Y.(i+1), with X.Y drawn
	// from the lab id so that two labs on one box rarely share addresses
	// (they still work if they do: each lab has its own ports and files).
	netX, netY := 64+int(idb[0])%128, int(idb[1])
	listeners := make([]net.Listener, 0, len(names))
	defer func() {
		for _, ln := range listeners {
			if ln != nil && l.proxies == nil {
				ln.Close()
			}
		}
	}()
	for i, name := range names {
		if err := ctx.Err(); err != nil {
			return nil, err
		}
		kind := kindHost
		if c.IsGateway(name) {
			kind = kindGateway
		}
		addr := c.MachineSSH(name).Address
		if addr == "" {
			addr = name
		}
		m := machineState{Name: name, Kind: kind, Address: addr,
			Root: filepath.Join(st.Home, name), State: filepath.Join(dir, "state", name),
			PfSense: o.PfSense && kind == kindGateway}
		ip := fmt.Sprintf("127.%d.%d.%d", netX, netY, i+1)
		ln, err := net.Listen("tcp", ip+":22")
		if err != nil {
			// Port 22 is busy on every address when a system sshd listens on
			// 0.0.0.0:22; ssh_config carries the port then.
			if ln, err = net.Listen("tcp", ip+":0"); err != nil {
				return nil, fmt.Errorf("lab up: machine %s: proxy: %w", name, err)
			}
		}
		listeners = append(listeners, ln)
		m.Proxy = ln.Addr().String()
		if m.SSHDPort, err = freePort("127.0.0.1"); err != nil {
			return nil, err
		}
		st.Machines = append(st.Machines, m)
		mp := &st.Machines[len(st.Machines)-1]
		if err := writeState(dir, st); err != nil {
			return nil, err
		}
		gwConf := o.GatewayConfig
		if kind == kindGateway && gwConf == nil {
			if gwConf, err = installedGatewayConfig(defaultGatewayConfig, c.Gateway); err != nil {
				return nil, fmt.Errorf("lab up: machine %s: %w", name, err)
			}
		}
		spec := machineSpec{name: name, kind: kind, domain: c.Domain, ifaces: ifaces(c, name),
			root: m.Root, emuBinary: emuBin, gatewayConfig: gwConf,
			basejail: o.Basejail && kind == kindHost, realCode: o.RealCode && kind == kindHost,
			pfsense: o.PfSense && kind == kindGateway}
		if kind == kindHost {
			for _, f := range upstream {
				if o.RealCode || !emulatedPaths[f.Path] {
					spec.files = append(spec.files, f)
				}
			}
		}
		for _, f := range o.Files {
			if f.Machine == "" || f.Machine == name {
				spec.files = append(spec.files, f)
			}
		}
		if err := spec.build(); err != nil {
			return nil, fmt.Errorf("lab up: %w", err)
		}
		if err := os.MkdirAll(m.State, 0o700); err != nil {
			return nil, fmt.Errorf("lab up: %w", err)
		}
		if _, err := newKey(filepath.Join(m.State, hostKeyName), "root@"+name); err != nil {
			return nil, err
		}
		err = startSSHDOnFreePort(mp, authKeys, kind == kindGateway)
		if werr := writeState(dir, st); err == nil {
			err = werr
		}
		if err != nil {
			return nil, fmt.Errorf("lab up: %w", err)
		}
		if o.afterMachine != nil {
			if err := o.afterMachine(name); err != nil {
				return nil, fmt.Errorf("lab up: %w", err)
			}
		}
	}

	if len(o.ProxyExec) == 0 {
		l.proxies = proxySet{}
		for i, m := range st.Machines {
			p := newProxy(m.Name, m.Root, fmt.Sprintf("127.0.0.1:%d", m.SSHDPort), listeners[i])
			p.delay = st.Delay
			l.proxies[m.Name] = p
			p.start()
		}
	} else if err := l.spawnProxies(o.ProxyExec, listeners); err != nil {
		return nil, err
	}
	if err := l.writeClientFiles(); err != nil {
		return nil, err
	}
	if err := l.checkLogins(); err != nil {
		return nil, fmt.Errorf("lab up: %w", err)
	}
	l.index()
	return l, nil
}

// ifaces lists a machine's interfaces for /etc/lab-machine.
func ifaces(c *inventory.Cluster, name string) []string {
	var out []string
	if c.IsGateway(name) {
		for _, gi := range c.Gateway.Interfaces {
			bits := gi.Prefix.Bits()
			if bits < 0 {
				bits = gi.Address.BitLen()
			}
			out = append(out, fmt.Sprintf("%s %s/%d", gi.Device, gi.Address, bits))
		}
		return out
	}
	if h := c.Host(name); h != nil {
		for _, hi := range h.Interfaces {
			bits := hi.Address.BitLen()
			if n := c.Network(hi.Network); n != nil {
				bits = n.CIDR.Bits()
			}
			out = append(out, fmt.Sprintf("%s %s/%d", hi.Device, hi.Address, bits))
		}
	}
	return out
}

// spawnProxies starts the detached proxy process. It inherits the listeners
// (fd 4 on, in machine order) and the control socket (fd 3), so that they
// accept connections from the moment Up returns, without a race on ports.
func (l *Lab) spawnProxies(argv []string, listeners []net.Listener) error {
	st := l.st
	st.Control = filepath.Join(st.Home, controlSocket)
	ctl, err := net.ListenUnix("unix", &net.UnixAddr{Name: st.Control, Net: "unix"})
	if err != nil {
		return fmt.Errorf("lab up: control socket: %w", err)
	}
	// The proxy process serves the socket from now on: closing this
	// process's copy must not unlink it.
	ctl.SetUnlinkOnClose(false)
	defer ctl.Close()
	var files []*os.File
	defer func() {
		for _, f := range files {
			f.Close()
		}
	}()
	for _, ln := range append([]net.Listener{ctl}, listeners...) {
		f, err := ln.(interface{ File() (*os.File, error) }).File()
		if err != nil {
			return fmt.Errorf("lab up: proxy listener: %w", err)
		}
		files = append(files, f)
	}
	cmd := exec.Command(argv[0], append(append([]string{}, argv[1:]...), "--dir", l.dir)...)
	cmd.ExtraFiles = files
	cmd.Env = append(os.Environ(), proxyFDsEnv+"="+strconv.Itoa(len(files)))
	pid, err := startDetached(cmd, filepath.Join(l.dir, proxyLogFile))
	if err != nil {
		return fmt.Errorf("lab up: proxy: %w", err)
	}
	st.ProxyPID = pid
	return writeState(l.dir, st)
}

const proxyFDsEnv = "ARBO_LAB_PROXY_FDS"

// ServeProxies is the detached proxy process (arbo-lab's hidden `proxy`
// command): it serves the listeners it inherited until SIGTERM.
func ServeProxies(dir string) error {
	st, err := readState(dir)
	if err != nil {
		return err
	}
	n, err := strconv.Atoi(os.Getenv(proxyFDsEnv))
	if err != nil || n != len(st.Machines)+1 {
		return fmt.Errorf("proxy: expected %d inherited listeners, got %q", len(st.Machines)+1, os.Getenv(proxyFDsEnv))
	}
	lns := make([]net.Listener, n)
	for i := range lns {
		f := os.NewFile(uintptr(3+i), "listener")
		ln, err := net.FileListener(f)
		f.Close()
		if err != nil {
			return fmt.Errorf("proxy: listener %d: %w", i, err)
		}
		lns[i] = ln
	}
	ps := proxySet{}
	for i, m := range st.Machines {
		p := newProxy(m.Name, m.Root, fmt.Sprintf("127.0.0.1:%d", m.SSHDPort), lns[i+1])
		p.delay = st.Delay
		ps[m.Name] = p
		p.start()
	}
	go ps.serveControl(lns[0])
	sig := make(chan os.Signal, 1)
	signal.Notify(sig, syscall.SIGTERM, syscall.SIGINT, syscall.SIGHUP)
	<-sig
	lns[0].Close()
	ps.Close()
	return nil
}

// writeClientFiles writes ssh_config, known_hosts and machines.
func (l *Lab) writeClientFiles() error {
	var cfg, kh, ms strings.Builder
	fmt.Fprintf(&cfg, "# arbo-lab %s: ssh -F %s ADDRESS\n", l.st.ID, quoteConf(filepath.Join(l.dir, sshConfigFile)))
	for _, m := range l.st.Machines {
		host, port, err := net.SplitHostPort(m.Proxy)
		if err != nil {
			return fmt.Errorf("lab: machine %s: %w", m.Name, err)
		}
		pats := m.Address
		if m.Name != m.Address {
			pats += " " + m.Name
		}
		fmt.Fprintf(&cfg, "\nHost %s\n", pats)
		fmt.Fprintf(&cfg, "  HostName %s\n  Port %s\n  User root\n", host, port)
		fmt.Fprintf(&cfg, "  IdentityFile %s\n  IdentitiesOnly yes\n", quoteConf(filepath.Join(l.dir, keyFile)))
		fmt.Fprintf(&cfg, "  UserKnownHostsFile %s\n  StrictHostKeyChecking yes\n", quoteConf(filepath.Join(l.dir, knownHostsFile)))
		key, err := readPublicKey(filepath.Join(m.State, hostKeyName+".pub"))
		if err != nil {
			return err
		}
		kh.WriteString(knownhosts.Line([]string{knownhosts.Normalize(m.Proxy)}, key) + "\n")
		fmt.Fprintf(&ms, "machine %s root %s\n", m.Name, m.Root)
	}
	for name, content := range map[string]string{sshConfigFile: cfg.String(), knownHostsFile: kh.String(), machinesFile: ms.String()} {
		if err := writeFileAtomic(filepath.Join(l.dir, name), []byte(content), 0o644); err != nil {
			return err
		}
	}
	return nil
}

// checkLogins logs in to every machine through its proxy, verifying its
// host key, so that a lab that cannot serve arbo fails at up, with sshd's
// own words, instead of in the middle of a test.
func (l *Lab) checkLogins() error {
	signer, err := readSigner(filepath.Join(l.dir, keyFile))
	if err != nil {
		return err
	}
	hk, err := knownhosts.New(filepath.Join(l.dir, knownHostsFile))
	if err != nil {
		return fmt.Errorf("known_hosts: %w", err)
	}
	errs := make([]error, len(l.st.Machines))
	var wg sync.WaitGroup
	for i, m := range l.st.Machines {
		wg.Add(1)
		go func() {
			defer wg.Done()
			cfg := &ssh.ClientConfig{User: "root", Auth: []ssh.AuthMethod{ssh.PublicKeys(signer)},
				HostKeyCallback: hk, Timeout: 10 * time.Second}
			cl, err := ssh.Dial("tcp", m.Proxy, cfg)
			if err == nil {
				var s *ssh.Session
				if s, err = cl.NewSession(); err == nil {
					var out []byte
					if out, err = s.CombinedOutput("true"); err != nil {
						err = fmt.Errorf("%w: %s", err, out)
					}
				}
				cl.Close()
			}
			if err != nil {
				errs[i] = fmt.Errorf("machine %s: log in through %s: %w%s", m.Name, m.Proxy, err, logTail(m.sshdLogPath()))
			}
		}()
	}
	wg.Wait()
	return errors.Join(errs...)
}

func (l *Lab) index() {
	l.machines = map[string]*Machine{}
	for _, m := range l.st.Machines {
		ap, _ := netip.ParseAddrPort(m.Proxy)
		l.machines[m.Name] = &Machine{Name: m.Name, Addr: ap, Root: m.Root, lab: l}
	}
}

// Open attaches to the lab that `arbo-lab up` started in dir, for the fault
// commands.
func Open(dir string) (*Lab, error) {
	dir, err := filepath.Abs(dir)
	if err != nil {
		return nil, err
	}
	st, err := readState(dir)
	if err != nil {
		if errors.Is(err, os.ErrNotExist) {
			return nil, fmt.Errorf("%s: %w", dir, errNoLab)
		}
		return nil, err
	}
	l := &Lab{dir: dir, st: st}
	l.index()
	return l, nil
}

// Dir is the lab's directory.
func (l *Lab) Dir() string { return l.dir }

// SSHConfig is the path of the lab's ssh_config.
func (l *Lab) SSHConfig() string { return filepath.Join(l.dir, sshConfigFile) }

// KnownHosts is the path of the lab's known_hosts.
func (l *Lab) KnownHosts() string { return filepath.Join(l.dir, knownHostsFile) }

// KeyFile is the path of the private key the machines accept for root.
func (l *Lab) KeyFile() string { return filepath.Join(l.dir, keyFile) }

// Machine returns the named machine, or nil.
func (l *Lab) Machine(name string) *Machine { return l.machines[name] }

// Machines lists the machines, gateway first.
func (l *Lab) Machines() []*Machine {
	var out []*Machine
	for _, m := range l.st.Machines {
		out = append(out, l.machines[m.Name])
	}
	return out
}

// Down stops every process of the lab and removes every root. It is safe to
// call twice.
func (l *Lab) Down() error {
	unlock, err := lockDir(l.dir)
	if err != nil {
		return err
	}
	defer unlock()
	return l.down()
}

// DownDir takes down the lab in dir, also after a failed up; a directory
// without a lab is not an error.
func DownDir(dir string) error {
	l, err := Open(dir)
	if err != nil {
		if errors.Is(err, errNoLab) {
			return nil
		}
		return err
	}
	return l.Down()
}

func (l *Lab) down() error {
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.downed {
		return nil
	}
	st := l.st
	if cur, err := readState(l.dir); err == nil && cur.ID == st.ID {
		st = cur // a fault command may have restarted an sshd since
	}
	var errs []error
	if l.proxies != nil {
		l.proxies.Close()
	}
	if st.ProxyPID != 0 {
		errs = append(errs, stop(st.ProxyPID, l.dir))
	}
	for i := range st.Machines {
		m := &st.Machines[i]
		if err := stopSSHDAndSessions(m); err != nil {
			errs = append(errs, err)
		}
	}
	if st.Home != "" {
		killUnder(st.Home)
		if err := unmountUnder(st.Home); err != nil {
			errs = append(errs, err)
		} else if err := removeHome(st); err != nil {
			errs = append(errs, err)
		}
	}
	if err := errors.Join(errs...); err != nil {
		return fmt.Errorf("lab down: %w", err)
	}
	for _, f := range []string{stateFile, sshConfigFile, knownHostsFile, machinesFile} {
		_ = os.Remove(filepath.Join(l.dir, f))
	}
	l.downed = true
	return nil
}

// removeHome deletes BASE/<id>, after checking it is one: a corrupt state
// file must never make down remove something else.
func removeHome(st *labState) error {
	home := filepath.Clean(st.Home)
	if st.ID == "" || filepath.Base(home) != st.ID || !filepath.IsAbs(home) || filepath.Dir(home) == "/" {
		return fmt.Errorf("refusing to remove %q: not a lab home", st.Home)
	}
	if err := os.RemoveAll(home); err != nil {
		return fmt.Errorf("remove %s: %w", home, err)
	}
	return nil
}

// Calls returns the emulated commands run on the machine, in order.
func (m *Machine) Calls() ([]emu.Call, error) { return emu.ReadCalls(m.Root) }

func (m *Machine) state() *machineState {
	for i := range m.lab.st.Machines {
		if m.lab.st.Machines[i].Name == m.Name {
			return &m.lab.st.Machines[i]
		}
	}
	return nil
}

// SSHDLog returns what the machine's sshd has logged so far.
func (m *Machine) SSHDLog() string {
	b, _ := os.ReadFile(m.state().sshdLogPath())
	return string(b)
}
