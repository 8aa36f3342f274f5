// Package health is a Traefik middleware plugin that answers an aggregate health document
// itself: application/health+json in the shape of the IETF health-check draft
// (draft-inadarei-api-health-check), from its own checks of TLS certificate files, HTTP
// upstreams, Redis (PING) and JWKS endpoints.
//
// It answers every request routed to it (GET and HEAD; other methods get 405) and never calls
// the next handler: the router's rule chooses the path. Intended wiring:
//
//	routers:
//	  health: {entryPoints: [web], rule: Path(`/health`), middlewares: [health], service: noop@internal}
//
// The checks of one round run concurrently; the answer is cached for cacheFor, and callers
// that arrive while a round runs wait for that round (single flight), so a flood of health
// calls makes at most one probe per check per cacheFor.
//
// Traefik runs it interpreted by Yaegi: keep one assignment per line (no `a, b = x, f()`), one
// condition per `case` in tagless switches, no range over an int, no min/max builtins, no
// errors.As, no standard library API newer than Go 1.22; integration/yaegiguard enforces most.
package health

import (
	"crypto/x509"
	"errors"
	"fmt"
	"net/url"
	"path/filepath"
	"strings"
	"time"

	"github.com/pavilion-trust/gateway/plugins/confmap"
	"github.com/pavilion-trust/gateway/plugins/resp"
)

// Certificate is one PEM certificate file to watch.
type Certificate struct {
	// Path is the PEM file; its first CERTIFICATE block is checked, read again on every
	// round (a renewed file is seen without a reload). Required.
	Path string `json:"path,omitempty"`
	// Name is the component name in the check key "<name>:validity". Default the file's
	// base name ("tls.crt"). Letters, digits, ".", "_" and "-".
	Name string `json:"name,omitempty"`
	// MinValidity: the check warns when the certificate expires sooner than this. Default
	// 168h (7 days). Expired, not yet valid or unreadable: fail.
	MinValidity string `json:"minValidity,omitempty"`
}

// Upstream is one HTTP endpoint probed with a GET.
type Upstream struct {
	// Name is the component name in the check key "<name>:responseTime". Required.
	// Letters, digits, ".", "_" and "-".
	Name string `json:"name,omitempty"`
	// URL is the http(s) URL probed; any 2xx answer passes, anything else (redirects are not
	// followed) fails. Required. It is never shown in the health document.
	URL string `json:"url,omitempty"`
	// Timeout bounds the probe (connection, TLS, answer). Default 2s, at most 1m.
	Timeout string `json:"timeout,omitempty"`
}

// Config is the plugin configuration as users write it in dynamic YAML or Docker labels.
// Field names are the YAML keys (Traefik matches them case-insensitively and ignores tags).
// Durations are strings parsed with time.ParseDuration. At least one check is required.
type Config struct {
	// Certificates are PEM files whose validity is checked ("<name>:validity").
	Certificates []Certificate `json:"certificates,omitempty"`
	// Upstreams are HTTP endpoints probed with a GET ("<name>:responseTime", milliseconds).
	Upstreams []Upstream `json:"upstreams,omitempty"`
	// Redis is checked with PING through a fresh connection each round (check key
	// "redis:responseTime"); the check is on when any option is set. The same options as
	// the rate limiter's redis (resp.Config): one server, Sentinel (PING to the primary the
	// sentinels name) or Cluster (PING to one node of the slot map), TLS. timeout (default
	// 1s) bounds the connection and the PING; dialTimeout defaults to 1s.
	Redis resp.Config `json:"redis,omitempty"`
	// JWKS are key set URLs, fetched each round; each must answer 2xx with a JSON key set
	// holding at least one key ("jwks:keys", one entry per URL with componentId "jwks[i]",
	// its index here: never the URL; observedValue = keys).
	JWKS []string `json:"jwks,omitempty"`
	// JWKSTimeout bounds one JWKS fetch. Default 2s, at most 1m.
	JWKSTimeout string `json:"jwksTimeout,omitempty"`
	// JWKSCAFile is a PEM bundle of CA certificates that the jwks checks trust instead of the
	// system roots (as jwtauth's caFile: only these certificates; the same reading and
	// errors). The other checks keep the system roots. Default "": the system roots.
	JWKSCAFile string `json:"jwksCaFile,omitempty"`
	// CacheFor is how long an answer is reused after its round ended. Default 5s, at most
	// 1h; 0s probes on every call (concurrent calls still share one round).
	CacheFor string `json:"cacheFor,omitempty"`
}

// CreateConfig returns the default configuration. Per-entry defaults (minValidity, timeout)
// are applied in New: Traefik's decoder merges user lists into non-nil defaults.
func CreateConfig() *Config {
	return &Config{
		JWKSTimeout: "2s",
		CacheFor:    "5s",
	}
}

// Defaults and bounds.
const (
	defaultMinValidity  = 7 * 24 * time.Hour
	defaultTimeout      = 2 * time.Second
	defaultRedisTimeout = time.Second
	maxTimeout          = time.Minute
	maxCacheFor         = time.Hour
	maxMinValidity      = 10 * 365 * 24 * time.Hour
	maxNameLen          = 64
)

// Check kinds.
const (
	kindCertificate = iota
	kindUpstream
	kindRedis
	kindJWKS
)

// check is one validated check; a round runs each once.
type check struct {
	kind        int
	key         string // "<component>:<measurement>"
	componentID string // shown in the document: "jwks[i]" (the option) for a JWKS check, else empty
	path        string
	url         string
	timeout     time.Duration
	minValidity time.Duration
	redis       resp.Options
}

// settings is the validated configuration.
type settings struct {
	checks   []check
	cacheFor time.Duration
	jwksCA   *x509.CertPool // nil: the system roots
	warnings []string       // risky settings, logged by New
}

// compile validates the configuration and reports every problem at once, each naming the key.
func (c *Config) compile() (*settings, error) {
	var errs []error
	bad := func(key, msg string) {
		errs = append(errs, fmt.Errorf("%s: %s", key, msg))
	}
	s := &settings{}
	keys := map[string]string{} // check key -> option that defined it
	// add registers chk, defined by option opt, unless its key is taken (then the error is
	// reported under field, with hint appended).
	add := func(opt, field, hint string, chk check) {
		if prev := keys[chk.key]; prev != "" {
			bad(field, fmt.Sprintf("check %q is already defined by %s%s", chk.key, prev, hint))
			return
		}
		keys[chk.key] = opt
		s.checks = append(s.checks, chk)
	}

	for i, cert := range c.Certificates {
		opt := fmt.Sprintf("certificates[%d]", i)
		p := strings.TrimSpace(cert.Path)
		if p == "" {
			bad(opt+".path", "required (a PEM certificate file)")
		}
		name := strings.TrimSpace(cert.Name)
		if name == "" && p != "" {
			name = filepath.Base(p)
		}
		minValidity := confmap.DurationOr(&errs, opt+".minValidity", cert.MinValidity, defaultMinValidity, 0, maxMinValidity)
		if p == "" {
			continue
		}
		if msg := checkName(name); msg != "" {
			bad(opt+".name", msg)
			continue
		}
		add(opt, opt+".name", " (set a distinct name)", check{kind: kindCertificate, key: name + ":validity", path: p, minValidity: minValidity})
	}

	for i, up := range c.Upstreams {
		opt := fmt.Sprintf("upstreams[%d]", i)
		name := strings.TrimSpace(up.Name)
		nameOK := true
		if name == "" {
			bad(opt+".name", "required (the component name, e.g. core-broker)")
			nameOK = false
		} else if msg := checkName(name); msg != "" {
			bad(opt+".name", msg)
			nameOK = false
		}
		u := strings.TrimSpace(up.URL)
		urlOK := true
		if u == "" {
			bad(opt+".url", "required (e.g. http://core-broker:8080/health)")
			urlOK = false
		} else if !confmap.IsHTTPURL(u) {
			bad(opt+".url", fmt.Sprintf("must be an http(s) URL with a host, got %q", redactURL(u)))
			urlOK = false
		}
		timeout := confmap.DurationOr(&errs, opt+".timeout", up.Timeout, defaultTimeout, time.Millisecond, maxTimeout)
		if !nameOK || !urlOK {
			continue
		}
		add(opt, opt+".name", "", check{kind: kindUpstream, key: name + ":responseTime", url: u, timeout: timeout})
	}

	if c.Redis.IsSet() {
		if chk, ok := compileRedis(&c.Redis, &errs, &s.warnings); ok {
			add("redis", "redis", "", chk)
		}
	}

	jwksTimeout := confmap.DurationOr(&errs, "jwksTimeout", c.JWKSTimeout, defaultTimeout, time.Millisecond, maxTimeout)
	seenJWKS := map[string]bool{}
	for i, raw := range c.JWKS {
		opt := fmt.Sprintf("jwks[%d]", i)
		u := strings.TrimSpace(raw)
		if u == "" {
			bad(opt, "empty URL")
			continue
		}
		if !confmap.IsHTTPURL(u) {
			bad(opt, fmt.Sprintf("must be an http(s) URL with a host, got %q", redactURL(u)))
			continue
		}
		if seenJWKS[u] {
			bad(opt, fmt.Sprintf("%q is listed twice", redactURL(u)))
			continue
		}
		seenJWKS[u] = true
		// componentId is the option, never the URL: the public document names no URL, host or port.
		s.checks = append(s.checks, check{kind: kindJWKS, key: "jwks:keys", componentID: opt, url: u, timeout: jwksTimeout})
	}

	if ca := strings.TrimSpace(c.JWKSCAFile); ca != "" {
		pool, _, err := confmap.CAFile(ca)
		if err != nil {
			bad("jwksCaFile", err.Error())
		} else {
			s.jwksCA = pool
		}
	}

	s.cacheFor = confmap.DurationOr(&errs, "cacheFor", c.CacheFor, 5*time.Second, 0, maxCacheFor)

	if len(errs) == 0 && len(s.checks) == 0 {
		errs = append(errs, errors.New("no checks: configure at least one of certificates, upstreams, redis, jwks"))
	}
	if len(errs) > 0 {
		return nil, errors.Join(errs...)
	}
	return s, nil
}

// compileRedis validates the redis section with resp.Config.Compile, as the rate limiter
// does; ok is false when it has an error. Nothing is dialled: a Redis outage never makes the
// configuration invalid, the check reports it when it runs.
func compileRedis(r *resp.Config, errs *[]error, warnings *[]string) (check, bool) {
	opts, warns, redisErrs := r.Compile("redis", resp.Defaults{DialTimeout: defaultRedisTimeout, Timeout: defaultRedisTimeout, PoolSize: 1})
	*warnings = append(*warnings, warns...)
	if len(redisErrs) > 0 {
		*errs = append(*errs, redisErrs...)
		return check{}, false
	}
	opts.SentinelNoWatch = true // one client per round: no +switch-master listener
	return check{kind: kindRedis, key: "redis:responseTime", timeout: opts.Timeout, redis: opts}, true
}

// nameChars are the bytes allowed in a component name.
var nameChars = confmap.Alnum("._-")

// checkName returns why name is not a valid component name, or "".
func checkName(name string) string {
	if name == "" || len(name) > maxNameLen {
		return fmt.Sprintf("must be 1 to %d characters, got %q", maxNameLen, name)
	}
	if !confmap.AllIn(nameChars, name) {
		return fmt.Sprintf("%q: only letters, digits, \".\", \"_\" and \"-\" are allowed", name)
	}
	return ""
}

// redactURL returns s without user info, query and fragment (which may hold credentials).
func redactURL(s string) string {
	u, err := url.Parse(s)
	if err != nil {
		return "(unparsable URL)"
	}
	u.User = nil
	u.RawQuery = ""
	u.ForceQuery = false
	u.Fragment = ""
	u.RawFragment = ""
	return u.String()
}
