package bench

import (
	"bufio"
	"context"
	"fmt"
	"os"
	"os/exec"
	"sort"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/pavilion-trust/gateway/integration/redistest"
	"github.com/pavilion-trust/gateway/integration/traefiktest"
	"github.com/redis/go-redis/v9"
)

// commandStats reads INFO commandstats: calls per command (cmdstat_<name>:calls=N,...).
func commandStats(t *testing.T, rdb *redis.Client) map[string]int64 {
	t.Helper()
	info, err := rdb.Info(context.Background(), "commandstats").Result()
	if err != nil {
		t.Fatalf("INFO commandstats: %v", err)
	}
	stats := map[string]int64{}
	sc := bufio.NewScanner(strings.NewReader(info))
	for sc.Scan() {
		line := strings.TrimSpace(sc.Text())
		name, rest, ok := strings.Cut(line, ":")
		if !ok || !strings.HasPrefix(name, "cmdstat_") {
			continue
		}
		for _, field := range strings.Split(rest, ",") {
			if v, ok := strings.CutPrefix(field, "calls="); ok {
				n, err := strconv.ParseInt(v, 10, 64)
				if err != nil {
					t.Fatalf("INFO commandstats: %q", line)
				}
				stats[strings.TrimPrefix(name, "cmdstat_")] = n
			}
		}
	}
	return stats
}

// ownCommands are what the measuring client itself sends (INFO, and HELLO/CLIENT when it
// connects); they are not counted.
var ownCommands = map[string]bool{"info": true, "hello": true, "client|setinfo": true, "client": true}

// TestBenchRateLimit compares, on one Traefik and one Redis in one run, Traefik without
// middleware, Traefik's native rateLimit middleware on Redis, our ratelimit plugin
// (sliding-window, limits never reached) and the suite (requestId + jwt with one repeated
// token + rateLimit), plus two references: an interpreted plugin that only calls next (the
// floor of any Yaegi middleware, ./noop) and the suite with jwt alone. It reports req/s, p50,
// p99, the ratios, Redis commands per request (INFO commandstats before and after each run,
// divided by the requests wrk completed) and CPU time per request of Traefik, redis-server
// and the whole machine. PAVILION_PROFILE profiles one scenario instead (profile_test.go).
func TestBenchRateLimit(t *testing.T) {
	wrk, iss := setup(t)
	tok, err := iss.Token("svc")
	if err != nil {
		t.Fatal(err)
	}
	backend := startBackend(t)
	rd := redistest.Start(t)
	rdb := redis.NewClient(&redis.Options{Addr: rd.Addr()})
	defer rdb.Close()

	router := func(name, prefix, mw string) string {
		s := fmt.Sprintf("    %s:\n      entryPoints: [web]\n      rule: PathPrefix(`%s`)\n      service: backend\n", name, prefix)
		if mw != "" {
			s += fmt.Sprintf("      middlewares: [%s]\n", mw)
		}
		return s
	}
	// Limits far above what this machine can send: nothing is refused (wrk's non-2xx check).
	// poolSize = wrk's connections, so that no request waits for a Redis connection: the
	// pool's wait path panics under Yaegi v0.16.1 when a wait times out (range over
	// Client.waiters in plugins/resp/client.go removeWaiter).
	rateLimit := fmt.Sprintf(`            redis:
              address: %q
              poolSize: "%d"
            keyPrefix: bench
            algorithm: sliding-window
            sources: ["header:X-Auth-Client"]
            limits:
              - requests: "1000000000"
                window: 1s
`, rd.Addr(), connections)
	dyn := "http:\n  routers:\n" + router("bare", "/bare", "") + router("native", "/native", "native-rl") +
		router("noop", "/noop", "noop") + router("ours", "/ours", "our-rl") + router("suite", "/suite", "suite") + router("sjwt", "/sjwt", "suite-jwt") +
		router("flood", "/flood", "our-rl-flood") +
		"  middlewares:\n" +
		"    noop:\n      plugin:\n        noop: {}\n" +
		fmt.Sprintf("    native-rl:\n      rateLimit:\n        average: 1000000\n        burst: 1000000\n        period: 1s\n        redis:\n          endpoints: [%q]\n", rd.Addr()) +
		"    our-rl:\n      plugin:\n        ratelimit:\n" + strings.ReplaceAll(rateLimit, "            ", "          ") +
		"    our-rl-flood:\n      plugin:\n        ratelimit:\n" + strings.ReplaceAll(strings.ReplaceAll(rateLimit, "            ", "          "), `"1000000000"`, `"1"`) +
		"    suite:\n      plugin:\n        pavilion:\n" +
		"          requestId:\n            header: X-Request-Id\n" +
		fmt.Sprintf("          jwt:\n            issuer: %q\n            audiences: [core-broker]\n            requiredRoles: [broker-user]\n", iss.IssuerURL()) +
		"          rateLimit:\n" + rateLimit +
		"    suite-jwt:\n      plugin:\n        pavilion:\n" +
		fmt.Sprintf("          jwt:\n            issuer: %q\n            audiences: [core-broker]\n            requiredRoles: [broker-user]\n", iss.IssuerURL()) +
		fmt.Sprintf("  services:\n    backend:\n      loadBalancer:\n        servers:\n          - url: %q\n", backend)
	gw := traefiktest.Start(t, traefiktest.Options{
		Dynamic: dyn,
		Plugins: map[string]string{
			"ratelimit": "github.com/pavilion-trust/gateway/plugins/ratelimit",
			"pavilion":  "github.com/pavilion-trust/gateway",
			"noop":      "github.com/pavilion-trust/gateway/integration/bench/noop",
		},
		AbortOnPluginFailure: true,
		WaitRouters:          []string{"bare@file", "native@file", "noop@file", "ours@file", "suite@file", "sjwt@file", "flood@file"},
		Quiet:                true,
		Debug:                os.Getenv("PAVILION_PROFILE") != "",
	})

	type scenario struct {
		name, path string
		headers    []string
	}
	scenarios := []scenario{
		{"Traefik, no middleware", "/bare", nil},
		{"Traefik native rateLimit (Redis, token bucket)", "/native", nil},
		{"ratelimit plugin (Redis, sliding-window, header client)", "/ours", []string{"X-Auth-Client: bench-client"}},
		{"suite: requestId + jwt (one repeated token) + rateLimit", "/suite", []string{"Authorization: Bearer " + tok}},
		{"interpreted no-op plugin (the floor of any Yaegi middleware)", "/noop", nil},
		{"suite: jwt only (one repeated token)", "/sjwt", []string{"Authorization: Bearer " + tok}},
		{"ratelimit plugin, one client far over its limit (429, refused in memory)", "/flood", []string{"X-Auth-Client: flooder"}},
	}
	type measured struct {
		result
		cmds map[string]int64 // Redis calls during the run, by command
		// CPU time per request completed: Traefik, redis-server, the whole machine.
		traefikCPU, redisCPU, machineCPU time.Duration
	}
	run := func(s scenario, d time.Duration) measured {
		args := []string{"-t", strconv.Itoa(threads), "-c", strconv.Itoa(connections), "-d", d.String(), "--latency"}
		for _, h := range s.headers {
			args = append(args, "-H", h)
		}
		before := commandStats(t, rdb)
		tc, rc, mc := processCPU(t, gw.Pid()), redisCPU(t, rdb), machineCPU(t)
		out, err := exec.Command(wrk, append(args, gw.URL+s.path)...).CombinedOutput()
		if err != nil {
			t.Fatalf("wrk %s: %v\n%s", s.name, err, out)
		}
		tc, rc, mc = processCPU(t, gw.Pid())-tc, redisCPU(t, rdb)-rc, machineCPU(t)-mc
		after := commandStats(t, rdb)
		if strings.Contains(string(out), "Non-2xx") != (s.path == "/flood") {
			t.Fatalf("%s: wrk saw non-2xx answers: %v, want %v:\n%s", s.name, s.path != "/flood", s.path == "/flood", out)
		}
		m := measured{result: parseWrk(t, s.name, string(out)), cmds: map[string]int64{}}
		if m.total > 0 {
			n := time.Duration(m.total)
			m.traefikCPU, m.redisCPU, m.machineCPU = tc/n, rc/n, mc/n
		}
		for name, n := range after {
			if delta := n - before[name]; delta > 0 && !ownCommands[name] {
				m.cmds[name] = delta
			}
		}
		return m
	}

	// Warm up every path (the interpreter, connection pools, the verified-token cache, the
	// script cache in Redis).
	for _, s := range scenarios {
		run(s, 2*time.Second)
	}

	if p := os.Getenv("PAVILION_PROFILE"); p != "" {
		profile(t, gw, p, func() float64 { return run(scenarios[profiled(t, p, len(scenarios))], 12*time.Second).reqs })
		return
	}

	// Rounds interleave the scenarios so that drift on the shared machine hits them alike;
	// each scenario reports its median round. Redis commands are summed over all rounds.
	runs := make([][]measured, len(scenarios))
	for round := 0; round < rounds; round++ {
		for i, s := range scenarios {
			runs[i] = append(runs[i], run(s, duration))
		}
	}
	results := make([]result, len(scenarios))
	median := make([]measured, len(scenarios))
	perReq := make([]float64, len(scenarios))
	evalsPerReq := make([]float64, len(scenarios)) // EVAL/EVALSHA: one round trip each
	breakdown := make([]string, len(scenarios))
	for i := range runs {
		var reqs int
		cmds := map[string]int64{}
		for _, m := range runs[i] {
			reqs += m.total
			for name, n := range m.cmds {
				cmds[name] += n
			}
		}
		var sum int64
		var names []string
		for name, n := range cmds {
			sum += n
			names = append(names, name)
		}
		sort.Slice(names, func(a, b int) bool { return cmds[names[a]] > cmds[names[b]] })
		var parts []string
		for _, name := range names {
			if v := float64(cmds[name]) / float64(reqs); v >= 0.001 {
				parts = append(parts, fmt.Sprintf("%s %.3f", name, v))
			}
		}
		if reqs > 0 {
			perReq[i] = float64(sum) / float64(reqs)
			evalsPerReq[i] = float64(cmds["evalsha"]+cmds["eval"]+cmds["evalsha_ro"]+cmds["eval_ro"]) / float64(reqs)
		}
		breakdown[i] = strings.Join(parts, ", ")
		if breakdown[i] == "" {
			breakdown[i] = "none"
		}
		sort.Slice(runs[i], func(a, b int) bool { return runs[i][a].reqs < runs[i][b].reqs })
		median[i] = runs[i][len(runs[i])/2]
		results[i] = median[i].result
	}

	bare := results[0].reqs
	native := results[1].reqs
	var b strings.Builder
	fmt.Fprintf(&b, "\nrate limiting on Redis %s: wrk -t%d -c%d, %d rounds of %s per scenario (median round shown), loopback, %d cores shared by wrk, Traefik, Redis, backend and issuer; %s\n\n",
		redisVersion(t, rdb), threads, connections, rounds, duration, numCPU(), time.Now().UTC().Format("2006-01-02 15:04 UTC"))
	b.WriteString("| scenario | req/s | p50 | p99 | vs no middleware | vs native rateLimit | Redis cmds/req | of which EVAL(SHA) | CPU µs/req: Traefik | Redis | machine |\n|---|---|---|---|---|---|---|---|---|---|---|\n")
	for i, r := range results {
		vsNative := ""
		if i > 0 {
			vsNative = fmt.Sprintf("%.2f×", r.reqs/native)
		}
		c := median[i]
		fmt.Fprintf(&b, "| %s | %.0f | %s | %s | %.0f%% | %s | %.2f | %.2f | %.0f | %.0f | %.0f |\n", r.name, r.reqs, r.p50, r.p99, 100*r.reqs/bare, vsNative, perReq[i], evalsPerReq[i], us(c.traefikCPU), us(c.redisCPU), us(c.machineCPU))
	}
	b.WriteString("\nRedis commands per request, by command (commands run inside scripts count too):\n")
	for i, s := range scenarios {
		fmt.Fprintf(&b, "  %s: %s\n", s.name, breakdown[i])
	}
	ours := results[2].reqs / native
	suite := results[3].reqs / bare
	flood := results[6].reqs / results[2].reqs
	fmt.Fprintf(&b, "\ntarget: a client far over its limit ≥ 1.5× the allowed path of the same plugin, ~0 Redis commands per refusal: %.2f× with %.3f commands per request (%s)\n",
		flood, perReq[6], met(flood >= 1.5 && perReq[6] < 0.01))
	fmt.Fprintf(&b, "\ntargets: ratelimit alone ≥ 1.00× native rateLimit: %.2f× (%s); suite ≥ 45%% of no middleware: %.0f%% (%s)\n",
		ours, met(ours >= 1.0), 100*suite, met(suite >= 0.45))
	for i, s := range scenarios {
		b.WriteString(roundsLine(s.name, runs[i]))
	}
	fmt.Println(b.String())
}

func met(ok bool) string {
	if ok {
		return "met"
	}
	return "NOT met"
}

func redisVersion(t *testing.T, rdb *redis.Client) string {
	info, err := rdb.Info(context.Background(), "server").Result()
	if err != nil {
		t.Fatalf("INFO server: %v", err)
	}
	for _, line := range strings.Split(info, "\n") {
		if v, ok := strings.CutPrefix(strings.TrimSpace(line), "redis_version:"); ok {
			return v
		}
	}
	return "?"
}
