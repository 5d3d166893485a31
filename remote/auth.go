package remote

import (
	"bytes"
	"errors"
	"fmt"
	"net"
	"os"

	"golang.org/x/crypto/ssh"
	"golang.org/x/crypto/ssh/agent"
)

// EncryptedKeyError is an identity file that needs a passphrase arbo
// cannot ask for: it must be loaded into ssh-agent.
type EncryptedKeyError struct {
	Machine string
	File    string
}

func (e *EncryptedKeyError) Error() string {
	return fmt.Sprintf("machine %s: identity file %s is encrypted: load it into ssh-agent (ssh-add %s)", e.Machine, e.File, e.File)
}

// authMethods builds the one public-key method: identity-file keys first
// (through the agent when it holds them), then the agent's other keys.
// There is deliberately no retry wrapper: a refused login fails the dial at
// once, because sshguard on pfSense bans addresses that keep trying. The
// returned closer releases the agent connection.
func authMethods(t Target) ([]ssh.AuthMethod, func(), error) {
	closer := func() {}
	var ag agent.ExtendedAgent
	sock := t.AgentSocket
	if sock == "" {
		sock = os.Getenv("SSH_AUTH_SOCK")
	}
	if sock != "" && sock != "none" {
		c, err := net.Dial("unix", sock)
		if err == nil {
			ag = agent.NewClient(c)
			closer = func() { c.Close() }
		}
		// An unreachable agent is like no agent: identity files may still do.
	}
	var agentKeys []*agent.Key
	if ag != nil {
		if ks, err := ag.List(); err == nil {
			agentKeys = ks
		}
	}
	inAgent := func(pub ssh.PublicKey) bool {
		m := pub.Marshal()
		for _, k := range agentKeys {
			if bytes.Equal(k.Marshal(), m) {
				return true
			}
		}
		return false
	}

	var fileSigners []ssh.Signer
	var firstEncrypted error
	for _, f := range t.IdentityFiles {
		pem, err := os.ReadFile(f)
		if err != nil {
			if t.identityDefault && errors.Is(err, os.ErrNotExist) {
				continue
			}
			closer()
			return nil, nil, fmt.Errorf("machine %s: identity file: %w: fix `ssh.identity_file`, IdentityFile or -i/--identity-file", t.Machine, err)
		}
		s, err := ssh.ParsePrivateKey(pem)
		var pme *ssh.PassphraseMissingError
		switch {
		case errors.As(err, &pme):
			if pme.PublicKey != nil && inAgent(pme.PublicKey) {
				continue // the agent signs with it below
			}
			if pme.PublicKey == nil {
				if pubBytes, rerr := os.ReadFile(f + ".pub"); rerr == nil {
					if pub, _, _, _, perr := ssh.ParseAuthorizedKey(pubBytes); perr == nil && inAgent(pub) {
						continue
					}
				}
			}
			e := &EncryptedKeyError{Machine: t.Machine, File: f}
			if !t.identityDefault {
				closer()
				return nil, nil, e
			}
			// A default key that is encrypted may simply be unused: the
			// agent or another default key may do. Reported if nothing does.
			if firstEncrypted == nil {
				firstEncrypted = e
			}
		case err != nil:
			closer()
			return nil, nil, fmt.Errorf("machine %s: identity file %s: %w", t.Machine, f, err)
		default:
			fileSigners = append(fileSigners, s)
		}
	}
	if len(fileSigners) == 0 && len(agentKeys) == 0 {
		closer()
		if firstEncrypted != nil {
			return nil, nil, firstEncrypted
		}
		return nil, nil, fmt.Errorf("machine %s: no SSH key to log in with: start ssh-agent and ssh-add a key, or set `ssh.identity_file` (or pass -i/--identity-file)", t.Machine)
	}

	cb := func() ([]ssh.Signer, error) {
		signers := append([]ssh.Signer(nil), fileSigners...)
		if ag != nil {
			as, err := ag.Signers()
			if err == nil {
				// Keys named by identity files go first, like OpenSSH, so
				// that MaxAuthTries is not spent on the agent's other keys.
				var named, rest []ssh.Signer
				for _, s := range as {
					if isNamed(t, s.PublicKey()) {
						named = append(named, s)
					} else {
						rest = append(rest, s)
					}
				}
				signers = append(append(named, signers...), rest...)
			}
		}
		// The same key from a file and from the agent would be offered
		// twice, spending one of the server's MaxAuthTries for nothing.
		seen := map[string]bool{}
		out := signers[:0]
		for _, s := range signers {
			k := string(s.PublicKey().Marshal())
			if !seen[k] {
				seen[k] = true
				out = append(out, s)
			}
		}
		return out, nil
	}
	return []ssh.AuthMethod{ssh.PublicKeysCallback(cb)}, closer, nil
}

// isNamed reports whether pub is the public half of one of t's identity
// files (read from FILE.pub, or from the key itself when not encrypted).
func isNamed(t Target, pub ssh.PublicKey) bool {
	m := pub.Marshal()
	for _, f := range t.IdentityFiles {
		if b, err := os.ReadFile(f + ".pub"); err == nil {
			if p, _, _, _, err := ssh.ParseAuthorizedKey(b); err == nil && bytes.Equal(p.Marshal(), m) {
				return true
			}
		}
		if b, err := os.ReadFile(f); err == nil {
			if _, err := ssh.ParsePrivateKey(b); err != nil {
				var pme *ssh.PassphraseMissingError
				if errors.As(err, &pme) && pme.PublicKey != nil && bytes.Equal(pme.PublicKey.Marshal(), m) {
					return true
				}
			}
		}
	}
	return false
}
