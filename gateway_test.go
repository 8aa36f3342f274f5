// Tests of the suite compiled. Traefik's interpreter skips _test.go files; the suite under
// Yaegi and in real Traefik is tested in integration/ (plugintest).
package gateway_test

import (
	"context"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"

	gateway "github.com/pavilion-trust/gateway"
)

// newSuite builds the suite with a context cancelled at the end of the test (background work
// such as the JWKS refresh stops then) and an upstream that answers 200 "upstream".
func newSuite(t testing.TB, cfg *gateway.Config) (http.Handler, error) {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	t.Cleanup(cancel)
	next := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("X-Upstream-Saw-Id", r.Header.Get("X-Trace-Id"))
		_, _ = w.Write([]byte("upstream"))
	})
	return gateway.New(ctx, next, cfg, "suite@test")
}

func serve(h http.Handler, method string) *httptest.ResponseRecorder {
	rec := httptest.NewRecorder()
	h.ServeHTTP(rec, httptest.NewRequest(method, "http://gateway.test/api/v1/x", nil))
	return rec
}

func TestSectionsAreDecodedIntoTheirPlugins(t *testing.T) {
	h, err := newSuite(t, &gateway.Config{
		RequestID: map[string]any{"header": "X-Trace-Id", "trustIncoming": "false"},
		JWT:       map[string]any{"issuer": "http://127.0.0.1:1/realms/pavilion", "optional": "true", "fetchTimeout": "50ms"},
		RateLimit: map[string]any{
			"redis":         map[string]any{"address": "127.0.0.1:1", "dialTimeout": "50ms"},
			"limits":        []any{map[string]any{"requests": "1", "window": "1m"}},
			"failurePolicy": "local",
		},
	})
	if err != nil {
		t.Fatal(err)
	}
	first := serve(h, http.MethodGet)
	id := first.Header().Get("X-Trace-Id")
	if first.Code != http.StatusOK || len(id) != 32 {
		t.Fatalf("first request: %d, X-Trace-Id %q; want 200 and a generated id (requestId.header decoded)", first.Code, id)
	}
	if got := first.Header().Get("X-Upstream-Saw-Id"); got != id {
		t.Fatalf("the upstream saw id %q, the client %q: requestId must run before the upstream", got, id)
	}
	if got := first.Header().Get("X-RateLimit-Limit"); got != "1" {
		t.Fatalf("X-RateLimit-Limit %q, want 1 (rateLimit.limits decoded; Redis unreachable, failurePolicy local)", got)
	}
	second := serve(h, http.MethodGet)
	if second.Code != http.StatusTooManyRequests {
		t.Fatalf("second request: %d, want 429 (limit 1 per minute)", second.Code)
	}
	if second.Header().Get("X-Trace-Id") == "" {
		t.Fatal("the 429 carries no X-Trace-Id: requestId must run before rateLimit")
	}
}

func TestJWTSectionRefusesWithoutToken(t *testing.T) {
	h, err := newSuite(t, &gateway.Config{
		JWT: map[string]any{"issuer": "http://127.0.0.1:1/realms/pavilion", "realm": "suite-test", "fetchTimeout": "50ms"},
	})
	if err != nil {
		t.Fatal(err)
	}
	rec := serve(h, http.MethodGet)
	if rec.Code != http.StatusUnauthorized || !strings.Contains(rec.Header().Get("WWW-Authenticate"), `realm="suite-test"`) {
		t.Fatalf("got %d, WWW-Authenticate %q; want 401 with the configured realm", rec.Code, rec.Header().Get("WWW-Authenticate"))
	}
}

func TestConfigurationErrors(t *testing.T) {
	tests := []struct {
		desc string
		cfg  *gateway.Config
		want []string
	}{
		{desc: "no configuration", cfg: nil, want: []string{`pavilion "suite@test": no section configured`}},
		{desc: "no section", cfg: &gateway.Config{}, want: []string{"no section configured (requestId, jwt, rateLimit, metrics)"}},
		{desc: "unknown key in a section names it",
			cfg:  &gateway.Config{RequestID: map[string]any{"headr": "X-Id"}},
			want: []string{"requestId: headr: unknown option"}},
		{desc: "unknown nested key names its path",
			cfg:  &gateway.Config{RateLimit: map[string]any{"redis": map[string]any{"adress": "r:6379"}, "limits": []any{map[string]any{"requests": "1", "window": "1s"}}}},
			want: []string{"rateLimit: redis.adress: unknown option"}},
		{desc: "every section's problems at once",
			cfg: &gateway.Config{
				RequestID: map[string]any{"header": "Authorization"},
				JWT:       map[string]any{"leeway": "30"},
				RateLimit: map[string]any{"algorithm": "leaky"},
			},
			want: []string{`requestId: requestid "suite@test": header: "Authorization" is reserved`, "jwt: ", "issuer: required", `leeway: invalid duration "30" (use e.g. "30s")`, "rateLimit: ", `algorithm: "leaky" is not one of`, "limits: required"}},
		{desc: "a value of the wrong type",
			cfg:  &gateway.Config{RequestID: map[string]any{"trustIncoming": "perhaps"}},
			want: []string{"requestId: trustIncoming: expected true or false"}},
		{desc: "metrics with another section",
			cfg:  &gateway.Config{Metrics: map[string]any{"enabled": "true"}, JWT: map[string]any{"issuer": "https://kc.example/realms/p"}},
			want: []string{"metrics: cannot be combined with requestId, jwt or rateLimit"}},
		{desc: "metrics disabled and nothing else",
			cfg:  &gateway.Config{Metrics: map[string]any{"enabled": "false"}},
			want: []string{"metrics: enabled is false and no other section is configured"}},
		{desc: "unknown key in metrics",
			cfg:  &gateway.Config{Metrics: map[string]any{"enable": "true"}},
			want: []string{"metrics: enable: unknown option"}},
	}
	for _, tc := range tests {
		t.Run(tc.desc, func(t *testing.T) {
			h, err := newSuite(t, tc.cfg)
			if err == nil {
				t.Fatalf("New succeeded (%T); want an error with %q", h, tc.want)
			}
			for _, w := range tc.want {
				if !strings.Contains(err.Error(), w) {
					t.Errorf("error %q\nlacks %q", err, w)
				}
			}
		})
	}
}

func TestMetricsSectionServesMetrics(t *testing.T) {
	h, err := newSuite(t, &gateway.Config{Metrics: map[string]any{"enabled": "true"}})
	if err != nil {
		t.Fatal(err)
	}
	rec := serve(h, http.MethodGet)
	if rec.Code != http.StatusOK || !strings.HasPrefix(rec.Header().Get("Content-Type"), "text/plain; version=0.0.4") {
		t.Fatalf("got %d %q; want 200 in the Prometheus text format", rec.Code, rec.Header().Get("Content-Type"))
	}
	if strings.Contains(rec.Body.String(), "upstream") {
		t.Fatal("the metrics endpoint called the next handler")
	}
	if got := serve(h, http.MethodPost).Code; got != http.StatusMethodNotAllowed {
		t.Fatalf("POST: %d, want 405", got)
	}
}

// TestDurationHintsAreTheDefaults: an invalid duration's error suggests the option's default.
func TestDurationHintsAreTheDefaults(t *testing.T) {
	limits := []any{map[string]any{"requests": "1", "window": "1s"}}
	_, err := newSuite(t, &gateway.Config{
		JWT: map[string]any{"issuer": "https://kc.example/realms/p", "leeway": "30", "refreshInterval": "15",
			"minRefreshInterval": "10", "fetchTimeout": "5"},
		RateLimit: map[string]any{"limits": limits, "redis": map[string]any{"dialTimeout": "250", "timeout": "100"}},
	})
	if err == nil {
		t.Fatal("New accepted durations without units")
	}
	for _, want := range []string{
		`leeway: invalid duration "30" (use e.g. "30s")`,
		`refreshInterval: invalid duration "15" (use e.g. "15m")`,
		`minRefreshInterval: invalid duration "10" (use e.g. "10s")`,
		`fetchTimeout: invalid duration "5" (use e.g. "5s")`,
		`redis.dialTimeout: invalid duration "250" (use e.g. "250ms")`,
		`redis.timeout: invalid duration "100" (use e.g. "100ms")`,
	} {
		if !strings.Contains(err.Error(), want) {
			t.Errorf("error %q\nlacks %q", err, want)
		}
	}
}
