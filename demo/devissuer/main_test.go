package main

import (
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/pavilion-trust/gateway/demo/devissuer/issuer"
)

func TestDefaultClientsAreValid(t *testing.T) {
	iss, err := issuer.New(issuer.Config{Clients: defaultClients(), KeyBits: 1024})
	if err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		desc, client, wantAud string
	}{
		{desc: "broker-service targets core-broker", client: "broker-service", wantAud: "core-broker"},
		{desc: "no-audience gets account", client: "no-audience", wantAud: "account"},
	}
	for _, tt := range tests {
		t.Run(tt.desc, func(t *testing.T) {
			c, err := iss.Claims(tt.client)
			if err != nil {
				t.Fatal(err)
			}
			if c["aud"] != tt.wantAud {
				t.Errorf("aud = %v, want %s", c["aud"], tt.wantAud)
			}
		})
	}
}

func TestLoadClients(t *testing.T) {
	dir := t.TempDir()
	tests := []struct {
		desc    string
		content string
		wantErr string
		wantID  string
	}{
		{
			desc:    "documented format",
			content: `[{"id":"a","secret":"s","audience":["x"],"scopes":["r"],"realmRoles":["u"],"clientRoles":{"x":["reader"]},"username":"svc-a"}]`,
			wantID:  "a",
		},
		{desc: "field names as in the Go struct", content: `[{"ID":"b","Secret":"s","RealmRoles":["u"]}]`, wantID: "b"},
		{desc: "unknown field", content: `[{"id":"a","secrett":"s"}]`, wantErr: "unknown field"},
		{desc: "empty list", content: `[]`, wantErr: "no clients"},
		{desc: "not JSON", content: `nope`, wantErr: "invalid character"},
	}
	for n, tt := range tests {
		t.Run(tt.desc, func(t *testing.T) {
			path := filepath.Join(dir, strings.Repeat("c", n+1)+".json")
			if err := os.WriteFile(path, []byte(tt.content), 0o600); err != nil {
				t.Fatal(err)
			}
			clients, err := loadClients(path)
			if tt.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tt.wantErr) {
					t.Fatalf("err = %v, want containing %q", err, tt.wantErr)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if len(clients) != 1 || clients[0].ID != tt.wantID || clients[0].Secret != "s" {
				t.Errorf("clients = %+v", clients)
			}
		})
	}
}

func TestFormArg(t *testing.T) {
	tests := []struct {
		desc, name, value, want string
	}{
		{desc: "plain", name: "client_id", value: "broker-service", want: "-d client_id=broker-service"},
		{desc: "needs encoding and quoting", name: "client_secret", value: "a b'&", want: `--data-urlencode 'client_secret=a b'\''&'`},
	}
	for _, tt := range tests {
		t.Run(tt.desc, func(t *testing.T) {
			if got := formArg(tt.name, tt.value); got != tt.want {
				t.Errorf("formArg = %s, want %s", got, tt.want)
			}
		})
	}
}
