package attacktest

import (
	"crypto/tls"
	"fmt"
	"io"
	"net"
	"net/http"

	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/golang-jwt/jwt/v5"
)

// Floods: one client on many connections, bad tokens from one address, many headers.

// concurrentClient: one client (one azp) on 256 HTTP/1.1 connections for 3 seconds admits at
// most the sliding window's bound, 2×limit−1; the request after the flood gets 429.
func concurrentClient(t *testing.T, e *env) answer {
	tok := e.tok(t, nil)
	before := e.received()
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
	if got := e.received() - before; got != admitted.Load() {
		t.Errorf("%d requests reached an upstream, %d were admitted: a refused one got through", got, admitted.Load())
	}
	t.Logf("one client on 256 connections: %d of %d requests admitted (limit %d per window, bound %d)", admitted.Load(), sent.Load(), rateRequests, 2*rateRequests-1)
	return e.get(t, "/api/v1/accounts", tok)
}

// badTokenFlood: well-formed tokens signed by an unknown key under the realm's kid, from
// their own address (127.0.0.2: the other cases' refusals are not counted against it): a 429
// with Retry-After comes once authFailures are spent, and nothing reaches the upstream.
func badTokenFlood(t *testing.T, e *env) answer {
	client := &http.Client{Timeout: 15 * time.Second, Transport: &http.Transport{
		TLSClientConfig: e.tlsConf.Clone(),
		DialContext:     (&net.Dialer{LocalAddr: &net.TCPAddr{IP: net.IPv4(127, 0, 0, 2)}}).DialContext,
	}}
	defer client.CloseIdleConnections()
	for i := 0; i <= authFailures; i++ {
		tok := sign(t, jwt.SigningMethodRS256, e.atk.rsa, map[string]any{"kid": e.iss.CurrentKID()}, e.claimsOf(t, map[string]any{"jti": fmt.Sprint(i)}))
		req, _ := http.NewRequest(http.MethodGet, e.gw.HTTPSURL+"/api/v1/accounts", nil)
		req.Header.Set("Authorization", "Bearer "+tok)
		res, err := client.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		_, _ = io.Copy(io.Discard, res.Body)
		res.Body.Close()
		want := http.StatusUnauthorized
		if i == authFailures {
			want = http.StatusTooManyRequests
		}
		if res.StatusCode != want {
			t.Fatalf("bad token %d from 127.0.0.2: %d, want %d (failedAuth limit %d)", i+1, res.StatusCode, want, authFailures)
		}
		if want == http.StatusTooManyRequests {
			if res.Header.Get("Retry-After") == "" {
				t.Error("429 without Retry-After")
			}
			return answer{status: res.StatusCode, header: res.Header}
		}
	}
	return answer{}
}

// manyHeaders: 500 headers and no token: 431 (the suite's maxHeaders, 100), so the work a
// request costs does not grow with the headers a client sends; 90 headers are served as usual.
func manyHeaders(t *testing.T, e *env) answer {
	pad := func(n int) []string {
		headers := make([]string, 0, 2*n)
		for i := 0; i < n; i++ {
			headers = append(headers, fmt.Sprintf("X-Pad-%04d", i), "v")
		}
		return headers
	}
	if a := e.do(t, "GET", "/api/v1/accounts", nil, pad(90)...); a.status != http.StatusUnauthorized {
		t.Errorf("90 headers without a token: %d, want 401", a.status)
	}
	// 500: more would pass the entry point's header size limit (32 KiB), refused before.
	return e.do(t, "GET", "/api/v1/accounts", nil, pad(500)...)
}
