// Package depscheck tests .ci/deps, the one list of system packages that make test, make demo,
// make bench and .ci/run need, with stand-in commands on PATH (nothing is installed).
package depscheck

import (
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
)

var script = filepath.Join("..", "..", ".ci", "deps")

// packageCommands reads the package list of .ci/deps: package → the command that proves it.
func packageCommands(t *testing.T) map[string]string {
	t.Helper()
	src, err := os.ReadFile(script)
	if err != nil {
		t.Fatal(err)
	}
	_, list, ok := strings.Cut(string(src), "packages='")
	list, _, ok2 := strings.Cut(list, "'")
	if !ok || !ok2 {
		t.Fatal(".ci/deps: no packages='…' list")
	}
	cmds := map[string]string{}
	for _, line := range strings.Split(list, "\n") {
		if f := strings.Fields(line); len(f) >= 3 {
			cmds[f[0]] = f[1]
		}
	}
	for _, pkg := range []string{"redis-server", "redis-sentinel", "redis-tools", "wrk", "chromium"} {
		if cmds[pkg] == "" {
			t.Fatalf(".ci/deps does not list %s", pkg)
		}
	}
	return cmds
}

// run runs .ci/deps with PATH holding only the given stand-ins: name → shell body.
func run(t *testing.T, stubs map[string]string, args ...string) (string, int, string) {
	t.Helper()
	dir := t.TempDir()
	log := filepath.Join(dir, "calls.log")
	for name, body := range stubs {
		src := "#!/bin/sh\n" + strings.ReplaceAll(body, "$LOG", log) + "\n"
		if err := os.WriteFile(filepath.Join(dir, name), []byte(src), 0o755); err != nil {
			t.Fatal(err)
		}
	}
	bash, err := exec.LookPath("bash")
	if err != nil {
		t.Skip("no bash")
	}
	cmd := exec.Command(bash, append([]string{script}, args...)...)
	cmd.Env = []string{"PATH=" + dir}
	out, err := cmd.CombinedOutput()
	code := 0
	if ee, ok := err.(*exec.ExitError); ok {
		code = ee.ExitCode()
	} else if err != nil {
		t.Fatal(err)
	}
	calls, _ := os.ReadFile(log)
	return string(out), code, string(calls)
}

// present returns stand-ins for the commands of every listed package but except, and an id
// that is not root.
func present(t *testing.T, except ...string) map[string]string {
	commands := packageCommands(t)
	stubs := map[string]string{"id": "echo 1000"}
	for _, cmd := range commands {
		stubs[cmd] = "exit 0"
	}
	for _, pkg := range except {
		delete(stubs, commands[pkg])
	}
	return stubs
}

func TestEverythingPresentIsANoOp(t *testing.T) {
	stubs := present(t)
	stubs["apt-get"] = "echo \"apt-get $*\" >> $LOG"
	for _, target := range []string{"test", "demo", "bench"} {
		out, code, calls := run(t, stubs, target)
		if code != 0 || out != "" || calls != "" {
			t.Errorf("%s: exit %d, output %q, apt-get calls %q; want 0, nothing, none", target, code, out, calls)
		}
	}
}

func TestMissingAsRootInstallsOnce(t *testing.T) {
	stubs := present(t, "redis-server", "chromium")
	stubs["id"] = "echo 0"
	stubs["apt-get"] = "echo \"apt-get $*\" >> $LOG"
	_, code, calls := run(t, stubs, "test")
	want := "apt-get update -qq\napt-get install -y -qq --no-install-recommends redis-server chromium\n"
	if code != 0 || calls != want {
		t.Fatalf("exit %d, apt-get calls:\n%s\nwant:\n%s", code, calls, want)
	}
}

func TestMissingWithoutRootPrintsTheCommand(t *testing.T) {
	stubs := present(t, "wrk")
	stubs["apt-get"] = "echo \"apt-get $*\" >> $LOG"
	out, code, calls := run(t, stubs, "bench")
	if code != 1 || calls != "" || !strings.Contains(out, "sudo apt-get update && sudo apt-get install -y --no-install-recommends wrk") {
		t.Fatalf("exit %d, output %q, apt-get calls %q; want 1, the exact command, no call", code, out, calls)
	}
}

func TestWithoutAptGetPrintsTheCommand(t *testing.T) {
	stubs := present(t, "redis-server")
	stubs["id"] = "echo 0"
	out, code, _ := run(t, stubs, "demo")
	if code != 1 || !strings.Contains(out, "apt-get install -y --no-install-recommends redis-server") {
		t.Fatalf("exit %d, output %q", code, out)
	}
}

func TestTargetsNeedTheirOwnPackages(t *testing.T) {
	stubs := present(t, "chromium", "wrk", "redis-sentinel")
	for target, want := range map[string]int{"demo": 0, "test": 1, "bench": 1} {
		_, code, _ := run(t, stubs, "--check", target)
		if code != want {
			t.Errorf("--check %s without chromium, wrk, redis-sentinel: exit %d, want %d", target, code, want)
		}
	}
	out, _, _ := run(t, stubs, "--check", "test")
	for _, pkg := range []string{"redis-sentinel", "wrk", "chromium"} {
		if !strings.Contains(out, pkg) {
			t.Errorf("--check test: %q, want %s named", out, pkg)
		}
	}
	if _, code, _ := run(t, stubs, "nope"); code != 2 {
		t.Errorf("unknown target: exit %d, want 2", code)
	}
}
