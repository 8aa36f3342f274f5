package confmap

import (
	"crypto/sha256"
	"crypto/tls"
	"crypto/x509"
	"encoding/hex"
	"encoding/pem"
	"fmt"
	"os"
	"strings"
)

// maxCAFileBytes bounds a CA bundle (the system bundle of a Debian host is about 200 KiB).
const maxCAFileBytes = 4 << 20

// CAFile reads a PEM bundle of CA certificates for a caFile option (jwtauth's caFile,
// health's jwksCaFile). The pool holds these certificates only: a server is trusted when its
// chain ends at one of them, and the system roots play no part. sum identifies the file's
// content (hex SHA-256), so that a cache shared across middlewares can tell bundles apart.
//
// The file must hold at least one certificate, every CERTIFICATE block must parse, and a
// private key is refused (a CA bundle never needs one; keep it off the gateway). The error
// names the path and the problem, for the caller to prefix with its option.
func CAFile(path string) (*x509.CertPool, string, error) {
	info, err := os.Stat(path)
	if err != nil {
		if pe, ok := err.(*os.PathError); ok {
			err = pe.Err
		}
		return nil, "", fmt.Errorf("cannot read %q: %v", path, err)
	}
	if info.IsDir() {
		return nil, "", fmt.Errorf("%q is a directory, not a PEM file", path)
	}
	if info.Size() > maxCAFileBytes {
		return nil, "", fmt.Errorf("%q is larger than %d bytes", path, maxCAFileBytes)
	}
	data, err := os.ReadFile(path)
	if err != nil {
		if pe, ok := err.(*os.PathError); ok {
			err = pe.Err
		}
		return nil, "", fmt.Errorf("cannot read %q: %v", path, err)
	}
	digest := sha256.Sum256(data)
	pool := x509.NewCertPool()
	n := 0
	rest := data
	for {
		block, next := pem.Decode(rest)
		if block == nil {
			break
		}
		rest = next
		if strings.Contains(block.Type, "PRIVATE KEY") {
			return nil, "", fmt.Errorf("%q holds a private key: give only CA certificates", path)
		}
		if block.Type != "CERTIFICATE" {
			continue
		}
		cert, err := x509.ParseCertificate(block.Bytes)
		if err != nil {
			return nil, "", fmt.Errorf("%q: certificate %d does not parse: %v", path, n+1, err)
		}
		pool.AddCert(cert)
		n++
	}
	if n == 0 {
		return nil, "", fmt.Errorf("%q holds no PEM certificate", path)
	}
	return pool, hex.EncodeToString(digest[:]), nil
}

// CATLSConfig is the client TLS configuration that trusts pool only (TLS 1.2 at least).
func CATLSConfig(pool *x509.CertPool) *tls.Config {
	return &tls.Config{RootCAs: pool, MinVersion: tls.VersionTLS12}
}
