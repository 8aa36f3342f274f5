// Package ratelimit is a Traefik middleware plugin that limits requests per client with
// counters kept in Redis, so that every gateway instance on one Redis shares one budget.
//
// One EVALSHA per request checks and counts every applicable limit atomically, with the time
// taken from Redis (TIME) inside the script. Three algorithms: sliding-window (weighted
// counters of the previous and current window, the default), sliding-log (exact, a sorted set
// of arrivals) and gcra (the arithmetic of github.com/go-redis/redis_rate/v10). When Redis is
// unreachable, failurePolicy decides: local in-memory limits, open, or closed.
//
// Traefik runs it interpreted by Yaegi: keep one assignment per line (no `a, b = x, f()`) and
// one condition per `case` in tagless switches; integration/yaegiguard enforces both.
package ratelimit

import (
	"errors"
	"fmt"
	"net"
	"strings"
	"time"

	"github.com/pavilion-trust/gateway/plugins/confmap"
	"github.com/pavilion-trust/gateway/plugins/resp"
)

// Limit allows Requests per Window.
type Limit struct {
	// Requests is the quota per window, at least 1.
	Requests int `json:"requests,omitempty"`
	// Window is a whole number of seconds, written as a duration: "1s", "1m", "1h". The
	// RateLimit-Policy field cannot express sub-second windows.
	Window string `json:"window,omitempty"`
}

// Override gives one client its own limits (an overrideList entry).
type Override struct {
	// Client is the client key, exactly as the source produces it (an IP address, a header
	// value such as the token's azp).
	Client string `json:"client,omitempty"`
	// Limits replace limits for this client: at least one, as in limits.
	Limits []Limit `json:"limits,omitempty"`
}

// Config is the plugin configuration as users write it in dynamic YAML or Docker labels.
// Field names are the YAML keys (Traefik matches them case-insensitively and ignores tags).
type Config struct {
	// Redis is the shared store: one server (address), Sentinel (sentinel.*) or Cluster
	// (cluster.addresses), with TLS options; the same options as the health plugin's redis
	// check (resp.Config documents each).
	Redis resp.Config `json:"redis,omitempty"`
	// Limits are required; a request must be allowed by every one of them, and a request
	// refused by one is counted by none. At most 8, with distinct windows.
	Limits []Limit `json:"limits,omitempty"`
	// Algorithm is sliding-window (weighted counters, O(1) memory per client and limit; the
	// default), sliding-log (exact; one sorted-set entry per counted request, so requests is
	// capped at 100000) or gcra (the arithmetic of redis_rate/v10 with burst = requests).
	Algorithm string `json:"algorithm,omitempty"`
	// Sources are tried in order; the first non-empty value is the client key. "ip" is the
	// peer address (see TrustedProxies), "header:<Name>" a request header. Default
	// ["header:X-Auth-Client", "ip"]. No value at all: one shared anonymous budget.
	Sources []string `json:"sources,omitempty"`
	// TrustedProxies are CIDRs (or single addresses). When the peer is one of them, the "ip"
	// source is the right-most X-Forwarded-For address that is not. Default: none.
	TrustedProxies []string `json:"trustedProxies,omitempty"`
	// KeyPrefix starts every Redis key. Default "ptb:rl".
	KeyPrefix string `json:"keyPrefix,omitempty"`
	// Overrides maps a client key, exactly as the source produced it, to its own limits
	// instead of Limits.
	Overrides map[string][]Limit `json:"overrides,omitempty"`
	// OverrideList is overrides written as a list, [{client, limits}], for Docker labels:
	// Traefik splits label keys at dots, so a client key such as an IP address or
	// partner.example cannot be an overrides key there (overrideList[0].client=10.0.0.7 can).
	// Both forms may be given: their entries are merged, and a client may appear once only
	// (twice in the list, or in both forms, is an error).
	OverrideList []Override `json:"overrideList,omitempty"`
	// FailurePolicy applies while Redis is unreachable: local (in-memory limits per
	// instance, the default), open (requests pass, without rate-limit headers) or closed
	// (503). Redis is retried after 1s, then at doubling intervals up to 30s, one request at
	// a time; limiting goes back to Redis by itself when it answers.
	FailurePolicy string `json:"failurePolicy,omitempty"`
	// Headers adds X-RateLimit-Limit/-Remaining/-Reset and the IETF RateLimit-Policy and
	// RateLimit fields to every answer. Default true.
	Headers bool `json:"headers,omitempty"`
	// LocalMaxClients bounds the clients tracked by failurePolicy local. Default 100000.
	LocalMaxClients int `json:"localMaxClients,omitempty"`
}

// CreateConfig returns the default configuration. Collections (sources) are defaulted in New
// when left empty: Traefik's decoder merges user values into non-nil defaults.
func CreateConfig() *Config {
	return &Config{
		Redis: resp.Config{
			Address:     "127.0.0.1:6379",
			DialTimeout: resp.DefaultDialTimeout.String(), // 250ms
			Timeout:     resp.DefaultTimeout.String(),     // 100ms
			PoolSize:    resp.DefaultPoolSize,             // 16
		},
		Algorithm:       AlgorithmSlidingWindow,
		KeyPrefix:       "ptb:rl",
		FailurePolicy:   PolicyLocal,
		Headers:         true,
		LocalMaxClients: 100000,
	}
}

// Algorithms and failure policies.
const (
	AlgorithmSlidingWindow = "sliding-window"
	AlgorithmSlidingLog    = "sliding-log"
	AlgorithmGCRA          = "gcra"

	PolicyLocal  = "local"
	PolicyOpen   = "open"
	PolicyClosed = "closed"
)

// DefaultSources is the sources list used when sources is empty.
func DefaultSources() []string {
	return []string{"header:X-Auth-Client", "ip"}
}

// Bounds of the configuration.
const (
	maxLimits       = 8
	maxRequests     = 1000000000
	maxLogRequests  = 100000
	maxWindow       = 31 * 24 * time.Hour
	maxKeyPrefix    = 64
	maxLocalClients = 10000000
)

// limitSpec is one validated limit.
type limitSpec struct {
	requests int
	window   time.Duration
}

// source is one compiled entry of sources.
type source struct {
	ip     bool
	header string // canonical header name
	tag    string // key part before the value: "<prefix>:{ip=" or "<prefix>:{x-auth-client="
}

// settings is the validated configuration; the handler only reads it.
type settings struct {
	redis     resp.Options
	redisWarn []string // risky Redis settings, logged by New

	limits          []limitSpec
	overrides       map[string][]limitSpec
	algorithm       string
	sources         []source
	trusted         []*net.IPNet
	keyPrefix       string
	failurePolicy   string
	headers         bool
	localMaxClients int
}

// compile validates the configuration and reports every problem at once, each naming the key.
func (c *Config) compile() (*settings, error) {
	var errs []error
	bad := func(key, format string, args ...any) {
		errs = append(errs, fmt.Errorf("%s: %s", key, fmt.Sprintf(format, args...)))
	}
	s := &settings{headers: c.Headers}
	var redisErrs []error
	s.redis, s.redisWarn, redisErrs = c.Redis.Compile("redis", resp.Defaults{})
	errs = append(errs, redisErrs...)

	s.algorithm = strings.ToLower(strings.TrimSpace(c.Algorithm))
	if s.algorithm != AlgorithmSlidingWindow && s.algorithm != AlgorithmSlidingLog && s.algorithm != AlgorithmGCRA {
		bad("algorithm", "%q is not one of sliding-window, sliding-log, gcra", c.Algorithm)
	}

	if len(c.Limits) == 0 {
		bad("limits", "required: at least one {requests, window}, e.g. {requests: 100, window: 1s}")
	}
	s.limits = compileLimits(&errs, "limits", c.Limits, s.algorithm)

	s.keyPrefix = c.KeyPrefix
	if s.keyPrefix == "" || len(s.keyPrefix) > maxKeyPrefix || strings.ContainsAny(s.keyPrefix, "{} \t\r\n") || confmap.HasControl(s.keyPrefix) {
		bad("keyPrefix", "must be 1 to %d characters without braces, spaces or control characters, got %q", maxKeyPrefix, c.KeyPrefix)
	}

	names := confmap.CleanList(c.Sources)
	if len(names) == 0 {
		names = DefaultSources()
	}
	for i, name := range names {
		src, ok := compileSource(name, s.keyPrefix)
		if !ok {
			bad(fmt.Sprintf("sources[%d]", i), "%q is neither \"ip\" nor \"header:<Name>\"", name)
			continue
		}
		s.sources = append(s.sources, src)
	}

	s.trusted = confmap.Networks(&errs, "trustedProxies", c.TrustedProxies)

	if len(c.Overrides) > 0 || len(c.OverrideList) > 0 {
		s.overrides = map[string][]limitSpec{}
		from := map[string]string{} // client -> the option that gave it
		for client, limits := range c.Overrides {
			key := fmt.Sprintf("overrides[%q]", client)
			if client == "" {
				bad(key, "the client key must not be empty")
				continue
			}
			if len(limits) == 0 {
				bad(key, "needs at least one {requests, window}")
				continue
			}
			from[client] = key
			s.overrides[client] = compileLimits(&errs, key, limits, s.algorithm)
		}
		for i, o := range c.OverrideList {
			key := fmt.Sprintf("overrideList[%d]", i)
			switch {
			case o.Client == "":
				bad(key+".client", "required: the client key, exactly as the source produces it")
			case from[o.Client] != "":
				bad(key+".client", "%q is also given by %s; give each client once", o.Client, from[o.Client])
			case len(o.Limits) == 0:
				bad(key+".limits", "needs at least one {requests, window}")
			default:
				from[o.Client] = key
				s.overrides[o.Client] = compileLimits(&errs, key+".limits", o.Limits, s.algorithm)
			}
		}
	}

	s.failurePolicy = strings.ToLower(strings.TrimSpace(c.FailurePolicy))
	if s.failurePolicy != PolicyLocal && s.failurePolicy != PolicyOpen && s.failurePolicy != PolicyClosed {
		bad("failurePolicy", "%q is not one of local, open, closed", c.FailurePolicy)
	}
	s.localMaxClients = c.LocalMaxClients
	if s.localMaxClients < 1 || s.localMaxClients > maxLocalClients {
		bad("localMaxClients", "must be between 1 and %d, got %d", maxLocalClients, c.LocalMaxClients)
	}

	if len(errs) > 0 {
		return nil, errors.Join(errs...)
	}
	return s, nil
}

// compileLimits validates one list of limits named key ("limits", `overrides["a"]`).
func compileLimits(errs *[]error, key string, in []Limit, algorithm string) []limitSpec {
	if len(in) > maxLimits {
		*errs = append(*errs, fmt.Errorf("%s: at most %d limits, got %d", key, maxLimits, len(in)))
	}
	out := make([]limitSpec, 0, len(in))
	seen := map[time.Duration]int{}
	for i, l := range in {
		k := fmt.Sprintf("%s[%d]", key, i)
		ok := true
		if l.Requests < 1 || l.Requests > maxRequests {
			*errs = append(*errs, fmt.Errorf("%s.requests: must be between 1 and %d, got %d", k, maxRequests, l.Requests))
			ok = false
		} else if algorithm == AlgorithmSlidingLog && l.Requests > maxLogRequests {
			*errs = append(*errs, fmt.Errorf("%s.requests: sliding-log keeps one entry per request: at most %d, got %d (use sliding-window or gcra)", k, maxLogRequests, l.Requests))
			ok = false
		}
		w, err := time.ParseDuration(strings.TrimSpace(l.Window))
		switch {
		case err != nil:
			*errs = append(*errs, fmt.Errorf("%s.window: invalid duration %q (use e.g. \"1s\", \"1m\", \"1h\")", k, l.Window))
			ok = false
		case w < time.Second || w > maxWindow:
			*errs = append(*errs, fmt.Errorf("%s.window: %q is out of range [1s, %s]", k, l.Window, maxWindow))
			ok = false
		case w%time.Second != 0:
			*errs = append(*errs, fmt.Errorf("%s.window: %q is not a whole number of seconds", k, l.Window))
			ok = false
		case seen[w] > 0:
			*errs = append(*errs, fmt.Errorf("%s.window: %q repeats the window of %s[%d]; keep one limit per window", k, l.Window, key, seen[w]-1))
			ok = false
		}
		if ok {
			seen[w] = i + 1
			out = append(out, limitSpec{requests: l.Requests, window: w})
		}
	}
	return out
}

// compileSource parses "ip" or "header:<Name>".
func compileSource(name, prefix string) (source, bool) {
	if strings.EqualFold(name, "ip") {
		return source{ip: true, tag: prefix + ":{ip="}, true
	}
	if len(name) > 7 && strings.EqualFold(name[:7], "header:") {
		h := strings.TrimSpace(name[7:])
		if !confmap.IsToken(h) {
			return source{}, false
		}
		return source{header: canonicalHeader(h), tag: prefix + ":{" + strings.ToLower(h) + "="}, true
	}
	return source{}, false
}
