// Package devca creates a development certificate authority and a server certificate signed by
// it, with the standard library only (crypto/x509, ECDSA P-256). It is for `make certs`, the
// demo and the integration tests: the CA's private key is written next to its certificate, so
// never trust this CA anywhere but on a development machine.
package devca

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"errors"
	"fmt"
	"math/big"
	"net"
	"os"
	"path/filepath"
	"time"
)

// File names written into the output directory. tls.crt and tls.key are what Traefik serves
// (dynamic/tls.yml); ca.crt is what clients trust (curl --cacert).
const (
	CACertFile = "ca.crt"
	CAKeyFile  = "ca.key"
	CertFile   = "tls.crt"
	KeyFile    = "tls.key"
)

// DefaultHosts are the names and addresses the server certificate is valid for by default.
var DefaultHosts = []string{"localhost", "gateway.localhost", "127.0.0.1", "::1"}

// Options configure Generate. Zero values get the defaults.
type Options struct {
	// Hosts are DNS names and IP addresses put into the server certificate's SANs
	// (default DefaultHosts).
	Hosts []string
	// Validity of the server certificate (default 90 days); the CA gets ten times as long.
	Validity time.Duration
	// Force regenerates everything even if valid files exist.
	Force bool
	// Now is the clock (default time.Now).
	Now func() time.Time
}

// Files are the paths Generate wrote or kept.
type Files struct {
	Dir, CACert, CAKey, Cert, Key string
	// Created is false when valid files were already there and were kept.
	Created bool
}

// Generate writes ca.crt, ca.key, tls.crt and tls.key into dir (created if needed). Existing
// files are kept when they parse, the server certificate covers every host and is valid for
// at least another 7 days, and it was signed by the CA found there — so a CA a user chose to
// trust survives a second run. Keys are written with mode 0600.
func Generate(dir string, opts Options) (Files, error) {
	if len(opts.Hosts) == 0 {
		opts.Hosts = DefaultHosts
	}
	if opts.Validity <= 0 {
		opts.Validity = 90 * 24 * time.Hour
	}
	if opts.Now == nil {
		opts.Now = time.Now
	}
	f := Files{
		Dir:    dir,
		CACert: filepath.Join(dir, CACertFile),
		CAKey:  filepath.Join(dir, CAKeyFile),
		Cert:   filepath.Join(dir, CertFile),
		Key:    filepath.Join(dir, KeyFile),
	}
	if !opts.Force && reusable(f, opts) {
		return f, nil
	}
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return f, fmt.Errorf("creating %s: %w", dir, err)
	}

	now := opts.Now()
	caKey, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		return f, fmt.Errorf("generating CA key: %w", err)
	}
	caTmpl := &x509.Certificate{
		SerialNumber:          serial(),
		Subject:               pkix.Name{Organization: []string{"Pavilion development"}, CommonName: "Pavilion development CA"},
		NotBefore:             now.Add(-time.Hour),
		NotAfter:              now.Add(10 * opts.Validity),
		KeyUsage:              x509.KeyUsageCertSign | x509.KeyUsageCRLSign | x509.KeyUsageDigitalSignature,
		BasicConstraintsValid: true,
		IsCA:                  true,
		MaxPathLenZero:        true,
	}
	caDER, err := x509.CreateCertificate(rand.Reader, caTmpl, caTmpl, &caKey.PublicKey, caKey)
	if err != nil {
		return f, fmt.Errorf("creating CA certificate: %w", err)
	}
	caCert, err := x509.ParseCertificate(caDER)
	if err != nil {
		return f, err
	}

	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		return f, fmt.Errorf("generating server key: %w", err)
	}
	tmpl := &x509.Certificate{
		SerialNumber: serial(),
		Subject:      pkix.Name{Organization: []string{"Pavilion development"}, CommonName: opts.Hosts[0]},
		NotBefore:    now.Add(-time.Hour),
		NotAfter:     now.Add(opts.Validity),
		KeyUsage:     x509.KeyUsageDigitalSignature,
		ExtKeyUsage:  []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth},
	}
	for _, h := range opts.Hosts {
		if ip := net.ParseIP(h); ip != nil {
			tmpl.IPAddresses = append(tmpl.IPAddresses, ip)
		} else {
			tmpl.DNSNames = append(tmpl.DNSNames, h)
		}
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, caCert, &key.PublicKey, caKey)
	if err != nil {
		return f, fmt.Errorf("creating server certificate: %w", err)
	}

	if err := writeKey(f.CAKey, caKey); err != nil {
		return f, err
	}
	if err := writePEM(f.CACert, "CERTIFICATE", caDER, 0o644); err != nil {
		return f, err
	}
	if err := writeKey(f.Key, key); err != nil {
		return f, err
	}
	// tls.crt holds the server certificate only: the CA is what clients trust.
	if err := writePEM(f.Cert, "CERTIFICATE", der, 0o644); err != nil {
		return f, err
	}
	f.Created = true
	return f, nil
}

// reusable tells whether the files in f are a CA and a server certificate it signed, covering
// opts.Hosts and valid for at least 7 more days.
func reusable(f Files, opts Options) bool {
	ca, err := readCert(f.CACert)
	if err != nil {
		return false
	}
	cert, err := readCert(f.Cert)
	if err != nil {
		return false
	}
	if _, err := os.Stat(f.Key); err != nil {
		return false
	}
	if _, err := os.Stat(f.CAKey); err != nil {
		return false
	}
	if cert.CheckSignatureFrom(ca) != nil {
		return false
	}
	soon := opts.Now().Add(7 * 24 * time.Hour)
	if soon.After(cert.NotAfter) || soon.After(ca.NotAfter) {
		return false
	}
	for _, h := range opts.Hosts {
		if cert.VerifyHostname(h) != nil {
			return false
		}
	}
	return true
}

// readCert parses the first PEM certificate in path.
func readCert(path string) (*x509.Certificate, error) {
	b, err := os.ReadFile(path)
	if err != nil {
		return nil, err
	}
	block, _ := pem.Decode(b)
	if block == nil || block.Type != "CERTIFICATE" {
		return nil, errors.New(path + ": no PEM certificate")
	}
	return x509.ParseCertificate(block.Bytes)
}

func serial() *big.Int {
	n, err := rand.Int(rand.Reader, new(big.Int).Lsh(big.NewInt(1), 127))
	if err != nil {
		panic(err) // crypto/rand does not fail on supported platforms
	}
	return n
}

func writeKey(path string, key *ecdsa.PrivateKey) error {
	der, err := x509.MarshalPKCS8PrivateKey(key)
	if err != nil {
		return err
	}
	return writePEM(path, "PRIVATE KEY", der, 0o600)
}

// writePEM writes atomically (temporary file + rename), so a reader never sees half a file.
func writePEM(path, typ string, der []byte, mode os.FileMode) error {
	tmp := path + ".tmp"
	data := pem.EncodeToMemory(&pem.Block{Type: typ, Bytes: der})
	if err := os.WriteFile(tmp, data, mode); err != nil {
		return fmt.Errorf("writing %s: %w", path, err)
	}
	if err := os.Chmod(tmp, mode); err != nil {
		return err
	}
	if err := os.Rename(tmp, path); err != nil {
		return fmt.Errorf("writing %s: %w", path, err)
	}
	return nil
}
