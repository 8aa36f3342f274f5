package traefiktest

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/pavilion-trust/gateway/integration/pluginharness"
)

const (
	readyTimeout = 30 * time.Second
	stopTimeout  = 10 * time.Second
	pollInterval = 100 * time.Millisecond
	maxLogShown  = 256 << 10
)

// Options describe one Traefik process.
type Options struct {
	// Dynamic is the dynamic configuration (YAML, file provider), already rendered.
	Dynamic string
	// DynamicTOML: Dynamic is TOML, written to dynamic.toml instead of dynamic.yml.
	DynamicTOML bool
	// Plugins maps local plugin names, as used in the dynamic configuration
	// (middlewares.<x>.plugin.<name>), to module names under the repository, e.g.
	// "jwtauth": "github.com/pavilion-trust/gateway/plugins/jwtauth".
	Plugins map[string]string
	// AbortOnPluginFailure sets experimental.abortOnPluginFailure: Traefik then refuses to
	// start when a plugin fails to load (by default it starts, with every plugin disabled).
	AbortOnPluginFailure bool
	// WaitRouters are router names (e.g. "api@file") that the API must list before Start
	// returns.
	WaitRouters []string
	// StaticExtra is YAML appended to the static configuration; its top-level keys must not
	// be ones that Start writes (entryPoints, api, ping, log, accessLog, providers,
	// experimental, global).
	StaticExtra string
	// Quiet, for benchmarks, logs only errors and writes no access log (by default the log
	// level is DEBUG and every request is written to access.log).
	Quiet bool
	// Debug sets api.debug: Go's /debug/pprof/ handlers on the API entry point (APIURL),
	// for profiling Traefik under load.
	Debug bool
	// Env is added to the process's environment ("KEY=value"). TRAEFIK_* (and PAVILION_*) variables of the
	// test's environment are not passed on, since Traefik would read them as configuration.
	Env []string
}

// Traefik is a running Traefik process (any configuration: a plugin under test, the gateway, a benchmark target).
type Traefik struct {
	// URL is http://127.0.0.1:<port> of the entry point "web".
	URL string
	// APIURL is http://127.0.0.1:<port> of the entry point "traefik" (API and ping).
	APIURL string
	// Dir is the working directory: plugins-local/, traefik.yml, dynamic.yml, traefik.log,
	// access.log, and traefik.out (the process's stdout and stderr).
	Dir string

	proc    *Process
	client  *http.Client
	dynFile string // dynamic.yml or dynamic.toml

	mu        sync.Mutex
	logsShown bool
}

// usedStaticKeys are the top-level keys of the static configuration that Start writes.
var usedStaticKeys = []string{"entryPoints", "api", "ping", "log", "accessLog", "providers", "experimental", "global"}

// Start starts Traefik with opts and waits until it serves opts.WaitRouters. It is stopped by
// tb.Cleanup, which also prints its logs if the test failed.
func Start(tb testing.TB, opts Options) *Traefik {
	tb.Helper()

	bin := Binary(tb)
	if err := checkStaticExtra(opts.StaticExtra); err != nil {
		tb.Fatalf("traefiktest: %v", err)
	}

	dir := tb.TempDir()
	webPort := FreePort(tb)
	apiPort := FreePort(tb)
	for apiPort == webPort {
		apiPort = FreePort(tb)
	}

	g := &Traefik{
		URL:     "http://127.0.0.1:" + strconv.Itoa(webPort),
		APIURL:  "http://127.0.0.1:" + strconv.Itoa(apiPort),
		Dir:     dir,
		client:  &http.Client{Transport: &http.Transport{}, Timeout: 5 * time.Second},
		dynFile: "dynamic.yml",
	}
	if opts.DynamicTOML {
		g.dynFile = "dynamic.toml"
	}

	if err := linkRepository(dir); err != nil {
		tb.Fatalf("traefiktest: %v", err)
	}
	if err := os.WriteFile(filepath.Join(dir, "traefik.yml"), []byte(g.staticConfig(webPort, apiPort, opts)), 0o644); err != nil {
		tb.Fatalf("traefiktest: %v", err)
	}
	g.WriteDynamic(tb, opts.Dynamic)

	g.proc = StartProcess(tb, bin, dir, filepath.Join(dir, "traefik.yml"), opts.Env)

	tb.Cleanup(func() {
		g.Stop()
		if tb.Failed() {
			g.showLogs(tb)
		}
	})

	g.waitReady(tb, opts.WaitRouters)
	return g
}

// linkRepository makes the repository root visible as
// plugins-local/src/github.com/pavilion-trust/gateway, through a symlink.
func linkRepository(dir string) error {
	return pluginharness.LinkRepository(filepath.Join(dir, "plugins-local"))
}

func (g *Traefik) staticConfig(webPort, apiPort int, opts Options) string {
	q := strconv.Quote // a Go quoted string is a valid YAML double-quoted scalar
	var b strings.Builder

	fmt.Fprintf(&b, "global:\n  checkNewVersion: false\n  sendAnonymousUsage: false\n")
	fmt.Fprintf(&b, "entryPoints:\n  web:\n    address: %s\n  traefik:\n    address: %s\n",
		q("127.0.0.1:"+strconv.Itoa(webPort)), q("127.0.0.1:"+strconv.Itoa(apiPort)))
	fmt.Fprintf(&b, "api:\n  insecure: true\n  debug: %t\nping: {}\n", opts.Debug)
	level := "DEBUG"
	if opts.Quiet {
		level = "ERROR"
	}
	fmt.Fprintf(&b, "log:\n  level: %s\n  format: json\n  filePath: %s\n", level, q(filepath.Join(g.Dir, "traefik.log")))
	if !opts.Quiet {
		// The access log keeps the request id, as static/traefik.yml does.
		fmt.Fprintf(&b, "accessLog:\n  format: json\n  filePath: %s\n  fields:\n    headers:\n      defaultMode: drop\n      names:\n        X-Request-Id: keep\n", q(filepath.Join(g.Dir, "access.log")))
	}
	fmt.Fprintf(&b, "providers:\n  file:\n    filename: %s\n    watch: true\n", q(filepath.Join(g.Dir, g.dynFile)))
	fmt.Fprintf(&b, "experimental:\n  abortOnPluginFailure: %t\n", opts.AbortOnPluginFailure)

	if len(opts.Plugins) > 0 {
		names := make([]string, 0, len(opts.Plugins))
		for name := range opts.Plugins {
			names = append(names, name)
		}
		sort.Strings(names)

		b.WriteString("  localPlugins:\n")
		for _, name := range names {
			fmt.Fprintf(&b, "    %s:\n      moduleName: %s\n", q(name), q(opts.Plugins[name]))
		}
	}

	if opts.StaticExtra != "" {
		b.WriteString(strings.TrimRight(opts.StaticExtra, "\n"))
		b.WriteString("\n")
	}
	return b.String()
}

func checkStaticExtra(extra string) error {
	for _, line := range strings.Split(extra, "\n") {
		if line == "" || line[0] == ' ' || line[0] == '\t' || line[0] == '#' || line[0] == '-' {
			continue
		}
		key, _, ok := strings.Cut(line, ":")
		if !ok {
			continue
		}
		key = strings.Trim(strings.TrimSpace(key), `"'`)
		for _, used := range usedStaticKeys {
			if strings.EqualFold(key, used) {
				return fmt.Errorf("StaticExtra sets %q, which Start writes itself", key)
			}
		}
	}
	return nil
}

// WriteDynamic replaces dynamic.yml (dynamic.toml with Options.DynamicTOML), atomically (the file provider watches it and reloads).
// The new configuration is in force once Traefik has reloaded: wait for it with WaitRouters
// or by polling Routers.
func (g *Traefik) WriteDynamic(tb testing.TB, yaml string) {
	tb.Helper()

	tmp := filepath.Join(g.Dir, "."+g.dynFile+".tmp")
	if err := os.WriteFile(tmp, []byte(yaml), 0o644); err != nil {
		tb.Fatalf("traefiktest: %v", err)
	}
	if err := os.Rename(tmp, filepath.Join(g.Dir, g.dynFile)); err != nil {
		tb.Fatalf("traefiktest: %v", err)
	}
}

// Router is a router as the API reports it.
type Router struct {
	Name        string   `json:"name"`
	Provider    string   `json:"provider"`
	Rule        string   `json:"rule"`
	Service     string   `json:"service"`
	EntryPoints []string `json:"entryPoints"`
	Middlewares []string `json:"middlewares"`
	Priority    int64    `json:"priority"`
	// Status is "enabled", "disabled" or "warning"; Error says why when it is not enabled.
	Status string   `json:"status"`
	Error  []string `json:"error"`
}

// Routers returns the HTTP routers that the API lists.
func (g *Traefik) Routers(tb testing.TB) []Router {
	tb.Helper()

	routers, err := g.routers()
	if err != nil {
		tb.Fatalf("traefiktest: %v", err)
	}
	return routers
}

func (g *Traefik) routers() ([]Router, error) {
	var routers []Router
	if err := g.getJSON("/api/http/routers?per_page=1000", &routers); err != nil {
		return nil, err
	}
	return routers, nil
}

func (g *Traefik) getJSON(p string, v any) error {
	return GetJSON(g.client, g.APIURL+p, v)
}

// GetJSON decodes the JSON body of a 200 answer to GET url (at most 16 MiB, within 5s) into v.
func GetJSON(client *http.Client, url string, v any) error {
	body, err := Get(client, url, 5*time.Second, 16<<20)
	if err != nil {
		return err
	}
	if err := json.Unmarshal(body, v); err != nil {
		return fmt.Errorf("GET %s: %w", url, err)
	}
	return nil
}

// Get GETs url within timeout and returns the body (at most limit bytes) of a 200 answer;
// any other status is an error that shows the body.
func Get(client *http.Client, url string, timeout time.Duration, limit int64) ([]byte, error) {
	ctx, cancel := context.WithTimeout(context.Background(), timeout)
	defer cancel()

	req, err := http.NewRequestWithContext(ctx, http.MethodGet, url, nil)
	if err != nil {
		return nil, err
	}
	resp, err := client.Do(req)
	if err != nil {
		return nil, err
	}
	defer resp.Body.Close()

	body, err := io.ReadAll(io.LimitReader(resp.Body, limit))
	if err != nil {
		return nil, err
	}
	if resp.StatusCode != http.StatusOK {
		return nil, fmt.Errorf("GET %s: %s: %s", url, resp.Status, body)
	}
	return body, nil
}

// WaitRouters waits, up to 30 seconds, until the API lists every named router. The test fails
// if Traefik exits or the time runs out.
func (g *Traefik) WaitRouters(tb testing.TB, names ...string) {
	tb.Helper()
	g.wait(tb, names, false)
}

func (g *Traefik) waitReady(tb testing.TB, names []string) {
	tb.Helper()
	g.wait(tb, names, true)
}

func (g *Traefik) wait(tb testing.TB, names []string, startup bool) {
	tb.Helper()

	deadline := time.Now().Add(readyTimeout)
	var last error
	for {
		last = g.check(names, startup)
		if last == nil {
			return
		}

		select {
		case <-g.proc.Done():
			tb.Fatalf("traefiktest: traefik exited (%v) while waiting: %v\n%s", g.proc.Err(), last, g.logsOnce())
		case <-time.After(pollInterval):
		}

		if time.Now().After(deadline) {
			tb.Fatalf("traefiktest: traefik not ready after %s: %v\n%s", readyTimeout, last, g.logsOnce())
		}
	}
}

// check returns why the gateway is not ready yet, or nil.
func (g *Traefik) check(names []string, startup bool) error {
	if startup {
		if err := g.ping(); err != nil {
			return err
		}
		conn, err := net.DialTimeout("tcp", strings.TrimPrefix(g.URL, "http://"), time.Second)
		if err != nil {
			return fmt.Errorf("entry point web: %w", err)
		}
		conn.Close()
	}

	if len(names) == 0 {
		return nil
	}
	routers, err := g.routers()
	if err != nil {
		return err
	}
	listed := map[string]bool{}
	for _, r := range routers {
		listed[r.Name] = true
	}
	var missing []string
	for _, name := range names {
		if !listed[name] {
			missing = append(missing, name)
		}
	}
	if len(missing) > 0 {
		return fmt.Errorf("routers not listed yet: %v", missing)
	}
	return nil
}

func (g *Traefik) ping() error {
	_, err := Get(g.client, g.APIURL+"/ping", 2*time.Second, 1024)
	return err
}

// Logs returns the content of Traefik's log file (JSON lines).
func (g *Traefik) Logs() string {
	b, err := os.ReadFile(filepath.Join(g.Dir, "traefik.log"))
	if err != nil {
		return ""
	}
	return string(b)
}

// allLogs is the process output and the log file, the last maxLogShown bytes of each.
func (g *Traefik) allLogs() string {
	out, _ := os.ReadFile(filepath.Join(g.Dir, "traefik.out"))
	return fmt.Sprintf("---- traefik stdout/stderr (%s) ----\n%s\n---- traefik.log ----\n%s---- end of traefik logs ----",
		g.Dir, tail(string(out)), tail(g.Logs()))
}

// logsOnce returns allLogs the first time, so that a failure does not print them twice.
func (g *Traefik) logsOnce() string {
	g.mu.Lock()
	defer g.mu.Unlock()
	if g.logsShown {
		return "(logs above)"
	}
	g.logsShown = true
	return g.allLogs()
}

func (g *Traefik) showLogs(tb testing.TB) {
	g.mu.Lock()
	shown := g.logsShown
	g.mu.Unlock()
	if !shown {
		tb.Logf("traefik logs:\n%s", g.logsOnce())
	}
}

func tail(s string) string {
	if len(s) <= maxLogShown {
		return s
	}
	return "…(truncated)…\n" + s[len(s)-maxLogShown:]
}

// Stop stops Traefik with SIGTERM, and SIGKILL if it has not exited after 10 seconds, and
// waits for it. It is idempotent, and called by tb.Cleanup.
func (g *Traefik) Stop() {
	if g.proc != nil {
		g.proc.Stop()
	}
	g.client.CloseIdleConnections()
}

// Exited reports whether the Traefik process has ended, and how.
func (g *Traefik) Exited() (bool, error) { return g.proc.Exited() }

// Pid is the Traefik process' id.
func (g *Traefik) Pid() int { return g.proc.Pid() }
