package plugintest

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/pavilion-trust/gateway/integration/echo"
	"github.com/pavilion-trust/gateway/integration/pluginharness"
	"github.com/pavilion-trust/gateway/integration/traefiktest"
	"github.com/pavilion-trust/gateway/plugins/requestid"
)

const ridImport = "github.com/pavilion-trust/gateway/plugins/requestid"

var (
	ridValidRE     = regexp.MustCompile(`^[A-Za-z0-9._:-]{8,128}$`)
	ridGeneratedRE = regexp.MustCompile(`^[0-9a-f]{32}$`)
)

func ridBuilders(t testing.TB) []pluginharness.Builder {
	return pluginharness.Both(t, ridImport, requestid.CreateConfig, requestid.New)
}

// ridNext stands for what runs after the middleware: it records the request header and
// answers with status (200 when 0), after setting a header of its own.
type ridNext struct {
	header string
	status int
	called bool
	seen   []string
}

func (n *ridNext) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	n.called = true
	n.seen = append([]string(nil), r.Header.Values(n.header)...)
	w.Header().Set("Content-Type", "application/json")
	if n.status != 0 {
		w.WriteHeader(n.status)
		_, _ = w.Write([]byte(`{"error":"unauthorized"}`))
		return
	}
	w.WriteHeader(http.StatusOK)
}

type ridCase struct {
	desc     string
	config   map[string]any // as Traefik's file provider hands it over: scalars are strings
	header   string         // header the ID travels in; default X-Request-Id
	incoming []string       // values the client sends in header; nil: none
	status   int            // the next handler's answer; 0: 200
	keep     bool           // the client's single value must reach the upstream unchanged
}

func ridCases() []ridCase {
	uuid := "0f8fad5b-d9cb-469f-a165-70867728950e"
	return []ridCase{
		{desc: "generated when absent"},
		{desc: "kept when valid (UUID)", incoming: []string{uuid}, keep: true},
		{desc: "kept: all allowed characters", incoming: []string{"Az09._:-svc"}, keep: true},
		{desc: "kept: 8 characters", incoming: []string{"abcdefgh"}, keep: true},
		{desc: "kept: 128 characters", incoming: []string{strings.Repeat("a", 128)}, keep: true},
		{desc: "replaced: too short", incoming: []string{"abcdefg"}},
		{desc: "replaced: too long", incoming: []string{strings.Repeat("a", 129)}},
		{desc: "replaced: empty", incoming: []string{""}},
		{desc: "replaced: space", incoming: []string{"abcd efgh"}},
		{desc: "replaced: slash and quote", incoming: []string{`abcdefgh/"x"`}},
		{desc: "replaced: non-ASCII", incoming: []string{"abcdéfghij"}},
		{desc: "replaced: CR LF", incoming: []string{"abcdefgh\r\nX-Admin: 1"}},
		{desc: "replaced: two headers", incoming: []string{uuid, uuid}},
		{desc: "replaced: two different headers", incoming: []string{uuid, "abcdefgh"}},
		{desc: "trustIncoming false replaces a valid ID", config: map[string]any{"trustIncoming": "false"}, incoming: []string{uuid}},
		{desc: "trustIncoming true (string) keeps", config: map[string]any{"trustIncoming": "true"}, incoming: []string{uuid}, keep: true},
		{desc: "custom header name (any case)", config: map[string]any{"header": "x-correlation-id"}, header: "X-Correlation-Id"},
		{desc: "custom header keeps a valid ID", config: map[string]any{"header": "X-Correlation-ID"}, header: "X-Correlation-Id",
			incoming: []string{uuid}, keep: true},
		{desc: "on an error answer of the next handler (401)", status: http.StatusUnauthorized},
		{desc: "on an error answer, kept ID", status: http.StatusUnauthorized, incoming: []string{uuid}, keep: true},
		{desc: "on an error answer, replaced ID", status: http.StatusForbidden, incoming: []string{"bad id"}},
	}
}

func TestRequestIDCases(t *testing.T) {
	for _, b := range ridBuilders(t) {
		t.Run(b.Name, func(t *testing.T) {
			for _, tc := range ridCases() {
				t.Run(tc.desc, func(t *testing.T) {
					header := tc.header
					if header == "" {
						header = "X-Request-Id"
					}
					next := &ridNext{header: header, status: tc.status}
					h, err := b.New(context.Background(), next, tc.config, "rid")
					if err != nil {
						t.Fatal(err)
					}
					r := httptest.NewRequest(http.MethodGet, "/api/v1/things", nil)
					if tc.incoming != nil {
						r.Header[header] = append([]string(nil), tc.incoming...)
					}
					r.Header.Set("X-Other", "untouched")
					w := httptest.NewRecorder()
					h.ServeHTTP(w, r)
					ridCheck(t, tc, next, w, r, header)
				})
			}
		})
	}
}

func ridCheck(t *testing.T, tc ridCase, next *ridNext, w *httptest.ResponseRecorder, r *http.Request, header string) {
	t.Helper()
	want := tc.status
	if want == 0 {
		want = http.StatusOK
	}
	if !next.called || w.Code != want {
		t.Fatalf("next called %t, status %d; want called, %d", next.called, w.Code, want)
	}
	if len(next.seen) != 1 {
		t.Fatalf("upstream saw %s = %q, want exactly one value", header, next.seen)
	}
	id := next.seen[0]
	switch {
	case tc.keep && id != tc.incoming[0]:
		t.Fatalf("upstream saw %q, want the client's %q", id, tc.incoming[0])
	case !tc.keep && !ridGeneratedRE.MatchString(id):
		t.Fatalf("upstream saw %q, want a generated ID (32 lowercase hex digits)", id)
	case !tc.keep && len(tc.incoming) > 0 && id == tc.incoming[0]:
		t.Fatalf("the client's ID %q was kept", id)
	}
	if !ridValidRE.MatchString(id) {
		t.Fatalf("upstream ID %q does not match %s", id, ridValidRE)
	}
	if got := w.Header().Values(header); len(got) != 1 || got[0] != id {
		t.Fatalf("response %s = %q, want exactly the upstream's %q", header, got, id)
	}
	if got := w.Header().Get("Content-Type"); got != "application/json" {
		t.Fatalf("the next handler's own response header was lost: Content-Type %q", got)
	}
	if r.Header.Get("X-Other") != "untouched" {
		t.Fatal("another request header was changed")
	}
	if header != "X-Request-Id" && r.Header.Get("X-Request-Id") != "" {
		t.Fatal("X-Request-Id set although another header is configured")
	}
	if got := requestid.FromRequest(r, header); got != id {
		t.Fatalf("FromRequest = %q, want %q", got, id)
	}
}

func TestRequestIDConfigErrors(t *testing.T) {
	for _, tc := range []struct {
		desc   string
		config map[string]any
		want   string
	}{
		{"header with a space", map[string]any{"header": "X Bad"}, `requestid "rid": header: invalid header name "X Bad"`},
		{"header with a colon", map[string]any{"header": "X-Id:"}, `requestid "rid": header: invalid header name "X-Id:"`},
		{"empty header", map[string]any{"header": ""}, `requestid "rid": header: required`},
		{"reserved: Authorization", map[string]any{"header": "authorization"}, `requestid "rid": header: "Authorization" is reserved`},
		{"reserved: Host", map[string]any{"header": "Host"}, `header: "Host" is reserved`},
		{"reserved: Content-Length", map[string]any{"header": "content-length"}, `header: "Content-Length" is reserved`},
		{"reserved: Cookie", map[string]any{"header": "Cookie"}, `header: "Cookie" is reserved`},
		{"reserved: X-Forwarded-For", map[string]any{"header": "X-Forwarded-For"}, `header: "X-Forwarded-For" is reserved`},
		{"trustIncoming yes fails decoding", map[string]any{"trustIncoming": "yes"}, `cannot parse 'TrustIncoming' as bool`},
	} {
		for _, b := range ridBuilders(t) {
			t.Run(tc.desc+"/"+b.Name, func(t *testing.T) {
				h, err := b.New(context.Background(), &ridNext{}, tc.config, "rid")
				if err == nil {
					t.Fatalf("accepted (%T)", h)
				}
				if !strings.Contains(err.Error(), tc.want) {
					t.Fatalf("error %q, want it to contain %q", err, tc.want)
				}
			})
		}
	}
}

// TestRequestIDUnique: IDs generated under Yaegi are distinct and well-formed too.
func TestRequestIDUnique(t *testing.T) {
	for _, b := range ridBuilders(t) {
		t.Run(b.Name, func(t *testing.T) {
			next := &ridNext{header: "X-Request-Id"}
			h, err := b.New(context.Background(), next, nil, "rid")
			if err != nil {
				t.Fatal(err)
			}
			seen := map[string]bool{}
			r := httptest.NewRequest(http.MethodGet, "/", nil)
			w := httptest.NewRecorder()
			for i := 0; i < 2000; i++ {
				delete(r.Header, "X-Request-Id")
				h.ServeHTTP(w, r)
				id := next.seen[0]
				if !ridGeneratedRE.MatchString(id) || seen[id] {
					t.Fatalf("ID %d: %q malformed or repeated", i, id)
				}
				seen[id] = true
			}
		})
	}
}

// BenchmarkRequestID measures the plugin's own per-request cost, compiled and interpreted:
// "generated" (no client ID) and "kept" (a valid client UUID).
func BenchmarkRequestID(b *testing.B) {
	kept := []string{"0f8fad5b-d9cb-469f-a165-70867728950e"}
	for _, bl := range ridBuilders(b) {
		for _, mode := range []string{"generated", "kept"} {
			b.Run(bl.Name+"/"+mode, func(b *testing.B) {
				h, err := bl.New(context.Background(), http.HandlerFunc(func(http.ResponseWriter, *http.Request) {}), nil, "bench")
				if err != nil {
					b.Fatal(err)
				}
				r := httptest.NewRequest(http.MethodGet, "/api/v1/x", nil)
				w := httptest.NewRecorder()
				b.ReportAllocs()
				b.ResetTimer()
				for i := 0; i < b.N; i++ {
					if mode == "kept" {
						r.Header["X-Request-Id"] = kept
					} else {
						delete(r.Header, "X-Request-Id")
					}
					h.ServeHTTP(w, r)
				}
			})
		}
	}
}

// TestRequestIDThroughTraefik loads requestid as a local plugin into a real Traefik: the
// upstream and the client see the same ID, also on errors of a later middleware (403 from
// ipAllowList) and of the proxy (502, dead upstream); a broken configuration disables only its
// router; and the access log is checked for the ID.
func TestRequestIDThroughTraefik(t *testing.T) {
	up := echo.Start(t, "core-broker-1")
	dead := fmt.Sprintf("http://127.0.0.1:%d", traefiktest.FreePort(t))
	router := func(name, prefix, service string, mws ...string) string {
		return fmt.Sprintf("    %s:\n      entryPoints: [web]\n      rule: PathPrefix(`%s`)\n      middlewares: [%s]\n      service: %s\n",
			name, prefix, strings.Join(mws, ", "), service)
	}
	service := func(name, url string) string {
		return fmt.Sprintf("    %s:\n      loadBalancer:\n        servers:\n          - url: %q\n", name, url)
	}
	dyn := "http:\n  routers:\n" +
		router("ok", "/ok/", "upstream", "rid") +
		router("custom", "/custom/", "upstream", "ridcustom") +
		router("denied", "/denied/", "upstream", "rid", "deny") +
		router("dead", "/dead/", "dead", "rid") +
		router("broken", "/broken/", "upstream", "ridbroken") +
		"  middlewares:\n" +
		pluginMiddleware("rid", "requestid", map[string]any{"trustIncoming": "true"}) + // an empty map would render as null, which Traefik refuses
		pluginMiddleware("ridcustom", "requestid", map[string]any{"header": "X-Correlation-Id", "trustIncoming": "false"}) +
		pluginMiddleware("ridbroken", "requestid", map[string]any{"header": "X Bad"}) +
		"    deny:\n      ipAllowList:\n        sourceRange: [\"192.0.2.1/32\"]\n" +
		"  services:\n" + service("upstream", up.URL) + service("dead", dead)

	gw := traefiktest.Start(t, traefiktest.Options{
		Dynamic:     dyn,
		Plugins:     map[string]string{"requestid": ridImport},
		WaitRouters: []string{"ok@file", "custom@file", "denied@file", "dead@file"},
	})
	client := &http.Client{Timeout: 10 * time.Second}
	do := func(t *testing.T, path string, hdr map[string]string) (*http.Response, []byte) {
		t.Helper()
		req, _ := http.NewRequest(http.MethodGet, gw.URL+path, nil)
		for k, v := range hdr {
			req.Header.Set(k, v)
		}
		res, err := client.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		defer res.Body.Close()
		body, _ := io.ReadAll(res.Body)
		return res, body
	}
	// upstreamID checks a 200 from the echo upstream and returns the one ID it saw, which must
	// also be the one on the response.
	upstreamID := func(t *testing.T, res *http.Response, body []byte, header string) string {
		t.Helper()
		if res.StatusCode != http.StatusOK {
			t.Fatalf("status %d: %s", res.StatusCode, body)
		}
		seen := echo.Decode(t, body)
		got := seen.Headers.Values(header)
		if len(got) != 1 || !ridValidRE.MatchString(got[0]) {
			t.Fatalf("upstream saw %s = %q, want one valid ID", header, got)
		}
		if resp := res.Header.Values(header); len(resp) != 1 || resp[0] != got[0] {
			t.Fatalf("response %s = %q, upstream saw %q", header, resp, got[0])
		}
		return got[0]
	}

	var generated string
	t.Run("generated: upstream and response carry the same ID", func(t *testing.T) {
		res, body := do(t, "/ok/generated", nil)
		generated = upstreamID(t, res, body, "X-Request-Id")
		if !ridGeneratedRE.MatchString(generated) {
			t.Fatalf("ID %q is not 32 lowercase hex digits", generated)
		}
	})
	t.Run("valid client ID kept", func(t *testing.T) {
		res, body := do(t, "/ok/kept", map[string]string{"X-Request-Id": "client-0001:abc"})
		if id := upstreamID(t, res, body, "X-Request-Id"); id != "client-0001:abc" {
			t.Fatalf("client ID replaced by %q", id)
		}
	})
	t.Run("invalid client ID replaced", func(t *testing.T) {
		res, body := do(t, "/ok/replaced", map[string]string{"X-Request-Id": "short"})
		if id := upstreamID(t, res, body, "X-Request-Id"); !ridGeneratedRE.MatchString(id) {
			t.Fatalf("ID %q is not a generated one", id)
		}
	})
	t.Run("custom header, trustIncoming false", func(t *testing.T) {
		res, body := do(t, "/custom/x", map[string]string{"X-Correlation-Id": "client-0001:abc"})
		if id := upstreamID(t, res, body, "X-Correlation-Id"); !ridGeneratedRE.MatchString(id) {
			t.Fatalf("ID %q is not a generated one", id)
		}
	})
	for _, tc := range []struct{ desc, path string }{
		{"403 from a later middleware (ipAllowList)", "/denied/x"},
		{"502 from the proxy (upstream down)", "/dead/x"},
	} {
		t.Run(tc.desc, func(t *testing.T) {
			res, body := do(t, tc.path, nil)
			if res.StatusCode == http.StatusOK || strings.Contains(string(body), "core-broker-1") {
				t.Fatalf("status %d, body %s: want an error", res.StatusCode, body)
			}
			if got := res.Header.Values("X-Request-Id"); len(got) != 1 || !ridGeneratedRE.MatchString(got[0]) {
				t.Fatalf("status %d: response X-Request-Id = %q, want one generated ID", res.StatusCode, got)
			}
		})
	}
	t.Run("broken config: route not served, error names the option", func(t *testing.T) {
		res, body := do(t, "/broken/x", nil)
		if res.StatusCode == http.StatusOK || strings.Contains(string(body), "core-broker-1") {
			t.Fatalf("route with a broken requestid config was served: %d %s", res.StatusCode, body)
		}
		want := `requestid \"ridbroken@file\": header: invalid header name \"X Bad\"`
		deadline := time.Now().Add(10 * time.Second)
		for !strings.Contains(gw.Logs(), want) && time.Now().Before(deadline) {
			time.Sleep(100 * time.Millisecond)
		}
		if !strings.Contains(gw.Logs(), want) {
			t.Fatalf("Traefik's log does not contain %s", want)
		}
	})
	t.Run("access log", func(t *testing.T) {
		if generated == "" {
			t.Fatal("no generated ID")
		}
		entry := ridAccessLogEntry(t, filepath.Join(gw.Dir, "access.log"), "/ok/generated")
		var idFields []string
		for k := range entry {
			if strings.EqualFold(k, "request_X-Request-Id") || strings.EqualFold(k, "downstream_X-Request-Id") {
				idFields = append(idFields, k)
				if entry[k] != generated {
					t.Fatalf("access log %s = %v, want %q", k, entry[k], generated)
				}
			}
		}
		if len(idFields) != 2 {
			t.Fatalf("access log entry lacks request_X-Request-Id and downstream_X-Request-Id (traefiktest keeps X-Request-Id); keys: %v", ridKeys(entry))
		}
	})
}

// ridAccessLogEntry returns the JSON access log entry of the request to path, waiting up to 10
// seconds for Traefik to write it.
func ridAccessLogEntry(t *testing.T, file, path string) map[string]any {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for {
		data, err := os.ReadFile(file)
		if err != nil && !os.IsNotExist(err) {
			t.Fatal(err)
		}
		sc := bufio.NewScanner(bytes.NewReader(data))
		sc.Buffer(make([]byte, 0, 64<<10), 1<<20)
		for sc.Scan() {
			var entry map[string]any
			if json.Unmarshal(sc.Bytes(), &entry) == nil && entry["RequestPath"] == path {
				return entry
			}
		}
		if time.Now().After(deadline) {
			t.Fatalf("no access log entry for %s in %s:\n%s", path, file, data)
		}
		time.Sleep(100 * time.Millisecond)
	}
}

func ridKeys(m map[string]any) []string {
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	return keys
}
