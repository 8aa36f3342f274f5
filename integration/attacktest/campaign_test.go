package attacktest

import (
	"encoding/json"
	"fmt"
	"net/http"
	"net/url"
	"strings"
	"testing"
	"time"

	"github.com/golang-jwt/jwt/v5"
	"github.com/pavilion-trust/gateway/integration/echo"
)

// Exact error_description values of jwtauth's refusals.
const (
	descMissing   = "a bearer token is required"
	descMalformed = "the token is malformed"
	descSignature = "the token signature is invalid"
	descAlgorithm = "the token algorithm is not allowed"
	descExpired   = "the token has expired"
	descNotYet    = "the token is not valid yet"
	descFuture    = "the token was issued in the future"
	descIssuer    = "the token issuer is not accepted"
	descAudience  = "the token audience is not accepted"
	descUnknown   = "the token signing key is unknown"
	descNoExp     = "the token has no expiry"
	descClaims    = "the token claims are invalid"
	descControl   = "a token claim holds control characters"
	descType      = "a forwarded token claim has an unsupported type"
	descComma     = "a token claim array element holds a comma"
	descNotAccess = "the token is not an access token"
	descMultiple  = "more than one Authorization header"
	descRole      = "the token lacks a required role"
)

// attack is one case of the campaign.
type attack struct {
	name   string
	defect int    // the defect it pins; 0: from the JWT and proxy attack playbooks
	skip   string // only for defects fixed on another branch
	send   func(t *testing.T, e *env) answer
	status int    // exact status of the answer
	why    string // exact error_description of the JSON refusal, when set
	hits   int64  // requests of the case that reach an upstream, exactly (0: refused before it; -1: the case checks it)
	check  func(t *testing.T, e *env, a answer)
}

// env is what a case sends with: the stack, the attacker, and the case's own client id.
type env struct {
	*stack
	atk *attacker
	azp string
}

func (e *env) tok(t *testing.T, over map[string]any) string { return e.token(t, e.azp, over) }

func (e *env) claimsOf(t *testing.T, over map[string]any) jwt.MapClaims {
	return e.claims(t, e.azp, over)
}

func (e *env) issuerKey() any { return e.iss.PrivateKey(e.iss.CurrentKID()) }

// get sends GET path with the bearer token tok ("" for none) and more headers.
func (e *env) get(t *testing.T, path, tok string, headers ...string) answer {
	if tok != "" {
		headers = append([]string{"Authorization", "Bearer " + tok}, headers...)
	}
	return e.do(t, http.MethodGet, path, nil, headers...)
}

// withToken: GET /api/v1/accounts with a token of the case's client changed by over.
func withToken(over map[string]any, headers ...string) func(t *testing.T, e *env) answer {
	return func(t *testing.T, e *env) answer { return e.get(t, "/api/v1/accounts", e.tok(t, over), headers...) }
}

// withRaw: GET /api/v1/accounts with the token built by mk.
func withRaw(mk func(t *testing.T, e *env) string) func(t *testing.T, e *env) answer {
	return func(t *testing.T, e *env) answer { return e.get(t, "/api/v1/accounts", mk(t, e)) }
}

// rawHTTP1 sends the request lines (CRLF added) with Host, the case's token unless noAuth,
// and body after the blank line.
func rawHTTP1(lines []string, body string, auth bool) func(t *testing.T, e *env) answer {
	return func(t *testing.T, e *env) answer {
		var b strings.Builder
		b.WriteString(lines[0] + "\r\nHost: localhost\r\n")
		if auth {
			b.WriteString("Authorization: Bearer " + e.tok(t, nil) + "\r\n")
		}
		for _, l := range lines[1:] {
			b.WriteString(l + "\r\n")
		}
		b.WriteString("\r\n" + body)
		return e.raw(t, b.String())
	}
}

// seen is what the upstream received, from the echo answer.
func seen(t *testing.T, a answer) echo.Seen {
	t.Helper()
	return echo.Decode(t, a.body)
}

// absent fails if the upstream saw any of the headers.
func absent(names ...string) func(t *testing.T, e *env, a answer) {
	return func(t *testing.T, e *env, a answer) {
		t.Helper()
		h := seen(t, a).Headers
		for _, n := range names {
			if v, ok := h[n]; ok {
				t.Errorf("upstream received %s: %q", n, v)
			}
		}
	}
}

// header fails unless the upstream saw exactly one value, want, of name.
func header(name, want string) func(t *testing.T, e *env, a answer) {
	return func(t *testing.T, e *env, a answer) {
		t.Helper()
		if got := seen(t, a).Headers[name]; len(got) != 1 || got[0] != want {
			t.Errorf("upstream received %s = %q, want exactly %q", name, got, want)
		}
	}
}

func both(fs ...func(t *testing.T, e *env, a answer)) func(t *testing.T, e *env, a answer) {
	return func(t *testing.T, e *env, a answer) {
		t.Helper()
		for _, f := range fs {
			f(t, e, a)
		}
	}
}

// nextAnswers checks the statuses of the answers that followed the first on a raw connection.
func nextAnswers(want ...int) func(t *testing.T, e *env, a answer) {
	return func(t *testing.T, e *env, a answer) {
		t.Helper()
		if fmt.Sprint(a.next) != fmt.Sprint(want) {
			t.Errorf("answers after the first: %v, want %v", a.next, want)
		}
	}
}

// neverAt fails if an upstream ever received a request for path (smuggled requests).
func neverAt(path string) func(t *testing.T, e *env, a answer) {
	return func(t *testing.T, e *env, a answer) {
		t.Helper()
		for _, b := range e.brokers {
			for _, p := range b.Paths() {
				if strings.HasPrefix(p, path) {
					t.Errorf("%s received %s", b.Name, p)
				}
			}
		}
	}
}

func TestCampaign(t *testing.T) {
	s := startStack(t)
	atk := newAttacker(t)
	cases := campaign()
	if len(cases) < 60 {
		t.Fatalf("the campaign has %d cases, want at least 60", len(cases))
	}
	names := map[string]bool{}
	for i := range cases {
		c := &cases[i]
		if names[c.name] {
			t.Fatalf("two cases named %q", c.name)
		}
		names[c.name] = true
		t.Run(c.name, func(t *testing.T) {
			if c.skip != "" {
				t.Skip(c.skip)
			}
			e := &env{stack: s, atk: atk, azp: fmt.Sprintf("atk-%03d", i)}
			before := s.received()
			a := c.send(t, e)
			if a.err != nil && c.status != 0 {
				t.Fatalf("no answer: %v", a.err)
			}
			if a.status != c.status {
				t.Fatalf("status %d, want %d; body %.300q", a.status, c.status, a.body)
			}
			if c.why != "" {
				var body struct {
					Error       string `json:"error"`
					Description string `json:"error_description"`
				}
				if err := json.Unmarshal(a.body, &body); err != nil || body.Description != c.why {
					t.Fatalf("error_description %q, want %q (body %.300q)", body.Description, c.why, a.body)
				}
			}
			// The upstreams count every request they receive: the case's, nothing else runs.
			if got := s.received() - before; c.hits >= 0 && got != c.hits {
				t.Fatalf("%d request(s) of this case reached an upstream, want %d", got, c.hits)
			}
			if c.check != nil {
				c.check(t, e, a)
			}
		})
	}
	if atk.fetches.Load() != 0 {
		t.Errorf("the gateway fetched the attacker's key set %d times (jku/x5u followed)", atk.fetches.Load())
	}
	t.Logf("attack campaign: %d cases\n%s", len(cases), caseList(cases))
}

// caseList is the campaign as a Markdown table: case, expected answer, upstream reached.
func caseList(cases []attack) string {
	var b strings.Builder
	b.WriteString("| # | case | defect | answer | reaches the upstream |\n|---|---|---|---|---|\n")
	for i, c := range cases {
		ans := fmt.Sprintf("%d %s", c.status, http.StatusText(c.status))
		if c.why != "" {
			ans += ": " + c.why
		}
		if c.status == 0 {
			ans = "connection closed"
		}
		d := ""
		if c.defect > 0 {
			d = fmt.Sprint(c.defect)
		}
		reach := "no"
		if c.hits > 0 {
			reach = fmt.Sprintf("yes (%d)", c.hits)
		}
		if c.skip != "" {
			ans += " (skipped: " + c.skip + ")"
		}
		fmt.Fprintf(&b, "| %d | %s | %s | %s | %s |\n", i+1, c.name, d, ans, reach)
	}
	return b.String()
}

func campaign() []attack {
	now := time.Now().Unix()
	var cases []attack
	add := func(c ...attack) { cases = append(cases, c...) }

	// The baseline: what an honest client gets.
	add(attack{name: "valid token", send: withToken(nil), status: 200, hits: 1,
		check: func(t *testing.T, e *env, a answer) {
			header("X-Auth-Client", e.azp)(t, e, a)
			header("X-Auth-Roles", "broker-user")(t, e, a)
		}})

	// Defect 3: encoded path characters.
	for _, p := range []struct{ name, path string }{
		{"encoded slash climbing out of /api/v1/", "/api/v1/..%2F..%2Fhealth"},
		{"encoded slash, lower case", "/api/v1/a%2fb"},
		{"encoded backslash", "/api/v1/..%5C..%5Cadmin"},
		{"encoded NUL", "/api/v1/accounts%00.json"},
		{"encoded hash", "/api/v1/accounts%23frag"},
		{"encoded semicolon", "/api/v1/..%3B/admin"},
		{"double-encoded slash", "/api/v1/..%252F..%252Fadmin"},
		{"encoded question mark", "/api/v1/accounts%3Fadmin=1"},
	} {
		add(attack{name: "path: " + p.name, defect: 3, status: 400, hits: 0,
			send: func(t *testing.T, e *env) answer {
				return e.raw(t, "GET "+p.path+" HTTP/1.1\r\nHost: localhost\r\nAuthorization: Bearer "+e.tok(t, nil)+"\r\nConnection: close\r\n\r\n")
			}})
	}
	add(
		attack{name: "path: dot segments are resolved before routing (/api/v1/../admin is /admin)", defect: 3, status: 404,
			send: rawHTTP1([]string{"GET /api/v1/../admin HTTP/1.1", "Connection: close"}, "", true)},
		attack{name: "path: encoded dot segments climb to the public /health, never to the upstream", defect: 3, status: 200,
			send: rawHTTP1([]string{"GET /api/v1/%2e%2e/%2e%2e/health HTTP/1.1", "Connection: close"}, "", false),
			check: func(t *testing.T, e *env, a answer) {
				if a.header.Get("Content-Type") != "application/health+json" {
					t.Errorf("Content-Type %q, want the health document", a.header.Get("Content-Type"))
				}
			}},
		attack{name: "path: /./ and // are cleaned before the upstream", defect: 3, status: 200, hits: 1,
			send: rawHTTP1([]string{"GET /api/v1/./accounts//42 HTTP/1.1", "Connection: close"}, "", true),
			check: func(t *testing.T, e *env, a answer) {
				if p := seen(t, a).Path; p != "/api/v1/accounts/42" {
					t.Errorf("upstream path %q", p)
				}
			}},
		attack{name: "path: encoded letters cannot dodge the router (/%61pi/v1/ needs a token)", status: 401, why: descMissing,
			send: rawHTTP1([]string{"GET /%61pi/v1/accounts HTTP/1.1", "Connection: close"}, "", false)},
		attack{name: "path: literal fragment in the request target", status: 400,
			send: rawHTTP1([]string{"GET /api/v1/accounts#x HTTP/1.1", "Connection: close"}, "", true)},
		attack{name: "path: upper-case prefix matches no router", status: 404,
			send: func(t *testing.T, e *env) answer { return e.get(t, "/API/V1/accounts", e.tok(t, nil)) }},
		attack{name: "path: /api/v1 without the slash matches no router", status: 404,
			send: func(t *testing.T, e *env) answer { return e.get(t, "/api/v1", e.tok(t, nil)) }},
	)

	// Defect 4: identity headers sent by the client.
	add(
		attack{name: "identity: any X-Auth-* and foreign identity headers are removed", defect: 4, status: 200, hits: 1,
			send: withToken(nil, "X-Auth-Admin", "true", "X-Auth-Subject", "root", "X-Auth-Request-User", "root",
				"X_Auth_Roles", "broker-admin", "X-Remote-User", "root", "X-Forwarded-User", "root", "Remote-User", "root",
				"X-Forwarded-Email", "root@example", "X-Webauth-User", "root", "X-Forwarded-Tls-Client-Cert", "MIIB"),
			check: func(t *testing.T, e *env, a answer) {
				absent("X-Auth-Admin", "X-Auth-Request-User", "X_auth_roles", "X-Remote-User", "X-Forwarded-User",
					"Remote-User", "X-Forwarded-Email", "X-Webauth-User", "X-Forwarded-Tls-Client-Cert")(t, e, a)
				if sub := seen(t, a).Headers.Get("X-Auth-Subject"); sub == "root" || sub == "" {
					t.Errorf("X-Auth-Subject %q, want the token's sub", sub)
				}
			}},
		attack{name: "identity: Forwarded from an untrusted client is removed", defect: 4, status: 200, hits: 1,
			send:  withToken(nil, "Forwarded", "for=10.0.0.1;proto=https;by=internal"),
			check: absent("Forwarded")},
		attack{name: "identity: spoofed headers are removed before a refusal too (nothing reaches)", defect: 4, status: 401, why: descMissing,
			send: func(t *testing.T, e *env) answer { return e.get(t, "/api/v1/accounts", "", "X-Auth-Client", "svc") }},
	)

	// Defect 5: claim values.
	add(
		attack{name: "claims: comma inside a role would forge a second role", defect: 5, status: 401, why: descComma,
			send: withToken(map[string]any{"realm_access": map[string]any{"roles": []any{"broker-user", "x,broker-admin"}}})},
		attack{name: "claims: U+2028 line separator in preferred_username", defect: 5, status: 401, why: descControl,
			send: withToken(map[string]any{"preferred_username": "a\u2028X-Admin: 1"})},
		attack{name: "claims: U+0085 next line in preferred_username", defect: 5, status: 401, why: descControl,
			send: withToken(map[string]any{"preferred_username": "a\u0085b"})},
		attack{name: "claims: CR LF in azp (header and Redis key injection)", defect: 5, status: 401, why: descControl,
			send: withToken(map[string]any{"azp": "x\r\nSET pwned 1"})},
		attack{name: "claims: sub that is a number", defect: 5, status: 401, why: descType,
			send: withToken(map[string]any{"sub": 1234})},
		attack{name: "claims: sub that is an object", defect: 5, status: 401, why: descType,
			send: withToken(map[string]any{"sub": map[string]any{"id": "root"}})},
	)

	// Defect 10: one Bearer rule.
	add(
		attack{name: "bearer: 'Bearer' and two spaces", defect: 10, status: 200, hits: 1,
			send: func(t *testing.T, e *env) answer {
				return e.do(t, "GET", "/api/v1/accounts", nil, "Authorization", "Bearer  "+e.tok(t, nil))
			}},
		attack{name: "bearer: 'bearer' and two spaces", defect: 10, status: 200, hits: 1,
			send: func(t *testing.T, e *env) answer {
				return e.do(t, "GET", "/api/v1/accounts", nil, "Authorization", "bearer  "+e.tok(t, nil))
			}},
		attack{name: "bearer: scheme without a token", status: 401, why: descMalformed,
			send: func(t *testing.T, e *env) answer {
				return e.do(t, "GET", "/api/v1/accounts", nil, "Authorization", "Bearer")
			}},
	)

	// Defect 7: large bodies (slow clients: TestLimits).
	add(
		attack{name: "body: 2 MiB with a valid token", defect: 7, status: 413,
			send: func(t *testing.T, e *env) answer {
				return e.do(t, "POST", "/api/v1/accounts", strings.NewReader(strings.Repeat("x", 2*bodyLimit)),
					"Authorization", "Bearer "+e.tok(t, nil), "Content-Type", "application/json")
			}},
		attack{name: "body: announced 64 MiB with a valid token, refused before it is sent", defect: 7, status: 413,
			send: rawHTTP1([]string{"POST /api/v1/accounts HTTP/1.1", "Content-Length: 67108864", "Content-Type: application/json"}, "", true)},
		attack{name: "body: announced 64 MiB without a token, refused before it is read", defect: 7, status: 401, why: descMissing,
			send: rawHTTP1([]string{"POST /api/v1/accounts HTTP/1.1", "Content-Length: 67108864", "Content-Type: application/json"}, "", false)},
		attack{name: "body: 512 KiB with a valid token", defect: 7, status: 200, hits: 1,
			send: func(t *testing.T, e *env) answer {
				return e.do(t, "POST", "/api/v1/accounts", strings.NewReader(strings.Repeat("x", bodyLimit/2)),
					"Authorization", "Bearer "+e.tok(t, nil), "Content-Type", "application/json")
			}},
	)

	// Defect 8 and 9: what the public side shows.
	add(
		attack{name: "health: the public document names no URL, host or port", defect: 8, status: 200,
			send: func(t *testing.T, e *env) answer { return e.get(t, "/health", "") },
			check: func(t *testing.T, e *env, a answer) {
				u, _ := url.Parse(e.iss.IssuerURL())
				for _, leak := range []string{"http", u.Host, u.Port(), e.redis.Addr(), "127.0.0.1"} {
					if strings.Contains(string(a.body), leak) {
						t.Errorf("/health shows %q: %s", leak, a.body)
					}
				}
			}},
		attack{name: "cors: a development origin gets no Access-Control-Allow-Origin", defect: 9, status: 200,
			send: func(t *testing.T, e *env) answer {
				return e.do(t, "OPTIONS", "/api/v1/accounts", nil, "Origin", "http://localhost:3000", "Access-Control-Request-Method", "GET")
			},
			check: func(t *testing.T, e *env, a answer) {
				if v := a.header.Get("Access-Control-Allow-Origin"); v != "" {
					t.Errorf("Access-Control-Allow-Origin %q for a development origin", v)
				}
			}},
		attack{name: "cors: the production origin is allowed", defect: 9, status: 200,
			send: func(t *testing.T, e *env) answer {
				return e.do(t, "OPTIONS", "/api/v1/accounts", nil, "Origin", "https://portal.pavilion.example", "Access-Control-Request-Method", "GET")
			},
			check: func(t *testing.T, e *env, a answer) {
				if v := a.header.Get("Access-Control-Allow-Origin"); v != "https://portal.pavilion.example" {
					t.Errorf("Access-Control-Allow-Origin %q", v)
				}
			}},
	)

	// JWT header attacks: keys named by the token itself are never fetched nor used.
	add(
		attack{name: "jwt: jku pointing at the attacker's key set", status: 401, why: descUnknown,
			send: withRaw(func(t *testing.T, e *env) string {
				return sign(t, jwt.SigningMethodRS256, e.atk.rsa, map[string]any{"kid": "attacker", "jku": e.atk.jwks.URL}, e.claimsOf(t, nil))
			})},
		attack{name: "jwt: x5u pointing at the attacker's certificate", status: 401, why: descUnknown,
			send: withRaw(func(t *testing.T, e *env) string {
				return sign(t, jwt.SigningMethodRS256, e.atk.rsa, map[string]any{"kid": "attacker", "x5u": e.atk.jwks.URL + "/cert.pem"}, e.claimsOf(t, nil))
			})},
		attack{name: "jwt: embedded jwk with the issuer's kid", status: 401, why: descSignature,
			send: withRaw(func(t *testing.T, e *env) string {
				return sign(t, jwt.SigningMethodRS256, e.atk.rsa, map[string]any{"kid": e.iss.CurrentKID(), "jwk": e.atk.publicJWK(e.iss.CurrentKID())}, e.claimsOf(t, nil))
			})},
		attack{name: "jwt: embedded jwk and no kid", status: 401, why: descSignature,
			send: withRaw(func(t *testing.T, e *env) string {
				return sign(t, jwt.SigningMethodRS256, e.atk.rsa, map[string]any{"jwk": e.atk.publicJWK("attacker")}, e.claimsOf(t, nil))
			})},
		attack{name: "jwt: embedded x5c certificate with the issuer's kid", status: 401, why: descSignature,
			send: withRaw(func(t *testing.T, e *env) string {
				return sign(t, jwt.SigningMethodRS256, e.atk.rsa, map[string]any{"kid": e.iss.CurrentKID(), "x5c": []string{b64(e.atk.certDER)}}, e.claimsOf(t, nil))
			})},
		attack{name: "jwt: kid path traversal", status: 401, why: descUnknown,
			send: withRaw(func(t *testing.T, e *env) string {
				return sign(t, jwt.SigningMethodRS256, e.atk.rsa, map[string]any{"kid": "../../../../../../dev/null"}, e.claimsOf(t, nil))
			})},
		attack{name: "jwt: kid SQL injection", status: 401, why: descUnknown,
			send: withRaw(func(t *testing.T, e *env) string {
				return sign(t, jwt.SigningMethodRS256, e.atk.rsa, map[string]any{"kid": "x' UNION SELECT 'secret' --"}, e.claimsOf(t, nil))
			})},
		attack{name: "jwt: kid holding a URL", status: 401, why: descUnknown,
			send: withRaw(func(t *testing.T, e *env) string {
				return sign(t, jwt.SigningMethodRS256, e.atk.rsa, map[string]any{"kid": e.atk.jwks.URL}, e.claimsOf(t, nil))
			})},
		attack{name: "jwt: crit header", status: 401, why: descMalformed,
			send: withRaw(func(t *testing.T, e *env) string {
				return sign(t, jwt.SigningMethodRS256, e.issuerKey(), map[string]any{"kid": e.iss.CurrentKID(), "crit": []string{"b64"}, "b64": false}, e.claimsOf(t, nil))
			})},
	)

	// Algorithm confusion, every direction (the gateway allows RS256 only).
	add(
		attack{name: "alg: HS256 with the issuer's public key as the secret", status: 401, why: descAlgorithm,
			send: withRaw(func(t *testing.T, e *env) string {
				return sign(t, jwt.SigningMethodHS256, publicKeyPEM(t, e.iss.PrivateKey(e.iss.CurrentKID())), map[string]any{"kid": e.iss.CurrentKID()}, e.claimsOf(t, nil))
			})},
		attack{name: "alg: HS512 with the issuer's public key as the secret", status: 401, why: descAlgorithm,
			send: withRaw(func(t *testing.T, e *env) string {
				return sign(t, jwt.SigningMethodHS512, publicKeyPEM(t, e.iss.PrivateKey(e.iss.CurrentKID())), map[string]any{"kid": e.iss.CurrentKID()}, e.claimsOf(t, nil))
			})},
		attack{name: "alg: ES256 under the issuer's kid", status: 401, why: descAlgorithm,
			send: withRaw(func(t *testing.T, e *env) string {
				return sign(t, jwt.SigningMethodES256, e.atk.ec, map[string]any{"kid": e.iss.CurrentKID()}, e.claimsOf(t, nil))
			})},
		attack{name: "alg: PS256 by the issuer's own key", status: 401, why: descAlgorithm,
			send: withRaw(func(t *testing.T, e *env) string {
				return sign(t, jwt.SigningMethodPS256, e.issuerKey(), map[string]any{"kid": e.iss.CurrentKID()}, e.claimsOf(t, nil))
			})},
		attack{name: "alg: RS512 by the issuer's own key", status: 401, why: descAlgorithm,
			send: withRaw(func(t *testing.T, e *env) string {
				return sign(t, jwt.SigningMethodRS512, e.issuerKey(), map[string]any{"kid": e.iss.CurrentKID()}, e.claimsOf(t, nil))
			})},
		attack{name: "alg: EdDSA by an attacker key", status: 401, why: descAlgorithm,
			send: withRaw(func(t *testing.T, e *env) string {
				return sign(t, jwt.SigningMethodEdDSA, e.atk.ed, map[string]any{"kid": e.iss.CurrentKID()}, e.claimsOf(t, nil))
			})},
		attack{name: "alg: RS256 header over an ECDSA signature", status: 401, why: descSignature,
			send: withRaw(func(t *testing.T, e *env) string {
				es := sign(t, jwt.SigningMethodES256, e.atk.ec, map[string]any{"kid": e.iss.CurrentKID(), "alg": "RS256"}, e.claimsOf(t, nil))
				return es
			})},
		attack{name: "alg: missing", status: 401, why: descAlgorithm,
			send: withRaw(func(t *testing.T, e *env) string {
				return sign(t, jwt.SigningMethodRS256, e.issuerKey(), map[string]any{"kid": e.iss.CurrentKID(), "alg": nil}, e.claimsOf(t, nil))
			})},
	)
	for _, alg := range []string{"none", "None", "NONE", "nOnE"} {
		add(attack{name: "alg: " + alg + " with an empty signature", status: 401, why: descAlgorithm,
			send: withRaw(func(t *testing.T, e *env) string { return unsigned(t, alg, e.claimsOf(t, nil)) })})
	}

	// Duplicate JSON keys: the last one counts (RFC 7519 section 4), in the header as in the
	// claims; a forged header still needs the issuer's signature.
	add(
		attack{name: "dup keys: header alg none then RS256, signed by the attacker", status: 401, why: descSignature,
			send: withRaw(func(t *testing.T, e *env) string {
				c, _ := json.Marshal(e.claimsOf(t, nil))
				return signRaw(t, e.atk.rsa, `{"alg":"none","kid":"`+e.iss.CurrentKID()+`","alg":"RS256"}`, string(c))
			})},
		attack{name: "dup keys: iss foreign then ours, signed by the issuer: the last one counts", status: 200, hits: 1,
			send: withRaw(func(t *testing.T, e *env) string {
				c, _ := json.Marshal(e.claimsOf(t, nil))
				return signRaw(t, e.iss.PrivateKey(e.iss.CurrentKID()), `{"alg":"RS256","kid":"`+e.iss.CurrentKID()+`"}`,
					`{"iss":"https://evil.example/realms/pavilion",`+string(c[1:]))
			})},
		attack{name: "dup keys: iss ours then foreign, signed by the issuer: refused", status: 401, why: descIssuer,
			send: withRaw(func(t *testing.T, e *env) string {
				c, _ := json.Marshal(e.claimsOf(t, nil))
				return signRaw(t, e.iss.PrivateKey(e.iss.CurrentKID()), `{"alg":"RS256","kid":"`+e.iss.CurrentKID()+`"}`,
					string(c[:len(c)-1])+`,"iss":"https://evil.example/realms/pavilion"}`)
			})},
		attack{name: "dup keys: sub twice, the upstream gets the last", status: 200, hits: 1,
			send: withRaw(func(t *testing.T, e *env) string {
				c, _ := json.Marshal(e.claimsOf(t, map[string]any{"sub": "second"}))
				return signRaw(t, e.iss.PrivateKey(e.iss.CurrentKID()), `{"alg":"RS256","kid":"`+e.iss.CurrentKID()+`"}`,
					`{"sub":"first",`+string(c[1:]))
			}),
			check: header("X-Auth-Subject", "second")},
	)

	// NumericDate claims of every JSON type.
	add(
		attack{name: "exp as a string", status: 401, why: descClaims, send: withToken(map[string]any{"exp": fmt.Sprint(now + 300)})},
		attack{name: "exp as a float", status: 200, hits: 1, send: withToken(map[string]any{"exp": float64(now) + 300.5})},
		attack{name: "exp huge (1e300)", status: 200, hits: 1, send: withToken(map[string]any{"exp": 1e300})},
		attack{name: "exp beyond float64 (1e400)", status: 401, why: descMalformed,
			send: withRaw(func(t *testing.T, e *env) string {
				c, _ := json.Marshal(e.claimsOf(t, map[string]any{"exp": nil}))
				return signRaw(t, e.iss.PrivateKey(e.iss.CurrentKID()), `{"alg":"RS256","kid":"`+e.iss.CurrentKID()+`"}`,
					`{"exp":1e400,`+string(c[1:]))
			})},
		attack{name: "exp negative", status: 401, why: descExpired, send: withToken(map[string]any{"exp": -1})},
		attack{name: "exp null", status: 401, why: descNoExp,
			send: withRaw(func(t *testing.T, e *env) string {
				c, _ := json.Marshal(e.claimsOf(t, map[string]any{"exp": nil}))
				return signRaw(t, e.iss.PrivateKey(e.iss.CurrentKID()), `{"alg":"RS256","kid":"`+e.iss.CurrentKID()+`"}`,
					`{"exp":null,`+string(c[1:]))
			})},
		attack{name: "exp as a boolean", status: 401, why: descClaims, send: withToken(map[string]any{"exp": true})},
		attack{name: "nbf as a string", status: 401, why: descClaims, send: withToken(map[string]any{"nbf": fmt.Sprint(now - 10)})},
		attack{name: "nbf far in the future", status: 401, why: descNotYet, send: withToken(map[string]any{"nbf": 1e15})},
		attack{name: "iat as a string", status: 401, why: descClaims, send: withToken(map[string]any{"iat": fmt.Sprint(now)})},
		attack{name: "iat huge", status: 401, why: descFuture, send: withToken(map[string]any{"iat": 1e300})},
		attack{name: "iat as a float", status: 200, hits: 1, send: withToken(map[string]any{"iat": float64(now) - 0.25})},
	)

	// Issuers that look like ours, signed with our issuer's real key.
	for _, f := range []struct{ name, mod string }{
		{"trailing slash", "/"},
		{"realm with another letter case", "CASE"},
		{"longer realm", "-admin"},
		{"Cyrillic a in the realm", "CYR"},
	} {
		add(attack{name: "issuer look-alike: " + f.name, status: 401, why: descIssuer,
			send: func(t *testing.T, e *env) answer {
				iss := e.iss.IssuerURL()
				switch f.mod {
				case "CASE":
					iss = strings.Replace(iss, "pavilion", "Pavilion", 1)
				case "CYR":
					iss = strings.Replace(iss, "pavilion", "pаvilion", 1)
				default:
					iss += f.mod
				}
				return e.get(t, "/api/v1/accounts", e.tok(t, map[string]any{"iss": iss}))
			}})
	}
	add(
		attack{name: "token of another realm (its own key)", status: 401, why: descUnknown,
			send: withRaw(func(t *testing.T, e *env) string {
				c := e.claimsOf(t, map[string]any{"iss": strings.Replace(e.iss.IssuerURL(), "pavilion", "other", 1)})
				return sign(t, jwt.SigningMethodRS256, e.atk.rsa, map[string]any{"kid": "other-realm-key"}, c)
			})},
		attack{name: "token of another client (audience account)", status: 401, why: descAudience,
			send: withToken(map[string]any{"aud": "account"})},
		attack{name: "token without the required role", status: 403, why: descRole,
			send: withToken(map[string]any{"realm_access": map[string]any{"roles": []any{"offline_access"}}})},
		attack{name: "ID token (typ ID)", status: 401, why: descNotAccess, send: withToken(map[string]any{"typ": "ID"})},
		attack{name: "refresh token (typ Refresh)", status: 401, why: descNotAccess, send: withToken(map[string]any{"typ": "Refresh"})},
	)

	// Where the token is carried.
	add(
		attack{name: "token in the query string", status: 401, why: descMissing,
			send: func(t *testing.T, e *env) answer {
				return e.get(t, "/api/v1/accounts?access_token="+url.QueryEscape(e.tok(t, nil)), "")
			}},
		attack{name: "token in a cookie", status: 401, why: descMissing,
			send: func(t *testing.T, e *env) answer {
				return e.get(t, "/api/v1/accounts", "", "Cookie", "access_token="+e.tok(t, nil))
			}},
		attack{name: "token in a form body", status: 401, why: descMissing,
			send: func(t *testing.T, e *env) answer {
				return e.do(t, "POST", "/api/v1/accounts", strings.NewReader("access_token="+e.tok(t, nil)),
					"Content-Type", "application/x-www-form-urlencoded")
			}},
		attack{name: "two Authorization headers (HTTP/2)", status: 401, why: descMultiple,
			send: func(t *testing.T, e *env) answer {
				tok := e.tok(t, nil)
				return e.do(t, "GET", "/api/v1/accounts", nil, "Authorization", "Bearer "+tok, "Authorization", "Bearer "+tok)
			}},
		attack{name: "two Authorization headers (HTTP/1.1)", status: 401, why: descMultiple,
			send: rawHTTP1([]string{"GET /api/v1/accounts HTTP/1.1", "Authorization: Bearer x.y.z", "Connection: close"}, "", true)},
		attack{name: "two tokens in one Authorization header", status: 401, why: descMalformed,
			send: func(t *testing.T, e *env) answer {
				tok := e.tok(t, nil)
				return e.do(t, "GET", "/api/v1/accounts", nil, "Authorization", "Bearer "+tok+", Bearer "+tok)
			}},
		attack{name: "Basic credentials", status: 401, why: descMissing,
			send: func(t *testing.T, e *env) answer {
				return e.do(t, "GET", "/api/v1/accounts", nil, "Authorization", "Basic YWRtaW46YWRtaW4=")
			}},
	)

	// Forwarding headers from an untrusted peer (no trusted proxies in static/).
	add(
		attack{name: "spoofed X-Forwarded-For is replaced by the peer", status: 200, hits: 1,
			send:  withToken(nil, "X-Forwarded-For", "203.0.113.7"),
			check: header("X-Forwarded-For", "127.0.0.1")},
		attack{name: "spoofed X-Real-Ip is replaced by the peer", status: 200, hits: 1,
			send:  withToken(nil, "X-Real-Ip", "203.0.113.7"),
			check: header("X-Real-Ip", "127.0.0.1")},
		attack{name: "spoofed X-Forwarded-Proto and -Host are replaced", status: 200, hits: 1,
			send: withToken(nil, "X-Forwarded-Proto", "http", "X-Forwarded-Host", "evil.example"),
			check: func(t *testing.T, e *env, a answer) {
				header("X-Forwarded-Proto", "https")(t, e, a)
				if h := seen(t, a).Headers.Get("X-Forwarded-Host"); h == "evil.example" {
					t.Errorf("X-Forwarded-Host %q reached the upstream", h)
				}
			}},
		attack{name: "IPv4 and IPv6 spellings of one client share one budget", status: 429, hits: rateRequests,
			send: func(t *testing.T, e *env) answer {
				// A token without azp: the rate-limit key is the client address, whatever the
				// client claims in X-Forwarded-For.
				tok := e.tok(t, map[string]any{"azp": nil})
				forms := []string{"::1", "0:0:0:0:0:0:0:1", "::ffff:127.0.0.1", "[::1]:443", "127.000.000.001", "2130706433"}
				for i := 0; i < rateRequests; i++ {
					if a := e.get(t, "/api/v1/accounts", tok, "X-Forwarded-For", forms[i%len(forms)]); a.status != 200 {
						t.Fatalf("request %d: %d", i+1, a.status)
					}
				}
				return e.get(t, "/api/v1/accounts", tok, "X-Forwarded-For", "::2")
			},
			check: func(t *testing.T, e *env, a answer) {
				if a.header.Get("Retry-After") == "" {
					t.Error("429 without Retry-After")
				}
			}},
	)

	// Rate-limit keys built from the token.
	add(
		attack{name: "ratelimit key: Redis hash tag in azp", status: 200, hits: 1,
			send: withToken(map[string]any{"azp": "{victim}"}),
			check: func(t *testing.T, e *env, a answer) {
				for _, k := range redisKeys(t, e.stack) {
					if strings.Contains(k, "victim") {
						t.Errorf("Redis key %q holds the client's braces", k)
					}
				}
			}},
		attack{name: "ratelimit key: CR LF in azp never reaches Redis", status: 401, why: descControl,
			send: withToken(map[string]any{"azp": "k\r\n*1\r\n$8\r\nFLUSHALL"}),
			check: func(t *testing.T, e *env, a answer) {
				if n := len(redisKeys(t, e.stack)); n == 0 {
					t.Error("Redis lost its keys")
				}
			}},
		attack{name: "ratelimit key: 200 distinct clients, every key expires", status: 200, hits: 201,
			send: func(t *testing.T, e *env) answer {
				for i := 0; i < 200; i++ {
					if a := e.get(t, "/api/v1/accounts", e.token(t, fmt.Sprintf("%s-many-%d", e.azp, i), nil)); a.status != 200 {
						t.Fatalf("client %d: %d", i, a.status)
					}
				}
				return e.get(t, "/api/v1/accounts", e.tok(t, nil))
			},
			check: func(t *testing.T, e *env, a answer) { checkTTLs(t, e.stack, 200) }},
	)

	// Request ids.
	add(
		attack{name: "request id: a valid client id is kept", status: 200, hits: 1,
			send:  withToken(nil, "X-Request-Id", "client-id-0001"),
			check: header("X-Request-Id", "client-id-0001")},
	)
	for _, f := range []struct{ name, id string }{
		{"markup", "<script>alert(1)</script>"},
		{"log line forgery", `x" level=error msg="admin login`},
		{"129 characters", strings.Repeat("a", 129)},
		{"too short", "abc"},
	} {
		add(attack{name: "request id: " + f.name + " is replaced", status: 200, hits: 1,
			send: withToken(nil, "X-Request-Id", f.id),
			check: func(t *testing.T, e *env, a answer) {
				got := seen(t, a).Headers.Get("X-Request-Id")
				if len(got) != 32 || strings.Trim(got, "0123456789abcdef") != "" || a.header.Get("X-Request-Id") != got {
					t.Errorf("request id upstream %q, answer %q: want one generated id", got, a.header.Get("X-Request-Id"))
				}
			}})
	}
	add(attack{name: "request id: bare CR in the header value", status: 400,
		send: rawHTTP1([]string{"GET /api/v1/accounts HTTP/1.1", "X-Request-Id: abcdefgh\rX-Auth-Admin: 1", "Connection: close"}, "", true)})

	// Request smuggling shapes, HTTP/1.1 over TLS. The hop to the Core Broker is HTTP/2 (h2c),
	// which has no such ambiguity: what matters is that no hidden request is forwarded.
	smuggled := "GET /api/v1/smuggled HTTP/1.1\r\nHost: localhost\r\nConnection: close\r\n\r\n"
	add(
		attack{name: "smuggling: Content-Length and Transfer-Encoding (chunked wins, the rest is a request of its own)", status: 200, hits: 1,
			send:  rawHTTP1([]string{"POST /api/v1/accounts HTTP/1.1", "Content-Length: 4", "Transfer-Encoding: chunked"}, "0\r\n\r\n"+smuggled, true),
			check: both(nextAnswers(401), neverAt("/api/v1/smuggled"))},
		attack{name: "smuggling: Transfer-Encoding xchunked", status: 501,
			send:  rawHTTP1([]string{"POST /api/v1/accounts HTTP/1.1", "Content-Length: 5", "Transfer-Encoding: xchunked"}, "0\r\n\r\n"+smuggled, true),
			check: both(nextAnswers(), neverAt("/api/v1/smuggled"))},
		attack{name: "smuggling: Transfer-Encoding chunked, identity", status: 501,
			send:  rawHTTP1([]string{"POST /api/v1/accounts HTTP/1.1", "Transfer-Encoding: chunked, identity"}, "0\r\n\r\n"+smuggled, true),
			check: both(nextAnswers(), neverAt("/api/v1/smuggled"))},
		attack{name: "smuggling: two Transfer-Encoding headers", status: 501,
			send:  rawHTTP1([]string{"POST /api/v1/accounts HTTP/1.1", "Transfer-Encoding: chunked", "Transfer-Encoding: identity"}, "0\r\n\r\n"+smuggled, true),
			check: both(nextAnswers(), neverAt("/api/v1/smuggled"))},
		attack{name: "smuggling: space before the colon of Transfer-Encoding", status: 400,
			send:  rawHTTP1([]string{"POST /api/v1/accounts HTTP/1.1", "Content-Length: 5", "Transfer-Encoding : chunked"}, "0\r\n\r\n"+smuggled, true),
			check: both(nextAnswers(), neverAt("/api/v1/smuggled"))},
		attack{name: "smuggling: two different Content-Length headers", status: 400,
			send:  rawHTTP1([]string{"POST /api/v1/accounts HTTP/1.1", "Content-Length: 5", "Content-Length: 60"}, "hello"+smuggled, true),
			check: both(nextAnswers(), neverAt("/api/v1/smuggled"))},
		attack{name: "smuggling: Content-Length with a sign", status: 400,
			send:  rawHTTP1([]string{"POST /api/v1/accounts HTTP/1.1", "Content-Length: +5"}, "hello"+smuggled, true),
			check: both(nextAnswers(), neverAt("/api/v1/smuggled"))},
		attack{name: "smuggling: Content-Length list in one header", status: 400,
			send:  rawHTTP1([]string{"POST /api/v1/accounts HTTP/1.1", "Content-Length: 5, 60"}, "hello"+smuggled, true),
			check: both(nextAnswers(), neverAt("/api/v1/smuggled"))},
		attack{name: "smuggling: obsolete line folding joins the line to the previous header (no Transfer-Encoding)", status: 200, hits: 1,
			send:  rawHTTP1([]string{"POST /api/v1/accounts HTTP/1.1", "X-Pad: a", " Transfer-Encoding: chunked", "Content-Length: 5"}, "hello"+smuggled, true),
			check: both(header("X-Pad", "a Transfer-Encoding: chunked"), absent("Transfer-Encoding"), nextAnswers(401), neverAt("/api/v1/smuggled"))},
		// Traefik's buffering middleware answers 500 for a body it cannot read.
		attack{name: "smuggling: invalid chunk size", status: 500,
			send:  rawHTTP1([]string{"POST /api/v1/accounts HTTP/1.1", "Transfer-Encoding: chunked"}, "0x5\r\nhello\r\n0\r\n\r\n"+smuggled, true),
			check: both(neverAt("/api/v1/smuggled"))},
	)

	// Floods: concurrency against the shared limit, bad tokens, header counts.
	add(
		attack{name: "ratelimit: one client on 256 connections admits at most the sliding-window bound", defect: 1,
			status: 429, hits: -1, send: concurrentClient},
		attack{name: "auth failures: one address sending bad tokens gets 429 with Retry-After before any signature check", defect: 2,
			status: 429, send: badTokenFlood},
		attack{name: "headers: 500 headers are refused (431) before the identity-header removal walks them", defect: 6,
			status: 431, send: manyHeaders},
	)
	return cases
}
