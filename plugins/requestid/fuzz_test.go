package requestid

import (
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
)

// FuzzValidID: an incoming ID is kept exactly when it is the only value and matches
// ^[A-Za-z0-9._:-]{8,128}$; whatever came in, the upstream and the response carry one and the
// same valid ID; an ID generated is 32 lowercase hex digits and never one generated before.
func FuzzValidID(f *testing.F) {
	for _, s := range []string{
		"abcdefgh", "abcdefg", "0f8fad5b-d9cb-469f-a165-70867728950e", strings.Repeat("z", 128),
		strings.Repeat("z", 129), "abc defgh", "abcdefgh\r\n", "abcdéfgh", "\x00\x00\x00\x00\x00\x00\x00\x00", "",
	} {
		f.Add(s, false, true)
		f.Add(s, true, true)
		f.Add(s, false, false)
	}
	strict, strictSeen := newTest(f, func(c *Config) { c.TrustIncoming = false })
	trusting, trustingSeen := newTest(f, nil)
	generated := map[string]bool{} // the IDs generated so far in this process (the first 65536)
	f.Fuzz(func(t *testing.T, in string, twice, trust bool) {
		accepted := validID(in)
		if accepted != incomingRE.MatchString(in) {
			t.Fatalf("validID(%q) = %t, the regexp says %t", in, accepted, !accepted)
		}
		h := strict
		s := strictSeen
		if trust {
			h = trusting
			s = trustingSeen
		}
		r := httptest.NewRequest(http.MethodGet, "/", nil)
		r.Header[DefaultHeader] = []string{in}
		if twice {
			r.Header[DefaultHeader] = []string{in, in}
		}
		w := httptest.NewRecorder()
		h.ServeHTTP(w, r)
		if len(s.values) != 1 {
			t.Fatalf("upstream saw %d values %q", len(s.values), s.values)
		}
		out := s.values[0]
		if !incomingRE.MatchString(out) {
			t.Fatalf("upstream ID %q is not valid", out)
		}
		if trust && !twice && accepted {
			if out != in {
				t.Fatalf("valid ID %q replaced by %q", in, out)
			}
		} else {
			if out == in || !generatedRE.MatchString(out) {
				t.Fatalf("in %q (trust %t, twice %t): upstream got %q, want a fresh generated ID", in, trust, twice, out)
			}
			if generated[out] {
				t.Fatalf("in %q (trust %t, twice %t): generated ID %q given before", in, trust, twice, out)
			}
			if len(generated) < 1<<16 {
				generated[out] = true
			}
		}
		if resp := w.Header().Values(DefaultHeader); len(resp) != 1 || resp[0] != out {
			t.Fatalf("response header %q, upstream %q", resp, out)
		}
	})
}
