package jwtauth

import (
	"encoding/json"
	"net/http"
	"strings"
)

// rejection is a fully prepared error answer (RFC 6750); built once in New.
type rejection struct {
	status  int
	reason  string // short machine-readable reason, for logs and metrics
	wwwAuth []string
	body    []byte
	count   *int64 // pavilion_jwt_validations_total{result=reason}, set in New
	// lasting: the same token gets the same answer for as long as the key set stays the same
	// (a bad signature, an expiry, a wrong issuer…), so the verdict may be cached (see
	// negativeTTL). Time-bound answers (not valid yet, issued in the future) are not.
	lasting bool
}

// rejections holds every answer the plugin can give.
type rejections struct {
	missing        *rejection
	malformed      *rejection
	signature      *rejection
	algorithm      *rejection
	expired        *rejection
	notYetValid    *rejection
	issuedInFuture *rejection
	issuer         *rejection
	audience       *rejection
	unknownKey     *rejection
	missingExp     *rejection
	invalidClaims  *rejection
	controlChars   *rejection
	claimType      *rejection
	claimComma     *rejection
	tokenType      *rejection
	multipleAuth   *rejection
	scope          *rejection
	role           *rejection
	// tooManyFailures: the client address spent its failedAuth budget (429, Retry-After).
	tooManyFailures *rejection
	// tooManyHeaders: more request header names than maxHeaders (431).
	tooManyHeaders *rejection
}

func newRejections(s *settings) rejections {
	challenge := `Bearer realm="` + s.realm + `"`
	invalid := func(reason, description string) *rejection {
		return newRejection(http.StatusUnauthorized, reason, "invalid_token", description,
			challenge+`, error="invalid_token", error_description="`+description+`"`)
	}
	scopeAttr := ""
	if len(s.scopes) > 0 {
		scopeAttr = `, scope="` + strings.Join(s.scopes, " ") + `"`
	}
	forbidden := func(reason, description, attr string) *rejection {
		return newRejection(http.StatusForbidden, reason, "insufficient_scope", description,
			challenge+`, error="insufficient_scope", error_description="`+description+`"`+attr)
	}
	r := rejections{
		missing:        newRejection(http.StatusUnauthorized, "missing_token", "unauthorized", "a bearer token is required", challenge),
		malformed:      invalid("malformed", "the token is malformed"),
		signature:      invalid("bad_signature", "the token signature is invalid"),
		algorithm:      invalid("bad_algorithm", "the token algorithm is not allowed"),
		expired:        invalid("expired", "the token has expired"),
		notYetValid:    invalid("not_yet_valid", "the token is not valid yet"),
		issuedInFuture: invalid("issued_in_future", "the token was issued in the future"),
		issuer:         invalid("wrong_issuer", "the token issuer is not accepted"),
		audience:       invalid("wrong_audience", "the token audience is not accepted"),
		unknownKey:     invalid("unknown_key", "the token signing key is unknown"),
		missingExp:     invalid("missing_exp", "the token has no expiry"),
		invalidClaims:  invalid("invalid_claims", "the token claims are invalid"),
		controlChars:   invalid("bad_claim_value", "a token claim holds control characters"),
		claimType:      invalid("bad_claim_value", "a forwarded token claim has an unsupported type"),
		claimComma:     invalid("bad_claim_value", "a token claim array element holds a comma"),
		tokenType:      invalid("wrong_type", "the token is not an access token"),
		multipleAuth:   invalid("malformed", "more than one Authorization header"),
		scope:          forbidden("forbidden", "the token lacks a required scope", scopeAttr),
		role:           forbidden("forbidden", "the token lacks a required role", ""),
		tooManyHeaders: newRejection(http.StatusRequestHeaderFieldsTooLarge, "too_many_headers", "invalid_request",
			"too many request headers", challenge),
		tooManyFailures: newRejection(http.StatusTooManyRequests, "too_many_failures", "rate_limited",
			"too many failed authentications from this address; retry later", challenge),
	}
	// Not unknownKey: its next request must be able to trigger a JWKS fetch (at most one per
	// minRefreshInterval), and it costs no signature check anyway.
	for _, x := range []*rejection{r.malformed, r.signature, r.algorithm, r.expired, r.issuer, r.audience,
		r.missingExp, r.invalidClaims, r.controlChars, r.claimType, r.claimComma, r.tokenType} {
		x.lasting = true
	}
	return r
}

// all returns every rejection (some reasons are shared by several).
func (r *rejections) all() []*rejection {
	return []*rejection{r.missing, r.malformed, r.signature, r.algorithm, r.expired, r.notYetValid,
		r.issuedInFuture, r.issuer, r.audience, r.unknownKey, r.missingExp, r.invalidClaims,
		r.controlChars, r.claimType, r.claimComma, r.tokenType, r.multipleAuth, r.scope, r.role, r.tooManyFailures, r.tooManyHeaders}
}

func newRejection(status int, reason, code, description, challenge string) *rejection {
	body, _ := json.Marshal(map[string]string{"error": code, "error_description": description})
	return &rejection{
		status:  status,
		reason:  reason,
		wwwAuth: []string{challenge},
		body:    append(body, '\n'),
	}
}

var (
	jsonContentType = []string{"application/json"}
	noStore         = []string{"no-store"}
)

// write sends the prepared answer.
func (r *rejection) write(rw http.ResponseWriter) {
	h := rw.Header()
	h["Www-Authenticate"] = r.wwwAuth
	h["Content-Type"] = jsonContentType
	h["Cache-Control"] = noStore
	rw.WriteHeader(r.status)
	rw.Write(r.body)
}
