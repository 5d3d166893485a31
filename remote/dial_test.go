package remote

import (
	"context"
	"errors"
	"fmt"
	"net"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"golang.org/x/crypto/ssh"
	"golang.org/x/crypto/ssh/agent"
)

// fixture is a server, a login key it accepts and a Target that reaches it.
type fixture struct {
	srv *testServer
	key client
	dir string
	tgt Target
}

func newFixture(t testing.TB, keyTypes ...string) *fixture {
	t.Helper()
	srv := newTestServer(t, keyTypes...)
	dir := t.TempDir()
	key := newClientKey(t, dir, "id_test", "")
	srv.Authorize(key.Signer.PublicKey())
	var keys []ssh.PublicKey
	for _, k := range srv.hostKeys {
		keys = append(keys, k.PublicKey())
	}
	kh := knownHosts(t, dir, srv.Addr(), keys...)
	return &fixture{srv: srv, key: key, dir: dir, tgt: Target{
		Machine:         "m1",
		Host:            srv.Host,
		Port:            srv.Port,
		User:            "root",
		IdentityFiles:   []string{key.File},
		KnownHostsFiles: []string{kh},
		Timeout:         5 * time.Second,
		AgentSocket:     "none",
	}}
}

func dial(t *testing.T, tgt Target) *Conn {
	t.Helper()
	c, err := Dial(context.Background(), tgt)
	if err != nil {
		t.Fatalf("Dial: %v", err)
	}
	t.Cleanup(func() { c.Close() })
	return c
}

func TestDialVerifiesHostKeyAndRuns(t *testing.T) {
	f := newFixture(t)
	c := dial(t, f.tgt)
	res, err := c.Run(context.Background(), []string{"pwd"}, RunOpts{})
	if err != nil {
		t.Fatal(err)
	}
	if got := strings.TrimSpace(string(res.Stdout)); got != f.srv.Dir {
		t.Errorf("pwd = %q, want %q", got, f.srv.Dir)
	}
}

func TestUnknownHostKeyRefused(t *testing.T) {
	f := newFixture(t)
	if err := os.WriteFile(f.tgt.KnownHostsFiles[0], nil, 0o600); err != nil {
		t.Fatal(err)
	}
	_, err := Dial(context.Background(), f.tgt)
	var hke *HostKeyError
	if !errors.As(err, &hke) || hke.Changed {
		t.Fatalf("want an unknown-host-key error, got %v", err)
	}
	fp := ssh.FingerprintSHA256(f.srv.HostKey(ssh.KeyAlgoED25519))
	for _, want := range []string{"machine m1", "ssh-ed25519", fp, "ssh-keyscan -p " + fmt.Sprint(f.srv.Port) + " -t ed25519 127.0.0.1 >> " + f.tgt.KnownHostsFiles[0], "--trust-new-hosts"} {
		if !strings.Contains(err.Error(), want) {
			t.Errorf("error lacks %q:\n%v", want, err)
		}
	}
	if b, _ := os.ReadFile(f.tgt.KnownHostsFiles[0]); len(b) != 0 {
		t.Errorf("known_hosts was written without --trust-new-hosts: %q", b)
	}
}

func TestChangedHostKeyRefusedEvenWithTrustNewHosts(t *testing.T) {
	for _, trust := range []bool{false, true} {
		t.Run(fmt.Sprint("trust=", trust), func(t *testing.T) {
			f := newFixture(t)
			_, other := newEd25519(t)
			kh := knownHosts(t, f.dir, f.srv.Addr(), other.PublicKey())
			before, _ := os.ReadFile(kh)
			f.tgt.TrustNewHosts = trust
			_, err := Dial(context.Background(), f.tgt)
			var hke *HostKeyError
			if !errors.As(err, &hke) || !hke.Changed {
				t.Fatalf("want a changed-host-key error, got %v", err)
			}
			fp := ssh.FingerprintSHA256(f.srv.HostKey(ssh.KeyAlgoED25519))
			for _, want := range []string{"REMOTE HOST IDENTIFICATION HAS CHANGED", fp, "never replaces a changed key", "machine m1"} {
				if !strings.Contains(err.Error(), want) {
					t.Errorf("error lacks %q:\n%v", want, err)
				}
			}
			after, _ := os.ReadFile(kh)
			if string(before) != string(after) {
				t.Errorf("known_hosts changed:\n%s\n->\n%s", before, after)
			}
		})
	}
}

func TestTrustNewHostsRecordsUnknownKey(t *testing.T) {
	f := newFixture(t)
	kh := filepath.Join(f.dir, "new", "known_hosts") // neither file nor directory exists
	f.tgt.KnownHostsFiles = []string{kh}
	f.tgt.TrustNewHosts = true

	// Several machines dial at once: the key must be recorded once.
	var wg sync.WaitGroup
	errs := make([]error, 6)
	for i := range errs {
		wg.Add(1)
		go func() {
			defer wg.Done()
			c, err := Dial(context.Background(), f.tgt)
			if err == nil {
				c.Close()
			}
			errs[i] = err
		}()
	}
	wg.Wait()
	for _, err := range errs {
		if err != nil {
			t.Fatal(err)
		}
	}
	b, err := os.ReadFile(kh)
	if err != nil {
		t.Fatal(err)
	}
	want := lineFor(f.srv.Addr(), f.srv.HostKey(ssh.KeyAlgoED25519)) + "\n"
	if string(b) != want {
		t.Errorf("known_hosts = %q, want %q", b, want)
	}
	if !strings.HasPrefix(want, "[127.0.0.1]:") {
		t.Errorf("name not normalised as OpenSSH does: %q", want)
	}
	st, _ := os.Stat(kh)
	if st.Mode().Perm() != 0o600 {
		t.Errorf("known_hosts mode %o, want 600", st.Mode().Perm())
	}
	// And now it is known without trusting.
	f.tgt.TrustNewHosts = false
	dial(t, f.tgt)
}

func TestHostWithSeveralKeyTypes(t *testing.T) {
	// The server offers ed25519 and rsa; known_hosts has only rsa. Without
	// HostKeyAlgorithms from known_hosts, x/crypto would ask for ed25519
	// and call the key changed.
	f := newFixture(t, "ed25519", "rsa")
	knownHosts(t, f.dir, f.srv.Addr(), f.srv.HostKey(ssh.KeyAlgoRSA))
	dial(t, f.tgt)
}

func TestHostKeyAlias(t *testing.T) {
	f := newFixture(t)
	knownHosts(t, f.dir, "gate.example", f.srv.HostKey(ssh.KeyAlgoED25519))
	if _, err := Dial(context.Background(), f.tgt); err == nil {
		t.Fatal("dial without the alias should not find the key")
	}
	f.tgt.HostKeyAlias = "gate.example"
	dial(t, f.tgt)
}

func TestAgentAuth(t *testing.T) {
	f := newFixture(t)
	kr := agent.NewKeyring()
	agentKey := newClientKey(t, f.dir, "id_agent", "secret")
	if err := kr.Add(agent.AddedKey{PrivateKey: agentKey.Priv}); err != nil {
		t.Fatal(err)
	}
	sock := filepath.Join(shortTempDir(t), "agent.sock")
	ln, err := net.Listen("unix", sock)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { ln.Close() })
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			go agent.ServeAgent(kr, c)
		}
	}()
	t.Setenv("SSH_AUTH_SOCK", sock)
	f.srv.Authorize(agentKey.Signer.PublicKey())
	f.tgt.AgentSocket = ""

	t.Run("agent only", func(t *testing.T) {
		tg := f.tgt
		tg.IdentityFiles = nil
		dial(t, tg)
	})
	t.Run("encrypted identity file held by the agent", func(t *testing.T) {
		tg := f.tgt
		tg.IdentityFiles = []string{agentKey.File}
		dial(t, tg)
	})
}

func shortTempDir(t *testing.T) string {
	// Unix socket paths are limited to about 100 bytes; t.TempDir can be longer.
	d, err := os.MkdirTemp("", "arbo")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { os.RemoveAll(d) })
	return d
}

func TestEncryptedKeyWithoutAgent(t *testing.T) {
	f := newFixture(t)
	enc := newClientKey(t, f.dir, "id_locked", "secret")
	f.srv.Authorize(enc.Signer.PublicKey())
	f.tgt.IdentityFiles = []string{enc.File}
	_, err := Dial(context.Background(), f.tgt)
	want := fmt.Sprintf("identity file %s is encrypted: load it into ssh-agent (ssh-add %s)", enc.File, enc.File)
	var eke *EncryptedKeyError
	if !errors.As(err, &eke) || !strings.Contains(err.Error(), want) {
		t.Fatalf("got %v, want %q", err, want)
	}
	if n := f.srv.Conns.Load(); n != 0 {
		t.Errorf("%d connections made with a key that cannot be used", n)
	}
}

func TestAuthFailureFailsFast(t *testing.T) {
	f := newFixture(t)
	stranger := newClientKey(t, f.dir, "id_stranger", "")
	f.tgt.IdentityFiles = []string{stranger.File}
	_, err := Dial(context.Background(), f.tgt)
	if err == nil || !strings.Contains(err.Error(), "refused every key") || !strings.Contains(err.Error(), "does not retry") {
		t.Fatalf("want an authentication failure, got %v", err)
	}
	if n := f.srv.Conns.Load(); n != 1 {
		t.Errorf("%d connections, want 1 (no retry)", n)
	}
	if n := f.srv.AuthAttempts.Load(); n != 1 {
		t.Errorf("%d key attempts, want 1 (one key, offered once)", n)
	}
}

func TestJumpHost(t *testing.T) {
	jump := newFixture(t)
	dst := newTestServer(t)
	dst.Authorize(jump.key.Signer.PublicKey())
	kh := knownHosts(t, jump.dir, jump.srv.Addr(), jump.srv.HostKey(ssh.KeyAlgoED25519))
	f, err := os.OpenFile(kh, os.O_APPEND|os.O_WRONLY, 0)
	if err != nil {
		t.Fatal(err)
	}
	fmt.Fprintln(f, lineFor(dst.Addr(), dst.HostKey(ssh.KeyAlgoED25519)))
	f.Close()

	jt := jump.tgt
	jt.Machine = "gate"
	tgt := jump.tgt
	tgt.Machine, tgt.Host, tgt.Port, tgt.Jump = "host1", dst.Host, dst.Port, &jt
	c := dial(t, tgt)
	res, err := c.Run(context.Background(), []string{"pwd"}, RunOpts{})
	if err != nil {
		t.Fatal(err)
	}
	if got := strings.TrimSpace(string(res.Stdout)); got != dst.Dir {
		t.Errorf("ran in %q, want the far server's %q", got, dst.Dir)
	}
	if jump.srv.Forwards.Load() != 1 || dst.Conns.Load() != 1 {
		t.Errorf("forwards through the jump host %d, connections to the target %d: want 1 and 1", jump.srv.Forwards.Load(), dst.Conns.Load())
	}
	c.Close()
	select {
	case <-c.jump.Done():
	case <-time.After(5 * time.Second):
		t.Error("closing the connection left the jump connection open")
	}

	// An unknown key on the far side is reported for that machine.
	_, other := newEd25519(t)
	knownHosts(t, jump.dir, jump.srv.Addr(), jump.srv.HostKey(ssh.KeyAlgoED25519))
	f2, _ := os.OpenFile(kh, os.O_APPEND|os.O_WRONLY, 0)
	fmt.Fprintln(f2, lineFor(dst.Addr(), other.PublicKey()))
	f2.Close()
	_, err = Dial(context.Background(), tgt)
	var hke *HostKeyError
	if !errors.As(err, &hke) || hke.Machine != "host1" || !hke.Changed {
		t.Errorf("want host1's changed key, got %v", err)
	}
}

func TestKeepaliveDetectsDeadPeer(t *testing.T) {
	f := newFixture(t)
	bh := newBlackhole(t, f.srv.Addr())
	f.tgt.Port = bh.Port()
	knownHosts(t, f.dir, net.JoinHostPort(f.srv.Host, fmt.Sprint(bh.Port())), f.srv.HostKey(ssh.KeyAlgoED25519))
	f.tgt.KeepaliveInterval = 50 * time.Millisecond
	f.tgt.KeepaliveMax = 3
	c := dial(t, f.tgt)
	if _, err := c.Run(context.Background(), []string{"true"}, RunOpts{}); err != nil {
		t.Fatal(err)
	}
	bh.frozen.Store(true)
	select {
	case <-c.Done():
	case <-time.After(30 * time.Second): // a safety net, not a performance bound
		t.Fatal("a dead peer was not detected")
	}
	if err := c.Err(); err == nil || !strings.Contains(err.Error(), "keepalive") {
		t.Errorf("Err() = %v, want the keepalive reason", err)
	}
	if _, err := c.Run(context.Background(), []string{"true"}, RunOpts{}); err == nil {
		t.Error("Run on a closed connection succeeded")
	}
}

func TestKeepaliveKeepsLiveConnection(t *testing.T) {
	f := newFixture(t)
	f.tgt.KeepaliveInterval = 20 * time.Millisecond
	f.tgt.KeepaliveMax = 2
	c := dial(t, f.tgt)
	time.Sleep(200 * time.Millisecond) // ten rounds of keepalives, all answered
	select {
	case <-c.Done():
		t.Fatalf("a live connection was closed: %v", c.Err())
	default:
	}
}

func TestHandshakeTimeout(t *testing.T) {
	addr := silentListener(t)
	host, port, _ := net.SplitHostPort(addr)
	f := newFixture(t)
	f.tgt.Host = host
	fmt.Sscan(port, &f.tgt.Port)
	f.tgt.Timeout = 200 * time.Millisecond
	_, err := Dial(context.Background(), f.tgt)
	if !errors.Is(err, os.ErrDeadlineExceeded) || !strings.Contains(err.Error(), "handshake did not finish") {
		t.Fatalf("want a handshake timeout, got %v", err)
	}
}

func TestContextCancelClosesConnection(t *testing.T) {
	f := newFixture(t)
	ctx, cancel := context.WithCancel(context.Background())
	c, err := Dial(ctx, f.tgt)
	if err != nil {
		t.Fatal(err)
	}
	cancel()
	select {
	case <-c.Done():
	case <-time.After(10 * time.Second):
		t.Fatal("cancelling the context left the connection open")
	}
	if !errors.Is(c.Err(), context.Canceled) {
		t.Errorf("Err() = %v, want context.Canceled", c.Err())
	}
}

func TestConnectRefused(t *testing.T) {
	ln, _ := net.Listen("tcp", "127.0.0.1:0")
	port := ln.Addr().(*net.TCPAddr).Port
	ln.Close()
	f := newFixture(t)
	f.tgt.Port = port
	_, err := Dial(context.Background(), f.tgt)
	if err == nil || !strings.Contains(err.Error(), "machine m1") || !strings.Contains(err.Error(), "sshd") {
		t.Fatalf("got %v", err)
	}
}
