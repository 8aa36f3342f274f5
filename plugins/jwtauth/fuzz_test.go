package jwtauth

import (
	"encoding/base64"
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"strings"
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
	a := newTestAuth(f, idp, nil)
	if v := a.verdictFor(valid); v.reject != nil {
		f.Fatalf("seed token rejected: %s", v.reject.reason)
	}
	f.Fuzz(func(t *testing.T, tok string) {
		r := httptest.NewRequest(http.MethodGet, "/", nil)
		r.Header["Authorization"] = []string{"Bearer " + tok}
		w := httptest.NewRecorder()
		a.ServeHTTP(w, r)
		// Spaces and tabs around the token are not part of it (the Bearer rule).
		if w.Code == http.StatusOK && strings.Trim(tok, " \t") != valid {
			t.Fatalf("a token that the issuer did not sign was accepted: %q", tok)
		}
	})
}

// FuzzClaimValue: whatever JSON a claim holds, the header value built from it is either
// refused or free of control characters, line and paragraph separators and bidirectional
// controls, and an array's elements never hold a comma.
func FuzzClaimValue(f *testing.F) {
	for _, seed := range []string{`"svc"`, `42`, `true`, `null`, `{"a":1}`, `["a","b"]`, `["x,y"]`, `"a\u2028b"`,
		`"a\u0085b"`, `["a",{"b":1}]`, `[[1]]`, `"\u202egpj"`, `1e308`, `-0.5`} {
		f.Add(seed, false)
		f.Add(seed, true)
	}
	a := &jwtAuth{rej: newRejections(&settings{realm: "r"})}
	f.Fuzz(func(t *testing.T, raw string, sub bool) {
		var v any
		if json.Unmarshal([]byte(raw), &v) != nil {
			return
		}
		path := []string{"x"}
		if sub {
			path = []string{"sub"}
		}
		out, rej := a.claimValue(map[string]any{path[0]: v}, path)
		if rej != nil {
			return
		}
		if unsafeClaimText(out) {
			t.Fatalf("%s: forwarded %q", raw, out)
		}
		if list, ok := v.([]any); ok && len(strings.Split(out, ",")) != len(list) && out != "" {
			t.Fatalf("%s: %d elements forwarded as %q", raw, len(list), out)
		}
		if _, isString := v.(string); sub && v != nil && !isString {
			t.Fatalf("%s: sub that is not a string forwarded as %q", raw, out)
		}
		for _, r := range out {
			if r < 0x20 || (r >= 0x7f && r <= 0x9f) || r == 0x2028 || r == 0x2029 {
				t.Fatalf("%s: forwarded %q", raw, out)
			}
		}
	})
}
