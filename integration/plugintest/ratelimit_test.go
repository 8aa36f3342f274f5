package plugintest

import (
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

	"github.com/pavilion-trust/gateway/integration/pluginharness"
	"github.com/pavilion-trust/gateway/integration/redistest"
	"github.com/pavilion-trust/gateway/plugins/ratelimit"
	"github.com/redis/go-redis/v9"
)

const rateLimitImport = "github.com/pavilion-trust/gateway/plugins/ratelimit"

func rateLimitBuilders(t testing.TB) []pluginharness.Builder {
	return pluginharness.Both(t, rateLimitImport, ratelimit.CreateConfig, ratelimit.New)
}

// rlStep sends times requests (default 1) and checks the last answer.
type rlStep struct {
	client    string        // X-Auth-Client ("" : none)
	remote    string        // RemoteAddr; default 192.0.2.10:40000
	xff       string        // X-Forwarded-For
	times     int           // default 1
	sleep     time.Duration // before sending
	status    int
	remaining string // X-RateLimit-Remaining; "-" means the rate-limit fields must be absent
	limit     string // X-RateLimit-Limit
	rateLimit string // exact RateLimit field, or a prefix when ending in "*"
	policy    string // exact RateLimit-Policy
}

type rlCase struct {
	desc   string
	config map[string]any // merged over rlBase
	steps  []rlStep
	// via2: steps with this index and above go through a second middleware built from the
	// same configuration (another gateway instance on the same Redis). 0: none.
	via2 int
}

func rlBase(addr string) map[string]any {
	return map[string]any{
		// 1 s, not the default 100 ms: a pause of a slow machine (a dial, a script load under
		// Yaegi) must not turn into a timeout and a fallback in tests that count exactly.
		"redis":  map[string]any{"address": addr, "timeout": "1s"},
		"limits": []any{map[string]any{"requests": "3", "window": "1h"}},
	}
}

func rlCases() []rlCase {
	basic := []rlStep{
		{client: "a", status: 200, remaining: "2", limit: "3", rateLimit: `"1h";r=2;t=*`, policy: `"1h";q=3;w=3600`},
		{client: "a", status: 200, remaining: "1"},
		{client: "a", status: 200, remaining: "0", rateLimit: `"1h";r=0;t=*`},
		{client: "a", status: 429, remaining: "0", limit: "3", rateLimit: `"1h";r=0;t=*`, policy: `"1h";q=3;w=3600`},
		{client: "a", times: 3, status: 429},
		{client: "b", status: 200, remaining: "2"},
	}
	var cases []rlCase
	for _, alg := range []string{"sliding-window", "sliding-log", "gcra"} {
		cases = append(cases, rlCase{desc: alg + ": N allowed, then 429 with headers; clients apart",
			config: map[string]any{"algorithm": alg}, steps: basic})
	}
	return append(cases,
		rlCase{desc: "default algorithm is sliding-window", steps: basic},
		rlCase{desc: "two instances on one Redis share one limit",
			steps: []rlStep{{client: "a", times: 2, status: 200, remaining: "1"}, {client: "a", status: 200, remaining: "0"}, {client: "a", status: 429}},
			via2:  1},
		rlCase{desc: "overrides: the client's own limits, exact match",
			config: map[string]any{"overrides": map[string]any{"partner-a": []any{map[string]any{"requests": "5", "window": "1h"}}}},
			steps: []rlStep{
				{client: "partner-a", times: 5, status: 200, remaining: "0", limit: "5", policy: `"1h";q=5;w=3600`},
				{client: "partner-a", status: 429},
				{client: "Partner-A", times: 3, status: 200, remaining: "0", limit: "3"},
				{client: "Partner-A", status: 429},
			}},
		rlCase{desc: "overrideList (label-safe form) merged with overrides: an IP and a dotted client key",
			config: map[string]any{
				"overrides": map[string]any{"partner-a": []any{map[string]any{"requests": "4", "window": "1h"}}},
				"overrideList": []any{
					map[string]any{"client": "partner.example", "limits": []any{map[string]any{"requests": "5", "window": "1h"}}},
					map[string]any{"client": "192.0.2.10", "limits": []any{map[string]any{"requests": "2", "window": "1h"}}},
				},
			},
			steps: []rlStep{
				{client: "partner.example", times: 5, status: 200, remaining: "0", limit: "5", policy: `"1h";q=5;w=3600`},
				{client: "partner.example", status: 429},
				{client: "partner-a", times: 4, status: 200, remaining: "0", limit: "4"},
				{client: "partner-a", status: 429},
				{remote: "192.0.2.10:40000", times: 2, status: 200, remaining: "0", limit: "2"},
				{remote: "192.0.2.10:40000", status: 429},
				{remote: "192.0.2.11:40000", status: 200, remaining: "2", limit: "3"},
				{client: "partner.example.org", status: 200, remaining: "2", limit: "3"},
			}},
		rlCase{desc: "several limits: the most restrictive is reported",
			config: map[string]any{"limits": []any{
				map[string]any{"requests": "10", "window": "1m"},
				map[string]any{"requests": "4", "window": "1h"},
			}},
			steps: []rlStep{
				{client: "a", status: 200, remaining: "3", limit: "4", rateLimit: `"1h";r=3;t=*`, policy: `"1m";q=10;w=60, "1h";q=4;w=3600`},
				{client: "a", times: 3, status: 200, remaining: "0"},
				{client: "a", status: 429, limit: "4"},
			}},
		rlCase{desc: "refused requests are not counted by the other limits (gcra, 2 per 2s and 3 per 1h)",
			config: map[string]any{"algorithm": "gcra", "limits": []any{
				map[string]any{"requests": "2", "window": "2s"},
				map[string]any{"requests": "3", "window": "1h"},
			}},
			steps: []rlStep{
				{client: "a", times: 2, status: 200},
				{client: "a", times: 3, status: 429, limit: "2"},
				// 1s later the 2s limit has room again; the hour limit counted 2, not 5.
				{client: "a", sleep: 1100 * time.Millisecond, status: 200, limit: "3", remaining: "0"},
				{client: "a", sleep: 1100 * time.Millisecond, status: 429, limit: "3"},
			}},
		rlCase{desc: "headers false: no rate-limit fields, Retry-After on 429",
			config: map[string]any{"headers": "false"},
			steps: []rlStep{
				{client: "a", times: 3, status: 200, remaining: "-"},
				{client: "a", status: 429, remaining: "-"},
			}},
		rlCase{desc: "X-Forwarded-For from a trusted proxy: right-most untrusted address",
			config: map[string]any{"sources": []any{"ip"}, "trustedProxies": []any{"10.0.0.0/8"}},
			steps: []rlStep{
				{remote: "10.0.0.1:5000", xff: "198.51.100.7, 203.0.113.5, 10.0.0.9", times: 3, status: 200},
				{remote: "10.0.0.2:5000", xff: "203.0.113.5", status: 429},
				{remote: "10.0.0.1:5000", xff: "203.0.113.6", status: 200, remaining: "2"},
			}},
		rlCase{desc: "X-Forwarded-For from an untrusted peer is ignored",
			config: map[string]any{"sources": []any{"ip"}, "trustedProxies": []any{"10.0.0.0/8"}},
			steps: []rlStep{
				{remote: "192.0.2.99:5000", xff: "203.0.113.1", times: 3, status: 200},
				{remote: "192.0.2.99:5000", xff: "203.0.113.2", status: 429},
				{remote: "192.0.2.98:5000", xff: "203.0.113.1", status: 200, remaining: "2"},
			}},
		rlCase{desc: "header source wins over ip; no value at all: one anonymous budget",
			config: map[string]any{"sources": "header:X-Api-Key"},
			steps: []rlStep{
				{remote: "192.0.2.1:1", times: 2, status: 200},
				{remote: "192.0.2.2:1", status: 200, remaining: "0"},
				{remote: "192.0.2.3:1", status: 429},
			}},
	)
}

func TestRateLimitCases(t *testing.T) {
	rd := redistest.Start(t)
	for _, b := range rateLimitBuilders(t) {
		t.Run(b.Name, func(t *testing.T) {
			for i, tc := range rlCases() {
				t.Run(tc.desc, func(t *testing.T) {
					ctx, cancel := context.WithCancel(context.Background())
					defer cancel()
					cfg := merge(rlBase(rd.Addr()), tc.config)
					cfg["keyPrefix"] = "t" + strconv.Itoa(i) + b.Name
					h, err := b.New(ctx, okHandler(), cfg, "api")
					if err != nil {
						t.Fatalf("New: %v", err)
					}
					h2 := h
					if tc.via2 > 0 {
						if h2, err = b.New(ctx, okHandler(), cfg, "api"); err != nil {
							t.Fatal(err)
						}
					}
					for si, st := range tc.steps {
						target := h
						if tc.via2 > 0 && si >= tc.via2 {
							target = h2
						}
						time.Sleep(st.sleep)
						runStep(t, target, si, st)
					}
				})
			}
		})
	}
}

func okHandler() http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { w.WriteHeader(http.StatusOK) })
}

func rlRequest(st rlStep) *http.Request {
	r := httptest.NewRequest(http.MethodGet, "/api/v1/things", nil)
	r.RemoteAddr = "192.0.2.10:40000"
	if st.remote != "" {
		r.RemoteAddr = st.remote
	}
	if st.client != "" {
		r.Header.Set("X-Auth-Client", st.client)
	}
	if st.xff != "" {
		r.Header.Set("X-Forwarded-For", st.xff)
	}
	return r
}

func runStep(t *testing.T, h http.Handler, si int, st rlStep) {
	t.Helper()
	n := st.times
	if n == 0 {
		n = 1
	}
	var res *http.Response
	var body []byte
	for k := 0; k < n; k++ {
		w := httptest.NewRecorder()
		h.ServeHTTP(w, rlRequest(st))
		res = w.Result()
		body, _ = io.ReadAll(res.Body)
		if k < n-1 && res.StatusCode != st.status {
			t.Fatalf("step %d, request %d/%d: status %d, want %d; body %s", si, k+1, n, res.StatusCode, st.status, body)
		}
	}
	if res.StatusCode != st.status {
		t.Fatalf("step %d: status %d, want %d; body %s; headers %v", si, res.StatusCode, st.status, body, res.Header)
	}
	hd := res.Header
	if st.remaining == "-" {
		for _, name := range []string{"X-RateLimit-Limit", "X-RateLimit-Remaining", "X-RateLimit-Reset", "RateLimit", "RateLimit-Policy"} {
			if hd.Get(name) != "" {
				t.Fatalf("step %d: %s = %q, want it absent", si, name, hd.Get(name))
			}
		}
	} else {
		if st.status == 200 || st.status == 429 {
			checkRateLimitFields(t, si, hd)
		}
		if st.remaining != "" && hd.Get("X-RateLimit-Remaining") != st.remaining {
			t.Fatalf("step %d: X-RateLimit-Remaining %q, want %q", si, hd.Get("X-RateLimit-Remaining"), st.remaining)
		}
	}
	if st.limit != "" && hd.Get("X-RateLimit-Limit") != st.limit {
		t.Fatalf("step %d: X-RateLimit-Limit %q, want %q", si, hd.Get("X-RateLimit-Limit"), st.limit)
	}
	if st.rateLimit != "" && !matchStar(hd.Get("RateLimit"), st.rateLimit) {
		t.Fatalf("step %d: RateLimit %q, want %q", si, hd.Get("RateLimit"), st.rateLimit)
	}
	if st.policy != "" && hd.Get("RateLimit-Policy") != st.policy {
		t.Fatalf("step %d: RateLimit-Policy %q, want %q", si, hd.Get("RateLimit-Policy"), st.policy)
	}
	if st.status == 429 {
		checkTooMany(t, si, res, body)
	}
}

// checkRateLimitFields checks that the five fields are present and agree with each other.
func checkRateLimitFields(t *testing.T, si int, hd http.Header) {
	t.Helper()
	rem := hd.Get("X-RateLimit-Remaining")
	reset := hd.Get("X-RateLimit-Reset")
	if _, err := strconv.Atoi(hd.Get("X-RateLimit-Limit")); err != nil {
		t.Fatalf("step %d: X-RateLimit-Limit %q", si, hd.Get("X-RateLimit-Limit"))
	}
	if n, err := strconv.Atoi(rem); err != nil || n < 0 {
		t.Fatalf("step %d: X-RateLimit-Remaining %q", si, rem)
	}
	if n, err := strconv.Atoi(reset); err != nil || n < 0 {
		t.Fatalf("step %d: X-RateLimit-Reset %q", si, reset)
	}
	rl := hd.Get("RateLimit")
	if !strings.HasPrefix(rl, `"`) || !strings.HasSuffix(rl, ";r="+rem+";t="+reset) {
		t.Fatalf("step %d: RateLimit %q does not match r=%s t=%s", si, rl, rem, reset)
	}
	name := rl[:strings.Index(rl, ";")]
	if !strings.Contains(hd.Get("RateLimit-Policy"), name+";q="+hd.Get("X-RateLimit-Limit")+";w=") {
		t.Fatalf("step %d: RateLimit-Policy %q has no item %s;q=%s", si, hd.Get("RateLimit-Policy"), name, hd.Get("X-RateLimit-Limit"))
	}
}

func checkTooMany(t *testing.T, si int, res *http.Response, body []byte) {
	t.Helper()
	ra, err := strconv.Atoi(res.Header.Get("Retry-After"))
	if err != nil || ra < 1 {
		t.Fatalf("step %d: Retry-After %q", si, res.Header.Get("Retry-After"))
	}
	if ct := res.Header.Get("Content-Type"); ct != "application/json" {
		t.Fatalf("step %d: Content-Type %q", si, ct)
	}
	var e struct {
		Error       string `json:"error"`
		Description string `json:"error_description"`
		RetryAfter  int    `json:"retry_after"`
	}
	if err := json.Unmarshal(body, &e); err != nil || e.Error != "rate_limited" || e.Description == "" || e.RetryAfter != ra {
		t.Fatalf("step %d: body %s (%v)", si, body, err)
	}
}

// TestRateLimitRedisOutage kills Redis under a running middleware and restarts it: each
// failure policy applies during the outage, and limiting goes back to Redis (shared between
// instances) without rebuilding the middleware.
func TestRateLimitRedisOutage(t *testing.T) {
	rd := redistest.Start(t)
	rdb := redis.NewClient(&redis.Options{Addr: rd.Addr()})
	defer rdb.Close()
	for _, b := range rateLimitBuilders(t) {
		t.Run(b.Name, func(t *testing.T) {
			for _, policy := range []string{"local", "open", "closed"} {
				t.Run(policy, func(t *testing.T) {
					if !rd.Running() {
						rd.Restart()
					}
					ctx, cancel := context.WithCancel(context.Background())
					defer cancel()
					cfg := merge(rlBase(rd.Addr()), map[string]any{"failurePolicy": policy, "keyPrefix": "o-" + policy + b.Name})
					h1, err := b.New(ctx, okHandler(), cfg, "api")
					if err != nil {
						t.Fatal(err)
					}
					h2, err := b.New(ctx, okHandler(), cfg, "api")
					if err != nil {
						t.Fatal(err)
					}
					runStep(t, h1, 0, rlStep{client: "a", status: 200, remaining: "2"})
					rd.Kill()

					switch policy {
					case "local":
						// Each instance limits on its own, from an empty budget.
						runStep(t, h1, 1, rlStep{client: "a", times: 3, status: 200, remaining: "0"})
						runStep(t, h1, 2, rlStep{client: "a", status: 429})
						runStep(t, h2, 3, rlStep{client: "a", times: 3, status: 200, remaining: "0"})
					case "open":
						runStep(t, h1, 1, rlStep{client: "a", times: 10, status: 200, remaining: "-"})
					case "closed":
						for k := 0; k < 3; k++ {
							w := httptest.NewRecorder()
							h1.ServeHTTP(w, rlRequest(rlStep{client: "a"}))
							if w.Code != 503 || w.Header().Get("Retry-After") != "1" ||
								!strings.Contains(w.Body.String(), `"error":"rate_limiter_unavailable"`) {
								t.Fatalf("closed: %d %v %s", w.Code, w.Header(), w.Body)
							}
						}
					}

					// While backing off, requests are answered at once, without waiting on
					// Redis timeouts.
					start := time.Now()
					for k := 0; k < 20; k++ {
						w := httptest.NewRecorder()
						h1.ServeHTTP(w, rlRequest(rlStep{client: "x" + strconv.Itoa(k)}))
					}
					if d := time.Since(start); d > 500*time.Millisecond {
						t.Fatalf("20 requests during the outage took %s", d)
					}

					rd.Restart()
					time.Sleep(1100 * time.Millisecond) // the first backoff
					// Back on Redis (empty after the restart): the instances share one budget.
					runStep(t, h1, 10, rlStep{client: "a", status: 200, remaining: "2"})
					runStep(t, h2, 11, rlStep{client: "a", status: 200, remaining: "1"})
					runStep(t, h1, 12, rlStep{client: "a", status: 200, remaining: "0"})
					runStep(t, h2, 13, rlStep{client: "a", status: 429})
					keys, err := rdb.Keys(context.Background(), "o-"+policy+b.Name+":*").Result()
					if err != nil || len(keys) != 1 || keys[0] != "o-"+policy+b.Name+":{x-auth-client=a}:sw:1h" {
						t.Fatalf("keys in Redis: %q %v", keys, err)
					}
				})
			}
		})
	}
}

func TestRateLimitConfigErrors(t *testing.T) {
	tests := []struct {
		desc   string
		config map[string]any
		want   []string
	}{
		{desc: "limits required", config: map[string]any{}, want: []string{`ratelimit "api": limits: required`}},
		{desc: "window without unit", config: map[string]any{"limits": []any{
			map[string]any{"requests": "1", "window": "1s"}, map[string]any{"requests": "5", "window": "1"},
		}}, want: []string{`ratelimit "api": limits[1].window: invalid duration "1"`}},
		{desc: "every problem at once", config: map[string]any{
			"limits":         []any{map[string]any{"requests": "0", "window": "1m"}},
			"algorithm":      "leaky",
			"sources":        []any{"cookie:x"},
			"trustedProxies": []any{"10.0.0.0/99"},
			"failurePolicy":  "maybe",
			"redis":          map[string]any{"address": "nohost", "timeout": "5"},
			"overrides":      map[string]any{"p": []any{map[string]any{"requests": "1", "window": "2ms"}}},
		}, want: []string{"limits[0].requests:", `algorithm: "leaky"`, `sources[0]: "cookie:x"`, `trustedProxies[0]: "10.0.0.0/99"`,
			`failurePolicy: "maybe"`, `redis.address: "nohost"`, `redis.timeout: invalid duration "5"`, `overrides["p"][0].window: "2ms"`}},
		{desc: "a client in overrides and overrideList", config: map[string]any{
			"limits":       []any{map[string]any{"requests": "1", "window": "1m"}},
			"overrides":    map[string]any{"10.0.0.7": []any{map[string]any{"requests": "5", "window": "1m"}}},
			"overrideList": []any{map[string]any{"client": "10.0.0.7", "limits": []any{map[string]any{"requests": "9", "window": "1m"}}}},
		}, want: []string{`ratelimit "api": overrideList[0].client: "10.0.0.7" is also given by overrides["10.0.0.7"]`}},
		{desc: "overrideList: a client twice, no client, no limits, a bad window", config: map[string]any{
			"limits": []any{map[string]any{"requests": "1", "window": "1m"}},
			"overrideList": []any{
				map[string]any{"client": "a.b", "limits": []any{map[string]any{"requests": "5", "window": "1m"}}},
				map[string]any{"client": "a.b", "limits": []any{map[string]any{"requests": "6", "window": "1m"}}},
				map[string]any{"limits": []any{map[string]any{"requests": "6", "window": "1m"}}},
				map[string]any{"client": "c"},
				map[string]any{"client": "d", "limits": []any{map[string]any{"requests": "6", "window": "90"}}},
			},
		}, want: []string{`overrideList[1].client: "a.b" is also given by overrideList[0]`, `overrideList[2].client: required`,
			`overrideList[3].limits: needs at least one`, `overrideList[4].limits[0].window: invalid duration "90"`}},
		{desc: "redis topology and TLS options", config: map[string]any{
			"limits": []any{map[string]any{"requests": "1", "window": "1s"}},
			"redis": map[string]any{"sentinel": map[string]any{"addresses": []any{"10.0.0.1:26379", "nohost"}, "username": "s"},
				"tlsCA": "/nonexistent/ca.pem", "tlsCert": "/nonexistent/client.pem"},
		}, want: []string{`redis.sentinel.addresses[1]: "nohost" is not host:port`, `redis.sentinel.masterName: required`,
			`redis.sentinel.username: set without redis.sentinel.password`, `redis.tlsCA: cannot read "/nonexistent/ca.pem": no such file`,
			`redis.tlsCert: tlsCert and tlsKey go together`}},
		{desc: "two topologies", config: map[string]any{
			"limits": []any{map[string]any{"requests": "1", "window": "1s"}},
			"redis": map[string]any{"sentinel": map[string]any{"addresses": []any{"10.0.0.1:26379"}, "masterName": "m"},
				"cluster": map[string]any{"addresses": []any{"10.0.0.2:6379"}}, "db": "2"},
		}, want: []string{`redis.cluster.addresses: set together with sentinel.addresses`}},
		{desc: "cluster with a db", config: map[string]any{
			"limits": []any{map[string]any{"requests": "1", "window": "1s"}},
			"redis":  map[string]any{"cluster": map[string]any{"addresses": []any{"10.0.0.2:6379"}}, "db": "2"},
		}, want: []string{`redis.db: Redis Cluster has db 0 only, got 2`}},
	}
	for _, b := range rateLimitBuilders(t) {
		t.Run(b.Name, func(t *testing.T) {
			for _, tc := range tests {
				t.Run(tc.desc, func(t *testing.T) {
					h, err := b.New(context.Background(), okHandler(), tc.config, "api")
					if err == nil || h != nil {
						t.Fatalf("New succeeded")
					}
					for _, w := range tc.want {
						if !strings.Contains(err.Error(), w) {
							t.Errorf("error %q\nwant it to contain %q", err, w)
						}
					}
				})
			}
		})
	}
}

// BenchmarkRateLimitAllowed measures the per-request cost of an allowed request (one EVALSHA
// on a loopback redis-server included), compiled and interpreted.
func BenchmarkRateLimitAllowed(b *testing.B) {
	rd := redistest.Start(b)
	for _, bl := range rateLimitBuilders(b) {
		b.Run(bl.Name, func(b *testing.B) {
			ctx, cancel := context.WithCancel(context.Background())
			defer cancel()
			cfg := merge(rlBase(rd.Addr()), map[string]any{
				"keyPrefix": "bench" + bl.Name,
				"limits":    []any{map[string]any{"requests": "1000000000", "window": "1h"}, map[string]any{"requests": "1000000000", "window": "24h"}},
			})
			h, err := bl.New(ctx, http.HandlerFunc(func(http.ResponseWriter, *http.Request) {}), cfg, "bench")
			if err != nil {
				b.Fatal(err)
			}
			r := httptest.NewRequest(http.MethodGet, "/api/v1/x", nil)
			r.Header.Set("X-Auth-Client", "svc")
			serveN(b, h, r)
		})
	}
}

// TestRateLimitConcurrent: 200 concurrent requests through two instances on one Redis, for
// one client with a limit of 50: exactly 50 pass, for each algorithm (check-and-count is one
// atomic script).
func TestRateLimitConcurrent(t *testing.T) {
	rd := redistest.Start(t)
	for _, b := range rateLimitBuilders(t) {
		t.Run(b.Name, func(t *testing.T) {
			for _, alg := range []string{"sliding-window", "sliding-log", "gcra"} {
				t.Run(alg, func(t *testing.T) {
					ctx, cancel := context.WithCancel(context.Background())
					defer cancel()
					cfg := merge(rlBase(rd.Addr()), map[string]any{
						"algorithm": alg, "keyPrefix": "conc-" + alg + b.Name,
						"limits": []any{map[string]any{"requests": "50", "window": "1h"}},
						"redis":  map[string]any{"address": rd.Addr(), "timeout": "2s", "poolSize": "4"},
					})
					var hs []http.Handler
					for k := 0; k < 2; k++ {
						h, err := b.New(ctx, okHandler(), cfg, "api")
						if err != nil {
							t.Fatal(err)
						}
						hs = append(hs, h)
					}
					var mu sync.Mutex
					codes := map[int]int{}
					var wg sync.WaitGroup
					for g := 0; g < 8; g++ {
						wg.Add(1)
						go func(g int) {
							defer wg.Done()
							for k := 0; k < 25; k++ {
								w := httptest.NewRecorder()
								hs[g%2].ServeHTTP(w, rlRequest(rlStep{client: "shared"}))
								mu.Lock()
								codes[w.Code]++
								mu.Unlock()
							}
						}(g)
					}
					wg.Wait()
					if codes[200] != 50 || codes[429] != 150 {
						t.Fatalf("answers %v, want 50 x 200 and 150 x 429", codes)
					}
				})
			}
		})
	}
}
