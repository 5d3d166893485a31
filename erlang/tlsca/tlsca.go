// Package tlsca keeps the cluster's Erlang distribution CA (erlang.tls:
// true): it creates the CA, issues one certificate per Erlang node whose
// names are the node's host part (its address, or its FQDN with node_host:
// fqdn), reads them back for rendering, refusing any that does not match
// its node, and reports what check's ARBO014 needs to know (a CA or a
// certificate missing, expired or near its end).
//
// Everything lives in one directory beside erlang.cookie_file, the
// topology's secrets directory: erlang-tls/ca.pem and ca.key, and
// <jail>.pem and <jail>.key per node. Keys are written with mode 0600,
// atomically, and never printed; a key that its group or others can read
// is refused, as ssh refuses such a private key.
//
// Keys are ECDSA P-256 (what OTP 25's ssl, Debian 12's erlang-ssl, accepts
// for TLS distribution; the real-cluster test in e2e/ runs it).
package tlsca

import (
	"crypto"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"errors"
	"fmt"
	"io/fs"
	"math/big"
	"net"
	"net/netip"
	"os"
	"path/filepath"
	"slices"
	"time"

	"github.com/arbo-project/arbo/erlang"
	"github.com/arbo-project/arbo/inventory"
)

// Lifetimes. A node certificate is renewed by `arbo erlang certs` once it
// has less than RenewBefore left; check warns from then on (ARBO014).
const (
	DirName      = "erlang-tls"
	CAValidity   = 10 * 365 * 24 * time.Hour
	NodeValidity = 365 * 24 * time.Hour
	RenewBefore  = 30 * 24 * time.Hour
	// backdate covers clocks a little behind the operator's.
	backdate = time.Hour
)

// Layout is where a cluster's TLS material lives.
type Layout struct{ Dir string }

// For returns c's layout: erlang-tls/ beside erlang.cookie_file.
func For(c *inventory.Cluster) Layout {
	return Layout{Dir: filepath.Join(filepath.Dir(c.Erlang.CookiePath), DirName)}
}

func (l Layout) CACert() string              { return filepath.Join(l.Dir, "ca.pem") }
func (l Layout) CAKey() string               { return filepath.Join(l.Dir, "ca.key") }
func (l Layout) NodeCert(jail string) string { return filepath.Join(l.Dir, jail+".pem") }
func (l Layout) NodeKey(jail string) string  { return filepath.Join(l.Dir, jail+".key") }

// InitCommand and IssueCommand are what a user runs to create the CA and
// to issue or renew the node certificates.
func InitCommand(c *inventory.Cluster) string  { return "arbo erlang ca init " + topo(c) }
func IssueCommand(c *inventory.Cluster) string { return "arbo erlang certs " + topo(c) }

func topo(c *inventory.Cluster) string {
	if c.File == "" {
		return "TOPOLOGY"
	}
	return c.File
}

// Node is an Erlang node the CA certifies.
type Node struct {
	Jail string
	Name string // <basename>@<host>
	Host string // the node name's host part: an address or an FQDN
}

// Nodes lists c's Erlang nodes in jail declaration order.
func Nodes(c *inventory.Cluster) []Node {
	var out []Node
	for _, j := range c.ErlangJails() {
		h := erlang.NodeHost(c, j)
		out = append(out, Node{Jail: j.Name, Name: c.Erlang.Basename + "@" + h, Host: h})
	}
	return out
}

// CA is the cluster CA as read from disk.
type CA struct {
	Cert *x509.Certificate
	PEM  []byte
	Key  crypto.Signer // nil unless read with the key
}

// Action is one thing Init or Issue made.
type Action struct {
	What string // "created the CA", "issued", "renewed", "kept"
	Node string // the node name; empty for the CA
	Path string // the certificate
	Key  string // the key file
	Why  string // for a renewal: what was wrong with the old one
	Till time.Time
}

// Init creates the CA and issues every node's certificate. It refuses to
// replace an existing CA: every node certificate depends on it.
func Init(c *inventory.Cluster, now time.Time) ([]Action, error) {
	if err := needTLS(c); err != nil {
		return nil, err
	}
	l := For(c)
	for _, p := range []string{l.CACert(), l.CAKey()} {
		if _, err := os.Lstat(p); err == nil {
			return nil, fmt.Errorf("the cluster CA already exists (%s); arbo never replaces it, since every node certificate depends on it: to start over, remove %s and %s, then run %s",
				p, l.CACert(), l.CAKey(), InitCommand(c))
		}
	}
	if err := os.MkdirAll(l.Dir, 0o700); err != nil {
		return nil, err
	}
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		return nil, err
	}
	sn, err := serial()
	if err != nil {
		return nil, err
	}
	tmpl := &x509.Certificate{
		SerialNumber:          sn,
		Subject:               pkix.Name{CommonName: "arbo " + c.Name + " Erlang distribution CA", Organization: []string{"arbo"}},
		NotBefore:             now.Add(-backdate),
		NotAfter:              now.Add(CAValidity),
		IsCA:                  true,
		BasicConstraintsValid: true,
		MaxPathLenZero:        true,
		KeyUsage:              x509.KeyUsageCertSign | x509.KeyUsageCRLSign,
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, key.Public(), key)
	if err != nil {
		return nil, err
	}
	if err := writeKey(l.CAKey(), key); err != nil {
		return nil, err
	}
	certPEM := pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der})
	if err := writeAtomic(l.CACert(), certPEM, 0o644); err != nil {
		return nil, err
	}
	acts := []Action{{What: "created the CA", Path: l.CACert(), Key: l.CAKey(), Till: tmpl.NotAfter}}
	more, err := Issue(c, now)
	return append(acts, more...), err
}

// Issue issues a certificate to every node that has none, or whose
// certificate is unreadable, not the CA's, not for its name, or has less
// than RenewBefore left; the others are kept.
func Issue(c *inventory.Cluster, now time.Time) ([]Action, error) {
	if err := needTLS(c); err != nil {
		return nil, err
	}
	l := For(c)
	ca, err := ReadCA(c, true)
	if err != nil {
		return nil, err
	}
	if !now.Before(ca.Cert.NotAfter) {
		return nil, fmt.Errorf("the cluster CA %s expired on %s: create a new one (remove %s and %s, then run %s)",
			l.CACert(), day(ca.Cert.NotAfter), l.CACert(), l.CAKey(), InitCommand(c))
	}
	var acts []Action
	for _, n := range Nodes(c) {
		what, why := "issued", ""
		if cert, _, err := readNode(l, n, ca.Cert); err == nil {
			// Keep it unless it ends soon, and a new one would end later
			// (a certificate never outlives the CA; check warns about it).
			if left := cert.NotAfter.Sub(now); left > RenewBefore || !cert.NotAfter.Before(ca.Cert.NotAfter) {
				acts = append(acts, Action{What: "kept", Node: n.Name, Path: l.NodeCert(n.Jail), Key: l.NodeKey(n.Jail), Till: cert.NotAfter})
				continue
			}
			what, why = "renewed", "it ends on "+day(cert.NotAfter)
		} else if !errors.Is(err, fs.ErrNotExist) {
			what, why = "renewed", err.Error()
		}
		till, err := issueNode(l, n, ca, now)
		if err != nil {
			return acts, fmt.Errorf("node %s: %w", n.Name, err)
		}
		acts = append(acts, Action{What: what, Node: n.Name, Path: l.NodeCert(n.Jail), Key: l.NodeKey(n.Jail), Why: why, Till: till})
	}
	return acts, nil
}

func issueNode(l Layout, n Node, ca *CA, now time.Time) (time.Time, error) {
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		return time.Time{}, err
	}
	sn, err := serial()
	if err != nil {
		return time.Time{}, err
	}
	tmpl := &x509.Certificate{
		SerialNumber: sn,
		Subject:      pkix.Name{CommonName: n.Name, Organization: []string{"arbo"}},
		NotBefore:    now.Add(-backdate),
		NotAfter:     now.Add(NodeValidity),
		KeyUsage:     x509.KeyUsageDigitalSignature,
		ExtKeyUsage:  []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth, x509.ExtKeyUsageClientAuth},
	}
	if ca.Cert.NotAfter.Before(tmpl.NotAfter) {
		tmpl.NotAfter = ca.Cert.NotAfter // never outlive the CA
	}
	if a, err := netip.ParseAddr(n.Host); err == nil {
		// The address as iPAddress (RFC 5280; what inet_tls_dist's
		// verify_client and other TLS clients match) and as a dNSName:
		// OTP 25's inet_tls_dist hands the node name's host part to
		// ssl:connect as server_name_indication, a string, and ssl checks
		// it as a dns_id, which never matches an iPAddress (seen in the
		// real-cluster test: {bad_cert,hostname_check_failed}).
		tmpl.IPAddresses = []net.IP{a.AsSlice()}
		tmpl.DNSNames = []string{n.Host}
	} else {
		tmpl.DNSNames = []string{n.Host}
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, ca.Cert, key.Public(), ca.Key)
	if err != nil {
		return time.Time{}, err
	}
	if err := writeKey(l.NodeKey(n.Jail), key); err != nil {
		return time.Time{}, err
	}
	if err := writeAtomic(l.NodeCert(n.Jail), pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der}), 0o644); err != nil {
		return time.Time{}, err
	}
	return tmpl.NotAfter, nil
}

// ReadCA reads the CA certificate, and its key when withKey. A missing or
// unreadable file is an error naming the command that creates the CA.
func ReadCA(c *inventory.Cluster, withKey bool) (*CA, error) {
	l := For(c)
	b, err := os.ReadFile(l.CACert())
	if err != nil {
		return nil, missing(c, "the cluster CA certificate", l.CACert(), err)
	}
	cert, err := parseCert(b)
	if err != nil {
		return nil, fmt.Errorf("the cluster CA certificate %s: %w (to start over, remove it and %s, then run %s)", l.CACert(), err, l.CAKey(), InitCommand(c))
	}
	if !cert.IsCA {
		return nil, fmt.Errorf("the cluster CA certificate %s is not a CA certificate", l.CACert())
	}
	ca := &CA{Cert: cert, PEM: b}
	if !withKey {
		return ca, nil
	}
	kb, err := readSecret(l.CAKey())
	if err != nil {
		return nil, missing(c, "the cluster CA key", l.CAKey(), err)
	}
	key, err := parseKey(kb)
	if err != nil {
		return nil, fmt.Errorf("the cluster CA key %s: %w", l.CAKey(), err)
	}
	if !key.Public().(interface{ Equal(crypto.PublicKey) bool }).Equal(cert.PublicKey) {
		return nil, fmt.Errorf("the cluster CA key %s does not belong to the certificate %s", l.CAKey(), l.CACert())
	}
	ca.Key = key
	return ca, nil
}

func missing(c *inventory.Cluster, what, path string, err error) error {
	if errors.Is(err, fs.ErrNotExist) {
		return fmt.Errorf("erlang.tls: %s %s does not exist: create the CA with `%s`", what, path, InitCommand(c))
	}
	return fmt.Errorf("erlang.tls: %s: %w (it is made by `%s`)", what, err, InitCommand(c))
}

// Load reads the CA certificate and every node's certificate and key, for
// rendering. It refuses a certificate that is not the CA's, does not name
// its node's host part, or does not go with its key. Expiry is not
// refused here: check reports it (ARBO014), and apply refuses then.
func Load(c *inventory.Cluster) (map[string]erlang.TLSFiles, error) {
	if err := needTLS(c); err != nil {
		return nil, err
	}
	ca, err := ReadCA(c, false)
	if err != nil {
		return nil, err
	}
	l := For(c)
	out := map[string]erlang.TLSFiles{}
	for _, n := range Nodes(c) {
		_, key, err := readNode(l, n, ca.Cert)
		if errors.Is(err, fs.ErrNotExist) {
			return nil, fmt.Errorf("erlang.tls: node %s (jail %s) has no certificate at %s: issue it with `%s`", n.Name, n.Jail, l.NodeCert(n.Jail), IssueCommand(c))
		}
		if err != nil {
			return nil, fmt.Errorf("erlang.tls: node %s (jail %s): %w; `%s` issues a new one", n.Name, n.Jail, err, IssueCommand(c))
		}
		certPEM, err := os.ReadFile(l.NodeCert(n.Jail))
		if err != nil {
			return nil, err
		}
		out[n.Jail] = erlang.TLSFiles{CA: ca.PEM, Cert: certPEM, Key: key}
	}
	return out, nil
}

// readNode reads and verifies one node's certificate and key: signed by
// ca, naming n.Host, the key its own. The error wraps fs.ErrNotExist when
// either file is missing.
func readNode(l Layout, n Node, ca *x509.Certificate) (*x509.Certificate, []byte, error) {
	b, err := os.ReadFile(l.NodeCert(n.Jail))
	if err != nil {
		return nil, nil, err
	}
	cert, err := parseCert(b)
	if err != nil {
		return nil, nil, fmt.Errorf("certificate %s: %w", l.NodeCert(n.Jail), err)
	}
	if err := cert.CheckSignatureFrom(ca); err != nil {
		return nil, nil, fmt.Errorf("certificate %s is not signed by the cluster CA", l.NodeCert(n.Jail))
	}
	if err := Matches(cert, n.Host); err != nil {
		return nil, nil, fmt.Errorf("certificate %s %w", l.NodeCert(n.Jail), err)
	}
	kb, err := readSecret(l.NodeKey(n.Jail))
	if err != nil {
		return nil, nil, err
	}
	key, err := parseKey(kb)
	if err != nil {
		return nil, nil, fmt.Errorf("key %s: %w", l.NodeKey(n.Jail), err)
	}
	if !key.Public().(interface{ Equal(crypto.PublicKey) bool }).Equal(cert.PublicKey) {
		return nil, nil, fmt.Errorf("key %s does not belong to the certificate %s", l.NodeKey(n.Jail), l.NodeCert(n.Jail))
	}
	return cert, kb, nil
}

// Matches reports whether cert names host, as both ends of a TLS
// distribution connection will check it: an FQDN as a dNSName; an address
// as an iPAddress and as a dNSName (see issueNode).
func Matches(cert *x509.Certificate, host string) error {
	if a, err := netip.ParseAddr(host); err == nil {
		ipOK := slices.ContainsFunc(cert.IPAddresses, func(ip net.IP) bool {
			b, ok := netip.AddrFromSlice(ip)
			return ok && b.Unmap() == a.Unmap()
		})
		if !ipOK || !slices.Contains(cert.DNSNames, host) {
			return fmt.Errorf("does not name the node's address %s (as iPAddress and dNSName: Erlang/OTP checks the address as a DNS name): it names %s", host, names(cert))
		}
		return nil
	}
	if cert.VerifyHostname(host) != nil {
		return fmt.Errorf("does not name the node's host %s: it names %s", host, names(cert))
	}
	return nil
}

func names(cert *x509.Certificate) string {
	var s []string
	s = append(s, cert.DNSNames...)
	for _, ip := range cert.IPAddresses {
		s = append(s, ip.String())
	}
	if len(s) == 0 {
		return "nothing"
	}
	return fmt.Sprint(s)
}

func needTLS(c *inventory.Cluster) error {
	if c.Erlang == nil || !c.Erlang.TLS {
		return errors.New("the topology does not set erlang.tls: true")
	}
	return nil
}

func parseCert(b []byte) (*x509.Certificate, error) {
	blk, _ := pem.Decode(b)
	if blk == nil || blk.Type != "CERTIFICATE" {
		return nil, errors.New("not a PEM certificate")
	}
	return x509.ParseCertificate(blk.Bytes)
}

func parseKey(b []byte) (crypto.Signer, error) {
	blk, _ := pem.Decode(b)
	if blk == nil {
		return nil, errors.New("not a PEM key")
	}
	var k any
	var err error
	switch blk.Type {
	case "PRIVATE KEY":
		k, err = x509.ParsePKCS8PrivateKey(blk.Bytes)
	case "EC PRIVATE KEY":
		k, err = x509.ParseECPrivateKey(blk.Bytes)
	default:
		return nil, fmt.Errorf("unexpected PEM block %q", blk.Type)
	}
	if err != nil {
		return nil, errors.New("the key does not parse")
	}
	s, ok := k.(crypto.Signer)
	if !ok {
		return nil, errors.New("not a signing key")
	}
	return s, nil
}

// readSecret reads a key file, refusing one that its group or others can
// read, or that is not a regular file.
func readSecret(path string) ([]byte, error) {
	st, err := os.Lstat(path)
	if err != nil {
		return nil, err
	}
	if !st.Mode().IsRegular() {
		return nil, fmt.Errorf("%s is not a regular file", path)
	}
	if st.Mode().Perm()&0o077 != 0 {
		return nil, fmt.Errorf("%s is readable by others (mode %04o): chmod 600 %s", path, st.Mode().Perm(), path)
	}
	return os.ReadFile(path)
}

func writeKey(path string, key *ecdsa.PrivateKey) error {
	der, err := x509.MarshalPKCS8PrivateKey(key)
	if err != nil {
		return err
	}
	return writeAtomic(path, pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: der}), 0o600)
}

// writeAtomic writes a temporary file with mode in path's directory,
// syncs it and renames it over path.
func writeAtomic(path string, b []byte, mode os.FileMode) error {
	f, err := os.CreateTemp(filepath.Dir(path), ".arbo-tmp-*")
	if err != nil {
		return err
	}
	tmp := f.Name()
	defer os.Remove(tmp)
	if err := f.Chmod(mode); err != nil {
		f.Close()
		return err
	}
	if _, err := f.Write(b); err != nil {
		f.Close()
		return err
	}
	if err := f.Sync(); err != nil {
		f.Close()
		return err
	}
	if err := f.Close(); err != nil {
		return err
	}
	return os.Rename(tmp, path)
}

// serial is a random positive 127-bit serial number (RFC 5280 4.1.2.2).
func serial() (*big.Int, error) {
	n, err := rand.Int(rand.Reader, new(big.Int).Lsh(big.NewInt(1), 127))
	if err != nil {
		return nil, err
	}
	return n.Add(n, big.NewInt(1)), nil
}

func day(t time.Time) string { return t.UTC().Format("2006-01-02") }

// Problem is what check reports as ARBO014.
type Problem struct {
	Subject string // "ca", or the node's jail
	Error   bool   // false: a warning (near its end)
	Message string
}

// Inspect reports the CA and every node certificate that is missing,
// unreadable, not the CA's, not for its node, expired (errors), or ends
// within RenewBefore (warnings), each with the command that fixes it.
func Inspect(c *inventory.Cluster, now time.Time) []Problem {
	if c.Erlang == nil || !c.Erlang.TLS {
		return nil
	}
	l := For(c)
	ca, err := ReadCA(c, false)
	if err != nil {
		return []Problem{{Subject: "ca", Error: true, Message: err.Error()}}
	}
	var out []Problem
	switch left := ca.Cert.NotAfter.Sub(now); {
	case left <= 0:
		out = append(out, Problem{Subject: "ca", Error: true, Message: fmt.Sprintf(
			"the cluster CA %s expired on %s: no node can prove itself; create a new CA (remove %s and %s, run %s) and apply",
			l.CACert(), day(ca.Cert.NotAfter), l.CACert(), l.CAKey(), InitCommand(c))})
		return out
	case left <= RenewBefore:
		out = append(out, Problem{Subject: "ca", Message: fmt.Sprintf(
			"the cluster CA %s ends on %s: create a new CA before then (remove %s and %s, run %s) and apply",
			l.CACert(), day(ca.Cert.NotAfter), l.CACert(), l.CAKey(), InitCommand(c))})
	}
	for _, n := range Nodes(c) {
		cert, _, err := readNode(l, n, ca.Cert)
		switch {
		case errors.Is(err, fs.ErrNotExist):
			out = append(out, Problem{Subject: n.Jail, Error: true, Message: fmt.Sprintf(
				"node %s has no certificate at %s: issue it with %s", n.Name, l.NodeCert(n.Jail), IssueCommand(c))})
		case err != nil:
			out = append(out, Problem{Subject: n.Jail, Error: true, Message: fmt.Sprintf(
				"node %s: %v: %s issues a new one", n.Name, err, IssueCommand(c))})
		case !now.Before(cert.NotAfter):
			out = append(out, Problem{Subject: n.Jail, Error: true, Message: fmt.Sprintf(
				"the certificate of node %s expired on %s: renew it with %s, then apply", n.Name, day(cert.NotAfter), IssueCommand(c))})
		case cert.NotAfter.Sub(now) <= RenewBefore:
			out = append(out, Problem{Subject: n.Jail, Message: fmt.Sprintf(
				"the certificate of node %s ends on %s: renew it with %s; the plan then shows the new certificate", n.Name, day(cert.NotAfter), IssueCommand(c))})
		}
	}
	return out
}
