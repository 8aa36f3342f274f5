package jwtauth

import (
	"bytes"
	"context"
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"
)

// TestAuthFailureLog: each refusal is one JSON line with the reason and the request id, never
// the token, and at most authLogPerSecond lines a second per middleware, the next line written
// reporting how many were suppressed.
func TestAuthFailureLog(t *testing.T) {
	f := newFakeIdP(t)
	cfg := CreateConfig()
	cfg.Issuer = f.issuerURL()
	s, err := cfg.compile()
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	buf := &syncBuffer{}
	a := newHandlerTo(ctx, http.NotFoundHandler(), s, "logtest", buf)
	malformed := atomic.LoadInt64(a.rej.malformed.count)

	const secret = "secret-token-value"
	for i := 0; i < authLogPerSecond+5; i++ {
		r := httptest.NewRequest(http.MethodGet, "/api/v1/x", nil)
		r.Header.Set("Authorization", "Bearer "+secret)
		r.Header.Set("X-Request-Id", "req-0001")
		w := httptest.NewRecorder()
		a.ServeHTTP(w, r)
		if w.Code != 401 {
			t.Fatalf("status %d", w.Code)
		}
	}
	if got := atomic.LoadInt64(a.rej.malformed.count) - malformed; got != authLogPerSecond+5 {
		t.Errorf("malformed counted %d times", got)
	}
	if strings.Contains(buf.String(), secret) {
		t.Fatal("the token is in the log")
	}
	var lines []string
	for _, l := range strings.Split(strings.TrimSpace(buf.String()), "\n") {
		if strings.Contains(l, `"auth_failure"`) { // not the JWKS lines
			lines = append(lines, l)
		}
	}
	// Normally all requests fall in one second; a second boundary may let a few more through.
	if len(lines) < authLogPerSecond || len(lines) > 2*authLogPerSecond {
		t.Fatalf("%d lines for %d refusals:\n%s", len(lines), authLogPerSecond+5, buf.String())
	}
	var m map[string]any
	if err := json.Unmarshal([]byte(lines[0]), &m); err != nil {
		t.Fatal(err)
	}
	if m["event"] != "auth_failure" || m["reason"] != "malformed" || m["request_id"] != "req-0001" ||
		m["middlewareName"] != "logtest" || m["status"] != float64(401) || m["level"] != "info" ||
		m["message"] != "request refused: malformed" || m["component"] != "jwtauth" {
		t.Errorf("line %v", m)
	}
	// Traefik's shape: its time format; none of the keys Traefik sets itself for plugins.
	if ts, _ := m["time"].(string); ts == "" {
		t.Errorf("time %v", m["time"])
	} else if _, err := time.Parse(time.RFC3339, ts); err != nil || strings.Contains(ts, ".") {
		t.Errorf("time %q is not RFC 3339 in seconds as Traefik writes it", ts)
	}
	for _, k := range []string{"plugin", "module", "middleware", "msg"} {
		if _, ok := m[k]; ok {
			t.Errorf("key %q in %v", k, m)
		}
	}
}

// syncBuffer is a bytes.Buffer safe for the JWKS goroutine's writes and the test's reads.
type syncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *syncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *syncBuffer) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}
