// Command certs creates a development CA and a server certificate signed by it, for the demo
// and local HTTPS (`make certs`), with Go's crypto/x509: no openssl needed.
//
// Usage:
//
//	go run ./demo/certs [-out DIR] [-hosts localhost,gateway.localhost,127.0.0.1,::1] [-force]
//
// DIR defaults to $PAVILION_CACHE/certs (else ~/.cache/pavilion-gateway/certs). Valid files
// already there are kept, so a CA you chose to trust survives later runs; -force replaces them.
// Files: ca.crt (trust it: curl --cacert), ca.key, tls.crt and tls.key (what Traefik serves).
package main

import (
	"flag"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"time"

	"github.com/pavilion-trust/gateway/demo/certs/devca"
)

func main() {
	if err := run(os.Args[1:]); err != nil {
		fmt.Fprintln(os.Stderr, "certs:", err)
		os.Exit(1)
	}
}

func run(args []string) error {
	fs := flag.NewFlagSet("certs", flag.ContinueOnError)
	out := fs.String("out", defaultDir(), "output directory")
	hosts := fs.String("hosts", strings.Join(devca.DefaultHosts, ","), "comma-separated DNS names and IPs of the server certificate")
	validity := fs.Duration("validity", 90*24*time.Hour, "server certificate validity (the CA gets ten times as long)")
	force := fs.Bool("force", false, "replace existing files even if they are still valid")
	if err := fs.Parse(args); err != nil {
		return err
	}
	if fs.NArg() > 0 {
		return fmt.Errorf("unexpected arguments: %v", fs.Args())
	}
	var list []string
	for _, h := range strings.Split(*hosts, ",") {
		if h = strings.TrimSpace(h); h != "" {
			list = append(list, h)
		}
	}
	f, err := devca.Generate(*out, devca.Options{Hosts: list, Validity: *validity, Force: *force})
	if err != nil {
		return err
	}
	verb := "kept valid"
	if f.Created {
		verb = "created"
	}
	fmt.Printf("certs: %s development CA %s and server certificate %s (key %s) for %s\n",
		verb, f.CACert, f.Cert, f.Key, strings.Join(list, ", "))
	return nil
}

func defaultDir() string {
	if c := os.Getenv("PAVILION_CACHE"); c != "" {
		return filepath.Join(c, "certs")
	}
	if home, err := os.UserHomeDir(); err == nil {
		return filepath.Join(home, ".cache", "pavilion-gateway", "certs")
	}
	return "certs"
}
