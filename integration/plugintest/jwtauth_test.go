// Package plugintest runs each plugin's table of cases twice: compiled, and interpreted by
// Yaegi the way Traefik v3.6.12 loads a local plugin.
package plugintest

import (
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/rsa"
	"crypto/x509"
	"encoding/json"
	"encoding/pem"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/golang-jwt/jwt/v5"
	"github.com/pavilion-trust/gateway/demo/devissuer/issuer"
	"github.com/pavilion-trust/gateway/integration/pluginharness"
	"github.com/pavilion-trust/gateway/plugins/jwtauth"
)

const jwtImport = "github.com/pavilion-trust/gateway/plugins/jwtauth"

func jwtBuilders(t testing.TB) []pluginharness.Builder {
	return pluginharness.Both(t, jwtImport, jwtauth.CreateConfig, jwtauth.New)
}

// startIssuer runs the development issuer (realm pavilion) on a free port with the given
// clients; by default one service client "svc" with scopes and realm and client roles.
func startIssuer(t testing.TB, clients ...issuer.Client) *issuer.Issuer {
	t.Helper()
	if len(clients) == 0 {
		clients = []issuer.Client{{
			ID: "svc", Secret: "s3cret", Audience: []string{"core-broker"},
			Scopes:      []string{"broker:read", "broker:write"},
			RealmRoles:  []string{"broker-user"},
			ClientRoles: map[string][]string{"core-broker": {"reader"}},
		}}
	}
	iss, err := issuer.New(issuer.Config{Realm: "pavilion", Clients: clients})
	if err != nil {
		t.Fatal(err)
	}
	if err := iss.Start("127.0.0.1:0"); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { iss.Stop() })
	return iss
}

// upstream records what reached it.
type upstream struct {
	called bool
	header http.Header
}

func (u *upstream) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	u.called = true
	u.header = r.Header.Clone()
	w.WriteHeader(http.StatusOK)
}

// token signs claims (Keycloak-shaped defaults for client svc, overridden by over; a nil value
// deletes the claim) with the issuer's current key.
func token(t testing.TB, iss *issuer.Issuer, over map[string]any) string {
	t.Helper()
	claims, err := iss.Claims("svc")
	if err != nil {
		t.Fatal(err)
	}
	for k, v := range over {
		if v == nil {
			delete(claims, k)
			continue
		}
		claims[k] = v
	}
	s, err := iss.Sign(claims)
	if err != nil {
		t.Fatal(err)
	}
	return s
}

func baseConfig(iss *issuer.Issuer) map[string]any {
	return map[string]any{
		"issuer":             iss.IssuerURL(),
		"audiences":          []any{"core-broker"},
		"minRefreshInterval": "1s",
	}
}

func merge(base map[string]any, over map[string]any) map[string]any {
	out := map[string]any{}
	for k, v := range base {
		out[k] = v
	}
	for k, v := range over {
		out[k] = v
	}
	return out
}

type jwtCase struct {
	desc      string
	config    map[string]any // merged over baseConfig
	request   func(t *testing.T, iss *issuer.Issuer, r *http.Request)
	status    int
	challenge string            // exact WWW-Authenticate, or prefix when ending in "*"
	errorCode string            // JSON body "error"
	why       string            // substring of error_description
	upstream  map[string]string // headers the upstream must see ("" = must be absent)
}

func bearer(tok string) func(t *testing.T, iss *issuer.Issuer, r *http.Request) {
	return func(t *testing.T, iss *issuer.Issuer, r *http.Request) { r.Header.Set("Authorization", "Bearer "+tok) }
}

func withToken(over map[string]any) func(t *testing.T, iss *issuer.Issuer, r *http.Request) {
	return func(t *testing.T, iss *issuer.Issuer, r *http.Request) {
		r.Header.Set("Authorization", "Bearer "+token(t, iss, over))
	}
}

const invalid = `Bearer realm="pavilion", error="invalid_token"*`

// serveBearer serves a GET with tok as its bearer token through h.
func serveBearer(h http.Handler, tok string) *httptest.ResponseRecorder {
	r := httptest.NewRequest(http.MethodGet, "/", nil)
	r.Header.Set("Authorization", "Bearer "+tok)
	w := httptest.NewRecorder()
	h.ServeHTTP(w, r)
	return w
}

func jwtCases() []jwtCase {
	now := time.Now()
	signWith := func(header map[string]any, over map[string]any, method jwt.SigningMethod, key func(iss *issuer.Issuer) any) func(t *testing.T, iss *issuer.Issuer, r *http.Request) {
		return func(t *testing.T, iss *issuer.Issuer, r *http.Request) {
			claims, err := iss.Claims("svc")
			if err != nil {
				t.Fatal(err)
			}
			for k, v := range over {
				claims[k] = v
			}
			tk := jwt.NewWithClaims(method, claims)
			tk.Header["kid"] = iss.CurrentKID()
			for k, v := range header {
				if v == nil {
					delete(tk.Header, k)
					continue
				}
				tk.Header[k] = v
			}
			tok, err := tk.SignedString(key(iss))
			if err != nil {
				t.Fatal(err)
			}
			r.Header.Set("Authorization", "Bearer "+tok)
		}
	}
	issuerKey := func(iss *issuer.Issuer) any { return iss.PrivateKey(iss.CurrentKID()) }
	strangerKey := func(*issuer.Issuer) any {
		k, err := rsa.GenerateKey(rand.Reader, 2048)
		if err != nil {
			panic(err)
		}
		return k
	}
	return []jwtCase{
		{desc: "valid token: claims reach the upstream", request: withToken(nil), status: 200,
			upstream: map[string]string{"X-Auth-Client": "svc", "X-Auth-Roles": "broker-user",
				"X-Auth-Scopes": "broker:read broker:write", "X-Auth-Username": "service-account-svc"}},
		{desc: "missing token: plain challenge", status: 401, challenge: `Bearer realm="pavilion"`, errorCode: "unauthorized", why: "required"},
		{desc: "basic auth counts as no token", status: 401, challenge: `Bearer realm="pavilion"`, errorCode: "unauthorized",
			request: func(t *testing.T, _ *issuer.Issuer, r *http.Request) { r.SetBasicAuth("u", "p") }},
		{desc: "expired", request: withToken(map[string]any{"exp": now.Add(-2 * time.Minute).Unix()}), status: 401, challenge: invalid, errorCode: "invalid_token", why: "expired"},
		{desc: "expired within leeway passes", request: withToken(map[string]any{"exp": now.Add(-10 * time.Second).Unix()}), status: 200},
		{desc: "expired with zero leeway", config: map[string]any{"leeway": "0s"},
			request: withToken(map[string]any{"exp": now.Add(-2 * time.Second).Unix()}), status: 401, challenge: invalid, why: "expired"},
		{desc: "not yet valid", request: withToken(map[string]any{"nbf": now.Add(5 * time.Minute).Unix()}), status: 401, challenge: invalid, why: "not valid yet"},
		{desc: "nbf within leeway passes", request: withToken(map[string]any{"nbf": now.Add(10 * time.Second).Unix()}), status: 200},
		{desc: "issued in the future", request: withToken(map[string]any{"iat": now.Add(5 * time.Minute).Unix()}), status: 401, challenge: invalid, why: "issued in the future"},
		{desc: "iat within leeway passes", request: withToken(map[string]any{"iat": now.Add(10 * time.Second).Unix()}), status: 200},
		{desc: "no exp", request: withToken(map[string]any{"exp": nil}), status: 401, challenge: invalid, why: "no expiry"},
		{desc: "exp not a number", request: withToken(map[string]any{"exp": "tomorrow"}), status: 401, challenge: invalid, why: "claims are invalid"},
		{desc: "wrong issuer", request: withToken(map[string]any{"iss": "https://evil.example/realms/pavilion"}), status: 401, challenge: invalid, why: "issuer"},
		{desc: "no issuer", request: withToken(map[string]any{"iss": nil}), status: 401, challenge: invalid, why: "issuer"},
		{desc: "wrong audience", request: withToken(map[string]any{"aud": "account"}), status: 401, challenge: invalid, why: "audience"},
		{desc: "audience array containing ours", request: withToken(map[string]any{"aud": []string{"account", "core-broker"}}), status: 200},
		{desc: "no audience check when audiences unset", config: map[string]any{"audiences": []any{}},
			request: withToken(map[string]any{"aud": "account"}), status: 200},
		{desc: "ID token (typ ID) is not an access token", request: withToken(map[string]any{"typ": "ID"}), status: 401, challenge: invalid, why: "not an access token"},
		{desc: "tokenTypes * accepts any typ", config: map[string]any{"tokenTypes": []any{"*"}}, request: withToken(map[string]any{"typ": "ID"}), status: 200},
		{desc: "alg none", status: 401, challenge: invalid, why: "algorithm", request: func(t *testing.T, iss *issuer.Issuer, r *http.Request) {
			claims, _ := iss.Claims("svc")
			tok, err := jwt.NewWithClaims(jwt.SigningMethodNone, claims).SignedString(jwt.UnsafeAllowNoneSignatureType)
			if err != nil {
				t.Fatal(err)
			}
			r.Header.Set("Authorization", "Bearer "+tok)
		}},
		{desc: "HS256 signed with the RSA public key", status: 401, challenge: invalid, why: "algorithm", request: func(t *testing.T, iss *issuer.Issuer, r *http.Request) {
			der, _ := x509.MarshalPKIXPublicKey(&iss.PrivateKey(iss.CurrentKID()).PublicKey)
			secret := pem.EncodeToMemory(&pem.Block{Type: "PUBLIC KEY", Bytes: der})
			signWith(nil, nil, jwt.SigningMethodHS256, func(*issuer.Issuer) any { return secret })(t, iss, r)
		}},
		{desc: "ES256 when only RS256 is allowed", status: 401, challenge: invalid, why: "algorithm",
			request: signWith(nil, nil, jwt.SigningMethodES256, func(*issuer.Issuer) any {
				k, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
				return k
			})},
		{desc: "RS512 by the issuer's key when only RS256 is allowed", status: 401, challenge: invalid, why: "algorithm",
			request: signWith(nil, nil, jwt.SigningMethodRS512, issuerKey)},
		{desc: "PS256 allowed and signed by the issuer's key (JWK alg RS256 does not fit)", config: map[string]any{"algorithms": []any{"PS256"}},
			status: 401, challenge: invalid, why: "key", request: signWith(nil, nil, jwt.SigningMethodPS256, issuerKey)},
		{desc: "crit header refused", status: 401, challenge: invalid, why: "malformed",
			request: signWith(map[string]any{"crit": []string{"exp"}}, nil, jwt.SigningMethodRS256, issuerKey)},
		{desc: "kid that is not a string", status: 401, challenge: invalid, why: "malformed",
			request: signWith(map[string]any{"kid": 7}, nil, jwt.SigningMethodRS256, issuerKey)},
		{desc: "no kid, exactly one published key", status: 200,
			request: signWith(map[string]any{"kid": nil}, nil, jwt.SigningMethodRS256, issuerKey)},
		{desc: "tampered payload", status: 401, challenge: invalid, why: "signature", request: func(t *testing.T, iss *issuer.Issuer, r *http.Request) {
			parts := strings.Split(token(t, iss, nil), ".")
			other := strings.Split(token(t, iss, map[string]any{"sub": "admin", "realm_access": map[string]any{"roles": []string{"broker-admin"}}}), ".")
			r.Header.Set("Authorization", "Bearer "+parts[0]+"."+other[1]+"."+parts[2])
		}},
		{desc: "malformed", request: bearer("not.a-jwt"), status: 401, challenge: invalid, why: "malformed"},
		{desc: "garbage with three parts", request: bearer("e30.e30.e30"), status: 401, challenge: invalid},
		{desc: "five parts (JWE)", request: bearer("a.b.c.d.e"), status: 401, challenge: invalid, why: "malformed"},
		{desc: "oversized token", request: bearer(strings.Repeat("a", 17<<10)), status: 401, challenge: invalid, why: "malformed"},
		{desc: "unknown kid (key never published)", status: 401, challenge: invalid, why: "unknown",
			request: signWith(map[string]any{"kid": "not-published"}, nil, jwt.SigningMethodRS256, strangerKey)},
		{desc: "known kid, other key", status: 401, challenge: invalid, why: "signature",
			request: signWith(nil, nil, jwt.SigningMethodRS256, strangerKey)},
		{desc: "two Authorization headers", status: 401, challenge: invalid, why: "more than one", request: func(t *testing.T, iss *issuer.Issuer, r *http.Request) {
			r.Header.Add("Authorization", "Bearer "+token(t, iss, nil))
			r.Header.Add("Authorization", "Bearer "+token(t, iss, nil))
		}},
		{desc: "missing realm role: 403 without scope attribute", config: map[string]any{"requiredRoles": []any{"broker-admin"}},
			request: withToken(nil), status: 403, errorCode: "insufficient_scope", why: "role",
			challenge: `Bearer realm="pavilion", error="insufficient_scope", error_description="the token lacks a required role"`},
		{desc: "one of the roles held", config: map[string]any{"requiredRoles": []any{"broker-admin", "broker-user"}},
			request: withToken(nil), status: 200},
		{desc: "client role held", config: map[string]any{"requiredRoles": []any{"core-broker:reader"}}, request: withToken(nil), status: 200},
		{desc: "client role missing", config: map[string]any{"requiredRoles": []any{"core-broker:writer"}}, request: withToken(nil), status: 403, why: "role"},
		{desc: "realm role name does not match a client role", config: map[string]any{"requiredRoles": []any{"reader"}}, request: withToken(nil), status: 403},
		{desc: "roles as Traefik splits a comma list", config: map[string]any{"requiredRoles": "broker-admin, core-broker:reader"}, request: withToken(nil), status: 200},
		{desc: "all scopes held", config: map[string]any{"requiredScopes": []any{"broker:read", "broker:write"}}, request: withToken(nil), status: 200},
		{desc: "missing scope: 403 naming the scope", config: map[string]any{"requiredScopes": []any{"broker:read", "broker:admin"}},
			request: withToken(nil), status: 403, errorCode: "insufficient_scope", why: "scope",
			challenge: `Bearer realm="pavilion", error="insufficient_scope", error_description="the token lacks a required scope", scope="broker:read broker:admin"`},
		{desc: "spoofed identity headers are replaced", status: 200,
			request: func(t *testing.T, iss *issuer.Issuer, r *http.Request) {
				r.Header.Set("Authorization", "Bearer "+token(t, iss, nil))
				r.Header.Set("X-Auth-Client", "admin")
				r.Header.Set("x-auth-roles", "broker-admin")
				r.Header.Set("X_Auth_Subject", "root")
				r.Header.Set("X-Auth_Username", "root")
			},
			upstream: map[string]string{"X-Auth-Client": "svc", "X-Auth-Roles": "broker-user", "X_auth_subject": "", "X-Auth_username": ""}},
		{desc: "spoofed identity headers removed from anonymous requests", config: map[string]any{"optional": "true"}, status: 200,
			request: func(t *testing.T, iss *issuer.Issuer, r *http.Request) {
				r.Header.Set("X-Auth-Client", "admin")
				r.Header.Set("X-Auth-Subject", "root")
				r.Header.Set("X_Auth_Roles", "broker-admin")
			},
			upstream: map[string]string{"X-Auth-Client": "", "X-Auth-Subject": "", "X_auth_roles": ""}},
		{desc: "default identity headers stripped even with a custom map",
			config: map[string]any{"claimHeaders": map[string]any{"sub": "X-Caller"}},
			request: func(t *testing.T, iss *issuer.Issuer, r *http.Request) {
				r.Header.Set("Authorization", "Bearer "+token(t, iss, nil))
				r.Header.Set("X-Auth-Roles", "broker-admin")
				r.Header.Set("X-Caller", "root")
			}, status: 200,
			upstream: map[string]string{"X-Auth-Roles": "", "X-Caller": "*"}},
		{desc: "optional: a claim absent from the token sends no header", config: map[string]any{"optional": "true"},
			request: withToken(map[string]any{"preferred_username": nil}), status: 200,
			upstream: map[string]string{"X-Auth-Username": "", "X-Auth-Client": "svc"}},
		{desc: "optional: a bad token is still refused", config: map[string]any{"optional": "true"},
			request: bearer("garbage"), status: 401, challenge: invalid},
		{desc: "arrays are joined with commas", request: withToken(map[string]any{"realm_access": map[string]any{"roles": []any{"broker-user", "auditor"}}}),
			status: 200, upstream: map[string]string{"X-Auth-Roles": "broker-user,auditor"}},
		{desc: "an empty array sends no header", config: map[string]any{"requiredRoles": []any{}},
			request: withToken(map[string]any{"realm_access": map[string]any{"roles": []any{}}}),
			status:  200, upstream: map[string]string{"X-Auth-Roles": ""}},
		{desc: "claim with CR LF is refused, not forwarded",
			request: withToken(map[string]any{"preferred_username": "x\r\nX-Admin: 1"}), status: 401, challenge: invalid, why: "control characters"},
		{desc: "control character inside an array element",
			request: withToken(map[string]any{"realm_access": map[string]any{"roles": []any{"broker-user", "a\nb"}}}), status: 401, why: "control characters"},
		{desc: "DEL character", request: withToken(map[string]any{"azp": "svc\x7f"}), status: 401, why: "control characters"},
		{desc: "custom claim headers replace the default map",
			config:  map[string]any{"claimHeaders": map[string]any{"resource_access.core-broker.roles": "X-Client-Roles"}},
			request: withToken(nil), status: 200,
			upstream: map[string]string{"X-Client-Roles": "reader", "X-Auth-Client": ""}},
		{desc: "claimHeaderList (label-safe form): dotted claim paths as a list replace the default map",
			config: map[string]any{"claimHeaderList": []any{
				map[string]any{"claim": "realm_access.roles", "header": "X-Roles"},
				map[string]any{"claim": "resource_access.core-broker.roles", "header": "x-client-roles"},
			}},
			request: withToken(nil), status: 200,
			upstream: map[string]string{"X-Roles": "broker-user", "X-Client-Roles": "reader", "X-Auth-Client": "", "X-Auth-Roles": ""}},
		{desc: "claimHeaders and claimHeaderList are merged",
			config: map[string]any{
				"claimHeaders":    map[string]any{"azp": "X-Caller-Client"},
				"claimHeaderList": []any{map[string]any{"claim": "realm_access.roles", "header": "X-Roles"}},
			},
			request: withToken(nil), status: 200,
			upstream: map[string]string{"X-Caller-Client": "svc", "X-Roles": "broker-user", "X-Auth-Subject": ""}},
		{desc: "forwardToken true keeps Authorization", request: withToken(nil), status: 200,
			upstream: map[string]string{"Authorization": "Bearer *"}},
		{desc: "forwardToken false removes Authorization and the cookie",
			config: map[string]any{"forwardToken": "false", "tokenCookie": "kc_token"},
			request: func(t *testing.T, iss *issuer.Issuer, r *http.Request) {
				r.AddCookie(&http.Cookie{Name: "kc_token", Value: token(t, iss, nil)})
				r.Header.Add("Cookie", "theme=dark; q=x y")
			}, status: 200,
			upstream: map[string]string{"Authorization": "", "Cookie": "theme=dark; q=x y", "X-Auth-Client": "svc"}},
		{desc: "Authorization wins over the cookie", config: map[string]any{"tokenCookie": "kc_token"},
			request: func(t *testing.T, iss *issuer.Issuer, r *http.Request) {
				r.Header.Set("Authorization", "Bearer garbage")
				r.AddCookie(&http.Cookie{Name: "kc_token", Value: token(t, iss, nil)})
			}, status: 401, challenge: invalid},
		{desc: "cookie used when Authorization has another scheme", config: map[string]any{"tokenCookie": "kc_token"},
			request: func(t *testing.T, iss *issuer.Issuer, r *http.Request) {
				r.SetBasicAuth("u", "p")
				r.AddCookie(&http.Cookie{Name: "kc_token", Value: token(t, iss, nil)})
			}, status: 200, upstream: map[string]string{"X-Auth-Client": "svc"}},
		{desc: "custom realm in the challenge", config: map[string]any{"realm": "broker"}, status: 401, challenge: `Bearer realm="broker"`},

		// Identity headers a client may not send (any X-Auth-*, and the identityHeaders list).
		{desc: "every client-sent X-Auth-* header is removed, under any spelling", status: 200,
			request: func(t *testing.T, iss *issuer.Issuer, r *http.Request) {
				r.Header.Set("Authorization", "Bearer "+token(t, iss, nil))
				r.Header.Set("X-Auth-Admin", "true")
				r.Header.Set("X-Auth-Request-User", "root")
				r.Header["X_auth_tenant"] = []string{"acme"}
				r.Header["X-Auth_group"] = []string{"admins"}
			},
			upstream: map[string]string{"X-Auth-Admin": "", "X-Auth-Request-User": "", "X_auth_tenant": "", "X-Auth_group": "", "X-Auth-Client": "svc"}},
		{desc: "default identity headers are removed", status: 200,
			request: func(t *testing.T, iss *issuer.Issuer, r *http.Request) {
				r.Header.Set("Authorization", "Bearer "+token(t, iss, nil))
				r.Header.Set("Forwarded", "for=10.0.0.1;by=internal")
				r.Header.Set("X-Remote-User", "root")
				r.Header.Set("X-Forwarded-User", "root")
				r.Header.Set("Remote-User", "root")
				r.Header["X_remote_user"] = []string{"root"}
				r.Header.Set("X-Forwarded-Email", "root@example")
				r.Header.Set("X-Forwarded-Groups", "admins")
				r.Header.Set("X-Webauth-User", "root")
				r.Header.Set("X-Tenant", "kept")
			},
			upstream: map[string]string{"Forwarded": "", "X-Remote-User": "", "X-Forwarded-User": "", "Remote-User": "",
				"X_remote_user": "", "X-Forwarded-Email": "", "X-Forwarded-Groups": "", "X-Webauth-User": "", "X-Tenant": "kept"}},
		{desc: "identity headers removed from anonymous requests too", config: map[string]any{"optional": "true"}, status: 200,
			request: func(t *testing.T, iss *issuer.Issuer, r *http.Request) {
				r.Header.Set("X-Auth-Admin", "true")
				r.Header.Set("X-Remote-User", "root")
			},
			upstream: map[string]string{"X-Auth-Admin": "", "X-Remote-User": ""}},
		{desc: "identityHeaders replaces the default list; X-Auth-* always removed",
			config: map[string]any{"identityHeaders": []any{"X-Tenant", "X-Forwarded-User"}}, status: 200,
			request: func(t *testing.T, iss *issuer.Issuer, r *http.Request) {
				r.Header.Set("Authorization", "Bearer "+token(t, iss, nil))
				r.Header.Set("X-Tenant", "acme")
				r.Header.Set("X_forwarded_user", "root")
				r.Header.Set("X-Remote-User", "kept")
				r.Header.Set("X-Auth-Admin", "true")
			},
			upstream: map[string]string{"X-Tenant": "", "X_forwarded_user": "", "X-Remote-User": "kept", "X-Auth-Admin": ""}},

		// Claim values: one rule for what is forwarded, what is refused.
		{desc: "comma inside a role is refused, not split into two roles",
			request: withToken(map[string]any{"realm_access": map[string]any{"roles": []any{"broker-user", "x,broker-admin"}}}),
			status:  401, challenge: invalid, errorCode: "invalid_token", why: "comma"},
		{desc: "U+0085 (NEL) in a claim is refused", request: withToken(map[string]any{"preferred_username": "a\u0085X-Admin: 1"}),
			status: 401, challenge: invalid, why: "control characters"},
		{desc: "U+2028 (line separator) in a claim is refused", request: withToken(map[string]any{"preferred_username": "a\u2028b"}),
			status: 401, challenge: invalid, why: "control characters"},
		{desc: "U+2029 (paragraph separator) in a role is refused",
			request: withToken(map[string]any{"realm_access": map[string]any{"roles": []any{"broker-user", "a\u2029b"}}}),
			status:  401, challenge: invalid, why: "control characters"},
		{desc: "C1 control U+009B in a claim is refused", request: withToken(map[string]any{"azp": "svc\u009b"}),
			status: 401, challenge: invalid, why: "control characters"},
		{desc: "bidi override U+202E in a claim is refused", request: withToken(map[string]any{"preferred_username": "abc\u202egpj.exe"}),
			status: 401, challenge: invalid, why: "control characters"},
		{desc: "non-ASCII letters are forwarded as UTF-8", request: withToken(map[string]any{"preferred_username": "José-Ünal"}),
			status: 200, upstream: map[string]string{"X-Auth-Username": "José-Ünal"}},
		{desc: "sub that is a number is refused", request: withToken(map[string]any{"sub": 42}),
			status: 401, challenge: invalid, why: "type"},
		{desc: "sub that is an object is refused", request: withToken(map[string]any{"sub": map[string]any{"id": "root"}}),
			status: 401, challenge: invalid, why: "type"},
		{desc: "sub that is an array is refused", request: withToken(map[string]any{"sub": []any{"a", "b"}}),
			status: 401, challenge: invalid, why: "type"},
		{desc: "azp that is not a string is refused", request: withToken(map[string]any{"azp": true}),
			status: 401, challenge: invalid, why: "type"},
		{desc: "a forwarded claim that is an object is refused", request: withToken(map[string]any{"preferred_username": map[string]any{"a": "b"}}),
			status: 401, challenge: invalid, why: "type"},
		{desc: "an array element that is an object is refused",
			request: withToken(map[string]any{"realm_access": map[string]any{"roles": []any{"broker-user", map[string]any{"a": "b"}}}}),
			status:  401, challenge: invalid, why: "type"},

		// One rule for the Bearer scheme: any letter case, one or more spaces, surrounding
		// spaces ignored.
		{desc: "Bearer with two spaces", status: 200, upstream: map[string]string{"X-Auth-Client": "svc"},
			request: func(t *testing.T, iss *issuer.Issuer, r *http.Request) {
				r.Header.Set("Authorization", "Bearer  "+token(t, iss, nil))
			}},
		{desc: "bearer with two spaces", status: 200, upstream: map[string]string{"X-Auth-Client": "svc"},
			request: func(t *testing.T, iss *issuer.Issuer, r *http.Request) {
				r.Header.Set("Authorization", "bearer  "+token(t, iss, nil))
			}},
		{desc: "Bearer with a trailing space", status: 200, upstream: map[string]string{"X-Auth-Client": "svc"},
			request: func(t *testing.T, iss *issuer.Issuer, r *http.Request) {
				r.Header.Set("Authorization", "Bearer "+token(t, iss, nil)+" ")
			}},
		{desc: "BEARER with a trailing space", status: 200, upstream: map[string]string{"X-Auth-Client": "svc"},
			request: func(t *testing.T, iss *issuer.Issuer, r *http.Request) {
				r.Header.Set("Authorization", "BEARER "+token(t, iss, nil)+" ")
			}},
	}
}

func TestJWTAuthCases(t *testing.T) {
	iss := startIssuer(t)
	for _, b := range jwtBuilders(t) {
		t.Run(b.Name, func(t *testing.T) {
			for _, tc := range jwtCases() {
				t.Run(tc.desc, func(t *testing.T) {
					up := &upstream{}
					ctx, cancel := context.WithCancel(context.Background())
					defer cancel()
					h, err := b.New(ctx, up, merge(baseConfig(iss), tc.config), "test-auth")
					if err != nil {
						t.Fatalf("New: %v", err)
					}
					r := httptest.NewRequest(http.MethodGet, "/api/v1/things", nil)
					if tc.request != nil {
						tc.request(t, iss, r)
					}
					auth := r.Header.Get("Authorization")
					w := httptest.NewRecorder()
					h.ServeHTTP(w, r)
					res := w.Result()
					body, _ := io.ReadAll(res.Body)
					if res.StatusCode != tc.status {
						t.Fatalf("status %d, want %d; body %s", res.StatusCode, tc.status, body)
					}
					if up.called != (tc.status == 200) {
						t.Fatalf("upstream called = %v with status %d", up.called, res.StatusCode)
					}
					if tc.challenge != "" {
						got := res.Header.Get("WWW-Authenticate")
						if !matchStar(got, tc.challenge) {
							t.Fatalf("WWW-Authenticate %q, want %q", got, tc.challenge)
						}
					}
					if tc.status != 200 {
						checkErrorBody(t, res, body, tc.errorCode, tc.why, auth)
					}
					for name, want := range tc.upstream {
						got := up.header.Values(name)
						if want == "" {
							if len(got) != 0 {
								t.Fatalf("upstream saw %s = %q, want it absent", name, got)
							}
							continue
						}
						if len(got) != 1 || !matchStar(got[0], want) {
							t.Fatalf("upstream saw %s = %q, want exactly %q", name, got, want)
						}
					}
				})
			}
		})
	}
}

// checkErrorBody checks the RFC 6750 JSON body and that it never echoes the token.
func checkErrorBody(t *testing.T, res *http.Response, body []byte, code, why, auth string) {
	t.Helper()
	if ct := res.Header.Get("Content-Type"); ct != "application/json" {
		t.Fatalf("Content-Type %q", ct)
	}
	var e struct {
		Error       string `json:"error"`
		Description string `json:"error_description"`
	}
	if err := json.Unmarshal(body, &e); err != nil || e.Error == "" || e.Description == "" {
		t.Fatalf("error body %q: %v", body, err)
	}
	if code != "" && e.Error != code {
		t.Fatalf("error %q, want %q", e.Error, code)
	}
	if !strings.Contains(e.Description, why) {
		t.Fatalf("error_description %q, want it to say %q", e.Description, why)
	}
	if cc := res.Header.Get("Cache-Control"); cc != "no-store" {
		t.Fatalf("Cache-Control %q, want no-store", cc)
	}
	if tok := strings.TrimPrefix(auth, "Bearer "); len(tok) > 8 && strings.Contains(string(body)+res.Header.Get("WWW-Authenticate"), tok) {
		t.Fatal("the answer echoes the token")
	}
}

func matchStar(got, want string) bool {
	if strings.HasSuffix(want, "*") {
		return strings.HasPrefix(got, strings.TrimSuffix(want, "*"))
	}
	return got == want
}

func TestJWTAuthConfigErrors(t *testing.T) {
	for _, b := range jwtBuilders(t) {
		t.Run(b.Name, func(t *testing.T) {
			for _, tc := range []struct {
				desc   string
				config map[string]any
				want   []string
			}{
				{desc: "issuer missing", config: map[string]any{"audiences": "core-broker"}, want: []string{`jwtauth "bad": issuer: required`}},
				{desc: "issuer not a URL", config: map[string]any{"issuer": "pavilion"}, want: []string{`issuer: must be an http(s) URL, got "pavilion"`}},
				{desc: "duration without unit", config: map[string]any{"issuer": "https://kc/realms/p", "leeway": "30"}, want: []string{`leeway: invalid duration "30"`}},
				{desc: "HS256 not allowed", config: map[string]any{"issuer": "https://kc/realms/p", "algorithms": []any{"RS256", "HS256"}}, want: []string{`algorithms: "HS256" is not allowed`}},
				{desc: "none not allowed", config: map[string]any{"issuer": "https://kc/realms/p", "algorithms": "none"}, want: []string{`algorithms: "none"`}},
				{desc: "bad header name", config: map[string]any{"issuer": "https://kc/realms/p", "claimHeaders": map[string]any{"sub": "X Bad"}}, want: []string{`claimHeaders: sub: invalid header name "X Bad"`}},
				{desc: "reserved header", config: map[string]any{"issuer": "https://kc/realms/p", "claimHeaders": map[string]any{"sub": "Authorization"}}, want: []string{`claimHeaders: sub: header "Authorization" is reserved`}},
				{desc: "a header in claimHeaders and claimHeaderList", config: map[string]any{"issuer": "https://kc/realms/p",
					"claimHeaders": map[string]any{"sub": "X-Who"}, "claimHeaderList": []any{map[string]any{"claim": "azp", "header": "x-who"}}},
					want: []string{`claimHeaderList[0].claim: sub and claimHeaderList[0] both map to header "X-Who"`}},
				{desc: "claimHeaderList entries checked", config: map[string]any{"issuer": "https://kc/realms/p", "claimHeaderList": []any{
					map[string]any{"header": "X-A"}, map[string]any{"claim": "sub", "header": "X Bad"}, map[string]any{"claim": "a..b", "header": "X-C"},
					map[string]any{"claim": "azp", "header": "Cookie"}}},
					want: []string{`claimHeaderList[0].claim: invalid claim path ""`, `claimHeaderList[1].header: invalid header name "X Bad"`,
						`claimHeaderList[2].claim: invalid claim path "a..b"`, `claimHeaderList[3].header: header "Cookie" is reserved`}},
				{desc: "identity header needed by the request", config: map[string]any{"issuer": "https://kc/realms/p", "identityHeaders": []any{"X-User", "authorization"}}, want: []string{`identityHeaders: header "Authorization" is needed by the request itself`}},
				{desc: "identity header not a token", config: map[string]any{"issuer": "https://kc/realms/p", "identityHeaders": []any{"X User"}}, want: []string{`identityHeaders: invalid header name "X User"`}},
				{desc: "bad client role", config: map[string]any{"issuer": "https://kc/realms/p", "requiredRoles": []any{"core-broker:"}}, want: []string{`requiredRoles: "core-broker:"`}},
				{desc: "bool yes fails to decode", config: map[string]any{"issuer": "https://kc/realms/p", "optional": "yes"}, want: []string{"Optional"}},
				{desc: "every problem at once", config: map[string]any{"leeway": "x", "refreshInterval": "-1s", "realm": `a"b`},
					want: []string{"issuer: required", `leeway: invalid duration "x"`, `refreshInterval: "-1s" is out of range`, "realm: must be"}},
			} {
				t.Run(tc.desc, func(t *testing.T) {
					_, err := b.New(context.Background(), &upstream{}, tc.config, "bad")
					if err == nil {
						t.Fatal("New accepted a broken configuration")
					}
					for _, w := range tc.want {
						if !strings.Contains(err.Error(), w) {
							t.Fatalf("error %q does not contain %q", err, w)
						}
					}
				})
			}
		})
	}
}

// TestJWTAuthKeyRotationAndIdPOutage: a token signed with a rotated-in key is accepted without
// rebuilding the middleware, and known keys keep verifying while the issuer is down.
func TestJWTAuthKeyRotationAndIdPOutage(t *testing.T) {
	for _, b := range jwtBuilders(t) {
		t.Run(b.Name, func(t *testing.T) {
			iss := startIssuer(t)
			ctx, cancel := context.WithCancel(context.Background())
			defer cancel()
			h, err := b.New(ctx, &upstream{}, merge(baseConfig(iss), map[string]any{"minRefreshInterval": "1s"}), "rot")
			if err != nil {
				t.Fatal(err)
			}
			do := func(tok string) int { return serveBearer(h, tok).Code }
			old := token(t, iss, nil)
			if c := do(old); c != 200 {
				t.Fatalf("first token: %d", c)
			}
			// The first request may have caused the one fetch allowed per minRefreshInterval (if it
			// came before the background refresher's first fetch): let that interval pass.
			time.Sleep(1100 * time.Millisecond)
			if _, err := iss.Rotate(); err != nil {
				t.Fatal(err)
			}
			if c := do(token(t, iss, nil)); c != 200 {
				t.Fatalf("token signed with the rotated key: %d", c)
			}
			if c := do(old); c != 200 {
				t.Fatalf("token of the old, still published key: %d", c)
			}
			if err := iss.Stop(); err != nil {
				t.Fatal(err)
			}
			fresh := token(t, iss, nil) // new jti: not in the verified-token cache
			if c := do(fresh); c != 200 {
				t.Fatalf("known key while the issuer is down: %d", c)
			}
		})
	}
}
