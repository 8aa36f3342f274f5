package jwtauth

import (
	"bytes"
	"context"
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"strconv"
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
	clock := time.Now() // every refusal in one second of the clock
	a, buf := newLogTestAuth(t, "logtest-", &clock)
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
	if len(lines) != authLogPerSecond {
		t.Fatalf("%d lines for %d refusals:\n%s", len(lines), authLogPerSecond+5, buf.String())
	}
	var m map[string]any
	if err := json.Unmarshal([]byte(lines[0]), &m); err != nil {
		t.Fatal(err)
	}
	if m["event"] != "auth_failure" || m["reason"] != "malformed" || m["request_id"] != "req-0001" ||
		m["middlewareName"] != a.name || m["status"] != float64(401) || m["level"] != "info" ||
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

// TestAuthFailureLogFollowsTheClock: the lines per second of refusals are counted on the
// middleware's clock: within one second of it at most authLogPerSecond lines, the rest
// suppressed; the first line of the next second reports how many were, whatever the wall
// clock says.
func TestAuthFailureLogFollowsTheClock(t *testing.T) {
	clock := time.Date(2030, 1, 2, 3, 4, 5, 0, time.UTC)
	a, buf := newLogTestAuth(t, "logclock-", &clock)

	lines := func() []map[string]any {
		var out []map[string]any
		for _, l := range strings.Split(strings.TrimSpace(buf.String()), "\n") {
			var m map[string]any
			if json.Unmarshal([]byte(l), &m) == nil && m["event"] == "auth_failure" {
				out = append(out, m)
			}
		}
		return out
	}
	refuse := func(n int) {
		for i := 0; i < n; i++ {
			r := httptest.NewRequest(http.MethodGet, "/api/v1/x", nil)
			r.Header.Set("Authorization", "Bearer not-a-jwt")
			w := httptest.NewRecorder()
			a.ServeHTTP(w, r)
			if w.Code != http.StatusUnauthorized {
				t.Fatalf("status %d", w.Code)
			}
		}
	}

	refuse(authLogPerSecond + 5)
	if got := len(lines()); got != authLogPerSecond {
		t.Fatalf("%d lines for %d refusals in one second of the clock, want %d", got, authLogPerSecond+5, authLogPerSecond)
	}
	for _, m := range lines() {
		if _, ok := m["suppressed"]; ok {
			t.Fatalf("a line of the first second reports suppressed lines: %v", m)
		}
	}

	clock = clock.Add(999 * time.Millisecond) // the same second of the clock
	refuse(3)
	if got := len(lines()); got != authLogPerSecond {
		t.Fatalf("%d lines after 3 more refusals in the same second, want still %d", got, authLogPerSecond)
	}

	clock = clock.Add(time.Millisecond) // the next second
	refuse(1)
	ls := lines()
	if len(ls) != authLogPerSecond+1 {
		t.Fatalf("%d lines after the clock's next second began, want %d", len(ls), authLogPerSecond+1)
	}
	if got := ls[len(ls)-1]["suppressed"]; got != float64(5+3) {
		t.Fatalf("first line of the next second reports suppressed %v, want 8", got)
	}
	refuse(authLogPerSecond)
	if got := len(lines()); got != 2*authLogPerSecond {
		t.Fatalf("%d lines, want %d (the second second is bounded too)", got, 2*authLogPerSecond)
	}
}

// newLogTestAuth is a middleware logging into the returned buffer, on the clock *clock (the
// test moves it), named prefix plus a suffix of this run's own: the log sampler is shared by
// the middlewares of one name.
func newLogTestAuth(t testing.TB, prefix string, clock *time.Time) (*jwtAuth, *syncBuffer) {
	t.Helper()
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
	a := newHandlerTo(ctx, http.NotFoundHandler(), s, prefix+strconv.FormatInt(time.Now().UnixNano(), 36), buf)
	a.now = func() time.Time { return *clock }
	return a, buf
}
