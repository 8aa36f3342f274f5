package requestid

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"fmt"
	"net/http"
	"strings"
)

const (
	// DefaultHeader is the header that carries the ID unless configured otherwise.
	DefaultHeader = "X-Request-Id"

	// idBytes is the entropy of a generated ID: 128 bits from crypto/rand, written as 32
	// lowercase hex digits (grep-safe, case-insensitive-safe, selectable with a double click,
	// and itself a valid incoming ID for the next hop).
	idBytes = 16
	minLen  = 8
	maxLen  = 128
	// idAlphabet is the set of bytes allowed in an incoming ID.
	idAlphabet = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789._:-"
)

// validID reports whether s is an acceptable incoming ID: ^[A-Za-z0-9._:-]{8,128}$.
//
// strings.Trim with an ASCII cutset checks the bytes against a lookup table (a 256-bit set) in
// compiled code. A byte loop over a [256]bool table would be correct under Yaegi too, but
// costs ~250 ns per byte interpreted (~9 µs for a 36-character UUID, ~32 µs at 128); Trim
// costs the same for any length. FuzzValidID checks it against the regular expression.
func validID(s string) bool {
	return len(s) >= minLen && len(s) <= maxLen && strings.Trim(s, idAlphabet) == ""
}

// FromRequest returns the ID that the middleware configured with header set on req, for
// handlers that run after it in the same process. The ID is not put into the request context:
// context.WithValue and req.WithContext cost ~40% more per request under Yaegi (about 14
// allocations), and the header already carries it.
func FromRequest(req *http.Request, header string) string {
	v := req.Header[http.CanonicalHeaderKey(header)]
	if len(v) != 1 {
		return ""
	}
	return v[0]
}

// requestID is the middleware.
type requestID struct {
	next   http.Handler
	header string // canonical
	trust  bool
}

// New validates the configuration and builds the middleware.
func New(_ context.Context, next http.Handler, config *Config, name string) (http.Handler, error) {
	if config == nil {
		return nil, fmt.Errorf("requestid %q: no configuration", name)
	}
	s, err := config.compile()
	if err != nil {
		return nil, fmt.Errorf("requestid %q: %w", name, err)
	}
	return &requestID{next: next, header: s.header, trust: s.trust}, nil
}

// ServeHTTP is the hot path, written for the interpreter: Yaegi allocates every local and
// temporary of a function on each call, and each interpreted call costs a frame. Generating an
// ID is the common case at an edge gateway, so it is inlined here (a separate function cost
// ~40 more allocations per generated ID); validID is one call on the path that keeps an ID.
//
// The same []string is set on the request and on the response, before next runs, so the ID is
// on every answer, errors of later middlewares and of the proxy included. Both header maps may
// append to it (its capacity is 1) but nothing here modifies it in place. An upstream that
// echoes the header back gives the client two equal values: Traefik's proxy adds upstream
// headers to the ones already set (removing that needs a response writer wrapper, whose
// interpreted Write and WriteHeader would cost every response).
func (m *requestID) ServeHTTP(rw http.ResponseWriter, req *http.Request) {
	v := req.Header[m.header]
	if !m.trust || len(v) != 1 || !validID(v[0]) {
		b := make([]byte, idBytes)
		// Since Go 1.24 crypto/rand.Read never returns an error (Traefik v3.6.12 is built
		// with Go >= 1.25).
		_, _ = rand.Read(b)
		v = []string{hex.EncodeToString(b)}
		req.Header[m.header] = v
	}
	rw.Header()[m.header] = v
	m.next.ServeHTTP(rw, req)
}
