// Package traefiktest runs the real Traefik binary as a process for integration tests: one
// process per Start, on free loopback ports, in a temporary working directory whose
// plugins-local/ exposes the repository's plugins the way Traefik loads local plugins.
package traefiktest

import (
	"bytes"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"testing"

	"github.com/pavilion-trust/gateway/integration/pluginharness"
)

var binary struct {
	sync.Mutex
	path string
}

// Binary returns the path of the Traefik binary: $TRAEFIK_BIN if set, else the one that
// <repo>/.ci/build-traefik prints (the script builds it once into ~/.cache/pavilion-gateway and
// only checks the cache afterwards). Concurrent callers in this and other test processes run
// the script one at a time. The test fails if there is no binary: Traefik is never optional.
func Binary(tb testing.TB) string {
	tb.Helper()

	binary.Lock()
	defer binary.Unlock()
	if binary.path != "" {
		return binary.path
	}

	if p := os.Getenv("TRAEFIK_BIN"); p != "" {
		if err := checkExecutable(p); err != nil {
			tb.Fatalf("traefiktest: TRAEFIK_BIN: %v", err)
		}
		binary.path = p
		return p
	}

	p, err := buildTraefik()
	if err != nil {
		tb.Fatalf("traefiktest: %v", err)
	}
	binary.path = p
	return p
}

func buildTraefik() (string, error) {
	script := filepath.Join(pluginharness.RepoRoot(), ".ci", "build-traefik")

	unlock, err := lockBuild()
	if err != nil {
		return "", err
	}
	defer unlock()

	var stdout, stderr bytes.Buffer
	cmd := exec.Command("bash", script)
	cmd.Stdout = &stdout
	cmd.Stderr = &stderr
	if err := cmd.Run(); err != nil {
		return "", fmt.Errorf("%s: %w\n%s", script, err, stderr.String())
	}

	lines := strings.Split(strings.TrimSpace(stdout.String()), "\n")
	p := strings.TrimSpace(lines[len(lines)-1])
	if err := checkExecutable(p); err != nil {
		return "", fmt.Errorf("%s printed %q: %w\n%s", script, stdout.String(), err, stderr.String())
	}
	return p, nil
}

// lockBuild takes an exclusive lock shared by all test processes (go test runs packages in
// parallel), so that the build script never runs twice at once from here.
func lockBuild() (func(), error) {
	cache := os.Getenv("PAVILION_CACHE")
	if cache == "" {
		home, err := os.UserHomeDir()
		if err != nil {
			return nil, err
		}
		cache = filepath.Join(home, ".cache", "pavilion-gateway")
	}
	if err := os.MkdirAll(cache, 0o755); err != nil {
		return nil, err
	}

	f, err := os.OpenFile(filepath.Join(cache, ".traefiktest.lock"), os.O_CREATE|os.O_RDWR, 0o644)
	if err != nil {
		return nil, err
	}
	if err := syscall.Flock(int(f.Fd()), syscall.LOCK_EX); err != nil {
		f.Close()
		return nil, fmt.Errorf("locking %s: %w", f.Name(), err)
	}
	return func() {
		_ = syscall.Flock(int(f.Fd()), syscall.LOCK_UN)
		f.Close()
	}, nil
}

func checkExecutable(p string) error {
	fi, err := os.Stat(p)
	if err != nil {
		return err
	}
	if fi.IsDir() || fi.Mode()&0o111 == 0 {
		return fmt.Errorf("%s is not an executable file", p)
	}
	return nil
}

// FreePort returns a TCP port that was free on 127.0.0.1 a moment ago.
func FreePort(tb testing.TB) int {
	tb.Helper()

	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		tb.Fatalf("traefiktest: free port: %v", err)
	}
	defer ln.Close()
	return ln.Addr().(*net.TCPAddr).Port
}
