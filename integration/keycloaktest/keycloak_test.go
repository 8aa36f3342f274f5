// Package keycloaktest runs jwtauth against a real Keycloak: one Keycloak process per test
// binary (started by TestMain through .ci/keycloak with demo/keycloak/pavilion-realm.json
// imported), a real Traefik per test loading jwtauth as a local plugin, and the echo upstream.
//
// Without java or mvn the tests skip, and so they do when Maven cannot fetch Keycloak; with
// PAVILION_REQUIRE_KEYCLOAK=1 (CI) both are failures. A Keycloak that was fetched but does
// not start is always a failure.
package keycloaktest

import (
	"bufio"
	"bytes"
	"encoding/base64"
	"encoding/json"
	"flag"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/pavilion-trust/gateway/integration/pluginharness"
)

const (
	realmName     = "pavilion"
	adminUser     = "admin"
	adminPassword = "admin-test-password"
	startTimeout  = 5 * time.Minute
	stopTimeout   = 60 * time.Second
)

// kc is the Keycloak of this test binary; kcSkip or kcErr say why there is none.
var (
	kc     *keycloak
	kcSkip string
	kcErr  error
)

func TestMain(m *testing.M) {
	flag.Parse()
	os.Exit(run(m))
}

func run(m *testing.M) int {
	if !testing.Short() || os.Getenv("PAVILION_REQUIRE_KEYCLOAK") == "1" {
		setUp()
	} else {
		kcSkip = "keycloaktest: -short: real Keycloak tests skipped"
	}
	defer func() {
		if kc != nil {
			kc.stop()
			_ = os.RemoveAll(kc.instance)
		}
	}()
	return m.Run()
}

// setUp fetches (once, cached) and starts Keycloak, filling kc, kcSkip or kcErr.
func setUp() {
	required := os.Getenv("PAVILION_REQUIRE_KEYCLOAK") == "1"
	unavailable := func(msg string) {
		if required {
			kcErr = fmt.Errorf("%s (PAVILION_REQUIRE_KEYCLOAK=1: Keycloak is required)", msg)
		} else {
			kcSkip = msg + "; set PAVILION_REQUIRE_KEYCLOAK=1 to make this a failure"
		}
	}
	for _, tool := range []string{"java", "mvn"} {
		if _, err := exec.LookPath(tool); err != nil {
			unavailable(fmt.Sprintf("keycloaktest: %s not found: the real-Keycloak tests need Java 17+ and Maven", tool))
			return
		}
	}

	script := filepath.Join(pluginharness.RepoRoot(), ".ci", "keycloak")
	var stderr bytes.Buffer
	home := exec.Command("bash", script, "home")
	home.Stderr = &stderr
	if _, err := home.Output(); err != nil {
		unavailable(fmt.Sprintf("keycloaktest: fetching Keycloak failed: %v\n%s", err, stderr.String()))
		return
	}

	instance, err := os.MkdirTemp("", "keycloaktest-")
	if err != nil {
		kcErr = err
		return
	}
	k := &keycloak{script: script, instance: instance, port: freePort()}
	k.base = "http://127.0.0.1:" + strconv.Itoa(k.port)
	k.realmURL = k.base + "/realms/" + realmName
	began := time.Now()
	if err := k.start(); err != nil {
		kcErr = err
		_ = os.RemoveAll(instance)
		return
	}
	fmt.Fprintf(os.Stderr, "keycloaktest: Keycloak ready at %s after %s\n", k.realmURL, time.Since(began).Round(100*time.Millisecond))
	kc = k
}

// needKeycloak returns the running Keycloak, or skips or fails the test.
func needKeycloak(t *testing.T) *keycloak {
	t.Helper()
	if kcSkip != "" {
		t.Skip(kcSkip)
	}
	if kcErr != nil {
		t.Fatal(kcErr)
	}
	return kc
}

// keycloak is a Keycloak process run by `.ci/keycloak run`, with its own instance directory
// (H2 database), so that a restart keeps the realm and its keys.
type keycloak struct {
	script   string
	instance string
	port     int
	base     string // http://127.0.0.1:<port>
	realmURL string // base/realms/pavilion: the issuer

	cmd    *exec.Cmd
	exited chan struct{}
	client http.Client
}

func (k *keycloak) start() error {
	cmd := exec.Command("bash", k.script, "run")
	cmd.Env = append(os.Environ(),
		"KEYCLOAK_PORT="+strconv.Itoa(k.port),
		"KEYCLOAK_INSTANCE="+k.instance,
		"KC_BOOTSTRAP_ADMIN_USERNAME="+adminUser,
		"KC_BOOTSTRAP_ADMIN_PASSWORD="+adminPassword,
	)
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	stdout, err := cmd.StdoutPipe()
	if err != nil {
		return err
	}
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	if err := cmd.Start(); err != nil {
		return fmt.Errorf("keycloaktest: starting %s: %w", k.script, err)
	}
	k.cmd = cmd
	k.exited = make(chan struct{})

	ready := make(chan string, 1)
	go func() {
		sc := bufio.NewScanner(stdout)
		for sc.Scan() {
			if line := sc.Text(); strings.HasPrefix(line, "http") {
				select {
				case ready <- line:
				default:
				}
			}
		}
		_ = cmd.Wait()
		close(k.exited)
	}()

	select {
	case url := <-ready:
		if url != k.realmURL {
			k.stop()
			return fmt.Errorf("keycloaktest: Keycloak printed %q, want %q", url, k.realmURL)
		}
		return nil
	case <-k.exited:
		return fmt.Errorf("keycloaktest: Keycloak did not start:\n%s\n%s", stderr.String(), k.logTail())
	case <-time.After(startTimeout):
		k.stop()
		return fmt.Errorf("keycloaktest: Keycloak not ready after %s:\n%s", startTimeout, k.logTail())
	}
}

// stop ends Keycloak with SIGTERM (the script passes it on and waits), SIGKILL to the whole
// process group after stopTimeout.
func (k *keycloak) stop() {
	if k.cmd == nil {
		return
	}
	_ = k.cmd.Process.Signal(syscall.SIGTERM)
	select {
	case <-k.exited:
	case <-time.After(stopTimeout):
		_ = syscall.Kill(-k.cmd.Process.Pid, syscall.SIGKILL)
		<-k.exited
	}
	k.cmd = nil
}

func (k *keycloak) logTail() string {
	b, _ := os.ReadFile(filepath.Join(k.instance, "keycloak.log"))
	if len(b) > 8<<10 {
		b = b[len(b)-8<<10:]
	}
	return string(b)
}

// up reports whether the realm's discovery document answers.
func (k *keycloak) up() bool {
	res, err := k.client.Get(k.realmURL + "/.well-known/openid-configuration")
	if err != nil {
		return false
	}
	res.Body.Close()
	return res.StatusCode == http.StatusOK
}

// tokenResponse is the token endpoint's answer.
type tokenResponse struct {
	AccessToken string `json:"access_token"`
	ExpiresIn   int    `json:"expires_in"`
	Scope       string `json:"scope"`
	Error       string `json:"error"`
	Description string `json:"error_description"`
}

func (k *keycloak) postForm(t *testing.T, realm string, form url.Values) tokenResponse {
	t.Helper()
	res, err := k.client.PostForm(k.base+"/realms/"+realm+"/protocol/openid-connect/token", form)
	if err != nil {
		t.Fatalf("token request: %v", err)
	}
	defer res.Body.Close()
	body, _ := io.ReadAll(res.Body)
	var tr tokenResponse
	if err := json.Unmarshal(body, &tr); err != nil || res.StatusCode != http.StatusOK || tr.AccessToken == "" {
		t.Fatalf("token request for %v: %d %s", form.Get("client_id"), res.StatusCode, body)
	}
	return tr
}

// clientToken is an access token of clientID by the client credentials grant (scope may be
// empty: the client's default scopes).
func (k *keycloak) clientToken(t *testing.T, clientID, secret, scope string) string {
	t.Helper()
	form := url.Values{"grant_type": {"client_credentials"}, "client_id": {clientID}, "client_secret": {secret}}
	if scope != "" {
		form.Set("scope", scope)
	}
	return k.postForm(t, realmName, form).AccessToken
}

// adminToken is an access token of the bootstrap admin (master realm, admin-cli).
func (k *keycloak) adminToken(t *testing.T) string {
	t.Helper()
	return k.postForm(t, "master", url.Values{
		"grant_type": {"password"}, "client_id": {"admin-cli"},
		"username": {adminUser}, "password": {adminPassword},
	}).AccessToken
}

// admin calls the admin REST API under /admin/realms/pavilion; body and out are JSON (either
// may be nil). It returns the response's Location header.
func (k *keycloak) admin(t *testing.T, method, path string, body, out any) string {
	t.Helper()
	var rd io.Reader
	if body != nil {
		b, err := json.Marshal(body)
		if err != nil {
			t.Fatal(err)
		}
		rd = bytes.NewReader(b)
	}
	req, err := http.NewRequest(method, k.base+"/admin/realms/"+realmName+path, rd)
	if err != nil {
		t.Fatal(err)
	}
	req.Header.Set("Authorization", "Bearer "+k.adminToken(t))
	if body != nil {
		req.Header.Set("Content-Type", "application/json")
	}
	res, err := k.client.Do(req)
	if err != nil {
		t.Fatalf("admin %s %s: %v", method, path, err)
	}
	defer res.Body.Close()
	b, _ := io.ReadAll(res.Body)
	if res.StatusCode/100 != 2 {
		t.Fatalf("admin %s %s: %d %s", method, path, res.StatusCode, b)
	}
	if out != nil {
		if err := json.Unmarshal(b, out); err != nil {
			t.Fatalf("admin %s %s: decoding %s: %v", method, path, b, err)
		}
	}
	return res.Header.Get("Location")
}

// keyInfo is an entry of GET /admin/realms/{realm}/keys.
type keyInfo struct {
	KID        string `json:"kid"`
	ProviderID string `json:"providerId"`
	Algorithm  string `json:"algorithm"`
	Status     string `json:"status"`
	Use        string `json:"use"`
}

func (k *keycloak) keys(t *testing.T) []keyInfo {
	t.Helper()
	var v struct {
		Keys []keyInfo `json:"keys"`
	}
	k.admin(t, http.MethodGet, "/keys", nil, &v)
	return v.Keys
}

// addRSAKey adds an rsa-generated key provider with the given priority and returns the kid
// of its RS256 signing key.
func (k *keycloak) addRSAKey(t *testing.T, name string, priority int) (componentID, kid string) {
	t.Helper()
	var realm struct {
		ID string `json:"id"`
	}
	k.admin(t, http.MethodGet, "", nil, &realm)
	loc := k.admin(t, http.MethodPost, "/components", map[string]any{
		"name":         name,
		"providerId":   "rsa-generated",
		"providerType": "org.keycloak.keys.KeyProvider",
		"parentId":     realm.ID,
		"config": map[string][]string{
			"priority":  {strconv.Itoa(priority)},
			"enabled":   {"true"},
			"active":    {"true"},
			"keySize":   {"2048"},
			"algorithm": {"RS256"},
		},
	}, nil)
	componentID = loc[strings.LastIndex(loc, "/")+1:]
	if componentID == "" {
		t.Fatalf("no Location for the new key provider")
	}
	for _, key := range k.keys(t) {
		if key.ProviderID == componentID && key.Algorithm == "RS256" {
			return componentID, key.KID
		}
	}
	t.Fatalf("key provider %s has no RS256 key in %+v", componentID, k.keys(t))
	return "", ""
}

// setProviderEnabled enables or disables a key provider component.
func (k *keycloak) setProviderEnabled(t *testing.T, componentID string, enabled bool) {
	t.Helper()
	var comp map[string]any
	k.admin(t, http.MethodGet, "/components/"+componentID, nil, &comp)
	cfg, _ := comp["config"].(map[string]any)
	if cfg == nil {
		cfg = map[string]any{}
		comp["config"] = cfg
	}
	cfg["enabled"] = []string{strconv.FormatBool(enabled)}
	k.admin(t, http.MethodPut, "/components/"+componentID, comp, nil)
}

// providerOf returns the component id of the key with kid.
func (k *keycloak) providerOf(t *testing.T, kid string) string {
	t.Helper()
	for _, key := range k.keys(t) {
		if key.KID == kid {
			return key.ProviderID
		}
	}
	t.Fatalf("kid %s is not among the realm's keys", kid)
	return ""
}

// publishedKIDs are the kids of the realm's JWKS.
func (k *keycloak) publishedKIDs(t *testing.T) map[string]bool {
	t.Helper()
	res, err := k.client.Get(k.realmURL + "/protocol/openid-connect/certs")
	if err != nil {
		t.Fatal(err)
	}
	defer res.Body.Close()
	var jwks struct {
		Keys []struct {
			KID string `json:"kid"`
		} `json:"keys"`
	}
	if err := json.NewDecoder(res.Body).Decode(&jwks); err != nil {
		t.Fatal(err)
	}
	kids := map[string]bool{}
	for _, key := range jwks.Keys {
		kids[key.KID] = true
	}
	return kids
}

// jwtPart decodes the header (0) or the claims (1) of a token.
func jwtPart(t *testing.T, token string, i int) map[string]any {
	t.Helper()
	parts := strings.Split(token, ".")
	if len(parts) != 3 {
		t.Fatalf("not a JWS: %q", token)
	}
	b, err := base64.RawURLEncoding.DecodeString(parts[i])
	if err != nil {
		t.Fatal(err)
	}
	var v map[string]any
	if err := json.Unmarshal(b, &v); err != nil {
		t.Fatal(err)
	}
	return v
}

func kidOf(t *testing.T, token string) string {
	t.Helper()
	kid, _ := jwtPart(t, token, 0)["kid"].(string)
	if kid == "" {
		t.Fatal("token without kid")
	}
	return kid
}

func freePort() int {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		panic(err)
	}
	defer ln.Close()
	return ln.Addr().(*net.TCPAddr).Port
}
