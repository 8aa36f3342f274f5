package plugintest

import (
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/pavilion-trust/gateway/integration/echo"
	"github.com/pavilion-trust/gateway/integration/redistest"
	"github.com/pavilion-trust/gateway/integration/traefiktest"
)

// The rate limiter on production Redis topologies, through real Traefik (the plugins
// interpreted by Traefik's Yaegi): TLS with a private CA, client certificates and an ACL
// user; Sentinel with a failover; Cluster with a reshard and failovers under load.

var topoPlugins = map[string]string{"ratelimit": rateLimitImport, "pavilion": suiteImport, "health": healthImport}

// topoConfig is rlTraefikConfig with a whole redis section.
func topoConfig(redisCfg map[string]any, prefix, algorithm, policy string, requests int) map[string]any {
	c := rlTraefikConfig("", prefix, algorithm, policy, requests)
	c["redis"] = redisCfg
	return c
}

// traefikOut is what Traefik's process wrote on stdout and stderr (the plugins' operator
// log lines are on stderr).
func traefikOut(gw *traefiktest.Gateway) string {
	b, _ := os.ReadFile(filepath.Join(gw.Dir, "traefik.out"))
	return string(b)
}

// metricValue sums the series of name whose labels contain every one of labels, from the
// suite's metrics endpoint at url.
func metricValue(t *testing.T, url, name string, labels ...string) int64 {
	t.Helper()
	a := rlDo(t, url)
	if a.code() != 200 {
		t.Fatalf("metrics: %d %s", a.code(), a.body)
	}
	var sum int64
	for _, line := range strings.Split(string(a.body), "\n") {
		if !strings.HasPrefix(line, name+"{") && !strings.HasPrefix(line, name+" ") {
			continue
		}
		ok := true
		for _, l := range labels {
			if !strings.Contains(line, l) {
				ok = false
			}
		}
		if !ok {
			continue
		}
		f := strings.Fields(line)
		v, err := strconv.ParseFloat(f[len(f)-1], 64)
		if err == nil {
			sum += int64(v)
		}
	}
	return sum
}

// TestRateLimitTraefikRedisTLS: Redis on its TLS port only, client certificates required
// (tls-auth-clients yes), the default user off and an ACL user. The right CA, client
// certificate and user: limits enforced; a foreign CA, or no client certificate: a clear
// error in the operator log and the failure policy (closed: 503). The health plugin's Redis
// check takes the same options.
func TestRateLimitTraefikRedisTLS(t *testing.T) {
	rd, pki := redistest.StartMTLS(t, "--user", "default", "off", "--user", "gw", "on", ">gw-secret", "~*", "&*", "+@all")
	up := echo.Start(t, "core-broker-1")
	good := map[string]any{"address": rd.Addr(), "username": "gw", "password": "gw-secret",
		"tlsCA": pki.CA, "tlsCert": pki.ClientCert, "tlsKey": pki.ClientKey, "timeout": "500ms"}
	wrongCA := map[string]any{"address": rd.Addr(), "username": "gw", "password": "gw-secret",
		"tlsCA": pki.OtherCA, "tlsCert": pki.ClientCert, "tlsKey": pki.ClientKey, "timeout": "500ms"}
	noCert := map[string]any{"address": rd.Addr(), "username": "gw", "password": "gw-secret", "tlsCA": pki.CA, "timeout": "500ms"}
	healthOf := func(r map[string]any) map[string]any {
		return map[string]any{"redis": r, "cacheFor": "0s"}
	}
	dyn, names := rlDynamic(up.URL,
		rlRoute{name: "good", plugin: "ratelimit", cfg: topoConfig(good, "tls-good", "gcra", "closed", 3)},
		rlRoute{name: "suite", plugin: "pavilion", cfg: map[string]any{"rateLimit": topoConfig(good, "tls-suite", "sliding-log", "closed", 2)}},
		rlRoute{name: "wrongca", plugin: "ratelimit", cfg: topoConfig(wrongCA, "tls-wrong", "gcra", "closed", 3)},
		rlRoute{name: "nocert", plugin: "ratelimit", cfg: topoConfig(noCert, "tls-nocert", "gcra", "closed", 3)},
		rlRoute{name: "health", plugin: "health", cfg: healthOf(good)},
		rlRoute{name: "healthbad", plugin: "health", cfg: healthOf(wrongCA)},
	)
	gw := traefiktest.Start(t, traefiktest.Options{Dynamic: dyn, Plugins: topoPlugins, WaitRouters: names, AbortOnPluginFailure: true})

	for _, r := range []struct {
		route string
		limit int
	}{{"good", 3}, {"suite", 2}} {
		for i := 0; i < r.limit+2; i++ {
			a := rlDo(t, gw.URL+"/"+r.route+"/x", "X-Auth-Client", "alice")
			want := 200
			if i >= r.limit {
				want = 429
			}
			if a.code() != want {
				t.Fatalf("%s request %d: %d %s, want %d", r.route, i+1, a.code(), a.body, want)
			}
		}
	}
	for _, route := range []string{"wrongca", "nocert"} {
		for i := 0; i < 3; i++ {
			a := rlDo(t, gw.URL+"/"+route+"/x", "X-Auth-Client", "alice")
			if a.code() != 503 || !strings.Contains(string(a.body), "rate_limiter_unavailable") {
				t.Fatalf("%s request %d: %d %s, want 503 (failurePolicy closed)", route, i+1, a.code(), a.body)
			}
		}
	}
	if a := rlDo(t, gw.URL+"/health/x"); a.code() != 200 || !strings.Contains(string(a.body), `"pass"`) {
		t.Fatalf("health with the right CA: %d %s", a.code(), a.body)
	}
	if a := rlDo(t, gw.URL+"/healthbad/x"); a.code() != 503 {
		t.Fatalf("health with a foreign CA: %d %s", a.code(), a.body)
	}
	out := traefikOut(gw)
	for _, want := range []string{`"middleware":"wrongca-mw@file","msg":"redis unavailable (resp: tls: failed to verify certificate: x509: certificate signed by unknown authority`,
		`"middleware":"nocert-mw@file","msg":"redis unavailable (`} {
		if !strings.Contains(out, want) {
			t.Errorf("operator log lacks %q:\n%s", want, out)
		}
	}
	if strings.Contains(out, "gw-secret") {
		t.Error("the Redis password is in Traefik's output")
	}
}

// topoLoad sends requests from workers goroutines, each cycling over its own clients, to
// url until stop is closed; it records per client the admitted (200) and refused (429)
// answers, the 503s, other answers, and the longest request.
type topoLoad struct {
	mu       sync.Mutex
	ok, lim  map[string]int
	status   map[int]int
	errs     int
	longest  time.Duration
	requests int
}

func newTopoLoad() *topoLoad {
	return &topoLoad{ok: map[string]int{}, lim: map[string]int{}, status: map[int]int{}}
}

func (l *topoLoad) run(url string, clients []string, workers int, stop <-chan struct{}) *sync.WaitGroup {
	var wg sync.WaitGroup
	for w := 0; w < workers; w++ {
		wg.Add(1)
		go func(w int) {
			defer wg.Done()
			for i := 0; ; i++ {
				select {
				case <-stop:
					return
				default:
				}
				c := clients[(w+i*workers)%len(clients)]
				start := time.Now()
				a, err := rlTry(url, "X-Auth-Client", c)
				d := time.Since(start)
				l.mu.Lock()
				l.requests++
				if d > l.longest {
					l.longest = d
				}
				if err != nil {
					l.errs++
				} else {
					l.status[a.code()]++
					if a.code() == 200 {
						l.ok[c]++
					} else if a.code() == 429 {
						l.lim[c]++
					}
				}
				l.mu.Unlock()
			}
		}(w)
	}
	return &wg
}

// sendEach sends n requests for each client (sequentially per client, clients in parallel
// over workers) and returns the admitted count per client and every status seen.
func sendEach(t *testing.T, url string, clients []string, n, workers int) (map[string]int, map[int]int) {
	t.Helper()
	ok := map[string]int{}
	statuses := map[int]int{}
	var mu sync.Mutex
	var wg sync.WaitGroup
	next := make(chan string)
	for w := 0; w < workers; w++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for c := range next {
				for i := 0; i < n; i++ {
					a, err := rlTry(url, "X-Auth-Client", c)
					mu.Lock()
					if err != nil {
						statuses[-1]++
					} else {
						statuses[a.code()]++
						if a.code() == 200 {
							ok[c]++
						}
					}
					mu.Unlock()
				}
			}
		}()
	}
	for _, c := range clients {
		next <- c
	}
	close(next)
	wg.Wait()
	return ok, statuses
}

func clientNames(prefix string, n int) []string {
	var out []string
	for i := 0; i < n; i++ {
		out = append(out, fmt.Sprintf("%s-%d", prefix, i))
	}
	return out
}

// TestRateLimitTraefikSentinelFailover: a primary, a replica and three sentinels. Under steady
// traffic through Traefik, SIGKILL the primary: the sentinels promote the replica and the
// limiter follows without a restart; no request waits longer than the Redis bounds; the
// operator log and the metrics name the new primary; limits are enforced afterwards.
func TestRateLimitTraefikSentinelFailover(t *testing.T) {
	set := redistest.StartSentinels(t)
	up := echo.Start(t, "core-broker-1")
	var sentinels []any
	for _, a := range set.SentinelAddrs() {
		sentinels = append(sentinels, a)
	}
	redisCfg := map[string]any{"sentinel": map[string]any{"masterName": set.MasterName, "addresses": sentinels},
		"timeout": "200ms", "dialTimeout": "200ms"}
	const limit = 5
	dyn, names := rlDynamic(up.URL,
		rlRoute{name: "rl", plugin: "pavilion", cfg: map[string]any{"rateLimit": topoConfig(redisCfg, "sent", "sliding-log", "closed", limit)}},
		rlRoute{name: "metrics", plugin: "pavilion", cfg: map[string]any{"metrics": map[string]any{"enabled": "true"}}},
	)
	gw := traefiktest.Start(t, traefiktest.Options{Dynamic: dyn, Plugins: topoPlugins, WaitRouters: names, AbortOnPluginFailure: true})
	url := gw.URL + "/rl/x"

	ok, st := sendEach(t, url, clientNames("before", 20), limit+2, 4)
	for c, n := range ok {
		if n != limit {
			t.Fatalf("before the failover: %s admitted %d, want %d (statuses %v)", c, n, limit, st)
		}
	}
	if st[200] != 20*limit || st[429] != 40 {
		t.Fatalf("before the failover: statuses %v", st)
	}

	// Steady traffic of fresh clients, each far below its limit per window... and then over.
	load := newTopoLoad()
	stop := make(chan struct{})
	wg := load.run(url, clientNames("steady", 50), 4, stop)
	time.Sleep(500 * time.Millisecond)
	oldPrimary := set.Primary.Addr()
	set.Primary.Kill()
	killed := time.Now()
	var newPrimary string
	deadline := time.Now().Add(30 * time.Second)
	for {
		p, err := set.CurrentPrimary()
		if err == nil && p != oldPrimary {
			newPrimary = p
			break
		}
		if time.Now().After(deadline) {
			close(stop)
			wg.Wait()
			t.Fatalf("the sentinels did not promote the replica within 30s")
		}
		time.Sleep(100 * time.Millisecond)
	}
	promoted := time.Since(killed)
	// The limiter follows: a fresh client's request is answered from Redis (200 with its
	// remaining quota, not 503) within a few seconds of the promotion.
	var followed time.Duration
	for i := 0; ; i++ {
		a, err := rlTry(url, "X-Auth-Client", "probe-"+strconv.Itoa(i))
		if err == nil && a.code() == 200 && a.get("X-RateLimit-Remaining") == strconv.Itoa(limit-1) {
			followed = time.Since(killed)
			break
		}
		if time.Since(killed) > 45*time.Second {
			close(stop)
			wg.Wait()
			t.Fatalf("the limiter did not follow the failover within 45s (last %v)", a.code())
		}
		time.Sleep(100 * time.Millisecond)
	}
	time.Sleep(time.Second)
	close(stop)
	wg.Wait()
	t.Logf("sentinel failover: primary %s SIGKILLed, sentinels promoted %s after %s, limiter on Redis again after %s; "+
		"steady load: %d requests, statuses %v, transport errors %d, longest request %s",
		oldPrimary, newPrimary, promoted.Round(time.Millisecond), followed.Round(time.Millisecond), load.requests, load.status, load.errs, load.longest.Round(time.Millisecond))
	// Bounds: redis.timeout 200ms + dialTimeout 200ms per attempt (a retry on a new
	// connection, the sentinels asked within dialTimeout + timeout): a request that hangs
	// on the dead primary would wait for the HTTP client's 10s.
	if load.longest > 3*time.Second || load.errs > 0 {
		t.Fatalf("a request waited %s (transport errors %d): a hang beyond the Redis bounds", load.longest, load.errs)
	}
	for code := range load.status {
		if code != 200 && code != 429 && code != 503 {
			t.Fatalf("unexpected status %d during the failover: %v", code, load.status)
		}
	}
	for c, n := range load.ok {
		if n > limit {
			t.Fatalf("%s admitted %d > limit %d during the failover", c, n, limit)
		}
	}

	ok, st = sendEach(t, url, clientNames("after", 20), limit+2, 4)
	for c, n := range ok {
		if n != limit {
			t.Fatalf("after the failover: %s admitted %d, want %d (statuses %v)", c, n, limit, st)
		}
	}
	if st[200] != 20*limit || st[429] != 40 {
		t.Fatalf("after the failover: statuses %v", st)
	}
	t.Logf("after the failover: 20 clients × %d requests: %v (limit %d each: admitted exactly %d each)", limit+2, st, limit, limit)

	if n := metricValue(t, gw.URL+"/metrics/", "pavilion_ratelimit_redis_primary_switches_total", `middleware="rl-mw@file"`); n < 1 {
		t.Fatalf("pavilion_ratelimit_redis_primary_switches_total = %d, want >= 1", n)
	}
	out := traefikOut(gw)
	if !strings.Contains(out, `"event":"redis_primary"`) || !strings.Contains(out, "sentinel names "+newPrimary) {
		t.Fatalf("operator log does not name the new primary %s:\n%s", newPrimary, out)
	}
}
