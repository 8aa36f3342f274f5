package attacktest

import (
	"crypto/tls"
	"fmt"
	"io"
	"net/http"
	"sort"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/golang-jwt/jwt/v5"
)

// Cases of defects fixed on another branch, written for the fixed behaviour (skipped here).

// concurrentClient: one client (one azp) on 256 HTTP/1.1 connections for 3 seconds admits at
// most the sliding window's bound, 2×limit−1; the request after the flood gets 429.
func concurrentClient(t *testing.T, e *env) answer {
	tok := e.tok(t, nil)
	var admitted, sent atomic.Int64
	var wg sync.WaitGroup
	stop := time.Now().Add(3 * time.Second)
	for c := 0; c < 256; c++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			client := &http.Client{Timeout: 10 * time.Second, Transport: &http.Transport{
				TLSClientConfig: e.tlsConf.Clone(), TLSNextProto: map[string]func(string, *tls.Conn) http.RoundTripper{}}}
			defer client.CloseIdleConnections()
			for i := 0; i < 20 && time.Now().Before(stop); i++ {
				req, _ := http.NewRequest("GET", e.gw.HTTPSURL+"/api/v1/accounts", nil)
				req.Header.Set("Authorization", "Bearer "+tok)
				res, err := client.Do(req)
				if err != nil {
					continue
				}
				_, _ = io.Copy(io.Discard, res.Body)
				res.Body.Close()
				sent.Add(1)
				if res.StatusCode == 200 {
					admitted.Add(1)
				}
			}
		}()
	}
	wg.Wait()
	if bound := int64(2*rateRequests - 1); admitted.Load() > bound {
		t.Errorf("%d of %d requests admitted, the bound is %d", admitted.Load(), sent.Load(), bound)
	}
	return e.get(t, "/api/v1/accounts", tok)
}

// badTokenFlood: 300 well-formed tokens signed by an unknown key from one address: a 429
// with Retry-After comes before the end, and nothing reaches the upstream.
func badTokenFlood(t *testing.T, e *env) answer {
	var last answer
	for i := 0; i < 300; i++ {
		tok := sign(t, jwt.SigningMethodRS256, e.atk.rsa, map[string]any{"kid": e.iss.CurrentKID()}, e.claimsOf(t, map[string]any{"jti": fmt.Sprint(i)}))
		last = e.get(t, "/api/v1/accounts", tok)
		if last.status == http.StatusTooManyRequests {
			if last.header.Get("Retry-After") == "" {
				t.Error("429 without Retry-After")
			}
			return last
		}
	}
	return last
}

// manyHeaders: the median time of a request with 1,000 headers and no token stays within 1.5×
// that of the same request with 10 headers.
func manyHeaders(t *testing.T, e *env) answer {
	median := func(n int) (time.Duration, answer) {
		headers := make([]string, 0, 2*n)
		for i := 0; i < n; i++ {
			headers = append(headers, fmt.Sprintf("X-Pad-%04d", i), "v")
		}
		var times []time.Duration
		var a answer
		for i := 0; i < 31; i++ {
			start := time.Now()
			a = e.do(t, "GET", "/api/v1/accounts", nil, headers...)
			times = append(times, time.Since(start))
		}
		sort.Slice(times, func(i, j int) bool { return times[i] < times[j] })
		return times[len(times)/2], a
	}
	few, _ := median(10)
	many, a := median(1000)
	if many > few*3/2 {
		t.Errorf("1,000 headers: median %v, 10 headers: %v", many, few)
	}
	return a
}
