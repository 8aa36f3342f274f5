// Command corebroker is a stand-in for the Core Broker behind the gateway: /api/v1/… echoes the
// request as JSON with the instance that answered, /health answers the health-check shape.
// It speaks HTTP/1.1 and cleartext HTTP/2 (h2c), as the gateway's upstream transport does.
package main

import (
	"context"
	"encoding/json"
	"flag"
	"log"
	"net"
	"net/http"
	"os"
	"os/signal"
	"strings"
	"syscall"
	"time"
)

func main() {
	addr := flag.String("addr", envOr("COREBROKER_ADDR", "127.0.0.1:8181"), "listen address")
	name := flag.String("name", envOr("COREBROKER_NAME", "core-broker-1"), "instance name reported in answers")
	flag.Parse()

	srv := &http.Server{Handler: handler(*name), ReadHeaderTimeout: 10 * time.Second}
	srv.Protocols = new(http.Protocols)
	srv.Protocols.SetHTTP1(true)
	srv.Protocols.SetUnencryptedHTTP2(true)
	ln, err := net.Listen("tcp", *addr)
	if err != nil {
		log.Fatalf("corebroker: %v", err)
	}
	log.Printf("corebroker %s listening on http://%s", *name, ln.Addr())
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	go func() {
		<-ctx.Done()
		shutdown, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		srv.Shutdown(shutdown)
	}()
	if err := srv.Serve(ln); err != nil && err != http.ErrServerClosed {
		log.Fatalf("corebroker: %v", err)
	}
}

// handler answers /health and echoes everything under /api/.
func handler(name string) http.Handler {
	mux := http.NewServeMux()
	mux.HandleFunc("/health", func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "application/health+json")
		json.NewEncoder(w).Encode(map[string]string{"status": "pass", "serviceId": name})
	})
	mux.HandleFunc("/api/", func(w http.ResponseWriter, r *http.Request) {
		headers := map[string]string{}
		for k, v := range r.Header {
			headers[k] = strings.Join(v, ", ")
		}
		w.Header().Set("Content-Type", "application/json")
		json.NewEncoder(w).Encode(map[string]any{
			"instance": name, "method": r.Method, "path": r.URL.Path, "query": r.URL.RawQuery,
			"proto": r.Proto, "headers": headers,
		})
	})
	return mux
}

func envOr(name, def string) string {
	if v := os.Getenv(name); v != "" {
		return v
	}
	return def
}
