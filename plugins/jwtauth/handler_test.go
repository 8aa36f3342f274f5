package jwtauth

import (
	"context"
	"net/http"
	"net/http/httptest"
	"strconv"
	"testing"
	"time"

	"github.com/golang-jwt/jwt/v5"
)

// newTestAuth builds the middleware against a fake IdP, without the background refresher.
func newTestAuth(t testing.TB, f *fakeIdP, mutate func(c *Config)) *jwtAuth {
	t.Helper()
	cfg := CreateConfig()
	cfg.Issuer = f.issuerURL()
	cfg.Audiences = []string{"core-broker"}
	cfg.MinRefreshInterval = "1s"
	if mutate != nil {
		mutate(cfg)
	}
	s, err := cfg.compile()
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	cancel() // no background refresher (run returns at once): tests drive fetches
	return newHandler(ctx, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {}), s, "test")
}

func TestVerdictCache(t *testing.T) {
	k0 := testRSAKey(t, 0)
	f := newFakeIdP(t, rsaJWK("k0", &k0.PublicKey))
	a := newTestAuth(t, f, nil)
	tok := sign(t, k0, jwt.SigningMethodRS256, "k0", f.issuerURL(), nil)

	v1 := a.verdictFor(tok)
	if v1.reject != nil {
		t.Fatalf("valid token rejected: %s", v1.reject.reason)
	}
	fetches := f.fetches.Load()
	v2 := a.verdictFor(tok)
	if v1 != v2 {
		t.Fatal("second use of a token was verified again instead of answered from the cache")
	}
	if f.fetches.Load() != fetches {
		t.Fatal("a cached token caused a JWKS fetch")
	}

	t.Run("never used past exp", func(t *testing.T) {
		a.now = func() time.Time { return time.Now().Add(10 * time.Minute) }
		defer func() { a.now = time.Now }()
		v := a.verdictFor(tok)
		if v.reject != a.rej.expired {
			t.Fatalf("token past exp answered %+v, want expired", v.reject)
		}
	})

	t.Run("re-verified when the key set changes; retired key refused", func(t *testing.T) {
		k1 := testRSAKey(t, 1)
		f.set(func(f *fakeIdP) { f.keys = []map[string]any{rsaJWK("k1", &k1.PublicKey)} })
		a.keys.refreshAndWait(false)
		v := a.verdictFor(tok)
		if v.reject != a.rej.unknownKey {
			t.Fatalf("token of a retired key answered %+v, want unknown key", v.reject)
		}
	})
}

func TestTokenCacheBounded(t *testing.T) {
	c := newTokenCache(100)
	for i := 0; i < 1000; i++ {
		c.put(uint64(i+1), &verdict{})
	}
	if n := c.len(); n > 100 {
		t.Fatalf("cache holds %d entries, bound is 100", n)
	}
	recent := uint64(1000)
	if c.get(recent) == nil {
		t.Fatal("the most recent entry was evicted")
	}
	if c.get(1) != nil {
		t.Fatal("the oldest entry survived 1000 inserts into a cache of 100")
	}
	if newTokenCache(0) != nil {
		t.Fatal("cacheSize 0 must disable the cache")
	}
}

func TestExtract(t *testing.T) {
	k0 := testRSAKey(t, 0)
	f := newFakeIdP(t, rsaJWK("k0", &k0.PublicKey))
	a := newTestAuth(t, f, func(c *Config) { c.TokenCookie = "session" })
	for _, tc := range []struct {
		desc    string
		auth    []string
		cookie  string
		want    string
		wantRej *rejection
	}{
		{desc: "bearer", auth: []string{"Bearer abc"}, want: "abc"},
		{desc: "scheme is case-insensitive", auth: []string{"bEaReR abc"}, want: "abc"},
		{desc: "basic counts as no token", auth: []string{"Basic dXNlcjpwYXNz"}},
		{desc: "basic falls back to the cookie", auth: []string{"Basic dXNlcjpwYXNz"}, cookie: "c", want: "c"},
		{desc: "header wins over cookie", auth: []string{"Bearer h"}, cookie: "c", want: "h"},
		{desc: "cookie alone", cookie: "c", want: "c"},
		{desc: "empty bearer", auth: []string{"Bearer "}, wantRej: a.rej.malformed},
		{desc: "bare scheme", auth: []string{"Bearer"}, wantRej: a.rej.malformed},
		{desc: "two headers", auth: []string{"Bearer a", "Bearer b"}, wantRej: a.rej.multipleAuth},
		{desc: "nothing", want: ""},
	} {
		t.Run(tc.desc, func(t *testing.T) {
			r := httptest.NewRequest(http.MethodGet, "/", nil)
			for _, v := range tc.auth {
				r.Header.Add("Authorization", v)
			}
			if tc.cookie != "" {
				r.AddCookie(&http.Cookie{Name: "session", Value: tc.cookie})
			}
			got, rej := a.extract(r)
			if got != tc.want || rej != tc.wantRej {
				t.Fatalf("extract = %q, %v; want %q, %v", got, rej, tc.want, tc.wantRej)
			}
		})
	}
}

func TestRemoveCookie(t *testing.T) {
	r := httptest.NewRequest(http.MethodGet, "/", nil)
	r.Header.Set("Cookie", "a=1; session=secret; b=x y; d=\u00e9")
	removeCookie(r.Header, "session")
	if got := r.Header.Get("Cookie"); got != "a=1; b=x y; d=\u00e9" {
		t.Fatalf("Cookie = %q", got)
	}
}

func TestSharedKeyCache(t *testing.T) {
	k0 := testRSAKey(t, 0)
	f := newFakeIdP(t, rsaJWK("k0", &k0.PublicKey))
	cfg := CreateConfig()
	cfg.Issuer = f.issuerURL()
	s, err := cfg.compile()
	if err != nil {
		t.Fatal(err)
	}
	ctx1, cancel1 := context.WithCancel(context.Background())
	ctx2, cancel2 := context.WithCancel(context.Background())
	a1 := newHandler(ctx1, http.NotFoundHandler(), s, "one")
	a2 := newHandler(ctx2, http.NotFoundHandler(), s, "two")
	if a1.keys != a2.keys {
		t.Fatal("two middlewares with the same issuer got separate JWKS caches")
	}
	other := *s
	other.issuer = f.issuerURL() + "-other"
	ctx3, cancel3 := context.WithCancel(context.Background())
	defer cancel3()
	if a3 := newHandler(ctx3, http.NotFoundHandler(), &other, "three"); a3.keys == a1.keys {
		t.Fatal("another issuer shares the cache")
	}
	cancel1()
	// The release runs when ctx1's goroutine sees the cancellation: wait for it, then the
	// count must be exactly 1 (0 would mean the other middleware's use was dropped too).
	deadline := time.Now().Add(2 * time.Second)
	for sharedUsers(f.issuerURL()) > 1 && time.Now().Before(deadline) {
		time.Sleep(10 * time.Millisecond)
	}
	if n := sharedUsers(f.issuerURL()); n != 1 {
		t.Fatalf("users of the shared cache = %d after one of two left, want 1", n)
	}
	cancel2()
	deadline = time.Now().Add(2 * time.Second)
	for sharedUsers(f.issuerURL()) != 0 && time.Now().Before(deadline) {
		time.Sleep(10 * time.Millisecond)
	}
	if n := sharedUsers(f.issuerURL()); n != 0 {
		t.Fatalf("users of the shared cache = %d after both left, want 0 (entry dropped)", n)
	}
}

// TestClaimHeadersShared: the claim header values of a cached verdict are set as they are on
// every request with the token; what a later handler does to a request's headers (append,
// replace) never reaches the next request.
func TestClaimHeadersShared(t *testing.T) {
	k0 := testRSAKey(t, 0)
	f := newFakeIdP(t, rsaJWK("k0", &k0.PublicKey))
	a := newTestAuth(t, f, nil)
	var seen [][]string
	a.next = http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		seen = append(seen, r.Header["X-Auth-Client"])
		r.Header.Add("X-Auth-Client", "appended")
		r.Header["X-Auth-Subject"] = append(r.Header["X-Auth-Subject"], "appended")
		r.Header.Set("X-Auth-Scopes", "replaced")
	})
	tok := sign(t, k0, jwt.SigningMethodRS256, "k0", f.issuerURL(), nil)
	for i := 0; i < 3; i++ {
		r := httptest.NewRequest(http.MethodGet, "/", nil)
		r.Header.Set("Authorization", "Bearer "+tok)
		w := httptest.NewRecorder()
		a.ServeHTTP(w, r)
		if w.Code != http.StatusOK {
			t.Fatalf("request %d: status %d", i, w.Code)
		}
		if got := r.Header["X-Auth-Subject"]; len(got) != 2 || got[0] != "user-1" {
			t.Fatalf("request %d: X-Auth-Subject after next %q", i, got)
		}
	}
	for i, v := range seen {
		if len(v) != 1 || v[0] != "svc" {
			t.Fatalf("request %d: next saw X-Auth-Client %q, want [svc]", i, v)
		}
	}
	v := a.verdictFor(tok)
	for i, name := range v.names {
		if len(v.vals[i]) != 1 || cap(v.vals[i]) != 1 {
			t.Fatalf("cached %s = %q (cap %d): want one value, capacity 1", name, v.vals[i], cap(v.vals[i]))
		}
	}
	if got := v.vals[0][0]; got == "appended" || got == "replaced" {
		t.Fatalf("cached value changed: %q", got)
	}
}

// TestRefusedTokenCache: a refused token whose answer cannot change (bad signature, wrong
// issuer…) is answered from a cache of its own until the key set changes; time-bound
// refusals are not cached; forged tokens never evict verified ones.
func TestRefusedTokenCache(t *testing.T) {
	k0, k1 := testRSAKey(t, 0), testRSAKey(t, 1)
	f := newFakeIdP(t, rsaJWK("k0", &k0.PublicKey))
	a := newTestAuth(t, f, func(c *Config) { c.CacheSize = 100 })
	valid := sign(t, k0, jwt.SigningMethodRS256, "k0", f.issuerURL(), nil)
	forged := sign(t, k1, jwt.SigningMethodRS256, "k0", f.issuerURL(), nil) // k0's kid, k1's signature
	misses := func() int64 { return *a.m.misses }

	good := a.verdictFor(valid)
	if good.reject != nil {
		t.Fatalf("valid token refused: %s", good.reject.reason)
	}
	for _, tc := range []struct {
		desc   string
		token  string
		want   *rejection
		cached bool
	}{
		{"bad signature", forged, a.rej.signature, true},
		{"wrong issuer", sign(t, k0, jwt.SigningMethodRS256, "k0", "https://evil.example/realms/test", nil), a.rej.issuer, true},
		{"expired", sign(t, k0, jwt.SigningMethodRS256, "k0", f.issuerURL(), map[string]any{"exp": time.Now().Add(-time.Hour).Unix()}), a.rej.expired, true},
		{"malformed", "a.b.c", a.rej.malformed, true},
		{"not valid yet (time-bound: not cached)", sign(t, k0, jwt.SigningMethodRS256, "k0", f.issuerURL(), map[string]any{"nbf": time.Now().Add(time.Hour).Unix()}), a.rej.notYetValid, false},
	} {
		t.Run(tc.desc, func(t *testing.T) {
			v1 := a.verdictFor(tc.token)
			before := misses()
			v2 := a.verdictFor(tc.token)
			if v1.reject != tc.want || v2.reject != tc.want {
				t.Fatalf("answers %v, %v; want %s twice", v1.reject, v2.reject, tc.want.reason)
			}
			if got := misses() == before; got != tc.cached {
				t.Fatalf("second answer from the cache: %v, want %v", got, tc.cached)
			}
		})
	}

	t.Run("distinct forged tokens are each verified and never evict a verified token", func(t *testing.T) {
		before := misses()
		for i := 0; i < 3*maxRefusedTokens/100; i++ {
			tok := sign(t, k1, jwt.SigningMethodRS256, "k0", f.issuerURL(), map[string]any{"jti": i})
			if v := a.verdictFor(tok); v.reject != a.rej.signature {
				t.Fatalf("forged token %d answered %v", i, v.reject)
			}
		}
		if n := misses() - before; n != int64(3*maxRefusedTokens/100) {
			t.Fatalf("%d verifications for %d distinct forged tokens", n, 3*maxRefusedTokens/100)
		}
		if n := a.refused.len(); n > 100 {
			t.Fatalf("refused-token cache holds %d entries, bound is 100 (cacheSize)", n)
		}
		before = misses()
		if v := a.verdictFor(valid); v != good || misses() != before {
			t.Fatal("the verified token was evicted by forged ones")
		}
	})

	t.Run("dropped when the key set changes", func(t *testing.T) {
		a.verdictFor(forged)
		f.set(func(f *fakeIdP) { f.keys = []map[string]any{rsaJWK("k0", &k1.PublicKey)} })
		a.keys.refreshAndWait(false)
		if v := a.verdictFor(forged); v.reject != nil {
			t.Fatalf("a token signed with the key now published as k0 answered %s: the refusal outlived its key set", v.reject.reason)
		}
	})
}

// TestFailedAuthBudget: after failedAuth.limit invalid tokens from one address within the
// window, its requests get 429 with Retry-After without any token being verified; other
// addresses are unaffected; IPv6 addresses count per /64; the budget comes back with the
// next window; a missing token is not counted.
func TestFailedAuthBudget(t *testing.T) {
	k0, k1 := testRSAKey(t, 0), testRSAKey(t, 1)
	f := newFakeIdP(t, rsaJWK("k0", &k0.PublicKey))
	clock := time.Now()
	a := newTestAuth(t, f, func(c *Config) { c.FailedAuth = FailedAuth{Limit: 3, Window: "1m"} })
	a.now = func() time.Time { return clock }
	valid := sign(t, k0, jwt.SigningMethodRS256, "k0", f.issuerURL(), nil)
	send := func(addr, token string) *httptest.ResponseRecorder {
		r := httptest.NewRequest(http.MethodGet, "/", nil)
		r.RemoteAddr = addr
		if token != "" {
			r.Header.Set("Authorization", "Bearer "+token)
		}
		w := httptest.NewRecorder()
		a.ServeHTTP(w, r)
		return w
	}
	forged := func(i int) string {
		return sign(t, k1, jwt.SigningMethodRS256, "k0", f.issuerURL(), map[string]any{"jti": i})
	}
	for i := 0; i < 5; i++ {
		if w := send("192.0.2.7:1000", ""); w.Code != 401 {
			t.Fatalf("missing token: %d", w.Code)
		}
	}
	for i := 0; i < 3; i++ {
		if w := send("192.0.2.7:1000", forged(i)); w.Code != 401 {
			t.Fatalf("forged token %d: %d, want 401 (missing tokens must not count)", i, w.Code)
		}
	}
	misses := *a.m.misses
	w := send("192.0.2.7:2000", valid)
	if w.Code != 429 || w.Header().Get("Retry-After") != "60" {
		t.Fatalf("after 3 failures: %d Retry-After %q, want 429 and 60", w.Code, w.Header().Get("Retry-After"))
	}
	if *a.m.misses != misses {
		t.Fatal("a token was verified for an address that spent its budget")
	}
	if w := send("192.0.2.8:1000", valid); w.Code != 200 {
		t.Fatalf("another address: %d, want 200", w.Code)
	}
	for i := 0; i < 3; i++ {
		send("[2001:db8:1:2::1]:1000", forged(10+i))
	}
	if w := send("[2001:db8:1:2::99]:1000", forged(20)); w.Code != 429 {
		t.Fatalf("another address of the same IPv6 /64: %d, want 429", w.Code)
	}
	// A verified token in the cache is answered without looking at the budget (it costs
	// nothing); a token not seen yet is not verified while the budget is spent.
	fresh := sign(t, k0, jwt.SigningMethodRS256, "k0", f.issuerURL(), map[string]any{"jti": "fresh"})
	clock = clock.Add(59 * time.Second)
	if w := send("192.0.2.7:1000", fresh); w.Code != 429 || w.Header().Get("Retry-After") != "1" {
		t.Fatalf("1s before the window ends: %d Retry-After %q", w.Code, w.Header().Get("Retry-After"))
	}
	clock = clock.Add(time.Second)
	if w := send("192.0.2.7:1000", fresh); w.Code != 200 {
		t.Fatalf("next window: %d, want 200", w.Code)
	}
}

// TestMaxHeaders: a request with more header names than maxHeaders is refused with 431 before
// the identity-header removal walks them, with or without a token; one at the bound passes.
func TestMaxHeaders(t *testing.T) {
	k0 := testRSAKey(t, 0)
	f := newFakeIdP(t, rsaJWK("k0", &k0.PublicKey))
	a := newTestAuth(t, f, func(c *Config) { c.MaxHeaders = 20 })
	tok := sign(t, k0, jwt.SigningMethodRS256, "k0", f.issuerURL(), nil)
	for _, tc := range []struct {
		desc  string
		extra int
		want  int
	}{{"at the bound", 19, 200}, {"one over", 20, 431}, {"a thousand", 1000, 431}} {
		t.Run(tc.desc, func(t *testing.T) {
			r := httptest.NewRequest(http.MethodGet, "/", nil)
			r.Header.Set("Authorization", "Bearer "+tok)
			for i := 0; i < tc.extra; i++ {
				r.Header.Set("X-Filler-"+strconv.Itoa(i), "v")
			}
			w := httptest.NewRecorder()
			a.ServeHTTP(w, r)
			if w.Code != tc.want {
				t.Fatalf("%d headers: %d, want %d", len(r.Header), w.Code, tc.want)
			}
		})
	}
}

// TestFailedAuthBudgetBehindProxy: with failedAuth.trustedProxies, the budget is the client's
// named by X-Forwarded-For, not the proxy's: one client spending it leaves the others alone,
// and a client that is not behind a trusted proxy cannot pick its address.
func TestFailedAuthBudgetBehindProxy(t *testing.T) {
	k0, k1 := testRSAKey(t, 0), testRSAKey(t, 1)
	f := newFakeIdP(t, rsaJWK("k0", &k0.PublicKey))
	a := newTestAuth(t, f, func(c *Config) {
		c.FailedAuth = FailedAuth{Limit: 2, Window: "1m", TrustedProxies: []string{"10.0.0.0/8"}}
	})
	send := func(peer, xff, token string) int {
		r := httptest.NewRequest(http.MethodGet, "/", nil)
		r.RemoteAddr = peer
		if xff != "" {
			r.Header.Set("X-Forwarded-For", xff)
		}
		r.Header.Set("Authorization", "Bearer "+token)
		w := httptest.NewRecorder()
		a.ServeHTTP(w, r)
		return w.Code
	}
	forged := func(i int) string {
		return sign(t, k1, jwt.SigningMethodRS256, "k0", f.issuerURL(), map[string]any{"jti": i})
	}
	fresh := func(i int) string {
		return sign(t, k0, jwt.SigningMethodRS256, "k0", f.issuerURL(), map[string]any{"jti": "v" + strconv.Itoa(i)})
	}
	for i := 0; i < 2; i++ {
		send("10.0.0.5:1000", "198.51.100.1", forged(i))
	}
	if c := send("10.0.0.5:1000", "198.51.100.1", fresh(1)); c != 429 {
		t.Fatalf("client 198.51.100.1 behind the proxy after 2 failures: %d, want 429", c)
	}
	if c := send("10.0.0.5:1000", "198.51.100.2", fresh(2)); c != 200 {
		t.Fatalf("another client behind the same proxy: %d, want 200", c)
	}
	for i := 0; i < 2; i++ {
		send("192.0.2.9:1000", "198.51.100.3", forged(10+i))
	}
	if c := send("192.0.2.9:1000", "198.51.100.4", fresh(3)); c != 429 {
		t.Fatalf("an untrusted peer changing X-Forwarded-For escaped its budget: %d, want 429", c)
	}
}
