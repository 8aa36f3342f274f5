package resp

import (
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"math/big"
	"net"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"
)

// testPKI is a CA and a server certificate for 127.0.0.1, written as PEM files.
type testPKI struct {
	dir  string
	pool *x509.CertPool
}

var (
	pkiOnce sync.Once
	pki     testPKI
	pkiErr  error
)

// tlsServerArgs returns the redis-server arguments of a TLS-only server (the "--tls-port"
// marker makes start put the port there and set --port 0).
func tlsServerArgs(t testing.TB) []string {
	t.Helper()
	p := testCerts(t)
	return []string{"--tls-port",
		"--tls-cert-file", filepath.Join(p.dir, "server.crt"),
		"--tls-key-file", filepath.Join(p.dir, "server.key"),
		"--tls-ca-cert-file", filepath.Join(p.dir, "ca.crt"),
		"--tls-auth-clients", "no"}
}

func testCerts(t testing.TB) testPKI {
	t.Helper()
	pkiOnce.Do(func() {
		pki, pkiErr = makePKI()
	})
	if pkiErr != nil {
		t.Fatalf("generating certificates: %v", pkiErr)
	}
	return pki
}

func makePKI() (testPKI, error) {
	dir, err := os.MkdirTemp("", "resp-pki-")
	if err != nil {
		return testPKI{}, err
	}
	caKey, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		return testPKI{}, err
	}
	now := time.Now()
	caTmpl := &x509.Certificate{
		SerialNumber:          big.NewInt(1),
		Subject:               pkix.Name{CommonName: "resp test CA"},
		NotBefore:             now.Add(-time.Hour),
		NotAfter:              now.Add(24 * time.Hour),
		IsCA:                  true,
		BasicConstraintsValid: true,
		KeyUsage:              x509.KeyUsageCertSign,
	}
	caDER, err := x509.CreateCertificate(rand.Reader, caTmpl, caTmpl, &caKey.PublicKey, caKey)
	if err != nil {
		return testPKI{}, err
	}
	ca, err := x509.ParseCertificate(caDER)
	if err != nil {
		return testPKI{}, err
	}

	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		return testPKI{}, err
	}
	tmpl := &x509.Certificate{
		SerialNumber: big.NewInt(2),
		Subject:      pkix.Name{CommonName: "redis"},
		NotBefore:    now.Add(-time.Hour),
		NotAfter:     now.Add(24 * time.Hour),
		KeyUsage:     x509.KeyUsageDigitalSignature,
		ExtKeyUsage:  []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth, x509.ExtKeyUsageClientAuth},
		IPAddresses:  []net.IP{net.ParseIP("127.0.0.1")},
		DNSNames:     []string{"redis.test"},
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, ca, &key.PublicKey, caKey)
	if err != nil {
		return testPKI{}, err
	}
	keyDER, err := x509.MarshalECPrivateKey(key)
	if err != nil {
		return testPKI{}, err
	}

	files := map[string]*pem.Block{
		"ca.crt":     {Type: "CERTIFICATE", Bytes: caDER},
		"server.crt": {Type: "CERTIFICATE", Bytes: der},
		"server.key": {Type: "EC PRIVATE KEY", Bytes: keyDER},
	}
	for name, block := range files {
		if err := os.WriteFile(filepath.Join(dir, name), pem.EncodeToMemory(block), 0o600); err != nil {
			return testPKI{}, err
		}
	}
	pool := x509.NewCertPool()
	pool.AddCert(ca)
	return testPKI{dir: dir, pool: pool}, nil
}

// TestTLS runs against redis-server's own TLS port (Debian's build links OpenSSL).
func TestTLS(t *testing.T) {
	s := sharedRedis(t, "tls")
	p := testCerts(t)

	tests := []struct {
		desc    string
		opts    Options
		wantErr string // "" for success
	}{
		{desc: "roots given, ServerName from Address (IP SAN)",
			opts: Options{Address: s.addr(), TLS: true, TLSConfig: &tls.Config{RootCAs: p.pool}}},
		{desc: "roots given, ServerName set (DNS SAN)",
			opts: Options{Address: s.addr(), TLS: true, TLSConfig: &tls.Config{RootCAs: p.pool, ServerName: "redis.test"}}},
		{desc: "system roots do not know the test CA",
			opts:    Options{Address: s.addr(), TLS: true},
			wantErr: "certificate"},
		{desc: "wrong ServerName",
			opts:    Options{Address: s.addr(), TLS: true, TLSConfig: &tls.Config{RootCAs: p.pool, ServerName: "other.test"}},
			wantErr: "other.test"},
		{desc: "plain client on a TLS port",
			opts:    Options{Address: s.addr(), Timeout: 300 * time.Millisecond},
			wantErr: "resp: PING"},
	}
	for _, tt := range tests {
		t.Run(tt.desc, func(t *testing.T) {
			// The first use of the system roots parses them: slow on a loaded machine, and this
			// test is about TLS answers, not about dial timeouts.
			tt.opts.DialTimeout = 5 * time.Second
			c := newClient(t, tt.opts)
			v, err := c.Do(context.Background(), "PING")
			if tt.wantErr == "" {
				if err != nil || v.Str != "PONG" {
					t.Fatalf("PING = %+v, %v; want PONG", v, err)
				}
				mustDo(t, c, "SET", "tls-key", "over tls")
				if got := mustDo(t, c, "GET", "tls-key"); got.Str != "over tls" {
					t.Fatalf("GET = %+v", got)
				}
				return
			}
			if err == nil || !strings.Contains(err.Error(), tt.wantErr) {
				t.Fatalf("PING error = %v; want one containing %q", err, tt.wantErr)
			}
			if st := c.Stats(); st.Open != 0 {
				t.Fatalf("Open = %d after a failed connection, want 0", st.Open)
			}
		})
	}
}

func TestTLSConfigNotModified(t *testing.T) {
	cfg := &tls.Config{}
	c, err := New(Options{Address: "127.0.0.1:1", TLS: true, TLSConfig: cfg})
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	if cfg.ServerName != "" {
		t.Fatalf("New changed the caller's tls.Config (ServerName %q)", cfg.ServerName)
	}
	if c.opts.TLSConfig.ServerName != "127.0.0.1" {
		t.Fatalf("ServerName = %q, want it from Address", c.opts.TLSConfig.ServerName)
	}
}

func testTLSConfig() *tls.Config { return &tls.Config{MinVersion: tls.VersionTLS12} }
