package issuer

import (
	"crypto/rsa"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"math/big"
	"net/http"
	"net/http/httptest"
	"net/url"
	"reflect"
	"regexp"
	"sort"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/golang-jwt/jwt/v5"
)

func testClients() []Client {
	return []Client{
		{
			ID:          "broker-service",
			Secret:      "broker-service-secret",
			Audience:    []string{"core-broker"},
			Scopes:      []string{"broker:read", "broker:write"},
			RealmRoles:  []string{"broker-user"},
			ClientRoles: map[string][]string{"core-broker": {"reader"}},
		},
		{ID: "no-audience", Secret: "no-audience-secret"},
		{
			ID:          "multi",
			Secret:      "p@ss:wörd &=+%",
			Audience:    []string{"core-broker", "ledger"},
			Scopes:      []string{"ledger:read"},
			RealmRoles:  []string{"a", "b"},
			ClientRoles: map[string][]string{"core-broker": {"reader", "writer"}, "ledger": {"auditor"}},
			Username:    "custom-user",
		},
		{ID: "public-ui"}, // no secret: public client
	}
}

// startIssuer creates and starts an issuer on a free port, stopped at cleanup.
func startIssuer(t *testing.T, cfg Config) *Issuer {
	t.Helper()
	if cfg.Clients == nil {
		cfg.Clients = testClients()
	}
	iss, err := New(cfg)
	if err != nil {
		t.Fatalf("New: %v", err)
	}
	if err := iss.Start("127.0.0.1:0"); err != nil {
		t.Fatalf("Start: %v", err)
	}
	t.Cleanup(func() { _ = iss.Stop() })
	return iss
}

type response struct {
	status int
	header http.Header
	body   map[string]any
	raw    string
}

func do(t *testing.T, req *http.Request) response {
	t.Helper()
	res, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatalf("%s %s: %v", req.Method, req.URL, err)
	}
	defer res.Body.Close()
	raw, err := io.ReadAll(res.Body)
	if err != nil {
		t.Fatalf("read body: %v", err)
	}
	r := response{status: res.StatusCode, header: res.Header, raw: string(raw)}
	if len(raw) > 0 {
		if err := json.Unmarshal(raw, &r.body); err != nil {
			t.Fatalf("%s %s: body is not a JSON object: %v: %q", req.Method, req.URL, err, raw)
		}
	}
	return r
}

func get(t *testing.T, u string) response {
	t.Helper()
	req, err := http.NewRequest(http.MethodGet, u, nil)
	if err != nil {
		t.Fatal(err)
	}
	return do(t, req)
}

func tokenURL(iss *Issuer) string { return iss.IssuerURL() + "/protocol/openid-connect/token" }

// publishedKeys fetches the JWKS over HTTP and returns its RSA keys by kid
// (entries that are not RSA are skipped) plus the raw entries.
func publishedKeys(t *testing.T, iss *Issuer) (map[string]*rsa.PublicKey, []map[string]any) {
	t.Helper()
	res := get(t, iss.JWKSURL())
	if res.status != http.StatusOK {
		t.Fatalf("JWKS status %d: %s", res.status, res.raw)
	}
	var set struct {
		Keys []map[string]any `json:"keys"`
	}
	if err := json.Unmarshal([]byte(res.raw), &set); err != nil {
		t.Fatalf("JWKS: %v", err)
	}
	keys := map[string]*rsa.PublicKey{}
	for _, k := range set.Keys {
		if k["kty"] != "RSA" {
			continue
		}
		kid, _ := k["kid"].(string)
		keys[kid] = parseRSAJWK(t, k)
	}
	return keys, set.Keys
}

func parseRSAJWK(t *testing.T, k map[string]any) *rsa.PublicKey {
	t.Helper()
	dec := func(field string) *big.Int {
		s, _ := k[field].(string)
		if strings.ContainsAny(s, "=+/") {
			t.Fatalf("JWK %s is not unpadded base64url: %q", field, s)
		}
		b, err := base64.RawURLEncoding.DecodeString(s)
		if err != nil {
			t.Fatalf("JWK %s: %v", field, err)
		}
		return new(big.Int).SetBytes(b)
	}
	return &rsa.PublicKey{N: dec("n"), E: int(dec("e").Int64())}
}

// verify parses tok against the keys the issuer publishes over HTTP, the way
// a relying party would.
func verify(t *testing.T, iss *Issuer, tok string, opts ...jwt.ParserOption) (*jwt.Token, jwt.MapClaims, error) {
	t.Helper()
	keys, _ := publishedKeys(t, iss)
	claims := jwt.MapClaims{}
	opts = append([]jwt.ParserOption{jwt.WithValidMethods([]string{"RS256"}), jwt.WithIssuer(iss.IssuerURL())}, opts...)
	parsed, err := jwt.ParseWithClaims(tok, claims, func(tk *jwt.Token) (any, error) {
		kid, _ := tk.Header["kid"].(string)
		if k, ok := keys[kid]; ok {
			return k, nil
		}
		return nil, fmt.Errorf("kid %q not published", kid)
	}, opts...)
	return parsed, claims, err
}

var uuidRE = regexp.MustCompile(`^[0-9a-f]{8}-[0-9a-f]{4}-4[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}$`)

func TestNew(t *testing.T) {
	tests := []struct {
		desc    string
		cfg     Config
		wantErr string
	}{
		{desc: "defaults", cfg: Config{}},
		{desc: "duplicate client", cfg: Config{Clients: []Client{{ID: "a"}, {ID: "a"}}}, wantErr: "duplicate client"},
		{desc: "empty client id", cfg: Config{Clients: []Client{{Secret: "x"}}}, wantErr: "empty ID"},
		{desc: "realm with slash", cfg: Config{Realm: "a/b"}, wantErr: "invalid realm"},
		{desc: "negative lifetime", cfg: Config{TokenLifetime: -time.Second}, wantErr: "negative token lifetime"},
		{desc: "key too small", cfg: Config{KeyBits: 512}, wantErr: "generate RSA-512 key"},
	}
	for _, tt := range tests {
		t.Run(tt.desc, func(t *testing.T) {
			iss, err := New(tt.cfg)
			if tt.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tt.wantErr) {
					t.Fatalf("err = %v, want containing %q", err, tt.wantErr)
				}
				return
			}
			if err != nil {
				t.Fatalf("New: %v", err)
			}
			if got := iss.Realm(); got != "pavilion" {
				t.Errorf("realm = %q, want pavilion", got)
			}
			if got := iss.PrivateKey(iss.CurrentKID()).N.BitLen(); got != 2048 {
				t.Errorf("key bits = %d, want 2048", got)
			}
			if iss.lifetime != 5*time.Minute {
				t.Errorf("lifetime = %v, want 5m", iss.lifetime)
			}
			if iss.PrivateKey("nope") != nil {
				t.Error("PrivateKey(unknown) != nil")
			}
		})
	}
}

func TestURLs(t *testing.T) {
	iss, err := New(Config{Realm: "r1", KeyBits: 1024})
	if err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		desc, base, wantIssuer string
	}{
		{desc: "plain", base: "http://127.0.0.1:34567", wantIssuer: "http://127.0.0.1:34567/realms/r1"},
		{desc: "trailing slash ignored", base: "https://idp.example/", wantIssuer: "https://idp.example/realms/r1"},
	}
	for _, tt := range tests {
		t.Run(tt.desc, func(t *testing.T) {
			iss.SetBaseURL(tt.base)
			if got := iss.IssuerURL(); got != tt.wantIssuer {
				t.Errorf("IssuerURL = %q, want %q", got, tt.wantIssuer)
			}
			if got, want := iss.JWKSURL(), tt.wantIssuer+"/protocol/openid-connect/certs"; got != want {
				t.Errorf("JWKSURL = %q, want %q", got, want)
			}
		})
	}
}

func TestDiscovery(t *testing.T) {
	iss := startIssuer(t, Config{})
	res := get(t, iss.IssuerURL()+"/.well-known/openid-configuration")
	if res.status != http.StatusOK {
		t.Fatalf("status %d: %s", res.status, res.raw)
	}
	if ct := res.header.Get("Content-Type"); ct != "application/json" {
		t.Errorf("Content-Type = %q", ct)
	}
	base := "http://" + iss.Addr() + "/realms/pavilion"
	if iss.IssuerURL() != base {
		t.Fatalf("IssuerURL = %q, want %q", iss.IssuerURL(), base)
	}
	tests := []struct {
		desc  string
		field string
		want  any
	}{
		{desc: "issuer", field: "issuer", want: base},
		{desc: "jwks_uri", field: "jwks_uri", want: base + "/protocol/openid-connect/certs"},
		{desc: "token endpoint", field: "token_endpoint", want: base + "/protocol/openid-connect/token"},
		{desc: "authorization endpoint", field: "authorization_endpoint", want: base + "/protocol/openid-connect/auth"},
		{desc: "grant types", field: "grant_types_supported", want: []any{"client_credentials"}},
		{desc: "signing algs", field: "id_token_signing_alg_values_supported", want: []any{"RS256"}},
		{desc: "auth methods", field: "token_endpoint_auth_methods_supported", want: []any{"client_secret_basic", "client_secret_post"}},
		{desc: "subject types", field: "subject_types_supported", want: []any{"public"}},
		{desc: "response types", field: "response_types_supported", want: []any{"code"}},
		{desc: "scopes", field: "scopes_supported", want: []any{"openid", "broker:read", "broker:write", "ledger:read"}},
	}
	for _, tt := range tests {
		t.Run(tt.desc, func(t *testing.T) {
			if got := res.body[tt.field]; !reflect.DeepEqual(got, tt.want) {
				t.Errorf("%s = %#v, want %#v", tt.field, got, tt.want)
			}
		})
	}
	t.Run("advertised endpoints answer", func(t *testing.T) {
		for field, want := range map[string]int{
			"authorization_endpoint": http.StatusNotImplemented,
			"userinfo_endpoint":      http.StatusNotImplemented,
			"jwks_uri":               http.StatusOK,
			"token_endpoint":         http.StatusMethodNotAllowed, // GET
		} {
			u, _ := res.body[field].(string)
			if got := get(t, u); got.status != want {
				t.Errorf("GET %s (%s) = %d, want %d", u, field, got.status, want)
			}
		}
	})
}

func TestIssuerFromRequestWithoutBaseURL(t *testing.T) {
	iss, err := New(Config{Clients: testClients(), KeyBits: 1024})
	if err != nil {
		t.Fatal(err)
	}
	srv := httptest.NewServer(iss.Handler())
	defer srv.Close()
	want := srv.URL + "/realms/pavilion"

	res := get(t, want+"/.well-known/openid-configuration")
	if res.body["issuer"] != want {
		t.Errorf("discovery issuer = %v, want %s", res.body["issuer"], want)
	}
	tok := postToken(t, want+"/protocol/openid-connect/token",
		url.Values{"grant_type": {"client_credentials"}, "client_id": {"broker-service"}, "client_secret": {"broker-service-secret"}}, nil)
	if tok.status != http.StatusOK {
		t.Fatalf("token status %d: %s", tok.status, tok.raw)
	}
	claims := jwt.MapClaims{}
	if _, _, err := jwt.NewParser().ParseUnverified(tok.body["access_token"].(string), claims); err != nil {
		t.Fatal(err)
	}
	if claims["iss"] != want {
		t.Errorf("token iss = %v, want %s", claims["iss"], want)
	}

	iss.SetBaseURL("https://idp.example")
	if res := get(t, want+"/.well-known/openid-configuration"); res.body["issuer"] != "https://idp.example/realms/pavilion" {
		t.Errorf("after SetBaseURL issuer = %v", res.body["issuer"])
	}
}

func TestJWKS(t *testing.T) {
	iss := startIssuer(t, Config{})
	kid := iss.CurrentKID()

	res := get(t, iss.JWKSURL())
	if ct := res.header.Get("Content-Type"); ct != "application/json" {
		t.Errorf("Content-Type = %q, want application/json", ct)
	}
	keys, raw := publishedKeys(t, iss)
	if len(raw) != 1 {
		t.Fatalf("published %d keys, want 1: %v", len(raw), raw)
	}
	tests := []struct {
		desc  string
		field string
		want  any
	}{
		{desc: "kid", field: "kid", want: kid},
		{desc: "kty", field: "kty", want: "RSA"},
		{desc: "alg", field: "alg", want: "RS256"},
		{desc: "use", field: "use", want: "sig"},
		{desc: "e", field: "e", want: "AQAB"},
	}
	for _, tt := range tests {
		t.Run(tt.desc, func(t *testing.T) {
			if got := raw[0][tt.field]; got != tt.want {
				t.Errorf("%s = %v, want %v", tt.field, got, tt.want)
			}
		})
	}
	t.Run("n and e parse into the private key's public half", func(t *testing.T) {
		if !keys[kid].Equal(&iss.PrivateKey(kid).PublicKey) {
			t.Error("published key differs from PrivateKey(kid).PublicKey")
		}
		if keys[kid].N.BitLen() != 2048 {
			t.Errorf("modulus bits = %d", keys[kid].N.BitLen())
		}
	})
	t.Run("kid is the RFC 7638 thumbprint", func(t *testing.T) {
		if got := thumbprint(keys[kid]); got != kid {
			t.Errorf("thumbprint = %q, kid = %q", got, kid)
		}
	})

	extras := []struct {
		desc  string
		extra []map[string]any
		want  int
	}{
		{desc: "extras appended", extra: []map[string]any{
			{"kid": "enc-1", "kty": "RSA", "use": "enc", "alg": "RSA-OAEP", "n": raw[0]["n"], "e": "AQAB"},
			{"kid": "ec-1", "kty": "EC", "crv": "P-256", "x": "AA", "y": "AA"},
		}, want: 3},
		{desc: "nil clears", extra: nil, want: 1},
	}
	for _, tt := range extras {
		t.Run(tt.desc, func(t *testing.T) {
			iss.SetPublishedExtra(tt.extra)
			_, raw := publishedKeys(t, iss)
			if len(raw) != tt.want {
				t.Fatalf("published %d entries, want %d", len(raw), tt.want)
			}
			if raw[0]["kid"] != kid {
				t.Errorf("first entry kid = %v, want own key %s", raw[0]["kid"], kid)
			}
			for n, e := range tt.extra {
				if !reflect.DeepEqual(raw[n+1], e) {
					t.Errorf("entry %d = %v, want %v", n+1, raw[n+1], e)
				}
			}
		})
	}
}

func postToken(t *testing.T, u string, form url.Values, basic []string) response {
	t.Helper()
	req, err := http.NewRequest(http.MethodPost, u, strings.NewReader(form.Encode()))
	if err != nil {
		t.Fatal(err)
	}
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	if basic != nil {
		req.SetBasicAuth(basic[0], basic[1])
	}
	return do(t, req)
}

func TestTokenEndpoint(t *testing.T) {
	iss := startIssuer(t, Config{})
	cc := func(kv ...string) url.Values {
		v := url.Values{"grant_type": {"client_credentials"}}
		for n := 0; n+1 < len(kv); n += 2 {
			v.Set(kv[n], kv[n+1])
		}
		return v
	}
	tests := []struct {
		desc        string
		form        url.Values
		basic       []string // user, password (already form-encoded as RFC 6749 §2.3.1 wants)
		contentType string   // default form
		method      string   // default POST
		wantStatus  int
		wantError   string
		wantAuthHdr bool
		wantClient  string
		wantAud     any
		wantScope   string
	}{
		{
			desc: "form credentials", form: cc("client_id", "broker-service", "client_secret", "broker-service-secret"),
			wantStatus: 200, wantClient: "broker-service", wantAud: "core-broker", wantScope: "broker:read broker:write",
		},
		{
			desc: "basic credentials", form: cc(), basic: []string{"broker-service", "broker-service-secret"},
			wantStatus: 200, wantClient: "broker-service", wantAud: "core-broker", wantScope: "broker:read broker:write",
		},
		{
			desc: "basic with url-encoded secret", form: cc(), basic: []string{"multi", url.QueryEscape("p@ss:wörd &=+%")},
			wantStatus: 200, wantClient: "multi", wantAud: []any{"core-broker", "ledger"}, wantScope: "ledger:read",
		},
		{
			desc: "basic plus matching client_id in body", form: cc("client_id", "broker-service"),
			basic:      []string{"broker-service", "broker-service-secret"},
			wantStatus: 200, wantClient: "broker-service", wantAud: "core-broker", wantScope: "broker:read broker:write",
		},
		{
			desc: "no audience gets account", form: cc("client_id", "no-audience", "client_secret", "no-audience-secret"),
			wantStatus: 200, wantClient: "no-audience", wantAud: "account", wantScope: "",
		},
		{
			desc: "bad secret in form", form: cc("client_id", "broker-service", "client_secret", "wrong"),
			wantStatus: 401, wantError: "invalid_client",
		},
		{
			desc: "bad secret in basic", form: cc(), basic: []string{"broker-service", "wrong"},
			wantStatus: 401, wantError: "invalid_client", wantAuthHdr: true,
		},
		{
			desc: "unknown client", form: cc("client_id", "ghost", "client_secret", "x"),
			wantStatus: 401, wantError: "invalid_client",
		},
		{
			desc: "no client credentials", form: cc(),
			wantStatus: 401, wantError: "invalid_client",
		},
		{
			desc: "public client", form: cc("client_id", "public-ui"),
			wantStatus: 401, wantError: "unauthorized_client",
		},
		{
			desc: "basic and different client_id in body", form: cc("client_id", "no-audience"),
			basic: []string{"broker-service", "broker-service-secret"}, wantStatus: 400, wantError: "invalid_request",
		},
		{
			desc: "unsupported grant", form: url.Values{"grant_type": {"password"}, "client_id": {"broker-service"}, "client_secret": {"broker-service-secret"}},
			wantStatus: 400, wantError: "unsupported_grant_type",
		},
		{
			desc: "unsupported grant is reported before bad credentials", form: url.Values{"grant_type": {"authorization_code"}, "client_id": {"ghost"}},
			wantStatus: 400, wantError: "unsupported_grant_type",
		},
		{
			desc: "missing grant", form: url.Values{"client_id": {"broker-service"}, "client_secret": {"broker-service-secret"}},
			wantStatus: 400, wantError: "invalid_request",
		},
		{
			desc: "json body", form: cc("client_id", "broker-service", "client_secret", "broker-service-secret"),
			contentType: "application/json", wantStatus: 415, wantError: "invalid_request",
		},
		{
			desc: "GET", method: http.MethodGet, wantStatus: 405,
		},
	}
	for _, tt := range tests {
		t.Run(tt.desc, func(t *testing.T) {
			method := tt.method
			if method == "" {
				method = http.MethodPost
			}
			req, err := http.NewRequest(method, tokenURL(iss), strings.NewReader(tt.form.Encode()))
			if err != nil {
				t.Fatal(err)
			}
			ct := tt.contentType
			if ct == "" {
				ct = "application/x-www-form-urlencoded"
			}
			req.Header.Set("Content-Type", ct)
			if tt.basic != nil {
				req.SetBasicAuth(tt.basic[0], tt.basic[1])
			}
			res := do(t, req)
			if res.status != tt.wantStatus {
				t.Fatalf("status = %d, want %d: %s", res.status, tt.wantStatus, res.raw)
			}
			if got := res.header.Get("Content-Type"); got != "application/json" {
				t.Errorf("Content-Type = %q", got)
			}
			if got := res.header.Get("WWW-Authenticate") != ""; got != tt.wantAuthHdr {
				t.Errorf("WWW-Authenticate present = %v, want %v", got, tt.wantAuthHdr)
			}
			if tt.wantStatus != http.StatusOK {
				if tt.wantError != "" {
					if res.body["error"] != tt.wantError {
						t.Errorf("error = %v, want %s", res.body["error"], tt.wantError)
					}
					if d, _ := res.body["error_description"].(string); d == "" {
						t.Error("error_description missing")
					}
				}
				if _, ok := res.body["access_token"]; ok {
					t.Error("error response carries an access_token")
				}
				return
			}
			for field, want := range map[string]any{
				"token_type": "Bearer", "expires_in": float64(300), "scope": tt.wantScope,
				"refresh_expires_in": float64(0), "not-before-policy": float64(0),
			} {
				if res.body[field] != want {
					t.Errorf("%s = %#v, want %#v", field, res.body[field], want)
				}
			}
			if got := res.header.Get("Cache-Control"); got != "no-store" {
				t.Errorf("Cache-Control = %q, want no-store", got)
			}
			tok, _ := res.body["access_token"].(string)
			parsed, claims, err := verify(t, iss, tok)
			if err != nil {
				t.Fatalf("access token does not verify: %v", err)
			}
			if parsed.Header["kid"] != iss.CurrentKID() {
				t.Errorf("kid = %v, want %s", parsed.Header["kid"], iss.CurrentKID())
			}
			if claims["azp"] != tt.wantClient || claims["clientId"] != tt.wantClient {
				t.Errorf("azp/clientId = %v/%v, want %s", claims["azp"], claims["clientId"], tt.wantClient)
			}
			if !reflect.DeepEqual(claims["aud"], tt.wantAud) {
				t.Errorf("aud = %#v, want %#v", claims["aud"], tt.wantAud)
			}
			if claims["scope"] != tt.wantScope {
				t.Errorf("scope claim = %v, want %q", claims["scope"], tt.wantScope)
			}
		})
	}
}

func TestTokenClaims(t *testing.T) {
	now := time.Now().Truncate(time.Second)
	iss := startIssuer(t, Config{Now: func() time.Time { return now }, TokenLifetime: 90 * time.Second})
	exp, iat := float64(now.Add(90*time.Second).Unix()), float64(now.Unix())

	tests := []struct {
		desc     string
		clientID string
		want     jwt.MapClaims // everything but jti and sub
	}{
		{
			desc: "single audience, roles", clientID: "broker-service",
			want: jwt.MapClaims{
				"exp": exp, "iat": iat, "iss": iss.IssuerURL(), "aud": "core-broker", "typ": "Bearer",
				"azp": "broker-service", "clientId": "broker-service", "scope": "broker:read broker:write",
				"preferred_username": "service-account-broker-service",
				"realm_access":       map[string]any{"roles": []any{"broker-user"}},
				"resource_access":    map[string]any{"core-broker": map[string]any{"roles": []any{"reader"}}},
			},
		},
		{
			desc: "several audiences, custom username", clientID: "multi",
			want: jwt.MapClaims{
				"exp": exp, "iat": iat, "iss": iss.IssuerURL(), "aud": []any{"core-broker", "ledger"}, "typ": "Bearer",
				"azp": "multi", "clientId": "multi", "scope": "ledger:read", "preferred_username": "custom-user",
				"realm_access": map[string]any{"roles": []any{"a", "b"}},
				"resource_access": map[string]any{
					"core-broker": map[string]any{"roles": []any{"reader", "writer"}},
					"ledger":      map[string]any{"roles": []any{"auditor"}},
				},
			},
		},
		{
			desc: "no audience, no roles", clientID: "no-audience",
			want: jwt.MapClaims{
				"exp": exp, "iat": iat, "iss": iss.IssuerURL(), "aud": "account", "typ": "Bearer",
				"azp": "no-audience", "clientId": "no-audience", "scope": "",
				"preferred_username": "service-account-no-audience",
			},
		},
	}
	sortedKeys := func(m jwt.MapClaims) []string {
		var ks []string
		for k := range m {
			ks = append(ks, k)
		}
		sort.Strings(ks)
		return ks
	}
	for _, tt := range tests {
		t.Run(tt.desc, func(t *testing.T) {
			tok, err := iss.Token(tt.clientID)
			if err != nil {
				t.Fatalf("Token: %v", err)
			}
			parsed, claims, err := verify(t, iss, tok, jwt.WithTimeFunc(func() time.Time { return now }))
			if err != nil {
				t.Fatalf("verify: %v", err)
			}
			if parsed.Header["typ"] != "JWT" || parsed.Header["alg"] != "RS256" || parsed.Header["kid"] != iss.CurrentKID() {
				t.Errorf("header = %v", parsed.Header)
			}
			jti, _ := claims["jti"].(string)
			sub, _ := claims["sub"].(string)
			if !uuidRE.MatchString(jti) {
				t.Errorf("jti = %q, want a UUID", jti)
			}
			if !uuidRE.MatchString(sub) {
				t.Errorf("sub = %q, want a UUID", sub)
			}
			got := jwt.MapClaims{}
			for k, v := range claims {
				if k != "jti" && k != "sub" {
					got[k] = v
				}
			}
			if !reflect.DeepEqual(got, tt.want) {
				t.Errorf("claims keys %v\nwant keys %v\ngot  %#v\nwant %#v", sortedKeys(got), sortedKeys(tt.want), got, tt.want)
			}

			again, err := iss.Claims(tt.clientID)
			if err != nil {
				t.Fatal(err)
			}
			if again["sub"] != sub {
				t.Errorf("sub not stable: %v then %v", sub, again["sub"])
			}
			if again["jti"] == jti {
				t.Error("jti repeated")
			}
			// Claims uses JSON-decoded types, so it equals what a parser sees.
			again["jti"], again["sub"] = jti, sub
			if !reflect.DeepEqual(jwt.MapClaims(again), claims) {
				t.Errorf("Claims() = %#v, parsed token = %#v", again, claims)
			}
			if e, err := again.GetExpirationTime(); err != nil || !e.Equal(now.Add(90*time.Second)) {
				t.Errorf("GetExpirationTime on Claims() = %v, %v", e, err)
			}
		})
	}

	t.Run("sub differs per client and is stable across instances", func(t *testing.T) {
		other, err := New(Config{Clients: testClients(), KeyBits: 1024})
		if err != nil {
			t.Fatal(err)
		}
		a, _ := iss.Claims("broker-service")
		b, _ := iss.Claims("multi")
		c, _ := other.Claims("broker-service")
		if a["sub"] == b["sub"] {
			t.Error("two clients share a sub")
		}
		if a["sub"] != c["sub"] {
			t.Errorf("sub differs between instances: %v vs %v", a["sub"], c["sub"])
		}
	})

	t.Run("unknown client", func(t *testing.T) {
		if _, err := iss.Token("ghost"); !errors.Is(err, ErrUnknownClient) {
			t.Errorf("Token(ghost) err = %v, want ErrUnknownClient", err)
		}
	})

	t.Run("modified claims are signed as given", func(t *testing.T) {
		c, _ := iss.Claims("broker-service")
		c["exp"] = now.Add(-time.Minute).Unix()
		c["aud"] = "someone-else"
		tok, err := iss.Sign(c)
		if err != nil {
			t.Fatal(err)
		}
		_, got, err := verify(t, iss, tok, jwt.WithTimeFunc(func() time.Time { return now }))
		if !errors.Is(err, jwt.ErrTokenExpired) {
			t.Errorf("err = %v, want ErrTokenExpired", err)
		}
		if got["aud"] != "someone-else" {
			t.Errorf("aud = %v", got["aud"])
		}
	})
}

func TestRotateAndRetire(t *testing.T) {
	iss := startIssuer(t, Config{})
	k1 := iss.CurrentKID()
	tok1, err := iss.Token("broker-service")
	if err != nil {
		t.Fatal(err)
	}

	k2, err := iss.Rotate()
	if err != nil {
		t.Fatal(err)
	}
	tok2, _ := iss.Token("broker-service")

	steps := []struct {
		desc          string
		action        func(t *testing.T)
		wantPublished []string // in order
		wantCurrent   string
		tokens        map[string]bool // token -> verifies against published keys
	}{
		{
			desc: "after Rotate the new key signs and both are published (current first)", action: func(*testing.T) {},
			wantPublished: []string{k2, k1}, wantCurrent: k2, tokens: map[string]bool{tok1: true, tok2: true},
		},
		{
			desc: "Retire removes the old key", action: func(*testing.T) { iss.Retire(k1) },
			wantPublished: []string{k2}, wantCurrent: k2, tokens: map[string]bool{tok1: false, tok2: true},
		},
		{
			desc: "Retire of an unknown kid is a no-op", action: func(*testing.T) { iss.Retire("nope") },
			wantPublished: []string{k2}, wantCurrent: k2, tokens: map[string]bool{tok2: true},
		},
		{
			desc: "Retire of the current key keeps it signing but unpublished", action: func(*testing.T) { iss.Retire(k2) },
			wantPublished: []string{}, wantCurrent: k2, tokens: map[string]bool{tok2: false},
		},
	}
	for _, st := range steps {
		t.Run(st.desc, func(t *testing.T) {
			st.action(t)
			keys, raw := publishedKeys(t, iss)
			gotKids := []string{}
			for _, k := range raw {
				gotKids = append(gotKids, k["kid"].(string))
			}
			if !reflect.DeepEqual(gotKids, st.wantPublished) {
				t.Errorf("published kids = %v, want %v", gotKids, st.wantPublished)
			}
			for kid, pub := range keys {
				if !pub.Equal(&iss.PrivateKey(kid).PublicKey) {
					t.Errorf("published %s does not match PrivateKey", kid)
				}
			}
			if got := iss.CurrentKID(); got != st.wantCurrent {
				t.Errorf("CurrentKID = %s, want %s", got, st.wantCurrent)
			}
			tok, _ := iss.Token("broker-service")
			p, _, _ := jwt.NewParser().ParseUnverified(tok, jwt.MapClaims{})
			if p.Header["kid"] != st.wantCurrent {
				t.Errorf("new token kid = %v, want %s", p.Header["kid"], st.wantCurrent)
			}
			for tk, want := range st.tokens {
				if _, _, err := verify(t, iss, tk); (err == nil) != want {
					t.Errorf("token verifies = %v (err %v), want %v", err == nil, err, want)
				}
			}
		})
	}
	if iss.PrivateKey(k1) == nil {
		t.Error("PrivateKey of a retired key is nil")
	}

	t.Run("admin rotate endpoint", func(t *testing.T) {
		u := "http://" + iss.Addr() + "/admin/rotate"
		if res := get(t, u); res.status != http.StatusMethodNotAllowed || res.header.Get("Allow") != "POST" {
			t.Errorf("GET /admin/rotate = %d Allow=%q", res.status, res.header.Get("Allow"))
		}
		req, _ := http.NewRequest(http.MethodPost, u, nil)
		res := do(t, req)
		if res.status != http.StatusOK {
			t.Fatalf("status %d: %s", res.status, res.raw)
		}
		kid, _ := res.body["kid"].(string)
		if kid == "" || kid == k2 || kid != iss.CurrentKID() {
			t.Errorf("kid = %q, current %q, previous %q", kid, iss.CurrentKID(), k2)
		}
		keys, _ := publishedKeys(t, iss)
		if _, ok := keys[kid]; !ok || len(keys) != 1 {
			t.Errorf("published = %v, want only %s", keys, kid)
		}
	})
}

func TestStopStart(t *testing.T) {
	iss := startIssuer(t, Config{})
	k1 := iss.CurrentKID()
	k2, err := iss.Rotate()
	if err != nil {
		t.Fatal(err)
	}
	addr, issURL := iss.Addr(), iss.IssuerURL()
	before, _ := publishedKeys(t, iss)
	tok, _ := iss.Token("broker-service")

	if err := iss.Start(addr); err == nil {
		t.Fatal("second Start succeeded")
	}
	if err := iss.Stop(); err != nil {
		t.Fatalf("Stop: %v", err)
	}
	if err := iss.Stop(); err != nil {
		t.Fatalf("second Stop: %v", err)
	}

	steps := []struct {
		desc   string
		action func(t *testing.T)
		up     bool
	}{
		{desc: "stopped: connections refused", action: func(*testing.T) {}, up: false},
		{desc: "started again on the same addr with the same keys", action: func(t *testing.T) {
			if err := iss.Start(addr); err != nil {
				t.Fatalf("restart: %v", err)
			}
		}, up: true},
		{desc: "stopped again", action: func(t *testing.T) {
			if err := iss.Stop(); err != nil {
				t.Fatal(err)
			}
		}, up: false},
		{desc: "and back again", action: func(t *testing.T) {
			if err := iss.Start(addr); err != nil {
				t.Fatalf("restart: %v", err)
			}
		}, up: true},
	}
	client := &http.Client{Timeout: 5 * time.Second}
	for _, st := range steps {
		t.Run(st.desc, func(t *testing.T) {
			st.action(t)
			if iss.Addr() != addr || iss.IssuerURL() != issURL {
				t.Errorf("Addr/IssuerURL = %s %s, want %s %s", iss.Addr(), iss.IssuerURL(), addr, issURL)
			}
			res, err := client.Get(iss.JWKSURL())
			if !st.up {
				if err == nil {
					res.Body.Close()
					t.Fatal("JWKS reachable while stopped")
				}
				return
			}
			if err != nil {
				t.Fatalf("JWKS unreachable: %v", err)
			}
			res.Body.Close()
			after, _ := publishedKeys(t, iss)
			if len(after) != len(before) {
				t.Fatalf("published %d keys, want %d", len(after), len(before))
			}
			for kid, pub := range before {
				if !pub.Equal(after[kid]) {
					t.Errorf("key %s changed across restart", kid)
				}
			}
			if iss.CurrentKID() != k2 || iss.PrivateKey(k1) == nil {
				t.Error("keys not kept across restart")
			}
			if _, _, err := verify(t, iss, tok); err != nil {
				t.Errorf("token from before the restart no longer verifies: %v", err)
			}
		})
	}
}

func TestRoutingErrors(t *testing.T) {
	iss := startIssuer(t, Config{})
	root := "http://" + iss.Addr()
	tests := []struct {
		desc       string
		method     string
		path       string
		wantStatus int
		wantError  string
		wantAllow  string
	}{
		{desc: "unknown realm discovery", method: "GET", path: "/realms/other/.well-known/openid-configuration", wantStatus: 404, wantError: "Realm does not exist"},
		{desc: "unknown realm certs", method: "GET", path: "/realms/other/protocol/openid-connect/certs", wantStatus: 404, wantError: "Realm does not exist"},
		{desc: "unknown realm token", method: "POST", path: "/realms/other/protocol/openid-connect/token", wantStatus: 404, wantError: "Realm does not exist"},
		{desc: "unknown path in realm", method: "GET", path: "/realms/pavilion/nope", wantStatus: 404},
		{desc: "unknown path outside realms", method: "GET", path: "/nope", wantStatus: 404},
		{desc: "POST certs", method: "POST", path: "/realms/pavilion/protocol/openid-connect/certs", wantStatus: 405, wantAllow: "GET, HEAD"},
		{desc: "DELETE discovery", method: "DELETE", path: "/realms/pavilion/.well-known/openid-configuration", wantStatus: 405, wantAllow: "GET, HEAD"},
		{desc: "PUT token", method: "PUT", path: "/realms/pavilion/protocol/openid-connect/token", wantStatus: 405, wantAllow: "POST"},
		{desc: "authorization endpoint not implemented", method: "GET", path: "/realms/pavilion/protocol/openid-connect/auth", wantStatus: 501, wantError: "temporarily_unavailable"},
		{desc: "realm info", method: "GET", path: "/realms/pavilion", wantStatus: 200},
	}
	for _, tt := range tests {
		t.Run(tt.desc, func(t *testing.T) {
			req, err := http.NewRequest(tt.method, root+tt.path, nil)
			if err != nil {
				t.Fatal(err)
			}
			res := do(t, req)
			if res.status != tt.wantStatus {
				t.Fatalf("status = %d, want %d: %s", res.status, tt.wantStatus, res.raw)
			}
			if ct := res.header.Get("Content-Type"); ct != "application/json" {
				t.Errorf("Content-Type = %q", ct)
			}
			if res.body == nil {
				t.Error("empty body, want JSON")
			}
			if tt.wantError != "" && res.body["error"] != tt.wantError {
				t.Errorf("error = %v, want %s", res.body["error"], tt.wantError)
			}
			if got := res.header.Get("Allow"); got != tt.wantAllow {
				t.Errorf("Allow = %q, want %q", got, tt.wantAllow)
			}
		})
	}
}

// TestConcurrency is meant for -race: relying parties fetch the JWKS and
// tokens over HTTP while the test rotates, retires and swaps extras.
func TestConcurrency(t *testing.T) {
	iss := startIssuer(t, Config{KeyBits: 1024})
	tests := []struct {
		desc string
		work func(t *testing.T, n int) error
	}{
		{desc: "fetch JWKS", work: func(t *testing.T, _ int) error {
			res, err := http.Get(iss.JWKSURL())
			if err != nil {
				return err
			}
			defer res.Body.Close()
			var set struct{ Keys []map[string]any }
			return json.NewDecoder(res.Body).Decode(&set)
		}},
		{desc: "token endpoint", work: func(t *testing.T, _ int) error {
			form := url.Values{"grant_type": {"client_credentials"}, "client_id": {"broker-service"}, "client_secret": {"broker-service-secret"}}
			res, err := http.PostForm(tokenURL(iss), form)
			if err != nil {
				return err
			}
			defer res.Body.Close()
			if res.StatusCode != http.StatusOK {
				return fmt.Errorf("token status %d", res.StatusCode)
			}
			return nil
		}},
		{desc: "Token and verify with PrivateKey", work: func(t *testing.T, _ int) error {
			tok, err := iss.Token("multi")
			if err != nil {
				return err
			}
			_, err = jwt.Parse(tok, func(tk *jwt.Token) (any, error) {
				k := iss.PrivateKey(tk.Header["kid"].(string))
				if k == nil {
					return nil, errors.New("unknown kid")
				}
				return &k.PublicKey, nil
			}, jwt.WithValidMethods([]string{"RS256"}))
			return err
		}},
		{desc: "Rotate and Retire", work: func(t *testing.T, n int) error {
			if n%4 != 0 {
				iss.Retire(iss.CurrentKID() + "-nope")
				return nil
			}
			old := iss.CurrentKID()
			if _, err := iss.Rotate(); err != nil {
				return err
			}
			iss.Retire(old)
			return nil
		}},
		{desc: "extras and URLs", work: func(t *testing.T, n int) error {
			if n%2 == 0 {
				iss.SetPublishedExtra([]map[string]any{{"kid": fmt.Sprint(n), "kty": "EC"}})
			} else {
				iss.SetPublishedExtra(nil)
			}
			_ = iss.IssuerURL() + iss.JWKSURL() + iss.Addr()
			return nil
		}},
	}
	var wg sync.WaitGroup
	errs := make(chan error, 1000)
	for _, tt := range tests {
		for g := 0; g < 3; g++ {
			wg.Add(1)
			go func() {
				defer wg.Done()
				for n := 0; n < 8; n++ {
					if err := tt.work(t, n); err != nil {
						errs <- fmt.Errorf("%s: %w", tt.desc, err)
					}
				}
			}()
		}
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Error(err)
	}
	t.Run("current key is published and matches its private key", func(t *testing.T) {
		keys, _ := publishedKeys(t, iss)
		kid := iss.CurrentKID()
		if pub, ok := keys[kid]; !ok || !pub.Equal(&iss.PrivateKey(kid).PublicKey) {
			t.Errorf("current key %s not published correctly (published: %d keys)", kid, len(keys))
		}
	})
}
