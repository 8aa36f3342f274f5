package ratelimit

import (
	"testing"
	"time"
)

func TestLocalLimiter(t *testing.T) {
	set := newLimitSet([]limitSpec{{requests: 3, window: time.Second}, {requests: 5, window: time.Minute}}, AlgorithmSlidingWindow, nil)
	l := newLocalLimiter(100)
	t0 := time.Unix(1699999200, 0) // a window start for both (a whole hour)
	var got []bool
	for i := 0; i < 4; i++ {
		got = append(got, l.allow("a", set, t0.Add(time.Duration(i)*10*time.Millisecond)).allowed)
	}
	if got[0] != true || got[1] != true || got[2] != true || got[3] != false {
		t.Fatalf("first window: %v", got)
	}
	d := l.allow("a", set, t0.Add(50*time.Millisecond))
	if d.allowed || d.index != 0 || d.remaining != 0 || d.retry < 1 {
		t.Fatalf("refusal: %+v", d)
	}
	// Another client has its own budget.
	if !l.allow("b", set, t0).allowed {
		t.Fatal("client b refused")
	}
	// 1.5s later: previous window (3) weighs half: 1.5 + 0 + 1 <= 3: allowed, then 2.5+1 > 3.
	if !l.allow("a", set, t0.Add(1500*time.Millisecond)).allowed {
		t.Fatal("refused at 1.5s")
	}
	d = l.allow("a", set, t0.Add(1500*time.Millisecond))
	if d.allowed {
		t.Fatal("allowed a 5th request at 1.5s")
	}
	// The minute limit: 4 counted so far (refusals are not counted), one more passes, then the
	// minute limit refuses even though the second limit has room.
	if !l.allow("a", set, t0.Add(3*time.Second)).allowed {
		t.Fatal("refused at 3s")
	}
	d = l.allow("a", set, t0.Add(5*time.Second))
	if d.allowed || d.index != 1 {
		t.Fatalf("minute limit: %+v", d)
	}
	if d.retry != 67 { // (60s - 5s) to the next window, then 60s * (1 - 4/5)
		t.Fatalf("minute limit retry %d", d.retry)
	}
}

func TestLocalLimiterBounded(t *testing.T) {
	set := newLimitSet([]limitSpec{{requests: 1, window: time.Second}}, AlgorithmSlidingWindow, nil)
	l := newLocalLimiter(10)
	now := time.Unix(1700000000, 0)
	for i := 0; i < 1000; i++ {
		l.allow(string(rune('A'+i%50))+string(rune(i)), set, now)
	}
	if n := localClients(l); n > 10 {
		t.Fatalf("%d clients held, max 10", n)
	}
}

func TestBreaker(t *testing.T) {
	now := time.Unix(1700000000, 0)
	b := newBreaker(func() time.Time { return now })
	if b.isDown() || !b.tryProbe() {
		t.Fatal("a new breaker is up")
	}
	if !b.fail(false) {
		t.Fatal("first failure must report the failover")
	}
	if b.fail(false) {
		t.Fatal("second failure must not report it again")
	}
	if !b.isDown() || b.tryProbe() {
		t.Fatal("no probe before the backoff")
	}
	now = now.Add(time.Second)
	if !b.tryProbe() {
		t.Fatal("probe after 1s")
	}
	if b.tryProbe() {
		t.Fatal("one probe at a time")
	}
	// Failed probes double the backoff up to 30s.
	want := []time.Duration{2, 4, 8, 16, 30, 30}
	for _, w := range want {
		b.fail(true)
		backoff, at := breakerState(b)
		if backoff != w*time.Second || !at.Equal(now.Add(backoff)) {
			t.Fatalf("backoff %s at %s, want %ds", backoff, at, w)
		}
		now = at
		if !b.tryProbe() {
			t.Fatal("probe refused after the backoff")
		}
	}
	// A probe whose client went away lets another one try.
	b.release(true)
	if !b.tryProbe() {
		t.Fatal("released probe not given back")
	}
	if !b.succeed() || b.isDown() {
		t.Fatal("success must bring Redis back, once")
	}
	if b.succeed() {
		t.Fatal("recovery reported twice")
	}
	if !b.fail(false) {
		t.Fatal("a new outage is reported again")
	}
	if backoff, _ := breakerState(b); backoff != time.Second {
		t.Fatalf("backoff restarts at 1s, got %s", backoff)
	}
}

// localClients is the number of clients l holds.
func localClients(l *localLimiter) int {
	l.mu.Lock()
	defer l.mu.Unlock()
	return len(l.cur) + len(l.prev)
}

// breakerState returns b's current backoff and the time of its next probe.
func breakerState(b *breaker) (time.Duration, time.Time) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.backoff, b.retryAt
}
