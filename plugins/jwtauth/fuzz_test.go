package jwtauth

import (
	"crypto/ecdsa"
	"crypto/ed25519"
	"crypto/rsa"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"math/big"
	"net/http"
	"net/http/httptest"
	"regexp"
	"strconv"
	"strings"
	"testing"
	"time"
	"unicode"

	"github.com/golang-jwt/jwt/v5"
)

// FuzzParseKeySet: any JWKS document is refused exactly when it is not a JSON object whose
// keys is an array (or null), and otherwise every entry is either a key or a skip line. Each
// key:
//   - carries its entry's kid (no kid: "", matched only when one key fits the token's alg),
//     kty, crv and alg, and came from an entry for signatures (use sig or none, key_ops with
//     verify or none);
//   - holds the Go key type of its kty, an EC key on the curve its crv names, an Ed25519 key
//     of 32 bytes, an RSA key of at least minRSABits with an odd exponent ≥ 3;
//   - has no alg, or a supported alg that fits its own kty and crv; no key fits "none" or an
//     HMAC algorithm;
//   - written back as a JWK and parsed again, is the same key;
//   - is found by its kid for the algorithms it fits; find never returns a key of another
//     kid or for an algorithm it does not fit, and without a kid only the one key that fits.
//
// Parsing the same document twice gives the same keys in the same order.
func FuzzParseKeySet(f *testing.F) {
	for alg := range supportedAlgorithms {
		if algFamily[alg] == "" {
			f.Fatalf("algFamily lacks the supported alg %s", alg)
		}
	}
	k0 := testRSAKey(f, 0)
	ec := newECKey(f)
	rsaN := func(bits int) string { // an odd modulus of exactly bits bits
		n := new(big.Int).Lsh(big.NewInt(1), uint(bits-1))
		return base64.RawURLEncoding.EncodeToString(n.Or(n, big.NewInt(1)).Bytes())
	}
	f.Add(mustJSON(f, map[string]any{"keys": []any{rsaJWK("a", &k0.PublicKey)}}))
	f.Add(mustJSON(f, map[string]any{"keys": []any{ecJWK("e", &ec.PublicKey)}}))
	f.Add(mustJSON(f, map[string]any{"keys": []any{rsaJWK("a", &k0.PublicKey), ecJWK("e", &ec.PublicKey),
		rsaJWK("b", &testRSAKey(f, 1).PublicKey), rsaJWK("a", &testRSAKey(f, 2).PublicKey)}}))
	f.Add(mustJSON(f, map[string]any{"keys": []any{rsaJWK("Xv_3Gq-kP0cB1oRnT7eW", &k0.PublicKey)}})) // kids as Keycloak writes them
	f.Add([]byte(`{"keys":[{"kty":"OKP","crv":"Ed25519","x":"11qYAYKxCrfVS_7TyWQHOg7hcvPapiMlrwIaaPcHURo"}]}`))
	f.Add([]byte(`{"keys":[{"kty":"OKP","crv":"Ed25519","kid":" Ed Key ","alg":"EdDSA","x":"11qYAYKxCrfVS_7TyWQHOg7hcvPapiMlrwIaaPcHURo"}]}`))
	f.Add([]byte(`{"keys":[{"kty":"RSA","n":"AQAB","e":"AQAB"}]}`))
	f.Add([]byte(`{"keys":[{"kty":"RSA","kid":"min-1","n":"` + rsaN(minRSABits-1) + `","e":"AQAB"}]}`))
	f.Add([]byte(`{"keys":[{"kty":"RSA","kid":"min","n":"` + rsaN(minRSABits) + `","e":"AQAB"}]}`))
	f.Add([]byte(`{"keys":[{"kty":"RSA","kid":"even-e","n":"` + rsaN(minRSABits) + `","e":"AQAA"}]}`))
	f.Add([]byte(`{"keys":[{"kty":"RSA","kid":"ec-alg","alg":"ES256","n":"` + rsaN(minRSABits) + `","e":"AQAB"}]}`))
	f.Add([]byte(`{"keys":[{"kty":"RSA","kid":"none","alg":"none","n":"` + rsaN(minRSABits) + `","e":"AQAB"}]}`))
	es384OnP256 := ecJWK("p384-alg", &ec.PublicKey)
	es384OnP256["alg"] = "ES384"
	f.Add(mustJSON(f, map[string]any{"keys": []any{es384OnP256}}))
	encryption := rsaJWK("ops", &k0.PublicKey)
	encryption["key_ops"] = []string{"encrypt", "wrapKey"}
	f.Add(mustJSON(f, map[string]any{"keys": []any{encryption}}))
	f.Add([]byte(`{"keys":[{"kty":"oct","kid":"h","alg":"HS256","k":"c2VjcmV0"}]}`))
	f.Add([]byte(`{"keys":null}`))
	f.Add([]byte(`{"keys":{}}`))
	f.Add([]byte(`[]`))
	f.Fuzz(func(t *testing.T, body []byte) {
		ks, skipped, err := parseKeySet(body)
		var doc struct {
			Keys []json.RawMessage `json:"keys"`
		}
		if docErr := json.Unmarshal(body, &doc); (err != nil) != (docErr != nil) {
			t.Fatalf("parseKeySet error %v, the document decodes with error %v", err, docErr)
		}
		if err != nil {
			return
		}
		if len(ks.all)+len(skipped) != len(doc.Keys) {
			t.Fatalf("%d entries gave %d keys and %d skip lines", len(doc.Keys), len(ks.all), len(skipped))
		}
		// The entries that became keys, in order: all but those a skip line names.
		skippedAt := map[int]bool{}
		for _, s := range skipped {
			var i int
			if _, err := fmt.Sscanf(s, "key %d", &i); err != nil || i < 0 || i >= len(doc.Keys) || skippedAt[i] {
				t.Fatalf("skip line %q names no entry of its own", s)
			}
			skippedAt[i] = true
		}
		n := 0
		for i, raw := range doc.Keys {
			if skippedAt[i] {
				continue
			}
			var j jwk
			if err := json.Unmarshal(raw, &j); err != nil {
				t.Fatalf("entry %d (%s) does not decode (%v) but was not skipped", i, raw, err)
			}
			checkKey(t, ks.all[n], &j)
			n++
		}
		inByKid := 0
		for kid, list := range ks.byKid {
			for _, k := range list {
				if k.kid != kid {
					t.Fatalf("key of kid %q filed under %q", k.kid, kid)
				}
			}
			inByKid += len(list)
		}
		if inByKid != len(ks.all) {
			t.Fatalf("%d keys, %d filed by kid", len(ks.all), inByKid)
		}
		for kid := range ks.byKid {
			checkFind(t, ks, kid)
		}
		checkFind(t, ks, "")
		again, skippedAgain, _ := parseKeySet(body)
		if len(again.all) != len(ks.all) || strings.Join(skippedAgain, "\n") != strings.Join(skipped, "\n") {
			t.Fatalf("parsed twice: %d then %d keys, skipped %q then %q", len(ks.all), len(again.all), skipped, skippedAgain)
		}
		for i, k := range ks.all {
			if !sameKey(k, again.all[i]) {
				t.Fatalf("parsed twice: key %d is %+v, then %+v", i, k, again.all[i])
			}
		}
	})
}

// checkKey checks one parsed key against the entry it came from (see FuzzParseKeySet).
func checkKey(t *testing.T, k *verifyKey, j *jwk) {
	t.Helper()
	if k.kid != j.Kid || k.kty != j.Kty || k.crv != j.Crv || k.alg != j.Alg {
		t.Fatalf("entry kid %q kty %q crv %q alg %q became kid %q kty %q crv %q alg %q",
			j.Kid, j.Kty, j.Crv, j.Alg, k.kid, k.kty, k.crv, k.alg)
	}
	if j.Use != "" && j.Use != "sig" {
		t.Fatalf("kid %q: a key with use %q accepted", k.kid, j.Use)
	}
	if len(j.KeyOps) > 0 && !strings.Contains(" "+strings.Join(j.KeyOps, " ")+" ", " verify ") {
		t.Fatalf("kid %q: a key with key_ops %q accepted", k.kid, j.KeyOps)
	}
	switch pub := k.key.(type) {
	case *rsa.PublicKey:
		if k.kty != "RSA" || pub.N.BitLen() < minRSABits || pub.E < 3 || pub.E%2 == 0 {
			t.Fatalf("kid %q: kty %q holds an RSA key of %d bits, exponent %d", k.kid, k.kty, pub.N.BitLen(), pub.E)
		}
	case *ecdsa.PublicKey:
		if k.kty != "EC" || pub.Curve.Params().Name != k.crv || !pub.Curve.IsOnCurve(pub.X, pub.Y) {
			t.Fatalf("kid %q: kty %q crv %q holds an EC key on %s", k.kid, k.kty, k.crv, pub.Curve.Params().Name)
		}
	case ed25519.PublicKey:
		if k.kty != "OKP" || k.crv != "Ed25519" || len(pub) != ed25519.PublicKeySize {
			t.Fatalf("kid %q: kty %q crv %q holds an Ed25519 key of %d bytes", k.kid, k.kty, k.crv, len(pub))
		}
	default:
		t.Fatalf("kid %q: kty %q holds a %T", k.kid, k.kty, k.key)
	}
	if family, ok := algFamily[k.alg]; k.alg != "" && (!ok || family != k.kty+" "+k.crv && family != k.kty) {
		t.Fatalf("kid %q: kty %q crv %q accepted with alg %q, which it cannot verify", k.kid, k.kty, k.crv, k.alg)
	}
	for _, alg := range []string{"none", "HS256", "HS384", "HS512"} {
		if k.fits(alg) {
			t.Fatalf("kid %q fits alg %q", k.kid, alg)
		}
	}
	back, skipped, err := parseKeySet(mustJSON(t, map[string]any{"keys": []any{jwkOf(k)}}))
	if err != nil || len(back.all) != 1 || !sameKey(k, back.all[0]) {
		t.Fatalf("kid %q written back as %v and parsed again: %v, skipped %q", k.kid, jwkOf(k), err, skipped)
	}
}

// checkFind checks what ks.find answers for a token's kid: with a kid, a key of that kid that
// fits the alg whenever one exists, never another; without, the one key that fits the alg,
// none when several do. No key for "none" or an HMAC algorithm.
func checkFind(t *testing.T, ks *keySet, kid string) {
	t.Helper()
	for alg := range supportedAlgorithms {
		fit := 0
		for _, k := range ks.all {
			if (kid == "" || k.kid == kid) && k.fits(alg) {
				fit++
			}
		}
		found := ks.find(kid, alg)
		if found != nil && (!found.fits(alg) || kid != "" && found.kid != kid) {
			t.Fatalf("find(%q, %s) returned kid %q, which fits %s: %t", kid, alg, found.kid, alg, found.fits(alg))
		}
		if want := fit > 0 && (kid != "" || fit == 1); (found != nil) != want {
			t.Fatalf("find(%q, %s) found %t; %d keys fit", kid, alg, found != nil, fit)
		}
	}
	for _, alg := range []string{"none", "None", "", "HS256", "HS512"} {
		if ks.find(kid, alg) != nil {
			t.Fatalf("find(%q, %q) found a key", kid, alg)
		}
	}
}

// algFamily is the kty (and crv) that each supported alg needs (RFC 7518 §3.1, RFC 8037).
var algFamily = map[string]string{
	"RS256": "RSA", "RS384": "RSA", "RS512": "RSA", "PS256": "RSA", "PS384": "RSA", "PS512": "RSA",
	"ES256": "EC P-256", "ES384": "EC P-384", "ES512": "EC P-521", "EdDSA": "OKP Ed25519",
}

// jwkOf writes a parsed key back as a JWK.
func jwkOf(k *verifyKey) map[string]any {
	enc := base64.RawURLEncoding.EncodeToString
	m := map[string]any{"kid": k.kid, "kty": k.kty}
	if k.alg != "" {
		m["alg"] = k.alg
	}
	if k.crv != "" {
		m["crv"] = k.crv
	}
	switch pub := k.key.(type) {
	case *rsa.PublicKey:
		m["n"] = enc(pub.N.Bytes())
		m["e"] = enc(big.NewInt(int64(pub.E)).Bytes())
	case *ecdsa.PublicKey:
		size := (pub.Curve.Params().BitSize + 7) / 8
		m["x"] = enc(pub.X.FillBytes(make([]byte, size)))
		m["y"] = enc(pub.Y.FillBytes(make([]byte, size)))
	case ed25519.PublicKey:
		m["x"] = enc(pub)
	}
	return m
}

func sameKey(a, b *verifyKey) bool {
	if a.kid != b.kid || a.kty != b.kty || a.alg != b.alg || a.crv != b.crv {
		return false
	}
	switch pa := a.key.(type) {
	case *rsa.PublicKey:
		return pa.Equal(b.key)
	case *ecdsa.PublicKey:
		return pa.Equal(b.key)
	case ed25519.PublicKey:
		return pa.Equal(b.key)
	}
	return false
}

// FuzzVerify: a token is accepted only when it is one the issuer signed with valid claims
// (spaces around it aside), whatever the fuzzer makes of them and of the seeds below: the
// same claims signed with another key under the issuer's kid, with HS256 and the public key
// as secret, unsigned (alg none in several spellings), with a signature of another token,
// and tokens the issuer signed whose claims are expired, not yet valid, of another issuer or
// audience, or lack exp. Every answer: the upstream is called exactly on 200; a refusal is
// 401 with a Bearer challenge or 403; the same token asked again
// (now answered from the caches) gets the same answer.
func FuzzVerify(f *testing.F) {
	k0 := testRSAKey(f, 0)
	k1 := testRSAKey(f, 1)
	idp := newFakeIdP(f, rsaJWK("k0", &k0.PublicKey))
	iss := idp.issuerURL()
	valid := sign(f, k0, jwt.SigningMethodRS256, "k0", iss, nil)
	validOther := sign(f, k0, jwt.SigningMethodRS256, "k0", iss, map[string]any{"sub": "user-2", "scope": "broker:read"})
	noKid := sign(f, k0, jwt.SigningMethodRS256, "", iss, nil) // the only key fits: accepted
	acceptable := map[string]bool{valid: true, validOther: true, noKid: true}
	for tok := range acceptable {
		f.Add(tok)
	}
	seg := func(s string) string { return base64.RawURLEncoding.EncodeToString([]byte(s)) }
	parts := strings.Split(valid, ".")
	otherSig := strings.Split(validOther, ".")[2]
	f.Add(sign(f, k1, jwt.SigningMethodRS256, "k0", iss, nil))
	hmac := jwt.NewWithClaims(jwt.SigningMethodHS256, jwt.MapClaims{"iss": iss, "sub": "user-1", "aud": "core-broker",
		"exp": time.Now().Add(time.Minute).Unix()})
	hmac.Header["kid"] = "k0"
	if s, err := hmac.SignedString(mustJSON(f, rsaJWK("k0", &k0.PublicKey))); err == nil {
		f.Add(s)
	}
	for _, none := range []string{"none", "None", "NONE", "nOnE"} {
		f.Add(seg(`{"alg":"`+none+`","kid":"k0"}`) + "." + parts[1] + ".")
		f.Add(seg(`{"alg":"`+none+`","kid":"k0"}`) + "." + parts[1] + "." + parts[2])
	}
	f.Add(parts[0] + "." + parts[1] + "." + otherSig)
	f.Add(parts[0] + "." + strings.Split(validOther, ".")[1] + "." + parts[2])
	f.Add(sign(f, k0, jwt.SigningMethodRS256, "k0", iss, map[string]any{"exp": time.Now().Add(-time.Hour).Unix()}))
	f.Add(sign(f, k0, jwt.SigningMethodRS256, "k0", iss, map[string]any{"nbf": time.Now().Add(time.Hour).Unix()}))
	f.Add(sign(f, k0, jwt.SigningMethodRS256, "k0", iss+"x", nil))
	f.Add(sign(f, k0, jwt.SigningMethodRS256, "k0", iss, map[string]any{"aud": "someone-else"}))
	f.Add(sign(f, k0, jwt.SigningMethodRS256, "k0", iss, map[string]any{"exp": nil}))
	f.Add(sign(f, k0, jwt.SigningMethodRS256, "k0", iss, map[string]any{"sub": 7}))
	f.Add("e30.e30.e30")
	f.Add("..")
	f.Add(" " + valid + "\t")
	f.Add(seg(`{"alg":"RS256","kid":7}`) + ".e30.AA")
	f.Add(sign(f, k0, jwt.SigningMethodPS256, "k0", iss, nil)) // the key's alg is RS256
	// Every supported algorithm allowed: the key's kty, crv and alg must do the refusing.
	a := newTestAuth(f, idp, func(c *Config) {
		for alg := range supportedAlgorithms {
			c.Algorithms = append(c.Algorithms, alg)
		}
	})
	// A fixed clock: the seeds' exp (a minute after they were signed) never passes mid-run.
	signed := time.Now()
	a.now = func() time.Time { return signed }
	reached := false
	a.next = http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { reached = true })
	for tok := range acceptable {
		if v := a.verdictFor(tok); v.reject != nil {
			f.Fatalf("seed token rejected: %s", v.reject.reason)
		}
	}
	serve := func(tok string) (*httptest.ResponseRecorder, bool) {
		reached = false
		r := httptest.NewRequest(http.MethodGet, "/", nil)
		r.Header["Authorization"] = []string{"Bearer " + tok}
		w := httptest.NewRecorder()
		a.ServeHTTP(w, r)
		return w, reached
	}
	f.Fuzz(func(t *testing.T, tok string) {
		w, up := serve(tok)
		// Spaces and tabs around the token are not part of it (the Bearer rule).
		if w.Code == http.StatusOK && !acceptable[strings.Trim(tok, " \t")] {
			t.Fatalf("accepted a token that is not one the issuer signed with valid claims: %q", tok)
		}
		if up != (w.Code == http.StatusOK) {
			t.Fatalf("status %d, upstream reached: %t", w.Code, up)
		}
		switch w.Code {
		case http.StatusOK, http.StatusForbidden:
		case http.StatusUnauthorized:
			if !strings.HasPrefix(w.Header().Get("WWW-Authenticate"), "Bearer ") {
				t.Fatalf("401 with WWW-Authenticate %q", w.Header().Get("WWW-Authenticate"))
			}
		default:
			t.Fatalf("status %d", w.Code)
		}
		w2, _ := serve(tok)
		if w2.Code != w.Code || w2.Body.String() != w.Body.String() {
			t.Fatalf("asked twice: %d %q, then %d %q", w.Code, w.Body, w2.Code, w2.Body)
		}
	})
}

// FuzzClaimValue: whatever JSON a claim holds, the header value built from it follows the
// rule of claimValue, checked against an oracle written apart from it (Unicode's own tables
// for the characters refused):
//   - absent or null: no header; an object: refused; sub and azp: strings only;
//   - a string is forwarded exactly as it is; a number in plain decimal (no exponent), the
//     shortest that reads back as the same float64; a boolean as true or false;
//   - an array of those is the elements so rendered, joined with ","; an element that is an
//     object, an array or null, or holds a comma, refuses the token;
//   - any value holding a control character (C0, DEL, C1), a line or paragraph separator or
//     a bidirectional control refuses the token; nothing else is refused.
func FuzzClaimValue(f *testing.F) {
	for _, seed := range []string{`"svc"`, `42`, `true`, `false`, `null`, `{"a":1}`, `["a","b"]`, `["x,y"]`, `"a\u2028b"`,
		`"a\u0085b"`, `["a",{"b":1}]`, `[[1]]`, `[null]`, `[]`, `"\u202egpj"`, `"\u2066x"`, `"\u061c"`, `1e308`, `-0.5`,
		`1e21`, `123456789012345678901234567890`, `5e-324`, `"café ☕ 東京"`, `"a b\"c"`, `"\u00a0"`, `"\u200d"`} {
		for path := byte(0); path < 4; path++ {
			f.Add(seed, path)
		}
	}
	a := &jwtAuth{rej: newRejections(&settings{realm: "r"})}
	f.Fuzz(func(t *testing.T, raw string, pathSel byte) {
		var v any
		if json.Unmarshal([]byte(raw), &v) != nil {
			return
		}
		claims := map[string]any{}
		var path []string
		switch pathSel % 4 {
		case 0:
			path = []string{"x"}
			claims["x"] = v
		case 1:
			path = []string{"sub"}
			claims["sub"] = v
		case 2:
			path = []string{"azp"}
			claims["azp"] = v
		case 3:
			path = []string{"ext", "tenant"}
			claims["ext"] = map[string]any{"tenant": v}
		}
		out, rej := a.claimValue(claims, path)
		want, ok := claimOracle(v, len(path) == 1 && (path[0] == "sub" || path[0] == "azp"))
		if !ok {
			if rej == nil {
				t.Fatalf("%s at %v: forwarded %q, want the token refused", raw, path, out)
			}
			if rej != a.rej.claimType && rej != a.rej.claimComma && rej != a.rej.controlChars {
				t.Fatalf("%s at %v: refused as %s", raw, path, rej.reason)
			}
			return
		}
		if rej != nil {
			t.Fatalf("%s at %v: refused (%s), want it forwarded", raw, path, rej.reason)
		}
		got := []string{out}
		if v == nil {
			got = nil
		}
		if _, isList := v.([]any); isList {
			got = strings.Split(out, ",")
			if out == "" && (len(want) == 0 || len(want) == 1 && want[0] == "") {
				return // [] and [""] both forward nothing
			}
		}
		if len(got) != len(want) {
			t.Fatalf("%s at %v: forwarded %q, %d values for %d", raw, path, out, len(got), len(want))
		}
		for i, w := range want {
			if !renders(got[i], w) {
				t.Fatalf("%s at %v: forwarded %q, value %d %q does not render %#v", raw, path, out, i, got[i], w)
			}
		}
	})
}

var plainDecimal = regexp.MustCompile(`^-?[0-9]+(\.[0-9]+)?$`)

// renders reports whether s is how a claim value x must be forwarded: a string as it is, a
// boolean as true or false, a number in plain decimal that reads back as the same float64.
func renders(s string, x any) bool {
	switch x := x.(type) {
	case string:
		return s == x
	case bool:
		return s == strconv.FormatBool(x)
	case float64:
		back, err := strconv.ParseFloat(s, 64)
		return plainDecimal.MatchString(s) && err == nil && back == x
	}
	return false
}

// claimOracle returns the values FuzzClaimValue expects forwarded for a claim (none for
// absent or null, the elements of an array, else the value), and false when the token must be
// refused.
func claimOracle(v any, mustBeString bool) ([]any, bool) {
	if v == nil {
		return nil, true
	}
	if _, isString := v.(string); mustBeString && !isString {
		return nil, false
	}
	list, isList := v.([]any)
	if !isList {
		list = []any{v}
	}
	for _, x := range list {
		var text string
		switch x := x.(type) {
		case string:
			text = x
		case bool, float64:
		default:
			return nil, false
		}
		if isList && strings.Contains(text, ",") {
			return nil, false
		}
		for _, r := range text {
			if unicode.IsControl(r) || unicode.In(r, unicode.Zl, unicode.Zp, unicode.Bidi_Control) {
				return nil, false
			}
		}
	}
	return list, true
}
