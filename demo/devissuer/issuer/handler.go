package issuer

import (
	"crypto/subtle"
	"crypto/x509"
	"encoding/base64"
	"encoding/json"
	"mime"
	"net/http"
	"net/url"
	"strings"
)

// Endpoint paths relative to the realm URL (/realms/{realm}).
const (
	pathDiscovery  = ".well-known/openid-configuration"
	pathCerts      = "protocol/openid-connect/certs"
	pathToken      = "protocol/openid-connect/token"
	pathAuth       = "protocol/openid-connect/auth"
	pathUserinfo   = "protocol/openid-connect/userinfo"
	pathIntrospect = "protocol/openid-connect/token/introspect"
	pathLogout     = "protocol/openid-connect/logout"
)

// Handler serves every endpoint:
//
//	GET  /realms/{realm}                                       realm info (like Keycloak's)
//	GET  /realms/{realm}/.well-known/openid-configuration      discovery
//	GET  /realms/{realm}/protocol/openid-connect/certs         JWKS
//	POST /realms/{realm}/protocol/openid-connect/token         client_credentials only
//	*    /realms/{realm}/protocol/openid-connect/{auth,userinfo,token/introspect,logout}  501
//	POST /admin/rotate                                         rotate the signing key, answers {"kid": "..."}
//
// /admin/rotate is UNAUTHENTICATED and exists for demos only.
// Unknown realms and paths get a 404 JSON body, wrong methods a 405 with Allow.
func (i *Issuer) Handler() http.Handler {
	return http.HandlerFunc(i.serveHTTP)
}

func (i *Issuer) serveHTTP(w http.ResponseWriter, r *http.Request) {
	p := r.URL.Path
	if p == "/admin/rotate" {
		if !allow(w, r, http.MethodPost) {
			return
		}
		kid, err := i.Rotate()
		if err != nil {
			writeJSON(w, http.StatusInternalServerError, oauthError("server_error", err.Error()))
			return
		}
		writeJSON(w, http.StatusOK, map[string]any{"kid": kid})
		return
	}
	rest, ok := strings.CutPrefix(p, "/realms/")
	if !ok {
		writeJSON(w, http.StatusNotFound, map[string]any{"error": "Unable to find matching target resource method"})
		return
	}
	realm, sub, _ := strings.Cut(rest, "/")
	if realm != i.realm {
		writeJSON(w, http.StatusNotFound, map[string]any{"error": "Realm does not exist"})
		return
	}
	switch sub {
	case "":
		if allow(w, r, http.MethodGet, http.MethodHead) {
			i.serveRealmInfo(w, r)
		}
	case pathDiscovery:
		if allow(w, r, http.MethodGet, http.MethodHead) {
			i.serveDiscovery(w, r)
		}
	case pathCerts:
		if allow(w, r, http.MethodGet, http.MethodHead) {
			w.Header().Set("Cache-Control", "no-cache")
			writeJSON(w, http.StatusOK, i.jwks())
		}
	case pathToken:
		if allow(w, r, http.MethodPost) {
			i.serveToken(w, r)
		}
	case pathAuth, pathUserinfo, pathIntrospect, pathLogout:
		writeJSON(w, http.StatusNotImplemented, oauthError("temporarily_unavailable",
			"not implemented by devissuer (client_credentials only)"))
	default:
		writeJSON(w, http.StatusNotFound, map[string]any{"error": "Unable to find matching target resource method"})
	}
}

// allow answers 405 (with Allow) unless r uses one of methods.
func allow(w http.ResponseWriter, r *http.Request, methods ...string) bool {
	for _, m := range methods {
		if r.Method == m {
			return true
		}
	}
	w.Header().Set("Allow", strings.Join(methods, ", "))
	writeJSON(w, http.StatusMethodNotAllowed, map[string]any{"error": "HTTP 405 Method Not Allowed"})
	return false
}

func writeJSON(w http.ResponseWriter, status int, v any) {
	b, err := json.Marshal(v)
	if err != nil {
		status = http.StatusInternalServerError
		b = []byte(`{"error":"server_error"}`)
	}
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(status)
	_, _ = w.Write(b)
}

func oauthError(code, desc string) map[string]any {
	return map[string]any{"error": code, "error_description": desc}
}

// requestIssuer is the issuer for r: the configured base URL, or, when none is
// set, one derived from the request like Keycloak does without a hostname.
func (i *Issuer) requestIssuer(r *http.Request) string {
	i.mu.RLock()
	base := i.base
	i.mu.RUnlock()
	if base == "" {
		scheme := "http"
		if r.TLS != nil {
			scheme = "https"
		}
		base = scheme + "://" + r.Host
	}
	return i.issuerFor(base)
}

func (i *Issuer) serveDiscovery(w http.ResponseWriter, r *http.Request) {
	iss := i.requestIssuer(r)
	oidc := iss + "/protocol/openid-connect/"
	writeJSON(w, http.StatusOK, map[string]any{
		"issuer":                                iss,
		"authorization_endpoint":                oidc + "auth",
		"token_endpoint":                        oidc + "token",
		"introspection_endpoint":                oidc + "token/introspect",
		"userinfo_endpoint":                     oidc + "userinfo",
		"end_session_endpoint":                  oidc + "logout",
		"jwks_uri":                              oidc + "certs",
		"grant_types_supported":                 []string{"client_credentials"},
		"response_types_supported":              []string{"code"},
		"subject_types_supported":               []string{"public"},
		"id_token_signing_alg_values_supported": []string{"RS256"},
		"token_endpoint_auth_methods_supported": []string{"client_secret_basic", "client_secret_post"},
		"scopes_supported":                      i.scopesSupported(),
		"claims_supported": []string{
			"aud", "sub", "iss", "exp", "iat", "jti", "typ", "azp", "scope",
			"preferred_username", "clientId", "realm_access", "resource_access",
		},
	})
}

func (i *Issuer) scopesSupported() []string {
	seen := map[string]bool{"openid": true}
	out := []string{"openid"}
	for _, id := range i.order {
		for _, s := range i.clients[id].Scopes {
			if !seen[s] {
				seen[s] = true
				out = append(out, s)
			}
		}
	}
	return out
}

func (i *Issuer) serveRealmInfo(w http.ResponseWriter, r *http.Request) {
	iss := i.requestIssuer(r)
	i.mu.RLock()
	pub := &i.current.priv.PublicKey
	i.mu.RUnlock()
	der, err := x509.MarshalPKIXPublicKey(pub)
	if err != nil {
		writeJSON(w, http.StatusInternalServerError, oauthError("server_error", err.Error()))
		return
	}
	writeJSON(w, http.StatusOK, map[string]any{
		"realm":             i.realm,
		"public_key":        base64.StdEncoding.EncodeToString(der),
		"token-service":     iss + "/protocol/openid-connect",
		"account-service":   iss + "/account",
		"tokens-not-before": 0,
	})
}

const maxFormBytes = 1 << 20

func (i *Issuer) serveToken(w http.ResponseWriter, r *http.Request) {
	if mt, _, _ := mime.ParseMediaType(r.Header.Get("Content-Type")); mt != "application/x-www-form-urlencoded" {
		writeJSON(w, http.StatusUnsupportedMediaType, oauthError("invalid_request",
			"Content-Type must be application/x-www-form-urlencoded"))
		return
	}
	r.Body = http.MaxBytesReader(w, r.Body, maxFormBytes)
	if err := r.ParseForm(); err != nil {
		writeJSON(w, http.StatusBadRequest, oauthError("invalid_request", "Malformed form body"))
		return
	}
	form := r.PostForm

	// Keycloak checks the grant type before authenticating the client.
	switch gt := form.Get("grant_type"); gt {
	case "":
		writeJSON(w, http.StatusBadRequest, oauthError("invalid_request", "Missing form parameter: grant_type"))
		return
	case "client_credentials":
	default:
		writeJSON(w, http.StatusBadRequest, oauthError("unsupported_grant_type", "Unsupported grant_type"))
		return
	}

	id, secret, basic := r.BasicAuth()
	if basic {
		// RFC 6749 §2.3.1: credentials are form-urlencoded before Basic encoding.
		id, secret = formUnescape(id), formUnescape(secret)
		if fid := form.Get("client_id"); fid != "" && fid != id {
			writeJSON(w, http.StatusBadRequest, oauthError("invalid_request",
				"client_id in body does not match the authenticated client"))
			return
		}
	} else {
		id, secret = form.Get("client_id"), form.Get("client_secret")
	}
	fail := func(status int, code, desc string) {
		if basic {
			w.Header().Set("WWW-Authenticate", `Basic realm="`+i.realm+`"`)
		}
		writeJSON(w, status, oauthError(code, desc))
	}
	if id == "" {
		fail(http.StatusUnauthorized, "invalid_client", "Missing parameter: client_id")
		return
	}
	c, ok := i.clients[id]
	if !ok {
		fail(http.StatusUnauthorized, "invalid_client", "Invalid client or Invalid client credentials")
		return
	}
	if c.Secret == "" {
		fail(http.StatusUnauthorized, "unauthorized_client", "Public client not allowed to retrieve service account")
		return
	}
	if subtle.ConstantTimeCompare([]byte(secret), []byte(c.Secret)) != 1 {
		fail(http.StatusUnauthorized, "invalid_client", "Invalid client or Invalid client credentials")
		return
	}

	claims, err := i.claimsFor(id, i.requestIssuer(r))
	if err != nil {
		writeJSON(w, http.StatusInternalServerError, oauthError("server_error", err.Error()))
		return
	}
	tok, err := i.Sign(claims)
	if err != nil {
		writeJSON(w, http.StatusInternalServerError, oauthError("server_error", err.Error()))
		return
	}
	w.Header().Set("Cache-Control", "no-store")
	w.Header().Set("Pragma", "no-cache")
	writeJSON(w, http.StatusOK, map[string]any{
		"access_token":       tok,
		"expires_in":         int64(i.lifetime.Seconds()),
		"refresh_expires_in": 0,
		"token_type":         "Bearer",
		"not-before-policy":  0,
		"scope":              claims["scope"],
	})
}

func formUnescape(s string) string {
	if u, err := url.QueryUnescape(s); err == nil {
		return u
	}
	return s
}
