// Package jwtauth is a Traefik middleware plugin that validates Keycloak-issued JWT access
// tokens against the issuer's JWKS and forwards selected claims to the upstream as headers.
//
// Traefik runs it interpreted by Yaegi: keep one assignment per line (no `a, b = x, f()`) and
// one condition per `case` in tagless switches; integration/yaegiguard enforces both.
package jwtauth

import (
	"crypto/x509"
	"errors"
	"fmt"
	"net"
	"net/http"
	"sort"
	"strings"
	"time"

	"github.com/pavilion-trust/gateway/plugins/confmap"
)

// Config is the plugin configuration as users write it in dynamic YAML or Docker labels.
// Field names are the YAML keys (Traefik matches them case-insensitively and ignores tags).
// Durations are strings parsed with time.ParseDuration.
type Config struct {
	// Issuer is the token's expected `iss`, e.g. https://kc.example/realms/pavilion. Required.
	Issuer string `json:"issuer,omitempty"`
	// JWKSURL is where the signing keys are fetched. Default: `jwks_uri` from
	// {issuer}/.well-known/openid-configuration.
	JWKSURL string `json:"jwksUrl,omitempty"`
	// Audiences: if set, the token's `aud` (string or array) must contain at least one of them.
	Audiences []string `json:"audiences,omitempty"`
	// Algorithms is the allow-list of signature algorithms. Default [RS256]. HS* and none are
	// never allowed: a gateway must not share a secret with the IdP.
	Algorithms []string `json:"algorithms,omitempty"`
	// Leeway is the clock skew allowed on exp, nbf and iat. Default 30s.
	Leeway string `json:"leeway,omitempty"`
	// RequiredScopes must all be in the space-separated `scope` claim.
	RequiredScopes []string `json:"requiredScopes,omitempty"`
	// RequiredRoles: at least one must be held. "role" is a realm role (realm_access.roles);
	// "client:role" a client role (resource_access.<client>.roles), split at the first colon.
	RequiredRoles []string `json:"requiredRoles,omitempty"`
	// ClaimHeaders maps a claim path (dots for nesting) to the request header the upstream
	// receives; arrays are joined with ",". Setting it replaces the default map (see
	// DefaultClaimHeaders). Headers named here that the client sent are always removed.
	ClaimHeaders map[string]string `json:"claimHeaders,omitempty"`
	// ClaimHeaderList is claimHeaders written as a list, [{claim, header}], for Docker labels:
	// Traefik splits label keys at dots, so a claim path such as realm_access.roles cannot be
	// a claimHeaders key there (claimHeaderList[0].claim=realm_access.roles can). Both forms
	// may be given: their entries are merged, and each header may receive one claim only
	// (a header named twice, in one form or across both, is an error). Setting either one
	// replaces the default map.
	ClaimHeaderList []ClaimHeader `json:"claimHeaderList,omitempty"`
	// ForwardToken: false removes the Authorization header (and the token cookie) before the
	// upstream. Default true.
	ForwardToken bool `json:"forwardToken,omitempty"`
	// TokenCookie reads the token from this cookie when there is no Bearer Authorization header.
	TokenCookie string `json:"tokenCookie,omitempty"`
	// Optional: a request with no token passes as anonymous; a bad token is still refused.
	Optional bool `json:"optional,omitempty"`
	// RefreshInterval is the period of the background JWKS refresh. Default 15m.
	RefreshInterval string `json:"refreshInterval,omitempty"`
	// MinRefreshInterval: a token with an unknown kid triggers at most one JWKS fetch per
	// interval (shared by all requests waiting for it). Default 10s.
	MinRefreshInterval string `json:"minRefreshInterval,omitempty"`
	// Realm is the realm parameter of WWW-Authenticate. Default "pavilion".
	Realm string `json:"realm,omitempty"`
	// FetchTimeout bounds one discovery or JWKS fetch, and how long a request waits for it.
	// Default 5s.
	FetchTimeout string `json:"fetchTimeout,omitempty"`
	// CacheSize bounds the cache of verified tokens (keyed by a seeded hash/maphash of the token, never
	// used past the token's exp). 0 disables it. Default 10000.
	CacheSize int `json:"cacheSize,omitempty"`
	// MaxHeaders bounds the number of distinct request header names: a request with more gets
	// 431 before anything else is done, so that the work done per request (the removal of
	// client-sent identity headers walks every header) does not grow with what a client
	// sends. Default 100 (browsers and proxies send far fewer); 10 to 10000.
	MaxHeaders int `json:"maxHeaders,omitempty"`
	// TokenTypes lists the accepted values of the `typ` claim when a token carries one
	// (case-insensitive). Default [Bearer]: Keycloak access tokens; its ID and refresh tokens
	// (typ ID, Refresh) are refused. "*" accepts any.
	TokenTypes []string `json:"tokenTypes,omitempty"`
	// FailedAuth bounds the refused authentications (invalid tokens: bad signature, expired,
	// wrong issuer…; not a missing token) of one client address. Once a client has spent the
	// budget, its requests get 429 with Retry-After until the window ends, before any token of
	// theirs is looked at, so forged tokens cannot buy signature checks. Counted in memory per
	// gateway instance. Off by default (limit 0): behind a proxy, set trustedProxies, or every
	// client would share the proxy's budget.
	FailedAuth FailedAuth `json:"failedAuth,omitempty"`
	// CAFile is a PEM bundle of CA certificates that discovery and JWKS fetches over HTTPS
	// trust instead of the system roots: for a Keycloak behind a private CA. Only these
	// certificates are trusted (put public roots in the bundle too if the issuer may also
	// present a publicly issued certificate). Read once in New; a missing or invalid file is a
	// configuration error. Default "": the system roots.
	CAFile string `json:"caFile,omitempty"`
	// IdentityHeaders are request headers an upstream might read as the caller's identity:
	// the client's copies are removed from every request, under every spelling a backend may
	// read as the same name (X_Remote_User for X-Remote-User). Setting it replaces the default
	// list (DefaultIdentityHeaders). Any header starting with X-Auth- (or X_Auth_…) and the
	// claimHeaders are always removed, whatever this list holds (added option).
	IdentityHeaders []string `json:"identityHeaders,omitempty"`
}

// FailedAuth is the failedAuth option.
type FailedAuth struct {
	// Limit is the number of refused authentications allowed per client address and window;
	// the next request of that address within the window gets 429. 0 (default) turns it off.
	Limit int `json:"limit,omitempty"`
	// Window is the counting window (fixed, starting at the first refusal). Default 1m.
	Window string `json:"window,omitempty"`
	// TrustedProxies are CIDRs or single addresses (as ratelimit's trustedProxies) whose
	// X-Forwarded-For is honoured: the client is the right-most address not in them
	// (Traefik's entry point must trust them too: forwardedHeaders.trustedIPs). IPv6 clients
	// count per /64 network. Default none: the client is the TCP peer.
	TrustedProxies []string `json:"trustedProxies,omitempty"`
}

// ClaimHeader is one claimHeaderList entry.
type ClaimHeader struct {
	// Claim is the claim path, dots for nesting (realm_access.roles).
	Claim string `json:"claim,omitempty"`
	// Header is the request header the upstream receives (X-Auth-Roles).
	Header string `json:"header,omitempty"`
}

// DefaultIdentityHeaders is the identityHeaders list used when it is not set: headers that
// authenticating proxies (oauth2-proxy, Authelia, Kong, Grafana, Apache/CGI, Envoy and
// Traefik's passTLSClientCert) set for their upstreams, and Forwarded (RFC 7239), whose
// for=/by= a backend may take as the client's address.
func DefaultIdentityHeaders() []string {
	return []string{
		"Forwarded",
		"Remote-User", "Remote-Groups", "Remote-Email", "Remote-Name",
		"X-Remote-User", "X-Remote-Group", "X-Remote-Groups",
		"X-Forwarded-User", "X-Forwarded-Email", "X-Forwarded-Groups",
		"X-Forwarded-Preferred-Username", "X-Forwarded-Access-Token",
		"X-User", "X-User-Id", "X-Username", "X-Email", "X-Groups",
		"X-Authenticated-User", "X-Authenticated-Userid", "X-Webauth-User",
		"X-Consumer-Id", "X-Consumer-Username", "X-Consumer-Custom-Id", "X-Credential-Identifier",
		"X-Forwarded-Client-Cert", "X-Forwarded-Tls-Client-Cert", "X-Forwarded-Tls-Client-Cert-Info",
		"X-Ssl-Client-Cert", "X-Ssl-Client-Dn", "X-Ssl-Client-Verify", "X-Client-Cert", "Ssl-Client-Cert",
	}
}

// authPrefixes are the canonical spellings of the first 7 bytes of a header named X-Auth-…
// (net/http canonicalises names: a letter after '-' is upper case, after '_' lower case).
// Every such header is removed from client requests.
var authPrefixes = []string{"X-Auth-", "X-Auth_", "X_auth_", "X_auth-"}

// DefaultClaimHeaders is the claim-to-header map used when claimHeaders is not set.
func DefaultClaimHeaders() map[string]string {
	return map[string]string{
		"sub":                "X-Auth-Subject",
		"azp":                "X-Auth-Client",
		"preferred_username": "X-Auth-Username",
		"realm_access.roles": "X-Auth-Roles",
		"scope":              "X-Auth-Scopes",
	}
}

// CreateConfig returns the default configuration. Collections (algorithms, claimHeaders) are
// defaulted in New when left empty: Traefik's decoder merges user maps into a non-nil default
// map instead of replacing it.
func CreateConfig() *Config {
	return &Config{
		Leeway:             "30s",
		ForwardToken:       true,
		RefreshInterval:    "15m",
		MinRefreshInterval: "10s",
		Realm:              "pavilion",
		FetchTimeout:       "5s",
		CacheSize:          10000,
		MaxHeaders:         100,
		FailedAuth:         FailedAuth{Window: "1m"},
	}
}

// claimHeader is one compiled claimHeaders entry.
type claimHeader struct {
	path   []string
	header string // canonical
}

// roleReq is one compiled requiredRoles entry; client is empty for a realm role.
type roleReq struct {
	client string
	role   string
}

// settings is the validated, compiled configuration; ServeHTTP only reads it.
type settings struct {
	issuer       string
	jwksURL      string
	audiences    []string
	algorithms   []string
	leeway       time.Duration
	scopes       []string
	roles        []roleReq
	headers      []claimHeader
	forwardToken bool
	cookie       string
	optional     bool
	refresh      time.Duration
	minRefresh   time.Duration
	fetchTimeout time.Duration
	realm        string
	cacheSize    int
	tokenTypes   map[string]bool
	strip        map[string]bool // canonical header names removed from every request
	stripPrefix  map[string]bool // authPrefixes: a header whose first 7 bytes are one is removed
	anyType      bool
	maxHeaders   int
	failLimit    int            // failedAuth.limit, 0: off
	failWindow   time.Duration  // failedAuth.window
	failTrusted  []*net.IPNet   // failedAuth.trustedProxies
	caPool       *x509.CertPool // nil: the system roots
	caSum        string         // the CA file's content hash (shared JWKS cache key)
}

var supportedAlgorithms = map[string]bool{
	"RS256": true, "RS384": true, "RS512": true,
	"PS256": true, "PS384": true, "PS512": true,
	"ES256": true, "ES384": true, "ES512": true,
	"EdDSA": true,
}

// reservedHeaders may not receive claims: overwriting them would break the request itself.
var reservedHeaders = map[string]bool{
	"Authorization": true, "Cookie": true, "Host": true, "Content-Length": true,
	"Content-Type": true, "Transfer-Encoding": true, "Connection": true, "Upgrade": true,
	"Te": true, "Trailer": true, "Proxy-Authorization": true, "Keep-Alive": true,
}

// compile validates the configuration and reports every problem at once, each naming the key.
func (c *Config) compile() (*settings, error) {
	var errs []error
	bad := func(key, format string, args ...any) {
		errs = append(errs, fmt.Errorf("%s: %s", key, fmt.Sprintf(format, args...)))
	}
	s := &settings{
		forwardToken: c.ForwardToken,
		optional:     c.Optional,
		cacheSize:    c.CacheSize,
	}

	s.issuer = strings.TrimSpace(c.Issuer)
	if s.issuer == "" {
		bad("issuer", "required (the token's iss, e.g. https://kc.example/realms/pavilion)")
	} else if !confmap.IsHTTPURL(s.issuer) {
		bad("issuer", "must be an http(s) URL, got %q", s.issuer)
	}
	s.jwksURL = strings.TrimSpace(c.JWKSURL)
	if s.jwksURL != "" && !confmap.IsHTTPURL(s.jwksURL) {
		bad("jwksUrl", "must be an http(s) URL, got %q", s.jwksURL)
	}

	s.audiences = confmap.CleanList(c.Audiences)

	s.algorithms = confmap.CleanList(c.Algorithms)
	if len(s.algorithms) == 0 {
		s.algorithms = []string{"RS256"}
	}
	for _, alg := range s.algorithms {
		if !supportedAlgorithms[alg] {
			bad("algorithms", "%q is not allowed (use RS256/384/512, PS256/384/512, ES256/384/512 or EdDSA)", alg)
		}
	}

	s.leeway = confmap.ParseDuration(&errs, "leeway", c.Leeway, "30s", 0, 10*time.Minute)
	s.refresh = confmap.ParseDuration(&errs, "refreshInterval", c.RefreshInterval, "15m", time.Second, 7*24*time.Hour)
	s.minRefresh = confmap.ParseDuration(&errs, "minRefreshInterval", c.MinRefreshInterval, "10s", time.Second, 24*time.Hour)
	s.fetchTimeout = confmap.ParseDuration(&errs, "fetchTimeout", c.FetchTimeout, "5s", 10*time.Millisecond, time.Minute)

	s.scopes = confmap.CleanList(c.RequiredScopes)
	for _, sc := range s.scopes {
		if strings.ContainsAny(sc, " \"\\") || confmap.HasControl(sc) {
			bad("requiredScopes", "invalid scope %q", sc)
		}
	}
	for _, r := range confmap.CleanList(c.RequiredRoles) {
		req := roleReq{role: r}
		if i := strings.IndexByte(r, ':'); i >= 0 {
			req.client = r[:i]
			req.role = r[i+1:]
			if req.client == "" || req.role == "" {
				bad("requiredRoles", "%q: a client role is written client:role", r)
				continue
			}
		}
		s.roles = append(s.roles, req)
	}

	// claimHeaders (sorted by claim path), then claimHeaderList (in order): one entry each.
	type claimEntry struct {
		claimKey, headerKey string // the options named by errors
		name                string // the entry in messages: the claim path, or claimHeaderList[i]
		claim, header       string
	}
	var entries []claimEntry
	claimHeaders := c.ClaimHeaders
	if len(claimHeaders) == 0 && len(c.ClaimHeaderList) == 0 {
		claimHeaders = DefaultClaimHeaders()
	}
	paths := make([]string, 0, len(claimHeaders))
	for p := range claimHeaders {
		paths = append(paths, p)
	}
	sort.Strings(paths)
	for _, p := range paths {
		entries = append(entries, claimEntry{claimKey: "claimHeaders", headerKey: "claimHeaders: " + p, name: p, claim: p, header: claimHeaders[p]})
	}
	for i, e := range c.ClaimHeaderList {
		k := fmt.Sprintf("claimHeaderList[%d]", i)
		entries = append(entries, claimEntry{claimKey: k + ".claim", headerKey: k + ".header", name: k, claim: e.Claim, header: e.Header})
	}
	seen := map[string]string{}
	for _, e := range entries {
		h := http.CanonicalHeaderKey(strings.TrimSpace(e.header))
		cp := strings.TrimSpace(e.claim)
		switch {
		case cp == "" || strings.Contains(cp, ".."):
			bad(e.claimKey, "invalid claim path %q", e.claim)
		case !confmap.IsToken(h):
			bad(e.headerKey, "invalid header name %q", e.header)
		case reservedHeaders[h]:
			bad(e.headerKey, "header %q is reserved", h)
		case seen[h] != "":
			bad(e.claimKey, "%s and %s both map to header %q", seen[h], e.name, h)
		default:
			seen[h] = e.name
			s.headers = append(s.headers, claimHeader{path: strings.Split(cp, "."), header: h})
		}
	}

	types := confmap.CleanList(c.TokenTypes)
	if len(types) == 0 {
		types = []string{"Bearer"}
	}
	s.tokenTypes = map[string]bool{}
	for _, t := range types {
		if t == "*" {
			s.anyType = true
		}
		s.tokenTypes[strings.ToLower(t)] = true
	}

	if ca := strings.TrimSpace(c.CAFile); ca != "" {
		pool, sum, err := confmap.CAFile(ca)
		if err != nil {
			bad("caFile", "%v", err)
		} else {
			s.caPool = pool
			s.caSum = sum
		}
	}

	s.cookie = strings.TrimSpace(c.TokenCookie)
	if s.cookie != "" && !confmap.IsToken(s.cookie) {
		bad("tokenCookie", "invalid cookie name %q", c.TokenCookie)
	}
	s.realm = c.Realm
	if s.realm == "" || strings.ContainsAny(s.realm, "\"\\") || confmap.HasControl(s.realm) {
		bad("realm", "must be non-empty without quotes, backslashes or control characters, got %q", c.Realm)
	}
	if c.CacheSize < 0 || c.CacheSize > 10000000 {
		bad("cacheSize", "must be between 0 and 10000000, got %d", c.CacheSize)
	}
	// Client copies of the configured claim headers, and of the default ones even when the map
	// is replaced (upstreams may still trust X-Auth-*), are always removed.
	s.strip = map[string]bool{}
	for _, h := range s.headers {
		for _, v := range headerVariants(h.header) {
			s.strip[v] = true
		}
	}
	for _, h := range DefaultClaimHeaders() {
		for _, v := range headerVariants(h) {
			s.strip[v] = true
		}
	}
	s.maxHeaders = c.MaxHeaders
	if s.maxHeaders < 10 || s.maxHeaders > 10000 {
		bad("maxHeaders", "must be between 10 and 10000, got %d", c.MaxHeaders)
	}
	s.failLimit = c.FailedAuth.Limit
	if s.failLimit < 0 || s.failLimit > 1000000 {
		bad("failedAuth.limit", "must be between 0 (off) and 1000000, got %d", c.FailedAuth.Limit)
	}
	s.failWindow = confmap.ParseDuration(&errs, "failedAuth.window", c.FailedAuth.Window, "1m", time.Second, 24*time.Hour)
	s.failTrusted = confmap.Networks(&errs, "failedAuth.trustedProxies", c.FailedAuth.TrustedProxies)
	identity := confmap.CleanList(c.IdentityHeaders)
	if len(identity) == 0 {
		identity = DefaultIdentityHeaders()
	}
	for _, name := range identity {
		h := http.CanonicalHeaderKey(name)
		if !confmap.IsToken(h) {
			bad("identityHeaders", "invalid header name %q", name)
			continue
		}
		if reservedHeaders[h] {
			bad("identityHeaders", "header %q is needed by the request itself and cannot be removed", h)
			continue
		}
		for _, v := range headerVariants(h) {
			s.strip[v] = true
		}
	}
	s.stripPrefix = map[string]bool{}
	for _, p := range authPrefixes {
		s.stripPrefix[p] = true
	}
	if len(errs) > 0 {
		return nil, errors.Join(errs...)
	}
	return s, nil
}

// headerVariants returns the canonical forms of name with each '-' or '_' replaced by either:
// CGI-style backends (PHP, WSGI) read X_Auth_Subject as X-Auth-Subject, so a client must not
// be able to send an identity header under any of these spellings.
func headerVariants(name string) []string {
	var seps []int
	for i := 0; i < len(name); i++ {
		if name[i] == '-' || name[i] == '_' {
			seps = append(seps, i)
		}
	}
	if len(seps) > 8 {
		seps = seps[:8]
	}
	var out []string
	b := []byte(name)
	for mask := 0; mask < 1<<len(seps); mask++ {
		for j, pos := range seps {
			if mask&(1<<j) != 0 {
				b[pos] = '_'
			} else {
				b[pos] = '-'
			}
		}
		out = append(out, http.CanonicalHeaderKey(string(b)))
	}
	return out
}
