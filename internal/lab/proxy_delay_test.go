//go:build linux

package lab

import (
	"bytes"
	"context"
	"crypto/rand"
	"io"
	"net"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// echoServer stands in for sshd: it sends back what it reads, and counts
// what it read in total on got (one value per connection).
func echoServer(t *testing.T) (addr string, got <-chan int64) {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { ln.Close() })
	counts := make(chan int64, 16)
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			go func() {
				defer c.Close()
				n, _ := io.Copy(c, c)
				closeWrite(c)
				counts <- n
			}()
		}
	}()
	return ln.Addr().String(), counts
}

// delayedProxy starts a proxy with one-way delay d in front of target.
func delayedProxy(t *testing.T, target string, d time.Duration) *proxy {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	p := newProxy("m", t.TempDir(), target, ln)
	p.delay = d
	p.start()
	t.Cleanup(p.Close)
	return p
}

// TestProxyDelay measures ping-pongs through a delayed proxy. Only lower
// bounds are asserted: a loaded machine may make anything slower, never
// faster.
func TestProxyDelay(t *testing.T) {
	t.Parallel()
	const d = 20 * time.Millisecond
	target, _ := echoServer(t)
	p := delayedProxy(t, target, d)

	start := time.Now()
	c, err := net.Dial("tcp", p.ln.Addr().String())
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	_ = c.SetDeadline(time.Now().Add(30 * time.Second))
	one := []byte{'x'}
	pingPong := func(i int) time.Duration {
		t0 := time.Now()
		one[0] = byte('a' + i)
		if _, err := c.Write(one); err != nil {
			t.Fatalf("ping %d: %v", i, err)
		}
		var back [1]byte
		if _, err := io.ReadFull(c, back[:]); err != nil {
			t.Fatalf("pong %d: %v", i, err)
		}
		if back[0] != one[0] {
			t.Fatalf("pong %d: got %q, want %q", i, back[0], one[0])
		}
		return time.Since(t0)
	}
	pingPong(0)
	// A new connection: the TCP handshake's round trip, then the ping's.
	if got := time.Since(start); got < 4*d {
		t.Errorf("connect and first ping-pong took %v, want at least %v (handshake + one round trip)", got, 4*d)
	}
	const n = 5
	var total time.Duration
	for i := 1; i <= n; i++ {
		rt := pingPong(i)
		if rt < 2*d {
			t.Errorf("ping-pong %d took %v, want at least 2×%v", i, rt, d)
		}
		total += rt
	}
	if total < n*2*d {
		t.Errorf("%d ping-pongs took %v, want at least %v", n, total, n*2*d)
	}

	// Bytes in bulk still arrive whole and in order, and a half-close
	// still reaches the other side (the echo server ends the stream).
	data := make([]byte, 1<<20)
	if _, err := rand.Read(data); err != nil {
		t.Fatal(err)
	}
	errc := make(chan error, 1)
	go func() {
		_, err := c.Write(data)
		closeWrite(c)
		errc <- err
	}()
	back, err := io.ReadAll(c)
	if err != nil {
		t.Fatal(err)
	}
	if err := <-errc; err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(back, data) {
		t.Errorf("echoed %d bytes, want the %d sent, in order (equal: %v)", len(back), len(data), bytes.Equal(back, data))
	}
}

// TestProxyDelayFaults: cuts and the cut-after budget work on a delayed
// link as on a direct one.
func TestProxyDelayFaults(t *testing.T) {
	t.Parallel()
	const d = 10 * time.Millisecond
	target, counts := echoServer(t)
	p := delayedProxy(t, target, d)

	// cut-after: exactly the budget reaches the machine, then the cut.
	p.CutAfterBytes(50)
	c, err := net.Dial("tcp", p.ln.Addr().String())
	if err != nil {
		t.Fatal(err)
	}
	_ = c.SetDeadline(time.Now().Add(30 * time.Second))
	if _, err := c.Write(make([]byte, 100)); err != nil {
		t.Fatal(err)
	}
	back, _ := io.ReadAll(c)
	c.Close()
	select {
	case n := <-counts:
		if n != 50 {
			t.Errorf("the machine read %d bytes, want the 50 of the budget", n)
		}
	case <-time.After(30 * time.Second):
		t.Fatal("the cut connection never ended at the machine")
	}
	if len(back) > 50 {
		t.Errorf("echoed %d bytes through a connection cut after 50", len(back))
	}

	// cut: a connection still in its handshake is cut too.
	waitConns := func(want int) {
		t.Helper()
		deadline := time.Now().Add(10 * time.Second)
		for {
			p.mu.Lock()
			n := len(p.conns)
			p.mu.Unlock()
			if n == want {
				return
			}
			if time.Now().After(deadline) {
				t.Fatalf("the proxy holds %d connections, want %d", n, want)
			}
			time.Sleep(time.Millisecond)
		}
	}
	waitConns(0)
	c, err = net.Dial("tcp", p.ln.Addr().String())
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	_ = c.SetDeadline(time.Now().Add(30 * time.Second))
	waitConns(1)
	p.CutConnections()
	waitConns(0)
	if _, err := c.Write([]byte("late")); err == nil {
		var b [1]byte
		if n, err := c.Read(b[:]); err == nil {
			t.Errorf("read %d bytes from a cut connection", n)
		}
	}
}

func TestUpRefusesBadDelay(t *testing.T) {
	t.Parallel()
	for _, d := range []time.Duration{-time.Millisecond, MaxDelay + 1} {
		dir := t.TempDir()
		_, err := Up(context.Background(), nil, Options{Dir: dir, Delay: d})
		if err == nil || !strings.Contains(err.Error(), "delay") {
			t.Errorf("delay %v: error %v, want one about the delay", d, err)
		}
		if _, serr := os.Stat(filepath.Join(dir, stateFile)); serr == nil {
			t.Errorf("delay %v: a lab state was written", d)
		}
	}
}
