package attacktest

import (
	"bufio"
	"bytes"
	"crypto/tls"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httptrace"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"golang.org/x/net/http2"
	"golang.org/x/net/http2/hpack"
)

// TestLimits shows each entry-point limit of static/traefik.yml and dynamic/ acting, next to
// a normal client it leaves alone. The slow cases run in parallel (each waits for a
// deadline); the whole test takes about readTimeout.
func TestLimits(t *testing.T) {
	s := startStack(t)
	t.Run("group", func(t *testing.T) {
		t.Run("slow header lines are cut off at the read timeout", func(t *testing.T) {
			t.Parallel()
			conn := s.dialHTTP1(t)
			start := time.Now()
			if _, err := io.WriteString(conn, "GET /api/v1/accounts HTTP/1.1\r\nHost: localhost\r\n"); err != nil {
				t.Fatal(err)
			}
			closed := s.trickle(t, conn, "X-Slow-%d: v\r\n", readTimeout+5*time.Second)
			if closed < 0 {
				t.Fatalf("a client sending one header line a second still connected after %v", readTimeout+5*time.Second)
			}
			if took := time.Since(start); took < readTimeout-time.Second || took > readTimeout+3*time.Second {
				t.Fatalf("connection closed after %v, want about %v", took, readTimeout)
			}
			t.Logf("header trickle: connection closed after %v (%d lines sent)", time.Since(start).Round(100*time.Millisecond), closed)
		})
		t.Run("a slow body is cut off at the read timeout", func(t *testing.T) {
			t.Parallel()
			conn := s.dialHTTP1(t)
			start := time.Now()
			head := "POST /api/v1/slow-body HTTP/1.1\r\nHost: localhost\r\nAuthorization: Bearer " + s.token(t, "limits-slow-body", nil) +
				"\r\nContent-Type: application/json\r\nContent-Length: 100000\r\n\r\n"
			if _, err := io.WriteString(conn, head); err != nil {
				t.Fatal(err)
			}
			closed := s.trickle(t, conn, "%d", readTimeout+5*time.Second)
			if closed < 0 {
				t.Fatalf("a client sending a body byte a second still connected after %v", readTimeout+5*time.Second)
			}
			if took := time.Since(start); took > readTimeout+3*time.Second {
				t.Fatalf("connection closed after %v, want about %v", took, readTimeout)
			}
			neverAt("/api/v1/slow-body")(t, &env{stack: s}, answer{})
			t.Logf("body trickle: connection closed after %v", time.Since(start).Round(100*time.Millisecond))
		})
		t.Run("a normal client keeps its connections across the read timeout", func(t *testing.T) {
			t.Parallel()
			for _, proto := range []string{"HTTP/2.0", "HTTP/1.1"} {
				c := s.newClient()
				if proto == "HTTP/1.1" {
					c.Transport.(*http.Transport).ForceAttemptHTTP2 = false
					c.Transport.(*http.Transport).TLSNextProto = map[string]func(string, *tls.Conn) http.RoundTripper{}
				}
				tok := s.token(t, "limits-normal-"+proto, nil)
				get := func() (int, string, bool) {
					reused := false
					trace := &httptrace.ClientTrace{GotConn: func(i httptrace.GotConnInfo) { reused = i.Reused }}
					req, _ := http.NewRequest("GET", s.gw.HTTPSURL+"/api/v1/accounts", nil)
					req = req.WithContext(httptrace.WithClientTrace(req.Context(), trace))
					req.Header.Set("Authorization", "Bearer "+tok)
					res, err := c.Do(req)
					if err != nil {
						t.Fatalf("%s: %v", proto, err)
					}
					_, _ = io.Copy(io.Discard, res.Body)
					res.Body.Close()
					return res.StatusCode, res.Proto, reused
				}
				if code, p, _ := get(); code != 200 || p != proto {
					t.Fatalf("%s: %d over %s", proto, code, p)
				}
				if proto == "HTTP/2.0" {
					time.Sleep(readTimeout + time.Second)
				} else {
					time.Sleep(2 * time.Second) // HTTP/1.1's deadlines are per request
				}
				code, _, reused := get()
				if code != 200 || !reused {
					t.Fatalf("%s: second request %d, connection reused %v", proto, code, reused)
				}
				c.CloseIdleConnections()
			}
		})
		t.Run("headers above 32 KiB get 431, a 16 KiB token header passes", func(t *testing.T) {
			t.Parallel()
			tok := s.token(t, "limits-headers", nil)
			big := s.raw(t, "GET /api/v1/accounts HTTP/1.1\r\nHost: localhost\r\nAuthorization: Bearer "+tok+
				"\r\nX-Pad: "+strings.Repeat("a", 40<<10)+"\r\nConnection: close\r\n\r\n")
			if big.status != http.StatusRequestHeaderFieldsTooLarge {
				t.Fatalf("40 KiB of headers over HTTP/1.1: %d %v, want 431", big.status, big.err)
			}
			// HTTP/2: the limit is announced in SETTINGS (Go's client then refuses to send more);
			// a client sending more anyway loses the connection (GOAWAY COMPRESSION_ERROR).
			h2 := &stack{gw: s.gw, tlsConf: s.tlsConf}
			h2.client = s.newClient()
			defer h2.client.CloseIdleConnections()
			a := h2.do(t, "GET", "/api/v1/too-many-headers", nil, "Authorization", "Bearer "+tok, "X-Pad", strings.Repeat("a", 40<<10))
			if a.err == nil || !(strings.Contains(a.err.Error(), "header list larger than peer's advertised limit") || strings.Contains(a.err.Error(), "COMPRESSION_ERROR")) {
				t.Fatalf("40 KiB of headers over HTTP/2: %d %v, want no answer", a.status, a.err)
			}
			t.Logf("40 KiB of headers over HTTP/2: %v", a.err)
			neverAt("/api/v1/too-many-headers")(t, &env{stack: s}, answer{})
			for _, proto := range []string{"h2", "http/1.1"} {
				ok := s.do(t, "GET", "/api/v1/accounts", nil, "Authorization", "Bearer "+tok, "X-Pad", strings.Repeat("a", 16<<10))
				if proto == "http/1.1" {
					ok = s.raw(t, "GET /api/v1/accounts HTTP/1.1\r\nHost: localhost\r\nAuthorization: Bearer "+tok+
						"\r\nX-Pad: "+strings.Repeat("a", 16<<10)+"\r\nConnection: close\r\n\r\n")
				}
				if ok.status != 200 {
					t.Fatalf("%s: 16 KiB header: %d %v", proto, ok.status, ok.err)
				}
			}
		})
		t.Run("the redirecting entry point web has the same header limit", func(t *testing.T) {
			t.Parallel()
			for _, tc := range []struct {
				pad  int
				want int
			}{{40 << 10, http.StatusRequestHeaderFieldsTooLarge}, {16 << 10, http.StatusMovedPermanently}} {
				conn, err := net.DialTimeout("tcp", strings.TrimPrefix(s.gw.HTTPURL, "http://"), 5*time.Second)
				if err != nil {
					t.Fatal(err)
				}
				_ = conn.SetDeadline(time.Now().Add(10 * time.Second))
				_, _ = io.WriteString(conn, "GET /api/v1/accounts HTTP/1.1\r\nHost: localhost\r\nX-Pad: "+strings.Repeat("a", tc.pad)+"\r\nConnection: close\r\n\r\n")
				res, err := http.ReadResponse(bufio.NewReader(conn), nil)
				conn.Close()
				if err != nil || res.StatusCode != tc.want {
					t.Fatalf("web, %d bytes of header: %v %v, want %d", tc.pad, res, err, tc.want)
				}
			}
		})
		t.Run("the entry point runs with the configured limits", func(t *testing.T) {
			t.Parallel()
			// Idle (60s) and write (40s) timeouts are longer than this test may take: Traefik's
			// API shows them in force.
			var ep struct {
				Transport struct {
					RespondingTimeouts   map[string]string `json:"respondingTimeouts"`
					KeepAliveMaxRequests int               `json:"keepAliveMaxRequests"`
				} `json:"transport"`
				HTTP struct {
					MaxHeaderBytes int  `json:"maxHeaderBytes"`
					SanitizePath   bool `json:"sanitizePath"`
				} `json:"http"`
				HTTP2 struct {
					MaxConcurrentStreams int `json:"maxConcurrentStreams"`
				} `json:"http2"`
			}
			if err := s.gw.GetJSON("/api/entrypoints/websecure", &ep); err != nil {
				t.Fatal(err)
			}
			want := map[string]string{"readTimeout": "10s", "writeTimeout": "40s", "idleTimeout": "1m0s"}
			for k, v := range want {
				if got := ep.Transport.RespondingTimeouts[k]; got != v {
					t.Errorf("%s = %q, want %q", k, got, v)
				}
			}
			if ep.HTTP.MaxHeaderBytes != maxHeader || !ep.HTTP.SanitizePath || ep.HTTP2.MaxConcurrentStreams != 100 || ep.Transport.KeepAliveMaxRequests != 1000 {
				t.Errorf("entry point %+v", ep)
			}
		})
	})
}

// dialHTTP1 opens a TLS connection negotiated for HTTP/1.1, closed at the end of the test.
func (s *stack) dialHTTP1(t *testing.T) *tls.Conn {
	t.Helper()
	conf := s.tlsConf.Clone()
	conf.NextProtos = []string{"http/1.1"}
	conn, err := tls.DialWithDialer(&net.Dialer{Timeout: 5 * time.Second}, "tcp", s.addr, conf)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { conn.Close() })
	return conn
}

// trickle writes format (with a counter) once a second until the server closes the
// connection (it returns how many writes it made) or max passes (-1).
func (s *stack) trickle(t *testing.T, conn *tls.Conn, format string, max time.Duration) int {
	t.Helper()
	closed := make(chan struct{})
	go func() {
		defer close(closed)
		_ = conn.SetReadDeadline(time.Now().Add(max))
		_, _ = io.Copy(io.Discard, conn) // returns when the server closes (or the deadline)
	}()
	deadline := time.Now().Add(max)
	for i := 0; time.Now().Before(deadline); i++ {
		select {
		case <-closed:
			if time.Now().Before(deadline.Add(-100 * time.Millisecond)) {
				return i
			}
			return -1
		case <-time.After(time.Second):
		}
		if _, err := fmt.Fprintf(conn, format, i%10); err != nil {
			<-closed
			return i
		}
	}
	return -1
}

// TestRapidReset sends 20,000 HEADERS+RST_STREAM pairs on one HTTP/2 connection (CVE-2023-44487)
// and shows the gateway closing that connection with a GOAWAY within seconds, after a fraction
// of the streams, while another client is served.
func TestRapidReset(t *testing.T) {
	s := startStack(t)
	const pairs = 20000
	conf := s.tlsConf.Clone()
	conf.NextProtos = []string{"h2"}
	conn, err := tls.DialWithDialer(&net.Dialer{Timeout: 5 * time.Second}, "tcp", s.addr, conf)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	if p := conn.ConnectionState().NegotiatedProtocol; p != "h2" {
		t.Fatalf("ALPN %q", p)
	}
	_ = conn.SetDeadline(time.Now().Add(30 * time.Second))
	bw := bufio.NewWriterSize(conn, 64<<10)
	fr := http2.NewFramer(bw, conn)
	if _, err := io.WriteString(bw, http2.ClientPreface); err != nil {
		t.Fatal(err)
	}
	if err := fr.WriteSettings(); err != nil {
		t.Fatal(err)
	}
	var block bytes.Buffer
	enc := hpack.NewEncoder(&block)
	for _, f := range [][2]string{{":method", "GET"}, {":scheme", "https"}, {":authority", "localhost"}, {":path", "/api/v1/accounts"}} {
		_ = enc.WriteField(hpack.HeaderField{Name: f[0], Value: f[1]})
	}
	headers := block.Bytes()

	// The reader: the server's SETTINGS, answers, and how the connection ends.
	var (
		mu            sync.Mutex
		settings      = map[http2.SettingID]uint32{}
		goAway        *http2.GoAwayFrame
		readErr       error
		answered      atomic.Int64
		closedAt      time.Time
		readerStopped = make(chan struct{})
	)
	go func() {
		defer close(readerStopped)
		for {
			f, err := fr.ReadFrame()
			if err != nil {
				mu.Lock()
				readErr = err
				closedAt = time.Now()
				mu.Unlock()
				return
			}
			switch f := f.(type) {
			case *http2.SettingsFrame:
				mu.Lock()
				_ = f.ForeachSetting(func(st http2.Setting) error { settings[st.ID] = st.Val; return nil })
				mu.Unlock()
			case *http2.HeadersFrame:
				answered.Add(1)
			case *http2.GoAwayFrame:
				mu.Lock()
				if goAway == nil {
					goAway = f
					closedAt = time.Now()
				}
				mu.Unlock()
			}
		}
	}()

	before := s.received()
	start := time.Now()
	sent := 0
	var writeErr error
	for i := 0; i < pairs; i++ {
		id := uint32(2*i + 1)
		if writeErr = fr.WriteHeaders(http2.HeadersFrameParam{StreamID: id, BlockFragment: headers, EndHeaders: true}); writeErr != nil {
			break
		}
		if writeErr = fr.WriteRSTStream(id, http2.ErrCodeCancel); writeErr != nil {
			break
		}
		sent++
		if sent%100 == 0 {
			if writeErr = bw.Flush(); writeErr != nil {
				break
			}
		}
	}
	if writeErr == nil {
		writeErr = bw.Flush()
	}
	sendTime := time.Since(start)
	select {
	case <-readerStopped:
	case <-time.After(15 * time.Second):
		conn.Close()
		<-readerStopped
		t.Fatalf("the connection is still open 15s after %d HEADERS+RST_STREAM pairs (%d answered)", sent, answered.Load())
	}
	mu.Lock()
	defer mu.Unlock()
	t.Logf("server SETTINGS: MAX_CONCURRENT_STREAMS=%d MAX_HEADER_LIST_SIZE=%d", settings[http2.SettingMaxConcurrentStreams], settings[http2.SettingMaxHeaderListSize])
	t.Logf("%d of %d pairs written in %v (write error: %v); %d streams answered; GOAWAY %v after %v; reader: %v",
		sent, pairs, sendTime.Round(time.Millisecond), writeErr, answered.Load(), goAwayString(goAway), closedAt.Sub(start).Round(time.Millisecond), readErr)
	if settings[http2.SettingMaxConcurrentStreams] != 100 {
		t.Errorf("MAX_CONCURRENT_STREAMS %d, want 100", settings[http2.SettingMaxConcurrentStreams])
	}
	if n := settings[http2.SettingMaxHeaderListSize]; n < maxHeader || n > maxHeader+4096 {
		t.Errorf("MAX_HEADER_LIST_SIZE %d, want about %d", n, maxHeader)
	}
	// Two limits race: Go's queue of handlers waiting for a stream slot (4 × 100: GOAWAY
	// ENHANCE_YOUR_CALM) and keepAliveMaxRequests (1,000 requests: GOAWAY NO_ERROR, closed 1s
	// later). Either way few of the 20,000 streams are ever accepted.
	if goAway == nil || (goAway.ErrCode != http2.ErrCodeEnhanceYourCalm && goAway.ErrCode != http2.ErrCodeNo) {
		t.Fatalf("the connection ended without GOAWAY (%s, %v)", goAwayString(goAway), readErr)
	}
	if accepted := goAway.LastStreamID/2 + 1; accepted > pairs/4 {
		t.Errorf("%d of %d streams accepted before GOAWAY, want at most a quarter", accepted, pairs)
	}
	if took := closedAt.Sub(start); took > 5*time.Second {
		t.Errorf("GOAWAY after %v, want within 5s", took)
	}
	if !errors.Is(readErr, io.EOF) && !isClosed(readErr) {
		t.Errorf("after GOAWAY the connection ended with %v, want it closed", readErr)
	}
	if got := s.received() - before; got != 0 {
		t.Errorf("%d of the reset requests reached an upstream", got)
	}
	// Another client is served meanwhile and after.
	if a := s.get2(t); a != 200 {
		t.Fatalf("a normal client after the attack: %d", a)
	}
}

func (s *stack) get2(t *testing.T) int {
	a := s.do(t, "GET", "/api/v1/accounts", nil, "Authorization", "Bearer "+s.token(t, "rapid-reset-bystander", nil))
	if a.err != nil {
		t.Fatal(a.err)
	}
	return a.status
}

func goAwayString(f *http2.GoAwayFrame) string {
	if f == nil {
		return "none"
	}
	return fmt.Sprintf("%v (last stream %d)", f.ErrCode, f.LastStreamID)
}

func isClosed(err error) bool {
	return err != nil && (strings.Contains(err.Error(), "connection reset") || strings.Contains(err.Error(), "use of closed") || strings.Contains(err.Error(), "broken pipe"))
}
