// Package echo is an upstream for integration tests: it answers every request with a JSON
// description of what it received, so a test can see what the gateway forwarded.
package echo

import (
	"context"
	"encoding/json"
	"errors"
	"net"
	"net/http"
	"sync"
	"testing"
	"time"
)

// Seen is what the echo server received, as it reports it in its JSON answer.
type Seen struct {
	Instance string      `json:"instance"`
	Method   string      `json:"method"`
	Path     string      `json:"path"`
	RawPath  string      `json:"rawPath,omitempty"` // the path as it was encoded, when it differs
	Query    string      `json:"query"`
	Proto    string      `json:"proto"`
	Host     string      `json:"host"`
	Headers  http.Header `json:"headers"`
}

// Server is a running echo upstream.
type Server struct {
	// URL is http://127.0.0.1:<port>, without a trailing slash.
	URL string
	// Name is reported as "instance" in every answer, to tell several upstreams apart.
	Name string

	srv      *http.Server
	done     chan struct{}
	stopOnce sync.Once

	mu    sync.Mutex
	count int64
	paths []string // escaped paths of the requests counted, oldest first, at most maxPaths
}

// maxPaths bounds what Paths keeps.
const maxPaths = 10000

// Requests is how many requests other than /health the server has received: a test compares
// it before and after a request to tell whether that request reached the upstream.
func (s *Server) Requests() int64 {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.count
}

// Paths returns the escaped paths (with query) of the requests Requests counts, oldest
// first; only the last 10,000 are kept.
func (s *Server) Paths() []string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return append([]string(nil), s.paths...)
}

// Start starts an echo server on a free loopback port. It serves HTTP/1.1 and unencrypted
// HTTP/2 (h2c, prior knowledge) on the same port, and is stopped by tb.Cleanup.
//
// Every request gets 200 and a JSON Seen, except /health, which answers {"status":"pass"}.
func Start(tb testing.TB, name string) *Server {
	tb.Helper()
	return StartAt(tb, name, "127.0.0.1:0")
}

// StartAt is Start on a given address: a stopped server comes back where it was with
// StartAt(tb, s.Name, strings.TrimPrefix(s.URL, "http://")).
func StartAt(tb testing.TB, name, addr string) *Server {
	tb.Helper()

	ln, err := net.Listen("tcp", addr)
	if err != nil {
		tb.Fatalf("echo %q: listen: %v", name, err)
	}

	protocols := new(http.Protocols)
	protocols.SetHTTP1(true)
	protocols.SetUnencryptedHTTP2(true)

	s := &Server{
		URL:  "http://" + ln.Addr().String(),
		Name: name,
		done: make(chan struct{}),
	}
	s.srv = &http.Server{
		Handler:           http.HandlerFunc(s.serveHTTP),
		Protocols:         protocols,
		ReadHeaderTimeout: 10 * time.Second,
	}

	go func() {
		defer close(s.done)
		if err := s.srv.Serve(ln); err != nil && !errors.Is(err, http.ErrServerClosed) {
			tb.Errorf("echo %q: serve: %v", name, err)
		}
	}()
	tb.Cleanup(s.Stop)

	return s
}

// Stop shuts the server down and waits for it. It is idempotent.
func (s *Server) Stop() {
	s.stopOnce.Do(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		if err := s.srv.Shutdown(ctx); err != nil {
			_ = s.srv.Close()
		}
		<-s.done
	})
}

func (s *Server) serveHTTP(rw http.ResponseWriter, req *http.Request) {
	rw.Header().Set("Content-Type", "application/json")

	if req.URL.Path == "/health" {
		rw.WriteHeader(http.StatusOK)
		_, _ = rw.Write([]byte(`{"status":"pass"}`))
		return
	}

	s.mu.Lock()
	s.count++
	if len(s.paths) == maxPaths {
		s.paths = append(s.paths[:0], s.paths[1:]...)
	}
	s.paths = append(s.paths, req.URL.RequestURI())
	s.mu.Unlock()

	seen := Seen{
		Instance: s.Name,
		Method:   req.Method,
		Path:     req.URL.Path,
		RawPath:  req.URL.RawPath,
		Query:    req.URL.RawQuery,
		Proto:    req.Proto,
		Host:     req.Host,
		Headers:  req.Header.Clone(),
	}
	if seen.Headers == nil {
		seen.Headers = http.Header{}
	}

	body, err := json.Marshal(seen)
	if err != nil {
		http.Error(rw, "encoding failed", http.StatusInternalServerError)
		return
	}

	rw.WriteHeader(http.StatusOK)
	_, _ = rw.Write(body)
}

// Decode parses an echo answer; it fails the test if body is not one.
func Decode(tb testing.TB, body []byte) Seen {
	tb.Helper()

	var seen Seen
	if err := json.Unmarshal(body, &seen); err != nil {
		tb.Fatalf("echo: decoding answer %q: %v", truncate(body, 512), err)
	}
	if seen.Instance == "" {
		tb.Fatalf("echo: answer %q is not from an echo server (no instance)", truncate(body, 512))
	}

	return seen
}

func truncate(b []byte, n int) string {
	if len(b) <= n {
		return string(b)
	}
	return string(b[:n]) + "…"
}
