// Package redistest runs real redis-server processes for integration tests: on a free
// loopback port, without persistence, stopped with SIGTERM + Wait when the test ends, their
// log shown when it failed. Kill and Restart simulate an outage and a recovery on the same
// address, which a client must survive without being rebuilt.
package redistest

import (
	"bufio"
	"bytes"
	"errors"
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

// Server is one redis-server on 127.0.0.1:Port.
type Server struct {
	Port int

	tb   testing.TB
	dir  string
	args []string
	tls  bool   // Port is the TLS port; the plain port is off
	conf string // sentinel: the configuration file (redis-server <conf> --sentinel)

	mu   sync.Mutex
	cmd  *exec.Cmd
	done chan struct{}
	log  bytes.Buffer
}

// Binary is the redis-server used: Debian's, else the first in PATH.
func Binary() (string, error) {
	if p, err := exec.LookPath("/usr/bin/redis-server"); err == nil {
		return p, nil
	}
	return exec.LookPath("redis-server")
}

// Start starts redis-server with extra arguments (e.g. "--requirepass", "pw") and waits
// until it accepts connections. A missing redis-server fails tb: these tests must not be
// skipped silently (apt-get install redis-server).
func Start(tb testing.TB, args ...string) *Server {
	tb.Helper()
	return start(tb, false, args)
}

// StartTLS is Start with TLS only (Debian's redis-server links OpenSSL): certificates for
// 127.0.0.1 and redis.test signed by a test CA, whose PEM it returns; clients are not asked
// for certificates.
func StartTLS(tb testing.TB, args ...string) (*Server, []byte) {
	tb.Helper()
	dir := tb.TempDir()
	caPEM, err := writeTestPKI(dir)
	if err != nil {
		tb.Fatalf("redistest: generating certificates: %v", err)
	}
	tlsArgs := []string{"--tls-cert-file", filepath.Join(dir, "server.crt"), "--tls-key-file", filepath.Join(dir, "server.key"),
		"--tls-ca-cert-file", filepath.Join(dir, "ca.crt"), "--tls-auth-clients", "no"}
	return start(tb, true, append(tlsArgs, args...)), caPEM
}

// PKI is the certificate files of StartMTLS.
type PKI struct {
	CA, ClientCert, ClientKey, OtherCA string
}

// StartMTLS is StartTLS with client certificates required (tls-auth-clients yes): the
// returned files are the CA, a client certificate and key it signed, and another CA.
func StartMTLS(tb testing.TB, args ...string) (*Server, PKI) {
	tb.Helper()
	dir := tb.TempDir()
	if _, err := writeTestPKI(dir); err != nil {
		tb.Fatalf("redistest: generating certificates: %v", err)
	}
	tlsArgs := []string{"--tls-cert-file", filepath.Join(dir, "server.crt"), "--tls-key-file", filepath.Join(dir, "server.key"),
		"--tls-ca-cert-file", filepath.Join(dir, "ca.crt"), "--tls-auth-clients", "yes"}
	p := PKI{CA: filepath.Join(dir, "ca.crt"), ClientCert: filepath.Join(dir, "client.crt"),
		ClientKey: filepath.Join(dir, "client.key"), OtherCA: filepath.Join(dir, "other-ca.crt")}
	return start(tb, true, append(tlsArgs, args...)), p
}

func start(tb testing.TB, tls bool, args []string) *Server {
	tb.Helper()
	if _, err := Binary(); err != nil {
		tb.Fatalf("redistest: redis-server is required and was not found (apt-get install redis-server): %v", err)
	}
	var err error
	for attempt := 0; attempt < 5; attempt++ {
		s := &Server{Port: freePort(tb), tb: tb, dir: tb.TempDir(), args: args, tls: tls}
		if err = s.start(); err == nil {
			tb.Cleanup(func() {
				s.Stop()
				if tb.Failed() {
					tb.Logf("redis-server on port %d:\n%s", s.Port, s.Log())
				}
			})
			return s
		}
		if !strings.Contains(err.Error(), "in use") {
			break
		}
	}
	tb.Fatalf("redistest: starting redis-server: %v", err)
	return nil
}

// Addr is the server's host:port.
func (s *Server) Addr() string { return "127.0.0.1:" + strconv.Itoa(s.Port) }

// Log returns what the server printed, over all its runs.
func (s *Server) Log() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.log.String()
}

// Running tells whether the process is up.
func (s *Server) Running() bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.cmd != nil
}

// Stop sends SIGTERM and waits for the process to exit (SIGKILL after 10s). Stopping a
// stopped server does nothing.
func (s *Server) Stop() { s.signal(syscall.SIGTERM) }

// Kill sends SIGKILL and waits for the process to exit: an abrupt outage, connections reset.
func (s *Server) Kill() { s.signal(syscall.SIGKILL) }

// Restart starts the server again on the same port (stopping it first if it runs), empty:
// nothing is persisted, so keys and loaded scripts are gone as after a real restart.
func (s *Server) Restart() {
	s.tb.Helper()
	s.Stop()
	var err error
	deadline := time.Now().Add(10 * time.Second)
	for {
		if err = s.start(); err == nil {
			return
		}
		if !strings.Contains(err.Error(), "in use") || time.Now().After(deadline) {
			break
		}
		time.Sleep(50 * time.Millisecond)
	}
	s.tb.Fatalf("redistest: restarting redis-server on port %d: %v", s.Port, err)
}

func (s *Server) signal(sig syscall.Signal) {
	s.mu.Lock()
	cmd := s.cmd
	done := s.done
	s.cmd = nil
	s.mu.Unlock()
	if cmd == nil {
		return
	}
	cmd.Process.Signal(sig)
	select {
	case <-done:
	case <-time.After(10 * time.Second):
		cmd.Process.Kill()
		<-done
	}
}

func (s *Server) start() error {
	bin, err := Binary()
	if err != nil {
		return err
	}
	port := []string{"--port", strconv.Itoa(s.Port)}
	if s.tls {
		port = []string{"--port", "0", "--tls-port", strconv.Itoa(s.Port)}
	}
	all := append(append(port, "--bind", "127.0.0.1", "--save", "", "--appendonly", "no", "--dir", s.dir), s.args...)
	if s.conf != "" {
		all = []string{s.conf, "--sentinel"}
	}
	cmd := exec.Command(bin, all...)
	out, err := cmd.StdoutPipe()
	if err != nil {
		return err
	}
	cmd.Stderr = cmd.Stdout
	if err := cmd.Start(); err != nil {
		return err
	}
	done := make(chan struct{})
	ready := make(chan struct{})
	var runLog bytes.Buffer
	go func() {
		defer close(done)
		sc := bufio.NewScanner(out)
		signalled := false
		for sc.Scan() {
			line := sc.Text() + "\n"
			s.mu.Lock()
			s.log.WriteString(line)
			runLog.WriteString(line)
			s.mu.Unlock()
			if !signalled && (strings.Contains(line, "Ready to accept connections") || strings.Contains(line, "+monitor master")) {
				signalled = true
				close(ready)
			}
		}
		cmd.Wait()
	}()
	select {
	case <-ready:
		s.mu.Lock()
		s.cmd = cmd
		s.done = done
		s.mu.Unlock()
		return waitAccepting(s.Addr())
	case <-done:
		s.mu.Lock()
		msg := runLog.String()
		s.mu.Unlock()
		return fmt.Errorf("redis-server exited: %s", msg)
	case <-time.After(10 * time.Second):
		cmd.Process.Kill()
		<-done
		return errors.New("redis-server not ready after 10s: " + s.Log())
	}
}

// waitAccepting waits until addr accepts a TCP connection.
func waitAccepting(addr string) error {
	var err error
	for i := 0; i < 100; i++ {
		var c net.Conn
		c, err = net.DialTimeout("tcp", addr, time.Second)
		if err == nil {
			c.Close()
			return nil
		}
		time.Sleep(20 * time.Millisecond)
	}
	return err
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
