package bench

import (
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/pavilion-trust/gateway/integration/redistest"
	"github.com/pavilion-trust/gateway/integration/scaleout"
	"github.com/pavilion-trust/gateway/integration/traefiktest"
)

// spreadClients is a wrk script: each request carries one of 1000 client keys (so that a
// cluster's slots are all used).
const spreadClients = `
math.randomseed(os.time())
request = function()
  return wrk.format(nil, nil, {["X-Auth-Client"] = "bench-" .. math.random(1, 1000)})
end
`

// TestBenchFourGateways: four Traefik instances share one limit, on one standalone Redis and
// on a three-primary cluster. Part 1, per algorithm (one after the other, PAVILION_FOUR_DURATION
// each, default 10s): 32 clients of 20 requests per 1s window driven round-robin against the
// four; admitted per client per window against the limit (scaleout.Check). Part 2, limits
// never reached (sliding-window): wrk -c32 against one gateway, then 4 × wrk -c8 against the
// four, on standalone and on the cluster: throughput of four against one and of the cluster
// against standalone, in the same run.
func TestBenchFourGateways(t *testing.T) {
	wrk, _ := setup(t)
	d := envDuration("PAVILION_FOUR_DURATION", 10*time.Second)
	const (
		limit   = 20
		clients = 32
	)
	backend := startBackend(t)
	rd := redistest.Start(t)
	cl := redistest.StartCluster(t)
	topologies := []struct{ name, redis string }{
		{"standalone", fmt.Sprintf("{address: %q, poolSize: \"32\", timeout: 1s}", rd.Addr())},
		{"cluster", fmt.Sprintf("{cluster: {addresses: [%s]}, poolSize: \"32\", timeout: 1s}", strings.Join(quoteAll(cl.Seeds()), ", "))},
	}
	algorithms := []string{"sliding-window", "sliding-log", "gcra"}
	var b strings.Builder
	b.WriteString("http:\n  routers:\n")
	var names []string
	mw := func(name, redis, alg string, requests int) string {
		return fmt.Sprintf("    %s:\n      plugin:\n        ratelimit:\n          redis: %s\n          keyPrefix: four-%s\n          algorithm: %s\n"+
			"          failurePolicy: closed\n          sources: [\"header:X-Auth-Client\"]\n          limits: [{requests: \"%d\", window: 1s}]\n",
			name, redis, name, alg, requests)
	}
	var mws strings.Builder
	for _, topo := range topologies {
		for _, alg := range append(algorithms, "open") {
			name := topo.name + "-" + alg
			algorithm := alg
			requests := limit
			if alg == "open" { // limits never reached: throughput
				algorithm = "sliding-window"
				requests = 1000000000
			}
			fmt.Fprintf(&b, "    %s:\n      entryPoints: [web]\n      rule: PathPrefix(`/%s/`)\n      middlewares: [%s]\n      service: backend\n", name, name, name)
			mws.WriteString(mw(name, topo.redis, algorithm, requests))
			names = append(names, name+"@file")
		}
	}
	dyn := b.String() + "  middlewares:\n" + mws.String() +
		fmt.Sprintf("  services:\n    backend:\n      loadBalancer:\n        servers:\n          - url: %q\n", backend)
	var gws []*traefiktest.Traefik
	for i := 0; i < 4; i++ {
		gws = append(gws, traefiktest.Start(t, traefiktest.Options{Dynamic: dyn, Plugins: map[string]string{"ratelimit": "github.com/pavilion-trust/gateway/plugins/ratelimit"},
			AbortOnPluginFailure: true, WaitRouters: names, Quiet: true}))
	}

	// Warm up every route on every gateway (the interpreter's first calls, the pools).
	for _, gw := range gws {
		for _, n := range names {
			u := gw.URL + "/" + strings.TrimSuffix(n, "@file") + "/x"
			scaleout.Load([]string{u}, []string{"warmup"}, 1, 200*time.Millisecond)
		}
	}

	var results []scaleout.Result
	for _, topo := range topologies {
		for _, alg := range algorithms {
			var urls []string
			for _, gw := range gws {
				urls = append(urls, gw.URL+"/"+topo.name+"-"+alg+"/x")
			}
			var cs []string
			for i := 0; i < clients; i++ {
				cs = append(cs, fmt.Sprintf("%s-%s-%d", topo.name, alg, i))
			}
			r := scaleout.Analyze(topo.name, alg, limit, time.Second, scaleout.Load(urls, cs, clients, d), d)
			results = append(results, r)
			if p := scaleout.Check(r); p != "" {
				t.Errorf("%s %s: %s", topo.name, alg, p)
			}
		}
	}

	script := filepath.Join(t.TempDir(), "clients.lua")
	if err := os.WriteFile(script, []byte(spreadClients), 0o644); err != nil {
		t.Fatal(err)
	}
	// wrkRun runs one wrk per URL at once, conns connections each, and returns the total req/s.
	wrkRun := func(urls []string, conns int) float64 {
		var mu sync.Mutex
		var wg sync.WaitGroup
		total := 0.0
		for _, u := range urls {
			wg.Add(1)
			go func(u string) {
				defer wg.Done()
				out, err := exec.Command(wrk, "-t", "1", "-c", strconv.Itoa(conns), "-d", d.String(), "-s", script, u).CombinedOutput()
				if err != nil || strings.Contains(string(out), "Non-2xx") {
					t.Errorf("wrk %s: %v\n%s", u, err, out)
					return
				}
				r := parseWrk(t, u, string(out))
				mu.Lock()
				total += r.reqs
				mu.Unlock()
			}(u)
		}
		wg.Wait()
		return total
	}
	type tp struct {
		name      string
		one, four float64
	}
	// Three rounds, the four runs interleaved in each; the median round of each is shown
	// (the machine is shared: absolute numbers move, ratios in one run count).
	const rounds = 3
	runs := map[string][]float64{}
	for round := 0; round < rounds; round++ {
		for _, topo := range topologies {
			var urls []string
			for _, gw := range gws {
				urls = append(urls, gw.URL+"/"+topo.name+"-open/x")
			}
			runs[topo.name+"/one"] = append(runs[topo.name+"/one"], wrkRun(urls[:1], 32))
			runs[topo.name+"/four"] = append(runs[topo.name+"/four"], wrkRun(urls, 8))
		}
	}
	var tps []tp
	for _, topo := range topologies {
		tps = append(tps, tp{topo.name, median(runs[topo.name+"/one"]), median(runs[topo.name+"/four"])})
	}
	var out strings.Builder
	fmt.Fprintf(&out, "\nFour gateways, one limit (%d clients per algorithm, %d requests per 1s window each, %s per run, round-robin over four Traefik):\n\n", clients, limit, d)
	out.WriteString(scaleout.Table(results))
	out.WriteString("\nThroughput, limits never reached (sliding-window, 1000 client keys, wrk -c32 in all, median of 3 interleaved rounds):\n\n| topology | one gateway req/s | four gateways req/s | four / one |\n|---|---|---|---|\n")
	for _, x := range tps {
		fmt.Fprintf(&out, "| %s | %.0f | %.0f | %.2f |\n", x.name, x.one, x.four, x.four/x.one)
	}
	if len(tps) == 2 && tps[0].one > 0 && tps[0].four > 0 {
		fmt.Fprintf(&out, "\ncluster / standalone (same run): one gateway %.2f, four gateways %.2f\n", tps[1].one/tps[0].one, tps[1].four/tps[0].four)
	}
	t.Log(out.String())
	fmt.Print(out.String())
}

func quoteAll(in []string) []string {
	var out []string
	for _, s := range in {
		out = append(out, strconv.Quote(s))
	}
	return out
}

func median(v []float64) float64 {
	if len(v) == 0 {
		return 0
	}
	c := append([]float64(nil), v...)
	sort.Float64s(c)
	return c[len(c)/2]
}
