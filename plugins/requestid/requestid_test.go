package requestid

import (
	"context"
	"net/http"
	"net/http/httptest"
	"regexp"
	"strings"
	"sync"
	"testing"
)

var (
	incomingRE  = regexp.MustCompile(`^[A-Za-z0-9._:-]{8,128}$`)
	generatedRE = regexp.MustCompile(`^[0-9a-f]{32}$`)
)

// seen records the ID header that reached the next handler.
type seen struct{ values []string }

func newTest(t testing.TB, mutate func(*Config)) (http.Handler, *seen) {
	t.Helper()
	cfg := CreateConfig()
	if mutate != nil {
		mutate(cfg)
	}
	s := &seen{}
	h, err := New(context.Background(), http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		s.values = r.Header.Values(strings.TrimSpace(cfg.Header))
		w.WriteHeader(http.StatusTeapot)
	}), cfg, "test")
	if err != nil {
		t.Fatal(err)
	}
	return h, s
}

func TestValidID(t *testing.T) {
	for _, tc := range []struct {
		id   string
		want bool
	}{
		{"abcdefgh", true},
		{"0f8fad5b-d9cb-469f-a165-70867728950e", true},
		{"svc.a:b_c-d", true},
		{strings.Repeat("a", 128), true},
		{"abcdefg", false},
		{strings.Repeat("a", 129), false},
		{"", false},
		{"abcd efgh", false},
		{"abcdefgh\r\nX-Evil: 1", false},
		{"abcdefgh/", false},
		{"abcdéfgh", false},
		{"abcdefgh\x00", false},
		{"\xffabcdefgh", false},
	} {
		if got := validID(tc.id); got != tc.want {
			t.Errorf("validID(%q) = %t, want %t", tc.id, got, tc.want)
		}
		if got := incomingRE.MatchString(tc.id); got != tc.want {
			t.Errorf("test case %q disagrees with the regexp", tc.id)
		}
	}
}

func TestCompileErrors(t *testing.T) {
	for _, tc := range []struct {
		desc, header, want string
	}{
		{"space", "X Bad", `requestid "test": header: invalid header name "X Bad"`},
		{"empty", " ", `requestid "test": header: required`},
		{"colon", "X-Id:", `header: invalid header name "X-Id:"`},
		{"reserved, any case", "authorization", `header: "Authorization" is reserved`},
		{"reserved forwarding header", "x-forwarded-for", `header: "X-Forwarded-For" is reserved`},
	} {
		t.Run(tc.desc, func(t *testing.T) {
			cfg := CreateConfig()
			cfg.Header = tc.header
			_, err := New(context.Background(), http.NotFoundHandler(), cfg, "test")
			if err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("error %v, want it to contain %q", err, tc.want)
			}
		})
	}
	if _, err := New(context.Background(), http.NotFoundHandler(), nil, "test"); err == nil {
		t.Fatal("nil config accepted")
	}
}

func TestHeaderNameCanonical(t *testing.T) {
	h, s := newTest(t, func(c *Config) { c.Header = " x-correlation-id " })
	r := httptest.NewRequest(http.MethodGet, "/", nil)
	r.Header.Set("X-Correlation-Id", "client-id-0001")
	w := httptest.NewRecorder()
	h.ServeHTTP(w, r)
	if len(s.values) != 1 || s.values[0] != "client-id-0001" {
		t.Fatalf("upstream saw %q", s.values)
	}
	if got := w.Header().Get("X-Correlation-Id"); got != "client-id-0001" {
		t.Fatalf("response header %q", got)
	}
	if got := FromRequest(r, "x-correlation-id"); got != "client-id-0001" {
		t.Fatalf("FromRequest = %q", got)
	}
}

// TestGeneratedIDsUnique draws IDs from concurrent requests: all distinct, all 32 hex digits.
func TestGeneratedIDsUnique(t *testing.T) {
	const workers, each = 4, 25000
	cfg := CreateConfig()
	h, err := New(context.Background(), http.HandlerFunc(func(http.ResponseWriter, *http.Request) {}), cfg, "test")
	if err != nil {
		t.Fatal(err)
	}
	ids := make([][]string, workers)
	var wg sync.WaitGroup
	for g := 0; g < workers; g++ {
		wg.Add(1)
		go func(g int) {
			defer wg.Done()
			r := httptest.NewRequest(http.MethodGet, "/", nil)
			w := httptest.NewRecorder()
			for i := 0; i < each; i++ {
				delete(r.Header, DefaultHeader)
				h.ServeHTTP(w, r)
				ids[g] = append(ids[g], r.Header.Get(DefaultHeader))
			}
		}(g)
	}
	wg.Wait()
	all := map[string]bool{}
	for _, list := range ids {
		for _, id := range list {
			if !generatedRE.MatchString(id) {
				t.Fatalf("generated ID %q is not 32 lowercase hex digits", id)
			}
			if all[id] {
				t.Fatalf("ID %q generated twice", id)
			}
			all[id] = true
		}
	}
	if len(all) != workers*each {
		t.Fatalf("%d distinct IDs, want %d", len(all), workers*each)
	}
}
