package attacktest

import (
	"crypto/ecdsa"
	"crypto/ed25519"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/rsa"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/base64"
	"encoding/json"
	"encoding/pem"
	"math/big"
	"net/http"
	"net/http/httptest"
	"sync/atomic"
	"testing"
	"time"

	"github.com/golang-jwt/jwt/v5"
)

// attacker holds keys the gateway has never seen, and a JWKS server publishing them (what a
// jku/x5u header would point at): it counts its requests, which must stay at zero.
type attacker struct {
	rsa     *rsa.PrivateKey
	ec      *ecdsa.PrivateKey
	ed      ed25519.PrivateKey
	certDER []byte
	jwks    *httptest.Server
	fetches atomic.Int64
}

func newAttacker(t *testing.T) *attacker {
	t.Helper()
	a := &attacker{}
	var err error
	if a.rsa, err = rsa.GenerateKey(rand.Reader, 2048); err != nil {
		t.Fatal(err)
	}
	if a.ec, err = ecdsa.GenerateKey(elliptic.P256(), rand.Reader); err != nil {
		t.Fatal(err)
	}
	if _, a.ed, err = ed25519.GenerateKey(rand.Reader); err != nil {
		t.Fatal(err)
	}
	tmpl := &x509.Certificate{SerialNumber: big.NewInt(1), Subject: pkix.Name{CommonName: "attacker"},
		NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(time.Hour)}
	if a.certDER, err = x509.CreateCertificate(rand.Reader, tmpl, tmpl, &a.rsa.PublicKey, a.rsa); err != nil {
		t.Fatal(err)
	}
	a.jwks = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) {
		a.fetches.Add(1)
		w.Header().Set("Content-Type", "application/json")
		_ = json.NewEncoder(w).Encode(map[string]any{"keys": []any{a.publicJWK("attacker")}})
	}))
	t.Cleanup(a.jwks.Close)
	return a
}

func (a *attacker) publicJWK(kid string) map[string]any {
	return map[string]any{"kty": "RSA", "kid": kid, "use": "sig", "alg": "RS256",
		"n": b64(a.rsa.PublicKey.N.Bytes()), "e": b64(big.NewInt(int64(a.rsa.PublicKey.E)).Bytes())}
}

func b64(b []byte) string { return base64.RawURLEncoding.EncodeToString(b) }

// sign builds a compact JWS from a header and claims as given (header keys replace the
// defaults typ JWT and alg of method; a nil value deletes one) signed with method and key.
func sign(t *testing.T, method jwt.SigningMethod, key any, header map[string]any, claims jwt.MapClaims) string {
	t.Helper()
	tk := jwt.NewWithClaims(method, claims)
	for k, v := range header {
		if v == nil {
			delete(tk.Header, k)
			continue
		}
		tk.Header[k] = v
	}
	s, err := tk.SignedString(key)
	if err != nil {
		t.Fatal(err)
	}
	return s
}

// signRaw signs the JSON texts exactly as written (duplicate keys and all) with RS256.
func signRaw(t *testing.T, key *rsa.PrivateKey, headerJSON, claimsJSON string) string {
	t.Helper()
	input := b64([]byte(headerJSON)) + "." + b64([]byte(claimsJSON))
	sig, err := jwt.SigningMethodRS256.Sign(input, key)
	if err != nil {
		t.Fatal(err)
	}
	return input + "." + b64(sig)
}

// unsigned is a token with alg set to alg and an empty signature.
func unsigned(t *testing.T, alg string, claims jwt.MapClaims) string {
	t.Helper()
	h, _ := json.Marshal(map[string]any{"alg": alg, "typ": "JWT"})
	c, err := json.Marshal(claims)
	if err != nil {
		t.Fatal(err)
	}
	return b64(h) + "." + b64(c) + "."
}

// publicKeyPEM is the issuer's public key as an HS* attacker would use it for a secret.
func publicKeyPEM(t *testing.T, k *rsa.PrivateKey) []byte {
	t.Helper()
	der, err := x509.MarshalPKIXPublicKey(k.Public())
	if err != nil {
		t.Fatal(err)
	}
	return pem.EncodeToMemory(&pem.Block{Type: "PUBLIC KEY", Bytes: der})
}
