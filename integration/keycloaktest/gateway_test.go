package keycloaktest

import (
	"bytes"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/pavilion-trust/gateway/integration/echo"
	"github.com/pavilion-trust/gateway/integration/traefiktest"
)

const (
	jwtImport     = "github.com/pavilion-trust/gateway/plugins/jwtauth"
	serviceClient = "broker-service"
	serviceSecret = "broker-service-secret"
	noAudClient   = "no-audience"
	noAudSecret   = "no-audience-secret"
)

// route is one router /<name>/ with its own jwtauth middleware.
type route struct {
	name   string
	config map[string]any // merged over the issuer and audience core-broker
}

// gateway is a real Traefik in front of an echo upstream, one jwtauth middleware per route.
type gateway struct {
	*traefiktest.Traefik
	client *http.Client
}

func startGateway(t testing.TB, k *keycloak, routes ...route) *gateway {
	t.Helper()
	up := echo.Start(t, "core-broker-1")
	var dyn bytes.Buffer
	dyn.WriteString("http:\n  routers:\n")
	var names []string
	for _, r := range routes {
		fmt.Fprintf(&dyn, "    %s:\n      entryPoints: [web]\n      rule: PathPrefix(`/%s/`)\n      middlewares: [%s-auth]\n      service: upstream\n", r.name, r.name, r.name)
		names = append(names, r.name+"@file")
	}
	dyn.WriteString("  middlewares:\n")
	for _, r := range routes {
		cfg := map[string]any{"issuer": k.realmURL, "audiences": []any{"core-broker"}}
		for key, v := range r.config {
			cfg[key] = v
		}
		dyn.WriteString(traefiktest.PluginMiddleware(r.name+"-auth", "jwtauth", cfg))
	}
	fmt.Fprintf(&dyn, "  services:\n    upstream:\n      loadBalancer:\n        servers:\n          - url: %q\n", up.URL)

	gw := traefiktest.Start(t, traefiktest.Options{
		Dynamic:     dyn.String(),
		Plugins:     map[string]string{"jwtauth": jwtImport},
		WaitRouters: names,
	})
	return &gateway{Traefik: gw, client: &http.Client{Timeout: 15 * time.Second}}
}

// answer is what the gateway answered.
type answer struct {
	status  int
	header  http.Header
	body    []byte
	seen    echo.Seen // when status is 200
	errBody struct {
		Error       string `json:"error"`
		Description string `json:"error_description"`
	}
}

func (g *gateway) get(t *testing.T, route, token string) answer {
	t.Helper()
	req, _ := http.NewRequest(http.MethodGet, g.URL+"/"+route+"/api/v1/accounts", nil)
	if token != "" {
		req.Header.Set("Authorization", "Bearer "+token)
	}
	// Client-sent identity headers must never reach the upstream.
	req.Header.Set("X-Auth-Subject", "forged")
	res, err := g.client.Do(req)
	if err != nil {
		t.Fatalf("GET /%s/: %v", route, err)
	}
	defer res.Body.Close()
	a := answer{status: res.StatusCode, header: res.Header}
	a.body, _ = io.ReadAll(res.Body)
	if a.status == http.StatusOK {
		a.seen = echo.Decode(t, a.body)
	} else if err := json.Unmarshal(a.body, &a.errBody); err != nil {
		t.Fatalf("GET /%s/: %d with a body that is not JSON: %q", route, a.status, a.body)
	}
	return a
}

// expect checks the status and, for errors, the RFC 6750 error code and description.
func (a answer) expect(t *testing.T, status int, code, description string) {
	t.Helper()
	if a.status != status {
		t.Fatalf("status %d, want %d; body %s", a.status, status, a.body)
	}
	if status == http.StatusOK {
		return
	}
	if a.errBody.Error != code || a.errBody.Description != description {
		t.Fatalf("error %q %q, want %q %q", a.errBody.Error, a.errBody.Description, code, description)
	}
	if !strings.HasPrefix(a.header.Get("WWW-Authenticate"), `Bearer realm="pavilion"`) {
		t.Fatalf("WWW-Authenticate %q", a.header.Get("WWW-Authenticate"))
	}
}

// waitFor polls cond until it holds or timeout passes.
func waitFor(t *testing.T, timeout time.Duration, what string, cond func() bool) time.Duration {
	t.Helper()
	began := time.Now()
	for !cond() {
		if time.Since(began) > timeout {
			t.Fatalf("%s: not within %s", what, timeout)
		}
		time.Sleep(200 * time.Millisecond)
	}
	return time.Since(began)
}

// TestKeycloakClientCredentials: tokens of the realm's clients against audience, role and
// scope requirements; the upstream receives the identity headers.
func TestKeycloakClientCredentials(t *testing.T) {
	k := needKeycloak(t)
	gw := startGateway(t, k,
		route{name: "api", config: map[string]any{"requiredRoles": []any{"broker-user"}}},
		route{name: "reader", config: map[string]any{"requiredRoles": []any{"core-broker:reader"}}},
		route{name: "writer", config: map[string]any{"requiredRoles": []any{"core-broker:writer"}}},
		route{name: "admin", config: map[string]any{"requiredRoles": []any{"broker-admin"}}},
		route{name: "write", config: map[string]any{"requiredScopes": []any{"broker:write"}}},
	)

	t.Run("client credentials token passes, upstream gets subject, client, roles and scopes", func(t *testing.T) {
		tok := k.clientToken(t, serviceClient, serviceSecret, "")
		claims := jwtPart(t, tok, 1)
		a := gw.get(t, "api", tok)
		a.expect(t, 200, "", "")
		sub, _ := claims["sub"].(string)
		if sub == "" || sub == "forged" {
			t.Fatalf("token sub %q", sub)
		}
		for name, want := range map[string]string{
			"X-Auth-Subject":  sub,
			"X-Auth-Client":   serviceClient,
			"X-Auth-Username": "service-account-" + serviceClient,
			"X-Auth-Roles":    "broker-user",
			"X-Auth-Scopes":   claims["scope"].(string), // Keycloak's order varies
			"Authorization":   "Bearer " + tok,
		} {
			if got := a.seen.Headers.Values(name); len(got) != 1 || got[0] != want {
				t.Errorf("upstream saw %s = %q, want %q", name, got, want)
			}
		}
		if s := " " + claims["scope"].(string) + " "; !strings.Contains(s, " broker:read ") || !strings.Contains(s, " profile ") || strings.Contains(s, "broker:write") {
			t.Errorf("scope %q, want the default scopes profile and broker:read only", claims["scope"])
		}
		if aud := claims["aud"]; aud != "core-broker" {
			t.Errorf("aud %v, want core-broker (audience mapper)", aud)
		}
		t.Logf("claims: sub=%s azp=%v scope=%q realm_access=%v resource_access=%v exp-iat=%v",
			sub, claims["azp"], claims["scope"], claims["realm_access"], claims["resource_access"],
			claims["exp"].(float64)-claims["iat"].(float64))
	})

	t.Run("client role held (core-broker:reader) passes", func(t *testing.T) {
		gw.get(t, "reader", k.clientToken(t, serviceClient, serviceSecret, "")).expect(t, 200, "", "")
	})

	t.Run("client without the audience mapper: 401 wrong audience", func(t *testing.T) {
		tok := k.clientToken(t, noAudClient, noAudSecret, "")
		if aud, ok := jwtPart(t, tok, 1)["aud"]; ok {
			t.Fatalf("token of %s carries aud %v", noAudClient, aud)
		}
		gw.get(t, "api", tok).expect(t, 401, "invalid_token", "the token audience is not accepted")
	})

	t.Run("realm role not held (broker-admin): 403", func(t *testing.T) {
		gw.get(t, "admin", k.clientToken(t, serviceClient, serviceSecret, "")).
			expect(t, 403, "insufficient_scope", "the token lacks a required role")
	})

	t.Run("client role not held (core-broker:writer): 403", func(t *testing.T) {
		gw.get(t, "writer", k.clientToken(t, serviceClient, serviceSecret, "")).
			expect(t, 403, "insufficient_scope", "the token lacks a required role")
	})

	t.Run("optional scope not requested (broker:write): 403, requested: 200", func(t *testing.T) {
		a := gw.get(t, "write", k.clientToken(t, serviceClient, serviceSecret, ""))
		a.expect(t, 403, "insufficient_scope", "the token lacks a required scope")
		if got := a.header.Get("WWW-Authenticate"); !strings.Contains(got, `scope="broker:write"`) {
			t.Fatalf("WWW-Authenticate %q does not name the scope", got)
		}
		tok := k.clientToken(t, serviceClient, serviceSecret, "broker:write")
		a = gw.get(t, "write", tok)
		a.expect(t, 200, "", "")
		if got := a.seen.Headers.Get("X-Auth-Scopes"); !strings.Contains(" "+got+" ", " broker:write ") {
			t.Fatalf("X-Auth-Scopes %q lacks broker:write", got)
		}
	})

	t.Run("no token: 401", func(t *testing.T) {
		gw.get(t, "api", "").expect(t, 401, "unauthorized", "a bearer token is required")
	})
}

// TestKeycloakExpiredToken: a token with a 5 s lifespan (client attribute
// access.token.lifespan, set through the admin API) passes, then is refused once expired
// (leeway 0s).
func TestKeycloakExpiredToken(t *testing.T) {
	k := needKeycloak(t)
	gw := startGateway(t, k, route{name: "api", config: map[string]any{"leeway": "0s"}})

	var clients []map[string]any
	k.admin(t, http.MethodGet, "/clients?clientId="+url.QueryEscape(serviceClient), nil, &clients)
	if len(clients) != 1 {
		t.Fatalf("client %s: %v", serviceClient, clients)
	}
	c := clients[0]
	id := c["id"].(string)
	attrs, _ := c["attributes"].(map[string]any)
	if attrs == nil {
		attrs = map[string]any{}
		c["attributes"] = attrs
	}
	attrs["access.token.lifespan"] = "5"
	k.admin(t, http.MethodPut, "/clients/"+id, c, nil)
	t.Cleanup(func() {
		attrs["access.token.lifespan"] = ""
		delete(attrs, "access.token.lifespan")
		k.admin(t, http.MethodPut, "/clients/"+id, c, nil)
	})

	tok := k.clientToken(t, serviceClient, serviceSecret, "")
	claims := jwtPart(t, tok, 1)
	exp := time.Unix(int64(claims["exp"].(float64)), 0)
	if life := claims["exp"].(float64) - claims["iat"].(float64); life != 5 {
		t.Fatalf("token lifespan %vs, want 5s", life)
	}
	gw.get(t, "api", tok).expect(t, 200, "", "")
	time.Sleep(time.Until(exp) + 1100*time.Millisecond)
	gw.get(t, "api", tok).expect(t, 401, "invalid_token", "the token has expired")
}

// TestKeycloakKeyRotation: a new RSA key provider with a higher priority, added through the
// admin REST API, signs new tokens with a new kid that the running gateway accepts; tokens
// of the old key keep working while it is published; once the old provider is disabled its
// tokens are refused after the next JWKS refresh (refreshInterval 2s).
func TestKeycloakKeyRotation(t *testing.T) {
	k := needKeycloak(t)
	gw := startGateway(t, k, route{name: "api", config: map[string]any{
		"requiredRoles": []any{"broker-user"}, "refreshInterval": "2s", "minRefreshInterval": "1s",
	}})

	old := k.clientToken(t, serviceClient, serviceSecret, "")
	oldKID := kidOf(t, old)
	gw.get(t, "api", old).expect(t, 200, "", "")

	_, newKID := k.addRSAKey(t, "rotated-"+strconv.FormatInt(time.Now().Unix(), 10), 1000)
	fresh := k.clientToken(t, serviceClient, serviceSecret, "")
	if got := kidOf(t, fresh); got != newKID || got == oldKID {
		t.Fatalf("token after rotation has kid %s, want the new key's %s (old %s)", got, newKID, oldKID)
	}
	t.Logf("rotated: old kid %s, new kid %s", oldKID, newKID)

	t.Run("new kid accepted without restarting Traefik", func(t *testing.T) {
		gw.get(t, "api", fresh).expect(t, 200, "", "")
	})
	t.Run("old token valid while the old key is published", func(t *testing.T) {
		if !k.publishedKIDs(t)[oldKID] {
			t.Fatalf("old kid %s no longer published", oldKID)
		}
		gw.get(t, "api", old).expect(t, 200, "", "")
	})
	t.Run("old provider disabled: its tokens refused after the next refresh", func(t *testing.T) {
		k.setProviderEnabled(t, k.providerOf(t, oldKID), false)
		if k.publishedKIDs(t)[oldKID] {
			t.Fatalf("old kid %s still published after disabling its provider", oldKID)
		}
		took := waitFor(t, 15*time.Second, "old token refused", func() bool {
			return gw.get(t, "api", old).status == 401
		})
		gw.get(t, "api", old).expect(t, 401, "invalid_token", "the token signing key is unknown")
		t.Logf("old token refused %s after the provider was disabled", took.Round(100*time.Millisecond))
		gw.get(t, "api", fresh).expect(t, 200, "", "")
	})
}

// TestKeycloakOutageAndRestart: with Keycloak stopped, tokens signed with keys the gateway
// already holds keep validating; after Keycloak starts again, a key added then is picked up.
func TestKeycloakOutageAndRestart(t *testing.T) {
	k := needKeycloak(t)
	gw := startGateway(t, k, route{name: "api", config: map[string]any{
		"requiredRoles": []any{"broker-user"}, "refreshInterval": "2s", "minRefreshInterval": "1s",
	}})
	gw.get(t, "api", k.clientToken(t, serviceClient, serviceSecret, "")).expect(t, 200, "", "")
	unseen := k.clientToken(t, serviceClient, serviceSecret, "") // not yet in the verified cache

	k.stop()
	restarted := false
	t.Cleanup(func() {
		if !restarted { // leave a running Keycloak to the tests that follow
			if err := k.start(); err != nil {
				t.Error(err)
			}
		}
	})
	if k.up() {
		t.Fatal("Keycloak still answers after stop")
	}

	t.Run("Keycloak down: tokens of known keys still validate", func(t *testing.T) {
		time.Sleep(3 * time.Second) // at least one failed background refresh
		gw.get(t, "api", unseen).expect(t, 200, "", "")
	})

	t.Run("Keycloak started again: a new key is picked up", func(t *testing.T) {
		began := time.Now()
		if err := k.start(); err != nil {
			t.Fatal(err)
		}
		restarted = true
		t.Logf("Keycloak restarted in %s", time.Since(began).Round(100*time.Millisecond))
		_, kid := k.addRSAKey(t, "after-restart-"+strconv.FormatInt(time.Now().Unix(), 10), 2000)
		tok := k.clientToken(t, serviceClient, serviceSecret, "")
		if got := kidOf(t, tok); got != kid {
			t.Fatalf("token kid %s, want the new key's %s", got, kid)
		}
		gw.get(t, "api", tok).expect(t, 200, "", "")
	})
}

// TestKeycloakBrowserClient: the public client broker-web only runs the authorization code
// flow with PKCE S256, and Keycloak answers CORS for its web origins.
func TestKeycloakBrowserClient(t *testing.T) {
	k := needKeycloak(t)
	noRedirect := &http.Client{
		Timeout:       10 * time.Second,
		CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse },
	}
	auth := func(extra url.Values) *http.Response {
		t.Helper()
		q := url.Values{
			"client_id": {"broker-web"}, "response_type": {"code"}, "scope": {"openid broker:read"},
			"redirect_uri": {"http://localhost:3000/callback"}, "state": {"s1"},
		}
		for key, v := range extra {
			q[key] = v
		}
		res, err := noRedirect.Get(k.realmURL + "/protocol/openid-connect/auth?" + q.Encode())
		if err != nil {
			t.Fatal(err)
		}
		res.Body.Close()
		return res
	}

	t.Run("without a code challenge: refused", func(t *testing.T) {
		res := auth(nil)
		loc, _ := url.Parse(res.Header.Get("Location"))
		if res.StatusCode != http.StatusFound || loc == nil || loc.Query().Get("error") != "invalid_request" {
			t.Fatalf("%d Location %q, want a redirect with error=invalid_request", res.StatusCode, res.Header.Get("Location"))
		}
		t.Logf("error_description: %s", loc.Query().Get("error_description"))
	})
	t.Run("plain challenge method: refused", func(t *testing.T) {
		res := auth(url.Values{"code_challenge": {strings.Repeat("a", 43)}, "code_challenge_method": {"plain"}})
		loc, _ := url.Parse(res.Header.Get("Location"))
		if res.StatusCode != http.StatusFound || loc == nil || loc.Query().Get("error") != "invalid_request" {
			t.Fatalf("%d Location %q, want a redirect with error=invalid_request", res.StatusCode, res.Header.Get("Location"))
		}
	})
	t.Run("S256 challenge: login page", func(t *testing.T) {
		res := auth(url.Values{"code_challenge": {"E9Melhoa2OwvFrEMTJguCHaoeK1t8URWbuGJSstw-cM"}, "code_challenge_method": {"S256"}})
		if res.StatusCode != http.StatusOK {
			t.Fatalf("%d, want the login page (200)", res.StatusCode)
		}
	})
	t.Run("unregistered redirect URI: refused", func(t *testing.T) {
		res := auth(url.Values{"redirect_uri": {"http://evil.example/cb"},
			"code_challenge": {"E9Melhoa2OwvFrEMTJguCHaoeK1t8URWbuGJSstw-cM"}, "code_challenge_method": {"S256"}})
		if res.StatusCode == http.StatusOK || res.StatusCode == http.StatusFound {
			t.Fatalf("%d for an unregistered redirect_uri", res.StatusCode)
		}
	})
	// Keycloak answers every preflight of the token endpoint positively; the client's web
	// origins decide the CORS headers of the actual answers (checked by Keycloak itself).
	t.Run("CORS preflight of the token endpoint from the web origin", func(t *testing.T) {
		req, _ := http.NewRequest(http.MethodOptions, k.realmURL+"/protocol/openid-connect/token", nil)
		req.Header.Set("Origin", "http://localhost:3000")
		req.Header.Set("Access-Control-Request-Method", "POST")
		res, err := noRedirect.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		res.Body.Close()
		if got := res.Header.Get("Access-Control-Allow-Origin"); got != "http://localhost:3000" {
			t.Fatalf("Access-Control-Allow-Origin %q", got)
		}
	})
}
