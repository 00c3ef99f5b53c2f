import CoreMetrics
import Foundation
import InMemoryTracing
import NIOCore
import NIOPosix
import Prometheus
import Synchronization
import Testing
import Tracing

@testable import Conveyor
@testable import ConveyorCLI

/// swift-metrics and swift-distributed-tracing against a real redis-server and
/// real worker pools. The metrics backend and the tracer are passed through
/// the configurations (each test has its own), never bootstrapped: a process
/// bootstraps each system once.
@Suite("Observability: metrics and tracing")
struct ObservabilityTests {
    /// Schedules a known mix — successes, a replaced job, a retry chain, a
    /// failure, a timeout, a job of a lost worker — runs it on a real pool and
    /// archiver, then scrapes `/metrics` over HTTP and checks every count.
    @Test("GET /metrics after a real run: every counter equals what ran, gauges show what is left")
    func metricsAfterRun() async throws {
        try await TestRedis.withClient { client, ns in
            let registry = PrometheusCollectorRegistry()
            let factory = PrometheusMetricsFactory(registry: registry)
            let keys = try ConveyorKeys(namespace: ns, partitionCount: 2)
            let scheduler = JobScheduler(client: client, configuration: .init(keys: keys, metricsFactory: factory))
            // A worker that dies holding a job: claimed with a short lease, never renewed.
            let lost = try await scheduler.scheduleJob(WorkerJobConfig(WorkerEchoJob.self, userId: 50, data: .null))
            let store = JobStore(client: client, keys: keys, staleAfterMs: 3_600_000)
            let claimed = try await store.claim(
                partition: keys.partition(ofJob: lost.id), now: nil, workerId: "dead-worker", maxCount: 10, leaseMs: 100
            )
            #expect(claimed.jobs.map(\.id) == [lost.id])

            let server = MetricsServer(registry: registry, port: 0)
            let port = try await server.start()
            defer { Task { await server.stop() } }
            let history = ArchiverTestSupport.temporaryDirectory("metrics")
            defer { try? FileManager.default.removeItem(atPath: history) }
            let archiver = Archiver(
                client: client, configuration: ArchiverConfiguration(historyDirectory: history, keys: keys, metricsFactory: factory)
            )
            let archiving = Task { try await archiver.run() }
            defer { archiving.cancel() }

            let scraped = try await withWorkerPool(
                client, namespace: ns,
                configure: {
                    $0.keys = keys
                    $0.metricsFactory = factory
                    $0.gaugeRefreshInterval = .milliseconds(50)
                    $0.jobTimeoutByType = [WorkerSleepJob.typeName: .milliseconds(200)]
                    $0.recoveryInterval = .milliseconds(100)
                    $0.recoveryGracePeriod = .milliseconds(200)
                    $0.failedJobRetention = .zero  // failed runs are archived with the rest
                }
            ) { _, _, events, _ in
                for user in 1...5 {
                    try await scheduler.scheduleJob(WorkerJobConfig(WorkerEchoJob.self, userId: user, data: .integer(Int64(user))))
                }
                // Due in an hour: the second replaces the first and stays pending.
                let later = Date().addingTimeInterval(3600)
                try await scheduler.scheduleJob(WorkerJobConfig(WorkerEchoJob.self, userId: 100, due: later, data: .null))
                try await scheduler.scheduleJob(WorkerJobConfig(WorkerEchoJob.self, userId: 100, due: later, data: .null))
                // Fails twice, retried twice, then succeeds.
                try await scheduler.scheduleJob(
                    WorkerJobConfig(
                        WorkerFlakyJob.self, userId: 1, data: .init(succeedOnAttempt: 3), autoRescheduleOnFailure: true,
                        autoRescheduleOnFailureDelay: 10
                    ))
                // Fails once, not retried.
                try await scheduler.scheduleJob(WorkerJobConfig(WorkerFlakyJob.self, userId: 2, data: .init(succeedOnAttempt: 99)))
                // Times out (200 ms), not retried.
                try await scheduler.scheduleJob(WorkerJobConfig(WorkerSleepJob.self, userId: 1, data: .init(ms: 5_000)))

                // 5 echo + 3 + 1 flaky + 1 sleep + the lost job's re-run.
                let ran = try await eventually(timeout: .seconds(20)) { events.withLock { $0.filter(\.written).count } >= 11 }
                #expect(ran, "\(events.withLock { $0.map { ($0.job.type, $0.success) } })")
                // Then the gauges settle (one pending job left), and the archiver takes every finished job.
                let settled = try await eventually(timeout: .seconds(20)) {
                    let metrics = try await Self.scrape(port: port)
                    return metrics.sum("conveyor_jobs_pending") == 1 && metrics.sum("conveyor_jobs_running") == 0
                        && metrics.sum("conveyor_jobs_awaiting_archive") == 0 && metrics.sum("conveyor_jobs_archived_total") == 13
                }
                let final = try await Self.scrape(port: port)
                #expect(settled, "\(final.text)")
                return final
            }

            let echo = WorkerEchoJob.typeName
            let flaky = WorkerFlakyJob.typeName
            let sleep = WorkerSleepJob.typeName
            let expected: [(String, String, Double)] = [
                ("conveyor_jobs_scheduled_total", echo, 8), ("conveyor_jobs_scheduled_total", flaky, 2),
                ("conveyor_jobs_scheduled_total", sleep, 1),
                ("conveyor_jobs_replaced_total", echo, 1),
                ("conveyor_jobs_started_total", echo, 6), ("conveyor_jobs_started_total", flaky, 4),
                ("conveyor_jobs_started_total", sleep, 1),
                ("conveyor_jobs_succeeded_total", echo, 6), ("conveyor_jobs_succeeded_total", flaky, 1),
                ("conveyor_jobs_failed_total", flaky, 3), ("conveyor_jobs_failed_total", sleep, 1),
                ("conveyor_jobs_retried_total", flaky, 2),
                ("conveyor_jobs_timed_out_total", sleep, 1),
                ("conveyor_jobs_recovered_total", echo, 1),
                // 5 + replaced + lost + its re-run; 4 runs; 1 run.
                ("conveyor_jobs_archived_total", echo, 8), ("conveyor_jobs_archived_total", flaky, 4),
                ("conveyor_jobs_archived_total", sleep, 1),
                ("conveyor_job_run_duration_seconds_count", echo, 6), ("conveyor_job_run_duration_seconds_count", flaky, 4),
                ("conveyor_job_lateness_seconds_count", echo, 6),
            ]
            for (name, type, value) in expected {
                #expect(scraped.value(name, type: type) == value, "\(name){type=\"\(type)\"}\n\(scraped.text)")
            }
            // Nothing else was counted.
            #expect(scraped.sum("conveyor_jobs_failed_total") == 4)
            #expect(scraped.sum("conveyor_jobs_interrupted_total") == 0)
            #expect(scraped.sum("conveyor_jobs_succeeded_total") == 7)
            #expect(scraped.sum("conveyor_jobs_due_now") == 0)
            // Every series is conveyor_-prefixed; counters and timers carry the type, gauges the partition.
            for line in scraped.samples.keys {
                #expect(line.hasPrefix("conveyor_"), "\(line)")
                #expect(line.contains("type=\"") || line.contains("partition=\""), "\(line)")
            }
            // The partition gauges cover every partition.
            #expect(scraped.samples.keys.filter { $0.hasPrefix("conveyor_jobs_pending{") }.count == keys.partitionCount)
        }
    }

    @Test("conveyor worker --metrics-port 0: the process serves its counts over HTTP")
    func workerProcessServesMetrics() async throws {
        let url = try await TestRedis.url()
        try await TestRedis.withClient { client, ns in
            let scheduler = JobScheduler(client: client, configuration: .init(keys: try ConveyorKeys(namespace: ns)))
            for user in 1...4 { try await scheduler.scheduleJob(UntypedJobConfig(type: "noop", userId: user)) }
            for user in 1...2 { try await scheduler.scheduleJob(UntypedJobConfig(type: "fail", userId: user, dataJSON: #"{"message":"boom"}"#)) }
            try await scheduler.scheduleJob(UntypedJobConfig(type: "flaky", userId: 1, dataJSON: #"{"succeedOnAttempt":2}"#, autoRescheduleOnFailure: true))
            let worker = try ConveyorProcess.start(["worker", "--redis", url, "--namespace", ns, "--metrics-port", "0", "--log-level", "info"])
            defer { worker.signal(SIGKILL) }
            // The bound port is logged: conveyor.metrics.url=http://127.0.0.1:PORT/metrics
            var port: Int?
            let logged = try await eventually(timeout: .seconds(20)) {
                port = Self.loggedPort(worker.log)
                return port != nil
            }
            #expect(logged, "worker log: \(worker.log)")
            let metricsPort = try #require(port)
            let done = try await eventually(timeout: .seconds(20)) {
                let scraped = try await Self.scrape(port: metricsPort)
                return scraped.sum("conveyor_jobs_succeeded_total") + scraped.sum("conveyor_jobs_failed_total") == 8
            }
            let scraped = try await Self.scrape(port: metricsPort)
            #expect(done, "\(scraped.text)")
            let expected: [(String, String, Double)] = [
                ("conveyor_jobs_started_total", "noop", 4), ("conveyor_jobs_succeeded_total", "noop", 4),
                ("conveyor_jobs_started_total", "fail", 2), ("conveyor_jobs_failed_total", "fail", 2),
                ("conveyor_jobs_started_total", "flaky", 2), ("conveyor_jobs_failed_total", "flaky", 1),
                ("conveyor_jobs_retried_total", "flaky", 1), ("conveyor_jobs_succeeded_total", "flaky", 1),
            ]
            for (name, type, value) in expected {
                #expect(scraped.value(name, type: type) == value, "\(name){type=\"\(type)\"}\n\(scraped.text)")
            }
            #expect(scraped.sum("conveyor_jobs_retried_total") == 1)
            worker.signal(SIGTERM)
            await worker.waitForExit(timeout: .seconds(10))
        }
    }

    static func loggedPort(_ log: String) -> Int? {
        guard let range = log.range(of: "http://127.0.0.1:") else { return nil }
        return Int(log[range.upperBound...].prefix { $0.isNumber })
    }

    @Test("a run stopped by shutdown counts as interrupted (not failed); with no backend nothing is recorded")
    func interruptedByShutdown() async throws {
        // Nothing in this process bootstraps MetricsSystem: the no-op factory disables recording.
        #expect(ConveyorMetrics(factory: nil).isEnabled == false)
        try await TestRedis.withClient { client, ns in
            let registry = PrometheusCollectorRegistry()
            let factory = PrometheusMetricsFactory(registry: registry)
            try await withWorkerPool(
                client, namespace: ns,
                configure: {
                    $0.metricsFactory = factory
                    $0.shutdownGracePeriod = .milliseconds(100)
                }
            ) { scheduler, _, _, pool in
                try await scheduler.scheduleJob(WorkerJobConfig(WorkerSleepJob.self, userId: 1, data: .init(ms: 10_000)))
                let started = try await eventually { pool.running.withLock { !$0.isEmpty } }
                #expect(started)
            }
            // The pool has shut down: the run was interrupted, its re-run scheduled.
            let scraped = Exposition(text: registry.emitToString())
            let sleep = WorkerSleepJob.typeName
            #expect(scraped.value("conveyor_jobs_started_total", type: sleep) == 1)
            #expect(scraped.value("conveyor_jobs_interrupted_total", type: sleep) == 1, "\(scraped.text)")
            #expect(scraped.sum("conveyor_jobs_failed_total") == 0 && scraped.sum("conveyor_jobs_succeeded_total") == 0)
        }
    }

    @Test(
        "--metrics-port and --metrics-bind parse on worker and archiver; a bad port is refused",
        arguments: [
            ["worker", "--metrics-port", "9464"], ["worker", "--metrics-port", "0", "--metrics-bind", "0.0.0.0"],
            ["archiver", "--history-dir", "/tmp/h", "--metrics-port", "9465"],
        ]
    )
    func metricsFlags(arguments: [String]) throws {
        try ConveyorCLI.validate(arguments: arguments)
        expectRejected(["worker", "--metrics-port", "70000"], mentioning: "--metrics-port")
        expectRejected(["worker", "--metrics-port", "-1"], mentioning: "--metrics-port")
        expectRejected(["archiver", "--history-dir", "/tmp/h", "--metrics-port", "65536"], mentioning: "--metrics-port")
    }

    @Test("the metrics endpoint answers only GET/HEAD /metrics")
    func endpointRefusesOtherRequests() async throws {
        let registry = PrometheusCollectorRegistry()
        CoreMetrics.Counter(label: "conveyor_probe_total", dimensions: [("type", "x")], factory: PrometheusMetricsFactory(registry: registry))
            .increment()
        let server = MetricsServer(registry: registry, port: 0)
        let port = try await server.start()
        let ok = try await Self.httpRequest(port: port, "GET /metrics HTTP/1.1")
        #expect(ok.status == 200)
        #expect(ok.body.contains("conveyor_probe_total{type=\"x\"} 1"))
        #expect(ok.head.lowercased().contains("content-type: text/plain; version=0.0.4"))
        #expect(try await Self.httpRequest(port: port, "GET / HTTP/1.1").status == 404)
        #expect(try await Self.httpRequest(port: port, "POST /metrics HTTP/1.1").status == 405)
        let head = try await Self.httpRequest(port: port, "HEAD /metrics HTTP/1.1")
        #expect(head.status == 200 && head.body.isEmpty)
        await server.stop()
        await #expect(throws: (any Error).self) { try await Self.httpRequest(port: port, "GET /metrics HTTP/1.1") }
    }

    /// The producer → consumer link, as bullmq-otel draws it: the run's span
    /// is a new trace's root that links to the span that scheduled the job.
    @Test("tracing: a send span per schedule, a process span per run linked to it; a retry links to the same send span")
    func runSpanLinksToScheduleSpan() async throws {
        try await TestRedis.withClient { client, ns in
            let tracer = InMemoryTracer()
            let keys = try ConveyorKeys(namespace: ns)
            let scheduler = JobScheduler(client: client, configuration: .init(keys: keys, tracer: tracer))
            try await withWorkerPool(client, namespace: ns, configure: { $0.tracer = tracer }) { _, _, events, _ in
                let echo = try await scheduler.scheduleJob(WorkerJobConfig(WorkerEchoJob.self, userId: 1, data: .null))
                let flaky = try await scheduler.scheduleJob(
                    WorkerJobConfig(
                        WorkerFlakyJob.self, userId: 1, data: .init(succeedOnAttempt: 2), autoRescheduleOnFailure: true
                    ))
                let done = try await eventually { events.withLock { $0.filter(\.written).count } >= 3 }
                #expect(done)
                // The stored context is the tracer's carrier.
                let stored = try await client.send("HGET", keys.partition(ofJob: echo.id).job(echo.id), "tc").string
                #expect(stored.flatMap(JobTracing.decode)?[InMemoryTracer.spanIDKey] != nil, "\(stored ?? "nil")")

                let spans = tracer.finishedSpans
                let sends = spans.filter { $0.kind == .producer }
                let runs = spans.filter { $0.kind == .consumer }
                #expect(sends.map(\.operationName).sorted() == ["send workerEcho", "send workerFlaky"])
                #expect(runs.count == 3)
                for (job, type) in [(echo, WorkerEchoJob.typeName), (flaky, WorkerFlakyJob.typeName)] {
                    let send = try #require(sends.first { $0.operationName == "send \(type)" })
                    #expect(attribute(send, "messaging.system") == .string("conveyor"))
                    #expect(attribute(send, "messaging.operation.type") == .string("send"))
                    #expect(attribute(send, "messaging.destination.name") == .string(type))
                    #expect(attribute(send, "messaging.message.id") == .string(String(job.id)))
                    let processes = runs.filter { $0.operationName == "process \(type)" }
                    #expect(processes.count == (type == WorkerFlakyJob.typeName ? 2 : 1))
                    for run in processes {
                        #expect(run.parentSpanID == nil, "a run starts its own trace")
                        #expect(run.links.count == 1)
                        let linked = try #require(run.links.first?.context.inMemorySpanContext)
                        #expect(linked.spanID == send.spanID && linked.traceID == send.traceID)
                        #expect(attribute(run, "messaging.system") == .string("conveyor"))
                        #expect(attribute(run, "messaging.operation.type") == .string("process"))
                        #expect(attribute(run, "messaging.destination.name") == .string(type))
                        #expect(attribute(run, "messaging.destination.partition.id") == .string(String(keys.partition(ofJob: job.id).index)))
                    }
                    if type == WorkerEchoJob.typeName {
                        #expect(attribute(processes[0], "messaging.message.id") == .string(String(job.id)))
                        #expect(processes[0].status == nil && processes[0].errors.isEmpty)
                    } else {
                        // The first attempt failed (error recorded), its retry succeeded.
                        let attempts = processes.sorted { attempt($0) < attempt($1) }
                        #expect(attempts.map(attempt) == [1, 2])
                        #expect(attempts[0].status?.code == .error && attempts[0].errors.count == 1)
                        #expect(attempts[1].status == nil)
                    }
                }
            }
        }
    }

    @Test("without a tracer no span context is stored (the no-op tracer costs no field)")
    func noTracerNoField() async throws {
        try await TestRedis.withClient { client, ns in
            let keys = try ConveyorKeys(namespace: ns)
            // Nothing in this process bootstraps InstrumentationSystem: its tracer is the no-op one.
            #expect(InstrumentationSystem.tracer is NoOpTracer)
            let scheduler = JobScheduler(client: client, configuration: .init(keys: keys))
            #expect(scheduler.tracing.tracer == nil)
            let job = try await scheduler.scheduleJob(WorkerJobConfig(WorkerEchoJob.self, userId: 1, data: .null))
            #expect(try await client.send("HEXISTS", keys.partition(ofJob: job.id).job(job.id), "tc").int == 0)
            #expect(job.traceContext == nil)
        }
    }

    @Test("scheduleJobs: the trace context argument is stored on every job of the call and bounded; replaced counts per job")
    func scheduleScriptTraceContext() async throws {
        try await TestRedis.withClient { client, ns in
            let keys = try ConveyorKeys(namespace: ns, partitionCount: 1)
            let p = keys.partition(0)
            func job(_ user: Int) -> [any RESPArgument] { ["t", user, "", "", "", "", "", "", "", "", "", "", ""] }
            let tooLong = String(repeating: "x", count: 4097)
            await #expect(throws: RedisError.self) {
                try await client.eval(ScriptSignature.scheduleJobs.call(p, ["1000", 3_600_000, 1, 0, 1, 13] + job(1) + [tooLong]))
            }
            #expect(try await TestRedis.keys(client, namespace: ns).isEmpty, "nothing written")
            let reply = try await client.eval(
                ScriptSignature.scheduleJobs.call(p, ["1000", 3_600_000, 1, 0, 3, 13] + job(1) + job(2) + job(1) + [#"{"k":"v"}"#])
            )
            // {now, then id and replaced per job}: the third replaced the first.
            let entries: [Int] = Array((reply.array?.compactMap { $0.int } ?? []).dropFirst())
            try #require(entries.count == 6, "\(reply)")
            let replaced: [Int] = [entries[1], entries[3], entries[5]]
            #expect(replaced == [0, 0, 1])
            for id in [entries[0], entries[2], entries[4]] {
                #expect(try await client.send("HGET", p.job(id), "tc").string == #"{"k":"v"}"#)
            }
            // Without the argument: no field.
            let plain = try await client.eval(ScriptSignature.scheduleJobs.call(p, ["1000", 3_600_000, 1, 0, 1, 13] + job(3)))
            let plainId = try #require(plain.array?.dropFirst().first?.int)
            #expect(try await client.send("HEXISTS", p.job(plainId), "tc").int == 0)
        }
    }
}

private func attribute(_ span: FinishedInMemorySpan, _ name: String) -> SpanAttribute? {
    span.attributes[name]?.toSpanAttribute()
}

private func attempt(_ span: FinishedInMemorySpan) -> Int64 {
    if case .int64(let value)? = attribute(span, "conveyor.job.attempt") { return value }
    return 0
}

// MARK: - Scraping

/// One scrape, parsed: `name{labels}` → value.
struct Exposition {
    var text: String
    var samples: [String: Double] = [:]

    init(text: String) {
        self.text = text
        for line in text.split(separator: "\n") where !line.hasPrefix("#") {
            guard let space = line.lastIndex(of: " "), let value = Double(line[line.index(after: space)...]) else { continue }
            samples[String(line[..<space])] = value
        }
    }

    /// The sample of `name` with the label `type="<type>"` (and no other label but `le`-free ones).
    func value(_ name: String, type: String) -> Double? {
        samples["\(name){type=\"\(type)\"}"]
    }

    /// The sum of every sample of `name`, over all labels (0 when there is none).
    func sum(_ name: String) -> Double {
        samples.filter { $0.key == name || $0.key.hasPrefix(name + "{") }.values.reduce(0, +)
    }
}

extension ObservabilityTests {
    static func scrape(port: Int) async throws -> Exposition {
        let response = try await httpRequest(port: port, "GET /metrics HTTP/1.1")
        guard response.status == 200 else { throw ScrapeError(response: response.head) }
        return Exposition(text: response.body)
    }

    struct ScrapeError: Error { var response: String }

    /// Sends one request line over a new TCP connection and reads the whole
    /// response (the server closes the connection after it).
    static func httpRequest(port: Int, _ requestLine: String) async throws -> (status: Int, head: String, body: String) {
        let collector = Collector()
        let channel = try await ClientBootstrap(group: MultiThreadedEventLoopGroup.singleton)
            .channelInitializer { channel in
                channel.eventLoop.makeCompletedFuture {
                    try channel.pipeline.syncOperations.addHandler(collector)
                }
            }
            .connect(host: "127.0.0.1", port: port).get()
        let request = "\(requestLine)\r\nHost: 127.0.0.1\r\nContent-Length: 0\r\n\r\n"
        try await channel.writeAndFlush(ByteBuffer(string: request))
        try await channel.closeFuture.get()
        let text = String(decoding: collector.bytes.withLock { $0 }, as: UTF8.self)
        let parts = text.components(separatedBy: "\r\n\r\n")
        let head = parts[0]
        let status = head.split(separator: " ").dropFirst().first.flatMap { Int($0) } ?? 0
        return (status, head, parts.dropFirst().joined(separator: "\r\n\r\n"))
    }

    final class Collector: ChannelInboundHandler, Sendable {
        typealias InboundIn = ByteBuffer
        let bytes = Mutex<[UInt8]>([])
        init() {}
        func channelRead(context: ChannelHandlerContext, data: NIOAny) {
            let buffer = unwrapInboundIn(data)
            bytes.withLock { $0 += buffer.readableBytesView }
        }
    }
}
