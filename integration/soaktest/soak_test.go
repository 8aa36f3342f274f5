// Package soaktest runs the gateway through a long day: open-loop load (vegeta, a fixed arrival
// rate) through the full TLS chain with valid tokens from several clients that refresh them,
// while Redis restarts, the issuer rotates its key, a Core Broker dies and comes back, a
// dynamic file is rewritten and hostile requests run in parallel. `make soak` (60s) or
// `make soak DURATION=30m`; skipped unless PAVILION_SOAK is set.
package soaktest

import (
	"bufio"
	"crypto/tls"
	"crypto/x509"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/url"
	"os"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	vegeta "github.com/tsenart/vegeta/v12/lib"

	"github.com/pavilion-trust/gateway/demo/certs/devca"
	"github.com/pavilion-trust/gateway/demo/devissuer/issuer"
	"github.com/pavilion-trust/gateway/integration/echo"
	"github.com/pavilion-trust/gateway/integration/gatewaytest"
	"github.com/pavilion-trust/gateway/integration/redistest"
)

const clients = 8

// window is a failure the soak causes, and the time after it during which valid requests may
// fail by policy (Redis: local fallback; broker: until the health check drops it).
type window struct {
	name       string
	start, end time.Time
}

func TestSoak(t *testing.T) {
	if os.Getenv("PAVILION_SOAK") == "" {
		t.Skip("set PAVILION_SOAK=1 (make soak)")
	}
	duration := envDuration(t, "PAVILION_SOAK_DURATION", time.Minute)
	rate := envInt(t, "PAVILION_SOAK_RATE", 1000)

	certs, err := devca.Generate(t.TempDir(), devca.Options{})
	if err != nil {
		t.Fatal(err)
	}
	rds := redistest.Start(t)
	var cl []issuer.Client
	for i := 0; i < clients; i++ {
		cl = append(cl, issuer.Client{ID: fmt.Sprintf("soak-%d", i), Secret: "soak-secret", Audience: []string{"core-broker"},
			Scopes: []string{"broker:read"}, RealmRoles: []string{"broker-user"}})
	}
	// Tokens live a quarter of the run (20s at least): clients refresh them as they go.
	lifetime := duration / 4
	if lifetime < 20*time.Second {
		lifetime = 20 * time.Second
	}
	iss, err := issuer.New(issuer.Config{Clients: cl, TokenLifetime: lifetime})
	if err != nil {
		t.Fatal(err)
	}
	if err := iss.Start("127.0.0.1:0"); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { iss.Stop() })
	brokers := []*echo.Server{echo.Start(t, "core-broker-1"), echo.Start(t, "core-broker-2")}
	gw := gatewaytest.StartWithDynamicCopy(t, []string{
		"PAVILION_ISSUER_URL=" + iss.IssuerURL(),
		"PAVILION_REDIS_ADDR=" + rds.Addr(),
		"PAVILION_BROKER_1_ADDR=" + strings.TrimPrefix(brokers[0].URL, "http://"),
		"PAVILION_BROKER_2_ADDR=" + strings.TrimPrefix(brokers[1].URL, "http://"),
		"PAVILION_RATE_REQUESTS=1000000", // the soak's clients stay under their limit
		"PAVILION_RATE_WINDOW=1s",
		"PAVILION_HEALTHCHECK_INTERVAL=1s",
		"PAVILION_TLS_CERT=" + certs.Cert,
		"PAVILION_TLS_KEY=" + certs.Key,
	}, "api-v1@file", "health@file")

	ca, err := os.ReadFile(certs.CACert)
	if err != nil {
		t.Fatal(err)
	}
	pool := x509.NewCertPool()
	pool.AppendCertsFromPEM(ca)
	tlsConf := &tls.Config{RootCAs: pool, ServerName: "localhost"}

	toks := newTokens(iss.IssuerURL())
	for i := 0; i < clients; i++ {
		if _, err := toks.get(i); err != nil {
			t.Fatal(err)
		}
	}
	var next atomic.Uint64
	target := gw.HTTPSURL + "/api/v1/accounts"
	targeter := func(tg *vegeta.Target) error {
		i := int(next.Add(1) % clients)
		tok, err := toks.get(i)
		if err != nil {
			return err
		}
		tg.Method = http.MethodGet
		tg.URL = target
		tg.Header = http.Header{"Authorization": {"Bearer " + tok}}
		return nil
	}

	startStats := traefikStats(t, gw)
	var (
		mu      sync.Mutex
		windows []window
	)
	// mark opens a failure window now; the function it returns closes it grace later.
	mark := func(name string, grace time.Duration) func() {
		mu.Lock()
		i := len(windows)
		windows = append(windows, window{name: name, start: time.Now(), end: time.Now().Add(time.Hour)})
		mu.Unlock()
		t.Logf("%s at +%v", name, time.Since(startStats.at).Round(time.Second))
		return func() {
			mu.Lock()
			windows[i].end = time.Now().Add(grace)
			mu.Unlock()
		}
	}

	// The schedule of failures, as fractions of the run.
	stop := make(chan struct{})
	var events sync.WaitGroup
	at := func(frac float64, f func()) {
		events.Add(1)
		go func() {
			defer events.Done()
			select {
			case <-time.After(time.Duration(frac * float64(duration))):
				f()
			case <-stop:
			}
		}()
	}
	at(0.15, func() {
		done := mark("redis restart", 3*time.Second)
		rds.Restart()
		done()
	})
	at(0.30, func() {
		done := mark("issuer key rotation", 0)
		if _, err := iss.Rotate(); err != nil {
			t.Error(err)
		}
		toks.expireAll() // clients fetch tokens of the new key at once
		done()
	})
	at(0.45, func() {
		done := mark("core-broker-1 killed and back after 5s", 3*time.Second)
		addr := strings.TrimPrefix(brokers[0].URL, "http://")
		brokers[0].Stop()
		time.Sleep(5 * time.Second)
		brokers[0] = echo.StartAt(t, "core-broker-1", addr)
		done()
	})
	at(0.65, func() {
		done := mark("dynamic/gateway.yml rewritten", time.Second)
		// Replaced as an operator's tooling should: a new file renamed over the old one. A
		// write in place can be read half-done by Traefik's watcher (an empty file: no
		// routers, 404s for the provider's 2-second throttle), seen in a 30-minute run.
		p := filepath.Join(gw.Dir, "dynamic", "gateway.yml")
		b, err := os.ReadFile(p)
		if err == nil {
			err = os.WriteFile(p+".tmp", append(b, []byte("\n# rewritten by the soak\n")...), 0o644)
		}
		if err == nil {
			err = os.Rename(p+".tmp", p)
		}
		if err != nil {
			t.Error(err)
		}
		done()
	})
	hostile := startHostile(t, gw.HTTPSURL, tlsConf, iss, stop)

	attacker := vegeta.NewAttacker(vegeta.TLSConfig(tlsConf), vegeta.HTTP2(true), vegeta.Timeout(10*time.Second),
		vegeta.MaxWorkers(2048), vegeta.KeepAlive(true))
	var (
		latencies []time.Duration
		byCause   = map[string]int{}
		wrong     = map[string]int{}
		wrongAt   = map[string]time.Duration{}
		ok        int
		first     time.Time
		last      time.Time
	)
	for res := range attacker.Attack(vegeta.Targeter(targeter), vegeta.Rate{Freq: rate, Per: time.Second}, duration, "soak") {
		if first.IsZero() {
			first = res.Timestamp
		}
		last = res.Timestamp.Add(res.Latency)
		latencies = append(latencies, res.Latency)
		if res.Code >= 200 && res.Code < 300 && res.Error == "" {
			ok++
			continue
		}
		cause := strconv.Itoa(int(res.Code))
		if res.Code == 0 {
			cause = "no answer: " + shorten(res.Error)
		}
		mu.Lock()
		in := ""
		// A request belongs to a failure if it was in flight at any moment of its window
		// (sent before the broker was killed and answered after is its victim too).
		for _, w := range windows {
			if !res.Timestamp.Add(res.Latency).Before(w.start) && !res.Timestamp.After(w.end) {
				in = w.name
			}
		}
		mu.Unlock()
		switch {
		case res.Code == 401 || res.Code == 403 || res.Code == 429:
			wrong["valid request refused ("+cause+")"]++
		case in == "":
			// Its time tells which event it followed.
			wrong[fmt.Sprintf("outside any failure window (%s, first at +%v)", cause, firstAt(wrongAt, cause, res.Timestamp.Sub(first)))]++
		default:
			byCause[cause+" during "+in]++
		}
	}
	close(stop)
	events.Wait()
	hostileAdmitted, hostileSent := hostile()
	if hostileAdmitted > 0 {
		wrong["hostile request admitted"] += int(hostileAdmitted)
	}
	time.Sleep(2 * time.Second) // let connections settle before the end figures
	endStats := traefikStats(t, gw)

	total := len(latencies)
	sort.Slice(latencies, func(i, j int) bool { return latencies[i] < latencies[j] })
	pct := func(p float64) time.Duration {
		if total == 0 {
			return 0
		}
		return latencies[int(p*float64(total-1))]
	}
	served := 100 * float64(ok) / float64(max(total, 1))
	var b strings.Builder
	fmt.Fprintf(&b, "soak: %v at %d req/s (achieved %.0f req/s), %d clients, tokens of %v\n", duration, rate,
		float64(total)/last.Sub(first).Seconds(), clients, lifetime)
	fmt.Fprintf(&b, "requests %d, 2xx %d (%.3f%% served)\n", total, ok, served)
	fmt.Fprintf(&b, "latency p50 %v  p99 %v  p99.9 %v  max %v\n", pct(0.5).Round(time.Microsecond), pct(0.99).Round(time.Microsecond),
		pct(0.999).Round(time.Microsecond), pct(1).Round(time.Microsecond))
	fmt.Fprintf(&b, "non-2xx by cause (within failure windows): %s\n", counts(byCause))
	fmt.Fprintf(&b, "wrong answers: %s\n", counts(wrong))
	fmt.Fprintf(&b, "hostile requests in parallel: %d, admitted %d\n", hostileSent, hostileAdmitted)
	fmt.Fprintf(&b, "traefik RSS %s -> %s, goroutines %s -> %s\n", startStats.rss, endStats.rss, startStats.goroutines, endStats.goroutines)
	t.Log("\n" + b.String())
	if len(wrong) > 0 {
		t.Errorf("wrong answers: %s", counts(wrong))
	}
	if served < 99.9 {
		t.Errorf("%.3f%% of valid requests served, want at least 99.9%%", served)
	}
}

// tokens holds one access token per client, fetched from the issuer's token endpoint with the
// client credentials grant and refreshed 5s before it expires, as a real client does.
type tokens struct {
	endpoint string
	mu       sync.Mutex
	tok      [clients]string
	exp      [clients]time.Time
}

func newTokens(issuerURL string) *tokens {
	return &tokens{endpoint: issuerURL + "/protocol/openid-connect/token"}
}

func (k *tokens) get(i int) (string, error) {
	k.mu.Lock()
	defer k.mu.Unlock()
	if k.tok[i] != "" && time.Until(k.exp[i]) > 5*time.Second {
		return k.tok[i], nil
	}
	res, err := http.PostForm(k.endpoint, url.Values{"grant_type": {"client_credentials"},
		"client_id": {fmt.Sprintf("soak-%d", i)}, "client_secret": {"soak-secret"}})
	if err != nil {
		return "", err
	}
	defer res.Body.Close()
	var body struct {
		AccessToken string `json:"access_token"`
		ExpiresIn   int64  `json:"expires_in"`
	}
	if err := json.NewDecoder(res.Body).Decode(&body); err != nil || body.AccessToken == "" {
		return "", fmt.Errorf("token endpoint: %d %v", res.StatusCode, err)
	}
	k.tok[i] = body.AccessToken
	k.exp[i] = time.Now().Add(time.Duration(body.ExpiresIn) * time.Second)
	return k.tok[i], nil
}

func (k *tokens) expireAll() {
	k.mu.Lock()
	defer k.mu.Unlock()
	for i := range k.exp {
		k.exp[i] = time.Time{}
	}
}

// startHostile sends refused requests (no token, a forged token, alg none, an encoded path)
// about 20 a second until stop; the function it returns waits and tells how many were
// admitted (2xx) of how many sent.
func startHostile(t *testing.T, base string, conf *tls.Config, iss *issuer.Issuer, stop chan struct{}) func() (int64, int64) {
	// The attacker has an address of its own (127.0.0.2): its invalid tokens spend its
	// failedAuth budget (it then gets 429), not the valid clients'.
	client := &http.Client{Timeout: 10 * time.Second, Transport: &http.Transport{TLSClientConfig: conf.Clone(), ForceAttemptHTTP2: true,
		DialContext: (&net.Dialer{LocalAddr: &net.TCPAddr{IP: net.IPv4(127, 0, 0, 2)}}).DialContext}}
	claims, err := iss.Claims("soak-0")
	if err != nil {
		t.Fatal(err)
	}
	payload, _ := json.Marshal(claims)
	b64 := func(s string) string { return base64.RawURLEncoding.EncodeToString([]byte(s)) }
	forged := b64(`{"alg":"RS256","kid":"`+iss.CurrentKID()+`"}`) + "." + b64(string(payload)) + "." + b64("not a signature")
	none := b64(`{"alg":"none"}`) + "." + b64(string(payload)) + "."
	requests := []struct{ path, auth string }{
		{"/api/v1/accounts", ""},
		{"/api/v1/accounts", "Bearer " + forged},
		{"/api/v1/accounts", "Bearer " + none},
		{"/api/v1/..%2F..%2Fadmin", "Bearer " + forged},
	}
	var admitted, sent atomic.Int64
	done := make(chan struct{})
	go func() {
		defer close(done)
		tick := time.NewTicker(50 * time.Millisecond)
		defer tick.Stop()
		for i := 0; ; i++ {
			select {
			case <-stop:
				return
			case <-tick.C:
			}
			r := requests[i%len(requests)]
			req, _ := http.NewRequest("GET", base+r.path, nil)
			if r.auth != "" {
				req.Header.Set("Authorization", r.auth)
			}
			res, err := client.Do(req)
			sent.Add(1)
			if err != nil {
				continue
			}
			_, _ = io.Copy(io.Discard, res.Body)
			res.Body.Close()
			if res.StatusCode < 300 {
				admitted.Add(1)
			}
		}
	}()
	return func() (int64, int64) {
		<-done
		client.CloseIdleConnections()
		return admitted.Load(), sent.Load()
	}
}

type stats struct {
	at              time.Time
	rss, goroutines string
}

// traefikStats reads Traefik's resident memory and goroutines from its Prometheus endpoint.
func traefikStats(t *testing.T, gw *gatewaytest.Gateway) stats {
	s := stats{at: time.Now(), rss: "n/a", goroutines: "n/a"}
	res, err := http.Get(gw.InternalURL + "/metrics")
	if err != nil {
		t.Logf("metrics: %v", err)
		return s
	}
	defer res.Body.Close()
	sc := bufio.NewScanner(res.Body)
	sc.Buffer(make([]byte, 1<<20), 1<<20)
	for sc.Scan() {
		f := strings.Fields(sc.Text())
		if len(f) != 2 {
			continue
		}
		switch f[0] {
		case "process_resident_memory_bytes":
			if v, err := strconv.ParseFloat(f[1], 64); err == nil {
				s.rss = fmt.Sprintf("%.1f MiB", v/(1<<20))
			}
		case "go_goroutines":
			s.goroutines = f[1]
		}
	}
	return s
}

// firstAt returns the offset of the first answer of cause, recording d if it is the first.
func firstAt(seen map[string]time.Duration, cause string, d time.Duration) time.Duration {
	if at, ok := seen[cause]; ok {
		return at
	}
	seen[cause] = d.Round(100 * time.Millisecond)
	return seen[cause]
}

func counts(m map[string]int) string {
	if len(m) == 0 {
		return "none"
	}
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	parts := make([]string, 0, len(keys))
	for _, k := range keys {
		parts = append(parts, fmt.Sprintf("%s: %d", k, m[k]))
	}
	return strings.Join(parts, ", ")
}

func shorten(s string) string {
	if i := strings.LastIndex(s, ": "); i >= 0 {
		s = s[i+2:]
	}
	if len(s) > 60 {
		s = s[:60]
	}
	return s
}

func envDuration(t *testing.T, name string, def time.Duration) time.Duration {
	v := os.Getenv(name)
	if v == "" {
		return def
	}
	d, err := time.ParseDuration(v)
	if err != nil || d < 10*time.Second {
		t.Fatalf("%s=%q: want a duration of at least 10s", name, v)
	}
	return d
}

func envInt(t *testing.T, name string, def int) int {
	v := os.Getenv(name)
	if v == "" {
		return def
	}
	n, err := strconv.Atoi(v)
	if err != nil || n < 1 || n > 5000 {
		t.Fatalf("%s=%q: want 1..5000", name, v)
	}
	return n
}
