package devca

import (
	"crypto/tls"
	"crypto/x509"
	"os"
	"testing"
	"time"
)

func TestGenerate(t *testing.T) {
	dir := t.TempDir()
	f, err := Generate(dir, Options{})
	if err != nil {
		t.Fatal(err)
	}
	if !f.Created {
		t.Fatal("first run: Created is false")
	}

	pair, err := tls.LoadX509KeyPair(f.Cert, f.Key)
	if err != nil {
		t.Fatalf("tls.crt/tls.key are not a key pair: %v", err)
	}
	leaf, err := x509.ParseCertificate(pair.Certificate[0])
	if err != nil {
		t.Fatal(err)
	}
	ca, err := readCert(f.CACert)
	if err != nil {
		t.Fatal(err)
	}
	if !ca.IsCA {
		t.Fatal("ca.crt is not a CA")
	}
	roots := x509.NewCertPool()
	roots.AddCert(ca)
	for _, h := range DefaultHosts {
		if _, err := leaf.Verify(x509.VerifyOptions{DNSName: h, Roots: roots, KeyUsages: []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth}}); err != nil {
			t.Errorf("server certificate does not verify for %s: %v", h, err)
		}
	}
	if _, err := leaf.Verify(x509.VerifyOptions{DNSName: "example.com", Roots: roots}); err == nil {
		t.Error("server certificate verifies for a host it does not list")
	}
	for _, k := range []string{f.Key, f.CAKey} {
		fi, err := os.Stat(k)
		if err != nil {
			t.Fatal(err)
		}
		if fi.Mode().Perm() != 0o600 {
			t.Errorf("%s mode %v, want 0600", k, fi.Mode().Perm())
		}
	}

	t.Run("valid files are kept", func(t *testing.T) {
		before, _ := os.ReadFile(f.CACert)
		g, err := Generate(dir, Options{})
		if err != nil {
			t.Fatal(err)
		}
		after, _ := os.ReadFile(g.CACert)
		if g.Created || string(before) != string(after) {
			t.Fatal("second run replaced valid files")
		}
	})
	t.Run("other hosts, expiring soon or force: regenerated", func(t *testing.T) {
		for _, o := range []Options{
			{Hosts: []string{"gateway.example.test"}},
			{Now: func() time.Time { return time.Now().Add(89 * 24 * time.Hour) }},
			{Force: true},
		} {
			g, err := Generate(dir, o)
			if err != nil {
				t.Fatal(err)
			}
			if !g.Created {
				t.Fatalf("options %+v: files kept", o)
			}
		}
	})
}
