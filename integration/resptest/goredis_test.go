package resptest

import (
	"context"
	"errors"
	"fmt"
	"github.com/pavilion-trust/gateway/integration/redistest"
	"os"
	"os/exec"
	"path/filepath"
	"reflect"
	"regexp"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/pavilion-trust/gateway/plugins/resp"
	"github.com/redis/go-redis/v9"
	"github.com/traefik/yaegi/interp"
	"github.com/traefik/yaegi/stdlib/syscall"
	"github.com/traefik/yaegi/stdlib/unsafe"
)

const goRedisImport = "github.com/redis/go-redis/v9"

// TestGoRedisFailsUnderYaegi proves the reason plugins/resp exists: go-redis (the version in
// go.mod) cannot run under Yaegi v0.16.1 set up as Traefik v3.6.12 sets it up, neither by
// default nor with useUnsafe (unsafe and syscall symbols). If it ever can, this test fails,
// so that the hand-written client is reconsidered.
func TestGoRedisFailsUnderYaegi(t *testing.T) {
	goPath, version := moduleGoPath(t, goRedisImport)
	addr := redistest.Start(t).Addr()

	for _, tt := range []struct {
		desc      string
		useUnsafe bool
	}{
		{desc: "Traefik default", useUnsafe: false},
		{desc: "useUnsafe", useUnsafe: true},
	} {
		t.Run(tt.desc, func(t *testing.T) {
			i := newInterpreter(t, goPath)
			if tt.useUnsafe {
				if err := i.Use(unsafe.Symbols); err != nil {
					t.Fatal(err)
				}
				if err := i.Use(syscall.Symbols); err != nil {
					t.Fatal(err)
				}
			}
			err := goRedisUnderYaegi(i, addr)
			if errors.Is(err, errGoPathIncomplete) {
				t.Fatal(err)
			}
			if err != nil {
				msg := err.Error()
				if k := strings.LastIndex(msg, " error: "); k >= 0 {
					msg = msg[k+len(" error: "):] // the innermost cause of a chain of imports
				}
				t.Logf("go-redis %s does not work under Yaegi, as expected: %s", version, msg)
				return
			}
			t.Fatal("go-redis now runs under Yaegi: reconsider the hand-written RESP client")
		})
	}
}

// missingSource finds Yaegi's "package not found" error and the package it names.
var missingSource = regexp.MustCompile(`unable to find source related to: "([^"]+)"`)

// errGoPathIncomplete: the test GOPATH lacks a package, so a failed import proves nothing.
var errGoPathIncomplete = errors.New("the test GOPATH is incomplete, this proves nothing")

// goRedisUnderYaegi imports go-redis in i and runs SET and GET with it. It returns why that
// failed, or nil if go-redis worked. A failure to find a non-standard package means the test
// GOPATH is wrong, not go-redis: that error wraps errGoPathIncomplete.
func goRedisUnderYaegi(i *interp.Interpreter, addr string) error {
	_, err := eval(i, fmt.Sprintf("import redis %q", goRedisImport))
	if err != nil {
		if m := missingSource.FindStringSubmatch(err.Error()); m != nil && strings.Contains(strings.Split(m[1], "/")[0], ".") {
			return fmt.Errorf("%w: it lacks %s: %v", errGoPathIncomplete, m[1], err)
		}
		return fmt.Errorf("import: %w", err)
	}
	if _, err := eval(i, `import "context"`); err != nil {
		return err
	}
	v, err := eval(i, fmt.Sprintf(`func() string {
	c := redis.NewClient(&redis.Options{Addr: %q, Protocol: 2})
	defer c.Close()
	ctx := context.Background()
	if err := c.Set(ctx, "k", "v", 0).Err(); err != nil {
		return "SET: " + err.Error()
	}
	v, err := c.Get(ctx, "k").Result()
	if err != nil {
		return "GET: " + err.Error()
	}
	return v
}()`, addr))
	if err != nil {
		return fmt.Errorf("imported, but running it: %w", err)
	}
	if got := v.Interface(); got != "v" {
		return fmt.Errorf("imported, but its commands fail: %v", got)
	}
	return nil
}

// moduleGoPath returns a GOPATH where each module of pkg's package graph (outside the
// standard library) is linked at src/<module path> to its module cache directory, so that
// Yaegi, which reads GOPATH sources only, finds them; and the version of pkg's module.
func moduleGoPath(t *testing.T, pkg string) (goPath, version string) {
	t.Helper()
	cmd := exec.Command("go", "list", "-deps", "-f", "{{with .Module}}{{.Path}} {{.Version}} {{.Dir}}{{end}}", pkg)
	cmd.Env = append(os.Environ(), "GOFLAGS=-mod=mod")
	out, err := cmd.Output()
	if err != nil {
		var ee *exec.ExitError
		if errors.As(err, &ee) {
			t.Fatalf("go list %s: %v\n%s", pkg, err, ee.Stderr)
		}
		t.Fatalf("go list %s: %v", pkg, err)
	}
	goPath = t.TempDir()
	linked := map[string]string{}
	for _, line := range strings.Split(strings.TrimSpace(string(out)), "\n") {
		fields := strings.SplitN(line, " ", 3)
		if len(fields) != 3 || fields[2] == "" {
			continue
		}
		modPath := fields[0]
		if _, ok := linked[modPath]; ok {
			continue
		}
		linked[modPath] = fields[1]
		link := filepath.Join(goPath, "src", filepath.FromSlash(modPath))
		if err := os.MkdirAll(filepath.Dir(link), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.Symlink(fields[2], link); err != nil {
			t.Fatal(err)
		}
	}
	version, ok := linked[pkg]
	if !ok {
		t.Fatalf("go list did not report the module %s:\n%s", pkg, out)
	}
	t.Logf("GOPATH for Yaegi: %d modules linked from the module cache: %v", len(linked), linked)
	return goPath, version
}

// TestSameRepliesAsGoRedis compares, compiled, resp's replies with go-redis' (RESP2) for the
// same commands: go-redis stays the reference for what a reply means.
func TestSameRepliesAsGoRedis(t *testing.T) {
	addr := redistest.Start(t).Addr()
	ctx := context.Background()
	// Each client has its own DB, so that non-idempotent commands see the same state.
	gr := redis.NewClient(&redis.Options{Addr: addr, Protocol: 2, DB: 1})
	defer gr.Close()
	// A generous command timeout: the test compares replies, and BLPOP blocks for 10ms of
	// them (with the default 100ms, a busy machine made it time out).
	c, err := resp.New(resp.Options{Address: addr, DB: 2, Timeout: 5 * time.Second})
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()

	setup := [][]string{{"SET", "str", "hello"}, {"SET", "bin", "a\r\n\x00b"}, {"RPUSH", "list", "a", "", "c"}, {"SET", "empty", ""}}
	for _, args := range setup {
		if _, err := c.Do(ctx, args...); err != nil {
			t.Fatal(err)
		}
		if err := gr.Do(ctx, toAny(args)...).Err(); err != nil {
			t.Fatal(err)
		}
	}
	tests := [][]string{
		{"GET", "str"}, {"GET", "bin"}, {"GET", "empty"}, {"GET", "missing"}, {"INCR", "n"}, {"DECRBY", "n", "100"},
		{"LRANGE", "list", "0", "-1"}, {"LRANGE", "none", "0", "-1"}, {"BLPOP", "none", "0.01"}, {"PING"},
		{"INCR", "list"}, {"NOSUCH"}, {"HGETALL", "none"},
		{"EVAL", `return {1, "two", {3, {false}}, redis.status_reply("FINE"), redis.error_reply("MYERR inner"), -5}`, "0"},
		{"EVAL", `return redis.error_reply("LIMIT over")`, "0"},
		{"EVAL", `return {KEYS[1], ARGV[1], ARGV[2]}`, "1", "key", "arg", ""},
		{"EVAL", `return false`, "0"},
		{"EVAL", `return true`, "0"},
	}
	for _, args := range tests {
		t.Run(strings.Join(args, " "), func(t *testing.T) {
			v, err := c.Do(ctx, args...)
			ours := fromResp(v, err)
			gv, gerr := gr.Do(ctx, toAny(args)...).Result()
			theirs := fromGoRedis(gv, gerr)
			if ours != theirs {
				t.Fatalf("resp:     %s\ngo-redis: %s", ours, theirs)
			}
		})
	}
}

func toAny(args []string) []any {
	out := make([]any, len(args))
	for i, a := range args {
		out[i] = a
	}
	return out
}

// fromResp and fromGoRedis write replies in one notation. go-redis does not tell simple from
// bulk strings, nor a nil bulk from a nil array: nor does the notation.
func fromResp(v resp.Value, err error) string {
	if re, ok := err.(resp.RedisError); ok {
		return "error " + string(re)
	}
	if err != nil {
		return "failure " + err.Error()
	}
	switch v.Type {
	case resp.TypeError:
		return "error " + v.Str
	case resp.TypeInt:
		return strconv.FormatInt(v.Int, 10)
	case resp.TypeSimple, resp.TypeBulk:
		if v.Null {
			return "nil"
		}
		return strconv.Quote(v.Str)
	case resp.TypeArray:
		if v.Null {
			return "nil"
		}
		parts := make([]string, len(v.Array))
		for i, e := range v.Array {
			parts[i] = fromResp(e, nil)
		}
		return "[" + strings.Join(parts, " ") + "]"
	}
	return fmt.Sprintf("unknown %q", v.Type)
}

func fromGoRedis(v any, err error) string {
	if errors.Is(err, redis.Nil) {
		return "nil"
	}
	var re redis.Error
	if errors.As(err, &re) {
		return "error " + re.Error()
	}
	if err != nil {
		return "failure " + err.Error()
	}
	switch v := v.(type) {
	case nil:
		return "nil"
	case string:
		return strconv.Quote(v)
	case int64:
		return strconv.FormatInt(v, 10)
	case error:
		return "error " + v.Error()
	case []any:
		parts := make([]string, len(v))
		for i, e := range v {
			parts[i] = fromGoRedis(e, nil)
		}
		return "[" + strings.Join(parts, " ") + "]"
	}
	return fmt.Sprintf("unknown %T %v", v, reflect.ValueOf(v))
}
