package ratelimit

import (
	"bytes"
	"context"
	"encoding/json"
	"io"
	"net/http"
	"net/http/httptest"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/pavilion-trust/gateway/plugins/resp"
)

type fakeClock struct {
	mu sync.Mutex
	t  time.Time
}

func (c *fakeClock) now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.t
}

func (c *fakeClock) add(d time.Duration) {
	c.mu.Lock()
	c.t = c.t.Add(d)
	c.mu.Unlock()
}

// redisHandler builds a middleware named "test" on Redis at addr (3 requests per hour unless
// edit changes it), with a client of its own, closed when the test ends; its log is discarded.
func redisHandler(tb testing.TB, addr string, clock func() time.Time, edit func(c *Config)) (*rateLimit, *resp.Client) {
	tb.Helper()
	c := CreateConfig()
	c.Redis.Address = addr
	// 1 s, not the default 100 ms: a pause of a slow machine must not turn into a timeout and
	// a fallback in tests that count exactly (tests of timeouts set their own).
	c.Redis.Timeout = "1s"
	c.Limits = []Limit{{Requests: 3, Window: "1h"}}
	if edit != nil {
		edit(c)
	}
	s, err := c.compile()
	if err != nil {
		tb.Fatal(err)
	}
	ok := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { w.WriteHeader(200) })
	return newHandler(tb, ok, s, clock)
}

// newHandler builds a middleware named "test" from s on a client of its own, closed when the
// test ends; its log is discarded.
func newHandler(tb testing.TB, next http.Handler, s *settings, clock func() time.Time) (*rateLimit, *resp.Client) {
	tb.Helper()
	rdb, err := resp.New(s.redisOptions())
	if err != nil {
		tb.Fatal(err)
	}
	tb.Cleanup(func() { rdb.Close() })
	l, err := newRateLimit(next, s, "test", clock, rdb)
	if err != nil {
		tb.Fatal(err)
	}
	l.logTo = io.Discard
	return l, rdb
}

// events counts the log lines of event in logs.
func events(tb testing.TB, logs *bytes.Buffer, event string) int {
	tb.Helper()
	n := 0
	for _, line := range strings.Split(strings.TrimSpace(logs.String()), "\n") {
		if line == "" {
			continue
		}
		var m map[string]any
		if err := json.Unmarshal([]byte(line), &m); err != nil {
			tb.Fatalf("log line %q: %v", line, err)
		}
		if m["event"] == event {
			n++
		}
	}
	return n
}

// serverClients counts the client connections of the Redis server at addr, its own aside.
func serverClients(tb testing.TB, addr string) int {
	tb.Helper()
	c, err := resp.New(resp.Options{Address: addr})
	if err != nil {
		tb.Fatal(err)
	}
	defer c.Close()
	v, err := c.Do(context.Background(), "CLIENT", "LIST")
	if err != nil {
		tb.Fatal(err)
	}
	return len(strings.Split(strings.TrimSpace(v.Str), "\n")) - 1
}

// waitServerClients waits up to 2s for the server at addr to count want client connections.
func waitServerClients(tb testing.TB, addr string, want int) {
	tb.Helper()
	deadline := time.Now().Add(2 * time.Second)
	for serverClients(tb, addr) != want {
		if time.Now().After(deadline) {
			tb.Fatalf("redis has %d client connections, want %d", serverClients(tb, addr), want)
		}
		time.Sleep(5 * time.Millisecond)
	}
}

func hit(l http.Handler, client string) *httptest.ResponseRecorder {
	r := httptest.NewRequest(http.MethodGet, "/", nil)
	r.Header.Set("X-Auth-Client", client)
	w := httptest.NewRecorder()
	l.ServeHTTP(w, r)
	return w
}

func TestAlgorithmsWithRedis(t *testing.T) {
	rd := startRedis(t)
	for _, alg := range []string{AlgorithmSlidingWindow, AlgorithmSlidingLog, AlgorithmGCRA} {
		t.Run(alg, func(t *testing.T) {
			l, rdb := redisHandler(t, rd.addr(), time.Now, func(c *Config) {
				c.Algorithm = alg
				c.KeyPrefix = "t-" + alg
				c.Limits = []Limit{{Requests: 3, Window: "1h"}, {Requests: 5, Window: "24h"}}
			})
			for i := 0; i < 3; i++ {
				w := hit(l, "a")
				if w.Code != 200 {
					t.Fatalf("request %d: %d %s", i, w.Code, w.Body)
				}
				if got, want := w.Header().Get("X-RateLimit-Remaining"), strconv.Itoa(2-i); got != want {
					t.Fatalf("request %d: remaining %q, want %s", i, got, want)
				}
				if w.Header().Get("X-RateLimit-Limit") != "3" {
					t.Fatalf("limit %q", w.Header().Get("X-RateLimit-Limit"))
				}
			}
			w := hit(l, "a")
			if w.Code != 429 {
				t.Fatalf("4th: %d", w.Code)
			}
			ra, _ := strconv.Atoi(w.Header().Get("Retry-After"))
			// Up to two windows: with sliding-window, the requests of the current window
			// still weigh in the next one (in the first third of an hour, 3 requests of this
			// hour keep the 1h limit closed until a third into the next).
			if ra < 1 || ra > 2*3600 {
				t.Fatalf("Retry-After %q", w.Header().Get("Retry-After"))
			}
			if w.Header().Get("RateLimit-Policy") != `"1h";q=3;w=3600, "1d";q=5;w=86400` {
				t.Fatalf("policy %q", w.Header().Get("RateLimit-Policy"))
			}
			// Refused requests are not counted: the day limit saw 3 requests only.
			for i := 0; i < 5; i++ {
				hit(l, "a")
			}
			n, err := rdb.Do(context.Background(), "KEYS", "t-"+alg+":*")
			if err != nil || len(n.Array) != 2 {
				t.Fatalf("keys %v %v", n, err)
			}
			if hit(l, "b").Code != 200 {
				t.Fatal("client b refused")
			}
		})
	}
}

func TestFailoverAndRecovery(t *testing.T) {
	rd := startRedis(t)
	clock := &fakeClock{t: time.Unix(1700000000, 0)}
	for _, policy := range []string{PolicyLocal, PolicyOpen, PolicyClosed} {
		t.Run(policy, func(t *testing.T) {
			if rd.cmd == nil {
				rd.start(t)
			}
			l, rdb := redisHandler(t, rd.addr(), clock.now, func(c *Config) {
				c.FailurePolicy = policy
				c.KeyPrefix = "f-" + policy
			})
			var logs bytes.Buffer
			l.logTo = &logs
			if w := hit(l, "a"); w.Code != 200 {
				t.Fatalf("with redis: %d", w.Code)
			}
			rd.kill()
			w := hit(l, "a")
			switch policy {
			case PolicyLocal:
				// The local budget starts afresh: 3 then 429.
				for i := 0; i < 2; i++ {
					w = hit(l, "a")
				}
				if w.Code != 200 || w.Header().Get("X-RateLimit-Remaining") != "0" {
					t.Fatalf("local: %d %v", w.Code, w.Header())
				}
				if w = hit(l, "a"); w.Code != 429 {
					t.Fatalf("local 4th: %d", w.Code)
				}
			case PolicyOpen:
				for i := 0; i < 5; i++ {
					w = hit(l, "a")
				}
				if w.Code != 200 || w.Header().Get("RateLimit") != "" {
					t.Fatalf("open: %d %v", w.Code, w.Header())
				}
			case PolicyClosed:
				if w.Code != 503 || w.Header().Get("Retry-After") != "1" {
					t.Fatalf("closed: %d %v", w.Code, w.Header())
				}
			}
			if !l.redisBreaker.isDown() || events(t, &logs, "redis_failover") != 1 || events(t, &logs, "redis_recovered") != 0 {
				t.Fatalf("down %v, log:\n%s", l.redisBreaker.isDown(), logs.String())
			}
			stats := rdb.Stats()
			// While backing off, requests do not touch Redis.
			for i := 0; i < 10; i++ {
				hit(l, "c")
			}
			if rdb.Stats().DialErrors != stats.DialErrors {
				t.Fatal("requests dialled Redis during the backoff")
			}
			// A failed probe after 1s doubles the backoff.
			clock.add(time.Second)
			hit(l, "c")
			if backoff, _ := breakerState(l.redisBreaker); backoff != 2*time.Second {
				t.Fatalf("backoff %s after a failed probe", backoff)
			}
			rd.start(t)
			clock.add(2 * time.Second)
			if w := hit(l, "a"); w.Code != 200 || w.Header().Get("X-RateLimit-Remaining") != "2" {
				// Redis restarted empty: the probe is the 1st request counted there.
				t.Fatalf("after restart: %d %v", w.Code, w.Header())
			}
			if l.redisBreaker.isDown() || events(t, &logs, "redis_failover") != 1 || events(t, &logs, "redis_recovered") != 1 {
				t.Fatalf("down %v, log:\n%s", l.redisBreaker.isDown(), logs.String())
			}
			// Both lines in Traefik's JSON log shape: failover is a warning, recovery info.
			levels := map[string]string{}
			for _, line := range strings.Split(strings.TrimSpace(logs.String()), "\n") {
				var m map[string]any
				if err := json.Unmarshal([]byte(line), &m); err != nil {
					t.Fatalf("log line %q: %v", line, err)
				}
				ev, _ := m["event"].(string)
				if ev != "redis_failover" && ev != "redis_recovered" {
					continue
				}
				if m["middlewareName"] != "test" || m["component"] != "ratelimit" || m["message"] == "" || m["time"] == nil || m["plugin"] != nil || m["msg"] != nil {
					t.Errorf("line %v", m)
				}
				levels[ev], _ = m["level"].(string)
			}
			if levels["redis_failover"] != "warn" || levels["redis_recovered"] != "info" {
				t.Fatalf("levels %v in:\n%s", levels, logs.String())
			}
		})
	}
}

func TestPoolClosedWithContext(t *testing.T) {
	rd := startRedis(t)
	c := CreateConfig()
	c.Redis.Address = rd.addr()
	c.Limits = []Limit{{Requests: 1, Window: "1h"}}
	c.FailurePolicy = PolicyClosed
	ctx, cancel := context.WithCancel(context.Background())
	h, err := New(ctx, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {}), c, "ctx")
	if err != nil {
		t.Fatal(err)
	}
	if w := hit(h, "a"); w.Code != 200 {
		t.Fatalf("before cancel: %d", w.Code)
	}
	l := h.(*rateLimit)
	var logs bytes.Buffer
	l.logTo = &logs
	if n := serverClients(t, rd.addr()); n != 1 {
		t.Fatalf("redis has %d client connections, want the pool's one", n)
	}
	cancel()
	waitServerClients(t, rd.addr(), 0)
	// Requests still in flight after a reload get the policy, without a failover.
	if w := hit(h, "a"); w.Code != 503 || l.redisBreaker.isDown() || logs.Len() != 0 {
		t.Fatalf("after cancel: %d, down %v, log:\n%s", w.Code, l.redisBreaker.isDown(), logs.String())
	}
}

func TestPoolSharedPerRedisOptions(t *testing.T) {
	rd := startRedis(t)
	cfg := func(poolSize int) *Config {
		c := CreateConfig()
		c.Redis.Address = rd.addr()
		c.Redis.PoolSize = poolSize
		c.Limits = []Limit{{Requests: 10, Window: "1h"}}
		return c
	}
	ctx1, cancel1 := context.WithCancel(context.Background())
	ctx2, cancel2 := context.WithCancel(context.Background())
	ctx3, cancel3 := context.WithCancel(context.Background())
	defer cancel3()
	ok := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {})
	h1, err1 := New(ctx1, ok, cfg(16), "one")
	h2, err2 := New(ctx2, ok, cfg(16), "two")
	h3, err3 := New(ctx3, ok, cfg(4), "other-options")
	if err1 != nil || err2 != nil || err3 != nil {
		t.Fatal(err1, err2, err3)
	}
	// One after the other, the requests of h1 and h2 reuse one idle connection if they share
	// a pool; h3's options open a second.
	for _, h := range []http.Handler{h1, h2, h1, h2, h3} {
		if w := hit(h, "a"); w.Code != 200 {
			t.Fatalf("status %d", w.Code)
		}
	}
	if n := serverClients(t, rd.addr()); n != 2 {
		t.Fatalf("redis has %d client connections, want 2: one per pool (same options share one)", n)
	}
	if n := poolCount(rd.addr()); n != 2 {
		t.Fatalf("pools = %d, want 2", n)
	}
	cancel1()
	time.Sleep(50 * time.Millisecond)
	if w := hit(h2, "a"); w.Code != 200 {
		t.Fatalf("the pool closed while a user was alive: %d", w.Code)
	}
	cancel2()
	deadline := time.Now().Add(2 * time.Second)
	for poolCount(rd.addr()) != 1 && time.Now().Before(deadline) {
		time.Sleep(5 * time.Millisecond)
	}
	if poolCount(rd.addr()) != 1 {
		t.Fatalf("pools = %d after both users left, want 1", poolCount(rd.addr()))
	}
	// The shared pool closed its connection; h3's stays.
	waitServerClients(t, rd.addr(), 1)
}

// BenchmarkServeHTTPAllowed measures ServeHTTP, compiled, for an allowed request of a client
// whose command is cached (one EVALSHA on a loopback redis-server included); the interpreted
// figure is integration/plugintest's BenchmarkRateLimitAllowed.
func BenchmarkServeHTTPAllowed(b *testing.B) {
	rd := startRedis(b)
	l, _ := redisHandler(b, rd.addr(), time.Now, func(c *Config) {
		c.KeyPrefix = "bench"
		c.Limits = []Limit{{Requests: 1000000000, Window: "1h"}, {Requests: 1000000000, Window: "24h"}}
	})
	r := hitRequest("svc")
	b.ReportAllocs()
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		w := httptest.NewRecorder()
		l.ServeHTTP(w, r)
		if w.Code != 200 {
			b.Fatalf("status %d", w.Code)
		}
	}
}
