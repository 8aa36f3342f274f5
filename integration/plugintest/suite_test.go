package plugintest

import (
	"context"
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"

	gateway "github.com/pavilion-trust/gateway"
	"github.com/pavilion-trust/gateway/demo/devissuer/issuer"
	"github.com/pavilion-trust/gateway/integration/pluginharness"
	"github.com/pavilion-trust/gateway/integration/redistest"
)

const suiteImport = "github.com/pavilion-trust/gateway"

func suiteBuilders(t testing.TB) []pluginharness.Builder {
	return pluginharness.Both(t, suiteImport, gateway.CreateConfig, gateway.New)
}

// suiteIssuer has two service clients, so that budgets per verified client can be told apart.
func suiteIssuer(t testing.TB) *issuer.Issuer {
	t.Helper()
	return startIssuer(t,
		issuer.Client{ID: "svc", Secret: "s", Audience: []string{"core-broker"}, RealmRoles: []string{"broker-user"}},
		issuer.Client{ID: "other", Secret: "s", Audience: []string{"core-broker"}, RealmRoles: []string{"broker-user"}},
	)
}

// TestSuite runs the suite, compiled and under Yaegi: requestId, then jwt, then rateLimit in
// one middleware, with the rate-limit key taken from the verified token.
func TestSuite(t *testing.T) {
	iss := suiteIssuer(t)
	rd := redistest.Start(t)
	svc, _ := iss.Token("svc")
	other, _ := iss.Token("other")
	for _, b := range suiteBuilders(t) {
		t.Run(b.Name, func(t *testing.T) {
			ctx, cancel := context.WithCancel(context.Background())
			defer cancel()
			up := &upstream{}
			h, err := b.New(ctx, up, map[string]any{
				"requestId": map[string]any{"header": "X-Request-Id"},
				"jwt":       map[string]any{"issuer": iss.IssuerURL(), "audiences": "core-broker", "optional": "true"},
				"rateLimit": map[string]any{
					"redis":     map[string]any{"address": rd.Addr()},
					"keyPrefix": "suite-" + b.Name,
					"sources":   []any{"header:X-Auth-Client"},
					"limits":    []any{map[string]any{"requests": "2", "window": "1h"}},
				},
			}, "suite")
			if err != nil {
				t.Fatal(err)
			}
			do := func(tok, spoof string) *httptest.ResponseRecorder {
				up.called = false
				r := httptest.NewRequest(http.MethodGet, "/api/v1/x", nil)
				if tok != "" {
					r.Header.Set("Authorization", "Bearer "+tok)
				}
				if spoof != "" {
					r.Header.Set("X-Auth-Client", spoof)
				}
				w := httptest.NewRecorder()
				h.ServeHTTP(w, r)
				return w
			}

			// Anonymous requests claiming to be svc use the anonymous budget, not svc's.
			for i := 0; i < 2; i++ {
				if w := do("", "svc"); w.Code != 200 {
					t.Fatalf("anonymous %d: %d", i, w.Code)
				}
				if up.header.Get("X-Auth-Client") != "" {
					t.Fatal("a spoofed X-Auth-Client reached the upstream")
				}
			}
			if w := do("", "svc"); w.Code != 429 {
				t.Fatalf("third anonymous request: %d, want 429 (one shared anonymous budget)", w.Code)
			}
			// svc's own budget is untouched by the spoofed requests.
			for i := 0; i < 2; i++ {
				w := do(svc, "")
				if w.Code != 200 {
					t.Fatalf("svc %d: %d %s", i, w.Code, w.Body)
				}
				if up.header.Get("X-Auth-Client") != "svc" {
					t.Fatalf("upstream X-Auth-Client %q", up.header.Get("X-Auth-Client"))
				}
				id := w.Header().Get("X-Request-Id")
				if len(id) != 32 || up.header.Get("X-Request-Id") != id {
					t.Fatalf("request id: response %q, upstream %q", id, up.header.Get("X-Request-Id"))
				}
				if w.Header().Get("X-RateLimit-Limit") != "2" {
					t.Fatalf("X-RateLimit-Limit %q", w.Header().Get("X-RateLimit-Limit"))
				}
			}
			w := do(svc, "")
			if w.Code != 429 || w.Header().Get("Retry-After") == "" || w.Header().Get("X-Request-Id") == "" {
				t.Fatalf("svc over its limit: %d %v", w.Code, w.Header())
			}
			if w := do(other, ""); w.Code != 200 {
				t.Fatalf("another verified client: %d", w.Code)
			}
			// A bad token is refused before the limiter and still carries the request id.
			w = do("garbage", "")
			if w.Code != 401 || w.Header().Get("X-Request-Id") == "" || up.called {
				t.Fatalf("bad token: %d %v", w.Code, w.Header())
			}
		})
	}
}

// TestSuiteSections: a section left out turns its step off; errors name the section.
func TestSuiteSections(t *testing.T) {
	iss := suiteIssuer(t)
	for _, b := range suiteBuilders(t) {
		t.Run(b.Name, func(t *testing.T) {
			for _, tc := range []struct {
				desc   string
				config map[string]any
				status int
				err    string
			}{
				{desc: "jwt only: no request id, token required", config: map[string]any{"jwt": map[string]any{"issuer": iss.IssuerURL()}}, status: 401},
				{desc: "requestId only: passes with an id", config: map[string]any{"requestId": map[string]any{"trustIncoming": "false"}}, status: 200},
				{desc: "no section", config: map[string]any{}, err: "no section configured"},
				{desc: "unknown option in a section is named", config: map[string]any{"jwt": map[string]any{"isuer": "x"}}, err: "jwt: isuer: unknown option"},
				{desc: "section errors are all reported", config: map[string]any{
					"jwt":       map[string]any{"leeway": "30"},
					"rateLimit": map[string]any{"limits": []any{map[string]any{"requests": "0", "window": "1s"}}},
				}, err: "rateLimit: "},
				{desc: "plugin validation runs", config: map[string]any{"jwt": map[string]any{"leeway": "30"}}, err: `leeway: invalid duration "30"`},
				// A section written as an empty map: Traefik hands it over as "" from YAML, TOML and
				// labels, as an empty map from a Kubernetes CRD; a label may also say true.
				{desc: `requestId: {} as "" (YAML, TOML, labels)`, config: map[string]any{"requestId": ""}, status: 200},
				{desc: "requestId: {} as an empty map (CRD)", config: map[string]any{"requestId": map[string]any{}}, status: 200},
				{desc: "requestId=true (labels)", config: map[string]any{"requestId": "true"}, status: 200},
				{desc: "requestId: true (CRD boolean)", config: map[string]any{"requestId": true}, status: 200},
				{desc: "jwt: {} is on, with jwt's defaults (issuer required)", config: map[string]any{"requestId": "", "jwt": ""}, err: `jwt: jwtauth "s": issuer: required`},
				{desc: "a section neither a map nor {}", config: map[string]any{"requestId": "off"},
					err: `requestId: expected a map of options, {} or true (on with defaults), got "off"`},
				{desc: "false does not turn a section off", config: map[string]any{"jwt": "false"}, err: `jwt: expected a map of options`},
				{desc: "metrics: {}", config: map[string]any{"metrics": ""}, status: 200},
			} {
				t.Run(tc.desc, func(t *testing.T) {
					ctx, cancel := context.WithCancel(context.Background())
					defer cancel()
					up := &upstream{}
					h, err := b.New(ctx, up, tc.config, "s")
					if tc.err != "" {
						if err == nil || !strings.Contains(err.Error(), tc.err) {
							t.Fatalf("error %v, want %q", err, tc.err)
						}
						return
					}
					if err != nil {
						t.Fatal(err)
					}
					w := httptest.NewRecorder()
					h.ServeHTTP(w, httptest.NewRequest(http.MethodGet, "/", nil))
					if w.Code != tc.status {
						t.Fatalf("status %d, want %d", w.Code, tc.status)
					}
					if _, on := tc.config["requestId"]; on != (w.Header().Get("X-Request-Id") != "") {
						t.Fatalf("request id present = %v with requestId section = %v", !on, on)
					}
				})
			}
		})
	}
}

// TestSuiteLabelSafeForms: jwt's claimHeaderList and rateLimit's overrideList work inside the
// suite's sections (decoded by confmap, not by Traefik), compiled and under Yaegi.
func TestSuiteLabelSafeForms(t *testing.T) {
	iss := suiteIssuer(t)
	rd := redistest.Start(t)
	svc, _ := iss.Token("svc")
	other, _ := iss.Token("other")
	for _, b := range suiteBuilders(t) {
		t.Run(b.Name, func(t *testing.T) {
			ctx, cancel := context.WithCancel(context.Background())
			defer cancel()
			up := &upstream{}
			h, err := b.New(ctx, up, map[string]any{
				"jwt": map[string]any{"issuer": iss.IssuerURL(), "claimHeaderList": []any{
					map[string]any{"claim": "azp", "header": "X-Auth-Client"},
					map[string]any{"claim": "realm_access.roles", "header": "X-Roles"},
				}},
				"rateLimit": map[string]any{
					"redis":        map[string]any{"address": rd.Addr()},
					"keyPrefix":    "labels-" + b.Name,
					"limits":       []any{map[string]any{"requests": "3", "window": "1h"}},
					"overrideList": []any{map[string]any{"client": "svc", "limits": []any{map[string]any{"requests": "1", "window": "1h"}}}},
				},
			}, "suite")
			if err != nil {
				t.Fatal(err)
			}
			do := func(tok string) *httptest.ResponseRecorder {
				r := httptest.NewRequest(http.MethodGet, "/api/v1/x", nil)
				r.Header.Set("Authorization", "Bearer "+tok)
				w := httptest.NewRecorder()
				h.ServeHTTP(w, r)
				return w
			}
			if w := do(svc); w.Code != 200 || w.Header().Get("X-RateLimit-Limit") != "1" || up.header.Get("X-Roles") != "broker-user" {
				t.Fatalf("svc: %d, limit %q, upstream X-Roles %q", w.Code, w.Header().Get("X-RateLimit-Limit"), up.header.Get("X-Roles"))
			}
			if w := do(svc); w.Code != 429 {
				t.Fatalf("svc over its override: %d", w.Code)
			}
			if w := do(other); w.Code != 200 || w.Header().Get("X-RateLimit-Limit") != "3" {
				t.Fatalf("other: %d, limit %q", w.Code, w.Header().Get("X-RateLimit-Limit"))
			}
			_, err = b.New(ctx, up, map[string]any{"jwt": map[string]any{"issuer": iss.IssuerURL(),
				"claimHeaders":    map[string]any{"sub": "X-Who"},
				"claimHeaderList": []any{map[string]any{"claim": "azp", "header": "X-Who"}}}}, "suite")
			if err == nil || !strings.Contains(err.Error(), `jwt: jwtauth "suite": claimHeaderList[0].claim: sub and claimHeaderList[0] both map to header "X-Who"`) {
				t.Fatalf("a header in both forms: %v", err)
			}
		})
	}
}

// TestSuiteCRDShapes: a Kubernetes Middleware's spec.plugin reaches the plugin through JSON
// (Traefik's CRD provider marshals spec.plugin and unmarshals it into map[string]any): an
// empty object stays an empty map, numbers are float64, booleans bool. The suite takes them,
// compiled and under Yaegi.
func TestSuiteCRDShapes(t *testing.T) {
	iss := suiteIssuer(t)
	spec := `{"pavilion": {"requestId": {}, "jwt": {"issuer": "` + iss.IssuerURL() + `", "cacheSize": 100, "optional": true,
		"claimHeaderList": [{"claim": "realm_access.roles", "header": "X-Roles"}]}}}`
	var plugin map[string]map[string]any
	if err := json.Unmarshal([]byte(spec), &plugin); err != nil {
		t.Fatal(err)
	}
	for _, b := range suiteBuilders(t) {
		t.Run(b.Name, func(t *testing.T) {
			ctx, cancel := context.WithCancel(context.Background())
			defer cancel()
			up := &upstream{}
			h, err := b.New(ctx, up, plugin["pavilion"], "crd")
			if err != nil {
				t.Fatal(err)
			}
			w := httptest.NewRecorder()
			h.ServeHTTP(w, httptest.NewRequest(http.MethodGet, "/", nil))
			if w.Code != 200 || w.Header().Get("X-Request-Id") == "" || !up.called {
				t.Fatalf("anonymous (optional) request: %d, id %q", w.Code, w.Header().Get("X-Request-Id"))
			}
		})
	}
}
