// Package yaegicost measures what single Go constructs cost when Yaegi v0.16.1 interprets
// them, the way Traefik runs plugins (stdlib symbols only). It is the cost model behind the
// plugins' hot paths (README, "Cost model"):
//
//	go test -run '^$' -bench . -benchtime 200000x ./yaegicost/
//
// Each case runs its statement in an interpreted loop; "empty loop" is the loop alone.
package yaegicost

import (
	"testing"

	"github.com/traefik/yaegi/interp"
	"github.com/traefik/yaegi/stdlib"
)

const prelude = `package p

import (
	"math/bits"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"sync/atomic"
	"time"
)

type T struct {
	mu sync.Mutex
	h  http.Header
	f  []string
	m  map[string][]byte
	p  *int64
	d  *int32
}

func (t *T) meth() {}

func fn() {}

func fn2(a, b string) (string, error) { return a, nil }

// big has 40 temporaries; it returns at once.
func big(s []string, ok bool) int {
	if ok {
		return 0
	}
	n := len(s[0]) + len(s[1]) + len(s[2]) + len(s[3]) + len(s[4]) + len(s[5]) + len(s[0]) + len(s[1])
	n += len(s[0]) + len(s[1]) + len(s[2]) + len(s[3]) + len(s[4]) + len(s[5]) + len(s[0]) + len(s[1])
	return n
}

// step is a middleware that calls the next handler; gate decides as an interpreted method.
type step struct{ next http.Handler }

func (s *step) ServeHTTP(rw http.ResponseWriter, req *http.Request) { s.next.ServeHTTP(rw, req) }

func wrap(next http.Handler) http.Handler { return &step{next: next} }

type gate struct{ n int }

func (g *gate) admit(rw http.ResponseWriter, req *http.Request) bool { return g.n >= 0 }

var (
	rw         = httptest.NewRecorder()
	req        = httptest.NewRequest("GET", "/", nil)
	end        = http.HandlerFunc(http.NotFound) // compiled
	hop        = wrap(end)
	hop3       = wrap(wrap(wrap(end)))
	g1, g2, g3 = &gate{}, &gate{}, &gate{}
)

var t = &T{
	h: http.Header{"X-Auth-Client": {"svc"}},
	f: []string{"1", "1", "99", "1", "0", "x"},
	m: map[string][]byte{"svc": []byte("+OK\r\n")},
	p: new(int64),
	d: new(int32),
}

var (
	_ = bits.Len64
	_ = strings.Split
	_ = time.Now
	_ = atomic.AddInt64
)
`

var cases = []struct{ name, body string }{
	{"empty loop", ``},
	{"field read t.f", `_ = t.f`},
	{"len(t.f) != 6", `if len(t.f) != 6 { fn() }`},
	{"local int", `x := 1; _ = x`},
	{"slice expr t.f[2:3:3]", `_ = t.f[2:3:3]`},
	{"header read t.h[k]", `_ = t.h["X-Auth-Client"]`},
	{"header write t.h[k] = v", `t.h["X-Other"] = t.f`},
	{"call fn()", `fn()`},
	{"call fn2(a, b) (string, error)", `fn2("a", "b")`},
	{"call big(): 40 temporaries, returns at once", `big(t.f, true)`},
	{"method call t.meth()", `t.meth()`},
	{"compiled time.Now()", `time.Now()`},
	{"compiled atomic.LoadInt32", `atomic.LoadInt32(t.d)`},
	{"compiled atomic.AddInt64", `atomic.AddInt64(t.p, 1)`},
	{"compiled bits.Len64", `_ = bits.Len64(12345)`},
	{"compiled mu.Lock + mu.Unlock", `t.mu.Lock(); t.mu.Unlock()`},
	{"compiled strings.Split", `_ = strings.Split("1 1 99 1 0 x", " ")`},
	{"string(b[1:3])", `b := t.m["svc"]; _ = string(b[1:3])`},
	{"compiled handler end.ServeHTTP(rw, req)", `end.ServeHTTP(rw, req)`},
	{"one interpreted step through http.Handler, then end", `hop.ServeHTTP(rw, req)`},
	{"three steps chained through http.Handler, then end", `hop3.ServeHTTP(rw, req)`},
	{"three interpreted g.admit(rw, req) bool, then end", `if g1.admit(rw, req) && g2.admit(rw, req) && g3.admit(rw, req) { end.ServeHTTP(rw, req) }`},
}

func BenchmarkYaegi(b *testing.B) {
	for _, c := range cases {
		b.Run(c.name, func(b *testing.B) {
			i := interp.New(interp.Options{})
			if err := i.Use(stdlib.Symbols); err != nil {
				b.Fatal(err)
			}
			src := prelude + "func Run(n int) {\n\tfor k := 0; k < n; k++ {\n\t\t" + c.body + "\n\t}\n}\n"
			if _, err := i.Eval(src); err != nil {
				b.Fatalf("%s: %v", c.name, err)
			}
			v, err := i.Eval("p.Run")
			if err != nil {
				b.Fatal(err)
			}
			run, ok := v.Interface().(func(int))
			if !ok {
				b.Fatalf("p.Run is %T", v.Interface())
			}
			run(10)
			b.ReportAllocs()
			b.ResetTimer()
			run(b.N)
		})
	}
}
