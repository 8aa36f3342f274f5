package catalogtest

import (
	"bytes"
	"fmt"
	"image/png"
	"net/http"
	"os"
	"path"
	"path/filepath"
	"sort"
	"strings"
	"testing"
	"time"

	"gopkg.in/yaml.v3"

	"github.com/pavilion-trust/gateway/integration/pluginharness"
	"github.com/pavilion-trust/gateway/integration/traefiktest"
)

// manifest is a plugin's .traefik.yml.
type manifest struct {
	DisplayName string         `yaml:"displayName"`
	Type        string         `yaml:"type"`
	Import      string         `yaml:"import"`
	Summary     string         `yaml:"summary"`
	IconPath    string         `yaml:"iconPath"`
	TestData    map[string]any `yaml:"testData"`
}

// manifests returns every .traefik.yml of the plugin tree by plugin name (the suite is
// "pavilion"), with its module name.
func manifests(t *testing.T) (map[string]manifest, map[string]string) {
	t.Helper()
	root := pluginharness.RepoRoot()
	files, err := filepath.Glob(filepath.Join(root, "plugins", "*", ".traefik.yml"))
	if err != nil {
		t.Fatal(err)
	}
	files = append(files, filepath.Join(root, ".traefik.yml"))
	out, modules := map[string]manifest{}, map[string]string{}
	for _, f := range files {
		b, err := os.ReadFile(f)
		if err != nil {
			t.Fatal(err)
		}
		var m manifest
		if err := yaml.Unmarshal(b, &m); err != nil {
			t.Fatalf("%s: %v", f, err)
		}
		rel, _ := filepath.Rel(root, filepath.Dir(f))
		module := pluginharness.RootModule
		name := "pavilion"
		if rel != "." {
			module = path.Join(module, filepath.ToSlash(rel))
			name = filepath.Base(rel)
		}
		if m.DisplayName == "" || m.Type != "middleware" || m.Summary == "" || len(m.TestData) == 0 {
			t.Errorf("%s: displayName, type middleware, summary and testData are required by Traefik", f)
		}
		if m.Import != module {
			t.Errorf("%s: import %q, want %q", f, m.Import, module)
		}
		out[name], modules[name] = m, module
	}
	return out, modules
}

func TestSuiteTestDataCoversEverySection(t *testing.T) {
	ms, _ := manifests(t)
	var sections []string
	for k := range ms["pavilion"].TestData {
		sections = append(sections, k)
	}
	sort.Strings(sections)
	if got := strings.Join(sections, ","); got != "jwt,rateLimit,requestId" {
		t.Errorf("root .traefik.yml testData sections %s, want jwt, rateLimit and requestId", got)
	}
}

func TestIcon(t *testing.T) {
	root := pluginharness.RepoRoot()
	ms, _ := manifests(t)
	if ms["pavilion"].IconPath != IconPath {
		t.Fatalf("root .traefik.yml iconPath %q, want %s", ms["pavilion"].IconPath, IconPath)
	}
	committed, err := os.ReadFile(filepath.Join(root, IconPath))
	if err != nil {
		t.Fatalf("%s: %v (go run ./cmd/catalogicon -root .. in integration/)", IconPath, err)
	}
	cfg, err := png.DecodeConfig(bytes.NewReader(committed))
	if err != nil || cfg.Width != cfg.Height || cfg.Width < 64 {
		t.Fatalf("%s: %v, %dx%d; want a square PNG of at least 64 pixels", IconPath, err, cfg.Width, cfg.Height)
	}
	want, err := Icon()
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(committed, want) {
		t.Errorf("%s differs from what cmd/catalogicon generates: regenerate it", IconPath)
	}
}

// TestTestDataLoadsInTraefik loads every plugin into real Traefik (abortOnPluginFailure) with
// a middleware configured by its manifest's testData, as the catalog does, and checks that
// Traefik built it and that it answers a request.
func TestTestDataLoadsInTraefik(t *testing.T) {
	ms, modules := manifests(t)
	var dyn strings.Builder
	dyn.WriteString("http:\n  routers:\n")
	var names, wait []string
	for name := range ms {
		names = append(names, name)
	}
	sort.Strings(names)
	for _, name := range names {
		fmt.Fprintf(&dyn, "    %s:\n      entryPoints: [web]\n      rule: Path(`/%s`)\n      middlewares: [%s]\n      service: noop@internal\n", name, name, name)
		wait = append(wait, name+"@file")
	}
	dyn.WriteString("  middlewares:\n")
	for _, name := range names {
		b, err := yaml.Marshal(map[string]any{name: map[string]any{"plugin": map[string]any{name: ms[name].TestData}}})
		if err != nil {
			t.Fatal(err)
		}
		for _, line := range strings.Split(strings.TrimRight(string(b), "\n"), "\n") {
			dyn.WriteString("    " + line + "\n")
		}
	}
	g := traefiktest.Start(t, traefiktest.Options{Dynamic: dyn.String(), Plugins: modules, AbortOnPluginFailure: true, WaitRouters: wait})
	client := &http.Client{Timeout: 10 * time.Second}
	for _, name := range names {
		var mw struct {
			Status string   `json:"status"`
			Error  []string `json:"error"`
		}
		if err := traefiktest.GetJSON(client, g.APIURL+"/api/http/middlewares/"+name+"@file", &mw); err != nil {
			t.Fatal(err)
		}
		res, err := client.Get(g.URL + "/" + name)
		if err != nil {
			t.Fatal(err)
		}
		res.Body.Close()
		t.Logf("%s (%s): middleware %s, GET /%s -> %d", name, modules[name], mw.Status, name, res.StatusCode)
		if mw.Status != "enabled" || res.StatusCode == http.StatusNotFound {
			t.Errorf("%s: testData middleware %s %v, GET %d", name, mw.Status, mw.Error, res.StatusCode)
		}
	}
}
