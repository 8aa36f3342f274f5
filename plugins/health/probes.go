package health

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"encoding/json"
	"encoding/pem"
	"errors"
	"fmt"
	"io"
	"math"
	"net"
	"net/http"
	"os"
	"strings"
	"time"

	"github.com/pavilion-trust/gateway/plugins/confmap"
	"github.com/pavilion-trust/gateway/plugins/resp"
)

// Status values of the health document.
const (
	statusPass = "pass"
	statusWarn = "warn"
	statusFail = "fail"
)

// Bounds on what a probe reads.
const (
	maxCertBytes = 1 << 20
	maxJWKSBytes = 1 << 20
	maxBodyBytes = 64 << 10 // of an upstream's answer, read and dropped
)

// result is the outcome of one check in one round. output is shown to anyone who can reach
// the endpoint: it is built from fixed phrases, never from an error's text (which may hold
// addresses, URLs or server messages).
type result struct {
	status string
	value  any // observedValue; nil: none
	unit   string
	output string
	time   time.Time
}

// prober runs checks. Every probe opens its own connections (no keep-alive, a fresh Redis
// connection): the round measures what a new client would get, and a middleware replaced on a
// configuration reload leaves nothing open behind.
type prober struct {
	client     *http.Client
	jwksClient *http.Client // the jwks checks' (client, or one trusting jwksCaFile only)
	now        func() time.Time
}

// newProber returns a prober; jwksCA, when not nil, is what the jwks checks trust instead of
// the system roots.
func newProber(jwksCA *x509.CertPool) *prober {
	p := &prober{client: newProbeClient(nil), now: time.Now}
	p.jwksClient = p.client
	if jwksCA != nil {
		p.jwksClient = newProbeClient(confmap.CATLSConfig(jwksCA))
	}
	return p
}

func newProbeClient(tlsConfig *tls.Config) *http.Client {
	return &http.Client{
		Transport: &http.Transport{
			Proxy:               http.ProxyFromEnvironment,
			DisableKeepAlives:   true,
			TLSHandshakeTimeout: maxTimeout,
			TLSClientConfig:     tlsConfig,
		},
		// A health endpoint that redirects fails; it is not followed.
		CheckRedirect: func(_ *http.Request, _ []*http.Request) error { return http.ErrUseLastResponse }, // named: docs/yaegi.md item 16
	}
}

// run runs one check.
func (p *prober) run(c *check) result {
	switch c.kind {
	case kindCertificate:
		return p.certificate(c)
	case kindUpstream:
		return p.upstream(c)
	case kindRedis:
		return p.redis(c)
	default:
		return p.jwks(c)
	}
}

// certificate checks the first certificate of a PEM file: observedValue is the validity left,
// in hours (negative once expired).
func (p *prober) certificate(c *check) result {
	now := p.now()
	r := result{status: statusFail, unit: "h", time: now}
	cert, msg := readCertificate(c.path)
	if cert == nil {
		r.output = msg
		return r
	}
	left := cert.NotAfter.Sub(now)
	r.value = math.Round(left.Hours()*10) / 10
	notAfter := cert.NotAfter.UTC().Format(time.RFC3339)
	if !now.Before(cert.NotAfter) {
		r.output = "certificate expired at " + notAfter
		return r
	}
	if now.Before(cert.NotBefore) {
		r.output = "certificate not valid before " + cert.NotBefore.UTC().Format(time.RFC3339)
		return r
	}
	if left < c.minValidity {
		r.status = statusWarn
		r.output = fmt.Sprintf("certificate expires at %s, in less than minValidity %s", notAfter, c.minValidity)
		return r
	}
	r.status = statusPass
	return r
}

// readCertificate returns the first certificate of a PEM file, or nil and why not.
func readCertificate(path string) (*x509.Certificate, string) {
	f, err := os.Open(path)
	if err != nil {
		if os.IsNotExist(err) {
			return nil, "certificate file unreadable: not found"
		}
		if os.IsPermission(err) {
			return nil, "certificate file unreadable: permission denied"
		}
		return nil, "certificate file unreadable"
	}
	defer f.Close()
	data, err := io.ReadAll(io.LimitReader(f, maxCertBytes+1))
	if err != nil {
		return nil, "certificate file unreadable"
	}
	if len(data) > maxCertBytes {
		return nil, "certificate file unreadable: larger than 1 MiB"
	}
	for {
		block, rest := pem.Decode(data)
		if block == nil {
			return nil, "certificate file unreadable: no PEM CERTIFICATE block"
		}
		if block.Type == "CERTIFICATE" {
			cert, err := x509.ParseCertificate(block.Bytes)
			if err != nil {
				return nil, "certificate file unreadable: malformed certificate"
			}
			return cert, ""
		}
		data = rest
	}
}

// upstream probes one HTTP endpoint: observedValue is the time to the answer's headers (or to
// the error), in milliseconds.
func (p *prober) upstream(c *check) result {
	start := p.now()
	r := result{status: statusFail, unit: "ms", time: start}
	code, err := p.get(c, "application/health+json, application/json;q=0.9, */*;q=0.1", nil)
	r.value = millis(p.now().Sub(start))
	if r.output = httpFailure(code, err, c.timeout); r.output != "" {
		return r
	}
	r.status = statusPass
	return r
}

// jwksDoc is the part of a JWK set that is counted.
type jwksDoc struct {
	Keys []json.RawMessage `json:"keys"`
}

// jwks fetches one key set: observedValue is the number of keys.
func (p *prober) jwks(c *check) result {
	r := result{status: statusFail, unit: "keys", time: p.now()}
	var body []byte
	code, err := p.get(c, "application/jwk-set+json, application/json", &body)
	if r.output = httpFailure(code, err, c.timeout); r.output != "" {
		return r
	}
	if len(body) > maxJWKSBytes {
		r.output = "key set larger than 1 MiB"
		return r
	}
	var doc jwksDoc
	if json.Unmarshal(body, &doc) != nil {
		r.output = "not a JSON key set"
		return r
	}
	r.value = len(doc.Keys)
	if len(doc.Keys) == 0 {
		r.output = "key set has no keys"
		return r
	}
	r.status = statusPass
	return r
}

// get sends a GET to c.url within c.timeout; with body non-nil it reads the answer (up to
// maxJWKSBytes+1) into it, else it reads and drops up to maxBodyBytes.
func (p *prober) get(c *check, accept string, body *[]byte) (int, error) {
	ctx, cancel := context.WithTimeout(context.Background(), c.timeout)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, c.url, nil)
	if err != nil {
		return 0, err
	}
	req.Header.Set("Accept", accept)
	req.Header.Set("User-Agent", "pavilion-gateway-health/1")
	client := p.client
	if c.kind == kindJWKS {
		client = p.jwksClient
	}
	res, err := client.Do(req)
	if err != nil {
		return 0, err
	}
	defer res.Body.Close()
	if body == nil {
		_, _ = io.Copy(io.Discard, io.LimitReader(res.Body, maxBodyBytes))
		return res.StatusCode, nil
	}
	data, err := io.ReadAll(io.LimitReader(res.Body, maxJWKSBytes+1))
	if err != nil {
		return 0, err
	}
	*body = data
	return res.StatusCode, nil
}

// redis sends PING on a new connection: observedValue is the time for connecting,
// authenticating and the PING, in milliseconds.
func (p *prober) redis(c *check) result {
	start := p.now()
	r := result{status: statusFail, unit: "ms", time: start}
	client, err := resp.New(c.redis)
	if err != nil {
		r.output = "invalid redis options"
		return r
	}
	defer client.Close()
	ctx, cancel := context.WithTimeout(context.Background(), 2*c.timeout)
	defer cancel()
	v, err := client.Do(ctx, "PING")
	r.value = millis(p.now().Sub(start))
	if err != nil {
		r.output = describeRedis(err, c.timeout)
		return r
	}
	if v.Type != resp.TypeSimple || v.Str != "PONG" {
		r.output = "unexpected answer to PING"
		return r
	}
	r.status = statusPass
	return r
}

// describeRedis is describe for the Redis check: an error reply, possibly wrapped (AUTH and
// SELECT failures are), shows only its code (WRONGPASS, NOAUTH, ...), not the server's text.
// The chain is walked by hand: errors.As panics under Yaegi for interpreted error types.
func describeRedis(err error, timeout time.Duration) string {
	for e := err; e != nil; e = errors.Unwrap(e) {
		if re, ok := e.(resp.RedisError); ok {
			return "redis error " + re.Prefix()
		}
	}
	return describe(err, timeout)
}

// describe turns a probe error into a fixed phrase (see result).
func describe(err error, timeout time.Duration) string {
	if errors.Is(err, context.DeadlineExceeded) || errors.Is(err, os.ErrDeadlineExceeded) {
		return "no answer within " + timeout.String()
	}
	if ne, ok := err.(net.Error); ok && ne.Timeout() {
		return "no answer within " + timeout.String()
	}
	msg := err.Error()
	if strings.Contains(msg, "connection refused") {
		return "connection refused"
	}
	if strings.Contains(msg, "no such host") {
		return "host not found"
	}
	if strings.Contains(msg, "connection reset") {
		return "connection reset"
	}
	if strings.Contains(msg, "x509:") || strings.Contains(msg, "tls:") {
		return "TLS handshake failed"
	}
	if errors.Is(err, io.EOF) || errors.Is(err, io.ErrUnexpectedEOF) {
		return "connection closed without an answer"
	}
	if errors.Is(err, resp.ErrProtocol) {
		return "protocol error"
	}
	return "request failed"
}

// millis is d in milliseconds, to the microsecond.
func millis(d time.Duration) float64 {
	return float64(d.Microseconds()) / 1000
}

// httpFailure is the output of a GET that failed (err) or answered other than 2xx, "" for a
// success.
func httpFailure(code int, err error, timeout time.Duration) string {
	if err != nil {
		return describe(err, timeout)
	}
	if code < 200 || code > 299 {
		return fmt.Sprintf("HTTP status %d", code)
	}
	return ""
}
