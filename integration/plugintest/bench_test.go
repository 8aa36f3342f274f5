package plugintest

import (
	"context"
	"net/http"
	"net/http/httptest"
	"testing"

	"github.com/pavilion-trust/gateway/integration/redistest"
)

// BenchmarkJWTAuthCachedToken measures the per-request cost of the plugin itself for a token
// already in the verified-token cache, compiled and interpreted.
func BenchmarkJWTAuthCachedToken(b *testing.B) {
	iss := startIssuer(b)
	tok, err := iss.Token("svc")
	if err != nil {
		b.Fatal(err)
	}
	for _, bl := range jwtBuilders(b) {
		b.Run(bl.Name, func(b *testing.B) {
			ctx, cancel := context.WithCancel(context.Background())
			defer cancel()
			h, err := bl.New(ctx, http.HandlerFunc(func(http.ResponseWriter, *http.Request) {}), baseConfig(iss), "bench")
			if err != nil {
				b.Fatal(err)
			}
			r := httptest.NewRequest(http.MethodGet, "/api/v1/x", nil)
			w := httptest.NewRecorder()
			r.Header.Set("Authorization", "Bearer "+tok)
			h.ServeHTTP(w, r)
			if w.Code != 200 {
				b.Fatalf("status %d", w.Code)
			}
			b.ReportAllocs()
			b.ResetTimer()
			for i := 0; i < b.N; i++ {
				h.ServeHTTP(w, r)
			}
		})
	}
}

// BenchmarkSuite measures the per-request cost of the suite (requestId + jwt with a cached
// token + rateLimit on a loopback redis-server), compiled and interpreted.
func BenchmarkSuite(b *testing.B) {
	iss := startIssuer(b)
	tok, err := iss.Token("svc")
	if err != nil {
		b.Fatal(err)
	}
	rd := redistest.Start(b)
	for _, bl := range suiteBuilders(b) {
		b.Run(bl.Name, func(b *testing.B) {
			ctx, cancel := context.WithCancel(context.Background())
			defer cancel()
			cfg := map[string]any{
				"requestId": map[string]any{},
				"jwt":       baseConfig(iss),
				"rateLimit": map[string]any{
					"redis":     map[string]any{"address": rd.Addr()},
					"keyPrefix": "benchsuite" + bl.Name,
					"limits":    []any{map[string]any{"requests": "1000000000", "window": "1h"}},
				},
			}
			h, err := bl.New(ctx, http.HandlerFunc(func(http.ResponseWriter, *http.Request) {}), cfg, "bench")
			if err != nil {
				b.Fatal(err)
			}
			r := httptest.NewRequest(http.MethodGet, "/api/v1/x", nil)
			r.Header.Set("Authorization", "Bearer "+tok)
			serveN(b, h, r)
		})
	}
}

// serveN serves r through h b.N times, each with a new recorder, and stops at an answer
// other than 200 (a benchmark of refusals would measure something else).
func serveN(b *testing.B, h http.Handler, r *http.Request) {
	b.Helper()
	b.ReportAllocs()
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		w := httptest.NewRecorder()
		h.ServeHTTP(w, r)
		if w.Code != http.StatusOK {
			b.Fatalf("status %d: %s", w.Code, w.Body)
		}
	}
}
