// Package bench measures the gateway's throughput and latency with wrk over loopback: Traefik
// with no middleware against Traefik with the plugins, side by side in one run. Run it with
// `make bench`; it is skipped unless PAVILION_BENCH=1.
package bench

import (
	"fmt"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"runtime"
	"sort"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/pavilion-trust/gateway/demo/devissuer/issuer"
	"github.com/pavilion-trust/gateway/integration/traefiktest"
)

// Load shape of every measurement in docs/performance.md (wrk -t2 -c32).
var (
	threads     = envInt("BENCH_THREADS", 2)
	connections = envInt("BENCH_CONNECTIONS", 32)
	duration    = envDuration("BENCH_DURATION", 5*time.Second)
	rounds      = envInt("BENCH_ROUNDS", 3)
	uniqueN     = envInt("BENCH_UNIQUE_TOKENS", 240000)
)

// wrkScript sends the tokens of a file (one per line), each thread its own share, in order,
// wrapping around at the end. done() reports when a run used more requests than tokens.
const wrkScript = `
local counter = 0
function setup(thread)
  thread:set("tid", counter)
  counter = counter + 1
end
function init(args)
  local all = {}
  for line in io.lines(os.getenv("TOKENS_FILE")) do all[#all + 1] = line end
  tokens = {}
  if #all < %d then tokens = all else
    for n = 1, #all do
      if (n - 1) % %d == tid then tokens[#tokens + 1] = all[n] end
    end
  end
  i = 0
end
function request()
  i = i + 1
  if i > #tokens then i = 1 end
  return wrk.format("GET", nil, {["Authorization"] = "Bearer " .. tokens[i]})
end
`

type result struct {
	name     string
	reqs     float64
	p50, p99 time.Duration
	total    int
}

func TestBenchJWT(t *testing.T) {
	wrk, iss := setup(t)
	backend := startBackend(t)

	auth := func(name string) string {
		return fmt.Sprintf("    %s:\n      plugin:\n        jwtauth:\n          issuer: %q\n          audiences: [core-broker]\n          requiredRoles: [broker-user]\n", name, iss.IssuerURL())
	}
	router := func(name, prefix, mw string) string {
		s := fmt.Sprintf("    %s:\n      entryPoints: [web]\n      rule: PathPrefix(`%s`)\n      service: backend\n", name, prefix)
		if mw != "" {
			s += fmt.Sprintf("      middlewares: [%s]\n", mw)
		}
		return s
	}
	dyn := "http:\n  routers:\n" + router("bare", "/bare", "") + router("one", "/one", "a-one") +
		router("rot", "/rot", "a-rot") + router("uniq", "/uniq", "a-uniq") +
		router("forged", "/forged", "a-forged") + router("fresh", "/fresh", "a-fresh") +
		"  middlewares:\n" + auth("a-one") + auth("a-rot") + auth("a-uniq") + auth("a-forged") + auth("a-fresh") +
		fmt.Sprintf("  services:\n    backend:\n      loadBalancer:\n        servers:\n          - url: %q\n", backend)
	gw := traefiktest.Start(t, traefiktest.Options{
		Dynamic: dyn, Plugins: map[string]string{"jwtauth": "github.com/pavilion-trust/gateway/plugins/jwtauth"},
		WaitRouters: []string{"bare@file", "one@file", "rot@file", "uniq@file", "forged@file", "fresh@file"}, Quiet: true,
	})

	dir := t.TempDir()
	one := writeTokens(t, iss, filepath.Join(dir, "one.txt"), 1)
	rot := writeTokens(t, iss, filepath.Join(dir, "rot.txt"), 1000)
	t.Logf("signing %d unique tokens for the worst case…", uniqueN)
	var uniq, fresh []string
	for r := 0; r < rounds; r++ {
		uniq = append(uniq, writeTokens(t, iss, filepath.Join(dir, fmt.Sprintf("uniq-%d.txt", r)), uniqueN/rounds))
		fresh = append(fresh, forgeTokens(t, uniq[r], filepath.Join(dir, fmt.Sprintf("fresh-%d.txt", r))))
	}
	forged := forgeTokens(t, one, filepath.Join(dir, "forged.txt"))
	script := filepath.Join(dir, "tokens.lua")
	if err := os.WriteFile(script, []byte(strings.ReplaceAll(wrkScript, "%d", strconv.Itoa(threads))), 0o644); err != nil {
		t.Fatal(err)
	}

	run := func(name, path, tokens string, d time.Duration) result {
		refused := path == "/forged" || path == "/fresh"
		args := []string{"-t", strconv.Itoa(threads), "-c", strconv.Itoa(connections), "-d", d.String(), "--latency"}
		if tokens != "" {
			args = append(args, "-s", script)
		}
		target := gw.URL + path
		if strings.HasPrefix(path, "http") {
			target = path
		}
		cmd := exec.Command(wrk, append(args, target)...)
		cmd.Env = append(os.Environ(), "TOKENS_FILE="+tokens)
		out, err := cmd.CombinedOutput()
		if err != nil {
			t.Fatalf("wrk %s: %v\n%s", name, err, out)
		}
		r := parseWrk(t, name, string(out))
		if strings.Contains(string(out), "Non-2xx") != refused {
			t.Fatalf("%s: wrk saw non-2xx answers: %v, want %v:\n%s", name, !refused, refused, out)
		}
		return r
	}

	// Warm up every path (the interpreter, connection pools, the token caches).
	run("warm bare", "/bare", "", 3*time.Second)
	run("warm one", "/one", one, 2*time.Second)
	run("warm rot", "/rot", rot, 3*time.Second)

	// Rounds interleave the scenarios so that drift on the shared machine hits them alike;
	// each scenario reports its median round. The worst case gets fresh tokens every round.
	direct := run("backend direct, no Traefik (context)", backend+"/", "", duration)
	type scenario struct{ name, path, tokens string }
	scenarios := []scenario{
		{"Traefik, no middleware", "/bare", ""},
		{"jwtauth RS256, one repeated token", "/one", one},
		{"jwtauth RS256, 1,000 tokens in rotation", "/rot", rot},
		{"jwtauth RS256, every token new (full verification)", "/uniq", ""},
		{"jwtauth, one repeated forged token (401 from the refused-token cache)", "/forged", forged},
		{"jwtauth, every forged token new (401, one signature check each)", "/fresh", ""},
	}
	runs := make([][]result, len(scenarios))
	for round := 0; round < rounds; round++ {
		for i, s := range scenarios {
			tokens := s.tokens
			if s.path == "/uniq" {
				tokens = uniq[round]
			}
			if s.path == "/fresh" {
				tokens = fresh[round]
			}
			r := run(s.name, s.path, tokens, duration)
			if (s.path == "/uniq" || s.path == "/fresh") && r.total > uniqueN/rounds {
				t.Fatalf("worst case sent %d requests but had only %d unique tokens per round: raise BENCH_UNIQUE_TOKENS", r.total, uniqueN/rounds)
			}
			runs[i] = append(runs[i], r)
		}
	}
	results := make([]result, len(scenarios))
	for i := range runs {
		sort.Slice(runs[i], func(a, b int) bool { return runs[i][a].reqs < runs[i][b].reqs })
		results[i] = runs[i][len(runs[i])/2]
	}
	bare := results[0].reqs
	var b strings.Builder
	fmt.Fprintf(&b, "\nwrk -t%d -c%d, %d rounds of %s per scenario (median round shown), loopback, %d cores shared by wrk, Traefik, backend and issuer\n\n", threads, connections, rounds, duration, numCPU())
	b.WriteString("| scenario | req/s | p50 | p99 | vs no middleware |\n|---|---|---|---|---|\n")
	fmt.Fprintf(&b, "| %s | %.0f | %s | %s | |\n", direct.name, direct.reqs, direct.p50, direct.p99)
	for _, r := range results {
		fmt.Fprintf(&b, "| %s | %.0f | %s | %s | %.0f%% |\n", r.name, r.reqs, r.p50, r.p99, 100*r.reqs/bare)
	}
	forgedRatio := results[4].reqs / results[1].reqs
	fmt.Fprintf(&b, "\ntarget: a repeated forged token ≥ 90%% of a repeated valid token: %.0f%% (%s)\n", 100*forgedRatio, met(forgedRatio >= 0.9))
	for i, s := range scenarios {
		b.WriteString(roundsLine(s.name, runs[i]))
	}
	fmt.Println(b.String())
}

// forgeTokens writes the tokens of the file src with their signatures altered (the first
// eight characters replaced), each a distinct forged token, to path.
func forgeTokens(t testing.TB, src, path string) string {
	t.Helper()
	b, err := os.ReadFile(src)
	if err != nil {
		t.Fatal(err)
	}
	var out []string
	for _, tok := range strings.Fields(string(b)) {
		i := strings.LastIndexByte(tok, '.') + 1
		sig := []byte(tok[i:])
		for j := 0; j < 8 && j < len(sig); j++ {
			sig[j] = "AB"[(int(sig[j])+1)%2]
		}
		out = append(out, tok[:i]+string(sig))
	}
	if err := os.WriteFile(path, []byte(strings.Join(out, "\n")+"\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	return path
}

func writeTokens(t testing.TB, iss *issuer.Issuer, path string, n int) string {
	t.Helper()
	tokens := make([]string, n)
	var wg sync.WaitGroup
	workers := numCPU()
	for w := 0; w < workers; w++ {
		wg.Add(1)
		go func(w int) {
			defer wg.Done()
			for i := w; i < n; i += workers {
				tok, err := iss.Token("svc")
				if err != nil {
					t.Error(err)
					return
				}
				tokens[i] = tok
			}
		}(w)
	}
	wg.Wait()
	if err := os.WriteFile(path, []byte(strings.Join(tokens, "\n")+"\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	return path
}

// startBackend runs the tiny upstream of the baseline measurements.
func startBackend(t testing.TB) string {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	srv := &http.Server{Handler: http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "text/plain")
		w.Write([]byte("ok\n"))
	})}
	go srv.Serve(ln)
	t.Cleanup(func() { srv.Close() })
	return "http://" + ln.Addr().String()
}

var (
	reqsRe    = regexp.MustCompile(`Requests/sec:\s+([0-9.]+)`)
	totalRe   = regexp.MustCompile(`(\d+) requests in`)
	latencyRe = regexp.MustCompile(`(?m)^\s+(50|99)%\s+([0-9.]+)(us|ms|s)\s*$`)
)

func parseWrk(t *testing.T, name, out string) result {
	r := result{name: name}
	m := reqsRe.FindStringSubmatch(out)
	if m == nil {
		t.Fatalf("%s: no Requests/sec in wrk output:\n%s", name, out)
	}
	r.reqs, _ = strconv.ParseFloat(m[1], 64)
	if m := totalRe.FindStringSubmatch(out); m != nil {
		r.total, _ = strconv.Atoi(m[1])
	}
	for _, m := range latencyRe.FindAllStringSubmatch(out, -1) {
		v, _ := strconv.ParseFloat(m[2], 64)
		unit := map[string]time.Duration{"us": time.Microsecond, "ms": time.Millisecond, "s": time.Second}[m[3]]
		d := time.Duration(v * float64(unit)).Round(10 * time.Microsecond)
		if m[1] == "50" {
			r.p50 = d
		} else {
			r.p99 = d
		}
	}
	return r
}

func numCPU() int { return runtime.NumCPU() }

func envInt(name string, def int) int {
	if v, err := strconv.Atoi(os.Getenv(name)); err == nil && v > 0 {
		return v
	}
	return def
}

func envDuration(name string, def time.Duration) time.Duration {
	if v, err := time.ParseDuration(os.Getenv(name)); err == nil && v > 0 {
		return v
	}
	return def
}

// setup is what every benchmark starts with: skip unless PAVILION_BENCH=1, wrk's path, and
// a running development issuer with one service client (tokens valid for an hour).
func setup(t testing.TB) (string, *issuer.Issuer) {
	t.Helper()
	if os.Getenv("PAVILION_BENCH") != "1" {
		t.Skip("set PAVILION_BENCH=1 (make bench) to run the benchmark")
	}
	wrk, err := exec.LookPath("wrk")
	if err != nil {
		t.Fatal("wrk is not installed (apt-get install wrk)")
	}
	iss, err := issuer.New(issuer.Config{Clients: []issuer.Client{{ID: "svc", Secret: "s", Audience: []string{"core-broker"},
		Scopes: []string{"broker:read"}, RealmRoles: []string{"broker-user"}}}, TokenLifetime: time.Hour})
	if err != nil {
		t.Fatal(err)
	}
	if err := iss.Start("127.0.0.1:0"); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { iss.Stop() })
	return wrk, iss
}

// rate is the req/s of a run (measured embeds result, so both have it).
func (r result) rate() float64 { return r.reqs }

// roundsLine is "\n<name>: req/s per round (sorted) a, b, c" for one scenario's rounds.
func roundsLine[R interface{ rate() float64 }](name string, rounds []R) string {
	all := make([]string, len(rounds))
	for i, r := range rounds {
		all[i] = fmt.Sprintf("%.0f", r.rate())
	}
	return fmt.Sprintf("\n%s: req/s per round (sorted) %s", name, strings.Join(all, ", "))
}
