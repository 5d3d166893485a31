package remote

import (
	"errors"
	"fmt"
	"net"
	"os"
	"path/filepath"
	"strings"
	"sync"

	"github.com/skeema/knownhosts"
	"golang.org/x/crypto/ssh"
)

// HostKeyError is a host key that known_hosts does not vouch for.
type HostKeyError struct {
	Machine     string
	Name        string // the known_hosts name looked up ([host]:port when the port is not 22)
	KeyType     string
	Fingerprint string // SHA256:...
	Changed     bool   // known_hosts holds another key for this name
	File        string // the known_hosts file arbo reads first
	Host        string // for the ssh-keyscan hint
	Port        int
	Alias       bool // Name is a HostKeyAlias, not Host
}

func (e *HostKeyError) Error() string {
	if e.Changed {
		return fmt.Sprintf("machine %s: REMOTE HOST IDENTIFICATION HAS CHANGED: %s offered %s key %s, "+
			"which is not the key %s holds for it. Someone could be intercepting the connection, or the host was reinstalled. "+
			"arbo never replaces a changed key (not even with --trust-new-hosts): verify the new fingerprint out of band, "+
			"then remove the old entry (ssh-keygen -R %s -f %s) and connect again",
			e.Machine, e.Name, e.KeyType, e.Fingerprint, e.File, knownhosts.Normalize(e.Name), e.File)
	}
	kt := e.KeyType
	if i := strings.LastIndex(kt, "-"); strings.HasPrefix(kt, "ssh-") && i >= 0 {
		kt = kt[i+1:]
	} else if strings.HasPrefix(kt, "ecdsa-") {
		kt = "ecdsa"
	}
	rename := ""
	if e.Alias {
		rename = fmt.Sprintf(" (then change the name at the start of that line to %s, the HostKeyAlias)", e.Name)
	}
	return fmt.Sprintf("machine %s: host key unknown: %s offered %s key %s, which is not in %s. "+
		"Verify that fingerprint out of band (on the console: ssh-keygen -lf /etc/ssh/ssh_host_%s_key.pub), then record it: "+
		"ssh-keyscan -p %d -t %s %s >> %s%s; or run once with --trust-new-hosts to record keys not yet known",
		e.Machine, e.Name, e.KeyType, e.Fingerprint, e.File, kt, e.Port, kt, e.Host, e.File, rename)
}

// hostKeyChecker checks one target's host key and, with TrustNewHosts,
// records an unknown one.
type hostKeyChecker struct {
	t     Target
	db    *knownhosts.HostKeyDB
	files []string // the files that exist and were read
	err   error    // the last refusal, for the dial error
}

func newHostKeyChecker(t Target) (*hostKeyChecker, error) {
	var files []string
	for _, f := range t.KnownHostsFiles {
		if _, err := os.Stat(f); err == nil {
			files = append(files, f)
		} else if !errors.Is(err, os.ErrNotExist) {
			return nil, fmt.Errorf("machine %s: known_hosts: %w", t.Machine, err)
		}
	}
	db, err := knownhosts.NewDB(files...)
	if err != nil {
		return nil, fmt.Errorf("machine %s: reading known_hosts: %w: fix or remove the bad line", t.Machine, err)
	}
	return &hostKeyChecker{t: t, db: db, files: files}, nil
}

// algorithms are the host key algorithms known_hosts has for the target, so
// that the server is asked for a key type that can be checked (a host with
// ed25519 and rsa keys, of which only rsa is recorded, would otherwise fail
// as "changed"). Empty means x/crypto's defaults (host not yet known).
func (h *hostKeyChecker) algorithms() []string {
	return h.db.HostKeyAlgorithms(h.t.KnownHostsName())
}

func (h *hostKeyChecker) callback(_ string, remote net.Addr, key ssh.PublicKey) error {
	name := h.t.KnownHostsName()
	// x/crypto's knownhosts wants a TCP address; through a jump host the
	// connection has none, and arbo checks the name only (OpenSSH's
	// CheckHostIP defaults to no).
	if _, ok := remote.(*net.TCPAddr); !ok {
		remote = &net.TCPAddr{IP: net.IPv4zero}
	}
	err := h.db.HostKeyCallback()(name, remote, key)
	if err == nil {
		return nil
	}
	file := h.t.KnownHostsFiles[0]
	hke := &HostKeyError{
		Machine: h.t.Machine, Name: knownhosts.Normalize(name), KeyType: key.Type(),
		Fingerprint: ssh.FingerprintSHA256(key), File: file, Host: h.t.Host, Port: h.t.Port, Alias: h.t.HostKeyAlias != "",
	}
	switch {
	case knownhosts.IsHostKeyChanged(err):
		hke.Changed = true
		h.err = hke
		return hke
	case knownhosts.IsHostUnknown(err):
		if !h.t.TrustNewHosts {
			h.err = hke
			return hke
		}
		if err := appendKnownHost(file, name, key); err != nil {
			h.err = fmt.Errorf("machine %s: recording the host key in %s: %w", h.t.Machine, file, err)
			return h.err
		}
		return nil
	default:
		h.err = fmt.Errorf("machine %s: checking the host key: %w", h.t.Machine, err)
		return h.err
	}
}

// knownHostsMu serialises appends within the process: several machines
// dial at once, and two dials of one host must not record it twice.
var knownHostsMu sync.Mutex

// appendKnownHost records key for name, unless the file already holds a key
// for name (recorded meanwhile by a concurrent dial, or, for a different
// key, a change that must never be overwritten).
func appendKnownHost(file, name string, key ssh.PublicKey) error {
	knownHostsMu.Lock()
	defer knownHostsMu.Unlock()

	if _, err := os.Stat(file); err == nil {
		db, err := knownhosts.NewDB(file)
		if err != nil {
			return err
		}
		err = db.HostKeyCallback()(name, &net.TCPAddr{IP: net.IPv4zero}, key)
		if err == nil {
			return nil // recorded meanwhile
		}
		if knownhosts.IsHostKeyChanged(err) {
			return fmt.Errorf("another key for %s was recorded meanwhile: refusing to add %s", name, ssh.FingerprintSHA256(key))
		}
	}
	if err := os.MkdirAll(filepath.Dir(file), 0o700); err != nil {
		return err
	}
	f, err := os.OpenFile(file, os.O_WRONLY|os.O_APPEND|os.O_CREATE, 0o600)
	if err != nil {
		return err
	}
	// Another process (a second arbo, an ssh) may append too: make sure our
	// line starts on a line of its own, and write it in one call so that
	// O_APPEND keeps it whole.
	line := knownhosts.Line([]string{name}, key) + "\n"
	if st, err := f.Stat(); err == nil && st.Size() > 0 && !endsWithNewline(file, st.Size()) {
		line = "\n" + line
	}
	if _, err := f.WriteString(line); err != nil {
		f.Close()
		return err
	}
	return f.Close()
}

func endsWithNewline(file string, size int64) bool {
	f, err := os.Open(file)
	if err != nil {
		return true
	}
	defer f.Close()
	b := make([]byte, 1)
	if _, err := f.ReadAt(b, size-1); err != nil {
		return true
	}
	return b[0] == '\n'
}
