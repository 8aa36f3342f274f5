package plugintest

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/pavilion-trust/gateway/integration/echo"
	"github.com/pavilion-trust/gateway/integration/redistest"
	"github.com/pavilion-trust/gateway/integration/traefiktest"
	"github.com/redis/go-redis/v9"
)

// The rate limiter through real Traefik processes (the plugin interpreted by Traefik's own
// Yaegi) and a real redis-server: limits and headers, one budget shared by two instances, a
// Redis outage with each failure policy and the recovery, and the suite keyed by the verified
// token.

var (
	rlTraefikPlugins    = map[string]string{"ratelimit": rateLimitImport}
	suiteTraefikPlugins = map[string]string{"pavilion": suiteImport}
	rlAlgorithms        = []string{"sliding-window", "sliding-log", "gcra"}
	rlAlgorithmKey      = map[string]string{"sliding-window": "sw", "sliding-log": "sl", "gcra": "gcra"}
)

// rlRoute is one router with its own plugin middleware.
type rlRoute struct {
	name   string // router name; the middleware is name-mw; the path prefix /name/
	plugin string
	cfg    map[string]any
}

// rlDynamic renders the routers, their middlewares and the echo upstream.
func rlDynamic(upstreamURL string, routes ...rlRoute) (string, []string) {
	var b bytes.Buffer
	var names []string
	b.WriteString("http:\n  routers:\n")
	for _, r := range routes {
		fmt.Fprintf(&b, "    %s:\n      entryPoints: [web]\n      rule: PathPrefix(`/%s/`)\n      middlewares: [%s-mw]\n      service: upstream\n", r.name, r.name, r.name)
		names = append(names, r.name+"@file")
	}
	b.WriteString("  middlewares:\n")
	for _, r := range routes {
		b.WriteString(pluginMiddleware(r.name+"-mw", r.plugin, r.cfg))
	}
	fmt.Fprintf(&b, "  services:\n    upstream:\n      loadBalancer:\n        servers:\n          - url: %q\n", upstreamURL)
	return b.String(), names
}

// rlTraefikConfig limits each X-Auth-Client value to requests per hour (an hour, so that the
// test never sees the window move).
func rlTraefikConfig(addr, prefix, algorithm, policy string, requests int) map[string]any {
	return map[string]any{
		"redis":         map[string]any{"address": addr, "timeout": "1s"}, // see rlBase
		"keyPrefix":     prefix,
		"algorithm":     algorithm,
		"failurePolicy": policy,
		"sources":       []any{"header:X-Auth-Client"},
		"limits":        []any{map[string]any{"requests": strconv.Itoa(requests), "window": "1h"}},
	}
}

// rlAnswer is a response with its body read.
type rlAnswer struct {
	res  *http.Response
	body []byte
}

func (a rlAnswer) code() int              { return a.res.StatusCode }
func (a rlAnswer) get(name string) string { return a.res.Header.Get(name) }

var rlHTTP = &http.Client{Timeout: 10 * time.Second}

// rlTry sends GET url with headers given as name, value pairs; safe from any goroutine.
func rlTry(url string, headers ...string) (rlAnswer, error) {
	return rlTryWith(rlHTTP, url, headers...)
}

func rlTryWith(client *http.Client, url string, headers ...string) (rlAnswer, error) {
	req, err := http.NewRequest(http.MethodGet, url, nil)
	if err != nil {
		return rlAnswer{}, err
	}
	for i := 0; i+1 < len(headers); i += 2 {
		req.Header.Set(headers[i], headers[i+1])
	}
	res, err := client.Do(req)
	if err != nil {
		return rlAnswer{}, err
	}
	defer res.Body.Close()
	body, err := io.ReadAll(res.Body)
	return rlAnswer{res: res, body: body}, err
}

func rlDo(t *testing.T, url string, headers ...string) rlAnswer {
	t.Helper()
	a, err := rlTry(url, headers...)
	if err != nil {
		t.Fatal(err)
	}
	return a
}

// rlKeys lists the Redis keys matching pattern.
func rlKeys(t *testing.T, rdb *redis.Client, pattern string) []string {
	t.Helper()
	keys, err := rdb.Keys(context.Background(), pattern).Result()
	if err != nil {
		t.Fatalf("KEYS %s: %v", pattern, err)
	}
	return keys
}

// rlUpstreamSaw checks that an allowed request reached the echo upstream, with the client
// header it should have seen ("" = absent).
func rlUpstreamSaw(t *testing.T, a rlAnswer, client string) echo.Seen {
	t.Helper()
	seen := echo.Decode(t, a.body)
	if seen.Instance != "core-broker-1" {
		t.Fatalf("answer did not come from the upstream: %s", a.body)
	}
	if got := seen.Headers.Get("X-Auth-Client"); got != client {
		t.Fatalf("upstream saw X-Auth-Client %q, want %q", got, client)
	}
	return seen
}

// TestRateLimitTraefikLimits: for each algorithm, through Traefik, a client gets exactly its
// quota with consistent rate-limit headers, then 429 with Retry-After, the headers and the
// JSON body; refused requests are not counted; another client has its own budget, kept under
// its own Redis key.
func TestRateLimitTraefikLimits(t *testing.T) {
	rd := redistest.Start(t)
	rdb := redis.NewClient(&redis.Options{Addr: rd.Addr()})
	defer rdb.Close()
	up := echo.Start(t, "core-broker-1")
	var routes []rlRoute
	for _, alg := range rlAlgorithms {
		routes = append(routes, rlRoute{name: alg, plugin: "ratelimit", cfg: rlTraefikConfig(rd.Addr(), "lim-"+alg, alg, "local", 3)})
	}
	dyn, names := rlDynamic(up.URL, routes...)
	gw := traefiktest.Start(t, traefiktest.Options{Dynamic: dyn, Plugins: rlTraefikPlugins, WaitRouters: names, AbortOnPluginFailure: true})

	for _, alg := range rlAlgorithms {
		t.Run(alg, func(t *testing.T) {
			url := gw.URL + "/" + alg + "/api/v1/things"
			for i := 0; i < 3; i++ {
				a := rlDo(t, url, "X-Auth-Client", "alice")
				if a.code() != 200 {
					t.Fatalf("alice request %d: %d %s", i+1, a.code(), a.body)
				}
				checkRateLimitFields(t, i, a.res.Header)
				if a.get("X-RateLimit-Limit") != "3" || a.get("X-RateLimit-Remaining") != strconv.Itoa(2-i) {
					t.Fatalf("alice request %d: limit %q remaining %q", i+1, a.get("X-RateLimit-Limit"), a.get("X-RateLimit-Remaining"))
				}
				if !strings.Contains(a.get("RateLimit-Policy"), ";q=3;w=3600") {
					t.Fatalf("RateLimit-Policy %q", a.get("RateLimit-Policy"))
				}
				rlUpstreamSaw(t, a, "alice")
			}
			for i := 3; i < 5; i++ { // the second refusal shows the first was not counted
				a := rlDo(t, url, "X-Auth-Client", "alice")
				if a.code() != 429 {
					t.Fatalf("alice request %d: %d %s, want 429", i+1, a.code(), a.body)
				}
				checkRateLimitFields(t, i, a.res.Header)
				checkTooMany(t, i, a.res, a.body)
				if a.get("X-RateLimit-Remaining") != "0" || a.get("X-RateLimit-Limit") != "3" {
					t.Fatalf("429: limit %q remaining %q", a.get("X-RateLimit-Limit"), a.get("X-RateLimit-Remaining"))
				}
				if strings.Contains(string(a.body), "core-broker-1") {
					t.Fatal("a refused request reached the upstream")
				}
			}
			a := rlDo(t, url, "X-Auth-Client", "bob")
			if a.code() != 200 || a.get("X-RateLimit-Remaining") != "2" {
				t.Fatalf("bob, a separate client: %d remaining %q", a.code(), a.get("X-RateLimit-Remaining"))
			}
			rlUpstreamSaw(t, a, "bob")

			want := map[string]bool{
				"lim-" + alg + ":{x-auth-client=alice}:" + rlAlgorithmKey[alg] + ":1h": true,
				"lim-" + alg + ":{x-auth-client=bob}:" + rlAlgorithmKey[alg] + ":1h":   true,
			}
			keys := rlKeys(t, rdb, "lim-"+alg+":*")
			for _, k := range keys {
				if !want[k] {
					t.Fatalf("keys in Redis %q, want %v", keys, want)
				}
			}
			if len(keys) != len(want) {
				t.Fatalf("keys in Redis %q, want %v", keys, want)
			}
		})
	}
}

// TestRateLimitTraefikSharedRedis: two Traefik processes on one Redis share one budget. A
// concurrent burst of 40 requests of one client, 20 to each instance, admits exactly the
// limit of 10, for each algorithm.
func TestRateLimitTraefikSharedRedis(t *testing.T) {
	rd := redistest.Start(t)
	up := echo.Start(t, "core-broker-1")
	var routes []rlRoute
	for _, alg := range rlAlgorithms {
		routes = append(routes, rlRoute{name: alg, plugin: "ratelimit", cfg: rlTraefikConfig(rd.Addr(), "shared", alg, "local", 10)})
	}
	dyn, names := rlDynamic(up.URL, routes...)
	opts := traefiktest.Options{Dynamic: dyn, Plugins: rlTraefikPlugins, WaitRouters: names, AbortOnPluginFailure: true}
	gws := []*traefiktest.Traefik{traefiktest.Start(t, opts), traefiktest.Start(t, opts)}

	for _, alg := range rlAlgorithms {
		t.Run(alg, func(t *testing.T) {
			// Open a connection to each Traefik and from each to Redis first, so that the
			// burst is really split between the instances.
			for _, gw := range gws {
				if a := rlDo(t, gw.URL+"/"+alg+"/x", "X-Auth-Client", "warm"); a.code() != 200 {
					t.Fatalf("warm-up: %d", a.code())
				}
			}
			const total = 40
			codes, errs := rlBurst(total, func(i int) (rlAnswer, error) {
				return rlTry(gws[i%2].URL+"/"+alg+"/api/v1/things", "X-Auth-Client", "burst")
			})
			count := map[int]int{}
			perInstance := [2]int{}
			for i, c := range codes {
				if errs[i] != nil {
					t.Fatalf("request %d: %v", i, errs[i])
				}
				count[c]++
				if c == 200 {
					perInstance[i%2]++
				}
			}
			if count[200] != 10 || count[429] != total-10 {
				t.Fatalf("burst of %d over two instances: status counts %v, want exactly 10 × 200 and %d × 429", total, count, total-10)
			}
			t.Logf("%s: 10 admitted (%d by instance 1, %d by instance 2), %d refused", alg, perInstance[0], perInstance[1], count[429])
			// And afterwards both instances see the budget as spent.
			for k, gw := range gws {
				if a := rlDo(t, gw.URL+"/"+alg+"/x", "X-Auth-Client", "burst"); a.code() != 429 || a.get("X-RateLimit-Remaining") != "0" {
					t.Fatalf("instance %d after the burst: %d remaining %q", k+1, a.code(), a.get("X-RateLimit-Remaining"))
				}
			}
		})
	}
}

// TestRateLimitTraefikRedisOutage kills redis-server under two running Traefik instances and
// restarts it. During the outage: failurePolicy local limits each instance on its own,
// open lets everything through, closed answers 503. After the restart, without touching
// Traefik, every middleware writes to Redis again and the two instances share one budget.
func TestRateLimitTraefikRedisOutage(t *testing.T) {
	rd := redistest.Start(t)
	rdb := redis.NewClient(&redis.Options{Addr: rd.Addr(), MaxRetries: -1})
	defer rdb.Close()
	up := echo.Start(t, "core-broker-1")
	policies := []string{"local", "open", "closed"}
	var routes []rlRoute
	for _, p := range policies {
		routes = append(routes, rlRoute{name: p, plugin: "ratelimit", cfg: rlTraefikConfig(rd.Addr(), "out-"+p, "sliding-window", p, 3)})
	}
	dyn, names := rlDynamic(up.URL, routes...)
	opts := traefiktest.Options{Dynamic: dyn, Plugins: rlTraefikPlugins, WaitRouters: names, AbortOnPluginFailure: true}
	gw1 := traefiktest.Start(t, opts)
	gw2 := traefiktest.Start(t, opts)
	url := func(gw *traefiktest.Traefik, policy string) string { return gw.URL + "/" + policy + "/api/v1/x" }
	key := func(policy, client string) string { return "out-" + policy + ":{x-auth-client=" + client + "}:sw:1h" }

	// Before: Redis-backed.
	for _, p := range policies {
		if a := rlDo(t, url(gw1, p), "X-Auth-Client", "a"); a.code() != 200 || a.get("X-RateLimit-Remaining") != "2" {
			t.Fatalf("%s before the outage: %d remaining %q", p, a.code(), a.get("X-RateLimit-Remaining"))
		}
		if keys := rlKeys(t, rdb, key(p, "a")); len(keys) != 1 {
			t.Fatalf("%s before the outage: no key %s in Redis", p, key(p, "a"))
		}
	}

	rd.Kill()
	killed := time.Now()

	t.Run("local: in-memory limits per instance", func(t *testing.T) {
		for k, gw := range []*traefiktest.Traefik{gw1, gw2} {
			for i := 0; i < 3; i++ {
				a := rlDo(t, url(gw, "local"), "X-Auth-Client", "a")
				if a.code() != 200 || a.get("X-RateLimit-Remaining") != strconv.Itoa(2-i) {
					t.Fatalf("instance %d, request %d: %d remaining %q, want 200 and %d (an empty local budget)", k+1, i+1, a.code(), a.get("X-RateLimit-Remaining"), 2-i)
				}
			}
			a := rlDo(t, url(gw, "local"), "X-Auth-Client", "a")
			if a.code() != 429 {
				t.Fatalf("instance %d, request 4: %d, want 429 from the local limiter", k+1, a.code())
			}
			checkTooMany(t, 4, a.res, a.body)
		}
	})
	t.Run("open: everything passes, without rate-limit headers", func(t *testing.T) {
		for i := 0; i < 10; i++ {
			a := rlDo(t, url(gw1, "open"), "X-Auth-Client", "a")
			if a.code() != 200 || a.get("X-RateLimit-Limit") != "" {
				t.Fatalf("request %d: %d, X-RateLimit-Limit %q", i+1, a.code(), a.get("X-RateLimit-Limit"))
			}
			rlUpstreamSaw(t, a, "a")
		}
	})
	t.Run("closed: 503 rate_limiter_unavailable, Retry-After 1", func(t *testing.T) {
		for i := 0; i < 3; i++ {
			a := rlDo(t, url(gw1, "closed"), "X-Auth-Client", "a")
			var e struct {
				Error string `json:"error"`
			}
			if a.code() != 503 || a.get("Retry-After") != "1" || a.get("Content-Type") != "application/json" ||
				json.Unmarshal(a.body, &e) != nil || e.Error != "rate_limiter_unavailable" {
				t.Fatalf("request %d: %d %v %s", i+1, a.code(), a.res.Header, a.body)
			}
		}
	})
	if t.Failed() {
		return
	}
	// Keep the outage going past the breaker's first retries (1s, then 2s): the policies hold
	// and no request waits on Redis.
	for time.Since(killed) < 2500*time.Millisecond {
		start := time.Now()
		if a := rlDo(t, url(gw2, "closed"), "X-Auth-Client", "z"); a.code() != 503 {
			t.Fatalf("closed, Redis down %s: %d", time.Since(killed), a.code())
		}
		if a := rlDo(t, url(gw2, "open"), "X-Auth-Client", "z"); a.code() != 200 {
			t.Fatalf("open, Redis down %s: %d", time.Since(killed), a.code())
		}
		if a := rlDo(t, url(gw2, "local"), "X-Auth-Client", "z"); a.code() != 200 && a.code() != 429 {
			t.Fatalf("local, Redis down %s: %d", time.Since(killed), a.code())
		}
		if d := time.Since(start); d > 500*time.Millisecond {
			t.Fatalf("three requests during the outage took %s", d)
		}
		time.Sleep(50 * time.Millisecond)
	}

	rd.Restart()
	restarted := time.Now()
	t.Logf("Redis down for %s", restarted.Sub(killed).Round(time.Millisecond))

	// Poll (the breaker retries after 1s, then at doubling intervals) until each middleware of
	// each instance has written its probe key to the new, empty Redis.
	deadline := time.Now().Add(20 * time.Second)
	for _, p := range policies {
		for k, gw := range []*traefiktest.Traefik{gw1, gw2} {
			probe := "probe-" + strconv.Itoa(k+1)
			for {
				rlDo(t, url(gw, p), "X-Auth-Client", probe)
				if len(rlKeys(t, rdb, key(p, probe))) == 1 {
					t.Logf("%s, instance %d: Redis-backed again %s after the restart", p, k+1, time.Since(restarted).Round(time.Millisecond))
					break
				}
				if time.Now().After(deadline) {
					t.Fatalf("%s, instance %d: no key %s in Redis 20s after the restart", p, k+1, key(p, probe))
				}
				time.Sleep(100 * time.Millisecond)
			}
		}
	}

	// Both instances share one budget again, for every policy.
	for _, p := range policies {
		steps := []struct {
			gw        *traefiktest.Traefik
			status    int
			remaining string
		}{{gw1, 200, "2"}, {gw2, 200, "1"}, {gw1, 200, "0"}, {gw2, 429, "0"}, {gw1, 429, "0"}}
		for i, st := range steps {
			a := rlDo(t, url(st.gw, p), "X-Auth-Client", "c")
			if a.code() != st.status || a.get("X-RateLimit-Remaining") != st.remaining {
				t.Fatalf("%s after recovery, step %d: %d remaining %q, want %d %q", p, i, a.code(), a.get("X-RateLimit-Remaining"), st.status, st.remaining)
			}
		}
	}
	if keys := rlKeys(t, rdb, "out-*:{x-auth-client=c}:*"); len(keys) != 3 {
		t.Fatalf("keys of client c after recovery: %q", keys)
	}
}

// TestRateLimitTraefikSuite: the suite (requestId + jwt + rateLimit in one middleware) in
// Traefik. The rate-limit client is the verified token's azp: two service clients have
// separate budgets; an anonymous request (jwt optional) that sends X-Auth-Client: svc itself is
// not keyed by it, uses the anonymous budget and leaves svc's untouched; 429 and 401 answers
// carry the request id.
func TestRateLimitTraefikSuite(t *testing.T) {
	iss := suiteIssuer(t)
	rd := redistest.Start(t)
	rdb := redis.NewClient(&redis.Options{Addr: rd.Addr()})
	defer rdb.Close()
	up := echo.Start(t, "core-broker-1")
	dyn, names := rlDynamic(up.URL, rlRoute{name: "api", plugin: "pavilion", cfg: map[string]any{
		"requestId": map[string]any{"header": "X-Request-Id"},
		"jwt":       map[string]any{"issuer": iss.IssuerURL(), "audiences": []any{"core-broker"}, "optional": "true"},
		"rateLimit": map[string]any{
			"redis":     map[string]any{"address": rd.Addr()},
			"keyPrefix": "suite",
			"sources":   []any{"header:X-Auth-Client"},
			"limits":    []any{map[string]any{"requests": "2", "window": "1h"}},
		},
	}})
	gw := traefiktest.Start(t, traefiktest.Options{Dynamic: dyn, Plugins: suiteTraefikPlugins, WaitRouters: names, AbortOnPluginFailure: true})
	svc, err := iss.Token("svc")
	if err != nil {
		t.Fatal(err)
	}
	other, err := iss.Token("other")
	if err != nil {
		t.Fatal(err)
	}
	url := gw.URL + "/api/v1/things"
	checkID := func(what string, a rlAnswer) string {
		t.Helper()
		id := a.get("X-Request-Id")
		if len(id) != 32 {
			t.Fatalf("%s: X-Request-Id %q", what, id)
		}
		return id
	}

	// Anonymous requests claiming to be svc: the anonymous budget.
	for i := 0; i < 2; i++ {
		a := rlDo(t, url, "X-Auth-Client", "svc")
		if a.code() != 200 || a.get("X-RateLimit-Remaining") != strconv.Itoa(1-i) {
			t.Fatalf("anonymous %d: %d remaining %q %s", i+1, a.code(), a.get("X-RateLimit-Remaining"), a.body)
		}
		seen := rlUpstreamSaw(t, a, "") // the spoofed header was stripped
		if seen.Headers.Get("X-Request-Id") != checkID("anonymous", a) {
			t.Fatalf("upstream request id %q, response %q", seen.Headers.Get("X-Request-Id"), a.get("X-Request-Id"))
		}
	}
	a := rlDo(t, url, "X-Auth-Client", "svc")
	if a.code() != 429 {
		t.Fatalf("third anonymous request: %d, want 429 (one shared anonymous budget)", a.code())
	}
	checkTooMany(t, 3, a.res, a.body)
	checkID("anonymous 429", a)
	if keys := rlKeys(t, rdb, "suite:{x-auth-client=svc}*"); len(keys) != 0 {
		t.Fatalf("anonymous requests wrote svc's keys: %q", keys)
	}

	// svc's own budget is whole.
	for i := 0; i < 2; i++ {
		a := rlDo(t, url, "Authorization", "Bearer "+svc)
		if a.code() != 200 || a.get("X-RateLimit-Remaining") != strconv.Itoa(1-i) || a.get("X-RateLimit-Limit") != "2" {
			t.Fatalf("svc %d: %d limit %q remaining %q %s", i+1, a.code(), a.get("X-RateLimit-Limit"), a.get("X-RateLimit-Remaining"), a.body)
		}
		seen := rlUpstreamSaw(t, a, "svc")
		if seen.Headers.Get("X-Request-Id") != checkID("svc", a) {
			t.Fatalf("upstream request id %q, response %q", seen.Headers.Get("X-Request-Id"), a.get("X-Request-Id"))
		}
	}
	// A verified client that also sends X-Auth-Client: the header is replaced by the claim.
	a = rlDo(t, url, "Authorization", "Bearer "+svc, "X-Auth-Client", "other")
	if a.code() != 429 {
		t.Fatalf("svc over its limit (sending X-Auth-Client: other): %d, want 429", a.code())
	}
	checkTooMany(t, 3, a.res, a.body)
	checkID("svc 429", a)

	// Another service client: its own budget.
	a = rlDo(t, url, "Authorization", "Bearer "+other)
	if a.code() != 200 || a.get("X-RateLimit-Remaining") != "1" {
		t.Fatalf("other: %d remaining %q", a.code(), a.get("X-RateLimit-Remaining"))
	}
	rlUpstreamSaw(t, a, "other")

	// A bad token: 401 before the limiter, with the request id.
	a = rlDo(t, url, "Authorization", "Bearer garbage")
	if a.code() != 401 || strings.Contains(string(a.body), "core-broker-1") {
		t.Fatalf("bad token: %d %s", a.code(), a.body)
	}
	checkID("401", a)
	if a.get("X-RateLimit-Limit") != "" {
		t.Fatalf("401 went through the limiter: %v", a.res.Header)
	}

	keys := rlKeys(t, rdb, "suite:*")
	want := map[string]bool{"suite:{x-auth-client=svc}:sw:1h": true, "suite:{x-auth-client=other}:sw:1h": true}
	var anon int
	for _, k := range keys {
		if strings.HasPrefix(k, "suite:{anon") {
			anon++
			continue
		}
		if !want[k] {
			t.Fatalf("unexpected key %q in %q", k, keys)
		}
	}
	if anon != 1 || len(keys) != 3 {
		t.Fatalf("keys in Redis: %q, want svc's, other's and one anonymous", keys)
	}
}

// TestRateLimitTraefikPoolExhausted: more concurrent requests than Redis connections, with a
// short timeout, so that requests wait for a connection and some waits time out. Every
// answer must still be one the failure policy allows (200 or 429 with local, and 503 for a
// request that found no free connection in time: a busy pool is not an outage, and the local
// budget is not spent on it), never a 500 or a hang, and the middleware must keep answering
// afterwards.
//
// Under Yaegi v0.16.1 a timed-out wait panicked in resp's removeWaiter (`for i, x := range
// c.waiters` fails with "reflect: call of reflect.Value.Len on int Value") while holding the
// pool's mutex: that request got a 500 and every later request through the middleware hung.
func TestRateLimitTraefikPoolExhausted(t *testing.T) {
	rd := redistest.Start(t)
	up := echo.Start(t, "core-broker-1")
	cfg := rlTraefikConfig(rd.Addr(), "pool", "sliding-window", "local", 1000000)
	cfg["redis"] = map[string]any{"address": rd.Addr(), "poolSize": "1", "timeout": "2ms"}
	dyn, names := rlDynamic(up.URL, rlRoute{name: "api", plugin: "ratelimit", cfg: cfg})
	gw := traefiktest.Start(t, traefiktest.Options{Dynamic: dyn, Plugins: rlTraefikPlugins, WaitRouters: names, AbortOnPluginFailure: true})

	client := &http.Client{Timeout: 3 * time.Second} // a hang fails fast
	const total = 60
	codes, errs := rlBurst(total, func(i int) (rlAnswer, error) {
		return rlTryWith(client, gw.URL+"/api/x", "X-Auth-Client", "c"+strconv.Itoa(i%5))
	})
	count := map[int]int{}
	hung := 0
	for i, c := range codes {
		if errs[i] != nil {
			hung++
			continue
		}
		count[c]++
	}
	t.Logf("status counts: %v, no answer within 3s: %d", count, hung)
	if count[200]+count[429]+count[503] != total {
		t.Errorf("answers other than 200/429/503 with poolSize 1 under concurrency: %v", count)
	}
	if a, err := rlTryWith(client, gw.URL+"/api/x", "X-Auth-Client", "after"); err != nil || a.code() != 200 {
		t.Errorf("a request after the burst: %v %s", err, a.body)
	}
	if strings.Contains(gw.Logs(), "panic") {
		t.Errorf("the plugin panicked in Traefik (see the log)")
	}
}

// rlBurst sends total requests at once (send(i) for each i, all released together) and
// returns each one's status code, or its error.
func rlBurst(total int, send func(i int) (rlAnswer, error)) ([]int, []error) {
	codes := make([]int, total)
	errs := make([]error, total)
	start := make(chan struct{})
	var wg sync.WaitGroup
	for i := 0; i < total; i++ {
		wg.Add(1)
		go func(i int) {
			defer wg.Done()
			<-start
			a, err := send(i)
			if err != nil {
				errs[i] = err
				return
			}
			codes[i] = a.code()
		}(i)
	}
	close(start)
	wg.Wait()
	return codes, errs
}
