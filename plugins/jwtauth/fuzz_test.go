package jwtauth

import (
	"encoding/base64"
	"net/http"
	"net/http/httptest"
	"testing"

	"github.com/golang-jwt/jwt/v5"
)

// FuzzParseKeySet: any JWKS document is either refused or yields only keys that pass the
// size and type rules; it never panics.
func FuzzParseKeySet(f *testing.F) {
	k0 := testRSAKey(f, 0)
	f.Add(mustJSON(f, map[string]any{"keys": []any{rsaJWK("a", &k0.PublicKey)}}))
	f.Add(mustJSON(f, map[string]any{"keys": []any{ecJWK("e", &newECKey(f).PublicKey)}}))
	f.Add([]byte(`{"keys":[{"kty":"OKP","crv":"Ed25519","x":"11qYAYKxCrfVS_7TyWQHOg7hcvPapiMlrwIaaPcHURo"}]}`))
	f.Add([]byte(`{"keys":[{"kty":"RSA","n":"AQAB","e":"AQAB"}]}`))
	f.Add([]byte(`{"keys":null}`))
	f.Fuzz(func(t *testing.T, body []byte) {
		ks, _, err := parseKeySet(body)
		if err != nil {
			return
		}
		for _, k := range ks.all {
			if k.kty == "RSA" && k.key == nil {
				t.Fatal("RSA entry without key")
			}
			if k.kty != "RSA" && k.kty != "EC" && k.kty != "OKP" {
				t.Fatalf("key of type %q accepted", k.kty)
			}
		}
	})
}

// FuzzVerify: mutated tokens never panic and are never accepted unless they are exactly a
// token the issuer signed.
func FuzzVerify(f *testing.F) {
	k0 := testRSAKey(f, 0)
	idp := newFakeIdP(f, rsaJWK("k0", &k0.PublicKey))
	valid := sign(f, k0, jwt.SigningMethodRS256, "k0", idp.issuerURL(), nil)
	f.Add(valid)
	f.Add("e30.e30.e30")
	f.Add("..")
	f.Add(base64.RawURLEncoding.EncodeToString([]byte(`{"alg":"none"}`)) + ".e30.")
	f.Add(base64.RawURLEncoding.EncodeToString([]byte(`{"alg":"RS256","kid":7}`)) + ".e30.AA")
	a := newTestAuth(&testing.T{}, idp, nil)
	if v := a.verdictFor(valid); v.reject != nil {
		f.Fatalf("seed token rejected: %s", v.reject.reason)
	}
	f.Fuzz(func(t *testing.T, tok string) {
		r := httptest.NewRequest(http.MethodGet, "/", nil)
		r.Header["Authorization"] = []string{"Bearer " + tok}
		w := httptest.NewRecorder()
		a.ServeHTTP(w, r)
		if w.Code == http.StatusOK && tok != valid {
			t.Fatalf("a token that the issuer did not sign was accepted: %q", tok)
		}
	})
}
