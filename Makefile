# Pavilion Trust Broker API gateway. `make help` lists the targets.
SHELL    := /bin/bash
GO       ?= go
# A count, not a duration: with go1.26 a duration (-fuzztime=10s) can fail at its deadline with
# "context deadline exceeded" and no failing input (golang/go#75804, fixed in go1.27).
FUZZTIME ?= 200000x
CACHE    ?= $(HOME)/.cache/pavilion-gateway
export PAVILION_CACHE := $(CACHE)

.PHONY: help test lint unit fuzz integration traefik demo bench vendor certs deps

help: ## list the targets
	@grep -E '^[a-z-]+:.*## ' $(MAKEFILE_LIST) | sed 's/:.*## /\t/' | column -t -s "$$(printf '\t')"

test: lint unit fuzz integration soak-short ## everything CI runs: lint, unit (compiled), fuzz, Yaegi and Traefik integration tests, a 60-second soak
	@echo "make test: all suites passed"

lint: ## gofmt, go vet (both modules), vendor/ matches go.mod
	@files=$$(git ls-files '*.go' | grep -v '^vendor/'); out=$$(gofmt -l $$files); \
	  if [ -n "$$out" ]; then echo "gofmt would change: $$out"; exit 1; fi
	$(GO) vet ./...
	cd integration && $(GO) vet ./...
	@tmp=$$(mktemp -d); $(GO) mod vendor -o $$tmp/vendor && diff -r vendor $$tmp/vendor >/dev/null \
	  || { echo "vendor/ is stale: run 'make vendor' and commit"; rm -rf $$tmp; exit 1; }; rm -rf $$tmp

deps: ## find or install (apt-get, as root) the system packages the tests need: .ci/deps
	@bash .ci/deps test

unit: deps ## compiled unit tests of the plugins, the issuer and the demo programs (race detector on)
	$(GO) test -race -count=1 ./...

fuzz: ## every fuzz target of the plugins, FUZZTIME inputs each (default 200000x, ~5-10 s)
	@set -e; for pkg in $$($(GO) list ./plugins/...); do \
	  for f in $$($(GO) test -list '^Fuzz' $$pkg | grep '^Fuzz' || true); do \
	    echo "fuzz $$pkg $$f ($(FUZZTIME))"; \
	    $(GO) test -run='^$$' -fuzz="^$$f$$" -fuzztime=$(FUZZTIME) $$pkg; \
	  done; done

integration: deps traefik ## plugin tables compiled + under Yaegi, Yaegi guard, real Traefik end to end
	cd integration && TRAEFIK_BIN=$$(bash ../.ci/build-traefik) $(GO) test -count=1 -timeout 30m ./...

traefik: ## build the pinned Traefik (with dashboard) into $(CACHE) and print its path
	@bash .ci/build-traefik

vendor: ## refresh vendor/ after changing go.mod
	$(GO) mod tidy && $(GO) mod vendor

certs: ## development CA + server certificate for HTTPS (Go crypto/x509) into $(CACHE)/certs (CERTS_DIR to change)
	$(GO) run ./demo/certs -out $(or $(CERTS_DIR),$(CACHE)/certs)

demo: traefik ## run the gateway demo (Ctrl-C stops everything it started)
	@bash demo/run

bench: traefik ## closed-loop throughput (wrk): Traefik bare vs the plugins, floods (forged tokens, a client over its limit), four gateways on one limit
	@bash .ci/deps bench
	cd integration && TRAEFIK_BIN=$$(bash ../.ci/build-traefik) PAVILION_BENCH=1 $(GO) test -count=1 -timeout 30m -run '^TestBench(JWT|RateLimit|FourGateways)$$' -v ./bench/ 2>&1 | tee $(CURDIR)/bench-results.txt | grep -v '^=== RUN'

.PHONY: bench-latency bench-memory
# The open-loop latency bench, run from integration/ (bench-latency and bench-compiled).
LATENCY_BENCH = PAVILION_BENCH=1 $(GO) test -count=1 -timeout 60m -run '^TestBenchLatency$$' -v ./bench/
bench-latency: traefik ## open-loop latency (vegeta at BENCH_RATES, default 500,1000,2000/s): plugins alone and the full TLS chain beside the native chain (~15 min)
	cd integration && TRAEFIK_BIN=$$(bash ../.ci/build-traefik) $(LATENCY_BENCH) 2>&1 | tee $(CURDIR)/bench-latency-results.txt | grep -v '^=== RUN'

bench-memory: traefik ## Traefik's resident memory: no plugin, the plugins, the gateway under BENCH_MEMORY_DURATION (10m) of load; the live heap of one interpreter per package
	cd integration && TRAEFIK_BIN=$$(bash ../.ci/build-traefik) PAVILION_BENCH=1 $(GO) test -count=1 -timeout 60m -run '^TestBench(InterpreterHeap|Memory)$$' -v ./bench/ 2>&1 | tee $(CURDIR)/bench-memory-results.txt | grep -v '^=== RUN'

.PHONY: bench-compiled
bench-compiled: traefik ## the interpreter's share of the suite's cost: bench-latency on stock Traefik and on one with the suite compiled in, alternated BENCH_COMPILED_ROUNDS times (default 2)
	@set -eo pipefail; stock=$$(bash .ci/build-traefik); compiled=$$(bash .ci/build-traefik-compiled); \
	  out=$(CURDIR)/bench-compiled-results.txt; : > $$out; \
	  for r in $$(seq $${BENCH_COMPILED_ROUNDS:-2}); do for v in interpreted compiled; do \
	    bin=$$stock; if [ $$v = compiled ]; then bin=$$compiled; fi; \
	    echo "== round $$r: the suite $$v ($$bin), $$(date -u '+%F %H:%M UTC')" | tee -a $$out; \
	    (cd integration && TRAEFIK_BIN=$$bin BENCH_SCENARIOS=$${BENCH_SCENARIOS:-bare,native,ours,suite,chain,gateway} \
	      BENCH_RATES=$${BENCH_RATES:-1000} BENCH_LATENCY_ROUNDS=$${BENCH_LATENCY_ROUNDS:-2} $(LATENCY_BENCH)) 2>&1 | grep -E '^(\||open-loop|--- |FAIL|ok )' | tee -a $$out; \
	  done; done

.PHONY: soak soak-short
soak-short: traefik ## the soak for 60 seconds at 1000 req/s (part of make test)
	set -o pipefail; cd integration && TRAEFIK_BIN=$$(bash ../.ci/build-traefik) PAVILION_SOAK=1 PAVILION_SOAK_DURATION=60s PAVILION_SOAK_RATE=1000 \
	  $(GO) test -count=1 -timeout 10m -run '^TestSoak$$' -v ./soaktest/ 2>&1 | grep -v '^\s*{'

DURATION ?= 60s
RATE     ?= 1000
soak: traefik ## open-loop load (vegeta, RATE req/s) through TLS for DURATION with Redis restart, key rotation, broker kill, config rewrite, hostile requests
	set -o pipefail; cd integration && TRAEFIK_BIN=$$(bash ../.ci/build-traefik) PAVILION_SOAK=1 PAVILION_SOAK_DURATION=$(DURATION) PAVILION_SOAK_RATE=$(RATE) \
	  $(GO) test -count=1 -timeout 3h -run '^TestSoak$$' -v ./soaktest/ 2>&1 | tee $(CURDIR)/soak-results.txt | grep -v '^=== RUN'

.PHONY: keycloak
keycloak: ## real Keycloak (dev mode, realm demo/keycloak/pavilion-realm.json) in the foreground; Ctrl-C stops it
	@bash .ci/keycloak run

.PHONY: check-docs
check-docs: ## docs/configuration.md against the plugins' Config structs and defaults, docs/yaegi.md against the Yaegi guard's rules
	cd integration && $(GO) test -count=1 ./docscheck/

.PHONY: check-config
check-config: ## static/, dynamic/ and the compose labels through paerser (Traefik's parser); plugin options decoded strictly, then validated by each plugin's New
	cd integration && $(GO) run ./cmd/checkconfig -root $(CURDIR)
