//go:build linux

package lab

import (
	"crypto/ed25519"
	"crypto/rand"
	"encoding/json"
	"encoding/pem"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"syscall"
	"time"

	"golang.org/x/crypto/ssh"
)

// Names of the files a lab keeps in its directory (LAB.md, "Using the lab by
// hand"), plus stateFile, which lets `down` and the fault commands find
// everything `up` started.
const (
	keyFile        = "id_ed25519"
	sshConfigFile  = "ssh_config"
	knownHostsFile = "known_hosts"
	machinesFile   = "machines"
	stateFile      = "lab.json"
	lockFile       = ".lab.lock"
	proxyLogFile   = "proxy.log"
	controlSocket  = "control.sock"
	emuBinaryName  = "lab-emu"
	authorizedKeys = "authorized_keys"
)

// labState is what DIR/lab.json holds. It is written before every process is
// started, so that `down` can undo a failed `up`.
type labState struct {
	ID       string         `json:"id"`
	Home     string         `json:"home"` // BASE/<id>: the roots and what sshd must find root-owned
	ProxyPID int            `json:"proxy_pid,omitempty"`
	Control  string         `json:"control,omitempty"`  // unix socket of the proxy process
	Delay    time.Duration  `json:"delay_ns,omitempty"` // the proxies' one-way delay (Options.Delay)
	Machines []machineState `json:"machines"`
	Mounts   []string       `json:"mounts,omitempty"` // fill-disk mount points, host paths
}

type machineState struct {
	Name     string `json:"name"`
	Kind     string `json:"kind"` // host | gateway
	Address  string `json:"address"`
	Root     string `json:"root"`
	State    string `json:"state"` // DIR/state/<name>: sshd config, host key, logs
	Proxy    string `json:"proxy"` // 127.X.Y.Z:port
	SSHDPort int    `json:"sshd_port"`
	SSHDPID  int    `json:"sshd_pid,omitempty"`
	// PfSense: the gateway runs pfSense's own code (pfsense.go).
	PfSense bool `json:"pfsense,omitempty"`
}

func readState(dir string) (*labState, error) {
	b, err := os.ReadFile(filepath.Join(dir, stateFile))
	if err != nil {
		return nil, fmt.Errorf("read lab state: %w", err)
	}
	var st labState
	if err := json.Unmarshal(b, &st); err != nil {
		return nil, fmt.Errorf("read lab state %s: %w", filepath.Join(dir, stateFile), err)
	}
	return &st, nil
}

func writeState(dir string, st *labState) error {
	b, err := json.MarshalIndent(st, "", "  ")
	if err != nil {
		return fmt.Errorf("write lab state: %w", err)
	}
	return writeFileAtomic(filepath.Join(dir, stateFile), append(b, '\n'), 0o600)
}

// lockDir serialises the commands that change a lab's state (up, down,
// faults run from several shells).
func lockDir(dir string) (unlock func(), err error) {
	f, err := os.OpenFile(filepath.Join(dir, lockFile), os.O_RDWR|os.O_CREATE, 0o600)
	if err != nil {
		return nil, fmt.Errorf("lock lab dir: %w", err)
	}
	if err := syscall.Flock(int(f.Fd()), syscall.LOCK_EX); err != nil {
		f.Close()
		return nil, fmt.Errorf("lock lab dir: %w", err)
	}
	return func() {
		_ = syscall.Flock(int(f.Fd()), syscall.LOCK_UN)
		f.Close()
	}, nil
}

// writeFileAtomic replaces path so that readers (the proxy, a concurrent
// fault command) never see half a file.
func writeFileAtomic(path string, data []byte, mode os.FileMode) error {
	tmp, err := os.CreateTemp(filepath.Dir(path), "."+filepath.Base(path)+".*")
	if err != nil {
		return fmt.Errorf("write %s: %w", path, err)
	}
	_, werr := tmp.Write(data)
	if cerr := tmp.Close(); werr == nil {
		werr = cerr
	}
	if werr == nil {
		werr = os.Chmod(tmp.Name(), mode)
	}
	if werr == nil {
		werr = os.Rename(tmp.Name(), path)
	}
	if werr != nil {
		os.Remove(tmp.Name())
		return fmt.Errorf("write %s: %w", path, werr)
	}
	return nil
}

// newKey makes an ed25519 key pair and writes it in OpenSSH's formats:
// path (private, 0600) and path.pub.
func newKey(path, comment string) (ssh.PublicKey, error) {
	pub, priv, err := ed25519.GenerateKey(rand.Reader)
	if err != nil {
		return nil, fmt.Errorf("generate key: %w", err)
	}
	block, err := ssh.MarshalPrivateKey(priv, comment)
	if err != nil {
		return nil, fmt.Errorf("encode key: %w", err)
	}
	sshPub, err := ssh.NewPublicKey(pub)
	if err != nil {
		return nil, fmt.Errorf("encode key: %w", err)
	}
	if err := writeFileAtomic(path, pem.EncodeToMemory(block), 0o600); err != nil {
		return nil, err
	}
	line := ssh.MarshalAuthorizedKey(sshPub)
	line = append(line[:len(line)-1], []byte(" "+comment+"\n")...)
	if err := writeFileAtomic(path+".pub", line, 0o644); err != nil {
		return nil, err
	}
	return sshPub, nil
}

func readPublicKey(path string) (ssh.PublicKey, error) {
	b, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("read public key: %w", err)
	}
	k, _, _, _, err := ssh.ParseAuthorizedKey(b)
	if err != nil {
		return nil, fmt.Errorf("parse public key %s: %w", path, err)
	}
	return k, nil
}

func readSigner(path string) (ssh.Signer, error) {
	b, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("read key: %w", err)
	}
	s, err := ssh.ParsePrivateKey(b)
	if err != nil {
		return nil, fmt.Errorf("parse key %s: %w", path, err)
	}
	return s, nil
}

func randomID() (string, []byte, error) {
	b := make([]byte, 4)
	if _, err := rand.Read(b); err != nil {
		return "", nil, fmt.Errorf("lab id: %w", err)
	}
	return fmt.Sprintf("%x", b), b, nil
}

var errNoLab = errors.New("no lab in this directory")
