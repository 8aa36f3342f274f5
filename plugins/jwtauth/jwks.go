package jwtauth

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/pavilion-trust/gateway/plugins/confmap"
	"github.com/pavilion-trust/gateway/plugins/metrics"
)

// maxDocumentBytes bounds a discovery document or JWKS response.
const maxDocumentBytes = 1 << 20

// The JWKS series (see plugins/metrics), labelled with each middleware that uses the cache.
const (
	metricJWKSFetches = "pavilion_jwks_fetches_total"
	metricJWKSKeys    = "pavilion_jwks_keys"
)

// jwksCache holds the issuer's current key set. The set is an immutable snapshot replaced
// whole; fetches are single-flight, and fetches caused by unknown kids are rate-limited to one
// per minRefresh. A failed fetch, or one with no usable key, keeps the last good set.
type jwksCache struct {
	issuer     string
	jwksURL    string // configured; empty means OIDC discovery
	client     *http.Client
	timeout    time.Duration
	minRefresh time.Duration
	refresh    time.Duration
	now        func() time.Time
	logf       func(msg string)

	mu          sync.Mutex
	keys        *keySet
	gen         int64 // bumped (atomically, under mu) whenever keys changes
	raw         []byte
	discovered  string
	inflight    chan struct{}
	lastAttempt time.Time // of the last fetch caused by an unknown kid
	lastErr     error
	lastOK      time.Time
	watchers    map[string]*jwksWatch // middleware name → its JWKS series
}

func newJWKSCache(s *settings, logf func(string)) *jwksCache {
	client := &http.Client{
		Timeout: s.fetchTimeout,
		// A key endpoint that redirects is refused rather than followed (possibly to http).
		CheckRedirect: func(_ *http.Request, _ []*http.Request) error { return http.ErrUseLastResponse }, // named: docs/yaegi.md item 16
	}
	if s.caPool != nil {
		// caFile: the default transport's settings, verifying servers against the CA only.
		t := http.DefaultTransport.(*http.Transport).Clone()
		t.TLSClientConfig = confmap.CATLSConfig(s.caPool)
		client.Transport = t
	}
	return &jwksCache{
		issuer:     s.issuer,
		jwksURL:    s.jwksURL,
		client:     client,
		timeout:    s.fetchTimeout,
		minRefresh: s.minRefresh,
		refresh:    s.refresh,
		now:        time.Now,
		logf:       logf,
	}
}

// current returns the key set snapshot and its generation.
func (c *jwksCache) current() (*keySet, int64) {
	c.mu.Lock()
	ks := c.keys
	gen := atomic.LoadInt64(&c.gen)
	c.mu.Unlock()
	return ks, gen
}

// generation returns the generation of the current key set.
func (c *jwksCache) generation() int64 {
	return atomic.LoadInt64(&c.gen)
}

// lookup finds the key for kid/alg. When none fits, it waits for one JWKS fetch (shared with
// concurrent callers, at most one per minRefresh) and looks again.
func (c *jwksCache) lookup(kid, alg string) (*verifyKey, int64) {
	ks, gen := c.current()
	if k := ks.find(kid, alg); k != nil {
		return k, gen
	}
	c.refreshAndWait(true)
	ks, gen = c.current()
	return ks.find(kid, alg), gen
}

// refreshAndWait starts a fetch unless one is running (or, when limited, one was attempted
// less than minRefresh ago) and waits for the running fetch. The wait is bounded by the
// fetch itself (discovery and the JWKS GET each have the fetch timeout). It deliberately uses
// no select: Yaegi v0.16.1 keeps one set of cases per select statement, shared by the
// goroutines that run it at the same time, so concurrent requests would wait on each
// other's channels.
func (c *jwksCache) refreshAndWait(limited bool) {
	ch := c.start(limited)
	if ch != nil {
		<-ch
	}
}

// start returns the channel of the in-flight fetch, starting one if allowed; nil if not.
func (c *jwksCache) start(limited bool) chan struct{} {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.inflight != nil {
		return c.inflight
	}
	if limited {
		now := c.now()
		if !c.lastAttempt.IsZero() && now.Sub(c.lastAttempt) < c.minRefresh {
			return nil
		}
		c.lastAttempt = now
	}
	ch := make(chan struct{})
	c.inflight = ch
	go c.fetch(ch)
	return ch
}

// fetch runs one discovery (when needed) and JWKS fetch, then publishes the result.
func (c *jwksCache) fetch(done chan struct{}) {
	ks, raw, err := c.download()
	c.mu.Lock()
	changed := false
	if err == nil {
		c.lastOK = c.now()
		if !bytes.Equal(raw, c.raw) {
			c.keys = ks
			c.raw = raw
			atomic.AddInt64(&c.gen, 1)
			changed = true
		}
	}
	c.lastErr = err
	c.inflight = nil
	n := 0
	if c.keys != nil {
		n = len(c.keys.all)
	}
	c.recordLocked(err == nil, n)
	c.mu.Unlock()
	close(done)
	if err != nil {
		c.logf(fmt.Sprintf("JWKS refresh failed, keeping the last good key set (%d keys): %v", n, err))
	} else if changed {
		c.logf(fmt.Sprintf("JWKS refreshed: %d usable keys", n))
	}
}

// jwksWatch is one middleware's JWKS series; a shared cache updates those of every
// middleware that uses it.
type jwksWatch struct {
	users           int
	fetchOK, failed *int64
	keys            *int64
}

// watch makes the cache count its fetches for middleware name too.
func (c *jwksCache) watch(name string) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.watchers == nil {
		c.watchers = map[string]*jwksWatch{}
	}
	w := c.watchers[name]
	if w == nil {
		labels := []string{"middleware", name}
		w = &jwksWatch{
			fetchOK: metrics.Counter(metricJWKSFetches, "JWKS fetches (with discovery) by result: ok, error.",
				[]string{"middleware", name, "result", "ok"}),
			failed: metrics.Counter(metricJWKSFetches, "JWKS fetches (with discovery) by result: ok, error.",
				[]string{"middleware", name, "result", "error"}),
			keys: metrics.Gauge(metricJWKSKeys, "Usable keys in the JWKS key set held.", labels),
		}
		c.watchers[name] = w
	}
	w.users++
	n := 0
	if c.keys != nil {
		n = len(c.keys.all)
	}
	atomic.StoreInt64(w.keys, int64(n))
}

// unwatch undoes one watch; the last user of a name sets its key gauge to 0.
func (c *jwksCache) unwatch(name string) {
	c.mu.Lock()
	defer c.mu.Unlock()
	w := c.watchers[name]
	if w == nil {
		return
	}
	w.users--
	if w.users <= 0 {
		atomic.StoreInt64(w.keys, 0)
		delete(c.watchers, name)
	}
}

// recordLocked counts one fetch for every watching middleware; c.mu must be held.
func (c *jwksCache) recordLocked(ok bool, keys int) {
	for _, w := range c.watchers {
		if ok {
			atomic.AddInt64(w.fetchOK, 1)
		} else {
			atomic.AddInt64(w.failed, 1)
		}
		atomic.StoreInt64(w.keys, int64(keys))
	}
}

// download fetches and parses the key set; a set with no usable key is an error.
func (c *jwksCache) download() (*keySet, []byte, error) {
	url := c.jwksURL
	if url == "" {
		c.mu.Lock()
		url = c.discovered
		c.mu.Unlock()
		if url == "" {
			u, err := c.discover()
			if err != nil {
				return nil, nil, err
			}
			url = u
			c.mu.Lock()
			c.discovered = u
			c.mu.Unlock()
		}
	}
	body, err := c.get(url)
	if err != nil {
		if c.jwksURL == "" {
			c.mu.Lock()
			c.discovered = "" // discover again next time: the jwks_uri may have moved
			c.mu.Unlock()
		}
		return nil, nil, fmt.Errorf("fetching JWKS: %w", err)
	}
	ks, skipped, err := parseKeySet(body)
	if err != nil {
		return nil, nil, err
	}
	if len(ks.all) == 0 {
		return nil, nil, fmt.Errorf("JWKS at %s has no usable key (%s)", url, strings.Join(skipped, "; "))
	}
	if len(skipped) > 0 {
		c.logf(fmt.Sprintf("JWKS at %s: skipped %s", url, strings.Join(skipped, "; ")))
	}
	return ks, body, nil
}

// discover reads jwks_uri from the issuer's OpenID configuration, whose issuer must match.
func (c *jwksCache) discover() (string, error) {
	u := strings.TrimRight(c.issuer, "/") + "/.well-known/openid-configuration"
	body, err := c.get(u)
	if err != nil {
		return "", fmt.Errorf("OIDC discovery: %w", err)
	}
	var doc struct {
		Issuer  string `json:"issuer"`
		JWKSURI string `json:"jwks_uri"`
	}
	if err := json.Unmarshal(body, &doc); err != nil {
		return "", fmt.Errorf("OIDC discovery: decoding %s: %w", u, err)
	}
	if doc.Issuer != c.issuer {
		return "", fmt.Errorf("OIDC discovery: %s announces issuer %q, configured %q", u, doc.Issuer, c.issuer)
	}
	if !confmap.IsHTTPURL(doc.JWKSURI) {
		return "", fmt.Errorf("OIDC discovery: %s has no usable jwks_uri (%q)", u, doc.JWKSURI)
	}
	return doc.JWKSURI, nil
}

// get fetches a URL with the client timeout and a bounded body.
func (c *jwksCache) get(url string) ([]byte, error) {
	ctx, cancel := context.WithTimeout(context.Background(), c.timeout)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, url, nil)
	if err != nil {
		return nil, err
	}
	req.Header.Set("Accept", "application/json")
	resp, err := c.client.Do(req)
	if err != nil {
		return nil, err
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		io.Copy(io.Discard, io.LimitReader(resp.Body, 4096))
		return nil, fmt.Errorf("GET %s: status %d", url, resp.StatusCode)
	}
	body, err := io.ReadAll(io.LimitReader(resp.Body, maxDocumentBytes+1))
	if err != nil {
		return nil, fmt.Errorf("GET %s: %w", url, err)
	}
	if len(body) > maxDocumentBytes {
		return nil, fmt.Errorf("GET %s: response larger than %d bytes", url, maxDocumentBytes)
	}
	return body, nil
}

// run refreshes in the background until ctx ends (Traefik cancels it on reload). The first
// fetch is immediate; after a failure it retries every minRefresh (at least 1s) instead of
// waiting a full refresh interval.
func (c *jwksCache) run(ctx context.Context) {
	retry := c.minRefresh
	if retry < time.Second {
		retry = time.Second
	}
	for ctx.Err() == nil {
		ch := c.start(false)
		if ch != nil {
			<-ch // bounded: each fetch has its own timeout
		}
		c.mu.Lock()
		failed := c.lastErr != nil || c.keys == nil
		c.mu.Unlock()
		wait := c.refresh
		if failed && retry < wait {
			wait = retry
		}
		pause(ctx, wait)
	}
}

// pause sleeps for d, or until shortly (at most a second) after ctx ends. No select: several
// refreshers (one per key source) run this at the same time, and Yaegi v0.16.1 shares a
// select statement's cases between the goroutines that run it (see refreshAndWait).
func pause(ctx context.Context, d time.Duration) {
	for d > 0 && ctx.Err() == nil {
		step := d
		if step > time.Second {
			step = time.Second
		}
		time.Sleep(step)
		d = d - step
	}
}
