package remote

import (
	"errors"
	"fmt"
	"io"
	"time"

	"github.com/pkg/sftp"
)

// DefaultReadTimeout bounds each SFTP request of a read (a stat, an open, one
// 32 KiB chunk): a remote read that makes no progress for this long fails.
// The keepalives catch a peer that is gone; this catches a peer that is
// alive but whose sftp-server is stuck: OpenSSH's sftp-server answers one
// request at a time, so an open() of a FIFO a jail swapped in after arbo's
// stat, or a hung file system, would stall every later request too.
const DefaultReadTimeout = 60 * time.Second

// ErrReadTimeout says a remote read made no progress within its timeout.
var ErrReadTimeout = errors.New("no answer")

func (c *Conn) readTimeout() time.Duration {
	if d := c.Target.ReadTimeout; d > 0 {
		return d
	}
	return DefaultReadTimeout
}

// bounded runs one SFTP request with the read timeout. On a timeout the
// SFTP session is closed (which ends the request and every other one in
// flight on it) and dropped, so that the next operation starts a fresh
// sftp-server instead of queueing behind the stuck one.
func (c *Conn) bounded(s *sftp.Client, f func() error) error {
	d := c.readTimeout()
	done := make(chan error, 1)
	go func() { done <- f() }()
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case err := <-done:
		return err
	case <-t.C:
		c.dropSFTP(s)
		return fmt.Errorf("%w within %s (a FIFO or device swapped in, or a stalled file system): the SFTP session was closed", ErrReadTimeout, d)
	}
}

// dropSFTP closes s and forgets it if it is still the connection's client.
func (c *Conn) dropSFTP(s *sftp.Client) {
	c.sftpMu.Lock()
	if c.sftp == s {
		c.sftp = nil
	}
	c.sftpMu.Unlock()
	s.Close()
}

// boundedReader reads through bounded, one request at a time.
type boundedReader struct {
	c *Conn
	s *sftp.Client
	r io.Reader
}

func (b boundedReader) Read(p []byte) (n int, err error) {
	err = b.c.bounded(b.s, func() error {
		var e error
		n, e = b.r.Read(p)
		return e
	})
	return n, err
}

// startSFTP opens the sftp subsystem on a session of its own, bounded by the
// read timeout: an sftp-server that never says hello cannot hang arbo
// either (sftp.NewClient would wait for its version forever).
func (c *Conn) startSFTP() (*sftp.Client, error) {
	sess, err := c.client.NewSession()
	if err != nil {
		return nil, err
	}
	if err := sess.RequestSubsystem("sftp"); err != nil {
		sess.Close()
		return nil, err
	}
	w, err := sess.StdinPipe()
	if err != nil {
		sess.Close()
		return nil, err
	}
	r, err := sess.StdoutPipe()
	if err != nil {
		sess.Close()
		return nil, err
	}
	type result struct {
		s   *sftp.Client
		err error
	}
	done := make(chan result, 1)
	go func() {
		// skipBanner (files.go): on pfSense the sftp-server runs through
		// root's login shell, which may print its rc.local banner first.
		s, err := sftp.NewClientPipe(skipBanner(r), w, sftp.UseConcurrentReads(true), sftp.UseConcurrentWrites(false))
		done <- result{s, err}
	}()
	d := c.readTimeout()
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case res := <-done:
		if res.err != nil {
			sess.Close()
			return nil, res.err
		}
		// The client's Close closes w; the session goes with the
		// connection, or when the server ends the subsystem.
		go func() { _ = res.s.Wait(); sess.Close() }()
		return res.s, nil
	case <-t.C:
		sess.Close()
		return nil, fmt.Errorf("%w within %s from the sftp-server", ErrReadTimeout, d)
	}
}
