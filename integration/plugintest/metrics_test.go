package plugintest

import (
	"context"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/pavilion-trust/gateway/integration/redistest"
	dto "github.com/prometheus/client_model/go"
	"github.com/prometheus/common/expfmt"
)

// scrape reads the metrics endpoint h and parses it with Prometheus' own text parser.
func scrape(t testing.TB, h http.Handler) map[string]*dto.MetricFamily {
	t.Helper()
	w := httptest.NewRecorder()
	h.ServeHTTP(w, httptest.NewRequest(http.MethodGet, "/plugin-metrics", nil))
	if w.Code != 200 {
		t.Fatalf("metrics: %d %s", w.Code, w.Body)
	}
	if f := expfmt.ResponseFormat(w.Header()); f.FormatType() != expfmt.TypeTextPlain {
		t.Fatalf("metrics Content-Type %q is not the text format", w.Header().Get("Content-Type"))
	}
	var p expfmt.TextParser
	fams, err := p.TextToMetricFamilies(strings.NewReader(w.Body.String()))
	if err != nil {
		t.Fatalf("metrics do not parse: %v\n%s", err, w.Body)
	}
	return fams
}

// value returns the counter, gauge or histogram count of family name whose labels include
// want; -1 when there is no such series.
func value(fams map[string]*dto.MetricFamily, name string, want map[string]string) float64 {
	f := fams[name]
	if f == nil {
		return -1
	}
next:
	for _, m := range f.GetMetric() {
		have := map[string]string{}
		for _, l := range m.GetLabel() {
			have[l.GetName()] = l.GetValue()
		}
		for k, v := range want {
			if have[k] != v {
				continue next
			}
		}
		switch {
		case m.Counter != nil:
			return m.GetCounter().GetValue()
		case m.Gauge != nil:
			return m.GetGauge().GetValue()
		case m.Histogram != nil:
			return float64(m.GetHistogram().GetSampleCount())
		}
	}
	return -1
}

// TestSuiteMetrics runs the suite and its metrics endpoint in one interpreter (compiled and
// under Yaegi): the output parses with Prometheus' parser, and the counters move with the
// requests made.
func TestSuiteMetrics(t *testing.T) {
	iss := suiteIssuer(t)
	rd := redistest.Start(t)
	svc, _ := iss.Token("svc")
	for _, b := range suiteBuilders(t) {
		t.Run(b.Name, func(t *testing.T) {
			ctx, cancel := context.WithCancel(context.Background())
			defer cancel()
			name := "metrics-" + b.Name
			h, err := b.New(ctx, &upstream{}, map[string]any{
				"requestId": map[string]any{"header": "X-Request-Id"},
				"jwt":       map[string]any{"issuer": iss.IssuerURL(), "audiences": "core-broker"},
				"rateLimit": map[string]any{
					"redis":     map[string]any{"address": rd.Addr()},
					"keyPrefix": "metrics-" + b.Name,
					"limits":    []any{map[string]any{"requests": "2", "window": "1h"}},
				},
			}, name)
			if err != nil {
				t.Fatal(err)
			}
			m, err := b.New(ctx, mustNotCall(t), map[string]any{"metrics": map[string]any{"enabled": "true"}}, "metrics-endpoint")
			if err != nil {
				t.Fatal(err)
			}
			do := func(tok string) int {
				r := httptest.NewRequest(http.MethodGet, "/api/v1/x", nil)
				if tok != "" {
					r.Header.Set("Authorization", "Bearer "+tok)
				}
				w := httptest.NewRecorder()
				h.ServeHTTP(w, r)
				return w.Code
			}
			mw := map[string]string{"middleware": name}
			res := func(r string) map[string]string { return map[string]string{"middleware": name, "result": r} }

			// Series exist at zero as soon as the middleware is built; the JWKS is fetched.
			deadline := time.Now().Add(5 * time.Second)
			fams := scrape(t, m)
			for value(fams, "pavilion_jwks_fetches_total", res("ok")) < 1 && time.Now().Before(deadline) {
				time.Sleep(20 * time.Millisecond)
				fams = scrape(t, m)
			}
			for _, c := range []struct {
				name   string
				labels map[string]string
				want   float64
			}{
				{"pavilion_jwt_validations_total", res("ok"), 0},
				{"pavilion_jwt_validations_total", res("expired"), 0},
				{"pavilion_jwt_validations_total", res("missing_token"), 0},
				{"pavilion_ratelimit_decisions_total", res("allowed"), 0},
				{"pavilion_ratelimit_decisions_total", res("limited"), 0},
				{"pavilion_ratelimit_fallback_active", mw, 0},
				{"pavilion_ratelimit_redis_errors_total", mw, 0},
				{"pavilion_jwks_fetches_total", res("ok"), 1},
				{"pavilion_jwks_keys", mw, 1},
			} {
				if got := value(fams, c.name, c.labels); got != c.want {
					t.Errorf("before requests: %s%v = %v, want %v", c.name, c.labels, got, c.want)
				}
			}

			expired := token(t, iss, map[string]any{"exp": time.Now().Add(-time.Hour).Unix()})
			codes := []int{do(svc), do(svc), do(svc), do(""), do(expired), do("x.y.z")}
			if want := []int{200, 200, 429, 401, 401, 401}; !equalInts(codes, want) {
				t.Fatalf("codes %v, want %v", codes, want)
			}
			fams = scrape(t, m)
			for _, c := range []struct {
				name   string
				labels map[string]string
				want   float64
			}{
				{"pavilion_jwt_validations_total", res("ok"), 3},
				{"pavilion_jwt_validations_total", res("missing_token"), 1},
				{"pavilion_jwt_validations_total", res("expired"), 1},
				{"pavilion_jwt_validations_total", res("malformed"), 1},
				{"pavilion_jwt_cache_misses_total", mw, 3}, // svc once, expired, malformed
				{"pavilion_jwt_cache_hits_total", mw, 2},   // svc twice more
				{"pavilion_ratelimit_decisions_total", res("allowed"), 2},
				{"pavilion_ratelimit_decisions_total", res("limited"), 1},
				{"pavilion_ratelimit_redis_duration_seconds", mw, 3},
				{"pavilion_ratelimit_redis_errors_total", mw, 0},
			} {
				if got := value(fams, c.name, c.labels); got != c.want {
					t.Errorf("after requests: %s%v = %v, want %v", c.name, c.labels, got, c.want)
				}
			}
			if f := fams["pavilion_ratelimit_redis_duration_seconds"]; f == nil || f.GetType() != dto.MetricType_HISTOGRAM {
				t.Errorf("redis duration is not a histogram: %v", f)
			}

			// Only GET and HEAD; the endpoint never calls next (it has none here).
			w := httptest.NewRecorder()
			m.ServeHTTP(w, httptest.NewRequest(http.MethodPost, "/plugin-metrics", nil))
			if w.Code != http.StatusMethodNotAllowed {
				t.Errorf("POST: %d", w.Code)
			}
		})
	}
}

// TestSuiteMetricsConfig: the metrics section stands alone.
func TestSuiteMetricsConfig(t *testing.T) {
	for _, b := range suiteBuilders(t) {
		t.Run(b.Name, func(t *testing.T) {
			ctx, cancel := context.WithCancel(context.Background())
			defer cancel()
			_, err := b.New(ctx, mustNotCall(t), map[string]any{
				"metrics":   map[string]any{"enabled": "true"},
				"requestId": map[string]any{"header": "X-Request-Id"},
			}, "mixed")
			if err == nil || !strings.Contains(err.Error(), "metrics: cannot be combined") {
				t.Fatalf("metrics with requestId: %v", err)
			}
			_, err = b.New(ctx, mustNotCall(t), map[string]any{"metrics": map[string]any{"enabeld": "true"}}, "typo")
			if err == nil || !strings.Contains(err.Error(), "enabeld") {
				t.Fatalf("unknown key: %v", err)
			}
		})
	}
}

func equalInts(a, b []int) bool {
	if len(a) != len(b) {
		return false
	}
	for i := range a {
		if a[i] != b[i] {
			return false
		}
	}
	return true
}

func mustNotCall(t testing.TB) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		t.Errorf("the metrics endpoint called next for %s %s", r.Method, r.URL)
	})
}
