package jwtauth

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/rsa"
	"encoding/base64"
	"encoding/json"
	"math/big"
	"net/http"
	"net/http/httptest"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/golang-jwt/jwt/v5"
)

var (
	keyOnce sync.Once
	rsaKeys []*rsa.PrivateKey
)

// testRSAKey returns one of a few RSA keys generated once per test binary.
func testRSAKey(t testing.TB, i int) *rsa.PrivateKey {
	keyOnce.Do(func() {
		for n := 0; n < 3; n++ {
			k, err := rsa.GenerateKey(rand.Reader, 2048)
			if err != nil {
				panic(err)
			}
			rsaKeys = append(rsaKeys, k)
		}
	})
	return rsaKeys[i]
}

func rsaJWK(kid string, pub *rsa.PublicKey) map[string]any {
	return map[string]any{
		"kty": "RSA", "kid": kid, "alg": "RS256", "use": "sig",
		"n": base64.RawURLEncoding.EncodeToString(pub.N.Bytes()),
		"e": base64.RawURLEncoding.EncodeToString(big.NewInt(int64(pub.E)).Bytes()),
	}
}

func ecJWK(kid string, pub *ecdsa.PublicKey) map[string]any {
	size := (pub.Curve.Params().BitSize + 7) / 8
	return map[string]any{
		"kty": "EC", "kid": kid, "crv": pub.Curve.Params().Name, "use": "sig",
		"x": base64.RawURLEncoding.EncodeToString(pub.X.FillBytes(make([]byte, size))),
		"y": base64.RawURLEncoding.EncodeToString(pub.Y.FillBytes(make([]byte, size))),
	}
}

func newECKey(t testing.TB) *ecdsa.PrivateKey {
	k, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	return k
}

// fakeIdP serves a discovery document and a JWKS whose content tests change at will, and
// counts the JWKS fetches.
type fakeIdP struct {
	srv     *httptest.Server
	mu      sync.Mutex
	keys    []map[string]any
	raw     []byte // when set, served as the JWKS body instead of keys
	status  int
	delay   time.Duration
	issuer  string // announced in discovery; default srv.URL+"/realms/test"
	fetches atomic.Int64
}

func newFakeIdP(t testing.TB, keys ...map[string]any) *fakeIdP {
	f := &fakeIdP{keys: keys, status: http.StatusOK}
	mux := http.NewServeMux()
	mux.HandleFunc("/realms/test/.well-known/openid-configuration", func(w http.ResponseWriter, r *http.Request) {
		f.mu.Lock()
		iss := f.issuer
		f.mu.Unlock()
		if iss == "" {
			iss = f.issuerURL()
		}
		json.NewEncoder(w).Encode(map[string]string{"issuer": iss, "jwks_uri": f.issuerURL() + "/certs"})
	})
	mux.HandleFunc("/realms/test/certs", func(w http.ResponseWriter, r *http.Request) {
		f.fetches.Add(1)
		f.mu.Lock()
		delay, status, raw := f.delay, f.status, f.raw
		body, _ := json.Marshal(map[string]any{"keys": f.keys})
		f.mu.Unlock()
		time.Sleep(delay)
		w.WriteHeader(status)
		if raw != nil {
			w.Write(raw)
			return
		}
		w.Write(body)
	})
	f.srv = httptest.NewServer(mux)
	t.Cleanup(f.srv.Close)
	return f
}

func (f *fakeIdP) issuerURL() string { return f.srv.URL + "/realms/test" }

func (f *fakeIdP) set(fn func(f *fakeIdP)) {
	f.mu.Lock()
	fn(f)
	f.mu.Unlock()
}

// sign makes an RS256 token for the fake IdP with the given claims merged over sane defaults.
func sign(t testing.TB, key any, method jwt.SigningMethod, kid string, iss string, over map[string]any) string {
	now := time.Now()
	claims := jwt.MapClaims{
		"iss": iss, "sub": "user-1", "aud": "core-broker", "azp": "svc",
		"exp": now.Add(time.Minute).Unix(), "iat": now.Unix(),
		"scope":        "broker:read broker:write",
		"realm_access": map[string]any{"roles": []string{"broker-user"}},
	}
	for k, v := range over {
		if v == nil {
			delete(claims, k)
			continue
		}
		claims[k] = v
	}
	tok := jwt.NewWithClaims(method, claims)
	if kid != "" {
		tok.Header["kid"] = kid
	}
	s, err := tok.SignedString(key)
	if err != nil {
		t.Fatal(err)
	}
	return s
}

func mustJSON(t testing.TB, v any) []byte {
	t.Helper()
	b, err := json.Marshal(v)
	if err != nil {
		t.Fatal(err)
	}
	return b
}
