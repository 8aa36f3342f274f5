package plugintest

import (
	"fmt"
	"sync"
	"testing"
	"time"

	"github.com/pavilion-trust/gateway/integration/echo"
	"github.com/pavilion-trust/gateway/integration/redistest"
	"github.com/pavilion-trust/gateway/integration/scaleout"
	"github.com/pavilion-trust/gateway/integration/traefiktest"
)

// TestFourGatewaysOneLimit: four Traefik instances on one Redis (standalone, then a
// cluster), load against all four at once for 10 s per topology, every algorithm at the
// same time, clients of a known limit per 1 s window: what each client was admitted, per
// window, against its limit (scaleout.Check states the bound of each algorithm).
func TestFourGatewaysOneLimit(t *testing.T) {
	if testing.Short() {
		t.Skip("-short: 20 s of load")
	}
	const (
		limit    = 10
		clients  = 8
		duration = 10 * time.Second
		gateways = 4
	)
	rd := redistest.Start(t)
	cl := redistest.StartCluster(t)
	up := echo.Start(t, "core-broker-1")
	var seeds []any
	for _, a := range cl.Seeds() {
		seeds = append(seeds, a)
	}
	topologies := []struct {
		name  string
		redis map[string]any
	}{
		{"standalone", map[string]any{"address": rd.Addr(), "timeout": "2s"}},
		{"cluster", map[string]any{"cluster": map[string]any{"addresses": seeds}, "timeout": "2s"}},
	}
	var routes []rlRoute
	for _, topo := range topologies {
		for _, alg := range rlAlgorithms {
			cfg := topoConfig(topo.redis, "four-"+topo.name, alg, "closed", limit)
			cfg["limits"] = []any{map[string]any{"requests": fmt.Sprint(limit), "window": "1s"}}
			routes = append(routes, rlRoute{name: topo.name + "-" + alg, plugin: "ratelimit", cfg: cfg})
		}
	}
	dyn, names := rlDynamic(up.URL, routes...)
	var gws []*traefiktest.Traefik
	for i := 0; i < gateways; i++ {
		gws = append(gws, traefiktest.Start(t, traefiktest.Options{Dynamic: dyn, Plugins: topoPlugins, WaitRouters: names, AbortOnPluginFailure: true, Quiet: true}))
	}

	var results []scaleout.Result
	for _, topo := range topologies {
		var mu sync.Mutex
		var wg sync.WaitGroup
		for _, alg := range rlAlgorithms {
			wg.Add(1)
			go func(alg string) {
				defer wg.Done()
				var urls []string
				for _, gw := range gws {
					urls = append(urls, gw.URL+"/"+topo.name+"-"+alg+"/x")
				}
				samples := scaleout.Load(urls, clientNames(topo.name+"-"+alg, clients), clients, duration)
				r := scaleout.Analyze(topo.name, alg, limit, time.Second, samples, duration)
				mu.Lock()
				results = append(results, r)
				mu.Unlock()
			}(alg)
		}
		wg.Wait()
	}
	t.Logf("four gateways, one limit (%d clients per algorithm, %d per 1s each, %s per topology, all algorithms at once):\n%s",
		clients, limit, duration, scaleout.Table(results))
	for _, r := range results {
		if p := scaleout.Check(r); p != "" {
			t.Errorf("%s %s: %s", r.Name, r.Algorithm, p)
		}
		for g, n := range r.Gateways {
			if n == 0 {
				t.Errorf("%s %s: gateway %d admitted nothing: the load did not reach all four", r.Name, r.Algorithm, g+1)
			}
		}
	}
}
