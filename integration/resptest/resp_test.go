package resptest

import (
	"fmt"
	"github.com/pavilion-trust/gateway/integration/redistest"
	"os"
	"reflect"
	"runtime"
	"strings"
	"testing"
	"time"

	"github.com/pavilion-trust/gateway/integration/pluginharness"
	"github.com/pavilion-trust/gateway/integration/resptest/scenario"
	"github.com/pavilion-trust/gateway/plugins/resp"
	"github.com/traefik/yaegi/interp"
	"github.com/traefik/yaegi/stdlib"
)

const (
	respImport     = pluginharness.RootModule + "/plugins/resp"
	scenarioImport = pluginharness.RootModule + "/integration/resptest/scenario"
)

// newInterpreter returns a Yaegi interpreter set up as Traefik v3.6.12 sets one up for a
// local plugin: GOPATH-style sources, the process environment, the standard library symbols
// only (no unsafe, no syscall).
func newInterpreter(t testing.TB, goPath string) *interp.Interpreter {
	t.Helper()
	i := interp.New(interp.Options{GoPath: goPath, Env: os.Environ()})
	if err := i.Use(stdlib.Symbols); err != nil {
		t.Fatal(err)
	}
	return i
}

// eval runs src in i, turning a Yaegi panic into an error.
func eval(i *interp.Interpreter, src string) (v reflect.Value, err error) {
	defer func() {
		if r := recover(); r != nil {
			err = fmt.Errorf("yaegi panicked: %v", r)
		}
	}()
	return i.Eval(src)
}

// interpretedScenario returns an interpreter that has imported plugins/resp and then the
// scenario package from the working tree, as Traefik imports a plugin.
func interpretedScenario(t *testing.T) *interp.Interpreter {
	t.Helper()
	i := newInterpreter(t, pluginharness.RepoGoPath(t))
	if _, err := eval(i, fmt.Sprintf("import %q", respImport)); err != nil {
		t.Fatalf("Yaegi cannot import plugins/resp: %v", err)
	}
	if _, err := eval(i, fmt.Sprintf("import %q", scenarioImport)); err != nil {
		t.Fatalf("Yaegi cannot import the scenario: %v", err)
	}
	return i
}

// callInterpreted calls the interpreted scenario function fn (e.g. "scenario.Run") and
// returns its transcript.
func callInterpreted(t *testing.T, i *interp.Interpreter, fn string, args ...any) []string {
	t.Helper()
	f, err := eval(i, fn)
	if err != nil {
		t.Fatal(err)
	}
	in := make([]reflect.Value, len(args))
	for k, a := range args {
		in[k] = reflect.ValueOf(a)
	}
	var out []reflect.Value
	func() {
		defer func() {
			if r := recover(); r != nil {
				t.Fatalf("%s panicked under Yaegi: %v", fn, r)
			}
		}()
		out = f.Call(in)
	}()
	return out[0].Interface().([]string)
}

// sameTranscripts fails t where the compiled and interpreted runs differ, and shows the
// compiled transcript then (or with -v).
func sameTranscripts(t *testing.T, compiled, interpreted []string) {
	t.Helper()
	for _, l := range append(append([]string{}, compiled...), interpreted...) {
		if strings.HasPrefix(l, "FAIL") {
			t.Errorf("%s", l)
		}
	}
	for n := 0; n < len(compiled) || n < len(interpreted); n++ {
		var c, y string
		if n < len(compiled) {
			c = compiled[n]
		}
		if n < len(interpreted) {
			y = interpreted[n]
		}
		if c != y {
			t.Errorf("step %d differs:\ncompiled:    %s\ninterpreted: %s", n, c, y)
		}
	}
	if t.Failed() || testing.Verbose() {
		t.Logf("transcript (compiled):\n%s", strings.Join(compiled, "\n"))
	}
}

// wantLines fails t for each line of want missing from the transcript.
func wantLines(t *testing.T, name string, lines, want []string) {
	t.Helper()
	have := map[string]bool{}
	for _, l := range lines {
		have[l] = true
	}
	for _, w := range want {
		if !have[w] {
			t.Errorf("%s: transcript lacks %q", name, w)
		}
	}
}

// TestScenarioInterpreted runs the main scenario compiled and then under Yaegi, each against
// a fresh redis-server: the transcripts must be equal, and right.
func TestScenarioInterpreted(t *testing.T) {
	addr1 := redistest.Start(t).Addr()
	addr2 := redistest.Start(t).Addr()
	i := interpretedScenario(t)
	before := runtime.NumGoroutine()

	compiled := scenario.Run(addr1)
	checkTranscript(t, "compiled", compiled)
	interpreted := callInterpreted(t, i, "scenario.Run", addr2)
	checkTranscript(t, "interpreted", interpreted)
	sameTranscripts(t, compiled, interpreted)

	// Both runs closed their clients: no goroutine of theirs may remain.
	deadline := time.Now().Add(2 * time.Second)
	for runtime.NumGoroutine() > before && time.Now().Before(deadline) {
		time.Sleep(10 * time.Millisecond)
	}
	if n := runtime.NumGoroutine(); n > before {
		t.Errorf("%d goroutines before the runs, %d after", before, n)
	}
}

// TestConnectInterpreted runs AUTH/SELECT, TLS and server restarts compiled and under Yaegi.
func TestConnectInterpreted(t *testing.T) {
	i := interpretedScenario(t)
	authArgs := []string{"--requirepass", "default-pw", "--user", "alice", "on", ">alice-pw", "~*", "&*", "+@all"}

	t.Run("auth", func(t *testing.T) {
		compiled := scenario.RunAuth(redistest.Start(t, authArgs...).Addr(), "alice", "alice-pw")
		interpreted := callInterpreted(t, i, "scenario.RunAuth", redistest.Start(t, authArgs...).Addr(), "alice", "alice-pw")
		wantLines(t, "compiled", compiled, []string{
			"SET authkey ok -> +OK",
			"AUTH ok, CLIENT INFO db=3: true user=true",
			"bad password: resp: AUTH: WRONGPASS shows password=false",
			"bad password: open=0 dialErrors=1",
			"no password: RedisError=true prefix=NOAUTH",
		})
		sameTranscripts(t, compiled, interpreted)
	})

	t.Run("tls", func(t *testing.T) {
		r1, ca1 := redistest.StartTLS(t)
		compiled := scenario.RunTLS(r1.Addr(), ca1)
		r2, ca2 := redistest.StartTLS(t)
		interpreted := callInterpreted(t, i, "scenario.RunTLS", r2.Addr(), ca2)
		wantLines(t, "compiled", compiled, []string{
			"CA parsed: true",
			`GET tlskey -> $"over tls"`,
			"PING -> +PONG",
			"system roots: unknown authority=true",
		})
		sameTranscripts(t, compiled, interpreted)
	})

	t.Run("restart", func(t *testing.T) {
		r1 := redistest.Start(t)
		compiled := scenario.RunRestart(r1.Addr(), r1.Stop, restarter(r1))
		r2 := redistest.Start(t)
		interpreted := callInterpreted(t, i, "scenario.RunRestart", r2.Addr(), r2.Stop, restarter(r2))
		wantLines(t, "compiled", compiled, []string{
			"idle before restart: 3",
			"after restart: retries=1 open=1 idle=1",
			"server down: refused=true fast=true",
			"PING -> +PONG",
		})
		sameTranscripts(t, compiled, interpreted)
	})
}

// BenchmarkEvalSHA measures the rate limiter's hot path, one EVALSHA per request, compiled
// and under Yaegi, with 8 goroutines on a pool of 8:
//
//	go test -run '^$' -bench EvalSHA ./resptest/
func BenchmarkEvalSHA(b *testing.B) {
	addr := redistest.Start(b).Addr()
	b.Run("compiled", func(b *testing.B) {
		if err := scenario.Loop(addr, b.N, 8); err != nil {
			b.Fatal(err)
		}
	})
	b.Run("yaegi", func(b *testing.B) {
		i := newInterpreter(b, pluginharness.RepoGoPath(b))
		if _, err := eval(i, fmt.Sprintf("import %q", scenarioImport)); err != nil {
			b.Fatal(err)
		}
		loop, err := eval(i, "scenario.Loop")
		if err != nil {
			b.Fatal(err)
		}
		b.ResetTimer()
		out := loop.Call([]reflect.Value{reflect.ValueOf(addr), reflect.ValueOf(b.N), reflect.ValueOf(8)})
		if err, _ := out[0].Interface().(error); err != nil {
			b.Fatal(err)
		}
	})
}

// checkTranscript checks the steps whose results are known.
func checkTranscript(t *testing.T, name string, lines []string) {
	t.Helper()
	want := []string{
		`New invalid -> error: resp: address: "nohost" is not host:port` + "\n" + "poolSize: must be between 1 and 1024, got -1",
		`SET k v -> +OK`,
		`GET k -> $"v"`,
		`GET missing -> $nil`,
		`GET bin -> $"a\r\nb"`,
		`INCRBY ctr -10 -> :-8`,
		`LRANGE list 0 -1 -> *[$"a" $"b" $"c"]`,
		`LRANGE nolist 0 -1 -> *[]`,
		`EVAL return {1, "two", {3, {false}}, redis.status_reply("FINE"), redis.error_reply("MYERR inner")} 0 -> *[:1 $"two" *[:3 *[$nil]] +FINE -MYERR inner]`,
		`INCR list: RedisError=true prefix=WRONGTYPE`,
		`NOSUCHCOMMAND x -> -ERR unknown command 'NOSUCHCOMMAND', with args beginning with: 'x'  (RedisError)`,
		`SCRIPT EXISTS 4b5d7bdd0b6b8bbd4a3b1f6c0e6bbd1b2f5b8a73 -> *[:0]`,
		`EvalSHA after flush -> *[:5 $"tag"]`,
		`EvalSHA cached -> *[:12 $"again"]`,
		`EvalSHA error reply -> -LIMIT over (RedisError)`,
		`stats after replies: dials=1 discarded=0`,
		`timeout: deadline=true prefix=true ~100ms=true`,
		`GET k -> $"v"`,
		`stats after timeout: open=1 discarded=1 timeouts=1`,
		`concurrent: results=200 errors=0 each 1..200 once=true`,
		`GET conc -> $"200"`,
		`pool bound kept, waited for a connection: true`,
		`Close -> `,
		`after Close: ErrClosed=true`,
	}
	sha := resp.NewScript(`return {redis.call("INCRBY", KEYS[1], ARGV[1]), ARGV[2]}`).SHA1()
	have := map[string]bool{}
	for _, l := range lines {
		have[l] = true
		if strings.HasPrefix(l, "FAIL") {
			t.Errorf("%s: %s", name, l)
		}
	}
	for _, w := range want {
		w = strings.ReplaceAll(w, "4b5d7bdd0b6b8bbd4a3b1f6c0e6bbd1b2f5b8a73", sha)
		if !have[w] {
			t.Errorf("%s: transcript lacks %q", name, w)
		}
	}
}

// restarter starts a stopped server again on its port, as the restart scenario wants it.
func restarter(s *redistest.Server) func() error {
	return func() error {
		s.Restart()
		return nil
	}
}
