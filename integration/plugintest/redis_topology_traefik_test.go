package plugintest

import (
	"fmt"
	"os"
	"os/exec"
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
func traefikOut(gw *traefiktest.Traefik) string {
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
	for _, want := range [][2]string{
		{"wrongca-mw@file", "redis unavailable (resp: tls: failed to verify certificate: x509: certificate signed by unknown authority"},
		{"nocert-mw@file", "redis unavailable ("},
	} {
		if !logHas(out, `"event":"redis_failover"`, want[0], want[1]) {
			t.Errorf("operator log has no redis_failover line of %s saying %q:\n%s", want[0], want[1], out)
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
	limit    int // when set: a 429 to a client admitted fewer times is counted in early
	early    int
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
						if l.limit > 0 && l.ok[c] < l.limit {
							l.early++
						}
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
		rlRoute{name: "health", plugin: "health", cfg: map[string]any{"redis": redisCfg, "cacheFor": "0s"}},
	)
	gw := traefiktest.Start(t, traefiktest.Options{Dynamic: dyn, Plugins: topoPlugins, WaitRouters: names, AbortOnPluginFailure: true})
	url := gw.URL + "/rl/x"
	if a := rlDo(t, gw.URL+"/health/x"); a.code() != 200 || !strings.Contains(string(a.body), `"pass"`) {
		t.Fatalf("health, Redis through the sentinels: %d %s", a.code(), a.body)
	}

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
	if n := metricValue(t, gw.URL+"/metrics/", "pavilion_ratelimit_redis_primary", `address="`+newPrimary+`"`); n != 1 {
		t.Fatalf("pavilion_ratelimit_redis_primary for the new primary = %d, want 1", n)
	}
	if n := metricValue(t, gw.URL+"/metrics/", "pavilion_ratelimit_redis_primary", `address="`+oldPrimary+`"`); n != 0 {
		t.Fatalf("pavilion_ratelimit_redis_primary for the old primary = %d, want 0", n)
	}
	out := traefikOut(gw)
	named := false
	for _, line := range strings.Split(out, "\n") {
		if strings.Contains(line, `"event":"redis_primary"`) && strings.Contains(line, "primary "+set.MasterName) &&
			strings.Contains(line, newPrimary+" (before: "+oldPrimary+")") {
			named = true
			t.Logf("operator log: %s", line)
		}
	}
	if !named {
		t.Fatalf("operator log does not name the switch %s -> %s:\n%s", oldPrimary, newPrimary, out)
	}
}

// clusterPhase runs steady load of fresh clients while during() changes the cluster, then
// checks that no client was admitted over its limit nor refused under it, and that every
// answer was 200, 429 or the failure policy's 503; it returns the load's record.
func clusterPhase(t *testing.T, url, name string, limit int, during func()) *topoLoad {
	t.Helper()
	load := newTopoLoad()
	load.limit = limit
	stop := make(chan struct{})
	wg := load.run(url, clientNames(name, 64), 4, stop)
	time.Sleep(300 * time.Millisecond)
	start := time.Now()
	during()
	took := time.Since(start)
	time.Sleep(500 * time.Millisecond)
	close(stop)
	wg.Wait()
	t.Logf("%s (%s): %d requests, statuses %v, transport errors %d, longest request %s, over-limit admissions 0 checked, early refusals %d",
		name, took.Round(time.Millisecond), load.requests, load.status, load.errs, load.longest.Round(time.Millisecond), load.early)
	for c, n := range load.ok {
		if n > limit {
			t.Fatalf("%s: %s admitted %d > limit %d", name, c, n, limit)
		}
	}
	if load.early > 0 || load.errs > 0 || load.longest > 3*time.Second {
		t.Fatalf("%s: %d refusals under the limit, %d transport errors, longest request %s", name, load.early, load.errs, load.longest)
	}
	for code := range load.status {
		if code != 200 && code != 429 && code != 503 {
			t.Fatalf("%s: unexpected status %d: %v", name, code, load.status)
		}
	}
	return load
}

// clusterExact sends limit+2 requests for each of n fresh clients: each gets exactly limit.
func clusterExact(t *testing.T, url, name string, n, limit int) {
	t.Helper()
	deadline := time.Now().Add(30 * time.Second)
	for {
		ok, st := sendEach(t, url, clientNames(name, n), limit+2, 4)
		if st[503] > 0 && time.Now().Before(deadline) {
			// The limiter has not followed the change yet (failure policy): fresh clients again.
			name += "+"
			time.Sleep(500 * time.Millisecond)
			continue
		}
		for c, k := range ok {
			if k != limit {
				t.Fatalf("%s: %s admitted %d, want %d (statuses %v)", name, c, k, limit, st)
			}
		}
		if st[200] != n*limit || st[429] != 2*n {
			t.Fatalf("%s: statuses %v, want %d × 200 and %d × 429", name, st, n*limit, 2*n)
		}
		t.Logf("%s: %d clients × %d requests: %v (exactly %d admitted each)", name, n, limit+2, st, limit)
		return
	}
}

func nodeID(t *testing.T, addr string) string {
	t.Helper()
	v, err := redistest.Do(addr, "CLUSTER", "MYID")
	if err != nil {
		t.Fatalf("CLUSTER MYID %s: %v", addr, err)
	}
	return fmt.Sprint(v)
}

// TestRateLimitTraefikCluster: three primaries and three replicas. Limits are exact for many
// clients spread over every primary; under load, slots move (redis-cli --cluster reshard), a
// replica takes over (CLUSTER FAILOVER) and a primary is SIGKILLed: no client is admitted
// over its limit nor refused under it, errors are the failure policy's 503 only, the limiter
// follows without a restart, and MOVED/ASK are counted in the metrics.
func TestRateLimitTraefikCluster(t *testing.T) {
	cl := redistest.StartCluster(t)
	up := echo.Start(t, "core-broker-1")
	var seeds []any
	for _, a := range cl.Seeds()[:2] {
		seeds = append(seeds, a)
	}
	redisCfg := map[string]any{"cluster": map[string]any{"addresses": seeds}, "timeout": "300ms", "dialTimeout": "200ms"}
	const limit = 5
	dyn, names := rlDynamic(up.URL,
		rlRoute{name: "gcra", plugin: "pavilion", cfg: map[string]any{"rateLimit": topoConfig(redisCfg, "cl", "gcra", "closed", limit)}},
		rlRoute{name: "log", plugin: "pavilion", cfg: map[string]any{"rateLimit": topoConfig(redisCfg, "cl", "sliding-log", "closed", limit)}},
		rlRoute{name: "metrics", plugin: "pavilion", cfg: map[string]any{"metrics": map[string]any{"enabled": "true"}}},
		rlRoute{name: "health", plugin: "health", cfg: map[string]any{"redis": redisCfg, "cacheFor": "0s"}},
	)
	gw := traefiktest.Start(t, traefiktest.Options{Dynamic: dyn, Plugins: topoPlugins, WaitRouters: names, AbortOnPluginFailure: true})
	if a := rlDo(t, gw.URL+"/health/x"); a.code() != 200 || !strings.Contains(string(a.body), `"pass"`) {
		t.Fatalf("health, Redis Cluster: %d %s", a.code(), a.body)
	}

	for _, route := range []string{"gcra", "log"} {
		clusterExact(t, gw.URL+"/"+route+"/x", route+"-start", 200, limit)
	}
	for _, p := range cl.Primaries(t) {
		v, err := redistest.Do(p.Addr(), "DBSIZE")
		if err != nil || fmt.Sprint(v) == "0" {
			t.Fatalf("primary %s holds no key (%v, %v): clients are not spread over the cluster", p.Addr(), v, err)
		}
	}

	url := gw.URL + "/gcra/x"
	primaries := cl.Primaries(t)
	askRedirect(t, url, primaries, limit)

	clusterPhase(t, url, "reshard", limit, func() {
		from := nodeID(t, primaries[0].Addr())
		to := nodeID(t, primaries[1].Addr())
		out, err := exec.Command("redis-cli", "--cluster", "reshard", primaries[0].Addr(), "--cluster-from", from,
			"--cluster-to", to, "--cluster-slots", "1000", "--cluster-yes").CombinedOutput()
		if err != nil {
			t.Fatalf("redis-cli --cluster reshard: %v\n%s", err, out)
		}
		cl.WaitOK(t)
	})
	clusterExact(t, url, "after-reshard", 100, limit)

	clusterPhase(t, url, "cluster-failover", limit, func() {
		p := cl.Primaries(t)[2]
		r := cl.ReplicaOf(t, p)
		if _, err := redistest.Do(r.Addr(), "CLUSTER", "FAILOVER"); err != nil {
			t.Fatalf("CLUSTER FAILOVER on %s: %v", r.Addr(), err)
		}
		waitRole(t, r.Addr(), "master")
		cl.WaitOK(t)
	})
	clusterExact(t, url, "after-failover", 100, limit)

	clusterPhase(t, url, "sigkill", limit, func() {
		p := cl.Primaries(t)[0]
		r := cl.ReplicaOf(t, p)
		p.Kill()
		waitRole(t, r.Addr(), "master")
		cl.WaitOK(t)
	})
	clusterExact(t, url, "after-sigkill", 100, limit)

	m := gw.URL + "/metrics/"
	moved := metricValue(t, m, "pavilion_ratelimit_redis_cluster_redirects_total", `kind="moved"`)
	ask := metricValue(t, m, "pavilion_ratelimit_redis_cluster_redirects_total", `kind="ask"`)
	refreshes := metricValue(t, m, "pavilion_ratelimit_redis_cluster_map_refreshes_total", `result="ok"`)
	t.Logf("metrics: MOVED %d, ASK %d, slot map reads %d", moved, ask, refreshes)
	if moved < 1 || ask < 1 || refreshes < 2 {
		t.Fatalf("MOVED %d, ASK %d, map reads %d: the redirections were not all counted", moved, ask, refreshes)
	}
	// Both middlewares share one pool (same options): its series carry the name of the one
	// that created it, either.
	if n := metricValue(t, m, "pavilion_ratelimit_redis_cluster_primary"); n != 3 {
		t.Fatalf("pavilion_ratelimit_redis_cluster_primary sums to %d, want 3 primaries in use", n)
	}
	if out := traefikOut(gw); !strings.Contains(out, `"event":"redis_cluster_map"`) {
		t.Fatalf("no redis_cluster_map line in the operator log:\n%s", out)
	}
}

func waitRole(t *testing.T, addr, role string) {
	t.Helper()
	deadline := time.Now().Add(30 * time.Second)
	for {
		r, err := redistest.Role(addr)
		if err == nil && r == role {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("%s: role %q (%v), want %s", addr, r, err, role)
		}
		time.Sleep(100 * time.Millisecond)
	}
}

// askRedirect moves one client's slot by hand, half-way: the slot is MIGRATING on its owner
// and IMPORTING on another primary, and the client's key has been moved. The owner answers
// ASK, which the limiter follows with ASKING on the other node: the client's count goes on
// from where it was (no reset, no double count). Then the slot is given to the new node.
func askRedirect(t *testing.T, url string, primaries []*redistest.Server, limit int) {
	t.Helper()
	const client = "ask-me"
	key := "cl:{x-auth-client=" + client + "}:gcra:1h"
	for i := 0; i < 2; i++ {
		if a := rlDo(t, url, "X-Auth-Client", client); a.code() != 200 {
			t.Fatalf("ask: request %d: %d %s", i+1, a.code(), a.body)
		}
	}
	var src, dst *redistest.Server
	for _, p := range primaries {
		v, err := redistest.Do(p.Addr(), "EXISTS", key)
		if err == nil && fmt.Sprint(v) == "1" {
			src = p
		}
	}
	for _, p := range primaries {
		if p != src {
			dst = p
			break
		}
	}
	if src == nil || dst == nil {
		t.Fatalf("ask: the key %s is on no primary", key)
	}
	slot, err := redistest.Do(src.Addr(), "CLUSTER", "KEYSLOT", key)
	if err != nil {
		t.Fatal(err)
	}
	srcID := nodeID(t, src.Addr())
	dstID := nodeID(t, dst.Addr())
	for _, c := range [][]any{
		{dst.Addr(), "CLUSTER", "SETSLOT", slot, "IMPORTING", srcID},
		{src.Addr(), "CLUSTER", "SETSLOT", slot, "MIGRATING", dstID},
		{src.Addr(), "MIGRATE", "127.0.0.1", dst.Port, key, 0, 5000},
	} {
		if _, err := redistest.Do(c[0].(string), c[1:]...); err != nil {
			t.Fatalf("ask: %v: %v", c[1:], err)
		}
	}
	var codes []int
	for i := 2; i < limit+2; i++ {
		codes = append(codes, rlDo(t, url, "X-Auth-Client", client).code())
	}
	want := []int{200, 200, 200, 429, 429}
	if fmt.Sprint(codes) != fmt.Sprint(want[:len(codes)]) {
		t.Fatalf("ask: requests 3..%d during the migration: %v, want %v (the count must carry over)", limit+2, codes, want[:len(codes)])
	}
	for _, p := range primaries {
		if _, err := redistest.Do(p.Addr(), "CLUSTER", "SETSLOT", slot, "NODE", dstID); err != nil {
			t.Fatalf("ask: SETSLOT NODE on %s: %v", p.Addr(), err)
		}
	}
	t.Logf("ask: slot %v of %q MIGRATING %s → IMPORTING %s, key moved: requests 3..%d answered %v through ASK/ASKING", slot, client, src.Addr(), dst.Addr(), limit+2, codes)
}

// logHas tells whether one line of out holds every fragment (whatever the shape of the
// operator log's fields).
func logHas(out string, fragments ...string) bool {
	for _, line := range strings.Split(out, "\n") {
		all := true
		for _, f := range fragments {
			if !strings.Contains(line, f) {
				all = false
			}
		}
		if all {
			return true
		}
	}
	return false
}
