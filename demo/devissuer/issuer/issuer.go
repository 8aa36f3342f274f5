// Package issuer is a development OpenID Connect issuer that looks like a
// Keycloak realm to a client: same URL layout (/realms/{realm}/...), same
// discovery document fields, same JWKS shape and the same access-token claims
// that Keycloak 26 puts into a client_credentials token.
//
// It exists for fast in-process tests of JWT-validating middleware and for
// demos. It is NOT an identity provider: there is no user login, no
// persistence, and the /admin/rotate endpoint is unauthenticated. Never expose
// it outside a development machine or a test network.
//
// Typical test use:
//
//	iss, _ := issuer.New(issuer.Config{Clients: []issuer.Client{{ID: "svc", Secret: "s", Audience: []string{"core-broker"}}}})
//	_ = iss.Start("127.0.0.1:0")
//	defer iss.Stop()
//	tok, _ := iss.Token("svc") // or Claims + modify + Sign to forge edge cases
//
// Values returned by Claims use the same Go types encoding/json produces when
// decoding into a jwt.MapClaims (string, float64, []any, map[string]any), so
// Claims(...) compares equal (reflect.DeepEqual) to the claims parsed back from
// the signed token, and jwt.MapClaims accessors such as GetExpirationTime work
// on it directly.
package issuer

import (
	"crypto/rand"
	"crypto/rsa"
	"crypto/sha256"
	"encoding/base64"
	"encoding/hex"
	"errors"
	"fmt"
	"math/big"
	"net"
	"net/http"
	"strings"
	"sync"
	"time"

	"github.com/golang-jwt/jwt/v5"
)

// Defaults applied by New for zero-valued Config fields.
const (
	DefaultRealm         = "pavilion"
	DefaultTokenLifetime = 5 * time.Minute
	DefaultKeyBits       = 2048
)

// ErrUnknownClient is returned (wrapped) by Claims and Token for a client ID
// that is not configured.
var ErrUnknownClient = errors.New("issuer: unknown client")

// Client is a Keycloak client with a service account (client_credentials).
// The JSON tags let main load a []Client from a file; encoding/json matches
// keys case-insensitively, so "ID"/"Secret"/... work as well.
type Client struct {
	ID          string              `json:"id"`                    // client_id; becomes azp and clientId
	Secret      string              `json:"secret"`                // client_secret for client_credentials; empty = public client (token endpoint refuses it, like Keycloak)
	Audience    []string            `json:"audience,omitempty"`    // aud of issued tokens; empty -> "account" like Keycloak
	Scopes      []string            `json:"scopes,omitempty"`      // space-joined into "scope"
	RealmRoles  []string            `json:"realmRoles,omitempty"`  // realm_access.roles (claim omitted when empty, like Keycloak)
	ClientRoles map[string][]string `json:"clientRoles,omitempty"` // resource_access.<client>.roles (claim omitted when empty)
	Username    string              `json:"username,omitempty"`    // preferred_username; default "service-account-" + lower(ID) like Keycloak
}

// Config configures New. Zero values get the documented defaults.
type Config struct {
	Realm         string           // default "pavilion"
	Clients       []Client         // client IDs must be unique and non-empty
	TokenLifetime time.Duration    // default 5m
	KeyBits       int              // RSA key size, default 2048
	Now           func() time.Time // default time.Now; used for iat/exp
}

type signingKey struct {
	kid       string
	priv      *rsa.PrivateKey
	published bool
}

// Issuer is a Keycloak-lookalike OIDC issuer. All methods are safe for
// concurrent use.
type Issuer struct {
	realm    string
	lifetime time.Duration
	keyBits  int
	now      func() time.Time
	clients  map[string]Client
	subs     map[string]string
	order    []string // client IDs in configuration order

	mu      sync.RWMutex // guards the fields below
	keys    []*signingKey
	current *signingKey
	extra   []map[string]any
	base    string

	life     sync.Mutex // guards the server lifecycle fields below
	srv      *http.Server
	ln       net.Listener
	served   chan struct{}
	lastAddr string
}

// New validates cfg, applies defaults and generates the first signing key.
func New(cfg Config) (*Issuer, error) {
	i := &Issuer{
		realm:    cfg.Realm,
		lifetime: cfg.TokenLifetime,
		keyBits:  cfg.KeyBits,
		now:      cfg.Now,
		clients:  make(map[string]Client, len(cfg.Clients)),
		subs:     make(map[string]string, len(cfg.Clients)),
	}
	if i.realm == "" {
		i.realm = DefaultRealm
	}
	if strings.ContainsAny(i.realm, "/?#") {
		return nil, fmt.Errorf("issuer: invalid realm name %q", i.realm)
	}
	if i.lifetime < 0 {
		return nil, fmt.Errorf("issuer: negative token lifetime %v", i.lifetime)
	}
	if i.lifetime == 0 {
		i.lifetime = DefaultTokenLifetime
	}
	if i.keyBits == 0 {
		i.keyBits = DefaultKeyBits
	}
	if i.now == nil {
		i.now = time.Now
	}
	for _, c := range cfg.Clients {
		if c.ID == "" {
			return nil, errors.New("issuer: client with empty ID")
		}
		if _, dup := i.clients[c.ID]; dup {
			return nil, fmt.Errorf("issuer: duplicate client %q", c.ID)
		}
		i.clients[c.ID] = cloneClient(c)
		i.subs[c.ID] = stableUUID(i.realm + "\x00" + c.ID)
		i.order = append(i.order, c.ID)
	}
	if _, err := i.Rotate(); err != nil {
		return nil, err
	}
	return i, nil
}

func cloneClient(c Client) Client {
	c.Audience = append([]string(nil), c.Audience...)
	c.Scopes = append([]string(nil), c.Scopes...)
	c.RealmRoles = append([]string(nil), c.RealmRoles...)
	if c.ClientRoles != nil {
		m := make(map[string][]string, len(c.ClientRoles))
		for k, v := range c.ClientRoles {
			m[k] = append([]string(nil), v...)
		}
		c.ClientRoles = m
	}
	if c.Username == "" {
		c.Username = "service-account-" + strings.ToLower(c.ID)
	}
	return c
}

// stableUUID derives a UUID-v4-looking string from name, so a client's sub is
// stable across restarts (Keycloak's service-account user id is stable too).
func stableUUID(name string) string {
	sum := sha256.Sum256([]byte("devissuer-sub\x00" + name))
	return formatUUID(sum[:16])
}

func randomUUID() string {
	var b [16]byte
	if _, err := rand.Read(b[:]); err != nil {
		panic("issuer: crypto/rand failed: " + err.Error())
	}
	return formatUUID(b[:])
}

func formatUUID(b []byte) string {
	b[6] = b[6]&0x0f | 0x40 // version 4
	b[8] = b[8]&0x3f | 0x80 // RFC 4122 variant
	h := hex.EncodeToString(b)
	return h[0:8] + "-" + h[8:12] + "-" + h[12:16] + "-" + h[16:20] + "-" + h[20:32]
}

// Realm returns the realm name.
func (i *Issuer) Realm() string { return i.realm }

// SetBaseURL sets the externally visible base URL, e.g.
// "http://127.0.0.1:34567"; the issuer becomes base+"/realms/"+realm. A
// trailing slash is ignored. Start calls it with the listening address.
// While no base URL is set, HTTP endpoints derive it from the request (scheme
// and Host header), like Keycloak without a configured hostname.
func (i *Issuer) SetBaseURL(base string) {
	i.mu.Lock()
	i.base = strings.TrimRight(base, "/")
	i.mu.Unlock()
}

// IssuerURL returns base+"/realms/"+realm.
func (i *Issuer) IssuerURL() string {
	i.mu.RLock()
	defer i.mu.RUnlock()
	return i.issuerFor(i.base)
}

// JWKSURL returns IssuerURL()+"/protocol/openid-connect/certs".
func (i *Issuer) JWKSURL() string {
	return i.IssuerURL() + "/protocol/openid-connect/certs"
}

func (i *Issuer) issuerFor(base string) string {
	return base + "/realms/" + i.realm
}

// Start listens on addr ("127.0.0.1:0" picks a free port), sets the base URL
// to http://<actual addr> and serves Handler in the background. It fails if
// the issuer is already running. After Stop, Start may be called again (for
// example with Addr() to bring the "IdP" back on the same port); keys and
// everything else are kept.
func (i *Issuer) Start(addr string) error {
	i.life.Lock()
	defer i.life.Unlock()
	if i.srv != nil {
		return errors.New("issuer: already started")
	}
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		return fmt.Errorf("issuer: listen %s: %w", addr, err)
	}
	srv := &http.Server{
		Handler:           i.Handler(),
		ReadHeaderTimeout: 10 * time.Second,
	}
	i.srv, i.ln, i.served = srv, ln, make(chan struct{})
	i.lastAddr = ln.Addr().String()
	i.SetBaseURL("http://" + baseHost(ln.Addr()))
	go func(done chan struct{}) {
		defer close(done)
		_ = srv.Serve(ln) // returns http.ErrServerClosed after Stop
	}(i.served)
	return nil
}

// baseHost turns a listener address into something a client can dial:
// unspecified addresses (0.0.0.0, ::) become loopback.
func baseHost(a net.Addr) string {
	tcp, ok := a.(*net.TCPAddr)
	if !ok {
		return a.String()
	}
	ip := tcp.IP
	if ip == nil || ip.IsUnspecified() {
		if ip != nil && ip.To4() == nil {
			ip = net.IPv6loopback
		} else {
			ip = net.IPv4(127, 0, 0, 1)
		}
	}
	return net.JoinHostPort(ip.String(), fmt.Sprint(tcp.Port))
}

// Stop closes the listener and all open connections and waits for the
// background server to finish. Stopping a stopped issuer is a no-op.
func (i *Issuer) Stop() error {
	i.life.Lock()
	defer i.life.Unlock()
	if i.srv == nil {
		return nil
	}
	err := i.srv.Close()
	<-i.served
	i.srv, i.ln, i.served = nil, nil, nil
	return err
}

// Addr returns the actual host:port after Start (still the last one after
// Stop, so Start(Addr()) brings the issuer back on the same port). Empty if
// never started.
func (i *Issuer) Addr() string {
	i.life.Lock()
	defer i.life.Unlock()
	return i.lastAddr
}

// Rotate generates a new RSA key which becomes the signing key. Older keys
// stay published until retired.
func (i *Issuer) Rotate() (kid string, err error) {
	priv, err := rsa.GenerateKey(rand.Reader, i.keyBits)
	if err != nil {
		return "", fmt.Errorf("issuer: generate RSA-%d key: %w", i.keyBits, err)
	}
	k := &signingKey{kid: thumbprint(&priv.PublicKey), priv: priv, published: true}
	i.mu.Lock()
	defer i.mu.Unlock()
	i.keys = append(i.keys, k)
	i.current = k
	return k.kid, nil
}

// Retire stops publishing kid in the JWKS. The key stays known to PrivateKey,
// and if it is the current key it keeps signing (handy to test "kid not in
// JWKS"); call Rotate to switch. Unknown kids are ignored.
func (i *Issuer) Retire(kid string) {
	i.mu.Lock()
	defer i.mu.Unlock()
	for _, k := range i.keys {
		if k.kid == kid {
			k.published = false
		}
	}
}

// CurrentKID returns the kid of the signing key.
func (i *Issuer) CurrentKID() string {
	i.mu.RLock()
	defer i.mu.RUnlock()
	return i.current.kid
}

// PrivateKey returns the private key for kid (published or retired), or nil.
func (i *Issuer) PrivateKey(kid string) *rsa.PrivateKey {
	i.mu.RLock()
	defer i.mu.RUnlock()
	for _, k := range i.keys {
		if k.kid == kid {
			return k.priv
		}
	}
	return nil
}

// SetPublishedExtra appends raw JWK entries to the published JWKS (after the
// issuer's own keys), e.g. enc keys, small RSA keys, EC keys. nil clears.
// The entries are shallow-copied.
func (i *Issuer) SetPublishedExtra(jwks []map[string]any) {
	var cp []map[string]any
	for _, e := range jwks {
		m := make(map[string]any, len(e))
		for k, v := range e {
			m[k] = v
		}
		cp = append(cp, m)
	}
	i.mu.Lock()
	i.extra = cp
	i.mu.Unlock()
}

// Claims returns the claims a client_credentials access token for clientID
// would carry, with fresh iat/exp/jti and iss = IssuerURL(). The map is new on
// every call; modify it freely and pass it to Sign.
func (i *Issuer) Claims(clientID string) (jwt.MapClaims, error) {
	return i.claimsFor(clientID, i.IssuerURL())
}

func (i *Issuer) claimsFor(clientID, iss string) (jwt.MapClaims, error) {
	c, ok := i.clients[clientID]
	if !ok {
		return nil, fmt.Errorf("%w %q", ErrUnknownClient, clientID)
	}
	now := i.now()
	claims := jwt.MapClaims{
		"exp":                float64(now.Add(i.lifetime).Unix()),
		"iat":                float64(now.Unix()),
		"jti":                randomUUID(),
		"iss":                iss,
		"sub":                i.subs[clientID],
		"typ":                "Bearer",
		"azp":                c.ID,
		"scope":              strings.Join(c.Scopes, " "),
		"preferred_username": c.Username,
		"clientId":           c.ID,
	}
	switch len(c.Audience) {
	case 0:
		claims["aud"] = "account"
	case 1:
		claims["aud"] = c.Audience[0]
	default:
		claims["aud"] = toAny(c.Audience)
	}
	if len(c.RealmRoles) > 0 {
		claims["realm_access"] = map[string]any{"roles": toAny(c.RealmRoles)}
	}
	if len(c.ClientRoles) > 0 {
		ra := make(map[string]any, len(c.ClientRoles))
		for client, roles := range c.ClientRoles {
			ra[client] = map[string]any{"roles": toAny(roles)}
		}
		claims["resource_access"] = ra
	}
	return claims, nil
}

func toAny(ss []string) []any {
	out := make([]any, len(ss))
	for n, s := range ss {
		out[n] = s
	}
	return out
}

// Sign signs claims with RS256 and the current key; the header carries kid and
// typ "JWT" (like Keycloak).
func (i *Issuer) Sign(claims jwt.MapClaims) (string, error) {
	if claims == nil {
		claims = jwt.MapClaims{}
	}
	i.mu.RLock()
	k := i.current
	i.mu.RUnlock()
	t := jwt.NewWithClaims(jwt.SigningMethodRS256, claims)
	t.Header["kid"] = k.kid
	t.Header["typ"] = "JWT"
	s, err := t.SignedString(k.priv)
	if err != nil {
		return "", fmt.Errorf("issuer: sign: %w", err)
	}
	return s, nil
}

// Token returns a signed client_credentials access token for clientID
// (Claims + Sign). It works for public clients too.
func (i *Issuer) Token(clientID string) (string, error) {
	claims, err := i.Claims(clientID)
	if err != nil {
		return "", err
	}
	return i.Sign(claims)
}

// jwks returns the published key set: the issuer's own published keys (the
// current one first, then newest to oldest) followed by the extras.
func (i *Issuer) jwks() map[string]any {
	i.mu.RLock()
	defer i.mu.RUnlock()
	keys := make([]any, 0, len(i.keys)+len(i.extra))
	if i.current.published {
		keys = append(keys, rsaJWK(i.current))
	}
	for n := len(i.keys) - 1; n >= 0; n-- {
		if k := i.keys[n]; k != i.current && k.published {
			keys = append(keys, rsaJWK(k))
		}
	}
	for _, e := range i.extra {
		keys = append(keys, e)
	}
	return map[string]any{"keys": keys}
}

func rsaJWK(k *signingKey) map[string]any {
	n, e := rsaNE(&k.priv.PublicKey)
	return map[string]any{
		"kid": k.kid,
		"kty": "RSA",
		"alg": "RS256",
		"use": "sig",
		"n":   n,
		"e":   e,
	}
}

func rsaNE(pub *rsa.PublicKey) (n, e string) {
	enc := base64.RawURLEncoding
	return enc.EncodeToString(pub.N.Bytes()), enc.EncodeToString(big.NewInt(int64(pub.E)).Bytes())
}

// thumbprint is the RFC 7638 SHA-256 JWK thumbprint, base64url (43 chars,
// the same length and alphabet as Keycloak's kids).
func thumbprint(pub *rsa.PublicKey) string {
	n, e := rsaNE(pub)
	sum := sha256.Sum256([]byte(`{"e":"` + e + `","kty":"RSA","n":"` + n + `"}`))
	return base64.RawURLEncoding.EncodeToString(sum[:])
}
