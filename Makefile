# Loa — common tasks. `make help` lists them.
GO          ?= go
SHELL       := bash
.SHELLFLAGS := -o pipefail -c
STATICCHECK := honnef.co/go/tools/cmd/staticcheck@v0.8.2
# Benchmarks: which to run and for how long (e.g. make bench BENCH=Dispatch BENCHTIME=5s).
BENCH       ?= .
BENCHTIME   ?= 1s

# make chaos: CHAOS_FLAGS=--short (CI's run) or --redis-aof (Redis with persistence); see docs/testing.md, "Chaos".
CHAOS_FLAGS ?=
# make bench-e2e: e.g. BENCH_E2E_FLAGS='-devices 1000000 -dispatchers 2'; FAKEFCM=../shared/tools/fakefcm
# measures against that reference fake instead of Loa's own.
BENCH_E2E_FLAGS ?=
# make bench-alert: e.g. BENCH_ALERT_FLAGS='-devices 200000'
BENCH_ALERT_FLAGS ?=
FAKEFCM     ?=

.PHONY: help run build test test-verbose screenshots test-race test-chaos ci services-up services-down bench bench-e2e bench-alert chaos lint fmt

help: ## list the targets
	@grep -E '^[a-z0-9-]+:.*## ' $(MAKEFILE_LIST) | awk -F':.*## ' '{printf "  %-14s %s\n", $$1, $$2}'

run: ## run everything in one process on embedded defaults (loa dev)
	$(GO) run ./cmd/loa dev

build: ## build bin/loa and bin/loa-fakes (the provider fakes, never deployed)
	$(GO) build -o bin/loa ./cmd/loa
	$(GO) build -o bin/loa-fakes ./cmd/loa-fakes

test: ## unit, store and end-to-end tests (real services too when LOA_TEST_* is set)
	$(GO) test -count=1 -timeout 15m ./...

# CI prints one line per test and subtest (for example
# "--- PASS: TestEndToEnd/real"), so the log shows which ran on the real
# services, and the package summaries; a failed test's whole output
# (the logs of the servers it started) follows its line.
test-verbose:
	$(GO) build -o bin/testlog ./internal/testlog
	$(GO) test -count=1 -timeout 15m -json ./... 2>&1 | bin/testlog

screenshots: ## the console's screenshots in docs/console/, taken by its browser test on loa dev (needs LOA_TEST_CHROMIUM, LOA_TEST_AXE_CORE)
	LOA_SCREENSHOTS_DIR=$(CURDIR)/docs/console $(GO) test -count=1 -run 'TestConsole(Roles)?InBrowser/embedded' ./cmd/loa

test-chaos: ## the long chaos and failover tests of internal/chaos (minutes each, servers of their own; CI's suite runs only TestChaosShort)
	LOA_CHAOS=1 $(GO) test -count=1 -timeout 60m -v -run 'Kill|Restart|Failover' ./internal/chaos/

test-race: ## the tests under the race detector
	$(GO) test -count=1 -race ./...

services-up: ## start real PostgreSQL, Redis and Kafka for tests (deploy/local)
	bash deploy/local/up.sh

services-down: ## stop them
	bash deploy/local/down.sh

ci: lint ## lint, then the tests against real PostgreSQL, Redis and Kafka
	bash deploy/local/up.sh
	set -a; . deploy/local/.state/env; set +a; \
	echo "real services: $$LOA_TEST_DATABASE_URL $$LOA_TEST_REDIS_URL kafka $$LOA_TEST_KAFKA_BROKERS"; \
	LOA_REQUIRE_SERVICES=1 $(MAKE) --no-print-directory test-verbose; status=$$?; \
	bash deploy/local/down.sh; exit $$status

bench: ## benchmarks (real services when LOA_TEST_* is set; see docs/testing.md)
	$(GO) test -run '^$$' -bench '$(BENCH)' -benchtime $(BENCHTIME) -benchmem ./...

bench-e2e: build ## end-to-end broadcast benchmark on the running services (loa-bench broadcast; see docs/testing.md)
	$(GO) build -o bin/loa-bench ./cmd/loa-bench
	@if [ -n "$(FAKEFCM)" ]; then (cd "$(FAKEFCM)" && $(GO) build -o "$(CURDIR)/bin/fakefcm" ./cmd/fakefcm); fi
	set -a; . deploy/local/.state/env; set +a; \
	./bin/loa-bench broadcast -loa bin/loa $(if $(FAKEFCM),-fcm reference -fakefcm bin/fakefcm) $(BENCH_E2E_FLAGS)

bench-alert: build ## an alert's push latency, idle and while a 1,000,000-device broadcast is in flight (loa-bench alert; see docs/testing.md)
	$(GO) build -o bin/loa-bench ./cmd/loa-bench
	set -a; . deploy/local/.state/env; set +a; \
	./bin/loa-bench alert -loa bin/loa $(BENCH_ALERT_FLAGS)

chaos: build ## kill and restart every part during a broadcast, an alert and codes, on services of its own; check nothing was lost or sent twice
	$(GO) build -o bin/loa-chaos ./cmd/loa-chaos
	./bin/loa-chaos -loa bin/loa $(CHAOS_FLAGS)

lint: ## gofmt check, go vet, staticcheck
	@out=$$(gofmt -l $$(git ls-files '*.go')); if [ -n "$$out" ]; then echo "gofmt would change:"; echo "$$out"; exit 1; fi
	$(GO) vet ./...
	$(GO) run $(STATICCHECK) ./...

fmt: ## format the code
	gofmt -w $$(git ls-files '*.go')
