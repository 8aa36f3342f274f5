package plugintest

import (
	"context"
	"crypto/rand"
	"crypto/rsa"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/golang-jwt/jwt/v5"
	"github.com/pavilion-trust/gateway/demo/devissuer/issuer"
)

// TestJWTAuthJWKSFetchPolicy checks, compiled and interpreted, how often the plugin fetches
// the JWKS: one shared fetch for a burst of unknown kids, at most one per minRefreshInterval,
// a bounded wait when the IdP hangs, and the last good key set kept when a fetch fails.
func TestJWTAuthJWKSFetchPolicy(t *testing.T) {
	for _, b := range jwtBuilders(t) {
		t.Run(b.Name, func(t *testing.T) {
			iss, err := issuer.New(issuer.Config{Clients: []issuer.Client{{ID: "svc", Secret: "s", Audience: []string{"core-broker"}}}})
			if err != nil {
				t.Fatal(err)
			}
			var fetches, delay atomic.Int64
			idp := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
				if strings.HasSuffix(r.URL.Path, "/certs") {
					fetches.Add(1)
					time.Sleep(time.Duration(delay.Load()))
				}
				iss.Handler().ServeHTTP(w, r)
			}))
			defer idp.Close()
			iss.SetBaseURL(idp.URL)
			ctx, cancel := context.WithCancel(context.Background())
			defer cancel()
			h, err := b.New(ctx, &upstream{}, map[string]any{
				"issuer": iss.IssuerURL(), "audiences": []any{"core-broker"},
				"minRefreshInterval": "1s", "fetchTimeout": "1s", "refreshInterval": "1h",
			}, "fetch-policy")
			if err != nil {
				t.Fatal(err)
			}
			do := func(tok string) int { return serveBearer(h, tok).Code }
			// The background refresher fetches once at start.
			for deadline := time.Now().Add(5 * time.Second); fetches.Load() == 0 && time.Now().Before(deadline); {
				time.Sleep(10 * time.Millisecond)
			}
			time.Sleep(100 * time.Millisecond)
			known, _ := iss.Token("svc")
			if c := do(known); c != 200 {
				t.Fatalf("valid token: %d", c)
			}
			if n := fetches.Load(); n != 1 {
				t.Fatalf("JWKS fetched %d times at start, want 1", n)
			}

			// A burst of tokens with random unknown kids: one shared fetch at most.
			stranger, _ := rsa.GenerateKey(rand.Reader, 2048)
			claims, _ := iss.Claims("svc")
			var wg sync.WaitGroup
			var accepted atomic.Int64
			burst := time.Now()
			for i := 0; i < 30; i++ {
				tk := jwt.NewWithClaims(jwt.SigningMethodRS256, claims)
				tk.Header["kid"] = "random-" + string(rune('a'+i))
				tok, _ := tk.SignedString(stranger)
				wg.Add(1)
				go func() {
					defer wg.Done()
					if do(tok) == 200 {
						accepted.Add(1)
					}
				}()
			}
			wg.Wait()
			if accepted.Load() != 0 {
				t.Fatal("a token with an unknown kid was accepted")
			}
			if n := fetches.Load(); n != 2 {
				t.Fatalf("30 unknown-kid requests caused %d fetches in total, want 2 (start + one shared)", n)
			}

			// A new key within minRefreshInterval of that fetch is not fetched yet; after it, it is.
			if _, err := iss.Rotate(); err != nil {
				t.Fatal(err)
			}
			rotated, _ := iss.Token("svc")
			if c := do(rotated); time.Since(burst) < 900*time.Millisecond && c != 401 {
				t.Fatalf("new kid within minRefreshInterval: %d, want 401 without a fetch", c)
			}
			time.Sleep(1100 * time.Millisecond)
			if c := do(rotated); c != 200 {
				t.Fatalf("new kid after minRefreshInterval: %d", c)
			}
			if n := fetches.Load(); n != 3 {
				t.Fatalf("fetches = %d, want 3", n)
			}

			// The IdP hangs: the request waits a bounded time, and the known keys keep working.
			delay.Store(int64(4 * time.Second)) // longer than fetchTimeout, with a margin
			if _, err := iss.Rotate(); err != nil {
				t.Fatal(err)
			}
			time.Sleep(1100 * time.Millisecond)
			unfetchable, _ := iss.Token("svc")
			start := time.Now()
			if c := do(unfetchable); c != 401 {
				t.Fatalf("token of a key the hanging IdP never delivered: %d", c)
			}
			if waited := time.Since(start); waited > 2500*time.Millisecond {
				t.Fatalf("request waited %s for a hanging IdP (fetchTimeout 1s)", waited)
			}
			if c := do(known); c != 200 {
				t.Fatalf("known key after a failed fetch: %d", c)
			}
			if c := do(rotated); c != 200 {
				t.Fatalf("second known key after a failed fetch: %d", c)
			}
		})
	}
}
