package plugintest

import (
	"context"
	"net/http"
	"net/http/httptest"
	"strconv"
	"testing"
)

// TestJWTAuthFloods, compiled and under Yaegi: a repeated forged token keeps its 401 (from the
// refused-token cache after the first), and failedAuth turns an address that spent its budget
// away with 429 and Retry-After before any token of it is verified, while another address
// passes.
func TestJWTAuthFloods(t *testing.T) {
	iss := startIssuer(t)
	valid := token(t, iss, nil)
	forged := valid[:len(valid)-8] + "AAAAAAAA"
	for _, b := range jwtBuilders(t) {
		t.Run(b.Name, func(t *testing.T) {
			ctx, cancel := context.WithCancel(context.Background())
			defer cancel()
			up := &upstream{}
			cfg := merge(baseConfig(iss), map[string]any{"failedAuth": map[string]any{"limit": "3", "window": "1m"}})
			h, err := b.New(ctx, up, cfg, "floods")
			if err != nil {
				t.Fatalf("New: %v", err)
			}
			send := func(addr, tok string) *httptest.ResponseRecorder {
				r := httptest.NewRequest(http.MethodGet, "/api/v1/things", nil)
				r.RemoteAddr = addr
				r.Header.Set("Authorization", "Bearer "+tok)
				w := httptest.NewRecorder()
				h.ServeHTTP(w, r)
				return w
			}
			for i := 0; i < 3; i++ {
				if w := send("198.51.100.1:4000", forged); w.Code != 401 {
					t.Fatalf("forged token, try %d: %d, want 401", i, w.Code)
				}
			}
			w := send("198.51.100.1:4001", valid)
			retry, _ := strconv.Atoi(w.Header().Get("Retry-After"))
			if w.Code != 429 || retry < 1 || retry > 60 {
				t.Fatalf("after 3 failures: %d, Retry-After %q; want 429 and 1..60", w.Code, w.Header().Get("Retry-After"))
			}
			if up.called {
				t.Fatal("a request of an address that spent its budget reached the upstream")
			}
			if w := send("198.51.100.2:4000", valid); w.Code != 200 || !up.called {
				t.Fatalf("another address with a valid token: %d", w.Code)
			}
		})
	}
}
