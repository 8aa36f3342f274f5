package echo_test

import (
	"context"
	"io"
	"net"
	"net/http"
	"testing"
	"time"

	"github.com/pavilion-trust/gateway/integration/echo"
)

func get(t *testing.T, client *http.Client, url string, header http.Header) (int, []byte) {
	t.Helper()

	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()

	req, err := http.NewRequestWithContext(ctx, http.MethodGet, url, nil)
	if err != nil {
		t.Fatal(err)
	}
	for k, v := range header {
		req.Header[k] = v
	}

	resp, err := client.Do(req)
	if err != nil {
		t.Fatalf("GET %s: %v", url, err)
	}
	defer resp.Body.Close()

	body, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatalf("GET %s: reading body: %v", url, err)
	}

	return resp.StatusCode, body
}

func TestEcho(t *testing.T) {
	srv := echo.Start(t, "alpha")

	h1 := &http.Client{Transport: &http.Transport{}}
	t.Cleanup(h1.CloseIdleConnections)

	protocols := new(http.Protocols)
	protocols.SetUnencryptedHTTP2(true)
	h2c := &http.Client{Transport: &http.Transport{Protocols: protocols}}
	t.Cleanup(h2c.CloseIdleConnections)

	tests := []struct {
		desc      string
		client    *http.Client
		wantProto string
	}{
		{desc: "HTTP/1.1", client: h1, wantProto: "HTTP/1.1"},
		{desc: "h2c", client: h2c, wantProto: "HTTP/2.0"},
	}

	for _, test := range tests {
		t.Run(test.desc, func(t *testing.T) {
			header := http.Header{"X-Multi": {"one", "two"}, "Authorization": {"Bearer abc"}}
			status, body := get(t, test.client, srv.URL+"/some/path?a=1&b=2", header)
			if status != http.StatusOK {
				t.Fatalf("status = %d, want 200 (body %s)", status, body)
			}

			seen := echo.Decode(t, body)
			if seen.Instance != "alpha" || seen.Method != http.MethodGet || seen.Path != "/some/path" ||
				seen.Query != "a=1&b=2" || seen.Proto != test.wantProto {
				t.Errorf("seen = %+v", seen)
			}
			if _, port, _ := net.SplitHostPort(seen.Host); seen.Host != srv.URL[len("http://"):] || port == "" {
				t.Errorf("host = %q, want %q", seen.Host, srv.URL)
			}
			if got := seen.Headers.Values("X-Multi"); len(got) != 2 || got[0] != "one" || got[1] != "two" {
				t.Errorf("X-Multi = %q", got)
			}
			if got := seen.Headers.Get("Authorization"); got != "Bearer abc" {
				t.Errorf("Authorization = %q", got)
			}
		})
	}

	t.Run("health", func(t *testing.T) {
		status, body := get(t, h1, srv.URL+"/health", nil)
		if status != http.StatusOK || string(body) != `{"status":"pass"}` {
			t.Errorf("health = %d %s", status, body)
		}
	})

	t.Run("stop is idempotent and closes the port", func(t *testing.T) {
		other := echo.Start(t, "beta")
		other.Stop()
		other.Stop()

		client := &http.Client{Transport: &http.Transport{}, Timeout: 2 * time.Second}
		resp, err := client.Get(other.URL + "/")
		if err == nil {
			resp.Body.Close()
			t.Fatal("request to a stopped server succeeded")
		}
	})
}

func TestDecodeRejectsForeignBodies(t *testing.T) {
	ft := &fakeTB{TB: t}
	func() {
		defer func() { _ = recover() }()
		echo.Decode(ft, []byte(`{"status":"pass"}`))
	}()
	if !ft.failed {
		t.Error("Decode accepted a body without an instance")
	}
}

// fakeTB records Fatalf instead of failing the real test.
type fakeTB struct {
	testing.TB
	failed bool
}

func (f *fakeTB) Helper() {}

func (f *fakeTB) Fatalf(string, ...any) {
	f.failed = true
	panic("fatal")
}
