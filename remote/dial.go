package remote

import (
	"context"
	"errors"
	"fmt"
	"net"
	"os"
	"strings"
	"sync"
	"time"

	"github.com/pkg/sftp"
	"golang.org/x/crypto/ssh"
)

// maxSessions bounds the command sessions open at once on one connection.
// OpenSSH's MaxSessions defaults to 10 per connection, and the SFTP
// subsystem takes one more: 4 leaves headroom.
const maxSessions = 4

// Conn is the one SSH connection to a machine, reused for every file and
// command. It is safe for concurrent use.
type Conn struct {
	Target Target

	client *ssh.Client
	jump   *Conn // closed with this one

	sftpMu sync.Mutex
	sftp   *sftp.Client

	sessions chan struct{}

	done      chan struct{}
	closeOnce sync.Once
	closeErr  error
	stopCtx   func() bool
	reason    error // why the connection was closed from our side (keepalive, context)
	reasonMu  sync.Mutex
}

// Dial connects to t (through its jump hosts), checks the host key against
// known_hosts and logs in. ctx bounds the dial, and cancelling it later
// closes the connection.
func Dial(ctx context.Context, t Target) (*Conn, error) {
	if t.Timeout <= 0 {
		t.Timeout = DefaultTimeout
	}
	if t.Port == 0 {
		t.Port = DefaultPort
	}
	if len(t.KnownHostsFiles) == 0 {
		return nil, fmt.Errorf("machine %s: no known_hosts file: arbo always checks host keys", t.Machine)
	}

	// Keys and known_hosts first: a locked key or an unreadable known_hosts
	// fails before anything reaches the network.
	hk, err := newHostKeyChecker(t)
	if err != nil {
		return nil, err
	}
	auth, closeAgent, err := authMethods(t)
	if err != nil {
		return nil, err
	}
	defer closeAgent()

	var jump *Conn
	var raw net.Conn
	if t.Jump != nil {
		jump, err = Dial(ctx, *t.Jump)
		if err != nil {
			return nil, fmt.Errorf("machine %s: via jump host: %w", t.Machine, err)
		}
		raw, err = dialThrough(ctx, jump, t)
	} else {
		d := net.Dialer{Timeout: t.Timeout}
		raw, err = d.DialContext(ctx, "tcp", t.Addr())
		if err != nil {
			err = fmt.Errorf("machine %s: connecting to %s: %w: check the address and that sshd runs there", t.Machine, t.Addr(), err)
		}
	}
	if err != nil {
		if jump != nil {
			jump.Close()
		}
		return nil, err
	}

	c, err := handshake(ctx, raw, t, hk, auth)
	if err != nil {
		if jump != nil {
			jump.Close()
		}
		return nil, err
	}
	conn := &Conn{
		Target:   t,
		client:   c,
		jump:     jump,
		sessions: make(chan struct{}, maxSessions),
		done:     make(chan struct{}),
	}
	go func() {
		_ = c.Wait()
		conn.Close()
	}()
	conn.stopCtx = context.AfterFunc(ctx, func() {
		conn.closeBecause(fmt.Errorf("machine %s: %w", t.Machine, context.Cause(ctx)))
	})
	if t.KeepaliveInterval >= 0 {
		go conn.keepalive()
	}
	return conn, nil
}

// dialThrough opens a direct-tcpip channel from the jump host to t. Client.Dial
// has no deadline of its own, so the wait is bounded here.
func dialThrough(ctx context.Context, jump *Conn, t Target) (net.Conn, error) {
	type res struct {
		c   net.Conn
		err error
	}
	ch := make(chan res, 1)
	go func() {
		c, err := jump.client.Dial("tcp", t.Addr())
		ch <- res{c, err}
	}()
	timer := time.NewTimer(t.Timeout)
	defer timer.Stop()
	var err error
	select {
	case r := <-ch:
		if r.err == nil {
			return r.c, nil
		}
		err = r.err
	case <-timer.C:
		err = fmt.Errorf("no answer within %s: %w", t.Timeout, os.ErrDeadlineExceeded)
	case <-ctx.Done():
		err = context.Cause(ctx)
	}
	go func() { // a late success must not leak a channel
		if r := <-ch; r.c != nil {
			r.c.Close()
		}
	}()
	return nil, fmt.Errorf("machine %s: connecting to %s through %s: %w: check that the jump host can reach it", t.Machine, t.Addr(), jump.Target.Machine, err)
}

// handshake runs the SSH handshake on raw with a deadline: x/crypto's
// ClientConfig.Timeout covers only the TCP connect, and a peer that accepts
// but never speaks (a wedged sshd, a port forward to nowhere) would hang us
// forever. The deadline closes raw, which works for a direct-tcpip channel
// too (those have no SetDeadline).
func handshake(ctx context.Context, raw net.Conn, t Target, hk *hostKeyChecker, auth []ssh.AuthMethod) (*ssh.Client, error) {
	cfg := &ssh.ClientConfig{
		User:              t.User,
		Auth:              auth,
		HostKeyCallback:   hk.callback,
		HostKeyAlgorithms: hk.algorithms(),
		Timeout:           t.Timeout,
	}

	var mu sync.Mutex
	var why error
	stop := make(chan struct{})
	go func() {
		timer := time.NewTimer(t.Timeout)
		defer timer.Stop()
		select {
		case <-stop:
			return
		case <-timer.C:
			mu.Lock()
			why = fmt.Errorf("the SSH handshake did not finish within %s: %w", t.Timeout, os.ErrDeadlineExceeded)
			mu.Unlock()
		case <-ctx.Done():
			mu.Lock()
			why = context.Cause(ctx)
			mu.Unlock()
		}
		raw.Close()
	}()
	sc, chans, reqs, err := ssh.NewClientConn(raw, t.Addr(), cfg)
	close(stop)
	if err != nil {
		raw.Close()
		mu.Lock()
		w := why
		mu.Unlock()
		switch {
		case w != nil:
			return nil, fmt.Errorf("machine %s: %s: %w: is an SSH server listening there?", t.Machine, t.Addr(), w)
		case hk.err != nil:
			return nil, hk.err
		case strings.Contains(err.Error(), "unable to authenticate"):
			return nil, fmt.Errorf("machine %s: %s@%s refused every key offered (%w); arbo does not retry: check the user, "+
				"that the key is in the machine's authorized_keys, and `ssh-add -l`", t.Machine, t.User, t.Addr(), err)
		case strings.Contains(err.Error(), "no common algorithm for host key"):
			return nil, fmt.Errorf("machine %s: the host offers no key of a type that %s holds for %s (%w): "+
				"if the host was reinstalled with new key types, verify its fingerprint and update known_hosts",
				t.Machine, t.KnownHostsFiles[0], t.KnownHostsName(), err)
		}
		return nil, fmt.Errorf("machine %s: SSH to %s: %w", t.Machine, t.Addr(), err)
	}
	return ssh.NewClient(sc, chans, reqs), nil
}

// keepalive asks the server for a reply every KeepaliveInterval: x/crypto
// has no client keepalive, and a peer that vanished (a pulled cable, a
// firewall dropping state) would otherwise leave every operation hanging.
// After KeepaliveMax unanswered requests in a row the connection is closed.
func (c *Conn) keepalive() {
	interval := c.Target.KeepaliveInterval
	if interval == 0 {
		interval = DefaultKeepaliveInterval
	}
	max := c.Target.KeepaliveMax
	if max <= 0 {
		max = DefaultKeepaliveMax
	}
	ticker := time.NewTicker(interval)
	defer ticker.Stop()
	missed := 0
	for {
		select {
		case <-c.done:
			return
		case <-ticker.C:
		}
		reply := make(chan error, 1)
		go func() {
			// Any answer, even "unknown request", proves the peer alive.
			_, _, err := c.client.SendRequest("keepalive@openssh.com", true, nil)
			reply <- err
		}()
		t := time.NewTimer(interval)
		select {
		case err := <-reply:
			if err != nil {
				missed = max // the transport is gone
			} else {
				missed = 0
			}
		case <-t.C:
			missed++
		case <-c.done:
			t.Stop()
			return
		}
		t.Stop()
		if missed >= max {
			c.closeBecause(fmt.Errorf("machine %s: no answer to %d keepalives %s apart: connection closed", c.Target.Machine, max, interval))
			return
		}
	}
}

// Done is closed when the connection has ended, for whatever reason.
func (c *Conn) Done() <-chan struct{} { return c.done }

// Err says why the connection was closed from arbo's side (a dead peer, a
// cancelled context), or nil.
func (c *Conn) Err() error {
	c.reasonMu.Lock()
	defer c.reasonMu.Unlock()
	return c.reason
}

func (c *Conn) closeBecause(err error) {
	c.reasonMu.Lock()
	if c.reason == nil {
		c.reason = err
	}
	c.reasonMu.Unlock()
	c.Close()
}

// Close ends the connection, its SFTP session and its jump hosts.
func (c *Conn) Close() error {
	c.closeOnce.Do(func() {
		if c.stopCtx != nil {
			c.stopCtx()
		}
		// The client first: that unblocks an SFTP open in progress, which
		// holds sftpMu.
		err := c.client.Close()
		if err != nil && !errors.Is(err, net.ErrClosed) {
			c.closeErr = err
		}
		c.sftpMu.Lock()
		if c.sftp != nil {
			c.sftp.Close()
		}
		c.sftpMu.Unlock()
		if c.jump != nil {
			c.jump.Close()
		}
		close(c.done)
	})
	return c.closeErr
}

// wrapErr names the machine, and why the connection is gone when it is.
func (c *Conn) wrapErr(op string, err error) error {
	if why := c.Err(); why != nil {
		return fmt.Errorf("%s: %w (%v)", op, err, why)
	}
	return fmt.Errorf("machine %s: %s: %w", c.Target.Machine, op, err)
}
