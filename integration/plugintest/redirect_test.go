package plugintest

import (
	"context"
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"sync/atomic"
	"testing"
	"time"

	"github.com/golang-jwt/jwt/v5"
)

// redirector answers every request but /target with a 302 to /target, and counts the
// redirects it answered and the requests that followed one.
func redirector(t *testing.T) (*httptest.Server, *atomic.Int64, *atomic.Int64) {
	t.Helper()
	var redirected, followed atomic.Int64
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path == "/target" {
			followed.Add(1)
			w.Header().Set("Content-Type", "application/json")
			_, _ = w.Write([]byte(`{"keys": []}`))
			return
		}
		redirected.Add(1)
		http.Redirect(w, r, "/target", http.StatusFound)
	}))
	t.Cleanup(srv.Close)
	return srv, &redirected, &followed
}

// TestRedirectsAreNotFollowed: a key set URL or a health upstream that redirects is refused,
// not followed, compiled and under Yaegi. Both clients refuse through a CheckRedirect function
// handed to net/http; written with unnamed parameters it panicked under Yaegi v0.16.1 on the
// first redirect (docs/yaegi.md, item 16), which in Traefik ends the process.
func TestRedirectsAreNotFollowed(t *testing.T) {
	srv, redirected, followed := redirector(t)
	// answered checks that a client really met a redirect.
	answered := func(t *testing.T, before int64) {
		t.Helper()
		if redirected.Load() == before {
			t.Fatal("no request met the redirect: the test proves nothing")
		}
	}

	for _, b := range healthBuilders(t) {
		t.Run("health/"+b.Name, func(t *testing.T) {
			before := redirected.Load()
			defer answered(t, before)
			h, err := b.New(context.Background(), hlNext(t), map[string]any{
				"upstreams": []any{map[string]any{"name": "broker", "url": srv.URL + "/health"}},
			}, "redirect")
			if err != nil {
				t.Fatal(err)
			}
			w := httptest.NewRecorder()
			h.ServeHTTP(w, httptest.NewRequest(http.MethodGet, "/health", nil))
			var doc struct {
				Status string `json:"status"`
			}
			_ = json.Unmarshal(w.Body.Bytes(), &doc)
			if w.Code != http.StatusServiceUnavailable || doc.Status != "fail" {
				t.Fatalf("an upstream answering 302: %d %s, want 503 fail", w.Code, w.Body)
			}
		})
	}

	for _, b := range jwtBuilders(t) {
		t.Run("jwtauth/"+b.Name, func(t *testing.T) {
			before := redirected.Load()
			defer answered(t, before)
			ctx, cancel := context.WithCancel(context.Background())
			defer cancel()
			h, err := b.New(ctx, &upstream{}, map[string]any{
				"issuer": "https://kc.example/realms/redirect", "jwksUrl": srv.URL + "/certs",
				"fetchTimeout": "2s", "minRefreshInterval": "1s",
			}, "redirect")
			if err != nil {
				t.Fatal(err)
			}
			tk := jwt.NewWithClaims(jwt.SigningMethodHS256, jwt.MapClaims{"iss": "https://kc.example/realms/redirect", "exp": time.Now().Add(time.Hour).Unix()})
			tk.Header["alg"] = "RS256" // the allow-listed algorithm: the key set is looked up
			tok, err := tk.SignedString([]byte("k"))
			if err != nil {
				t.Fatal(err)
			}
			if w := serveBearer(h, tok); w.Code != http.StatusUnauthorized {
				t.Fatalf("a token while the key set URL redirects: %d %s, want 401", w.Code, w.Body)
			}
		})
	}
	if n := followed.Load(); n != 0 {
		t.Fatalf("%d requests followed a redirect", n)
	}
}
