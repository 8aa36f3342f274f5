package bench

import (
	"crypto/tls"
	"fmt"
	"io"
	"maps"
	"net/http"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	vegeta "github.com/tsenart/vegeta/v12/lib"

	"github.com/pavilion-trust/gateway/integration/configcheck"
	"github.com/pavilion-trust/gateway/integration/gatewaytest"
	"github.com/pavilion-trust/gateway/integration/pluginharness"
	"github.com/pavilion-trust/gateway/integration/redistest"
	"github.com/pavilion-trust/gateway/integration/traefiktest"
)

var (
	memoryDuration = envDuration("BENCH_MEMORY_DURATION", 10*time.Minute)
	memoryRate     = envInt("BENCH_MEMORY_RATE", 1000)
	memoryAnchor   = envDuration("BENCH_MEMORY_ANCHOR", 2*time.Minute)
	// memoryEnv is added to the environment of the gateway's Traefik only ("K=V K2=V2"), to
	// try runtime settings such as GOMEMLIMIT against Traefik alone with its defaults.
	memoryEnv = strings.Fields(os.Getenv("BENCH_MEMORY_ENV"))
)

// TestBenchMemory reports Traefik's resident memory: with no plugin, with every plugin of
// the repository declared, with the plugins the gateway uses (those static/traefik.yml
// declares), and the gateway as shipped (static/, dynamic/) before and during
// BENCH_MEMORY_DURATION (default 10m) of authenticated requests at BENCH_MEMORY_RATE per
// second (default 1000) over TLS + HTTP/2, sampled every 30 seconds.
func TestBenchMemory(t *testing.T) {
	_, iss := setup(t)
	tok, err := iss.Token("svc")
	if err != nil {
		t.Fatal(err)
	}
	backend := startBackend(t)
	bare := "http:\n  routers:\n" + plainRouter("bare", "/bare", "") +
		fmt.Sprintf("  services:\n    backend:\n      loadBalancer:\n        servers:\n          - url: %q\n", backend)
	all := map[string]string{
		"pavilion":  "github.com/pavilion-trust/gateway",
		"health":    "github.com/pavilion-trust/gateway/plugins/health",
		"jwtauth":   "github.com/pavilion-trust/gateway/plugins/jwtauth",
		"ratelimit": "github.com/pavilion-trust/gateway/plugins/ratelimit",
		"requestid": "github.com/pavilion-trust/gateway/plugins/requestid",
	}
	used, err := configcheck.LocalPlugins(filepath.Join(pluginharness.RepoRoot(), "static", "traefik.yml"))
	if err != nil || len(used) == 0 {
		t.Fatalf("the plugins static/traefik.yml declares: %v %v", used, err)
	}
	idle := func(name string, plugins map[string]string) int64 {
		gw := traefiktest.Start(t, traefiktest.Options{Dynamic: bare, Plugins: plugins, WaitRouters: []string{"bare@file"}, Quiet: true})
		a := vegeta.NewAttacker(vegeta.KeepAlive(true))
		for range a.Attack(vegeta.NewStaticTargeter(vegeta.Target{Method: "GET", URL: gw.URL + "/bare"}), vegeta.Rate{Freq: 500, Per: time.Second}, 5*time.Second, name) {
		}
		rss := residentKiB(t, gw.Pid())
		gw.Stop()
		return rss
	}
	none := idle("none", nil)
	everyPlugin := idle("all", all)
	usedPlugins := idle("used", used)

	rd := redistest.Start(t)
	opts, roots := gatewayOptions(t, iss, rd)
	opts.Wait = []string{"native-chain@file"}
	h := http.Header{}
	h.Set("Authorization", "Bearer "+tok)
	h.Set("Origin", "https://portal.pavilion.example")
	h.Set("Accept-Encoding", "gzip")
	type sample struct {
		at         time.Duration
		rss        int64
		anon, file int64 // RssAnon, RssFile
		gor        int
	}
	sampleOf := func(g *gatewaytest.Gateway, at time.Duration) sample {
		return sample{at: at, rss: residentKiB(t, g.Pid()), anon: statusKiB(t, g.Pid(), "RssAnon"), file: statusKiB(t, g.Pid(), "RssFile"), gor: goroutines(g)}
	}
	// load sends authenticated requests to path at memoryRate for d and samples the
	// process's memory every 30 seconds.
	load := func(g *gatewaytest.Gateway, path string, d time.Duration) ([]sample, map[uint16]int) {
		target := vegeta.Target{Method: "GET", URL: g.HTTPSURL + path, Header: h}
		a := vegeta.NewAttacker(vegeta.KeepAlive(true), vegeta.HTTP2(true), vegeta.TLSConfig(&tls.Config{RootCAs: roots, ServerName: "localhost"}))
		var samples []sample
		done, stop := make(chan struct{}), make(chan struct{})
		began := time.Now()
		go func() {
			defer close(done)
			tick := time.NewTicker(30 * time.Second)
			defer tick.Stop()
			for {
				select {
				case <-tick.C:
					samples = append(samples, sampleOf(g, time.Since(began).Round(time.Second)))
				case <-stop:
					return
				}
			}
		}()
		codes := map[uint16]int{}
		for r := range a.Attack(vegeta.NewStaticTargeter(target), vegeta.Rate{Freq: memoryRate, Per: time.Second}, d, path) {
			codes[r.Code]++
		}
		close(stop)
		<-done
		return append(samples, sampleOf(g, time.Since(began).Round(time.Second))), codes
	}

	// Traefik alone: the gateway's static configuration without the plugins, the native
	// chain (TLS, HTTP/2, headers, CORS, compress, h2c, logs, metrics) under the same load.
	alone := opts
	alone.WithoutPlugins = true
	ga := gatewaytest.StartWith(t, alone)
	aloneStart := residentKiB(t, ga.Pid())
	aloneSamples, _ := load(ga, "/native/api/v1/accounts", memoryAnchor)
	ga.Stop()

	opts.Wait = []string{"api-v1@file", "native-chain@file"}
	opts.Env = append(opts.Env, memoryEnv...)
	full := gatewaytest.StartWith(t, opts)
	start := residentKiB(t, full.Pid())
	samples, codes := load(full, "/api/v1/accounts", memoryDuration)
	aloneEnd := aloneSamples[len(aloneSamples)-1].rss

	var b strings.Builder
	fmt.Fprintf(&b, "\nTraefik resident memory (VmRSS), %s\n\n| Traefik | RSS MiB | vs no plugin |\n|---|---|---|\n", time.Now().UTC().Format("2006-01-02 15:04 UTC"))
	row := func(name string, kib int64) {
		fmt.Fprintf(&b, "| %s | %.1f | %.2f× |\n", name, float64(kib)/1024, float64(kib)/float64(none))
	}
	row("no plugin (one router, 5 s at 500 req/s)", none)
	row("all five plugins of the repository declared (same)", everyPlugin)
	row(fmt.Sprintf("the plugins static/ declares: %s (same)", strings.Join(slices.Sorted(maps.Keys(used)), ", ")), usedPlugins)
	row("Traefik alone: static/ without plugins, ready", aloneStart)
	for _, s := range aloneSamples {
		row(fmt.Sprintf("Traefik alone, native chain, after %s at %d req/s (goroutines %d; anon %.1f, file %.1f MiB)", s.at, memoryRate, s.gor, float64(s.anon)/1024, float64(s.file)/1024), s.rss)
	}
	row(fmt.Sprintf("the gateway as shipped (static/, dynamic/), ready%s", envNote(memoryEnv)), start)
	for _, s := range samples {
		row(fmt.Sprintf("the gateway, full chain, after %s at %d req/s (goroutines %d; anon %.1f, file %.1f MiB)", s.at, memoryRate, s.gor, float64(s.anon)/1024, float64(s.file)/1024), s.rss)
	}
	end := samples[len(samples)-1].rss
	fmt.Fprintf(&b, "\ntarget: the gateway within 1.5× of Traefik alone under the same load: %.2f× at the end (%s)\n", float64(end)/float64(aloneEnd), met(float64(end) <= 1.5*float64(aloneEnd)))
	fmt.Fprintf(&b, "answers during the gateway's load: %v\n", codes)
	fmt.Println(b.String())
}

// residentKiB is VmRSS of a process, in KiB.
func residentKiB(t *testing.T, pid int) int64 {
	t.Helper()
	return statusKiB(t, pid, "VmRSS")
}

// statusKiB is one "<field>: <n> kB" line of /proc/<pid>/status: VmRSS, or its parts
// RssAnon (the heap, stacks: what the Go runtime and the interpreters allocate) and RssFile
// (pages of the executable and other files that were touched).
func statusKiB(t *testing.T, pid int, field string) int64 {
	t.Helper()
	b, err := os.ReadFile("/proc/" + strconv.Itoa(pid) + "/status")
	if err != nil {
		t.Fatal(err)
	}
	for _, line := range strings.Split(string(b), "\n") {
		if v, ok := strings.CutPrefix(line, field+":"); ok {
			n, err := strconv.ParseInt(strings.TrimSpace(strings.TrimSuffix(strings.TrimSpace(v), "kB")), 10, 64)
			if err != nil {
				t.Fatalf("%s: %q", field, line)
			}
			return n
		}
	}
	t.Fatalf("no %s in /proc/%d/status", field, pid)
	return 0
}

// goroutines is the gateway's goroutine count from its Prometheus metrics (go_goroutines).
func goroutines(g *gatewaytest.Gateway) int {
	res, err := http.Get(g.InternalURL + "/metrics")
	if err != nil {
		return -1
	}
	defer res.Body.Close()
	body, err := io.ReadAll(io.LimitReader(res.Body, 8<<20))
	if err != nil {
		return -1
	}
	for _, line := range strings.Split(string(body), "\n") {
		if v, ok := strings.CutPrefix(line, "go_goroutines "); ok {
			n, _ := strconv.ParseFloat(v, 64)
			return int(n)
		}
	}
	return -1
}

// envNote names the extra environment of the gateway's Traefik in a row, "" for none.
func envNote(env []string) string {
	if len(env) == 0 {
		return ""
	}
	return " (" + strings.Join(env, " ") + ")"
}
