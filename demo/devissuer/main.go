// Command devissuer runs a development OIDC issuer that looks like a Keycloak
// realm (see package issuer). It is for demos and local development only: it
// has no users, keeps keys in memory, and POST /admin/rotate (rotate the
// signing key) is unauthenticated.
//
// Usage:
//
//	go run ./demo/devissuer [-addr 127.0.0.1:8180] [-realm pavilion] [-lifetime 5m] [-clients clients.json] [-base-url URL]
//
// DEVISSUER_ADDR, when set, replaces the default of -addr (an explicit -addr
// flag still wins). DEVISSUER_BASE_URL likewise for -base-url.
//
// The -clients file holds a JSON array of clients, for example:
//
//	[{"id": "broker-service", "secret": "broker-service-secret",
//	  "audience": ["core-broker"], "scopes": ["broker:read"],
//	  "realmRoles": ["broker-user"], "clientRoles": {"core-broker": ["reader"]}}]
package main

import (
	"bytes"
	"context"
	"encoding/json"
	"flag"
	"fmt"
	"io"
	"net/url"
	"os"
	"os/signal"
	"strings"
	"syscall"

	"github.com/pavilion-trust/gateway/demo/devissuer/issuer"
)

func main() {
	if err := run(os.Args[1:], os.Stdout, os.Stderr); err != nil {
		fmt.Fprintln(os.Stderr, "devissuer:", err)
		os.Exit(1)
	}
}

// defaultClients are used when -clients is not given.
func defaultClients() []issuer.Client {
	return []issuer.Client{
		{
			ID:          "broker-service",
			Secret:      "broker-service-secret",
			Audience:    []string{"core-broker"},
			Scopes:      []string{"broker:read", "broker:write"},
			RealmRoles:  []string{"broker-user"},
			ClientRoles: map[string][]string{"core-broker": {"reader"}},
		},
		{
			// No audience: tokens carry aud "account" like a Keycloak client
			// without an audience mapper, so an audience check must reject them.
			ID:         "no-audience",
			Secret:     "no-audience-secret",
			Scopes:     []string{"broker:read"},
			RealmRoles: []string{"broker-user"},
		},
	}
}

func envOr(key, def string) string {
	if v := os.Getenv(key); v != "" {
		return v
	}
	return def
}

func run(args []string, stdout, stderr io.Writer) error {
	fs := flag.NewFlagSet("devissuer", flag.ContinueOnError)
	fs.SetOutput(stderr)
	addr := fs.String("addr", envOr("DEVISSUER_ADDR", "127.0.0.1:8180"), "listen address (env DEVISSUER_ADDR)")
	realm := fs.String("realm", issuer.DefaultRealm, "realm name")
	lifetime := fs.Duration("lifetime", issuer.DefaultTokenLifetime, "access token lifetime")
	clientsPath := fs.String("clients", "", "JSON file with an array of clients (default: broker-service and no-audience)")
	baseURL := fs.String("base-url", envOr("DEVISSUER_BASE_URL", ""),
		"externally visible base URL, e.g. http://devissuer:8180 (env DEVISSUER_BASE_URL; default http://<addr>)")
	if err := fs.Parse(args); err != nil {
		return err
	}
	if fs.NArg() > 0 {
		return fmt.Errorf("unexpected arguments: %v", fs.Args())
	}

	clients := defaultClients()
	if *clientsPath != "" {
		var err error
		if clients, err = loadClients(*clientsPath); err != nil {
			return err
		}
	}
	if *baseURL != "" {
		if u, err := url.Parse(*baseURL); err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
			return fmt.Errorf("invalid -base-url %q: want http(s)://host[:port]", *baseURL)
		}
	}

	iss, err := issuer.New(issuer.Config{Realm: *realm, Clients: clients, TokenLifetime: *lifetime})
	if err != nil {
		return err
	}
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	if err := iss.Start(*addr); err != nil {
		return err
	}
	if *baseURL != "" {
		iss.SetBaseURL(*baseURL)
	}

	fmt.Fprintf(stdout, "devissuer: issuer %s (listening on %s); get a token: %s\n",
		iss.IssuerURL(), iss.Addr(), curlExample(iss, clients))

	<-ctx.Done()
	return iss.Stop()
}

func curlExample(iss *issuer.Issuer, clients []issuer.Client) string {
	tokenURL := iss.IssuerURL() + "/protocol/openid-connect/token"
	for _, c := range clients {
		if c.Secret != "" {
			return "curl -s -d grant_type=client_credentials " + formArg("client_id", c.ID) + " " +
				formArg("client_secret", c.Secret) + " " + tokenURL
		}
	}
	return "(no confidential client configured) curl -s " + iss.JWKSURL()
}

// formArg renders a curl form argument, URL-encoding and shell-quoting values
// that are not plainly safe.
func formArg(name, value string) string {
	for _, r := range value {
		if !(r >= 'a' && r <= 'z' || r >= 'A' && r <= 'Z' || r >= '0' && r <= '9' || r == '-' || r == '_' || r == '.' || r == ':') {
			return "--data-urlencode '" + strings.ReplaceAll(name+"="+value, "'", `'\''`) + "'"
		}
	}
	return "-d " + name + "=" + value
}

func loadClients(path string) ([]issuer.Client, error) {
	b, err := os.ReadFile(path)
	if err != nil {
		return nil, err
	}
	var clients []issuer.Client
	dec := json.NewDecoder(bytes.NewReader(b))
	dec.DisallowUnknownFields()
	if err := dec.Decode(&clients); err != nil {
		return nil, fmt.Errorf("%s: %w", path, err)
	}
	if len(clients) == 0 {
		return nil, fmt.Errorf("%s: no clients", path)
	}
	return clients, nil
}
