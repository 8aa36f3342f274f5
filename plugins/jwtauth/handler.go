package jwtauth

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"os"
	"strings"
	"time"

	"github.com/golang-jwt/jwt/v5"
)

// jwtAuth is the middleware. Everything it needs per request is prepared in New.
type jwtAuth struct {
	next   http.Handler
	name   string
	s      *settings
	keys   *jwksCache
	cache  *tokenCache
	parser *jwt.Parser
	rej    rejections
	now    func() time.Time
	// stripped lists the canonical header names removed from every request.
	stripped []string
}

// New validates the configuration and builds the middleware. The JWKS is fetched in the
// background until ctx ends (Traefik cancels it on the next configuration reload).
func New(ctx context.Context, next http.Handler, config *Config, name string) (http.Handler, error) {
	if config == nil {
		return nil, fmt.Errorf("jwtauth %q: no configuration", name)
	}
	s, err := config.compile()
	if err != nil {
		return nil, fmt.Errorf("jwtauth %q: %w", name, err)
	}
	return newHandler(ctx, next, s, name), nil
}

func newHandler(ctx context.Context, next http.Handler, s *settings, name string) *jwtAuth {
	a := &jwtAuth{
		next:  next,
		name:  name,
		s:     s,
		cache: newTokenCache(s.cacheSize),
		rej:   newRejections(s),
		now:   time.Now,
	}
	a.keys = newJWKSCache(s, a.log)
	a.parser = jwt.NewParser(
		jwt.WithValidMethods(s.algorithms),
		jwt.WithLeeway(s.leeway),
		jwt.WithIssuer(s.issuer),
		jwt.WithExpirationRequired(),
		jwt.WithIssuedAt(),
		jwt.WithTimeFunc(a.clock),
	)
	for _, h := range s.headers {
		a.stripped = append(a.stripped, h.header)
	}
	go a.keys.run(ctx)
	return a
}

func (a *jwtAuth) clock() time.Time { return a.now() }

func (a *jwtAuth) ServeHTTP(rw http.ResponseWriter, req *http.Request) {
	h := req.Header
	for _, name := range a.stripped {
		delete(h, name)
	}
	token, rej := a.extract(req)
	if rej != nil {
		rej.write(rw)
		return
	}
	if token == "" {
		if a.s.optional {
			a.forward(rw, req)
			return
		}
		a.rej.missing.write(rw)
		return
	}
	v := a.verdictFor(req.Context(), token)
	if v.reject != nil {
		v.reject.write(rw)
		return
	}
	for i, name := range a.stripped {
		if v.values[i] != nil {
			h[name] = v.values[i]
		}
	}
	a.forward(rw, req)
}

// forward passes the request on, removing the token first when forwardToken is false.
func (a *jwtAuth) forward(rw http.ResponseWriter, req *http.Request) {
	if !a.s.forwardToken {
		delete(req.Header, "Authorization")
		if a.s.cookie != "" {
			removeCookie(req, a.s.cookie)
		}
	}
	a.next.ServeHTTP(rw, req)
}

// verdictFor answers from the cache when it can, else verifies the token.
func (a *jwtAuth) verdictFor(ctx context.Context, token string) *verdict {
	if a.cache == nil {
		return a.verify(ctx, token)
	}
	key := cacheKey(token)
	now := a.now().Unix()
	if v := a.cache.get(key); v != nil && now < v.exp && v.gen == a.keys.generation() {
		return v
	}
	v := a.verify(ctx, token)
	if v.exp > now && (v.reject == nil || v.reject.status == http.StatusForbidden) {
		a.cache.put(key, v)
	}
	return v
}

// extract returns the bearer token from the Authorization header or, failing that, the
// configured cookie. Another scheme counts as no token.
func (a *jwtAuth) extract(req *http.Request) (string, *rejection) {
	values := req.Header["Authorization"]
	if len(values) > 1 {
		return "", a.rej.multipleAuth
	}
	if len(values) == 1 {
		v := values[0]
		if len(v) > 7 && strings.EqualFold(v[:7], "bearer ") {
			token := strings.TrimSpace(v[7:])
			if token == "" {
				return "", a.rej.malformed
			}
			return token, nil
		}
		if strings.EqualFold(strings.TrimSpace(v), "bearer") {
			return "", a.rej.malformed
		}
	}
	if a.s.cookie != "" {
		if c, err := req.Cookie(a.s.cookie); err == nil && c.Value != "" {
			return c.Value, nil
		}
	}
	return "", nil
}

// removeCookie rewrites the Cookie header without the named cookie.
func removeCookie(req *http.Request, name string) {
	cookies := req.Cookies()
	delete(req.Header, "Cookie")
	for _, c := range cookies {
		if c.Name != name {
			req.AddCookie(c)
		}
	}
}

// log writes one JSON line to stderr, which Traefik shows in its log at error level.
func (a *jwtAuth) log(msg string) {
	line, _ := json.Marshal(map[string]string{
		"plugin":     "jwtauth",
		"middleware": a.name,
		"msg":        msg,
		"time":       time.Now().UTC().Format(time.RFC3339Nano),
	})
	fmt.Fprintln(os.Stderr, string(line))
}
