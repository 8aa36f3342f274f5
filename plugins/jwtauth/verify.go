package jwtauth

import (
	"encoding/base64"
	"encoding/json"
	"strconv"
	"strings"

	"github.com/pavilion-trust/gateway/plugins/confmap"
)

// maxTokenBytes bounds the token accepted for parsing.
const maxTokenBytes = 16 << 10

// b64url decodes JWS segments: unpadded base64url, canonical encodings only.
var b64url = base64.RawURLEncoding.Strict()

// verdict is the outcome of verifying one token: either a rejection, or the header values to
// forward. Verdicts of valid tokens (accepted or forbidden) are cached until the token's exp.
type verdict struct {
	token  string // the token itself: a cache hit must match it exactly, not only its hash
	reject *rejection
	// names and vals are the upstream headers of the claims present: canonical names and
	// one-element values, built once per verified token and set as they are on every request
	// that carries it (net/http and Traefik replace header values, never write into them).
	names []string
	vals  [][]string
	exp   int64 // unix seconds
	gen   int64 // key set generation the signature was checked against
}

// jwsHeader is the protected header of a JWS (RFC 7515) as far as verification needs it.
type jwsHeader struct {
	Alg  string   `json:"alg"`
	Kid  string   `json:"kid"`
	Crit []string `json:"crit"`
}

// verify checks the compact JWS (algorithm allow-list, key, signature with golang-jwt's
// signing methods), then the claims: exp (required), nbf, iat with leeway, iss, typ, aud,
// then scopes and roles. Claims are checked here rather than by golang-jwt because its
// joined validation errors cannot be told apart under Yaegi.
func (a *jwtAuth) verify(token string) *verdict {
	dot1 := strings.IndexByte(token, '.')
	if dot1 <= 0 {
		return &verdict{reject: a.rej.malformed}
	}
	dot2 := strings.IndexByte(token[dot1+1:], '.')
	if dot2 <= 0 {
		return &verdict{reject: a.rej.malformed}
	}
	dot2 = dot2 + dot1 + 1
	if strings.IndexByte(token[dot2+1:], '.') >= 0 {
		return &verdict{reject: a.rej.malformed}
	}
	headerJSON, err := b64url.DecodeString(token[:dot1])
	if err != nil {
		return &verdict{reject: a.rej.malformed}
	}
	var hdr jwsHeader
	if err := json.Unmarshal(headerJSON, &hdr); err != nil {
		return &verdict{reject: a.rej.malformed}
	}
	if len(hdr.Crit) > 0 {
		return &verdict{reject: a.rej.malformed}
	}
	method := a.methods[hdr.Alg]
	if method == nil {
		return &verdict{reject: a.rej.algorithm}
	}
	sig, err := b64url.DecodeString(token[dot2+1:])
	if err != nil || len(sig) == 0 {
		return &verdict{reject: a.rej.malformed}
	}
	key, gen := a.keys.lookup(hdr.Kid, hdr.Alg)
	if key == nil {
		return &verdict{reject: a.rej.unknownKey}
	}
	if err := method.Verify(token[:dot2], sig, key.key); err != nil {
		return &verdict{reject: a.rej.signature}
	}
	payload, err := b64url.DecodeString(token[dot1+1 : dot2])
	if err != nil {
		return &verdict{reject: a.rej.malformed}
	}
	var claims map[string]any
	if err := json.Unmarshal(payload, &claims); err != nil || claims == nil {
		return &verdict{reject: a.rej.malformed}
	}
	if rej := a.checkClaims(claims); rej != nil {
		return &verdict{reject: rej}
	}
	exp, _ := claims["exp"].(float64)
	v := &verdict{token: token, exp: int64(exp), gen: gen}
	for _, h := range a.s.headers {
		val := claimString(claims, h.path)
		if confmap.HasControl(val) {
			return &verdict{reject: a.rej.controlChars}
		}
		if val != "" {
			v.names = append(v.names, h.header)
			v.vals = append(v.vals, []string{val})
		}
	}
	if !hasScopes(claims["scope"], a.s.scopes) {
		v.reject = a.rej.scope
	} else if len(a.s.roles) > 0 && !hasRole(claims, a.s.roles) {
		v.reject = a.rej.role
	}
	return v
}

// checkClaims validates the registered claims; nil means valid.
func (a *jwtAuth) checkClaims(claims map[string]any) *rejection {
	now := float64(a.now().Unix())
	leeway := a.s.leeway.Seconds()
	exp, ok := claims["exp"].(float64)
	if !ok {
		if claims["exp"] == nil {
			return a.rej.missingExp
		}
		return a.rej.invalidClaims
	}
	if now >= exp+leeway {
		return a.rej.expired
	}
	if nbf, present := claims["nbf"]; present {
		n, ok := nbf.(float64)
		if !ok {
			return a.rej.invalidClaims
		}
		if now+leeway < n {
			return a.rej.notYetValid
		}
	}
	if iat, present := claims["iat"]; present {
		n, ok := iat.(float64)
		if !ok {
			return a.rej.invalidClaims
		}
		if n > now+leeway {
			return a.rej.issuedInFuture
		}
	}
	if iss, _ := claims["iss"].(string); iss != a.s.issuer {
		return a.rej.issuer
	}
	if typ, present := claims["typ"]; present && !a.s.anyType {
		s, _ := typ.(string)
		if !a.s.tokenTypes[strings.ToLower(s)] {
			return a.rej.tokenType
		}
	}
	if len(a.s.audiences) > 0 && !audienceMatches(claims["aud"], a.s.audiences) {
		return a.rej.audience
	}
	return nil
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
// Objects, null and absent claims give "" (no header).
func claimString(claims map[string]any, path []string) string {
	v := lookupPath(claims, path)
	if list, ok := v.([]any); ok {
		parts := make([]string, 0, len(list))
		for _, x := range list {
			if s, ok := scalarString(x); ok {
				parts = append(parts, s)
			}
		}
		return strings.Join(parts, ",")
	}
	s, _ := scalarString(v)
	return s
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
