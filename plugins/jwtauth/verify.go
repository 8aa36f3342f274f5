package jwtauth

import (
	"context"
	"errors"
	"strconv"
	"strings"

	"github.com/golang-jwt/jwt/v5"
)

// maxTokenBytes bounds the token accepted for parsing.
const maxTokenBytes = 16 << 10

// verdict is the outcome of verifying one token: either a rejection, or the header values to
// forward. Verdicts of valid tokens (accepted or forbidden) are cached until the token's exp.
type verdict struct {
	reject *rejection
	values [][]string // aligned with settings.headers; nil entry: claim absent
	exp    int64      // unix seconds
	gen    int64      // key set generation the signature was checked against
}

// verify checks signature, algorithm, time claims, issuer, audience, then scopes and roles.
func (a *jwtAuth) verify(ctx context.Context, token string) *verdict {
	if len(token) > maxTokenBytes {
		return &verdict{reject: a.rej.malformed}
	}
	var used *verifyKey
	var gen int64
	keyErr := ""
	keyfunc := func(t *jwt.Token) (any, error) {
		alg, _ := t.Header["alg"].(string)
		kid, _ := t.Header["kid"].(string)
		if _, isString := t.Header["kid"].(string); t.Header["kid"] != nil && !isString {
			keyErr = "malformed"
			return nil, errNoKeys
		}
		k, g := a.keys.lookup(ctx, kid, alg)
		if k == nil {
			keyErr = "unknown_key"
			return nil, errNoKeys
		}
		used = k
		gen = g
		return k.key, nil
	}
	claims := jwt.MapClaims{}
	_, err := a.parser.ParseWithClaims(token, claims, keyfunc)
	if err != nil {
		return &verdict{reject: a.classify(err, keyErr)}
	}
	if used == nil {
		return &verdict{reject: a.rej.unknownKey}
	}
	if len(a.s.audiences) > 0 && !audienceMatches(claims["aud"], a.s.audiences) {
		return &verdict{reject: a.rej.audience}
	}
	exp, ok := claims["exp"].(float64)
	if !ok {
		return &verdict{reject: a.rej.invalidClaims}
	}
	v := &verdict{exp: int64(exp), gen: gen}
	v.values = make([][]string, len(a.s.headers))
	for i, h := range a.s.headers {
		val, present := claimString(claims, h.path)
		if !present {
			continue
		}
		if hasControl(val) {
			return &verdict{reject: a.rej.controlChars}
		}
		v.values[i] = []string{val}
	}
	if !hasScopes(claims["scope"], a.s.scopes) {
		v.reject = a.rej.scope
	} else if len(a.s.roles) > 0 && !hasRole(claims, a.s.roles) {
		v.reject = a.rej.role
	}
	return v
}

// classify maps a golang-jwt error to the answer the client gets.
func (a *jwtAuth) classify(err error, keyErr string) *rejection {
	if keyErr == "unknown_key" {
		return a.rej.unknownKey
	}
	if keyErr == "malformed" {
		return a.rej.malformed
	}
	if errors.Is(err, jwt.ErrTokenMalformed) {
		return a.rej.malformed
	}
	if errors.Is(err, jwt.ErrTokenSignatureInvalid) {
		return a.rej.signature
	}
	if errors.Is(err, jwt.ErrTokenExpired) {
		return a.rej.expired
	}
	if errors.Is(err, jwt.ErrTokenNotValidYet) {
		return a.rej.notYetValid
	}
	if errors.Is(err, jwt.ErrTokenUsedBeforeIssued) {
		return a.rej.issuedInFuture
	}
	if errors.Is(err, jwt.ErrTokenInvalidIssuer) {
		return a.rej.issuer
	}
	if errors.Is(err, jwt.ErrTokenRequiredClaimMissing) {
		return a.rej.missingExp
	}
	if errors.Is(err, jwt.ErrTokenUnverifiable) {
		// golang-jwt reports a disallowed or unknown alg as unverifiable.
		return a.rej.algorithm
	}
	return a.rej.invalidClaims
}

// audienceMatches reports whether aud (string or array) contains one of want.
func audienceMatches(aud any, want []string) bool {
	if s, ok := aud.(string); ok {
		return contains(want, s)
	}
	list, ok := aud.([]any)
	if !ok {
		return false
	}
	for _, x := range list {
		if s, ok := x.(string); ok && contains(want, s) {
			return true
		}
	}
	return false
}

// hasScopes reports whether the space-separated scope claim holds every required scope.
func hasScopes(claim any, required []string) bool {
	if len(required) == 0 {
		return true
	}
	s, _ := claim.(string)
	have := strings.Fields(s)
	for _, r := range required {
		if !contains(have, r) {
			return false
		}
	}
	return true
}

// hasRole reports whether the token holds at least one required role, in Keycloak's layout.
func hasRole(claims map[string]any, roles []roleReq) bool {
	for _, r := range roles {
		var path []string
		if r.client == "" {
			path = []string{"realm_access", "roles"}
		} else {
			path = []string{"resource_access", r.client, "roles"}
		}
		list, _ := lookupPath(claims, path).([]any)
		for _, x := range list {
			if s, ok := x.(string); ok && s == r.role {
				return true
			}
		}
	}
	return false
}

// lookupPath follows a claim path through nested JSON objects.
func lookupPath(claims map[string]any, path []string) any {
	var cur any = claims
	for _, p := range path {
		m, ok := cur.(map[string]any)
		if !ok {
			return nil
		}
		cur = m[p]
	}
	return cur
}

// claimString renders a claim as a header value: arrays joined with ",", numbers in decimal.
// Objects and null are not forwarded.
func claimString(claims map[string]any, path []string) (string, bool) {
	v := lookupPath(claims, path)
	if list, ok := v.([]any); ok {
		parts := make([]string, 0, len(list))
		for _, x := range list {
			if s, ok := scalarString(x); ok {
				parts = append(parts, s)
			}
		}
		return strings.Join(parts, ","), true
	}
	return scalarString(v)
}

func scalarString(v any) (string, bool) {
	if s, ok := v.(string); ok {
		return s, true
	}
	if f, ok := v.(float64); ok {
		return strconv.FormatFloat(f, 'f', -1, 64), true
	}
	if b, ok := v.(bool); ok {
		return strconv.FormatBool(b), true
	}
	return "", false
}
