package refcount

import (
	"context"
	"errors"
	"sync"
	"sync/atomic"
	"testing"
	"time"
)

// thing is a shared value that counts how often it was closed.
type thing struct {
	id     int
	closed int32
}

func newSet() *Set {
	return New(func(v any) { atomic.AddInt32(&v.(*thing).closed, 1) })
}

// maker returns a create function that makes things numbered 1, 2, … and counts its calls.
func maker(made *int32) func() (any, error) {
	return func() (any, error) {
		n := atomic.AddInt32(made, 1)
		return &thing{id: int(n)}, nil
	}
}

// waitFor polls cond for up to two seconds: releases run on goroutines of their own.
func waitFor(t *testing.T, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(2 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(2 * time.Millisecond)
	}
}

func closedCount(v any) int32 { return atomic.LoadInt32(&v.(*thing).closed) }

func TestAcquireShares(t *testing.T) {
	s := newSet()
	var made int32
	ctx1, cancel1 := context.WithCancel(context.Background())
	ctx2, cancel2 := context.WithCancel(context.Background())
	defer cancel1()
	defer cancel2()
	a, err := s.Acquire(ctx1, "k", maker(&made))
	if err != nil {
		t.Fatal(err)
	}
	b, err := s.Acquire(ctx2, "k", maker(&made))
	if err != nil {
		t.Fatal(err)
	}
	if a != b || made != 1 {
		t.Fatalf("two users of one key: values %v and %v, %d made; want one", a, b, made)
	}
	other, err := s.Acquire(ctx1, "other", maker(&made))
	if err != nil {
		t.Fatal(err)
	}
	if other == a {
		t.Fatal("another key got the same value")
	}
	if values, users := s.Count("k"); values != 1 || users != 2 {
		t.Fatalf(`Count("k") = %d values, %d users; want 1, 2`, values, users)
	}
	if values, users := s.Count(""); values != 2 || users != 3 {
		t.Fatalf(`Count("") = %d values, %d users; want 2, 3`, values, users)
	}
}

func TestLastUserCloses(t *testing.T) {
	s := newSet()
	var made int32
	ctx1, cancel1 := context.WithCancel(context.Background())
	ctx2, cancel2 := context.WithCancel(context.Background())
	defer cancel2()
	v, _ := s.Acquire(ctx1, "k", maker(&made))
	_, _ = s.Acquire(ctx2, "k", maker(&made))

	cancel1()
	waitFor(t, "the first user's release", func() bool {
		_, users := s.Count("k")
		return users == 1
	})
	if n := closedCount(v); n != 0 {
		t.Fatalf("closed %d times while a user is left", n)
	}

	cancel2()
	waitFor(t, "the value to be closed", func() bool { return closedCount(v) > 0 })
	if values, _ := s.Count(""); values != 0 {
		t.Fatalf("%d values held after the last user left", values)
	}
	time.Sleep(20 * time.Millisecond)
	if n := closedCount(v); n != 1 {
		t.Fatalf("closed %d times, want once", n)
	}

	// The key is free again: the next user gets a new value.
	ctx3, cancel3 := context.WithCancel(context.Background())
	defer cancel3()
	w, _ := s.Acquire(ctx3, "k", maker(&made))
	if w == v || w.(*thing).id != 2 {
		t.Fatalf("after the close, got %v (made %d); want a new value", w, made)
	}
}

func TestDoneContextReleases(t *testing.T) {
	s := newSet()
	var made int32
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	v, err := s.Acquire(ctx, "k", maker(&made))
	if err != nil || v == nil {
		t.Fatalf("Acquire with a done ctx: %v, %v", v, err)
	}
	waitFor(t, "the value to be closed", func() bool { return closedCount(v) == 1 })
	if values, users := s.Count(""); values != 0 || users != 0 {
		t.Fatalf("%d values, %d users held", values, users)
	}
}

func TestCreateError(t *testing.T) {
	s := newSet()
	boom := errors.New("boom")
	v, err := s.Acquire(context.Background(), "k", func() (any, error) { return nil, boom })
	if err != boom || v != nil {
		t.Fatalf("got %v, %v; want nil, boom", v, err)
	}
	if values, users := s.Count(""); values != 0 || users != 0 {
		t.Fatalf("a failed create left %d values, %d users", values, users)
	}
}

func TestConcurrentUsers(t *testing.T) {
	s := newSet()
	var made int32
	const n = 50
	ctx, cancel := context.WithCancel(context.Background())
	values := make([]any, n)
	var wg sync.WaitGroup
	for i := 0; i < n; i++ {
		wg.Add(1)
		go func(i int) {
			defer wg.Done()
			values[i], _ = s.Acquire(ctx, "k", maker(&made))
		}(i)
	}
	wg.Wait()
	for i := 1; i < n; i++ {
		if values[i] != values[0] {
			t.Fatalf("user %d got another value", i)
		}
	}
	cancel()
	waitFor(t, "the value to be closed", func() bool { return closedCount(values[0]) == 1 })
	time.Sleep(20 * time.Millisecond)
	if made != 1 || closedCount(values[0]) != 1 {
		t.Fatalf("made %d, closed %d; want 1, 1", made, closedCount(values[0]))
	}
}

func TestNilClose(t *testing.T) {
	s := New(nil)
	ctx, cancel := context.WithCancel(context.Background())
	_, _ = s.Acquire(ctx, "k", func() (any, error) { return 1, nil })
	cancel()
	waitFor(t, "the release", func() bool {
		values, _ := s.Count("")
		return values == 0
	})
}
