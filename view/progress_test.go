package view

import (
	"bytes"
	"strings"
	"testing"
)

func TestProgressPlain(t *testing.T) {
	var b bytes.Buffer
	p := NewProgress(&b, false)
	p.Step("server1", "create jail app1")
	p.Step("server2", "create jail app2")
	p.Step("server1", "start jail app1")
	want := "server1: create jail app1\nserver2: create jail app2\nserver1: start jail app1\n"
	if b.String() != want {
		t.Fatalf("plain progress:\n%q\nwant\n%q", b.String(), want)
	}
}

func TestProgressLive(t *testing.T) {
	var b bytes.Buffer
	p := NewProgress(&b, true)
	p.Step("server1", "create jail app1")
	p.Step("server2", "create jail app2")
	p.Step("server1", "start jail app1")
	out := b.String()
	// The third step redraws both lines from the top: up two lines, then each
	// machine's line cleared and written again.
	last := out[strings.LastIndex(out, "\x1b[2A"):]
	if last != "\x1b[2A\r\x1b[Kserver1: start jail app1\n\r\x1b[Kserver2: create jail app2\n" {
		t.Fatalf("live redraw: %q", last)
	}
}

// A step names paths that can come from a jail: shown escaped, on one line.
func TestProgressEscapes(t *testing.T) {
	var b bytes.Buffer
	NewProgress(&b, false).Step("server1", "update file /usr/jails/app1/x\x1b[2J\nfake: line")
	want := "server1: update file /usr/jails/app1/x\\x1b[2J\\nfake: line\n"
	if b.String() != want {
		t.Fatalf("got %q, want %q", b.String(), want)
	}
}
