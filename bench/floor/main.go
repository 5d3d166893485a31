// Command floor measures the least that reading a cluster's managed files
// over SSH can cost: one connection per machine, all in parallel, each
// reading every file that `arbo render` lists for its machine over SFTP
// (pipelined) and doing nothing else: no diff, no command, no lock.
//
//	floor -manifest RENDER/manifest.json -ssh-config LAB/ssh_config
//
// It uses what the lab wrote (each machine's Host entry by its name in
// the manifest: HostName, Port, User, IdentityFile, UserKnownHostsFile),
// verifies host keys like arbo does, and prints the files and bytes read
// and the elapsed time. bench/run.sh times it as a whole process, the same
// way it times arbo.
package main

import (
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"io/fs"
	"net"
	"os"
	"strconv"
	"strings"
	"sync/atomic"
	"time"

	"github.com/kevinburke/ssh_config"
	"github.com/pkg/sftp"
	"golang.org/x/crypto/ssh"
	"golang.org/x/crypto/ssh/knownhosts"
	"golang.org/x/sync/errgroup"
)

// manifest is the part of render's manifest.json (docs/json.md) used here.
type manifest struct {
	Machines []struct {
		Name  string `json:"name"`
		Files []struct {
			Path string `json:"path"`
		} `json:"files"`
	} `json:"machines"`
}

func main() {
	man := flag.String("manifest", "", "manifest.json written by `arbo render`")
	cfgPath := flag.String("ssh-config", "", "the lab's ssh_config")
	parallel := flag.Int("files-parallel", 16, "file reads in flight per connection")
	timeout := flag.Duration("timeout", 2*time.Minute, "give up after this long")
	flag.Parse()
	if *man == "" || *cfgPath == "" || flag.NArg() > 0 {
		fmt.Fprintln(os.Stderr, "usage: floor -manifest RENDER/manifest.json -ssh-config LAB/ssh_config")
		os.Exit(2)
	}
	ctx, cancel := context.WithTimeout(context.Background(), *timeout)
	defer cancel()
	start := time.Now()
	files, bytes, err := run(ctx, *man, *cfgPath, *parallel)
	if err != nil {
		fmt.Fprintln(os.Stderr, "floor:", err)
		os.Exit(1)
	}
	fmt.Printf("floor: read %d files, %d bytes in %.3f s\n", files, bytes, time.Since(start).Seconds())
}

func run(ctx context.Context, manPath, cfgPath string, parallel int) (int64, int64, error) {
	b, err := os.ReadFile(manPath)
	if err != nil {
		return 0, 0, err
	}
	var m manifest
	if err := json.Unmarshal(b, &m); err != nil {
		return 0, 0, fmt.Errorf("%s: %w", manPath, err)
	}
	if len(m.Machines) == 0 {
		return 0, 0, fmt.Errorf("%s: no machines", manPath)
	}
	f, err := os.Open(cfgPath)
	if err != nil {
		return 0, 0, err
	}
	cfg, err := ssh_config.Decode(f)
	f.Close()
	if err != nil {
		return 0, 0, fmt.Errorf("%s: %w", cfgPath, err)
	}
	var nFiles, nBytes atomic.Int64
	g, ctx := errgroup.WithContext(ctx)
	for _, mc := range m.Machines {
		paths := make([]string, 0, len(mc.Files))
		for _, fl := range mc.Files {
			paths = append(paths, fl.Path)
		}
		g.Go(func() error {
			n, sz, err := readMachine(ctx, cfg, mc.Name, paths, parallel)
			if err != nil {
				return fmt.Errorf("machine %s: %w", mc.Name, err)
			}
			nFiles.Add(n)
			nBytes.Add(sz)
			return nil
		})
	}
	err = g.Wait()
	return nFiles.Load(), nBytes.Load(), err
}

func get(cfg *ssh_config.Config, host, key string) string {
	v, err := cfg.Get(host, key)
	if err != nil {
		return ""
	}
	return strings.TrimSpace(v)
}

func clientConfig(cfg *ssh_config.Config, name string) (addr string, cc *ssh.ClientConfig, err error) {
	host := get(cfg, name, "HostName")
	if host == "" {
		return "", nil, fmt.Errorf("no HostName for %s in the ssh_config", name)
	}
	port := get(cfg, name, "Port")
	if port == "" {
		port = "22"
	}
	if _, err := strconv.Atoi(port); err != nil {
		return "", nil, fmt.Errorf("port %q: %w", port, err)
	}
	key, err := os.ReadFile(get(cfg, name, "IdentityFile"))
	if err != nil {
		return "", nil, fmt.Errorf("identity: %w", err)
	}
	signer, err := ssh.ParsePrivateKey(key)
	if err != nil {
		return "", nil, fmt.Errorf("identity: %w", err)
	}
	hk, err := knownhosts.New(get(cfg, name, "UserKnownHostsFile"))
	if err != nil {
		return "", nil, fmt.Errorf("known_hosts: %w", err)
	}
	user := get(cfg, name, "User")
	if user == "" {
		user = "root"
	}
	return net.JoinHostPort(host, port), &ssh.ClientConfig{
		User:            user,
		Auth:            []ssh.AuthMethod{ssh.PublicKeys(signer)},
		HostKeyCallback: hk,
		Timeout:         10 * time.Second,
	}, nil
}

func readMachine(ctx context.Context, cfg *ssh_config.Config, name string, paths []string, parallel int) (int64, int64, error) {
	addr, cc, err := clientConfig(cfg, name)
	if err != nil {
		return 0, 0, err
	}
	d := net.Dialer{Timeout: cc.Timeout}
	raw, err := d.DialContext(ctx, "tcp", addr)
	if err != nil {
		return 0, 0, err
	}
	sc, chans, reqs, err := ssh.NewClientConn(raw, addr, cc)
	if err != nil {
		raw.Close()
		return 0, 0, err
	}
	client := ssh.NewClient(sc, chans, reqs)
	defer client.Close()
	stop := context.AfterFunc(ctx, func() { client.Close() })
	defer stop()
	s, err := sftp.NewClient(client, sftp.UseConcurrentReads(true))
	if err != nil {
		return 0, 0, fmt.Errorf("sftp: %w", err)
	}
	defer s.Close()
	var nFiles, nBytes atomic.Int64
	g := errgroup.Group{}
	g.SetLimit(max(parallel, 1))
	for _, p := range paths {
		g.Go(func() error {
			f, err := s.Open(p)
			if errors.Is(err, fs.ErrNotExist) {
				return nil // not there yet: the floor reads what exists
			}
			if err != nil {
				return fmt.Errorf("open %s: %w", p, err)
			}
			defer f.Close()
			n, err := io.Copy(io.Discard, f)
			if err != nil {
				return fmt.Errorf("read %s: %w", p, err)
			}
			nFiles.Add(1)
			nBytes.Add(n)
			return nil
		})
	}
	err = g.Wait()
	return nFiles.Load(), nBytes.Load(), err
}
