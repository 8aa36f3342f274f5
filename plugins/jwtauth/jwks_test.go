package jwtauth

import (
	"context"
	"crypto/ecdsa"
	"crypto/rand"
	"crypto/rsa"
	"strings"
	"sync"
	"testing"
	"time"
)

func testCache(t testing.TB, f *fakeIdP, jwksURL string, minRefresh time.Duration) *jwksCache {
	t.Helper()
	s := &settings{issuer: f.issuerURL(), jwksURL: jwksURL, fetchTimeout: time.Second, minRefresh: minRefresh, refresh: time.Hour}
	var mu sync.Mutex
	var logs []string
	c := newJWKSCache(s, func(msg string) {
		mu.Lock()
		logs = append(logs, msg)
		mu.Unlock()
	})
	return c
}

func TestJWKSDiscoveryAndLookup(t *testing.T) {
	k0 := testRSAKey(t, 0)
	f := newFakeIdP(t, rsaJWK("k0", &k0.PublicKey))
	for _, tc := range []struct {
		desc    string
		jwksURL string
	}{
		{desc: "discovery", jwksURL: ""},
		{desc: "explicit jwksUrl", jwksURL: f.issuerURL() + "/certs"},
	} {
		t.Run(tc.desc, func(t *testing.T) {
			c := testCache(t, f, tc.jwksURL, time.Hour)
			k, _ := c.lookup("k0", "RS256")
			if k == nil {
				t.Fatalf("key k0 not found: %v", c.lastErr)
			}
			if k.key.(*rsa.PublicKey).N.Cmp(k0.N) != 0 {
				t.Fatal("wrong key material")
			}
			if k2, _ := c.lookup("k0", "ES256"); k2 != nil {
				t.Fatal("an RSA key must not verify ES256")
			}
		})
	}
}

func TestJWKSUnknownKidSingleFlightAndRateLimit(t *testing.T) {
	k0 := testRSAKey(t, 0)
	f := newFakeIdP(t, rsaJWK("k0", &k0.PublicKey))
	f.set(func(f *fakeIdP) { f.delay = 100 * time.Millisecond })
	c := testCache(t, f, "", time.Hour)
	if k, _ := c.lookup("k0", "RS256"); k == nil {
		t.Fatal("k0 not found")
	}
	if got := f.fetches.Load(); got != 1 {
		t.Fatalf("fetches after first lookup = %d, want 1", got)
	}
	// A burst of requests with random unknown kids: within minRefresh none may fetch again.
	var wg sync.WaitGroup
	for i := 0; i < 50; i++ {
		wg.Add(1)
		go func(i int) {
			defer wg.Done()
			if k, _ := c.lookup("random-"+strings.Repeat("x", i), "RS256"); k != nil {
				t.Error("unknown kid resolved")
			}
		}(i)
	}
	wg.Wait()
	if got := f.fetches.Load(); got != 1 {
		t.Fatalf("fetches after unknown-kid burst within minRefresh = %d, want 1", got)
	}

	// With the limit passed, concurrent requests for a new kid share exactly one fetch.
	k1 := testRSAKey(t, 1)
	f.set(func(f *fakeIdP) { f.keys = append(f.keys, rsaJWK("k1", &k1.PublicKey)) })
	c.mu.Lock()
	c.lastAttempt = time.Now().Add(-2 * time.Hour)
	c.mu.Unlock()
	found := make(chan bool, 20)
	for i := 0; i < 20; i++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			k, _ := c.lookup("k1", "RS256")
			found <- k != nil
		}()
	}
	wg.Wait()
	close(found)
	for ok := range found {
		if !ok {
			t.Fatal("a waiting request did not get the new key")
		}
	}
	if got := f.fetches.Load(); got != 2 {
		t.Fatalf("fetches for 20 concurrent unknown-kid requests = %d, want 2 in total", got)
	}
}

func TestJWKSKeepsLastGoodSet(t *testing.T) {
	k0 := testRSAKey(t, 0)
	small, err := rsa.GenerateKey(rand.Reader, 1024)
	if err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		desc   string
		break_ func(f *fakeIdP)
	}{
		{desc: "IdP answers 500", break_: func(f *fakeIdP) { f.status = 500 }},
		{desc: "IdP answers garbage", break_: func(f *fakeIdP) { f.raw = []byte("<html>") }},
		{desc: "IdP publishes only unusable keys", break_: func(f *fakeIdP) {
			enc := rsaJWK("k0", &k0.PublicKey)
			enc["use"] = "enc"
			f.keys = []map[string]any{enc, rsaJWK("small", &small.PublicKey)}
		}},
		{desc: "IdP answers with more than 1 MiB", break_: func(f *fakeIdP) {
			f.raw = []byte(`{"keys":[],"pad":"` + strings.Repeat("a", maxDocumentBytes) + `"}`)
		}},
		{desc: "IdP is gone", break_: func(f *fakeIdP) { f.srv.CloseClientConnections(); f.srv.Listener.Close() }},
	} {
		t.Run(tc.desc, func(t *testing.T) {
			f := newFakeIdP(t, rsaJWK("k0", &k0.PublicKey))
			c := testCache(t, f, f.issuerURL()+"/certs", 0)
			if k, _ := c.lookup("k0", "RS256"); k == nil {
				t.Fatal("k0 not found")
			}
			_, gen := c.current()
			f.set(tc.break_)
			c.refreshAndWait(false)
			if c.lastErr == nil {
				t.Fatal("the broken fetch reported no error")
			}
			k, gen2 := c.lookup("k0", "RS256")
			if k == nil {
				t.Fatalf("last good key lost after: %v", c.lastErr)
			}
			if gen2 != gen {
				t.Fatalf("generation moved from %d to %d without a new key set", gen, gen2)
			}
		})
	}
}

func TestJWKSDiscoveryIssuerMismatch(t *testing.T) {
	k0 := testRSAKey(t, 0)
	f := newFakeIdP(t, rsaJWK("k0", &k0.PublicKey))
	f.set(func(f *fakeIdP) { f.issuer = "https://evil.example/realms/test" })
	c := testCache(t, f, "", 0)
	if k, _ := c.lookup("k0", "RS256"); k != nil {
		t.Fatal("keys accepted from a discovery document announcing another issuer")
	}
	if c.lastErr == nil || !strings.Contains(c.lastErr.Error(), "announces issuer") {
		t.Fatalf("lastErr = %v", c.lastErr)
	}
}

func TestJWKSRunStopsWithContext(t *testing.T) {
	k0 := testRSAKey(t, 0)
	f := newFakeIdP(t, rsaJWK("k0", &k0.PublicKey))
	c := testCache(t, f, "", time.Hour)
	c.refresh = 20 * time.Millisecond
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() {
		c.run(ctx)
		close(done)
	}()
	deadline := time.Now().Add(5 * time.Second)
	for f.fetches.Load() < 3 && time.Now().Before(deadline) {
		time.Sleep(10 * time.Millisecond)
	}
	if f.fetches.Load() < 3 {
		t.Fatalf("background refresh fetched %d times in 5s, want periodic fetches", f.fetches.Load())
	}
	cancel()
	select {
	case <-done:
	case <-time.After(5 * time.Second):
		t.Fatal("background refresher did not stop when its context ended")
	}
}

func TestKeySetParsing(t *testing.T) {
	k0 := testRSAKey(t, 0)
	ec := newECKey(t)
	small, err := rsa.GenerateKey(rand.Reader, 1024)
	if err != nil {
		t.Fatal(err)
	}
	enc := rsaJWK("enc", &k0.PublicKey)
	enc["use"] = "enc"
	offCurve := ecJWK("off", &ec.PublicKey)
	offCurve["y"] = offCurve["x"]
	verifyOnly := rsaJWK("ops", &k0.PublicKey)
	verifyOnly["key_ops"] = []string{"encrypt"}
	noAlg := rsaJWK("noalg", &k0.PublicKey)
	delete(noAlg, "alg")
	for _, tc := range []struct {
		desc   string
		key    map[string]any
		usable bool
	}{
		{desc: "RSA 2048", key: rsaJWK("a", &k0.PublicKey), usable: true},
		{desc: "RSA without alg", key: noAlg, usable: true},
		{desc: "RSA 1024 refused", key: rsaJWK("small", &small.PublicKey)},
		{desc: "use enc refused", key: enc},
		{desc: "key_ops without verify refused", key: verifyOnly},
		{desc: "EC P-256", key: ecJWK("ec", &ec.PublicKey), usable: true},
		{desc: "EC point off the curve refused", key: offCurve},
		{desc: "symmetric key refused", key: map[string]any{"kty": "oct", "kid": "h", "k": "c2VjcmV0"}},
		{desc: "unknown alg refused", key: map[string]any{"kty": "RSA", "kid": "x", "alg": "HS256", "n": "AQAB", "e": "AQAB"}},
		{desc: "RSA key with an EC alg refused", key: rsaWithAlg(&k0.PublicKey, "ES256")},
		{desc: "RSA key with PS256", key: rsaWithAlg(&k0.PublicKey, "PS256"), usable: true},
		{desc: "EC P-256 key with ES384 refused", key: ecWithAlg(&ec.PublicKey, "ES384")},
		{desc: "EC P-256 key with ES256", key: ecWithAlg(&ec.PublicKey, "ES256"), usable: true},
	} {
		t.Run(tc.desc, func(t *testing.T) {
			body := mustJSON(t, map[string]any{"keys": []map[string]any{tc.key}})
			ks, skipped, err := parseKeySet(body)
			if err != nil {
				t.Fatal(err)
			}
			if got := len(ks.all) == 1; got != tc.usable {
				t.Fatalf("usable = %v, want %v (skipped: %v)", got, tc.usable, skipped)
			}
		})
	}
}

func TestKeySetFind(t *testing.T) {
	k0 := testRSAKey(t, 0)
	k1 := testRSAKey(t, 1)
	ec := newECKey(t)
	one, _, _ := parseKeySet(mustJSON(t, map[string]any{"keys": []any{rsaJWK("a", &k0.PublicKey), ecJWK("e", &ec.PublicKey)}}))
	two, _, _ := parseKeySet(mustJSON(t, map[string]any{"keys": []any{rsaJWK("a", &k0.PublicKey), rsaJWK("b", &k1.PublicKey)}}))
	for _, tc := range []struct {
		desc    string
		ks      *keySet
		kid     string
		alg     string
		wantKid string
	}{
		{desc: "kid and alg fit", ks: one, kid: "a", alg: "RS256", wantKid: "a"},
		{desc: "key alg RS256 does not verify RS512", ks: one, kid: "a", alg: "RS512"},
		{desc: "EC key for ES256", ks: one, kid: "e", alg: "ES256", wantKid: "e"},
		{desc: "EC P-256 key does not verify ES384", ks: one, kid: "e", alg: "ES384"},
		{desc: "no kid, exactly one RSA key", ks: one, kid: "", alg: "RS256", wantKid: "a"},
		{desc: "no kid, two RSA keys: ambiguous", ks: two, kid: "", alg: "RS256"},
		{desc: "unknown kid", ks: two, kid: "zzz", alg: "RS256"},
		{desc: "nil set", ks: nil, kid: "a", alg: "RS256"},
	} {
		t.Run(tc.desc, func(t *testing.T) {
			k := tc.ks.find(tc.kid, tc.alg)
			got := ""
			if k != nil {
				got = k.kid
			}
			if got != tc.wantKid {
				t.Fatalf("found %q, want %q", got, tc.wantKid)
			}
		})
	}
}

func rsaWithAlg(pub *rsa.PublicKey, alg string) map[string]any {
	k := rsaJWK("k", pub)
	k["alg"] = alg
	return k
}

func ecWithAlg(pub *ecdsa.PublicKey, alg string) map[string]any {
	k := ecJWK("k", pub)
	k["alg"] = alg
	return k
}
