package jwtauth

import (
	"encoding/base64"
	"encoding/json"
	"strconv"
	"strings"
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

// verify checks the compact JWS (algorithm allow-list, key, signature: signature.go), then
// the claims: exp (required), nbf, iat with leeway, iss, typ, aud, then scopes and roles.
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
	if !method.verify(token[:dot2], sig, key.key) {
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
		val, rej := a.claimValue(claims, h.path)
		if rej != nil {
			return &verdict{reject: rej}
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

// claimValue renders a forwarded claim as one header value, or refuses the token. The rule
// (docs/security.md):
//   - absent or null: no header;
//   - sub and azp must be JSON strings (RFC 7519 §4.1.2, OpenID Connect Core §2);
//   - a string is forwarded as it is, a number in decimal, a boolean as true/false;
//   - an array of those is joined with ","; an element holding a comma is refused (it would
//     read as two elements), as is an element that is an object, an array or null;
//   - an object is refused;
//   - a value holding a control character (C0, DEL, C1 such as U+0085), a Unicode line or
//     paragraph separator (U+2028, U+2029) or a bidirectional control is refused.
func (a *jwtAuth) claimValue(claims map[string]any, path []string) (string, *rejection) {
	v := lookupPath(claims, path)
	if v == nil {
		return "", nil
	}
	if len(path) == 1 && (path[0] == "sub" || path[0] == "azp") {
		if _, ok := v.(string); !ok {
			return "", a.rej.claimType
		}
	}
	list, isList := v.([]any)
	if !isList {
		s, ok := scalarString(v)
		if !ok {
			return "", a.rej.claimType
		}
		if unsafeClaimText(s) {
			return "", a.rej.controlChars
		}
		return s, nil
	}
	parts := make([]string, 0, len(list))
	for _, x := range list {
		s, ok := scalarString(x)
		if !ok {
			return "", a.rej.claimType
		}
		if strings.IndexByte(s, ',') >= 0 {
			return "", a.rej.claimComma
		}
		if unsafeClaimText(s) {
			return "", a.rej.controlChars
		}
		parts = append(parts, s)
	}
	return strings.Join(parts, ","), nil
}

// unsafeClaimText reports whether s holds a character that must never reach an upstream
// header: C0 controls and DEL, and (past the ASCII fast path) C1 controls, U+2028, U+2029
// and the bidirectional controls.
func unsafeClaimText(s string) bool {
	for i := 0; i < len(s); i++ {
		c := s[i]
		if c < 0x20 || c == 0x7f {
			return true
		}
		if c >= 0x80 {
			return unsafeRunes(s[i:])
		}
	}
	return false
}

func unsafeRunes(s string) bool {
	for _, r := range s {
		if r < 0x20 || (r >= 0x7f && r <= 0x9f) {
			return true
		}
		if r == 0x2028 || r == 0x2029 || r == 0x061c || r == 0x200e || r == 0x200f {
			return true
		}
		if (r >= 0x202a && r <= 0x202e) || (r >= 0x2066 && r <= 0x2069) {
			return true
		}
	}
	return false
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
