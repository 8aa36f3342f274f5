package main

import (
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"testing"
)

func TestHandler(t *testing.T) {
	h := handler("cb-test")
	for _, tc := range []struct {
		desc, path string
		status     int
		want       string
	}{
		{desc: "echo under /api/", path: "/api/v1/accounts?x=1", status: 200, want: "cb-test"},
		{desc: "health", path: "/health", status: 200, want: "pass"},
		{desc: "nothing else", path: "/admin", status: 404},
	} {
		t.Run(tc.desc, func(t *testing.T) {
			r := httptest.NewRequest(http.MethodGet, tc.path, nil)
			r.Header.Set("X-Auth-Client", "svc")
			w := httptest.NewRecorder()
			h.ServeHTTP(w, r)
			if w.Code != tc.status {
				t.Fatalf("status %d, want %d", w.Code, tc.status)
			}
			if tc.want == "" {
				return
			}
			var body map[string]any
			if err := json.Unmarshal(w.Body.Bytes(), &body); err != nil {
				t.Fatal(err)
			}
			if body["instance"] != tc.want && body["status"] != tc.want {
				t.Fatalf("body %v lacks %q", body, tc.want)
			}
			if tc.path != "/health" {
				if hdr := body["headers"].(map[string]any)["X-Auth-Client"]; hdr != "svc" {
					t.Fatalf("echoed X-Auth-Client %v", hdr)
				}
			}
		})
	}
}
