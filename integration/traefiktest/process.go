package traefiktest

import (
	"errors"
	"os"
	"os/exec"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"
)

// Process is one Traefik process, shared by this package's Traefik and gatewaytest's Gateway: started
// in a working directory with a static configuration file, its stdout and stderr in
// <dir>/traefik.out, stopped with SIGTERM and Wait (SIGKILL after 10s).
type Process struct {
	cmd      *exec.Cmd
	exited   chan struct{}
	waitErr  error
	stopOnce sync.Once
}

// StartProcess starts bin --configFile=configFile in dir. Its environment is the test's,
// without TRAEFIK_* (Traefik would read them as static configuration) and PAVILION_* (the
// test's own), plus env.
func StartProcess(tb testing.TB, bin, dir, configFile string, env []string) *Process {
	tb.Helper()
	out, err := os.Create(dir + "/traefik.out")
	if err != nil {
		tb.Fatalf("traefiktest: %v", err)
	}
	defer out.Close() // the child has its own copy
	p := &Process{exited: make(chan struct{})}
	p.cmd = exec.Command(bin, "--configFile="+configFile)
	p.cmd.Dir = dir
	p.cmd.Env = environ(env)
	p.cmd.Stdout = out
	p.cmd.Stderr = out
	if err := p.cmd.Start(); err != nil {
		tb.Fatalf("traefiktest: starting %s: %v", bin, err)
	}
	go func() {
		p.waitErr = p.cmd.Wait()
		close(p.exited)
	}()
	return p
}

// Stop sends SIGTERM and waits for the process to exit (SIGKILL after stopTimeout); it is
// idempotent.
func (p *Process) Stop() {
	p.stopOnce.Do(func() {
		if err := p.cmd.Process.Signal(syscall.SIGTERM); err != nil && !errors.Is(err, os.ErrProcessDone) {
			_ = p.cmd.Process.Kill()
		}
		select {
		case <-p.exited:
		case <-time.After(stopTimeout):
			_ = p.cmd.Process.Kill()
			<-p.exited
		}
	})
}

// Exited reports whether the process has ended, and how.
func (p *Process) Exited() (bool, error) {
	select {
	case <-p.exited:
		return true, p.waitErr
	default:
		return false, nil
	}
}

// Done is closed when the process has ended; Err then tells how.
func (p *Process) Done() <-chan struct{} { return p.exited }

// Err is the process' exit error, once Done is closed.
func (p *Process) Err() error { return p.waitErr }

func environ(extra []string) []string {
	var env []string
	for _, kv := range os.Environ() {
		up := strings.ToUpper(kv)
		if !strings.HasPrefix(up, "TRAEFIK_") && !strings.HasPrefix(up, "PAVILION_") {
			env = append(env, kv)
		}
	}
	return append(env, extra...)
}

// Pid is the process id (for reading its CPU time from /proc in benchmarks).
func (p *Process) Pid() int { return p.cmd.Process.Pid }
