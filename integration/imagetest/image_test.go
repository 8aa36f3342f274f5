package imagetest

import (
	"crypto/tls"
	"crypto/x509"
	"fmt"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/pavilion-trust/gateway/demo/certs/devca"
	"github.com/pavilion-trust/gateway/demo/devissuer/issuer"
	"github.com/pavilion-trust/gateway/integration/echo"
	"github.com/pavilion-trust/gateway/integration/gatewaytest"
	"github.com/pavilion-trust/gateway/integration/pluginharness"
	"github.com/pavilion-trust/gateway/integration/redistest"
	"github.com/pavilion-trust/gateway/integration/traefiktest"
)

const pluginRoot = "/plugins-local/src/github.com/pavilion-trust/gateway"

// pinnedVersion is the Traefik version .ci/build-traefik builds (the one every test runs).
func pinnedVersion(t *testing.T, root string) string {
	t.Helper()
	b, err := os.ReadFile(filepath.Join(root, ".ci", "build-traefik"))
	if err != nil {
		t.Fatal(err)
	}
	m := regexp.MustCompile(`TRAEFIK_VERSION:-(v[0-9.]+)`).FindSubmatch(b)
	if m == nil {
		t.Fatal(".ci/build-traefik: no default TRAEFIK_VERSION")
	}
	return string(m[1])
}

// layout builds the image's file tree in a temporary directory and checks its content.
func layout(t *testing.T) (Dockerfile, string, []string) {
	t.Helper()
	root := pluginharness.RepoRoot()
	d, err := ParseDockerfile(filepath.Join(root, "deploy", "Dockerfile"))
	if err != nil {
		t.Fatal(err)
	}
	if want := "traefik:" + pinnedVersion(t, root); d.From != want {
		t.Errorf("deploy/Dockerfile: FROM %s, want %s (the version the tests run)", d.From, want)
	}
	if d.Workdir != "/" {
		t.Errorf("deploy/Dockerfile: WORKDIR %q, want / (Traefik finds plugins-local/ relative to it)", d.Workdir)
	}
	ctx, err := Context(root, filepath.Join(root, "deploy", "Dockerfile.dockerignore"))
	if err != nil {
		t.Fatal(err)
	}
	dir := t.TempDir()
	written, err := Build(d, root, ctx, dir)
	if err != nil {
		t.Fatal(err)
	}
	return d, dir, written
}

func TestImageLayout(t *testing.T) {
	root := pluginharness.RepoRoot()
	_, _, written := layout(t)
	has := map[string]bool{}
	for _, p := range written {
		has[p] = true
		if !strings.HasPrefix(p, pluginRoot+"/") {
			continue
		}
		rel := strings.TrimPrefix(p, pluginRoot+"/")
		if strings.HasSuffix(p, "_test.go") || strings.Contains(p, "/testdata/") {
			t.Errorf("image holds test file %s", p)
		}
		if !strings.HasPrefix(rel, "vendor/") && !strings.HasSuffix(rel, ".go") && !strings.HasSuffix(rel, ".traefik.yml") && rel != "go.mod" {
			t.Errorf("image holds %s, which Traefik does not load", p)
		}
	}
	// Every plugin manifest and every non-test Go source of the repository's plugin tree.
	want := []string{pluginRoot + "/go.mod", pluginRoot + "/.traefik.yml", pluginRoot + "/gateway.go", pluginRoot + "/vendor/modules.txt"}
	dirs, err := filepath.Glob(filepath.Join(root, "plugins", "*", "*"))
	if err != nil {
		t.Fatal(err)
	}
	for _, f := range dirs {
		rel, _ := filepath.Rel(root, f)
		rel = filepath.ToSlash(rel)
		if strings.HasSuffix(rel, ".traefik.yml") || (strings.HasSuffix(rel, ".go") && !strings.HasSuffix(rel, "_test.go")) {
			want = append(want, pluginRoot+"/"+rel)
		}
	}
	for _, w := range want {
		if !has[w] {
			t.Errorf("image lacks %s", w)
		}
	}
	t.Logf("image layout: %d files, %d of them under %s", len(written), len(want), pluginRoot)
}

// TestImageRunsTraefik starts real Traefik in the reproduced image tree (working directory =
// the image's /, the configuration file the CMD names, entry point addresses rendered for free
// ports) with the dynamic configuration's environment, and checks that the plugins load
// (abortOnPluginFailure) and serve.
func TestImageRunsTraefik(t *testing.T) {
	d, dir, _ := layout(t)
	var configFile string
	for _, a := range d.Cmd {
		if v, ok := strings.CutPrefix(a, "--configFile="); ok {
			configFile = v
		}
	}
	if configFile == "" {
		t.Fatalf("deploy/Dockerfile: CMD %v names no --configFile", d.Cmd)
	}
	static := filepath.Join(dir, filepath.FromSlash(configFile))
	b, err := os.ReadFile(static)
	if err != nil {
		t.Fatalf("the image has no %s: %v", configFile, err)
	}
	ports := gatewaytest.Ports{Web: traefiktest.FreePort(t)}
	for ports.WebSecure == 0 || ports.WebSecure == ports.Web {
		ports.WebSecure = traefiktest.FreePort(t)
	}
	for ports.Internal == 0 || ports.Internal == ports.Web || ports.Internal == ports.WebSecure {
		ports.Internal = traefiktest.FreePort(t)
	}
	rendered, err := gatewaytest.RenderStatic(b, ports)
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(static, rendered, 0o644); err != nil {
		t.Fatal(err)
	}

	certs, err := devca.Generate(t.TempDir(), devca.Options{})
	if err != nil {
		t.Fatal(err)
	}
	rds := redistest.Start(t)
	iss, err := issuer.New(issuer.Config{Clients: []issuer.Client{{
		ID: "svc", Secret: "s3cret", Audience: []string{"core-broker"}, RealmRoles: []string{"broker-user"},
	}}})
	if err != nil {
		t.Fatal(err)
	}
	if err := iss.Start("127.0.0.1:0"); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = iss.Stop() })
	b1, b2 := echo.Start(t, "core-broker-1"), echo.Start(t, "core-broker-2")

	proc := traefiktest.StartProcess(t, traefiktest.Binary(t), dir, static, []string{
		"PAVILION_ISSUER_URL=" + iss.IssuerURL(),
		"PAVILION_REDIS_ADDR=" + rds.Addr(),
		"PAVILION_BROKER_1_ADDR=" + strings.TrimPrefix(b1.URL, "http://"),
		"PAVILION_BROKER_2_ADDR=" + strings.TrimPrefix(b2.URL, "http://"),
		"PAVILION_TLS_CERT=" + certs.Cert,
		"PAVILION_TLS_KEY=" + certs.Key,
	})
	t.Cleanup(func() {
		proc.Stop()
		if t.Failed() {
			out, _ := os.ReadFile(filepath.Join(dir, "traefik.out"))
			t.Logf("traefik output:\n%s", out)
		}
	})

	plain := &http.Client{Timeout: 5 * time.Second}
	internal := "http://127.0.0.1:" + strconv.Itoa(ports.Internal)
	deadline := time.Now().Add(60 * time.Second)
	for {
		err := func() error {
			for _, name := range []string{"api-v1@file", "health@file"} {
				var r struct {
					Status string   `json:"status"`
					Error  []string `json:"error"`
				}
				if err := traefiktest.GetJSON(plain, internal+"/api/http/routers/"+name, &r); err != nil {
					return err
				}
				if r.Status != "enabled" {
					return fmt.Errorf("router %s is %q: %v", name, r.Status, r.Error)
				}
			}
			return nil
		}()
		if err == nil {
			break
		}
		select {
		case <-proc.Done():
			t.Fatalf("traefik exited (%v) in the image layout: %v", proc.Err(), err)
		case <-time.After(200 * time.Millisecond):
		}
		if time.Now().After(deadline) {
			t.Fatalf("traefik not ready in the image layout: %v", err)
		}
	}
	var mws []map[string]any
	if err := traefiktest.GetJSON(plain, internal+"/api/http/middlewares", &mws); err != nil {
		t.Fatal(err)
	}
	var plugins []string
	for _, m := range mws {
		if m["type"] == "pavilion" { // the one plugin static/ declares: the suite, /health included
			plugins = append(plugins, fmt.Sprintf("%v (%v)", m["name"], m["status"]))
		}
	}
	t.Logf("plugin middlewares loaded from the image layout: %s", strings.Join(plugins, ", "))

	ca, err := os.ReadFile(certs.CACert)
	if err != nil {
		t.Fatal(err)
	}
	pool := x509.NewCertPool()
	pool.AppendCertsFromPEM(ca)
	client := &http.Client{Timeout: 10 * time.Second, Transport: &http.Transport{TLSClientConfig: &tls.Config{RootCAs: pool, ServerName: "localhost"}}}
	defer client.CloseIdleConnections()
	tok, err := iss.Token("svc")
	if err != nil {
		t.Fatal(err)
	}
	https := "https://127.0.0.1:" + strconv.Itoa(ports.WebSecure)
	for _, c := range []struct {
		path, token string
		want        int
	}{{"/api/v1/accounts", "", 401}, {"/api/v1/accounts", tok, 200}, {"/health", "", 200}} {
		req, _ := http.NewRequest(http.MethodGet, https+c.path, nil)
		if c.token != "" {
			req.Header.Set("Authorization", "Bearer "+c.token)
		}
		res, err := client.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		body, _ := io.ReadAll(io.LimitReader(res.Body, 4096))
		res.Body.Close()
		if res.StatusCode != c.want {
			t.Errorf("GET %s (token %t): %d %s, want %d", c.path, c.token != "", res.StatusCode, body, c.want)
		}
	}
}
