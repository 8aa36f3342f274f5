// Tests of the suite compiled. Traefik's interpreter skips _test.go files; the suite under
// Yaegi and in real Traefik is tested in integration/ (plugintest).
package gateway_test

import (
	"context"
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync/atomic"
	"testing"

	gateway "github.com/pavilion-trust/gateway"
	"github.com/pavilion-trust/gateway/demo/certs/devca"
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

// localRateLimit is a rateLimit section of requests per minute whose Redis never answers
// (port 1): every request is counted by the local fallback.
func localRateLimit(requests string) map[string]any {
	return map[string]any{
		"redis":         map[string]any{"address": "127.0.0.1:1", "dialTimeout": "50ms"},
		"limits":        []any{map[string]any{"requests": requests, "window": "1m"}},
		"failurePolicy": "local",
	}
}

func TestSectionsAreDecodedIntoTheirPlugins(t *testing.T) {
	h, err := newSuite(t, &gateway.Config{
		RequestID: map[string]any{"header": "X-Trace-Id", "trustIncoming": "false"},
		JWT:       map[string]any{"issuer": "http://127.0.0.1:1/realms/pavilion", "optional": "true", "fetchTimeout": "50ms"},
		RateLimit: localRateLimit("1"),
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
		{desc: "no section", cfg: &gateway.Config{}, want: []string{"no section configured (requestId, jwt, rateLimit, metrics, health)"}},
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
		{desc: "health with a step section",
			cfg:  &gateway.Config{Health: healthSection(), RequestID: map[string]any{"header": "X-Id"}},
			want: []string{`pavilion "suite@test": health: cannot be combined with requestId, jwt, rateLimit or metrics`}},
		{desc: "health with metrics",
			cfg:  &gateway.Config{Health: healthSection(), Metrics: map[string]any{"enabled": "true"}},
			want: []string{"health: cannot be combined with requestId, jwt, rateLimit or metrics"}},
		{desc: "unknown key in health",
			cfg:  &gateway.Config{Health: map[string]any{"upstreams": []any{map[string]any{"name": "a", "url": "http://a/"}}, "cacheFr": "5s"}},
			want: []string{`pavilion "suite@test": health: cacheFr: unknown option`}},
		{desc: "unknown nested key in health names its path",
			cfg:  &gateway.Config{Health: map[string]any{"redis": map[string]any{"adress": "r:6379"}}},
			want: []string{"health: redis.adress: unknown option"}},
		{desc: "health's own validation, every problem at once",
			cfg: &gateway.Config{Health: map[string]any{
				"upstreams": []any{map[string]any{"name": "core broker", "url": "ftp://u:pw@h/x"}},
				"cacheFor":  "5",
			}},
			want: []string{`pavilion "suite@test": health: health "suite@test": `, `upstreams[0].name: "core broker": only letters`,
				`upstreams[0].url: must be an http(s) URL with a host, got "ftp://h/x"`, `cacheFor: invalid duration "5"`}},
		{desc: "health: {} is on with health's defaults, which need a check",
			cfg:  &gateway.Config{Health: ""},
			want: []string{`health: health "suite@test": no checks: configure at least one of certificates, upstreams, redis, jwks`}},
		{desc: "health: true likewise",
			cfg:  &gateway.Config{Health: true},
			want: []string{"health: ", "no checks"}},
		{desc: "health neither a map nor {}",
			cfg:  &gateway.Config{Health: "on"},
			want: []string{`health: expected a map of options, {} or true (on with defaults), got "on"`}},
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

// TestSection: the values Traefik may hand over for a section, and what each means.
func TestSection(t *testing.T) {
	opts := map[string]any{"header": "X-Id"}
	for _, tc := range []struct {
		desc    string
		value   any
		want    map[string]any
		on      bool
		wantErr string
	}{
		{desc: "absent: off", value: nil},
		{desc: "a map: its options", value: opts, want: opts, on: true},
		{desc: "an empty map", value: map[string]any{}, want: map[string]any{}, on: true},
		{desc: "empty string (an empty map in YAML, TOML, labels)", value: "", want: map[string]any{}, on: true},
		{desc: "blank string", value: "  ", want: map[string]any{}, on: true},
		{desc: "{} as a string", value: " {} ", want: map[string]any{}, on: true},
		{desc: "true as a string, any case", value: "TRUE", want: map[string]any{}, on: true},
		{desc: "true", value: true, want: map[string]any{}, on: true},
		{desc: "false is not a way to turn a step off", value: false, wantErr: "got bool"},
		{desc: "another word", value: "yes", wantErr: `got "yes"`},
		{desc: "a number", value: 42, wantErr: "got int"},
		{desc: "a list", value: []any{"a"}, wantErr: "got []interface {}"},
	} {
		t.Run(tc.desc, func(t *testing.T) {
			got, on, err := gateway.Section(tc.value)
			if tc.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tc.wantErr) || !strings.Contains(err.Error(), "expected a map of options, {} or true") {
					t.Fatalf("Section(%#v) = %v, %t, %v; want an error with %q", tc.value, got, on, err, tc.wantErr)
				}
				return
			}
			if err != nil || on != tc.on || len(got) != len(tc.want) || (tc.want == nil) != (got == nil) {
				t.Fatalf("Section(%#v) = %v, %t, %v; want %v, %t", tc.value, got, on, err, tc.want, tc.on)
			}
			for k, v := range tc.want {
				if got[k] != v {
					t.Fatalf("Section(%#v)[%q] = %v, want %v", tc.value, k, got[k], v)
				}
			}
		})
	}
}

// TestOrderRequestIDThenJWTThenRateLimit: a request refused by jwt carries the request id
// (requestId ran first) and never reaches rateLimit (it spends no budget and gets no
// rate-limit headers); rateLimit's 429 carries the id too.
func TestOrderRequestIDThenJWTThenRateLimit(t *testing.T) {
	h, err := newSuite(t, &gateway.Config{
		RequestID: map[string]any{"header": "X-Trace-Id"},
		JWT:       map[string]any{"issuer": "http://127.0.0.1:1/realms/pavilion", "fetchTimeout": "50ms"},
		RateLimit: localRateLimit("1"),
	})
	if err != nil {
		t.Fatal(err)
	}
	for i := 0; i < 3; i++ {
		rec := serve(h, http.MethodGet)
		if rec.Code != http.StatusUnauthorized {
			t.Fatalf("request %d without token: %d, want 401 from jwt every time (rateLimit must run after jwt, with a budget of 1)", i, rec.Code)
		}
		if len(rec.Header().Get("X-Trace-Id")) != 32 {
			t.Fatalf("request %d: the 401 carries X-Trace-Id %q: requestId must run before jwt", i, rec.Header().Get("X-Trace-Id"))
		}
		if got := rec.Header().Get("X-RateLimit-Limit"); got != "" {
			t.Fatalf("request %d: the 401 carries X-RateLimit-Limit %q: rateLimit ran before jwt", i, got)
		}
		if rec.Body.String() == "upstream" {
			t.Fatalf("request %d reached the upstream", i)
		}
	}
}

// TestAbsentSectionsAreOff: only the steps whose section is given run.
func TestAbsentSectionsAreOff(t *testing.T) {
	t.Run("requestId alone, on with defaults", func(t *testing.T) {
		for _, on := range []any{"", true, map[string]any{}} {
			h, err := newSuite(t, &gateway.Config{RequestID: on})
			if err != nil {
				t.Fatalf("requestId %#v: %v", on, err)
			}
			rec := serve(h, http.MethodGet)
			if rec.Code != http.StatusOK || rec.Body.String() != "upstream" {
				t.Fatalf("requestId %#v: %d %q; want the upstream's 200 (no jwt, no rateLimit)", on, rec.Code, rec.Body)
			}
			if len(rec.Header().Get("X-Request-Id")) != 32 {
				t.Fatalf("requestId %#v: X-Request-Id %q; want a generated id in the default header", on, rec.Header().Get("X-Request-Id"))
			}
		}
	})
	t.Run("jwt alone", func(t *testing.T) {
		h, err := newSuite(t, &gateway.Config{JWT: map[string]any{"issuer": "http://127.0.0.1:1/realms/pavilion", "fetchTimeout": "50ms"}})
		if err != nil {
			t.Fatal(err)
		}
		rec := serve(h, http.MethodGet)
		if rec.Code != http.StatusUnauthorized || rec.Header().Get("X-Request-Id") != "" || rec.Header().Get("X-RateLimit-Limit") != "" {
			t.Fatalf("%d, X-Request-Id %q, X-RateLimit-Limit %q; want 401 from jwt alone", rec.Code,
				rec.Header().Get("X-Request-Id"), rec.Header().Get("X-RateLimit-Limit"))
		}
	})
	t.Run("rateLimit alone", func(t *testing.T) {
		h, err := newSuite(t, &gateway.Config{RateLimit: localRateLimit("5")})
		if err != nil {
			t.Fatal(err)
		}
		rec := serve(h, http.MethodGet)
		if rec.Code != http.StatusOK || rec.Header().Get("X-Request-Id") != "" || rec.Header().Get("X-RateLimit-Limit") != "5" {
			t.Fatalf("%d, X-Request-Id %q, X-RateLimit-Limit %q; want 200 limited by rateLimit alone", rec.Code,
				rec.Header().Get("X-Request-Id"), rec.Header().Get("X-RateLimit-Limit"))
		}
	})
}

// TestSectionValueErrorsNameTheSection: a section that is neither a map, {} nor true is
// refused under its own name, with the others' problems.
func TestSectionValueErrorsNameTheSection(t *testing.T) {
	_, err := newSuite(t, &gateway.Config{RequestID: "yes", JWT: 42, RateLimit: false})
	if err == nil {
		t.Fatal("New accepted sections that are not maps")
	}
	for _, want := range []string{
		`pavilion "suite@test": `,
		`requestId: expected a map of options, {} or true (on with defaults), got "yes"`,
		"jwt: expected a map of options, {} or true (on with defaults), got int",
		"rateLimit: expected a map of options, {} or true (on with defaults), got bool",
	} {
		if !strings.Contains(err.Error(), want) {
			t.Errorf("error %q\nlacks %q", err, want)
		}
	}
	if _, err := newSuite(t, &gateway.Config{Metrics: "on"}); err == nil || !strings.Contains(err.Error(), `metrics: expected a map of options, {} or true (on with defaults), got "on"`) {
		t.Errorf("metrics \"on\": %v", err)
	}
}

// TestMetricsSectionOnWithDefaults: the metrics section written as {} or true is on.
func TestMetricsSectionOnWithDefaults(t *testing.T) {
	for _, on := range []any{"", true, "true"} {
		h, err := newSuite(t, &gateway.Config{Metrics: on})
		if err != nil {
			t.Fatalf("metrics %#v: %v", on, err)
		}
		if rec := serve(h, http.MethodGet); rec.Code != http.StatusOK || !strings.HasPrefix(rec.Header().Get("Content-Type"), "text/plain; version=0.0.4") {
			t.Fatalf("metrics %#v: %d %q; want the metrics", on, rec.Code, rec.Header().Get("Content-Type"))
		}
	}
}

// healthSection is a valid health section with one upstream nobody listens on (port 1): New
// accepts it without dialling.
func healthSection() map[string]any {
	return map[string]any{"upstreams": []any{map[string]any{"name": "core-broker", "url": "http://127.0.0.1:1/health"}}}
}

// TestHealthSectionServesHealth: a middleware with the health section is the health
// endpoint of plugins/health with the section's options (a certificate file and an
// upstream), and never calls the next handler.
func TestHealthSectionServesHealth(t *testing.T) {
	certs, err := devca.Generate(t.TempDir(), devca.Options{})
	if err != nil {
		t.Fatal(err)
	}
	var probes atomic.Int64
	up := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) {
		probes.Add(1)
		_, _ = w.Write([]byte(`{"status":"pass"}`))
	}))
	defer up.Close()
	h, err := newSuite(t, &gateway.Config{Health: map[string]any{
		"certificates": []any{map[string]any{"path": certs.Cert, "name": "gateway.crt", "minValidity": "168h"}},
		"upstreams":    []any{map[string]any{"name": "core-broker", "url": up.URL + "/health", "timeout": "2s"}},
		"cacheFor":     "1h",
	}})
	if err != nil {
		t.Fatal(err)
	}
	rec := serve(h, http.MethodGet)
	if rec.Code != http.StatusOK || rec.Header().Get("Content-Type") != "application/health+json" {
		t.Fatalf("got %d %q %s; want 200 application/health+json", rec.Code, rec.Header().Get("Content-Type"), rec.Body)
	}
	var doc struct {
		Status string                      `json:"status"`
		Checks map[string][]map[string]any `json:"checks"`
	}
	if err := json.Unmarshal(rec.Body.Bytes(), &doc); err != nil {
		t.Fatalf("body %s: %v", rec.Body, err)
	}
	if doc.Status != "pass" || len(doc.Checks) != 2 || doc.Checks["gateway.crt:validity"] == nil || doc.Checks["core-broker:responseTime"] == nil {
		t.Fatalf("document %s; want pass with the checks gateway.crt:validity (certificates[0].name decoded) and core-broker:responseTime", rec.Body)
	}
	if strings.Contains(rec.Body.String(), "upstream") || strings.Contains(rec.Body.String(), up.URL) {
		t.Fatalf("the health endpoint called the next handler or showed the upstream's URL: %s", rec.Body)
	}
	// cacheFor decoded: a second call within the hour is answered from the cache.
	if again := serve(h, http.MethodHead); again.Code != http.StatusOK || again.Body.Len() != 0 {
		t.Fatalf("HEAD: %d %q; want 200 without a body", again.Code, again.Body)
	}
	if n := probes.Load(); n != 1 {
		t.Fatalf("the upstream was probed %d times, want 1 (cacheFor 1h)", n)
	}
	if got := serve(h, http.MethodPost).Code; got != http.StatusMethodNotAllowed {
		t.Fatalf("POST: %d, want 405", got)
	}
}

// TestHealthSectionFailsWithItsChecks: a failing check makes the suite's health endpoint
// answer 503 fail, as the health plugin does.
func TestHealthSectionFailsWithItsChecks(t *testing.T) {
	h, err := newSuite(t, &gateway.Config{Health: healthSection()})
	if err != nil {
		t.Fatal(err)
	}
	rec := serve(h, http.MethodGet)
	if rec.Code != http.StatusServiceUnavailable || !strings.Contains(rec.Body.String(), `"status":"fail"`) {
		t.Fatalf("upstream down: %d %s; want 503 fail", rec.Code, rec.Body)
	}
}
