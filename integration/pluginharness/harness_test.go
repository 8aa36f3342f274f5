package pluginharness_test

import (
	"context"
	"fmt"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"runtime"
	"strings"
	"testing"

	"github.com/pavilion-trust/gateway/integration/pluginharness"
	"github.com/pavilion-trust/gateway/integration/pluginharness/testdata/src/example.com/testplugin"
)

// testpluginImport is the test plugin's import path through the repository symlink that
// Interpreted sets up.
const testpluginImport = pluginharness.RootModule + "/integration/pluginharness/testdata/src/example.com/testplugin"

// builders returns the compiled test plugin, the test plugin interpreted from a plain GOPATH,
// and the test plugin interpreted through Interpreted's symlinked repository.
func builders(t *testing.T) []pluginharness.Builder {
	t.Helper()

	symlinked := pluginharness.Interpreted(t, testpluginImport)
	symlinked.Name = "yaegi-symlinked-repo"

	return []pluginharness.Builder{
		pluginharness.Compiled(testplugin.CreateConfig, testplugin.New),
		pluginharness.InterpretedGoPath(t, "testdata", "example.com/testplugin"),
		symlinked,
	}
}

const defaults = `{"greeting":"hello","enabled":true,"retries":3,"max_body_bytes":1024,"origins":null,"headers":{},"rules":null}`

// TestDecoding pins down how Traefik decodes a plugin configuration (see docs/yaegi.md, "How
// Traefik hands over the configuration"), and that it is the same compiled and interpreted.
func TestDecoding(t *testing.T) {
	tests := []struct {
		desc    string
		cfg     map[string]any
		want    string // the decoded Config, as JSON
		wantErr string // a substring of the error of Builder.New
	}{
		{desc: "nil config keeps the defaults", cfg: nil, want: defaults},
		{desc: "empty config keeps the defaults", cfg: map[string]any{}, want: defaults},
		{
			desc: "every scalar as a string, as the file provider gives them",
			cfg: map[string]any{
				"greeting": "hi",
				"enabled":  "false",
				"retries":  "5",
				"origins":  []any{"https://a.example", "https://b.example"},
				"headers":  map[string]any{"X-A": "1", "X-B": "two"},
				"rules": []any{
					map[string]any{"path": "/x", "methods": []any{"GET", "POST"}, "priority": "2"},
					map[string]any{"path": "/y"},
				},
			},
			want: `{"greeting":"hi","enabled":false,"retries":5,"max_body_bytes":1024,` +
				`"origins":["https://a.example","https://b.example"],"headers":{"X-A":"1","X-B":"two"},` +
				`"rules":[{"path":"/x","methods":["GET","POST"],"priority":2},{"path":"/y","methods":null,"priority":0}]}`,
		},
		{
			desc: `a comma-separated string splits into a list, untrimmed`,
			cfg:  map[string]any{"origins": "a, b", "rules": []any{map[string]any{"methods": "GET,POST"}}},
			want: `{"greeting":"hello","enabled":true,"retries":3,"max_body_bytes":1024,"origins":["a"," b"],"headers":{},` +
				`"rules":[{"path":"","methods":["GET","POST"],"priority":0}]}`,
		},
		{
			desc: "an empty string is an empty list",
			cfg:  map[string]any{"origins": ""},
			want: `{"greeting":"hello","enabled":true,"retries":3,"max_body_bytes":1024,"origins":[],"headers":{},"rules":null}`,
		},
		{
			desc: "keys match field names case-insensitively; json tags are ignored",
			cfg:  map[string]any{"GREETING": "loud", "MaxBodyBytes": "7", "max_body_bytes": "9"},
			want: `{"greeting":"loud","enabled":true,"retries":3,"max_body_bytes":7,"origins":null,"headers":{},"rules":null}`,
		},
		{
			desc: "a key named like a json tag only is dropped silently",
			cfg:  map[string]any{"max_body_bytes": "9"},
			want: defaults,
		},
		{
			desc: "unknown keys are dropped silently",
			cfg:  map[string]any{"greting": "typo", "nested": map[string]any{"a": "b"}},
			want: defaults,
		},
		{
			desc: `a bool "0" is false; an empty list stays empty`,
			cfg:  map[string]any{"enabled": "0", "rules": []any{}},
			want: `{"greeting":"hello","enabled":false,"retries":3,"max_body_bytes":1024,"origins":null,"headers":{},"rules":[]}`,
		},
		{
			desc:    `a bool "yes" fails`,
			cfg:     map[string]any{"enabled": "yes"},
			wantErr: `failed to decode configuration: 1 error(s) decoding:` + "\n\n" + `* cannot parse 'Enabled' as bool: strconv.ParseBool: parsing "yes": invalid syntax`,
		},
		{
			desc:    `an int "abc" fails`,
			cfg:     map[string]any{"retries": "abc"},
			wantErr: `cannot parse 'Retries' as int: strconv.ParseInt: parsing "abc": invalid syntax`,
		},
		{
			desc:    `an int "2.5" fails`,
			cfg:     map[string]any{"retries": "2.5"},
			wantErr: `cannot parse 'Retries' as int`,
		},
		{
			desc:    "New's error comes back as the error",
			cfg:     map[string]any{"retries": "-1"},
			wantErr: `testplugin "test-mw": retries: must be >= 0, got -1`,
		},
	}

	for _, b := range builders(t) {
		t.Run(b.Name, func(t *testing.T) {
			for _, test := range tests {
				t.Run(test.desc, func(t *testing.T) {
					h, err := b.New(context.Background(), http.NotFoundHandler(), test.cfg, "test-mw")
					if test.wantErr != "" {
						if err == nil {
							t.Fatalf("New succeeded, want an error containing %q", test.wantErr)
						}
						if !strings.Contains(err.Error(), test.wantErr) {
							t.Fatalf("error = %q, want it to contain %q", err, test.wantErr)
						}
						if h != nil {
							t.Errorf("handler = %v, want nil with an error", h)
						}
						return
					}
					if err != nil {
						t.Fatalf("New: %v", err)
					}

					rec := httptest.NewRecorder()
					h.ServeHTTP(rec, httptest.NewRequest(http.MethodGet, "/config", nil))
					if got := rec.Body.String(); got != test.want {
						t.Errorf("decoded config:\n got %s\nwant %s", got, test.want)
					}
				})
			}
		})
	}
}

// TestBoolSpellings: strconv.ParseBool spellings are accepted.
func TestBoolSpellings(t *testing.T) {
	for _, b := range builders(t) {
		t.Run(b.Name, func(t *testing.T) {
			for _, v := range []string{"1", "TRUE", "true", "T"} {
				h, err := b.New(context.Background(), http.NotFoundHandler(), map[string]any{"enabled": v}, "x")
				if err != nil {
					t.Fatalf("enabled %q: %v", v, err)
				}
				rec := httptest.NewRecorder()
				h.ServeHTTP(rec, httptest.NewRequest(http.MethodGet, "/config", nil))
				if !strings.Contains(rec.Body.String(), `"enabled":true`) {
					t.Errorf("enabled %q decoded to %s", v, rec.Body)
				}
			}
		})
	}
}

func TestHandlerServesHTTP(t *testing.T) {
	next := http.HandlerFunc(func(rw http.ResponseWriter, req *http.Request) {
		rw.WriteHeader(http.StatusTeapot)
		_, _ = fmt.Fprintf(rw, "next saw %s %s", req.URL.Path, req.Header.Get("X-Greeting"))
	})

	for _, b := range builders(t) {
		t.Run(b.Name, func(t *testing.T) {
			h, err := b.New(context.Background(), next, map[string]any{"greeting": "bonjour"}, "greeter")
			if err != nil {
				t.Fatalf("New: %v", err)
			}

			// A real server, so the handler runs on net/http's goroutines as under Traefik.
			srv := httptest.NewServer(h)
			t.Cleanup(srv.Close)
			client := srv.Client()

			resp, err := client.Get(srv.URL + "/anything")
			if err != nil {
				t.Fatal(err)
			}
			body := readAll(t, resp)
			if resp.StatusCode != http.StatusTeapot || body != "next saw /anything bonjour" {
				t.Errorf("got %d %q", resp.StatusCode, body)
			}

			resp, err = client.Get(srv.URL + "/config")
			if err != nil {
				t.Fatal(err)
			}
			body = readAll(t, resp)
			if got := resp.Header.Get("X-Plugin-Name"); got != "greeter" {
				t.Errorf("X-Plugin-Name = %q, want the middleware name", got)
			}
			if !strings.Contains(body, `"greeting":"bonjour"`) {
				t.Errorf("config = %s", body)
			}
		})
	}
}

func readAll(t *testing.T, resp *http.Response) string {
	t.Helper()
	defer resp.Body.Close()

	var sb strings.Builder
	buf := make([]byte, 4096)
	for {
		n, err := resp.Body.Read(buf)
		sb.Write(buf[:n])
		if err != nil {
			break
		}
	}
	return sb.String()
}

func TestBoth(t *testing.T) {
	bs := pluginharness.Both(t, testpluginImport, testplugin.CreateConfig, testplugin.New)
	if len(bs) != 2 || bs[0].Name != "compiled" || bs[1].Name != "yaegi" {
		t.Fatalf("Both = %+v, want [compiled yaegi]", bs)
	}
	for _, b := range bs {
		if _, err := b.New(context.Background(), http.NotFoundHandler(), nil, "x"); err != nil {
			t.Errorf("%s: %v", b.Name, err)
		}
	}
}

func TestCompiledRejectsNonFunctions(t *testing.T) {
	tests := []struct {
		desc         string
		createConfig any
		newFn        any
		wantErr      string
	}{
		{desc: "nil CreateConfig", createConfig: nil, newFn: testplugin.New, wantErr: "CreateConfig is not a function"},
		{desc: "string New", createConfig: testplugin.CreateConfig, newFn: "New", wantErr: "New is not a function"},
		{desc: "CreateConfig with arguments", createConfig: func(int) *testplugin.Config { return nil }, newFn: testplugin.New, wantErr: "CreateConfig takes 1 arguments"},
		{desc: "New with wrong arity", createConfig: testplugin.CreateConfig, newFn: func() {}, wantErr: "New takes 0 arguments"},
		{
			desc:         "New returning no handler",
			createConfig: testplugin.CreateConfig,
			newFn: func(context.Context, http.Handler, *testplugin.Config, string) (any, error) {
				return 42, nil
			},
			wantErr: "invalid handler type: int",
		},
	}

	for _, test := range tests {
		t.Run(test.desc, func(t *testing.T) {
			_, err := pluginharness.Compiled(test.createConfig, test.newFn).New(context.Background(), http.NotFoundHandler(), nil, "x")
			if err == nil || !strings.Contains(err.Error(), test.wantErr) {
				t.Fatalf("error = %v, want %q", err, test.wantErr)
			}
		})
	}
}

func TestImportFailureFailsTheTest(t *testing.T) {
	tests := []struct {
		desc    string
		run     func(tb testing.TB)
		wantMsg []string
	}{
		{
			desc:    "missing dependency",
			run:     func(tb testing.TB) { pluginharness.InterpretedGoPath(tb, "testdata", "example.com/broken") },
			wantMsg: []string{`failed to import plugin code "example.com/broken"`, "example.com/doesnotexist"},
		},
		{
			desc:    "yaegi panics while importing",
			run:     func(tb testing.TB) { pluginharness.InterpretedGoPath(tb, "testdata", "example.com/panics") },
			wantMsg: []string{`yaegi panicked while importing "example.com/panics"`, "index out of range"},
		},
		{
			desc:    "missing plugin in the repository",
			run:     func(tb testing.TB) { pluginharness.Interpreted(tb, pluginharness.RootModule+"/plugins/doesnotexist") },
			wantMsg: []string{"failed to import plugin code", "plugins/doesnotexist"},
		},
	}

	for _, test := range tests {
		t.Run(test.desc, func(t *testing.T) {
			ft := &fatalRecorder{TB: t}
			done := make(chan struct{})
			go func() {
				defer close(done)
				test.run(ft)
			}()
			<-done

			if ft.msg == "" {
				t.Fatal("the import failure did not fail the test")
			}
			for _, want := range test.wantMsg {
				if !strings.Contains(ft.msg, want) {
					t.Errorf("Fatalf message %q does not contain %q", ft.msg, want)
				}
			}
		})
	}
}

// fatalRecorder records Fatalf and ends its goroutine, like testing.T.Fatalf, without failing
// the real test.
type fatalRecorder struct {
	testing.TB
	msg string
}

func (f *fatalRecorder) Helper() {}

func (f *fatalRecorder) Fatalf(format string, args ...any) {
	f.msg = fmt.Sprintf(format, args...)
	runtime.Goexit()
}

func TestRepoRoot(t *testing.T) {
	root := pluginharness.RepoRoot()
	if !filepath.IsAbs(root) {
		t.Fatalf("RepoRoot() = %q, not absolute", root)
	}
	for _, f := range []string{"go.mod", filepath.Join("integration", "go.mod"), "plugins"} {
		if _, err := os.Stat(filepath.Join(root, f)); err != nil {
			t.Errorf("RepoRoot() = %q: %v", root, err)
		}
	}
}

// TestOneInterpreterPerCall: middlewares built by one interpreted Builder share its package
// state (one interpreter per plugin, as in Traefik); another Interpreted call starts afresh.
func TestOneInterpreterPerCall(t *testing.T) {
	built := func(t *testing.T, b pluginharness.Builder) string {
		t.Helper()
		h, err := b.New(context.Background(), http.NotFoundHandler(), nil, "x")
		if err != nil {
			t.Fatal(err)
		}
		rec := httptest.NewRecorder()
		h.ServeHTTP(rec, httptest.NewRequest(http.MethodGet, "/config", nil))
		return rec.Header().Get("X-Built")
	}

	first := pluginharness.Interpreted(t, testpluginImport)
	if got := built(t, first); got != "1" {
		t.Errorf("first middleware: built = %s, want 1", got)
	}
	if got := built(t, first); got != "2" {
		t.Errorf("second middleware of the same Builder: built = %s, want 2", got)
	}

	second := pluginharness.Interpreted(t, testpluginImport)
	if got := built(t, second); got != "1" {
		t.Errorf("first middleware of another Builder: built = %s, want 1", got)
	}
}
