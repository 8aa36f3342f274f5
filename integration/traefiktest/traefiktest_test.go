package traefiktest_test

import (
	"context"
	"fmt"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"runtime"
	"strings"
	"testing"
	"time"

	"github.com/pavilion-trust/gateway/integration/echo"
	"github.com/pavilion-trust/gateway/integration/pluginharness"
	"github.com/pavilion-trust/gateway/integration/traefiktest"
)

const (
	testPlugin   = pluginharness.RootModule + "/integration/pluginharness/testdata/src/example.com/testplugin"
	brokenPlugin = pluginharness.RootModule + "/integration/pluginharness/testdata/src/example.com/broken"
)

// get sends a GET with its own client and returns the status, the headers and the body.
func get(t *testing.T, url string) (int, http.Header, []byte) {
	t.Helper()

	client := &http.Client{Transport: &http.Transport{}, Timeout: 10 * time.Second}
	defer client.CloseIdleConnections()

	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, url, nil)
	if err != nil {
		t.Fatal(err)
	}
	resp, err := client.Do(req)
	if err != nil {
		t.Fatalf("GET %s: %v", url, err)
	}
	defer resp.Body.Close()

	body, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatalf("GET %s: %v", url, err)
	}
	return resp.StatusCode, resp.Header, body
}

func router(t *testing.T, g *traefiktest.Traefik, name string) traefiktest.Router {
	t.Helper()
	for _, r := range g.Routers(t) {
		if r.Name == name {
			return r
		}
	}
	t.Fatalf("router %s not listed", name)
	return traefiktest.Router{}
}

func TestProxiesAndReportsBrokenRouters(t *testing.T) {
	up := echo.Start(t, "up")

	g := traefiktest.Start(t, traefiktest.Options{
		Dynamic: fmt.Sprintf(`
http:
  routers:
    echo:
      rule: PathPrefix(%[2]s/%[2]s)
      entryPoints: [web]
      service: echo
    broken:
      rule: PathPrefix(%[2]s/broken%[2]s)
      entryPoints: [web]
      service: nope
  services:
    echo:
      loadBalancer:
        servers:
          - url: %[1]q
`, up.URL, "`"),
		WaitRouters: []string{"echo@file", "broken@file"},
	})

	t.Run("a request reaches the upstream", func(t *testing.T) {
		status, _, body := get(t, g.URL+"/hello?x=1")
		if status != http.StatusOK {
			t.Fatalf("status = %d: %s", status, body)
		}
		seen := echo.Decode(t, body)
		if seen.Instance != "up" || seen.Path != "/hello" || seen.Query != "x=1" {
			t.Errorf("seen = %+v", seen)
		}
		if seen.Headers.Get("X-Forwarded-For") == "" {
			t.Errorf("no X-Forwarded-For: the request did not go through Traefik? %v", seen.Headers)
		}
	})

	t.Run("a router with a missing service is disabled with an error", func(t *testing.T) {
		r := router(t, g, "broken@file")
		if r.Status != "disabled" || len(r.Error) == 0 || !strings.Contains(r.Error[0], `the service "nope@file" does not exist`) {
			t.Errorf("router = %+v", r)
		}
		if r := router(t, g, "echo@file"); r.Status != "enabled" {
			t.Errorf("echo router = %+v", r)
		}

		// The request falls through to the catch-all router.
		status, _, body := get(t, g.URL+"/broken")
		if status != http.StatusOK || echo.Decode(t, body).Path != "/broken" {
			t.Errorf("GET /broken = %d %s", status, body)
		}
	})

	t.Run("dynamic configuration reloads", func(t *testing.T) {
		other := echo.Start(t, "other")
		g.WriteDynamic(t, fmt.Sprintf(`
http:
  routers:
    other:
      rule: PathPrefix(%[2]s/%[2]s)
      entryPoints: [web]
      service: other
  services:
    other:
      loadBalancer:
        servers:
          - url: %[1]q
`, other.URL, "`"))
		g.WaitRouters(t, "other@file")

		deadline := time.Now().Add(10 * time.Second)
		for {
			status, _, body := get(t, g.URL+"/")
			if status == http.StatusOK && echo.Decode(t, body).Instance == "other" {
				break
			}
			if time.Now().After(deadline) {
				t.Fatalf("still not served by the new upstream: %d %s", status, body)
			}
			time.Sleep(100 * time.Millisecond)
		}
	})

	t.Run("logs", func(t *testing.T) {
		if logs := g.Logs(); !strings.Contains(logs, `"level":"debug"`) {
			t.Errorf("traefik.log has no debug JSON lines:\n%.2000s", logs)
		}
		deadline := time.Now().Add(5 * time.Second)
		for {
			access, _ := os.ReadFile(filepath.Join(g.Dir, "access.log"))
			if strings.Contains(string(access), `"RequestPath":"/hello?x=1"`) {
				break
			}
			if time.Now().After(deadline) {
				t.Fatalf("access.log lacks the request:\n%.2000s", access)
			}
			time.Sleep(100 * time.Millisecond)
		}
	})

	g.Stop()
	g.Stop()
	if exited, _ := g.Exited(); !exited {
		t.Error("traefik still running after Stop")
	}
}

// TestLocalPluginThroughSymlink loads a plugin from plugins-local/, where the repository is a
// symlink, and checks that Traefik decodes its configuration as pluginharness does.
func TestLocalPluginThroughSymlink(t *testing.T) {
	up := echo.Start(t, "up")

	g := traefiktest.Start(t, traefiktest.Options{
		Plugins: map[string]string{"testplugin": testPlugin},
		Dynamic: fmt.Sprintf(`
http:
  routers:
    plugged:
      rule: PathPrefix(%[2]s/%[2]s)
      entryPoints: [web]
      middlewares: [greet]
      service: echo
    refused:
      rule: PathPrefix(%[2]s/refused%[2]s)
      priority: 1000
      entryPoints: [web]
      middlewares: [negative]
      service: echo
  middlewares:
    greet:
      plugin:
        testplugin:
          greeting: from-traefik
          enabled: false
          retries: 5
          MaxBodyBytes: 7
          origins: "a, b"
          headers:
            X-A: "1"
          rules:
            - path: /x
              methods: [GET, POST]
              priority: 2
          unknownKey: dropped
    negative:
      plugin:
        testplugin:
          retries: -1
  services:
    echo:
      loadBalancer:
        servers:
          - url: %[1]q
`, up.URL, "`"),
		WaitRouters: []string{"plugged@file", "refused@file"},
	})

	status, _, body := get(t, g.URL+"/some")
	if status != http.StatusOK {
		t.Fatalf("status = %d: %s", status, body)
	}
	if got := echo.Decode(t, body).Headers.Get("X-Greeting"); got != "from-traefik" {
		t.Errorf("X-Greeting = %q", got)
	}

	status, header, body := get(t, g.URL+"/config")
	want := `{"greeting":"from-traefik","enabled":false,"retries":5,"max_body_bytes":7,"origins":["a"," b"],` +
		`"headers":{"X-A":"1"},"rules":[{"path":"/x","methods":["GET","POST"],"priority":2}]}`
	if status != http.StatusOK || string(body) != want {
		t.Errorf("config decoded by Traefik:\n got %d %s\nwant %s", status, body, want)
	}
	if got := header.Get("X-Plugin-Name"); got != "greet@file" {
		t.Errorf("middleware name = %q", got)
	}

	// New's error disables the router; the request falls through to the catch-all router.
	if r := router(t, g, "refused@file"); r.Status != "disabled" || !strings.Contains(strings.Join(r.Error, " "), "retries: must be >= 0, got -1") {
		t.Errorf("refused router = %+v", r)
	}
	status, _, body = get(t, g.URL+"/refused")
	if status != http.StatusOK || echo.Decode(t, body).Headers.Get("X-Greeting") != "from-traefik" {
		t.Errorf("GET /refused = %d %s, want it served by the catch-all router", status, body)
	}
}

// TestFailedPluginDisablesAllPlugins: a plugin that fails to load disables the other plugins
// too, unless abortOnPluginFailure, which makes Traefik exit (and Start fail, with the logs).
func TestFailedPluginDisablesAllPlugins(t *testing.T) {
	up := echo.Start(t, "up")
	dynamic := fmt.Sprintf(`
http:
  routers:
    plugged:
      rule: PathPrefix(%[2]s/%[2]s)
      entryPoints: [web]
      middlewares: [greet]
      service: echo
  middlewares:
    greet:
      plugin:
        testplugin: {}
  services:
    echo:
      loadBalancer:
        servers:
          - url: %[1]q
`, up.URL, "`")
	plugins := map[string]string{"testplugin": testPlugin, "broken": brokenPlugin}

	t.Run("without abortOnPluginFailure", func(t *testing.T) {
		g := traefiktest.Start(t, traefiktest.Options{Plugins: plugins, Dynamic: dynamic, WaitRouters: []string{"plugged@file"}})
		if r := router(t, g, "plugged@file"); r.Status != "disabled" {
			t.Errorf("router = %+v, want disabled", r)
		}
		if status, _, body := get(t, g.URL+"/"); status != http.StatusNotFound {
			t.Errorf("GET / = %d %s, want 404", status, body)
		}
		if !strings.Contains(g.Logs(), "example.com/doesnotexist") {
			t.Errorf("the log does not tell why the plugin failed")
		}
	})

	t.Run("with abortOnPluginFailure", func(t *testing.T) {
		ft := &fatalRecorder{TB: t}
		done := make(chan struct{})
		go func() {
			defer close(done)
			traefiktest.Start(ft, traefiktest.Options{
				Plugins: plugins, Dynamic: dynamic, WaitRouters: []string{"plugged@file"}, AbortOnPluginFailure: true,
			})
		}()
		<-done

		if ft.msg == "" {
			t.Fatal("Start succeeded although Traefik must refuse to start")
		}
		for _, want := range []string{"traefik exited", "example.com/doesnotexist", "traefik.log"} {
			if !strings.Contains(ft.msg, want) {
				t.Errorf("Start's failure does not mention %q:\n%.3000s", want, ft.msg)
			}
		}
	})
}

func TestStaticExtraMustNotRepeatKeys(t *testing.T) {
	ft := &fatalRecorder{TB: t}
	done := make(chan struct{})
	go func() {
		defer close(done)
		traefiktest.Start(ft, traefiktest.Options{StaticExtra: "metrics:\n  prometheus: {}\nexperimental:\n  plugins: {}\n"})
	}()
	<-done
	if !strings.Contains(ft.msg, `StaticExtra sets "experimental"`) {
		t.Errorf("Fatalf = %q", ft.msg)
	}
}

func TestFreePort(t *testing.T) {
	a, b := traefiktest.FreePort(t), traefiktest.FreePort(t)
	if a <= 0 || b <= 0 || a > 65535 || b > 65535 {
		t.Errorf("ports %d %d", a, b)
	}
}

// TestRemoveAllKeepsSymlinkTargets: the temporary working directory holds a symlink to the
// repository; removing it must not remove the repository.
func TestRemoveAllKeepsSymlinkTargets(t *testing.T) {
	target := t.TempDir()
	if err := os.WriteFile(filepath.Join(target, "keep"), nil, 0o644); err != nil {
		t.Fatal(err)
	}
	dir := t.TempDir()
	if err := os.MkdirAll(filepath.Join(dir, "a", "b"), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.Symlink(target, filepath.Join(dir, "a", "b", "link")); err != nil {
		t.Fatal(err)
	}
	if err := os.RemoveAll(dir); err != nil {
		t.Fatal(err)
	}
	if _, err := os.Stat(filepath.Join(target, "keep")); err != nil {
		t.Fatalf("RemoveAll followed the symlink: %v", err)
	}
}

// fatalRecorder records Fatalf and ends its goroutine, like testing.T.Fatalf, without failing
// the real test. Cleanups registered through it run with the real test's.
type fatalRecorder struct {
	testing.TB
	msg string
}

func (f *fatalRecorder) Helper() {}

func (f *fatalRecorder) Fatalf(format string, args ...any) {
	f.msg = fmt.Sprintf(format, args...)
	runtime.Goexit()
}

func (f *fatalRecorder) Failed() bool { return f.msg != "" || f.TB.Failed() }

func (f *fatalRecorder) Logf(format string, args ...any) {
	if f.msg == "" {
		f.TB.Logf(format, args...)
	}
}

// TestPluginPanickingAtImportCrashesTraefik: a plugin on which Yaegi v0.16.1 panics while
// importing it (yaegiguard's variadic-field rule) takes Traefik down at startup, whatever
// abortOnPluginFailure says: Traefik does not recover there.
func TestPluginPanickingAtImportCrashesTraefik(t *testing.T) {
	ft := &fatalRecorder{TB: t}
	done := make(chan struct{})
	go func() {
		defer close(done)
		traefiktest.Start(ft, traefiktest.Options{
			Plugins:     map[string]string{"variadicfield": pluginharness.RootModule + "/integration/yaegiguard/testdata/src/example.com/variadicfield"},
			Dynamic:     "http:\n  routers:\n    r:\n      rule: PathPrefix(`/`)\n      service: noop@internal\n",
			WaitRouters: []string{"r@file"},
		})
	}()
	<-done

	for _, want := range []string{"traefik exited (exit status 2)", "panic: runtime error: index out of range [2] with length 2", "yaegi"} {
		if !strings.Contains(ft.msg, want) {
			t.Errorf("Start's failure does not mention %q:\n%.3000s", want, ft.msg)
		}
	}
}
