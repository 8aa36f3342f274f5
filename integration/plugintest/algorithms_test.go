package plugintest

import (
	"context"
	"crypto"
	"crypto/ecdsa"
	"crypto/ed25519"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/rsa"
	"encoding/base64"
	"encoding/json"
	"math/big"
	"net/http"
	"net/http/httptest"
	"testing"
	"time"

	"github.com/golang-jwt/jwt/v5"
)

// TestJWTAuthEveryAlgorithm signs a token with each of the ten algorithms the plugin
// supports (golang-jwt signs: an implementation independent of the plugin's), publishes one
// key per algorithm, and checks compiled and under Yaegi that each token is accepted, that
// the same token with its signature from another algorithm's key (same kid) is refused for
// its signature, and that an algorithm outside the allow-list is refused as such.
func TestJWTAuthEveryAlgorithm(t *testing.T) {
	type alg struct {
		name     string
		priv     crypto.Signer
		jwk      map[string]any
		stranger crypto.Signer // a key of the same kind that is not published
	}
	b64 := base64.RawURLEncoding.EncodeToString
	fixed := func(n *big.Int, size int) string { return b64(n.FillBytes(make([]byte, size))) }
	rk, err := rsa.GenerateKey(rand.Reader, 2048)
	if err != nil {
		t.Fatal(err)
	}
	rk2, err := rsa.GenerateKey(rand.Reader, 2048)
	if err != nil {
		t.Fatal(err)
	}
	var algs []alg
	for _, name := range []string{"RS256", "RS384", "RS512", "PS256", "PS384", "PS512"} {
		algs = append(algs, alg{name, rk, map[string]any{"kty": "RSA", "n": b64(rk.N.Bytes()), "e": b64(big.NewInt(int64(rk.E)).Bytes())}, rk2})
	}
	for _, c := range []struct {
		name, crv string
		curve     elliptic.Curve
		size      int
	}{{"ES256", "P-256", elliptic.P256(), 32}, {"ES384", "P-384", elliptic.P384(), 48}, {"ES512", "P-521", elliptic.P521(), 66}} {
		k, err := ecdsa.GenerateKey(c.curve, rand.Reader)
		if err != nil {
			t.Fatal(err)
		}
		k2, err := ecdsa.GenerateKey(c.curve, rand.Reader)
		if err != nil {
			t.Fatal(err)
		}
		algs = append(algs, alg{c.name, k, map[string]any{"kty": "EC", "crv": c.crv, "x": fixed(k.X, c.size), "y": fixed(k.Y, c.size)}, k2})
	}
	pub, priv, err := ed25519.GenerateKey(rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	_, priv2, err := ed25519.GenerateKey(rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	algs = append(algs, alg{"EdDSA", priv, map[string]any{"kty": "OKP", "crv": "Ed25519", "x": b64(pub)}, priv2})

	var keys []any
	var names []any
	for _, a := range algs {
		a.jwk["kid"] = a.name
		a.jwk["alg"] = a.name
		a.jwk["use"] = "sig"
		keys = append(keys, a.jwk)
		names = append(names, a.name)
	}
	jwks, err := json.Marshal(map[string]any{"keys": keys})
	if err != nil {
		t.Fatal(err)
	}
	idp := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) {
		w.Header().Set("Content-Type", "application/json")
		_, _ = w.Write(jwks)
	}))
	defer idp.Close()

	const issuerURL = "https://kc.example/realms/algorithms"
	sign := func(t *testing.T, name string, key crypto.Signer) string {
		t.Helper()
		tk := jwt.NewWithClaims(jwt.GetSigningMethod(name), jwt.MapClaims{
			"iss": issuerURL, "aud": "core-broker", "sub": "user-1", "azp": "svc",
			"exp": time.Now().Add(time.Hour).Unix(), "iat": time.Now().Unix(),
		})
		tk.Header["kid"] = name
		s, err := tk.SignedString(key)
		if err != nil {
			t.Fatal(err)
		}
		return s
	}
	for _, b := range jwtBuilders(t) {
		t.Run(b.Name, func(t *testing.T) {
			ctx, cancel := context.WithCancel(context.Background())
			defer cancel()
			build := func(allowed []any) http.Handler {
				h, err := b.New(ctx, &upstream{}, map[string]any{
					"issuer": issuerURL, "jwksUrl": idp.URL, "audiences": []any{"core-broker"}, "algorithms": allowed,
				}, "algorithms")
				if err != nil {
					t.Fatal(err)
				}
				return h
			}
			do := func(h http.Handler, tok string) (int, string) {
				w := serveBearer(h, tok)
				var body struct {
					Description string `json:"error_description"`
				}
				_ = json.Unmarshal(w.Body.Bytes(), &body)
				return w.Code, body.Description
			}
			all := build(names)
			onlyRS256 := build([]any{"RS256"})
			for _, a := range algs {
				tok := sign(t, a.name, a.priv)
				if code, why := do(all, tok); code != http.StatusOK {
					t.Errorf("%s: %d %q, want 200", a.name, code, why)
				}
				// The same kid, header and claims, signed by a key that is not published.
				if code, why := do(all, sign(t, a.name, a.stranger)); code != http.StatusUnauthorized || why != "the token signature is invalid" {
					t.Errorf("%s signed by another key: %d %q, want 401 for its signature", a.name, code, why)
				}
				if a.name != "RS256" {
					if code, why := do(onlyRS256, tok); code != http.StatusUnauthorized || why != "the token algorithm is not allowed" {
						t.Errorf("%s when only RS256 is allowed: %d %q, want 401 for its algorithm", a.name, code, why)
					}
				}
			}
		})
	}
}
