// Package gatewaytest runs the gateway as it is configured in the repository — the real
// static/traefik.yml and dynamic/ files, rendered only for free loopback ports — as a Traefik
// process, for end-to-end tests over real TLS.
package gatewaytest

import (
	"bytes"
	"fmt"
	"net/http"
	"os"
	"path"
	"path/filepath"
	"regexp"
	"strconv"
	"testing"
	"time"

	"github.com/pavilion-trust/gateway/integration/pluginharness"
	"github.com/pavilion-trust/gateway/integration/traefiktest"
)

// Addresses in static/traefik.yml that RenderStatic replaces; each must appear exactly once.
const (
	WebAddress       = `":8080"`
	WebSecureAddress = `":8443"`
	InternalAddress  = `"127.0.0.1:8082"`
)

const (
	readyTimeout = 60 * time.Second
	maxLogShown  = 256 << 10
)

// Ports are the entry points' ports.
type Ports struct{ Web, WebSecure, Internal int }

// RenderStatic returns static/traefik.yml with its three entry point addresses replaced by
// 127.0.0.1:<port>. It fails if an address does not appear exactly once, so that a change of
// the static file cannot silently leave a test (or the demo) on the production ports.
func RenderStatic(static []byte, p Ports) ([]byte, error) {
	out := static
	for _, r := range []struct {
		old  string
		port int
	}{{WebAddress, p.Web}, {WebSecureAddress, p.WebSecure}, {InternalAddress, p.Internal}} {
		if n := bytes.Count(out, []byte(r.old)); n != 1 {
			return nil, fmt.Errorf("static configuration: %s appears %d times, want exactly once", r.old, n)
		}
		out = bytes.Replace(out, []byte(r.old), []byte(`"127.0.0.1:`+strconv.Itoa(r.port)+`"`), 1)
	}
	return out, nil
}

// Gateway is a running Traefik with the repository's configuration.
type Gateway struct {
	Ports Ports
	// HTTPURL is http://127.0.0.1:<web>; HTTPSURL https://127.0.0.1:<websecure> (connect with
	// ServerName "localhost": SNI is strict); InternalURL http://127.0.0.1:<internal>.
	HTTPURL, HTTPSURL, InternalURL string
	// Dir is Traefik's working directory: traefik.yml, dynamic/ (a link to the repository's),
	// plugins-local/, and traefik.out (stdout and stderr: JSON log and JSON access log).
	Dir string

	proc   *traefiktest.Process
	client *http.Client
}

// Start renders static/traefik.yml for free ports and starts Traefik in a temporary working
// directory whose dynamic/ is the repository's, with env ("KEY=value") added to its
// environment for the dynamic files' templates. It returns once the routers in wait are
// enabled; it is stopped (SIGTERM, then Wait) by tb.Cleanup, which prints its output if the
// test failed.
func Start(tb testing.TB, env []string, wait ...string) *Gateway {
	tb.Helper()
	return StartWith(tb, Options{Env: env, Wait: wait})
}

// Options are StartWith's.
type Options struct {
	// Env is added to Traefik's environment ("KEY=value"), for the dynamic files' templates.
	Env []string
	// Wait are routers (e.g. "api-v1@file") that must be enabled before StartWith returns.
	Wait []string
	// ExtraDynamic are files added beside the repository's dynamic/ files (name → content):
	// e.g. routers for a benchmark. Without any, dynamic/ is a link to the repository's.
	ExtraDynamic map[string]string
	// Debug sets api.debug: Go's /debug/pprof/ handlers on the internal entry point.
	Debug bool
	// CopyDynamic puts a copy of the repository's dynamic/ in the working directory
	// (Dir/dynamic) instead of a link to it, so that a test can rewrite a file there and
	// watch Traefik reload it without touching the repository.
	CopyDynamic bool
	// WithoutPlugins drops the experimental section (the local plugins) from the static
	// configuration: routers using plugin middlewares are then disabled, the others serve.
	// For comparisons with Traefik alone.
	WithoutPlugins bool
}

// StartWithDynamicCopy is Start with Options.CopyDynamic.
func StartWithDynamicCopy(tb testing.TB, env []string, wait ...string) *Gateway {
	tb.Helper()
	return StartWith(tb, Options{Env: env, Wait: wait, CopyDynamic: true})
}

// StartWith is Start with more options.
func StartWith(tb testing.TB, opts Options) *Gateway {
	tb.Helper()
	env, wait := opts.Env, opts.Wait
	bin := traefiktest.Binary(tb)
	root := pluginharness.RepoRoot()

	ports := Ports{Web: traefiktest.FreePort(tb)}
	for ports.WebSecure == 0 || ports.WebSecure == ports.Web {
		ports.WebSecure = traefiktest.FreePort(tb)
	}
	for ports.Internal == 0 || ports.Internal == ports.Web || ports.Internal == ports.WebSecure {
		ports.Internal = traefiktest.FreePort(tb)
	}
	static, err := os.ReadFile(filepath.Join(root, "static", "traefik.yml"))
	if err != nil {
		tb.Fatal(err)
	}
	rendered, err := RenderStatic(static, ports)
	if err != nil {
		tb.Fatal(err)
	}
	if opts.WithoutPlugins {
		i := bytes.Index(rendered, []byte("\nexperimental:\n"))
		if i < 0 {
			tb.Fatal("gatewaytest: WithoutPlugins: no top-level experimental: in static/traefik.yml")
		}
		rest := rendered[i+1:]
		end := len(rest)
		for _, m := range regexp.MustCompile(`(?m)^[a-zA-Z]`).FindAllIndex(rest, -1) {
			if m[0] > 0 {
				end = m[0]
				break
			}
		}
		rendered = append(append([]byte{}, rendered[:i+1]...), rest[end:]...)
	}
	if opts.Debug {
		if bytes.Count(rendered, []byte("\napi:\n")) != 1 {
			tb.Fatal("gatewaytest: Debug needs exactly one top-level api: key in static/traefik.yml")
		}
		rendered = bytes.Replace(rendered, []byte("\napi:\n"), []byte("\napi:\n  debug: true\n"), 1)
	}

	dir := tb.TempDir()
	plugins := filepath.Join(dir, "plugins-local", "src", filepath.FromSlash(path.Dir(pluginharness.RootModule)))
	if err := os.MkdirAll(plugins, 0o755); err != nil {
		tb.Fatal(err)
	}
	if err := os.Symlink(root, filepath.Join(plugins, path.Base(pluginharness.RootModule))); err != nil {
		tb.Fatal(err)
	}
	if err := linkDynamic(root, dir, opts.ExtraDynamic, opts.CopyDynamic); err != nil {
		tb.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(dir, "traefik.yml"), rendered, 0o644); err != nil {
		tb.Fatal(err)
	}
	g := &Gateway{
		Ports:       ports,
		HTTPURL:     "http://127.0.0.1:" + strconv.Itoa(ports.Web),
		HTTPSURL:    "https://127.0.0.1:" + strconv.Itoa(ports.WebSecure),
		InternalURL: "http://127.0.0.1:" + strconv.Itoa(ports.Internal),
		Dir:         dir,
		client:      &http.Client{Timeout: 5 * time.Second},
	}
	g.proc = traefiktest.StartProcess(tb, bin, dir, filepath.Join(dir, "traefik.yml"), env)
	tb.Cleanup(func() {
		g.Stop()
		if tb.Failed() {
			tb.Logf("traefik output (%s):\n%s", dir, tail(g.Output()))
		}
	})
	g.waitRouters(tb, wait)
	return g
}

// linkDynamic makes dir/dynamic the repository's dynamic/: a link to it, a copy of it
// (copied), or, with extra files, a directory of links to its files beside the extra ones.
func linkDynamic(root, dir string, extra map[string]string, copied bool) error {
	src := filepath.Join(root, "dynamic")
	dst := filepath.Join(dir, "dynamic")
	if copied {
		if err := os.CopyFS(dst, os.DirFS(src)); err != nil {
			return err
		}
		for name, content := range extra {
			if err := os.WriteFile(filepath.Join(dst, name), []byte(content), 0o644); err != nil {
				return err
			}
		}
		return nil
	}
	if len(extra) == 0 {
		return os.Symlink(src, dst)
	}
	if err := os.Mkdir(dst, 0o755); err != nil {
		return err
	}
	entries, err := os.ReadDir(src)
	if err != nil {
		return err
	}
	for _, e := range entries {
		if _, clash := extra[e.Name()]; clash {
			return fmt.Errorf("gatewaytest: extra dynamic file %s would hide the repository's", e.Name())
		}
		if err := os.Symlink(filepath.Join(src, e.Name()), filepath.Join(dst, e.Name())); err != nil {
			return err
		}
	}
	for name, content := range extra {
		if err := os.WriteFile(filepath.Join(dst, name), []byte(content), 0o644); err != nil {
			return err
		}
	}
	return nil
}

// Pid is Traefik's process id.
func (g *Gateway) Pid() int { return g.proc.Pid() }

// waitRouters waits until the API reports every named router enabled.
func (g *Gateway) waitRouters(tb testing.TB, names []string) {
	tb.Helper()
	deadline := time.Now().Add(readyTimeout)
	for {
		err := g.routersEnabled(names)
		if err == nil {
			return
		}
		select {
		case <-g.proc.Done():
			tb.Fatalf("gatewaytest: traefik exited (%v) before it was ready: %v", g.proc.Err(), err)
		case <-time.After(100 * time.Millisecond):
		}
		if time.Now().After(deadline) {
			tb.Fatalf("gatewaytest: traefik not ready after %s: %v", readyTimeout, err)
		}
	}
}

func (g *Gateway) routersEnabled(names []string) error {
	for _, name := range names {
		var r struct {
			Status string   `json:"status"`
			Error  []string `json:"error"`
		}
		if err := g.GetJSON("/api/http/routers/"+name, &r); err != nil {
			return err
		}
		if r.Status != "enabled" {
			return fmt.Errorf("router %s is %q: %v", name, r.Status, r.Error)
		}
	}
	return nil
}

// GetJSON decodes GET InternalURL+p into v.
func (g *Gateway) GetJSON(p string, v any) error {
	return traefiktest.GetJSON(g.client, g.InternalURL+p, v)
}

// Output is what Traefik wrote so far: its JSON log and its JSON access log, interleaved.
func (g *Gateway) Output() string {
	b, _ := os.ReadFile(filepath.Join(g.Dir, "traefik.out"))
	return string(b)
}

// Stop sends SIGTERM, then SIGKILL after 10 seconds, and waits for the process. Idempotent.
func (g *Gateway) Stop() {
	g.proc.Stop()
	g.client.CloseIdleConnections()
}

func tail(s string) string {
	if len(s) <= maxLogShown {
		return s
	}
	return "…(truncated)…\n" + s[len(s)-maxLogShown:]
}
