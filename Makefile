# Conveyor: the two commands a fresh machine needs are `make demo` and `make test`.
SWIFT ?= swift
SWIFT_FLAGS ?=

.PHONY: deps build demo test bench bench-history clean

## deps: install libhiredis-dev, redis-server and redis-tools if missing
deps:
	@./scripts/install-deps.sh

## build: debug build of everything
build: deps
	$(SWIFT) build $(SWIFT_FLAGS)

## demo: run the example worker on an embedded redis-server (or $$REDIS_URL)
demo: deps
	$(SWIFT) build $(SWIFT_FLAGS) --product conveyor
	$$($(SWIFT) build $(SWIFT_FLAGS) --show-bin-path)/conveyor demo

## test: the whole suite against a private redis-server on a free loopback port
test: deps
	$(SWIFT) build --build-tests $(SWIFT_FLAGS)
	./scripts/with-redis.sh $(SWIFT) test --skip-build $(SWIFT_FLAGS)

## bench: release-build benchmarks against a private redis-server (or --redis URL): the Redis
## client (conveyor-bench $(BENCH_ARGS)), then end to end (conveyor-e2e-bench $(E2E_ARGS), which
## runs the release `conveyor worker`), e.g. make bench E2E_ARGS="--repeat 3"
bench: deps
	$(SWIFT) build -c release $(SWIFT_FLAGS) --product conveyor-bench
	$(SWIFT) build -c release $(SWIFT_FLAGS) --product conveyor
	$(SWIFT) build -c release $(SWIFT_FLAGS) --product conveyor-e2e-bench
	$$($(SWIFT) build -c release $(SWIFT_FLAGS) --show-bin-path)/conveyor-bench $(BENCH_ARGS)
	$$($(SWIFT) build -c release $(SWIFT_FLAGS) --show-bin-path)/conveyor-e2e-bench $(E2E_ARGS)

## bench-history: generate a history of $(HISTORY_RECORDS) records (default 10,000,000, ~5 GB) in
## the archiver's line format and time history queries before and after compression + indexing
HISTORY_RECORDS ?= 10000000
bench-history: deps
	$(SWIFT) build -c release $(SWIFT_FLAGS) --product conveyor
	$(SWIFT) build -c release $(SWIFT_FLAGS) --product conveyor-history-bench
	./scripts/history-bench.sh $(HISTORY_RECORDS)

clean:
	$(SWIFT) package clean
