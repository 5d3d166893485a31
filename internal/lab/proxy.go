//go:build linux

package lab

import (
	"bufio"
	"errors"
	"fmt"
	"io"
	"net"
	"os"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/arbo-project/arbo/internal/lab/emu"
)

// proxy is a machine's network card: every client connection to the machine
// goes through it to the machine's sshd. It decides, per new connection,
// whether the emulated firewall lets it in, and it cuts connections on
// demand.
type proxy struct {
	name   string
	root   string // machine root: the firewall and flush files live there
	target string // sshd's 127.0.0.1:port
	ln     net.Listener
	// delay is the link's one-way latency (Options.Delay): 0 passes bytes
	// on at once.
	delay time.Duration

	mu     sync.Mutex
	conns  map[*pconn]struct{}
	budget int64 // client→server bytes left before every connection is cut; <0: disarmed
	closed bool

	done chan struct{}
	wg   sync.WaitGroup
}

type pconn struct {
	client net.Conn

	mu     sync.Mutex
	server net.Conn // nil until dialled (a delayed connection dials late)
	closed bool
}

func (c *pconn) close() {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.closed {
		return
	}
	c.closed = true
	c.client.Close()
	if c.server != nil {
		c.server.Close()
	}
}

// attach gives c its server connection, or closes server when c was cut
// meanwhile.
func (c *pconn) attach(server net.Conn) bool {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.closed {
		server.Close()
		return false
	}
	c.server = server
	return true
}

// flushPoll is how often the proxy looks at the pf state-flush counter.
const flushPoll = 50 * time.Millisecond

func newProxy(name, root, target string, ln net.Listener) *proxy {
	return &proxy{name: name, root: root, target: target, ln: ln,
		conns: map[*pconn]struct{}{}, budget: -1, done: make(chan struct{})}
}

func (p *proxy) start() {
	p.wg.Add(2)
	go p.accept()
	go p.watchFlush()
}

// blocked reads the emulated firewall's verdict, written by the emulator's
// pfctl (or by a test). A missing or unreadable file means open: a machine
// without pf lets SSH in.
func (p *proxy) blocked() bool {
	b, err := os.ReadFile(emu.Path(p.root, emu.FirewallFile))
	return err == nil && strings.TrimSpace(string(b)) == "blocked"
}

func (p *proxy) flushCount() string {
	b, _ := os.ReadFile(emu.Path(p.root, emu.FlushFile))
	return strings.TrimSpace(string(b))
}

func (p *proxy) accept() {
	defer p.wg.Done()
	for {
		c, err := p.ln.Accept()
		if err != nil {
			if errors.Is(err, net.ErrClosed) {
				return
			}
			time.Sleep(10 * time.Millisecond)
			continue
		}
		if p.blocked() {
			// pf would drop it; closing at once with a reset gives the client
			// the same "cannot connect" without a long timeout.
			reset(c)
			continue
		}
		go p.handle(c)
	}
}

func reset(c net.Conn) {
	if tc, ok := c.(*net.TCPConn); ok {
		_ = tc.SetLinger(0)
	}
	c.Close()
}

func (p *proxy) handle(client net.Conn) {
	if p.delay > 0 {
		p.handleDelayed(client, time.Now())
		return
	}
	server, err := net.DialTimeout("tcp", p.target, 5*time.Second)
	if err != nil {
		// sshd is stopped: the machine refuses the connection.
		reset(client)
		return
	}
	c := &pconn{client: client, server: server}
	p.mu.Lock()
	if p.closed {
		p.mu.Unlock()
		c.close()
		return
	}
	p.conns[c] = struct{}{}
	p.mu.Unlock()

	var wg sync.WaitGroup
	wg.Add(2)
	go func() { // client → server, where cut-after-bytes counts
		defer wg.Done()
		buf := make([]byte, 32*1024)
		for {
			n, err := client.Read(buf)
			if n > 0 {
				allowed, cut := p.take(int64(n))
				if allowed > 0 {
					if _, werr := server.Write(buf[:allowed]); werr != nil {
						break
					}
				}
				if cut {
					p.CutConnections()
					break
				}
			}
			if err != nil {
				break
			}
		}
		closeWrite(server)
	}()
	go func() {
		defer wg.Done()
		_, _ = io.Copy(client, server)
		closeWrite(client)
	}()
	wg.Wait()
	c.close()
	p.mu.Lock()
	delete(p.conns, c)
	p.mu.Unlock()
}

func closeWrite(c net.Conn) {
	if tc, ok := c.(*net.TCPConn); ok {
		_ = tc.CloseWrite()
	}
}

// The delayed link (Options.Delay) holds every byte for the one-way delay d
// in each direction, in order: a reader per direction stamps each chunk with
// the time it is due and a writer hands it on then. It adds latency, not a
// bandwidth limit: a queue holds up to delayQueue chunks in flight per
// direction. A new connection costs what TCP's handshake costs over such a
// link: the client's SYN and the SYN-ACK (2d) before the client may send,
// and its first bytes reach the server with the ACK (3d), when the server
// accepts; the proxy dials sshd then, so that sshd's greeting reaches the
// client at 4d, as it would over the network.
const delayQueue = 1024

// chunk is bytes in flight on a delayed link; nil data is the end of the
// stream (FIN).
type chunk struct {
	data []byte
	due  time.Time
}

func (p *proxy) handleDelayed(client net.Conn, t0 time.Time) {
	d := p.delay
	c := &pconn{client: client}
	p.mu.Lock()
	if p.closed {
		p.mu.Unlock()
		client.Close()
		return
	}
	p.conns[c] = struct{}{}
	p.mu.Unlock()
	up := make(chan chunk, delayQueue) // client → server
	go readDelayed(client, up, d, t0.Add(2*d))
	defer func() {
		c.close()
		for range up { // the reader ends now that the connection is closed
		}
		p.mu.Lock()
		delete(p.conns, c)
		p.mu.Unlock()
	}()
	if !sleepUntil(t0.Add(3*d), p.done) {
		return
	}
	server, err := net.DialTimeout("tcp", p.target, 5*time.Second)
	if err != nil {
		// sshd is stopped: the machine refuses the connection (the reset
		// takes its one-way trip too).
		sleepUntil(time.Now().Add(d), p.done)
		reset(client)
		return
	}
	if !c.attach(server) {
		return
	}
	down := make(chan chunk, delayQueue) // server → client
	go readDelayed(server, down, d, time.Time{})

	var wg sync.WaitGroup
	wg.Add(2)
	go func() { // client → server, where cut-after-bytes counts
		defer wg.Done()
		p.writeDelayed(c, server, up, true)
	}()
	go func() {
		defer wg.Done()
		p.writeDelayed(c, client, down, false)
	}()
	wg.Wait()
}

// readDelayed reads from src into q, each chunk due d after it was read but
// never before notBefore+d, then an end-of-stream chunk, and closes q.
func readDelayed(src net.Conn, q chan<- chunk, d time.Duration, notBefore time.Time) {
	defer close(q)
	buf := make([]byte, 32*1024)
	for {
		n, err := src.Read(buf)
		now := time.Now()
		if now.Before(notBefore) {
			now = notBefore
		}
		if n > 0 {
			q <- chunk{data: append([]byte(nil), buf[:n]...), due: now.Add(d)}
		}
		if err != nil {
			q <- chunk{due: now.Add(d)}
			return
		}
	}
}

// writeDelayed writes q's chunks to dst as they fall due, then half-closes
// dst. After a failed write it closes the connection and drains q, so that
// the reader ends.
func (p *proxy) writeDelayed(c *pconn, dst net.Conn, q <-chan chunk, budget bool) {
	failed := false
	for ch := range q {
		if failed {
			continue
		}
		if !sleepUntil(ch.due, p.done) {
			failed = true
			c.close()
			continue
		}
		if ch.data == nil {
			closeWrite(dst)
			continue
		}
		allowed, cut := int64(len(ch.data)), false
		if budget {
			allowed, cut = p.take(allowed)
		}
		if allowed > 0 {
			if _, err := dst.Write(ch.data[:allowed]); err != nil {
				failed = true
				c.close()
				continue
			}
		}
		if cut {
			p.CutConnections()
			failed = true
		}
	}
}

// sleepUntil waits until t; false when done closed first.
func sleepUntil(t time.Time, done <-chan struct{}) bool {
	d := time.Until(t)
	if d <= 0 {
		return true
	}
	tm := time.NewTimer(d)
	defer tm.Stop()
	select {
	case <-tm.C:
		return true
	case <-done:
		return false
	}
}

// take accounts n client bytes against the cut-after budget: how many of
// them may pass, and whether the budget is now spent.
func (p *proxy) take(n int64) (int64, bool) {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.budget < 0 {
		return n, false
	}
	if n < p.budget {
		p.budget -= n
		return n, false
	}
	allowed := p.budget
	p.budget = -1 // one shot
	return allowed, true
}

// watchFlush drops existing connections when pf's states are flushed while
// the firewall blocks SSH (`service pf restart`): the states that let them
// through are gone and the new rules would not let them in again.
func (p *proxy) watchFlush() {
	defer p.wg.Done()
	last := p.flushCount()
	t := time.NewTicker(flushPoll)
	defer t.Stop()
	for {
		select {
		case <-p.done:
			return
		case <-t.C:
		}
		cur := p.flushCount()
		if cur != last {
			last = cur
			if p.blocked() {
				p.CutConnections()
			}
		}
	}
}

// CutConnections closes every current connection: clients see EOF.
func (p *proxy) CutConnections() {
	p.mu.Lock()
	cs := make([]*pconn, 0, len(p.conns))
	for c := range p.conns {
		cs = append(cs, c)
	}
	p.mu.Unlock()
	for _, c := range cs {
		c.close()
	}
}

// CutAfterBytes cuts every connection once n more bytes have gone from
// clients to the machine, wherever they land (an upload, a command's input).
func (p *proxy) CutAfterBytes(n int64) {
	if n < 0 {
		n = 0
	}
	p.mu.Lock()
	p.budget = n
	p.mu.Unlock()
}

func (p *proxy) Close() {
	p.mu.Lock()
	if p.closed {
		p.mu.Unlock()
		return
	}
	p.closed = true
	p.mu.Unlock()
	close(p.done)
	p.ln.Close()
	p.CutConnections()
	p.wg.Wait()
}

// proxySet is a lab's proxies, by machine name.
type proxySet map[string]*proxy

func (ps proxySet) get(name string) (*proxy, error) {
	p := ps[name]
	if p == nil {
		return nil, fmt.Errorf("no machine %q in this lab", name)
	}
	return p, nil
}

func (ps proxySet) Close() {
	for _, p := range ps {
		p.Close()
	}
}

// do runs one control request ("cut NAME", "cut-after NAME N"), the protocol
// of the detached proxy process's control socket.
func (ps proxySet) do(req string) error {
	f := strings.Fields(req)
	switch {
	case len(f) == 2 && f[0] == "cut":
		p, err := ps.get(f[1])
		if err != nil {
			return err
		}
		p.CutConnections()
		return nil
	case len(f) == 3 && f[0] == "cut-after":
		p, err := ps.get(f[1])
		if err != nil {
			return err
		}
		n, err := strconv.ParseInt(f[2], 10, 64)
		if err != nil || n < 0 {
			return fmt.Errorf("cut-after: bad byte count %q", f[2])
		}
		p.CutAfterBytes(n)
		return nil
	}
	return fmt.Errorf("unknown control request %q", req)
}

// serveControl answers control requests, one line each, "ok" or "error: …".
func (ps proxySet) serveControl(ln net.Listener) {
	for {
		c, err := ln.Accept()
		if err != nil {
			return
		}
		go func() {
			defer c.Close()
			_ = c.SetDeadline(time.Now().Add(10 * time.Second))
			line, err := bufio.NewReader(c).ReadString('\n')
			if err != nil {
				return
			}
			if err := ps.do(strings.TrimSpace(line)); err != nil {
				fmt.Fprintf(c, "error: %v\n", err)
				return
			}
			fmt.Fprintln(c, "ok")
		}()
	}
}

// controlRequest sends one request to a detached proxy process.
func controlRequest(socket, req string) error {
	c, err := net.DialTimeout("unix", socket, 5*time.Second)
	if err != nil {
		return fmt.Errorf("proxy control: %w", err)
	}
	defer c.Close()
	_ = c.SetDeadline(time.Now().Add(10 * time.Second))
	if _, err := fmt.Fprintln(c, req); err != nil {
		return fmt.Errorf("proxy control: %w", err)
	}
	line, err := bufio.NewReader(c).ReadString('\n')
	if err != nil {
		return fmt.Errorf("proxy control: %w", err)
	}
	line = strings.TrimSpace(line)
	if line != "ok" {
		return fmt.Errorf("proxy control: %s", strings.TrimPrefix(line, "error: "))
	}
	return nil
}
