package ratelimit

import (
	"bufio"
	"net"
	"os/exec"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"
)

// testRedis is a redis-server on a free loopback port, for the tests that need one
// (integration/redistest is the full helper; the root module cannot import it).
type testRedis struct {
	port int
	dir  string
	cmd  *exec.Cmd
	done chan struct{}
}

const redisBinary = "/usr/bin/redis-server"

func startRedis(t testing.TB) *testRedis {
	t.Helper()
	if _, err := exec.LookPath(redisBinary); err != nil {
		t.Fatalf("%s is required (apt-get install redis-server): %v", redisBinary, err)
	}
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	port := l.Addr().(*net.TCPAddr).Port
	l.Close()
	r := &testRedis{port: port, dir: t.TempDir()}
	r.start(t)
	t.Cleanup(r.stop)
	return r
}

func (r *testRedis) addr() string { return "127.0.0.1:" + strconv.Itoa(r.port) }

func (r *testRedis) start(t testing.TB) {
	t.Helper()
	cmd := exec.Command(redisBinary, "--port", strconv.Itoa(r.port), "--bind", "127.0.0.1",
		"--save", "", "--appendonly", "no", "--dir", r.dir)
	out, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	ready := make(chan struct{})
	done := make(chan struct{})
	var log strings.Builder
	go func() {
		defer close(done)
		sc := bufio.NewScanner(out)
		ok := false
		for sc.Scan() {
			log.WriteString(sc.Text() + "\n")
			if !ok && strings.Contains(sc.Text(), "Ready to accept connections") {
				ok = true
				close(ready)
			}
		}
		cmd.Wait()
	}()
	select {
	case <-ready:
	case <-done:
		t.Fatalf("redis-server exited: %s", log.String())
	case <-time.After(10 * time.Second):
		cmd.Process.Kill()
		<-done
		t.Fatal("redis-server not ready after 10s")
	}
	r.cmd = cmd
	r.done = done
}

func (r *testRedis) stop() {
	if r.cmd == nil {
		return
	}
	r.cmd.Process.Signal(syscall.SIGTERM)
	<-r.done
	r.cmd = nil
}

func (r *testRedis) kill() {
	if r.cmd == nil {
		return
	}
	r.cmd.Process.Kill()
	<-r.done
	r.cmd = nil
}
