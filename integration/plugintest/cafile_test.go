package plugintest

import (
	"context"
	"crypto/tls"
	"io"
	"log"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/pavilion-trust/gateway/demo/certs/devca"
)

// httpsJWKS serves the issuer's JWKS (fetched from it on each request) over HTTPS with a
// server certificate of the project's development CA, created in a temporary directory.
func httpsJWKS(t testing.TB, jwksURL string) (*httptest.Server, devca.Files) {
	t.Helper()
	files, err := devca.Generate(t.TempDir(), devca.Options{Hosts: []string{"127.0.0.1"}})
	if err != nil {
		t.Fatal(err)
	}
	cert, err := tls.LoadX509KeyPair(files.Cert, files.Key)
	if err != nil {
		t.Fatal(err)
	}
	srv := httptest.NewUnstartedServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		res, err := http.Get(jwksURL)
		if err != nil {
			http.Error(w, err.Error(), http.StatusBadGateway)
			return
		}
		defer res.Body.Close()
		w.Header().Set("Content-Type", "application/jwk-set+json")
		_, _ = io.Copy(w, res.Body)
	}))
	srv.TLS = &tls.Config{Certificates: []tls.Certificate{cert}}
	// The JWKS server's own handshake failures (a client that does not trust it) are expected.
	srv.Config.ErrorLog = log.New(io.Discard, "", 0)
	srv.StartTLS()
	t.Cleanup(srv.Close)
	return srv, files
}

// TestJWTAuthCAFile: with caFile, the JWKS is fetched from an HTTPS endpoint whose
// certificate comes from a private CA; without it (system roots) or with another CA, no key
// is fetched and tokens are refused. Compiled and under Yaegi.
func TestJWTAuthCAFile(t *testing.T) {
	iss := startIssuer(t)
	srv, files := httpsJWKS(t, iss.JWKSURL())
	other, err := devca.Generate(t.TempDir(), devca.Options{Hosts: []string{"127.0.0.1"}})
	if err != nil {
		t.Fatal(err)
	}
	tok := token(t, iss, nil)
	for _, b := range jwtBuilders(t) {
		t.Run(b.Name, func(t *testing.T) {
			for _, tc := range []struct {
				desc   string
				caFile string
				status int
				why    string // in the body
			}{
				{desc: "caFile of the JWKS server's CA", caFile: files.CACert, status: 200},
				{desc: "no caFile: the system roots do not know the CA", status: 401, why: "unknown"},
				{desc: "caFile of another CA", caFile: other.CACert, status: 401, why: "unknown"},
			} {
				t.Run(tc.desc, func(t *testing.T) {
					ctx, cancel := context.WithCancel(context.Background())
					defer cancel()
					cfg := merge(baseConfig(iss), map[string]any{
						"jwksUrl": srv.URL + "/certs", "fetchTimeout": "2s", "minRefreshInterval": "1s",
					})
					if tc.caFile != "" {
						cfg["caFile"] = tc.caFile
					}
					h, err := b.New(ctx, &upstream{}, cfg, "ca")
					if err != nil {
						t.Fatal(err)
					}
					w := serveBearer(h, tok)
					if w.Code != tc.status || !strings.Contains(w.Body.String(), tc.why) {
						t.Fatalf("status %d, want %d with %q: %s", w.Code, tc.status, tc.why, w.Body)
					}
				})
			}
		})
	}
}

// caFileErrors are bad CA files and the error each must give (after the option's name).
func caFileErrors(t *testing.T) [][2]string {
	dir := t.TempDir()
	files, err := devca.Generate(dir, devca.Options{})
	if err != nil {
		t.Fatal(err)
	}
	garbage := filepath.Join(dir, "garbage.pem")
	if err := os.WriteFile(garbage, []byte("not a certificate\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	broken := filepath.Join(dir, "broken.pem")
	if err := os.WriteFile(broken, []byte("-----BEGIN CERTIFICATE-----\nAAAA\n-----END CERTIFICATE-----\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	missing := filepath.Join(dir, "missing.pem")
	return [][2]string{
		{missing, `cannot read "` + missing + `": no such file or directory`},
		{garbage, `"` + garbage + `" holds no PEM certificate`},
		{broken, `"` + broken + `": certificate 1 does not parse`},
		{files.CAKey, `"` + files.CAKey + `" holds a private key`},
		{dir, `"` + dir + `" is a directory`},
	}
}

func TestJWTAuthCAFileErrors(t *testing.T) {
	cases := caFileErrors(t)
	for _, b := range jwtBuilders(t) {
		t.Run(b.Name, func(t *testing.T) {
			for _, tc := range cases {
				_, err := b.New(context.Background(), &upstream{}, map[string]any{"issuer": "https://kc/realms/p", "caFile": tc[0]}, "bad")
				if want := `jwtauth "bad": caFile: ` + tc[1]; err == nil || !strings.Contains(err.Error(), want) {
					t.Errorf("caFile %s: error %v, want %q", tc[0], err, want)
				}
			}
		})
	}
}

// TestHealthJWKSCAFile: the health plugin's jwks checks trust jwksCaFile (the same reading
// as jwtauth's caFile), compiled and under Yaegi.
func TestHealthJWKSCAFile(t *testing.T) {
	iss := startIssuer(t)
	srv, files := httpsJWKS(t, iss.JWKSURL())
	cases := caFileErrors(t)
	for _, b := range healthBuilders(t) {
		t.Run(b.Name, func(t *testing.T) {
			for _, tc := range []struct {
				caFile string
				code   int
				status string
			}{{files.CACert, 200, "pass"}, {"", 503, "fail"}} {
				cfg := map[string]any{"jwks": []any{srv.URL + "/certs"}, "cacheFor": "0s"}
				if tc.caFile != "" {
					cfg["jwksCaFile"] = tc.caFile
				}
				h, err := b.New(context.Background(), hlNext(t), cfg, "health")
				if err != nil {
					t.Fatal(err)
				}
				if code, doc, body := hlGet(t, h); code != tc.code || doc.Status != tc.status {
					t.Fatalf("jwksCaFile %q: %d %s, want %d %s", tc.caFile, code, body, tc.code, tc.status)
				}
			}
			for _, tc := range cases {
				_, err := b.New(context.Background(), hlNext(t), map[string]any{"jwks": []any{srv.URL + "/certs"}, "jwksCaFile": tc[0]}, "bad")
				if want := `health "bad": jwksCaFile: ` + tc[1]; err == nil || !strings.Contains(err.Error(), want) {
					t.Errorf("jwksCaFile %s: error %v, want %q", tc[0], err, want)
				}
			}
		})
	}
}
