// Package requestid is a Traefik middleware plugin that gives every request a correlation ID:
// the client's own, when it sends one well-formed value and trustIncoming is on, else a fresh
// random one. The ID is set on the request (for the upstream and later middlewares) and on the
// response (for the client), before anything downstream runs.
//
// Traefik runs it interpreted by Yaegi: keep one assignment per line (no `a, b = x, f()`) and
// one condition per `case` in tagless switches; integration/yaegiguard enforces both.
package requestid

import (
	"errors"
	"fmt"
	"net/http"
	"strings"

	"github.com/pavilion-trust/gateway/plugins/confmap"
)

// Config is the plugin configuration as users write it in dynamic YAML or Docker labels.
// Field names are the YAML keys (Traefik matches them case-insensitively and ignores tags).
type Config struct {
	// Header is the request and response header that carries the ID. Default X-Request-Id.
	// It must be a valid header name, and not one HTTP or the gateway relies on
	// (Authorization, Cookie, Host, Content-Length, X-Forwarded-For, ...).
	Header string `json:"header,omitempty"`
	// TrustIncoming keeps an ID the client sent when it is exactly one value matching
	// ^[A-Za-z0-9._:-]{8,128}$; any other value (or several) is replaced. false: always
	// replace. Default true. Clients choose their own IDs then: they can repeat one, or reuse
	// someone else's, so the ID correlates logs but is never a unique key or a credential.
	TrustIncoming bool `json:"trustIncoming,omitempty"`
}

// CreateConfig returns the default configuration.
func CreateConfig() *Config {
	return &Config{
		Header:        DefaultHeader,
		TrustIncoming: true,
	}
}

// settings is the validated configuration; ServeHTTP only reads it.
type settings struct {
	header string // canonical
	trust  bool
}

// reservedHeaders may not carry the ID: overwriting them would break the request, the
// response, or what the upstream knows about the client.
var reservedHeaders = map[string]bool{
	"Authorization": true, "Proxy-Authorization": true, "Cookie": true, "Set-Cookie": true,
	"Host": true, "Content-Length": true, "Content-Type": true, "Content-Encoding": true,
	"Transfer-Encoding": true, "Connection": true, "Upgrade": true, "Te": true, "Trailer": true,
	"Keep-Alive": true, "Expect": true, "Location": true, "Www-Authenticate": true,
	"Forwarded": true, "X-Forwarded-For": true, "X-Forwarded-Host": true,
	"X-Forwarded-Proto": true, "X-Forwarded-Port": true, "X-Real-Ip": true,
}

// compile validates the configuration and reports every problem at once, each naming the key.
func (c *Config) compile() (*settings, error) {
	var errs []error
	s := &settings{trust: c.TrustIncoming}

	name := strings.TrimSpace(c.Header)
	s.header = http.CanonicalHeaderKey(name)
	if name == "" {
		errs = append(errs, errors.New("header: required (e.g. X-Request-Id)"))
	} else if !confmap.IsToken(name) {
		errs = append(errs, fmt.Errorf("header: invalid header name %q", c.Header))
	} else if reservedHeaders[s.header] {
		errs = append(errs, fmt.Errorf("header: %q is reserved", s.header))
	}
	if len(errs) > 0 {
		return nil, errors.Join(errs...)
	}
	return s, nil
}
