package resp

import (
	"bufio"
	"bytes"
	"context"
	"errors"
	"fmt"
	"net"
	"os"
	"os/exec"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"
)

// The tests run against real redis-server processes (Debian's /usr/bin/redis-server here and
// in CI), on free loopback ports, stopped with SIGTERM + Wait. Shared servers start on first
// use, so that fuzzing needs none; tests that kill, block or count connections start their own.

const redisBinary = "redis-server"

// redisServer is one redis-server process.
type redisServer struct {
	port int
	args []string // extra arguments
	dir  string

	mu   sync.Mutex
	cmd  *exec.Cmd
	done chan struct{}

	logMu sync.Mutex
	log   bytes.Buffer
}

var (
	serversMu sync.Mutex
	servers   []*redisServer
	shared    = map[string]*redisServer{}
)

func TestMain(m *testing.M) {
	code := m.Run()
	serversMu.Lock()
	for _, s := range servers {
		s.stop()
		if code != 0 {
			fmt.Fprintf(os.Stderr, "--- redis-server on port %d %v:\n%s\n", s.port, s.args, s.logs())
		}
		os.RemoveAll(s.dir)
	}
	serversMu.Unlock()
	if pki.dir != "" {
		os.RemoveAll(pki.dir)
	}
	os.Exit(code)
}

// sharedRedis returns the shared server of this kind ("plain", "auth", "tls"), started once.
func sharedRedis(t testing.TB, kind string) *redisServer {
	t.Helper()
	serversMu.Lock()
	s := shared[kind]
	serversMu.Unlock()
	if s != nil {
		return s
	}
	var args []string
	switch kind {
	case "plain":
	case "auth":
		args = []string{"--requirepass", authPassword, "--user", "alice", "on", ">" + alicePassword, "~*", "&*", "+@all"}
	case "tls":
		args = tlsServerArgs(t)
	default:
		t.Fatalf("unknown shared server %q", kind)
	}
	s = newRedis(t, false, args...)
	serversMu.Lock()
	shared[kind] = s
	serversMu.Unlock()
	return s
}

const (
	authPassword  = "s3cret-default"
	alicePassword = "alice-pw"
)

// newRedis starts a redis-server on a free loopback port. perTest: stopped when t ends,
// otherwise at the end of the test binary.
func newRedis(t testing.TB, perTest bool, args ...string) *redisServer {
	t.Helper()
	if _, err := exec.LookPath(redisBinary); err != nil {
		t.Fatalf("redis-server is required by these tests and was not found in PATH (apt-get install redis-server): %v", err)
	}
	dir, err := os.MkdirTemp("", "resp-redis-")
	if err != nil {
		t.Fatal(err)
	}
	var lastErr error
	for attempt := 0; attempt < 5; attempt++ {
		s := &redisServer{port: freePort(t), args: args, dir: dir}
		if lastErr = s.start(); lastErr == nil {
			if perTest {
				t.Cleanup(func() {
					s.stop()
					if t.Failed() {
						t.Logf("redis-server on port %d:\n%s", s.port, s.logs())
					}
					os.RemoveAll(dir)
				})
			} else {
				serversMu.Lock()
				servers = append(servers, s)
				serversMu.Unlock()
			}
			return s
		}
		if !strings.Contains(lastErr.Error(), "in use") {
			break
		}
	}
	os.RemoveAll(dir)
	t.Fatalf("starting redis-server: %v", lastErr)
	return nil
}

func freePort(t testing.TB) int {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	return l.Addr().(*net.TCPAddr).Port
}

func (s *redisServer) addr() string { return "127.0.0.1:" + strconv.Itoa(s.port) }

// start runs the server on its port and waits until it accepts connections.
func (s *redisServer) start() error {
	s.mu.Lock()
	defer s.mu.Unlock()
	portArgs := []string{"--port", strconv.Itoa(s.port)}
	for _, a := range s.args {
		if a == "--tls-port" {
			portArgs = []string{"--port", "0", "--tls-port", strconv.Itoa(s.port)}
		}
	}
	base := []string{"--bind", "127.0.0.1", "--save", "", "--appendonly", "no", "--dir", s.dir,
		"--enable-debug-command", "yes", "--loglevel", "notice"}
	all := append(append(base, portArgs...), withoutMarker(s.args)...)
	cmd := exec.Command(redisBinary, all...)
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
			line := sc.Text()
			s.appendLog(line)
			if !signalled && strings.Contains(line, "Ready to accept connections") {
				signalled = true
				close(ready)
			}
		}
		cmd.Wait()
	}()
	select {
	case <-ready:
		s.cmd = cmd
		s.done = done
		return nil
	case <-done:
		return fmt.Errorf("redis-server exited: %s", s.logs())
	case <-time.After(10 * time.Second):
		cmd.Process.Kill()
		<-done
		return fmt.Errorf("redis-server not ready after 10s: %s", s.logs())
	}
}

// withoutMarker drops "--tls-port" from args: it only tells start to use the port for TLS.
func withoutMarker(args []string) []string {
	var out []string
	for _, a := range args {
		if a != "--tls-port" {
			out = append(out, a)
		}
	}
	return out
}

// stop sends SIGTERM and waits for the process to exit.
func (s *redisServer) stop() {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.cmd == nil {
		return
	}
	s.cmd.Process.Signal(syscall.SIGTERM)
	select {
	case <-s.done:
	case <-time.After(10 * time.Second):
		s.cmd.Process.Kill()
		<-s.done
	}
	s.cmd = nil
}

func (s *redisServer) appendLog(line string) {
	s.logMu.Lock()
	s.log.WriteString(line)
	s.log.WriteByte('\n')
	s.logMu.Unlock()
}

func (s *redisServer) logs() string {
	s.logMu.Lock()
	defer s.logMu.Unlock()
	return s.log.String()
}

// newClient returns a Client to s, closed when t ends.
func newClient(t testing.TB, opts Options) *Client {
	t.Helper()
	c, err := New(opts)
	if err != nil {
		t.Fatalf("New: %v", err)
	}
	t.Cleanup(func() { c.Close() })
	return c
}

// do runs a command with a background context and fails the test on any error.
func mustDo(t testing.TB, c *Client, args ...string) Value {
	t.Helper()
	v, err := c.Do(context.Background(), args...)
	if err != nil {
		t.Fatalf("%v: %v", args, err)
	}
	return v
}

// serverConns counts the server's client connections other than observer's own.
func serverConns(t testing.TB, observer *Client) int {
	t.Helper()
	n, err := countConns(observer)
	if err != nil {
		t.Fatalf("CLIENT LIST: %v", err)
	}
	return n
}

// countConns is serverConns for goroutines other than the test's.
func countConns(observer *Client) (int, error) {
	v, err := observer.Do(context.Background(), "CLIENT", "LIST")
	if err != nil {
		return 0, err
	}
	n := 0
	for _, line := range strings.Split(strings.TrimSpace(v.Str), "\n") {
		if strings.TrimSpace(line) != "" {
			n++
		}
	}
	return n - 1, nil
}

// waitFor polls cond for up to 2s.
func waitFor(t testing.TB, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(2 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(10 * time.Millisecond)
	}
}

func isRedisError(err error, prefix string) bool {
	var re RedisError
	return errors.As(err, &re) && re.Prefix() == prefix
}

// checkQuiet checks a Client with no command running: every slot free, nobody waiting,
// every open connection idle.
func checkQuiet(t testing.TB, c *Client) {
	t.Helper()
	c.mu.Lock()
	slots := c.slots
	waiters := len(c.waiters)
	c.mu.Unlock()
	st := c.Stats()
	if slots != 0 || waiters != 0 || st.Open != st.Idle {
		t.Fatalf("client not quiet: %d slots taken, %d waiters, stats %+v", slots, waiters, st)
	}
}
