# Conveyor: the two commands a fresh machine needs are `make demo` and `make test`.
SWIFT ?= swift
SWIFT_FLAGS ?=

.PHONY: deps build demo lint test readme-app docs bench bench-history bench-cluster chaos chaos-cluster clean

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

## lint: swift format lint --strict with .swift-format (rules on every file, layout on all but
## scripts/lint-layout-exempt.txt); a few seconds, no build
lint:
	SWIFT=$(SWIFT) ./scripts/lint.sh

## test: the lint, then the whole suite against a private redis-server on a free loopback port and a
## private 3-master + 3-replica Redis Cluster (scripts/with-redis-cluster.sh, $$REDIS_CLUSTER_URL); one test at a
## time (~3.5 min): the suite starts real worker, archiver and redis-server processes whose
## timing a parallel run on 2 cores starves; then readme-app (~25 s, ~5 min on its first build)
## (the dashboard's browser test needs Chromium, chromedriver and selenium: installed by
## scripts/install-browser-deps.sh, apt + a venv under .build/)
test: lint deps
	$(SWIFT) build --build-tests $(SWIFT_FLAGS)
	./scripts/install-browser-deps.sh >/dev/null
	CONVEYOR_BROWSER_PYTHON="$(CURDIR)/.build/browser-venv/bin/python" \
		./scripts/with-redis.sh ./scripts/with-redis-cluster.sh $(SWIFT) test --skip-build --no-parallel $(SWIFT_FLAGS)
	./scripts/with-redis.sh ./scripts/with-redis-cluster.sh env CONVEYOR_TEST_REDIS=cluster \
		$(SWIFT) test --skip-build --no-parallel $(SWIFT_FLAGS) --filter '$(subst $(space),|,$(strip $(CLUSTER_SUITES)))' --skip '$(CLUSTER_SKIP)'
	$(MAKE) readme-app

## CLUSTER_SUITES: the suites make test runs a second time on a fresh private cluster, with
## CONVEYOR_TEST_REDIS=cluster (TestRedis hands out a REDIS_CLUSTER_URL client and slot-spread
## partition tags; spawned `conveyor` processes get the cluster URL): scheduling, workers and the
## archiver (~2 min). CLUSTER_SKIP: DroppedReplyTests (its fault proxy forwards to one server's
## port; the cluster client would follow the nodes' announced addresses around it).
CLUSTER_SUITES = JobSchedulerTests JobSchedulerReplaceRuleTests JobSchedulerCronChainTests BulkScheduleTests \
	ScheduleCommandCountTests StaleIndexTests ClockSkewTests WorkerPoolTests PoolStopTests WorkerJobFieldsTests \
	WorkerProcessTests PartitionFairnessTests RetryAndRetentionTests UnparseableRecoveryTests AtLeastOnceTests \
	ArchiverTests ArchiverScriptTests ArchiverClockTests ArchiverRawHashTests ForeignFinishedMemberTests \
	ArchiverLivenessTests ArchiverCrashTests ReadLayoutTests ReplicaAcknowledgementTests
CLUSTER_SKIP = DroppedReplyTests
empty :=
space := $(empty) $(empty)

## readme-app: build the README's example app (its Package.swift and files, in .build/readme-app,
## depending on this checkout by path) and check that it runs as the README says, on a private
## redis-server; the first run builds Conveyor again in the app's .build, later runs are incremental
readme-app: deps
	SWIFT=$(SWIFT) ./scripts/with-redis.sh ./scripts/readme-app.sh

## docs: the DocC documentation of the Conveyor module (Sources/Conveyor/Docs.docc and the doc
## comments), built by swift-docc-plugin into .build/plugins/Swift-DocC/outputs/Conveyor.doccarchive;
## make docs DOCS_ARGS="--warnings-as-errors" fails on a warning
docs: deps
	$(SWIFT) package $(SWIFT_FLAGS) generate-documentation --target Conveyor $(DOCS_ARGS)

## bench: release-build the benchmarks (their own package, Benchmarks/Package.swift, which depends
## on this one by path and builds in Benchmarks/.build) and run them against a private redis-server
## (or --redis URL): the Redis client (conveyor-bench $(BENCH_ARGS)), then end to end
## (conveyor-e2e-bench $(E2E_ARGS), which runs the release `conveyor worker` built beside it),
## e.g. make bench E2E_ARGS="--repeat 3"
BENCH_SWIFT_BUILD = $(SWIFT) build -c release $(SWIFT_FLAGS) --package-path Benchmarks
# SwiftPM kept the Benchmarks package's build plan after a source file was added to the root
# package (its path dependency), and the build failed on the new type; a newer manifest makes
# it plan again (seconds; unchanged files are not recompiled).
BENCH_REPLAN = touch Benchmarks/Package.swift
bench: deps
	$(BENCH_REPLAN)
	$(BENCH_SWIFT_BUILD) --product conveyor-bench
	$(BENCH_SWIFT_BUILD) --product conveyor
	$(BENCH_SWIFT_BUILD) --product conveyor-e2e-bench
	$$($(BENCH_SWIFT_BUILD) --show-bin-path)/conveyor-bench $(BENCH_ARGS)
	$$($(BENCH_SWIFT_BUILD) --show-bin-path)/conveyor-e2e-bench $(E2E_ARGS)

## bench-cluster: end-to-end throughput of the same 2 release `conveyor worker` processes on a local
## Redis Cluster of 1, 2 and 3 masters, and redis-server CPU seconds per 1,000 jobs per master
## (scripts/cluster-bench.sh; JOBS, WORKERS, CONCURRENCY, PARTITIONS, MASTERS override)
bench-cluster: deps
	$(SWIFT) build -c release $(SWIFT_FLAGS) --product conveyor
	CONVEYOR_BIN="$$($(SWIFT) build -c release $(SWIFT_FLAGS) --show-bin-path)/conveyor" ./scripts/cluster-bench.sh

## chaos-cluster: issue 13's failover run at full size: 20,000 jobs on a local 3-master cluster,
## one master SIGKILLed mid-run (make test runs it with 3,000); prints the jobs lost from scheduling;
## then the live-resharding run with 10,000 jobs (make test: 1,500) while partitions 0 and 1 move
## between masters (docs/cluster.md §7)
chaos-cluster: deps
	$(SWIFT) build --build-tests $(SWIFT_FLAGS)
	CONVEYOR_CLUSTER_FAILOVER_JOBS=20000 CONVEYOR_CLUSTER_RESHARD_JOBS=10000 ./scripts/with-redis-cluster.sh \
		$(SWIFT) test --skip-build --no-parallel $(SWIFT_FLAGS) --filter 'ClusterRunTests/failover|ClusterReshardTests/liveMoves'

## chaos: the fault-injection scenarios of docs/reliability.md (release `conveyor` workers,
## private redis-servers on 127.0.0.1, a few minutes); prints the Markdown table, e.g.
## make chaos CHAOS_ARGS="--only worker-kill proxy-faults --seed 7" (--short: the test sizes)
chaos: deps
	$(SWIFT) build -c release $(SWIFT_FLAGS) --product conveyor
	$(SWIFT) build -c release $(SWIFT_FLAGS) --product conveyor-chaos
	$$($(SWIFT) build -c release $(SWIFT_FLAGS) --show-bin-path)/conveyor-chaos $(CHAOS_ARGS)

## bench-history: generate a history of $(HISTORY_RECORDS) records (default 10,000,000, ~5 GB) in
## the archiver's line format and time history queries before and after compression + indexing
## (conveyor-history-bench and conveyor, both from the Benchmarks package's release build)
HISTORY_RECORDS ?= 10000000
bench-history: deps
	$(BENCH_REPLAN)
	$(BENCH_SWIFT_BUILD) --product conveyor
	$(BENCH_SWIFT_BUILD) --product conveyor-history-bench
	SWIFT=$(SWIFT) ./scripts/history-bench.sh $(HISTORY_RECORDS)

clean:
	$(SWIFT) package clean
