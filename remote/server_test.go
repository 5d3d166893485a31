package remote

import (
	"crypto/ed25519"
	"crypto/rand"
	"crypto/rsa"
	"encoding/pem"
	"errors"
	"io"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"sync"
	"sync/atomic"
	"testing"

	"github.com/pkg/sftp"
	"github.com/skeema/knownhosts"
	"golang.org/x/crypto/ssh"
)

// testServer is an in-process SSH server on 127.0.0.1: public-key login,
// the sftp subsystem on the real file system, exec through /bin/sh -c in a
// temporary directory, and direct-tcpip forwarding (for jump hosts).
type testServer struct {
	t        testing.TB
	ln       net.Listener
	Host     string
	Port     int
	Dir      string
	hostKeys []ssh.Signer

	mu         sync.Mutex
	authorized []ssh.PublicKey
	raw        []net.Conn

	AuthAttempts atomic.Int32 // public-key callbacks (queries and signatures)
	Conns        atomic.Int32 // TCP connections accepted
	Forwards     atomic.Int32 // direct-tcpip channels opened
	open         atomic.Int32 // session channels open now
	MaxOpen      atomic.Int32 // the most session channels open at once

	// CutSFTPAfter, when > 0, closes the TCP connection once the client has
	// sent that many bytes on an sftp channel: a cable pulled mid-write.
	CutSFTPAfter atomic.Int64
	// StallSFTP, while set, swallows every request sent on an sftp channel
	// without answering: an sftp-server stuck in an open() of a FIFO.
	StallSFTP atomic.Bool
	// Banner, when set, is written to stdout before every command and
	// before the SFTP server starts, as pfSense's /etc/rc.initial prints
	// ">>> Launching rc.local in background..." when /etc/rc.local exists.
	Banner atomic.Value // string
}

// staller drops what the client sends while its server's StallSFTP is set.
type staller struct {
	io.ReadWriteCloser
	s *testServer
}

func (r *staller) Read(p []byte) (int, error) {
	for {
		n, err := r.ReadWriteCloser.Read(p)
		if err != nil || !r.s.StallSFTP.Load() {
			return n, err
		}
	}
}

func (s *testServer) banner() string {
	b, _ := s.Banner.Load().(string)
	return b
}

var (
	rsaOnce sync.Once
	rsaKey  *rsa.PrivateKey
)

// testRSAKey is generated once: RSA generation is slow.
func testRSAKey(t testing.TB) *rsa.PrivateKey {
	rsaOnce.Do(func() {
		k, err := rsa.GenerateKey(rand.Reader, 2048)
		if err != nil {
			panic(err)
		}
		rsaKey = k
	})
	return rsaKey
}

func newEd25519(t testing.TB) (ed25519.PrivateKey, ssh.Signer) {
	t.Helper()
	_, priv, err := ed25519.GenerateKey(rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	s, err := ssh.NewSignerFromKey(priv)
	if err != nil {
		t.Fatal(err)
	}
	return priv, s
}

// newTestServer starts a server with the given host keys ("ed25519", "rsa").
func newTestServer(t testing.TB, keyTypes ...string) *testServer {
	t.Helper()
	if len(keyTypes) == 0 {
		keyTypes = []string{"ed25519"}
	}
	s := &testServer{t: t, Dir: t.TempDir()}
	for _, kt := range keyTypes {
		switch kt {
		case "ed25519":
			_, sg := newEd25519(t)
			s.hostKeys = append(s.hostKeys, sg)
		case "rsa":
			sg, err := ssh.NewSignerFromKey(testRSAKey(t))
			if err != nil {
				t.Fatal(err)
			}
			s.hostKeys = append(s.hostKeys, sg)
		default:
			t.Fatalf("key type %q", kt)
		}
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	s.ln = ln
	a := ln.Addr().(*net.TCPAddr)
	s.Host, s.Port = a.IP.String(), a.Port
	t.Cleanup(s.Close)
	go s.serve()
	return s
}

func (s *testServer) Addr() string { return net.JoinHostPort(s.Host, strconv.Itoa(s.Port)) }

// HostKey is the server's host key of the given type.
func (s *testServer) HostKey(keyType string) ssh.PublicKey {
	for _, k := range s.hostKeys {
		if k.PublicKey().Type() == keyType {
			return k.PublicKey()
		}
	}
	s.t.Fatalf("no %s host key", keyType)
	return nil
}

func (s *testServer) Authorize(k ssh.PublicKey) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.authorized = append(s.authorized, k)
}

func (s *testServer) Close() {
	s.ln.Close()
	s.mu.Lock()
	defer s.mu.Unlock()
	for _, c := range s.raw {
		c.Close()
	}
}

// DropConnections closes every connection from the server's side.
func (s *testServer) DropConnections() {
	s.mu.Lock()
	defer s.mu.Unlock()
	for _, c := range s.raw {
		c.Close()
	}
	s.raw = nil
}

func (s *testServer) serve() {
	for {
		c, err := s.ln.Accept()
		if err != nil {
			return
		}
		s.Conns.Add(1)
		s.mu.Lock()
		s.raw = append(s.raw, c)
		s.mu.Unlock()
		go s.handle(c)
	}
}

func (s *testServer) handle(c net.Conn) {
	defer c.Close()
	cfg := &ssh.ServerConfig{
		PublicKeyCallback: func(_ ssh.ConnMetadata, key ssh.PublicKey) (*ssh.Permissions, error) {
			s.AuthAttempts.Add(1)
			s.mu.Lock()
			defer s.mu.Unlock()
			for _, k := range s.authorized {
				if string(k.Marshal()) == string(key.Marshal()) {
					return nil, nil
				}
			}
			return nil, errors.New("not authorized")
		},
	}
	for _, k := range s.hostKeys {
		cfg.AddHostKey(k)
	}
	sc, chans, reqs, err := ssh.NewServerConn(c, cfg)
	if err != nil {
		return
	}
	defer sc.Close()
	go ssh.DiscardRequests(reqs) // answers keepalives with "failure", like OpenSSH
	for nc := range chans {
		switch nc.ChannelType() {
		case "session":
			ch, chReqs, err := nc.Accept()
			if err != nil {
				continue
			}
			go s.session(c, ch, chReqs)
		case "direct-tcpip":
			go s.forward(nc)
		default:
			nc.Reject(ssh.UnknownChannelType, "no")
		}
	}
}

func (s *testServer) session(raw net.Conn, ch ssh.Channel, reqs <-chan *ssh.Request) {
	defer ch.Close()
	// Counted down before the channel closes, so that the client cannot
	// open its next session while this one still counts.
	n := s.open.Add(1)
	defer s.open.Add(-1)
	for {
		m := s.MaxOpen.Load()
		if n <= m || s.MaxOpen.CompareAndSwap(m, n) {
			break
		}
	}
	for r := range reqs {
		switch r.Type {
		case "subsystem":
			var p struct{ Name string }
			if ssh.Unmarshal(r.Payload, &p) != nil || p.Name != "sftp" {
				r.Reply(false, nil)
				continue
			}
			r.Reply(true, nil)
			if b := s.banner(); b != "" {
				_, _ = io.WriteString(ch, b)
			}
			var rw io.ReadWriteCloser = ch
			if n := s.CutSFTPAfter.Load(); n > 0 {
				rw = &cutter{ReadWriteCloser: ch, left: n, raw: raw}
			}
			rw = &staller{ReadWriteCloser: rw, s: s}
			srv, err := sftp.NewServer(rw)
			if err != nil {
				return
			}
			_ = srv.Serve()
			return
		case "exec":
			var p struct{ Command string }
			if ssh.Unmarshal(r.Payload, &p) != nil {
				r.Reply(false, nil)
				continue
			}
			r.Reply(true, nil)
			if b := s.banner(); b != "" {
				_, _ = io.WriteString(ch, b)
			}
			cmd := exec.Command("/bin/sh", "-c", p.Command)
			cmd.Dir = s.Dir
			cmd.Stdin = ch
			cmd.Stdout = ch
			cmd.Stderr = ch.Stderr()
			status := 0
			if err := cmd.Run(); err != nil {
				var ee *exec.ExitError
				if errors.As(err, &ee) {
					status = ee.ExitCode()
				} else {
					status = 127
				}
			}
			ch.SendRequest("exit-status", false, ssh.Marshal(struct{ Status uint32 }{uint32(status)}))
			return
		default:
			if r.WantReply {
				r.Reply(false, nil)
			}
		}
	}
}

// cutter closes the TCP connection after the client sent `left` bytes.
type cutter struct {
	io.ReadWriteCloser
	left int64
	raw  net.Conn
}

func (c *cutter) Read(b []byte) (int, error) {
	n, err := c.ReadWriteCloser.Read(b)
	c.left -= int64(n)
	if c.left <= 0 {
		c.raw.Close()
		return 0, io.EOF
	}
	return n, err
}

func (s *testServer) forward(nc ssh.NewChannel) {
	var p struct {
		Host     string
		Port     uint32
		OrigHost string
		OrigPort uint32
	}
	if err := ssh.Unmarshal(nc.ExtraData(), &p); err != nil {
		nc.Reject(ssh.ConnectionFailed, "bad payload")
		return
	}
	ip := net.ParseIP(p.Host)
	if ip == nil || !ip.IsLoopback() { // tests reach loopback only
		nc.Reject(ssh.Prohibited, "loopback only")
		return
	}
	dst, err := net.Dial("tcp", net.JoinHostPort(p.Host, strconv.Itoa(int(p.Port))))
	if err != nil {
		nc.Reject(ssh.ConnectionFailed, err.Error())
		return
	}
	ch, reqs, err := nc.Accept()
	if err != nil {
		dst.Close()
		return
	}
	s.Forwards.Add(1)
	go ssh.DiscardRequests(reqs)
	go func() {
		io.Copy(dst, ch)
		dst.(*net.TCPConn).CloseWrite()
	}()
	io.Copy(ch, dst)
	ch.CloseWrite()
	ch.Close()
	dst.Close()
}

// client is a login key for tests, written as an identity file.
type client struct {
	Signer ssh.Signer
	Priv   ed25519.PrivateKey
	File   string
}

func newClientKey(t testing.TB, dir, name, passphrase string) client {
	t.Helper()
	var priv ed25519.PrivateKey
	var sg ssh.Signer
	var blk *pem.Block
	var err error
	if passphrase == "" {
		priv, sg = newEd25519(t)
		blk, err = ssh.MarshalPrivateKey(priv, "test")
	} else {
		// Encrypting runs bcrypt's KDF, seconds under -race: the key is
		// made once, in testdata (passphrase "secret").
		if passphrase != "secret" {
			t.Fatalf("testdata's encrypted key has the passphrase \"secret\"")
		}
		enc, rerr := os.ReadFile("testdata/id_encrypted")
		plain, perr := os.ReadFile("testdata/id_encrypted.plain")
		if rerr != nil || perr != nil {
			t.Fatal(rerr, perr)
		}
		raw, kerr := ssh.ParseRawPrivateKey(plain)
		if kerr != nil {
			t.Fatal(kerr)
		}
		priv = *raw.(*ed25519.PrivateKey)
		if sg, err = ssh.NewSignerFromKey(priv); err != nil {
			t.Fatal(err)
		}
		blk, _ = pem.Decode(enc)
	}
	if err != nil {
		t.Fatal(err)
	}
	f := filepath.Join(dir, name)
	if err := os.WriteFile(f, pem.EncodeToMemory(blk), 0o600); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(f+".pub", ssh.MarshalAuthorizedKey(sg.PublicKey()), 0o644); err != nil {
		t.Fatal(err)
	}
	return client{Signer: sg, Priv: priv, File: f}
}

// knownHosts writes a known_hosts file with one line per key for name.
func knownHosts(t testing.TB, dir, name string, keys ...ssh.PublicKey) string {
	t.Helper()
	f := filepath.Join(dir, "known_hosts")
	var b []byte
	for _, k := range keys {
		b = append(b, []byte(lineFor(name, k)+"\n")...)
	}
	if err := os.WriteFile(f, b, 0o600); err != nil {
		t.Fatal(err)
	}
	return f
}

func lineFor(name string, k ssh.PublicKey) string {
	return knownhosts.Line([]string{name}, k)
}

// silentListener accepts TCP connections and never says a word.
func silentListener(t *testing.T) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	var mu sync.Mutex
	var conns []net.Conn
	t.Cleanup(func() {
		ln.Close()
		mu.Lock()
		defer mu.Unlock()
		for _, c := range conns {
			c.Close()
		}
	})
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			mu.Lock()
			conns = append(conns, c)
			mu.Unlock()
		}
	}()
	return ln.Addr().String()
}

// blackhole is a TCP proxy that, once frozen, drops everything in both
// directions while keeping the connections open: a peer that died without
// a FIN or RST (a pulled cable, a firewall dropping state).
type blackhole struct {
	ln     net.Listener
	frozen atomic.Bool
}

func newBlackhole(t *testing.T, target string) *blackhole {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	b := &blackhole{ln: ln}
	var mu sync.Mutex
	var conns []net.Conn
	t.Cleanup(func() {
		ln.Close()
		mu.Lock()
		defer mu.Unlock()
		for _, c := range conns {
			c.Close()
		}
	})
	pipe := func(dst, src net.Conn) {
		buf := make([]byte, 32<<10)
		for {
			n, err := src.Read(buf)
			if n > 0 && !b.frozen.Load() {
				if _, werr := dst.Write(buf[:n]); werr != nil {
					return
				}
			}
			if err != nil {
				return
			}
		}
	}
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			d, err := net.Dial("tcp", target)
			if err != nil {
				c.Close()
				continue
			}
			mu.Lock()
			conns = append(conns, c, d)
			mu.Unlock()
			go pipe(d, c)
			go pipe(c, d)
		}
	}()
	return b
}

func (b *blackhole) Port() int { return b.ln.Addr().(*net.TCPAddr).Port }
