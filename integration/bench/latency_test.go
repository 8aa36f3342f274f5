package bench

import (
	"crypto/tls"
	"crypto/x509"
	"fmt"
	"net/http"
	"os"
	"sort"
	"strconv"
	"strings"
	"testing"
	"time"

	vegeta "github.com/tsenart/vegeta/v12/lib"

	"github.com/redis/go-redis/v9"

	"github.com/pavilion-trust/gateway/demo/certs/devca"
	"github.com/pavilion-trust/gateway/demo/devissuer/issuer"
	"github.com/pavilion-trust/gateway/integration/echo"
	"github.com/pavilion-trust/gateway/integration/gatewaytest"
	"github.com/pavilion-trust/gateway/integration/redistest"
	"github.com/pavilion-trust/gateway/integration/traefiktest"
)

// Open-loop load: requests arrive at a fixed rate whether or not earlier ones were answered,
// as real clients do. wrk (closed loop) sends no more than its connections allow, so a slow
// server gets fewer requests and its tail stays hidden.
var (
	latencyRates    = envInts("BENCH_RATES", []int{500, 1000, 2000})
	latencyDuration = envDuration("BENCH_LATENCY_DURATION", 10*time.Second)
	latencyRounds   = envInt("BENCH_LATENCY_ROUNDS", 3)
	latencyOnly     = os.Getenv("BENCH_SCENARIOS")      // comma-separated scenario keys; empty: all
	timeline        = os.Getenv("BENCH_TIMELINE") != "" // log the slowest 100 ms slots of each run
)

// nativeChainRouter is a dynamic file beside the gateway's own: the native chain alone on
// /native/api/v1/ — the gateway's chain without the suite, same service, same Traefik — and
// Traefik's pprof handlers (api.debug) on the internal entry point.
const nativeChainRouter = `http:
  routers:
    native-chain:
      entryPoints: [websecure]
      rule: PathPrefix(` + "`/native/api/v1/`" + `)
      middlewares: [security-headers, cors, compress, body-limit]
      service: core-broker
    bench-debug:
      entryPoints: [traefik]
      rule: PathPrefix(` + "`/debug/`" + `)
      service: api@internal
`

// gatewayOptions are the options of the gateway as shipped (static/, dynamic/) for a
// benchmark: two echo brokers, limits far above what is sent, a development certificate, and
// nativeChainRouter beside the repository's dynamic files; roots trusts the certificate.
func gatewayOptions(t *testing.T, iss *issuer.Issuer, rd *redistest.Server) (gatewaytest.Options, *x509.CertPool) {
	certs, err := devca.Generate(t.TempDir(), devca.Options{})
	if err != nil {
		t.Fatal(err)
	}
	b1, b2 := echo.Start(t, "core-broker-1"), echo.Start(t, "core-broker-2")
	ca, err := os.ReadFile(certs.CACert)
	if err != nil {
		t.Fatal(err)
	}
	roots := x509.NewCertPool()
	roots.AppendCertsFromPEM(ca)
	return gatewaytest.Options{
		Env: []string{
			"PAVILION_ISSUER_URL=" + iss.IssuerURL(),
			"PAVILION_REDIS_ADDR=" + rd.Addr(),
			"PAVILION_BROKER_1_ADDR=" + strings.TrimPrefix(b1.URL, "http://"),
			"PAVILION_BROKER_2_ADDR=" + strings.TrimPrefix(b2.URL, "http://"),
			"PAVILION_RATE_REQUESTS=1000000000",
			"PAVILION_AUTH_FAILURES=1000000", // the 401 scenario sends invalid tokens from one address
			"PAVILION_TLS_CERT=" + certs.Cert,
			"PAVILION_TLS_KEY=" + certs.Key,
		},
		ExtraDynamic: map[string]string{"bench.yml": nativeChainRouter},
	}, roots
}

// latencyScenario is one kind of request, sent at each rate.
type latencyScenario struct {
	key    string // short name, for BENCH_SCENARIOS and PAVILION_PROFILE
	name   string
	anchor string // key of the scenario it is compared with ("" for none)
	pid    func() int
	target vegeta.Target
	https  bool // over TLS and HTTP/2 through the gateway's real configuration
}

// latencyResult is one scenario at one rate for one round.
type latencyResult struct {
	rate, achieved          float64
	p50, p90, p99, p999, mx time.Duration
	n, failed               int            // answers; transport errors and unexpected codes
	codes                   map[uint16]int // status codes
	traefikCPU              time.Duration  // Traefik's CPU time per request
	redisCPU                time.Duration  // Redis' CPU time per request (INFO cpu)
	busy                    float64        // the rig's busy share of the machine over the run (0..1)
	machine                 float64        // the whole machine's (other work included)
	steal                   float64        // the hypervisor's steal over the run, share of the cores
}

// TestBenchLatency sends requests at fixed rates (BENCH_RATES, default 500, 1000, 2000 per
// second, BENCH_LATENCY_DURATION each, BENCH_LATENCY_ROUNDS rounds) to two Traefik processes
// running side by side: one on plain HTTP with one middleware per router (no middleware,
// native rateLimit on Redis, our ratelimit, jwtauth, the suite), and one with the gateway's
// real static/ and dynamic/ over TLS 1.3 + HTTP/2 (the native chain alone beside the full
// chain with the suite, on the same Traefik). Scenarios and rates are interleaved in every
// round. It reports p50/p90/p99/p99.9/max, errors, Traefik's CPU per request and the busy
// share of the machine's cores used by the rig (the test process with its load generator,
// backends and issuer; both Traefiks; redis-server), with each scenario against its anchor
// in the same round. The whole machine's busy share is logged beside it: where other work
// runs on the machine, only the rig's share compares between runs.
func TestBenchLatency(t *testing.T) {
	_, iss := setup(t)
	tok, err := iss.Token("svc")
	if err != nil {
		t.Fatal(err)
	}
	backend := startBackend(t)
	rd := redistest.Start(t)
	rdb := redis.NewClient(&redis.Options{Addr: rd.Addr()})
	defer rdb.Close()

	// Plain HTTP, one middleware per router, limits far above what is sent.
	rl := fmt.Sprintf(`redis: {address: %q, poolSize: "32"}
keyPrefix: lat
sources: ["header:X-Auth-Client"]
limits: [{requests: "1000000000", window: 1s}]
`, rd.Addr())
	jwt := fmt.Sprintf("{issuer: %q, audiences: [core-broker], requiredRoles: [broker-user]}", iss.IssuerURL())
	dyn := "http:\n  routers:\n" +
		plainRouter("bare", "/bare", "") + plainRouter("native", "/native", "native-rl") +
		plainRouter("ours", "/ours", "our-rl") + plainRouter("jwt", "/jwt", "jwt") + plainRouter("suite", "/suite", "suite") +
		"  middlewares:\n" +
		fmt.Sprintf("    native-rl:\n      rateLimit: {average: 1000000000, burst: 1000000000, period: 1s, redis: {endpoints: [%q]}}\n", rd.Addr()) +
		"    our-rl:\n      plugin:\n        ratelimit:\n" + indent(rl, 10) +
		"    jwt:\n      plugin:\n        jwtauth: " + jwt + "\n" +
		"    suite:\n      plugin:\n        pavilion:\n          requestId: {header: X-Request-Id}\n          jwt: " + jwt + "\n          rateLimit:\n" + indent(rl, 12) +
		fmt.Sprintf("  services:\n    backend:\n      loadBalancer:\n        servers:\n          - url: %q\n", backend)
	plain := traefiktest.Start(t, traefiktest.Options{
		Dynamic: dyn,
		Plugins: map[string]string{
			"ratelimit": "github.com/pavilion-trust/gateway/plugins/ratelimit",
			"jwtauth":   "github.com/pavilion-trust/gateway/plugins/jwtauth",
			"pavilion":  "github.com/pavilion-trust/gateway",
		},
		AbortOnPluginFailure: true,
		WaitRouters:          []string{"bare@file", "native@file", "ours@file", "jwt@file", "suite@file"},
		Quiet:                true,
		Debug:                os.Getenv("PAVILION_PROFILE") != "",
	})

	// The gateway as shipped (static/, dynamic/), plus one router: the native chain alone on
	// /native/api/v1/, same service, same Traefik.
	opts, roots := gatewayOptions(t, iss, rd)
	opts.Wait = []string{"api-v1@file", "native-chain@file"}
	opts.Debug = os.Getenv("PAVILION_PROFILE") != ""
	full := gatewaytest.StartWith(t, opts)
	tlsConfig := &tls.Config{RootCAs: roots, ServerName: "localhost", MinVersion: tls.VersionTLS13}

	hdr := func(kv ...string) http.Header {
		h := http.Header{}
		for i := 0; i < len(kv); i += 2 {
			h.Set(kv[i], kv[i+1])
		}
		return h
	}
	get := func(url string, h http.Header) vegeta.Target {
		return vegeta.Target{Method: "GET", URL: url, Header: h}
	}
	// What a browser-based client of the Core Broker sends on the full chain.
	browser := func(kv ...string) http.Header {
		return hdr(append([]string{"Origin", "https://portal.pavilion.example", "Accept-Encoding", "gzip"}, kv...)...)
	}
	plainPid, fullPid := plain.Pid, full.Pid
	scenarios := []latencyScenario{
		{key: "bare", name: "Traefik, no middleware (HTTP)", pid: plainPid, target: get(plain.URL+"/bare", nil)},
		{key: "native", name: "native rateLimit on Redis (HTTP)", anchor: "bare", pid: plainPid, target: get(plain.URL+"/native", nil)},
		{key: "ours", name: "ratelimit plugin, header client (HTTP)", anchor: "native", pid: plainPid, target: get(plain.URL+"/ours", hdr("X-Auth-Client", "bench-client"))},
		{key: "jwt", name: "jwtauth, one repeated token (HTTP)", anchor: "bare", pid: plainPid, target: get(plain.URL+"/jwt", hdr("Authorization", "Bearer "+tok))},
		{key: "suite", name: "suite: requestId + jwt + rateLimit (HTTP)", anchor: "bare", pid: plainPid, target: get(plain.URL+"/suite", hdr("Authorization", "Bearer "+tok))},
		{key: "chain", name: "native chain alone (TLS 1.3, HTTP/2, headers, CORS, compress, body limit, h2c, logs, metrics)", pid: fullPid, https: true,
			// The same headers as the next one, so that the upstream's answer (which echoes
			// them) is as large and compressed alike.
			target: get(full.HTTPSURL+"/native/api/v1/accounts", browser("Authorization", "Bearer "+tok))},
		{key: "gateway", name: "full gateway: native chain + suite, valid token", anchor: "chain", pid: fullPid, https: true,
			target: get(full.HTTPSURL+"/api/v1/accounts", browser("Authorization", "Bearer "+tok))},
		{key: "refused", name: "full gateway, no token (401)", anchor: "chain", pid: fullPid, https: true,
			target: get(full.HTTPSURL+"/api/v1/accounts", browser())},
	}
	if latencyOnly != "" {
		keep := map[string]bool{}
		for _, k := range strings.Split(latencyOnly, ",") {
			keep[strings.TrimSpace(k)] = true
		}
		var kept []latencyScenario
		for _, s := range scenarios {
			if keep[s.key] || keep[s.anchor] && keep[s.key] {
				kept = append(kept, s)
			}
		}
		scenarios = kept
	}
	expect := map[string]uint16{"refused": http.StatusUnauthorized}

	// An Attacker serves one attack (it stops itself at the end): a new one per run.
	attacker := func(https bool) *vegeta.Attacker {
		opts := []func(*vegeta.Attacker){vegeta.Timeout(10 * time.Second), vegeta.KeepAlive(true), vegeta.Redirects(vegeta.NoFollow)}
		if https {
			opts = append(opts, vegeta.HTTP2(true), vegeta.TLSConfig(tlsConfig))
		}
		return vegeta.NewAttacker(opts...)
	}
	self := os.Getpid()
	rig := func() time.Duration {
		return processCPU(t, self) + processCPU(t, plain.Pid()) + processCPU(t, full.Pid()) + redisCPU(t, rdb)
	}

	run := func(s latencyScenario, rate int, d time.Duration) latencyResult {
		want := expect[s.key]
		if want == 0 {
			want = http.StatusOK
		}
		return openLoop(t, attacker(s.https), s, rate, d, want, rig, func() time.Duration { return redisCPU(t, rdb) })
	}

	// Warm-up: interpreters, pools, the token cache, TLS sessions.
	for _, s := range scenarios {
		run(s, 500, 2*time.Second)
	}
	if p := os.Getenv("PAVILION_PROFILE"); p != "" {
		// PAVILION_PROFILE=<scenario key>@<rate>:<file>: a CPU profile of that scenario's Traefik.
		spec, file, _ := strings.Cut(p, ":")
		key, rateS, _ := strings.Cut(spec, "@")
		rate, _ := strconv.Atoi(rateS)
		for _, s := range scenarios {
			if s.key == key && rate > 0 {
				api := plain.APIURL
				if s.https {
					api = full.InternalURL
				}
				profileURL(t, api, file, func() { run(s, rate, 12*time.Second) })
				return
			}
		}
		t.Fatalf("PAVILION_PROFILE=%q: want <scenario key>@<rate>:<file>", p)
	}

	results := map[string]map[int][]latencyResult{}
	for _, s := range scenarios {
		results[s.key] = map[int][]latencyResult{}
	}
	for round := 0; round < latencyRounds; round++ {
		for _, rate := range latencyRates {
			for _, s := range scenarios {
				r := run(s, rate, latencyDuration)
				results[s.key][rate] = append(results[s.key][rate], r)
				t.Logf("round %d %s @%d/s: p50 %s p99 %s p99.9 %s max %s, failed %d, Traefik %.0f µs/req, Redis %.0f µs/req, rig %.0f%%, machine %.0f%% (steal %.0f%%)",
					round+1, s.key, rate, r.p50, r.p99, r.p999, r.mx, r.failed, us(r.traefikCPU), us(r.redisCPU), 100*r.busy, 100*r.machine, 100*r.steal)
			}
		}
	}
	fmt.Println(latencyReport(scenarios, results))
}

// openLoop sends s.target at rate per second for d and measures every answer.
func openLoop(t *testing.T, a *vegeta.Attacker, s latencyScenario, rate int, d time.Duration, want uint16, rig, redis func() time.Duration) latencyResult {
	t.Helper()
	pid := s.pid()
	tc, mc, rc, sc, dc := processCPU(t, pid), machineCPU(t), rig(), stealCPU(t), redis()
	start := time.Now()
	res := latencyResult{rate: float64(rate), codes: map[uint16]int{}}
	var lat []time.Duration
	var worst [][2]time.Duration // per 100 ms of send time: max latency, for BENCH_TIMELINE
	for r := range a.Attack(vegeta.NewStaticTargeter(s.target), vegeta.Rate{Freq: rate, Per: time.Second}, d, s.key) {
		lat = append(lat, r.Latency)
		if timeline {
			slot := int(r.Timestamp.Sub(start) / (100 * time.Millisecond))
			for len(worst) <= slot {
				worst = append(worst, [2]time.Duration{time.Duration(len(worst)) * 100 * time.Millisecond, 0})
			}
			if r.Latency > worst[slot][1] {
				worst[slot][1] = r.Latency
			}
		}
		res.codes[r.Code]++
		if r.Code != want { // 0: no answer (vegeta's Error says why)
			res.failed++
		}
	}
	elapsed := time.Since(start)
	if timeline {
		sort.Slice(worst, func(i, j int) bool { return worst[i][1] > worst[j][1] })
		if len(worst) > 5 {
			worst = worst[:5]
		}
		t.Logf("%s @%d/s: worst 100 ms slots (send offset, max latency): %v", s.key, rate, worst)
	}
	tc, mc, rc, sc, dc = processCPU(t, pid)-tc, machineCPU(t)-mc, rig()-rc, stealCPU(t)-sc, redis()-dc
	res.n = len(lat)
	if res.n == 0 {
		t.Fatalf("%s: no answers", s.key)
	}
	res.achieved = float64(res.n) / elapsed.Seconds()
	res.traefikCPU = tc / time.Duration(res.n)
	res.redisCPU = dc / time.Duration(res.n)
	res.busy = float64(rc) / float64(elapsed) / float64(numCPU())
	res.machine = float64(mc) / float64(elapsed) / float64(numCPU())
	res.steal = float64(sc) / float64(elapsed) / float64(numCPU())
	sort.Slice(lat, func(i, j int) bool { return lat[i] < lat[j] })
	q := func(p float64) time.Duration { return lat[int(p*float64(len(lat)-1))].Round(10 * time.Microsecond) }
	res.p50, res.p90, res.p99, res.p999, res.mx = q(0.50), q(0.90), q(0.99), q(0.999), lat[len(lat)-1].Round(10*time.Microsecond)
	if res.failed > res.n/100 {
		t.Errorf("%s @%d/s: %d of %d answers failed or unexpected (codes %v)", s.key, rate, res.failed, res.n, res.codes)
	}
	return res
}

// latencyReport is the Markdown table: per scenario and rate, the median round's figures with
// the range over rounds, and each scenario's ratio to its anchor taken round by round.
func latencyReport(scenarios []latencyScenario, results map[string]map[int][]latencyResult) string {
	var b strings.Builder
	fmt.Fprintf(&b, "\nopen-loop latency (vegeta, fixed arrival rate), %d rounds of %s per scenario and rate, interleaved; %d cores shared by the load generator, both Traefiks, Redis, backends and issuer; %s\n\n",
		latencyRounds, latencyDuration, numCPU(), time.Now().UTC().Format("2006-01-02 15:04 UTC"))
	b.WriteString("| scenario | rate/s | p50 | p90 | p99 | p99.9 | max | failed | Traefik CPU µs/req | Redis CPU µs/req | rig busy | steal | p50 / anchor | p99 / anchor | busy − anchor |\n|---|---|---|---|---|---|---|---|---|---|---|---|---|---|---|\n")
	for _, s := range scenarios {
		for _, rate := range latencyRates {
			rs := results[s.key][rate]
			if len(rs) == 0 {
				continue
			}
			p50 := spread(rs, func(r latencyResult) float64 { return ms(r.p50) })
			p90 := spread(rs, func(r latencyResult) float64 { return ms(r.p90) })
			p99 := spread(rs, func(r latencyResult) float64 { return ms(r.p99) })
			p999 := spread(rs, func(r latencyResult) float64 { return ms(r.p999) })
			mx := spread(rs, func(r latencyResult) float64 { return ms(r.mx) })
			cpu := spread(rs, func(r latencyResult) float64 { return us(r.traefikCPU) })
			rcpu := spread(rs, func(r latencyResult) float64 { return us(r.redisCPU) })
			busy := spread(rs, func(r latencyResult) float64 { return 100 * r.busy })
			steal := spread(rs, func(r latencyResult) float64 { return 100 * r.steal })
			failed := 0
			for _, r := range rs {
				failed += r.failed
			}
			var r50, r99, rb string
			if as := results[s.anchor][rate]; len(as) == len(rs) {
				r50 = ratios(rs, as, func(r latencyResult) float64 { return ms(r.p50) }, "×")
				r99 = ratios(rs, as, func(r latencyResult) float64 { return ms(r.p99) }, "×")
				rb = diffs(rs, as, func(r latencyResult) float64 { return 100 * r.busy })
			}
			fmt.Fprintf(&b, "| %s | %d | %s | %s | %s | %s | %s | %d | %s | %s | %s%% | %s%% | %s | %s | %s |\n",
				s.name, rate, p50.f("ms"), p90.f("ms"), p99.f("ms"), p999.f("ms"), mx.f("ms"), failed, cpu.f(""), rcpu.f(""), busy.f(""), steal.f(""), r50, r99, rb)
		}
	}
	// The rate at which p99 crosses 50 ms (median round), per scenario.
	b.WriteString("\np99 over 50 ms (median round) from:")
	for _, s := range scenarios {
		from := "none of the rates"
		for _, rate := range latencyRates {
			if p := spread(results[s.key][rate], func(r latencyResult) float64 { return ms(r.p99) }); p.n > 0 && p.mid > 50 {
				from = strconv.Itoa(rate) + "/s"
				break
			}
		}
		fmt.Fprintf(&b, "\n  %s: %s", s.key, from)
	}
	b.WriteString("\n")
	return b.String()
}

// span is the median and range of one figure over rounds.
type span struct {
	mid, lo, hi float64
	n           int
}

func spread(rs []latencyResult, f func(latencyResult) float64) span {
	v := make([]float64, len(rs))
	for i, r := range rs {
		v[i] = f(r)
	}
	return spanOf(v)
}

func spanOf(v []float64) span {
	if len(v) == 0 {
		return span{}
	}
	sort.Float64s(v)
	mid := v[len(v)/2]
	if len(v)%2 == 0 { // the mean of the two middle rounds (was the upper one: the worse of two)
		mid = (v[len(v)/2-1] + mid) / 2
	}
	return span{mid: mid, lo: v[0], hi: v[len(v)-1], n: len(v)}
}

// f is "median (lo–hi)unit".
func (s span) f(unit string) string {
	if s.n == 0 {
		return ""
	}
	p := func(x float64) string {
		if x >= 100 {
			return strconv.FormatFloat(x, 'f', 0, 64)
		}
		if x >= 10 {
			return strconv.FormatFloat(x, 'f', 1, 64)
		}
		return strconv.FormatFloat(x, 'f', 2, 64)
	}
	if s.n == 1 {
		return p(s.mid) + unit
	}
	return fmt.Sprintf("%s%s (%s–%s)", p(s.mid), unit, p(s.lo), p(s.hi))
}

// ratios is the median and range over rounds of f(r)/f(anchor) taken in the same round.
func ratios(rs, as []latencyResult, f func(latencyResult) float64, unit string) string {
	v := make([]float64, len(rs))
	for i := range rs {
		v[i] = f(rs[i]) / f(as[i])
	}
	return spanOf(v).f(unit)
}

// diffs is the median and range over rounds of f(r)-f(anchor), in points.
func diffs(rs, as []latencyResult, f func(latencyResult) float64) string {
	v := make([]float64, len(rs))
	for i := range rs {
		v[i] = f(rs[i]) - f(as[i])
	}
	return spanOf(v).f(" pt")
}

func ms(d time.Duration) float64 { return float64(d) / float64(time.Millisecond) }

func plainRouter(name, prefix, mw string) string {
	s := fmt.Sprintf("    %s:\n      entryPoints: [web]\n      rule: PathPrefix(`%s`)\n      service: backend\n", name, prefix)
	if mw != "" {
		s += fmt.Sprintf("      middlewares: [%s]\n", mw)
	}
	return s
}

func indent(s string, n int) string {
	pad := strings.Repeat(" ", n)
	return pad + strings.ReplaceAll(strings.TrimRight(s, "\n"), "\n", "\n"+pad) + "\n"
}

func envInts(name string, def []int) []int {
	v := os.Getenv(name)
	if v == "" {
		return def
	}
	var out []int
	for _, f := range strings.Split(v, ",") {
		n, err := strconv.Atoi(strings.TrimSpace(f))
		if err != nil || n <= 0 {
			return def
		}
		out = append(out, n)
	}
	return out
}

// TestSpanMedian: the median of an even number of rounds is the mean of the middle two, not
// the worse one.
func TestSpanMedian(t *testing.T) {
	for _, tc := range []struct {
		v           []float64
		mid, lo, hi float64
	}{
		{[]float64{3}, 3, 3, 3},
		{[]float64{4, 2}, 3, 2, 4},
		{[]float64{9, 1, 5}, 5, 1, 9},
		{[]float64{8, 1, 2, 4}, 3, 1, 8},
	} {
		s := spanOf(append([]float64(nil), tc.v...))
		if s.mid != tc.mid || s.lo != tc.lo || s.hi != tc.hi || s.n != len(tc.v) {
			t.Errorf("spanOf(%v) = %+v, want mid %v, range %v–%v", tc.v, s, tc.mid, tc.lo, tc.hi)
		}
	}
}
