package attacktest

import (
	"bufio"
	"crypto/tls"
	"crypto/x509"
	"io"
	"net"
	"net/http"
	"os"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/golang-jwt/jwt/v5"
	"github.com/pavilion-trust/gateway/demo/certs/devca"
	"github.com/pavilion-trust/gateway/demo/devissuer/issuer"
	"github.com/pavilion-trust/gateway/integration/echo"
	"github.com/pavilion-trust/gateway/integration/gatewaytest"
	"github.com/pavilion-trust/gateway/integration/redistest"
)

const (
	rateRequests = 20 // PAVILION_RATE_REQUESTS: per client (azp) per window
	// authFailures is PAVILION_AUTH_FAILURES: the cases send many bad tokens from 127.0.0.1;
	// badTokenFlood spends it from 127.0.0.2.
	authFailures = 300
	rateWindow   = 60 * time.Second
	bodyLimit    = 1 << 20 // dynamic/gateway.yml body-limit maxRequestBodyBytes
	readTimeout  = 10 * time.Second
	maxHeader    = 32768 // static/traefik.yml maxHeaderBytes
)

// stack is the gateway as configured in the repository, with everything it talks to.
type stack struct {
	gw      *gatewaytest.Gateway
	iss     *issuer.Issuer
	redis   *redistest.Server
	brokers [2]*echo.Server
	certs   devca.Files
	tlsConf *tls.Config
	client  *http.Client // HTTP/2 over TLS to websecure, no compression, redirects not followed
	addr    string       // websecure host:port
}

func startStack(t testing.TB) *stack {
	t.Helper()
	s := &stack{}
	var err error
	s.certs, err = devca.Generate(t.TempDir(), devca.Options{})
	if err != nil {
		t.Fatal(err)
	}
	s.redis = redistest.Start(t)
	s.iss, err = issuer.New(issuer.Config{Clients: []issuer.Client{
		{ID: "svc", Secret: "s3cret", Audience: []string{"core-broker"}, Scopes: []string{"broker:read"}, RealmRoles: []string{"broker-user"}},
	}})
	if err != nil {
		t.Fatal(err)
	}
	if err := s.iss.Start("127.0.0.1:0"); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { s.iss.Stop() })
	s.brokers[0] = echo.Start(t, "core-broker-1")
	s.brokers[1] = echo.Start(t, "core-broker-2")
	s.gw = gatewaytest.Start(t, []string{
		"PAVILION_ISSUER_URL=" + s.iss.IssuerURL(),
		"PAVILION_REDIS_ADDR=" + s.redis.Addr(),
		"PAVILION_BROKER_1_ADDR=" + strings.TrimPrefix(s.brokers[0].URL, "http://"),
		"PAVILION_BROKER_2_ADDR=" + strings.TrimPrefix(s.brokers[1].URL, "http://"),
		"PAVILION_RATE_REQUESTS=" + strconv.Itoa(rateRequests),
		"PAVILION_RATE_WINDOW=" + rateWindow.String(),
		"PAVILION_AUTH_FAILURES=" + strconv.Itoa(authFailures),
		"PAVILION_HEALTHCHECK_INTERVAL=1s",
		"PAVILION_HEALTH_CACHE=200ms",
		"PAVILION_TLS_CERT=" + s.certs.Cert,
		"PAVILION_TLS_KEY=" + s.certs.Key,
	}, "api-v1@file", "health@file")
	s.addr = strings.TrimPrefix(s.gw.HTTPSURL, "https://")

	ca, err := os.ReadFile(s.certs.CACert)
	if err != nil {
		t.Fatal(err)
	}
	pool := x509.NewCertPool()
	pool.AppendCertsFromPEM(ca)
	s.tlsConf = &tls.Config{RootCAs: pool, ServerName: "localhost"}
	s.client = s.newClient()
	t.Cleanup(s.client.CloseIdleConnections)
	return s
}

// newClient is an HTTP/2 client of its own (its own connections).
func (s *stack) newClient() *http.Client {
	return &http.Client{
		Timeout: 15 * time.Second,
		Transport: &http.Transport{
			TLSClientConfig:    s.tlsConf.Clone(),
			DisableCompression: true,
			ForceAttemptHTTP2:  true,
		},
		CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse },
	}
}

// token signs claims of client svc with azp set to azp (every case has its own rate-limit
// budget), changed by over (a nil value deletes the claim), with the issuer's key.
func (s *stack) token(t *testing.T, azp string, over map[string]any) string {
	t.Helper()
	tok, err := s.iss.Sign(s.claims(t, azp, over))
	if err != nil {
		t.Fatal(err)
	}
	return tok
}

func (s *stack) claims(t *testing.T, azp string, over map[string]any) jwt.MapClaims {
	t.Helper()
	claims, err := s.iss.Claims("svc")
	if err != nil {
		t.Fatal(err)
	}
	claims["azp"] = azp
	for k, v := range over {
		if v == nil {
			delete(claims, k)
			continue
		}
		claims[k] = v
	}
	return claims
}

// received is how many requests both upstreams have received (health checks excluded).
func (s *stack) received() int64 {
	return s.brokers[0].Requests() + s.brokers[1].Requests()
}

// answer is what the gateway answered.
type answer struct {
	status int
	header http.Header
	body   []byte
	err    error // transport error (connection closed…): status is 0
	next   []int // raw connections: statuses of the answers that followed the first
}

// do sends one request over HTTP/2; headers are name, value pairs (a name may repeat).
func (s *stack) do(t *testing.T, method, target string, body io.Reader, headers ...string) answer {
	t.Helper()
	req, err := http.NewRequest(method, s.gw.HTTPSURL+target, body)
	if err != nil {
		t.Fatal(err)
	}
	for i := 0; i+1 < len(headers); i += 2 {
		if strings.EqualFold(headers[i], "Host") {
			req.Host = headers[i+1]
			continue
		}
		req.Header.Add(headers[i], headers[i+1])
	}
	res, err := s.client.Do(req)
	if err != nil {
		return answer{err: err}
	}
	defer res.Body.Close()
	b, err := io.ReadAll(io.LimitReader(res.Body, 1<<20))
	return answer{status: res.StatusCode, header: res.Header, body: b, err: err}
}

// raw writes request bytes as they are on a new TLS connection negotiated for HTTP/1.1, and
// reads the first answer (and any second one the server sends on the same connection).
func (s *stack) raw(t *testing.T, request string) answer {
	t.Helper()
	conf := s.tlsConf.Clone()
	conf.NextProtos = []string{"http/1.1"}
	conn, err := tls.DialWithDialer(&net.Dialer{Timeout: 5 * time.Second}, "tcp", s.addr, conf)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	_ = conn.SetDeadline(time.Now().Add(15 * time.Second))
	if _, err := io.WriteString(conn, request); err != nil {
		return answer{err: err}
	}
	br := bufio.NewReader(conn)
	res, err := http.ReadResponse(br, nil)
	if err != nil {
		return answer{err: err}
	}
	b, _ := io.ReadAll(io.LimitReader(res.Body, 1<<20))
	res.Body.Close()
	a := answer{status: res.StatusCode, header: res.Header, body: b}
	// Whatever else the server answers on this connection (a pipelined or smuggled request).
	for len(a.next) < 4 {
		more, err := http.ReadResponse(br, nil)
		if err != nil {
			break
		}
		_, _ = io.Copy(io.Discard, io.LimitReader(more.Body, 1<<20))
		more.Body.Close()
		a.next = append(a.next, more.StatusCode)
	}
	return a
}
