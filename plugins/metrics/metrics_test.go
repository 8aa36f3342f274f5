package metrics

import (
	"bytes"
	"strings"
	"sync/atomic"
	"testing"
	"time"
)

func TestExposition(t *testing.T) {
	c := Counter("test_requests_total", "Requests.\nSecond line.", []string{"middleware", `a"b\c`, "result", "ok"})
	if c != Counter("test_requests_total", "ignored", []string{"middleware", `a"b\c`, "result", "ok"}) {
		t.Fatal("same name and labels give another counter")
	}
	atomic.AddInt64(c, 3)
	g := Gauge("test_keys", "Keys.", []string{"middleware", "m"})
	atomic.StoreInt64(g, 2)
	h := NewHistogram("test_seconds", "Time.", 20, 3, []string{"middleware", "m"}) // 1.05ms, 2.1ms, 4.2ms
	h.Observe(500 * time.Microsecond)
	h.Observe(1500 * time.Microsecond)
	h.Observe(time.Second)
	var b bytes.Buffer
	if err := Write(&b); err != nil {
		t.Fatal(err)
	}
	for _, want := range []string{
		"# HELP test_requests_total Requests.\\nSecond line.\n# TYPE test_requests_total counter\n" +
			`test_requests_total{middleware="a\"b\\c",result="ok"} 3` + "\n",
		"# TYPE test_keys gauge\ntest_keys{middleware=\"m\"} 2\n",
		"# TYPE test_seconds histogram\n" +
			`test_seconds_bucket{middleware="m",le="0.001048576"} 1` + "\n" +
			`test_seconds_bucket{middleware="m",le="0.002097152"} 2` + "\n" +
			`test_seconds_bucket{middleware="m",le="0.004194304"} 2` + "\n" +
			`test_seconds_bucket{middleware="m",le="+Inf"} 3` + "\n" +
			`test_seconds_sum{middleware="m"} 1.002` + "\n" +
			`test_seconds_count{middleware="m"} 3` + "\n",
	} {
		if !strings.Contains(b.String(), want) {
			t.Errorf("missing\n%s\nin\n%s", want, b.String())
		}
	}
}

func TestSampler(t *testing.T) {
	s := NewSampler("p", "m", "e", 2)
	now := time.Unix(100, 0)
	for i, want := range []bool{true, true, false, false} {
		if ok, _ := s.Allow(now); ok != want {
			t.Fatalf("line %d: %v", i, ok)
		}
	}
	ok, dropped := s.Allow(now.Add(time.Second))
	if !ok || dropped != 2 {
		t.Fatalf("next second: %v, %d suppressed", ok, dropped)
	}
	if s != NewSampler("p", "m", "e", 5) {
		t.Fatal("same middleware gets another sampler")
	}
}
