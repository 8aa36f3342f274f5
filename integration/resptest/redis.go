// Package resptest checks plugins/resp, the plugins' hand-written Redis client, where it will
// run: under Yaegi v0.16.1, loaded as Traefik loads a local plugin, against a real
// redis-server. It also proves that go-redis still cannot run there, which is why resp exists.
//
// StartRedis and StartRedisTLS are usable by other integration tests that need a Redis.
package resptest

import (
	"bufio"
	"bytes"
	"fmt"
	"net"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"
)

// Redis is a redis-server process on a free loopback port, without persistence.
type Redis struct {
	Port int

	args []string
	dir  string
	tls  bool

	cmd  *exec.Cmd
	done chan struct{}

	mu  sync.Mutex
	log bytes.Buffer
}

// StartRedis starts redis-server (from PATH: Debian's /usr/bin/redis-server) with extra
// arguments (e.g. "--requirepass", "pw"), waits until it accepts connections and stops it
// (SIGTERM + Wait) when tb ends, showing its log if tb failed. A missing redis-server fails
// tb: these tests must not be skipped silently.
func StartRedis(tb testing.TB, args ...string) *Redis {
	tb.Helper()
	return startRedis(tb, false, args)
}

// StartRedisTLS is StartRedis with TLS only (--port 0, --tls-port Port), with a server
// certificate for 127.0.0.1 issued by a new CA, whose certificate it returns (PEM).
func StartRedisTLS(tb testing.TB, args ...string) (*Redis, []byte) {
	tb.Helper()
	dir := tb.TempDir()
	caPEM, err := writeTestPKI(dir)
	if err != nil {
		tb.Fatalf("generating certificates: %v", err)
	}
	tlsArgs := []string{"--tls-cert-file", filepath.Join(dir, "server.crt"), "--tls-key-file", filepath.Join(dir, "server.key"),
		"--tls-ca-cert-file", filepath.Join(dir, "ca.crt"), "--tls-auth-clients", "no"}
	return startRedis(tb, true, append(tlsArgs, args...)), caPEM
}

func startRedis(tb testing.TB, tls bool, args []string) *Redis {
	tb.Helper()
	if _, err := exec.LookPath("redis-server"); err != nil {
		tb.Fatalf("redis-server is required and was not found in PATH (apt-get install redis-server): %v", err)
	}
	var err error
	for attempt := 0; attempt < 5; attempt++ {
		r := &Redis{Port: freePort(tb), args: args, dir: tb.TempDir(), tls: tls}
		if err = r.start(); err == nil {
			tb.Cleanup(func() {
				r.Stop()
				if tb.Failed() {
					tb.Logf("redis-server on port %d:\n%s", r.Port, r.Log())
				}
			})
			return r
		}
		if !strings.Contains(err.Error(), "in use") {
			break
		}
	}
	tb.Fatalf("starting redis-server: %v", err)
	return nil
}

// Addr is the server's host:port.
func (r *Redis) Addr() string { return "127.0.0.1:" + strconv.Itoa(r.Port) }

// Log returns what the server printed.
func (r *Redis) Log() string {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.log.String()
}

// Stop sends SIGTERM and waits for the process to exit.
func (r *Redis) Stop() {
	if r.cmd == nil {
		return
	}
	r.cmd.Process.Signal(syscall.SIGTERM)
	select {
	case <-r.done:
	case <-time.After(10 * time.Second):
		r.cmd.Process.Kill()
		<-r.done
	}
	r.cmd = nil
}

// Restart stops the server and starts it again on the same port (its data is lost).
func (r *Redis) Restart() error {
	r.Stop()
	return r.start()
}

func (r *Redis) start() error {
	port := []string{"--port", strconv.Itoa(r.Port)}
	if r.tls {
		port = []string{"--port", "0", "--tls-port", strconv.Itoa(r.Port)}
	}
	all := append(append(port, "--bind", "127.0.0.1", "--save", "", "--appendonly", "no", "--dir", r.dir), r.args...)
	cmd := exec.Command("redis-server", all...)
	out, err := cmd.StdoutPipe()
	if err != nil {
		return err
	}
	cmd.Stderr = cmd.Stdout
	if err := cmd.Start(); err != nil {
		return err
	}
	ready := make(chan struct{})
	done := make(chan struct{})
	go func() {
		defer close(done)
		sc := bufio.NewScanner(out)
		signalled := false
		for sc.Scan() {
			r.mu.Lock()
			r.log.WriteString(sc.Text() + "\n")
			r.mu.Unlock()
			if !signalled && strings.Contains(sc.Text(), "Ready to accept connections") {
				signalled = true
				close(ready)
			}
		}
		cmd.Wait()
	}()
	select {
	case <-ready:
		r.cmd = cmd
		r.done = done
		return nil
	case <-done:
		return fmt.Errorf("redis-server exited: %s", r.Log())
	case <-time.After(10 * time.Second):
		cmd.Process.Kill()
		<-done
		return fmt.Errorf("redis-server not ready after 10s: %s", r.Log())
	}
}

func freePort(tb testing.TB) int {
	tb.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		tb.Fatal(err)
	}
	defer l.Close()
	return l.Addr().(*net.TCPAddr).Port
}
