package gatewaytest

import (
	"context"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/pavilion-trust/gateway/integration/pluginharness"
)

// chromium returns Debian's headless Chromium. CI installs it (.ci/run) and must not skip;
// a developer machine without it skips with a message.
func chromium(t *testing.T) string {
	path, err := exec.LookPath("chromium")
	if err == nil {
		return path
	}
	if os.Getenv("CI") != "" {
		t.Fatal("chromium is not installed (apt-get install chromium); CI must run the dashboard test")
	}
	t.Skip("chromium is not installed (apt-get install chromium): dashboard test skipped")
	return ""
}

// headless runs Chromium the way this machine allows (no sandbox as root, no background
// networking: the network is closed) with a fresh profile, and returns its stdout.
func headless(t *testing.T, bin string, args ...string) string {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 90*time.Second)
	defer cancel()
	base := []string{"--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
		"--disable-background-networking", "--disable-component-update", "--disable-sync",
		"--user-data-dir=" + t.TempDir(), "--window-size=1400,1000", "--virtual-time-budget=10000"}
	out, err := exec.CommandContext(ctx, bin, append(base, args...)...).Output()
	if err != nil {
		t.Fatalf("chromium %v: %v", args, err)
	}
	return string(out)
}

// TestDashboard: the Traefik dashboard, rendered by a real browser, lists our routers and the
// plugin middlewares; screenshots are kept in integration/artifacts/.
func TestDashboard(t *testing.T) {
	bin := chromium(t)
	s := startStack(t)
	for _, page := range []struct {
		name, fragment string
		want           []string
	}{
		{name: "routers", fragment: "#/http/routers", want: []string{"api-v1@file", "health@file"}},
		{name: "middlewares", fragment: "#/http/middlewares", want: []string{"pavilion@file", "health@file", "api-chain@file", "security-headers@file", "cors@file"}},
	} {
		t.Run(page.name, func(t *testing.T) {
			url := s.gw.InternalURL + "/dashboard/" + page.fragment
			dom := headless(t, bin, "--dump-dom", url)
			for _, w := range page.want {
				if !strings.Contains(dom, w) {
					t.Fatalf("the dashboard's %s page does not show %s", page.name, w)
				}
			}
			dir := filepath.Join(pluginharness.RepoRoot(), "integration", "artifacts")
			if err := os.MkdirAll(dir, 0o755); err != nil {
				t.Fatal(err)
			}
			shot := filepath.Join(dir, "dashboard-"+page.name+".png")
			headless(t, bin, "--screenshot="+shot, url)
			if st, err := os.Stat(shot); err != nil || st.Size() < 10000 {
				t.Fatalf("screenshot %s: %v", shot, err)
			}
			t.Logf("screenshot: %s", shot)
		})
	}
}
