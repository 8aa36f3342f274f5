package plugintest

import (
	"os"
	"testing"

	"github.com/pavilion-trust/gateway/integration/pluginharness"
	"github.com/traefik/yaegi/interp"
	"github.com/traefik/yaegi/stdlib"
)

// refcountScenario uses plugins/refcount as the plugins do (values of an interpreted type,
// held as any and asserted back) and reports what it saw.
const refcountScenario = `package main

import (
	"context"
	"fmt"
	"sync/atomic"
	"time"

	"github.com/pavilion-trust/gateway/plugins/refcount"
)

type thing struct {
	id     int
	closed int32
}

func closeThing(v any) {
	atomic.AddInt32(&v.(*thing).closed, 1)
}

var made int

func create() (any, error) {
	made++
	return &thing{id: made}, nil
}

func wait(cond func() bool) bool {
	for n := 0; n < 200; n++ {
		if cond() {
			return true
		}
		time.Sleep(10 * time.Millisecond)
	}
	return false
}

func Scenario() string {
	s := refcount.New(closeThing)
	ctx1, cancel1 := context.WithCancel(context.Background())
	ctx2, cancel2 := context.WithCancel(context.Background())
	a, err := s.Acquire(ctx1, "k", create)
	if err != nil {
		return err.Error()
	}
	b, err := s.Acquire(ctx2, "k", create)
	if err != nil {
		return err.Error()
	}
	ta := a.(*thing)
	tb := b.(*thing)
	out := fmt.Sprintf("same=%v made=%d", ta == tb, made)
	cancel1()
	wait(func() bool {
		_, users := s.Count("k")
		return users == 1
	})
	out += fmt.Sprintf(" closedAfterOne=%d", atomic.LoadInt32(&ta.closed))
	cancel2()
	wait(func() bool { return atomic.LoadInt32(&ta.closed) > 0 })
	time.Sleep(20 * time.Millisecond)
	values, _ := s.Count("")
	out += fmt.Sprintf(" closed=%d held=%d", atomic.LoadInt32(&ta.closed), values)
	ctx3, cancel3 := context.WithCancel(context.Background())
	defer cancel3()
	c, _ := s.Acquire(ctx3, "k", create)
	out += fmt.Sprintf(" next=%d", c.(*thing).id)
	return out
}
`

// TestRefcountInterpreted: the sharing helper behind the Redis pools and the JWKS caches
// keeps its contract under Yaegi: two users of a key get one value, the value is closed once,
// when the last user's context ends, and the key is then free for a new value.
func TestRefcountInterpreted(t *testing.T) {
	i := interp.New(interp.Options{GoPath: pluginharness.RepoGoPath(t), Env: os.Environ()})
	if err := i.Use(stdlib.Symbols); err != nil {
		t.Fatal(err)
	}
	if _, err := i.Eval(refcountScenario); err != nil {
		t.Fatalf("eval: %v", err)
	}
	v, err := i.Eval("main.Scenario()")
	if err != nil {
		t.Fatalf("run: %v", err)
	}
	const want = "same=true made=1 closedAfterOne=0 closed=1 held=0 next=2"
	if got := v.String(); got != want {
		t.Fatalf("under Yaegi: %s\nwant         %s", got, want)
	}
}
