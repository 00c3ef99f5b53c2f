import Dispatch
import Foundation
import Synchronization
import Testing

@testable import Conveyor

final class WorkerTestApp: Sendable {
    let executions = Mutex<[Int: Int]>([:])
    init() {}
}

/// Events a pool reported, in order.
final class EventLog: Sendable {
    private let events = Mutex<[WorkerPoolEvent]>([])
    init() {}
    func append(_ event: WorkerPoolEvent) { events.withLock { $0.append(event) } }
    func withLock<T>(_ body: ([WorkerPoolEvent]) -> T) -> T { events.withLock { body($0) } }
}

struct WorkerEchoJob: Job {
    static let typeName = "workerEcho"
    func run(_ params: JobParams<WorkerTestApp, JSONValue>) async throws -> JSONValue {
        params.app.executions.withLock { $0[params.job.id, default: 0] += 1 }
        return params.input
    }
}

struct WorkerFlakyJob: Job {
    static let typeName = "workerFlaky"
    struct Input: Codable, Sendable { var succeedOnAttempt: Int }
    struct NotYet: Error {}
    func run(_ params: JobParams<WorkerTestApp, Input>) async throws -> Int {
        guard params.job.attempt >= params.input.succeedOnAttempt else { throw NotYet() }
        return params.job.attempt
    }
}

struct WorkerSleepJob: Job {
    static let typeName = "workerSleep"
    struct Input: Codable, Sendable { var ms: Int }
    func run(_ params: JobParams<WorkerTestApp, Input>) async throws -> Nothing {
        try await Task.sleep(for: .milliseconds(params.input.ms))
        return Nothing()
    }
}

/// Ignores cancellation for 10 s, as careless job code might.
struct WorkerStubbornJob: Job {
    static let typeName = "workerStubborn"
    func run(_ params: JobParams<WorkerTestApp, Nothing>) async throws -> Nothing {
        // A wait that cancellation cannot end (a timer on another queue).
        await withCheckedContinuation { continuation in
            DispatchQueue.global().asyncAfter(deadline: .now() + 10) { continuation.resume() }
        }
        return Nothing()
    }
}

/// Runs a pool for the duration of `body`, collecting its events.
func withWorkerPool<T>(
    _ client: RedisClient, namespace: String, types: Set<String>? = nil, configure: (inout WorkerPoolConfiguration) -> Void = { _ in },
    _ body: (JobScheduler, WorkerTestApp, _ events: EventLog, WorkerPool<WorkerTestApp>) async throws -> T
) async throws -> T {
    var registry = JobRegistry<WorkerTestApp>()
    if types?.contains(WorkerEchoJob.typeName) ?? true { registry.register(WorkerEchoJob.self) }
    if types?.contains(WorkerFlakyJob.typeName) ?? true { registry.register(WorkerFlakyJob.self) }
    if types?.contains(WorkerSleepJob.typeName) ?? true { registry.register(WorkerSleepJob.self) }
    if types?.contains(WorkerStubbornJob.typeName) ?? true { registry.register(WorkerStubbornJob.self) }
    let keys = try ConveyorKeys(namespace: namespace)
    var configuration = WorkerPoolConfiguration(concurrency: 8, keys: keys)
    configuration.maxIdleWait = .milliseconds(200)
    configure(&configuration)
    let app = WorkerTestApp()
    let events = EventLog()
    let pool = WorkerPool(client: client, registry: registry, app: app, configuration: configuration) { event in
        events.append(event)
    }
    let scheduler = JobScheduler(client: client, configuration: .init(keys: keys))
    let running = Task { try await pool.run() }
    do {
        let result = try await body(scheduler, app, events, pool)
        pool.beginShutdown()
        try await running.value
        return result
    } catch {
        pool.beginShutdown()
        try? await running.value
        throw error
    }
}

/// Polls until `condition` holds or `timeout` passes.
func eventually(timeout: Duration = .seconds(10), _ condition: () async throws -> Bool) async throws -> Bool {
    let deadline = ContinuousClock.now + timeout
    while ContinuousClock.now < deadline {
        if try await condition() { return true }
        try await Task.sleep(for: .milliseconds(20))
    }
    return try await condition()
}

@Suite("Worker pool against a real server")
struct WorkerPoolTests {
    @Test("a job succeeds: result stored, finished, success true")
    func success() async throws {
        try await TestRedis.withClient { client, ns in
            try await withWorkerPool(client, namespace: ns) { scheduler, app, _, _ in
                let job = try await scheduler.scheduleJob(WorkerJobConfig(WorkerEchoJob.self, userId: 1, data: .object(["x": .integer(1)]), removeDelay: 60_000))
                #expect(try await eventually { try await scheduler.job(id: job.id)?.finished != nil })
                let done = try #require(try await scheduler.job(id: job.id))
                #expect(done.success == true)
                #expect(done.result == .object(["x": .integer(1)]))
                #expect(done.started != nil && done.workerId != nil)
                #expect(done.removeAt == done.finished!.addingTimeInterval(60))
                #expect(app.executions.withLock { $0[job.id] } == 1)
            }
        }
    }

    @Test("a failing job auto-retries as new jobs linked by rescheduledFromJob, attempt counting up")
    func retryChain() async throws {
        try await TestRedis.withClient { client, ns in
            try await withWorkerPool(client, namespace: ns) { scheduler, _, events, _ in
                let first = try await scheduler.scheduleJob(WorkerJobConfig(
                    WorkerFlakyJob.self, userId: 7, data: .init(succeedOnAttempt: 3), autoRescheduleOnFailure: true,
                    autoRescheduleOnFailureDelay: 50
                ))
                #expect(try await eventually { events.withLock { $0.contains { $0.success } } })
                let chain = events.withLock { $0 }.sorted { $0.job.attempt < $1.job.attempt }
                #expect(chain.map(\.job.attempt) == [1, 2, 3])
                #expect(chain.map(\.success) == [false, false, true])
                #expect(chain[0].job.id == first.id)
                #expect(chain[1].job.rescheduledFromJob == chain[0].job.id)
                #expect(chain[2].job.rescheduledFromJob == chain[1].job.id)
                #expect(chain[0].followUpJobId == chain[1].job.id)
                let failed = try #require(try await scheduler.job(id: first.id))
                #expect(failed.success == false)
                #expect(failed.result["error"] != nil)
                #expect(failed.result["errorType"]?.jsonText.contains("NotYet") == true)
            }
        }
    }

    @Test("a cron job with a seconds field runs at least 3 times in a chain; a failing cron job's runs fail and its chain continues")
    func cronChains() async throws {
        try await TestRedis.withClient { client, ns in
            try await withWorkerPool(client, namespace: ns) { scheduler, _, events, _ in
                let ok = try await scheduler.scheduleCronJob(WorkerJobConfig(WorkerEchoJob.self, userId: 1, data: .null), cron: "* * * * * *")
                let failing = try await scheduler.scheduleCronJob(
                    WorkerJobConfig(WorkerFlakyJob.self, userId: 1, data: .init(succeedOnAttempt: 99)), cron: "* * * * * *"
                )
                #expect(try await eventually(timeout: .seconds(8)) {
                    events.withLock { all in
                        all.filter { $0.job.type == WorkerEchoJob.typeName }.count >= 3
                            && all.filter { $0.job.type == WorkerFlakyJob.typeName }.count >= 3
                    }
                })
                for (type, root, succeeds) in [(WorkerEchoJob.typeName, ok.id, true), (WorkerFlakyJob.typeName, failing.id, false)] {
                    let runs = events.withLock { $0 }.filter { $0.job.type == type }.sorted { $0.job.id < $1.job.id }
                    #expect(runs[0].job.id == root)
                    #expect(runs.allSatisfy { $0.success == succeeds && $0.written }, "\(type): \(runs.map { ($0.job.id, $0.success, $0.written) })")
                    // Each run is a cron run (attempt 1), not a retry, and its follow-up is the next run.
                    #expect(runs.allSatisfy { $0.job.attempt == 1 }, "\(type): attempts \(runs.map(\.job.attempt))")
                    for (previous, next) in zip(runs, runs.dropFirst()) {
                        #expect(next.job.rescheduledFromJob == previous.job.id)
                        #expect(previous.followUpJobId == next.job.id)
                        #expect(next.job.due.timeIntervalSince(previous.job.due) >= 0.999)
                    }
                    // The stored records say the same: the flaky runs failed with the job's error.
                    let stored = try await scheduler.jobs(ids: runs.map(\.job.id))
                    #expect(stored.count == runs.count)
                    for job in stored {
                        #expect(job.success == succeeds, "job \(job.id) of \(type): \(job.resultJSON ?? "nil")")
                        if !succeeds {
                            #expect(job.result["errorType"]?.jsonText.contains("NotYet") == true, "job \(job.id): \(job.resultJSON ?? "nil")")
                            #expect(job.result["interrupted"] == nil)
                        }
                    }
                }
            }
        }
    }

    @Test("a result over maxResultBytes is not stored: the job fails with a clear error, a result at the limit is kept")
    func resultTooLarge() async throws {
        try await TestRedis.withClient { client, ns in
            try await withWorkerPool(client, namespace: ns, configure: { $0.maxResultBytes = 1_002 }) { scheduler, _, _, _ in
                // A JSON string of 1,000 characters is 1,002 bytes with its quotes.
                let fits = try await scheduler.scheduleJob(WorkerJobConfig(WorkerEchoJob.self, userId: 1, data: .string(String(repeating: "a", count: 1_000))))
                let big = try await scheduler.scheduleJob(WorkerJobConfig(WorkerEchoJob.self, userId: 2, data: .string(String(repeating: "b", count: 1_001))))
                let done = try await eventually { try await scheduler.jobs(ids: [fits.id, big.id]).allSatisfy { $0.finished != nil } }
                #expect(done)
                let kept = try #require(try await scheduler.job(id: fits.id))
                #expect(kept.success == true && kept.resultJSON?.utf8.count == 1_002)
                let refused = try #require(try await scheduler.job(id: big.id))
                #expect(refused.success == false)
                #expect(refused.result["error"] == .string("result too large: 1003 bytes, the limit is 1002 (maxResultBytes)"))
            }
        }
    }

    @Test("a job over its timeout is cancelled and fails as timed out")
    func timeout() async throws {
        try await TestRedis.withClient { client, ns in
            try await withWorkerPool(client, namespace: ns, configure: { $0.jobTimeoutByType = [WorkerSleepJob.typeName: .milliseconds(100)] }) { scheduler, _, _, _ in
                let job = try await scheduler.scheduleJob(WorkerJobConfig(WorkerSleepJob.self, userId: 1, data: .init(ms: 5_000)))
                #expect(try await eventually(timeout: .seconds(3)) { try await scheduler.job(id: job.id)?.finished != nil })
                let done = try #require(try await scheduler.job(id: job.id))
                #expect(done.success == false)
                #expect(done.result["error"] == .string("timed out"))
            }
        }
    }

    @Test("shutdown: a job past the grace period fails as shutdown and its retry is scheduled")
    func gracefulShutdown() async throws {
        try await TestRedis.withClient { client, ns in
            let keys = try ConveyorKeys(namespace: ns)
            let scheduler = JobScheduler(client: client, configuration: .init(keys: keys))
            var job: WorkerJob?
            try await withWorkerPool(client, namespace: ns, configure: {
                $0.shutdownGracePeriod = .milliseconds(200)
                $0.abandonAfter = .seconds(1)
            }) { scheduler, _, _, _ in
                job = try await scheduler.scheduleJob(WorkerJobConfig(
                    WorkerSleepJob.self, userId: 1, data: .init(ms: 10_000), autoRescheduleOnFailure: true, autoRescheduleOnFailureDelay: 60_000
                ))
                #expect(try await eventually { try await scheduler.job(id: job!.id)?.started != nil })
            }
            let stopped = try #require(try await scheduler.job(id: job!.id))
            #expect(stopped.success == false)
            #expect(stopped.result["error"] == .string("shutdown"))
            let retry = try await scheduler.jobs(state: .pending, type: WorkerSleepJob.typeName, userId: 1)
            #expect(retry.count == 1 && retry.first?.rescheduledFromJob == job!.id && retry.first?.attempt == 2)
            #expect(try await scheduler.counts()[.running] == 0)
        }
    }

    @Test("shutdown does not hang on a job that ignores cancellation: after the grace period and abandonAfter it is finished as interrupted by shutdown, and re-run")
    func stubbornJobAtShutdown() async throws {
        try await TestRedis.withClient { client, ns in
            let scheduler = JobScheduler(client: client, configuration: .init(keys: try ConveyorKeys(namespace: ns)))
            var job: WorkerJob?
            let clock = ContinuousClock()
            var stopAsked = clock.now
            try await withWorkerPool(client, namespace: ns, configure: {
                $0.shutdownGracePeriod = .milliseconds(200)
                $0.abandonAfter = .seconds(1)
            }) { scheduler, _, _, _ in
                job = try await scheduler.scheduleJob(WorkerJobConfig(WorkerStubbornJob.self, userId: 1))
                #expect(try await eventually { try await scheduler.job(id: job!.id)?.started != nil })
                stopAsked = clock.now
            }
            let stopTook = clock.now - stopAsked
            // 0.2 s grace + 1 s abandonAfter; the job itself would run 10 s.
            #expect(stopTook >= .milliseconds(1_200) && stopTook < .seconds(5), "waited its grace, then stopped although the job ran on: \(stopTook)")
            let stopped = try #require(try await scheduler.job(id: job!.id))
            #expect(stopped.success == false && stopped.result["error"] == .string("shutdown"))
            #expect(stopped.result["interrupted"] == .bool(true))
            let rerun = try await scheduler.jobs(state: .pending, type: WorkerStubbornJob.typeName, userId: 1)
            #expect(rerun.map(\.rescheduledFromJob) == [job!.id], "an interrupted job runs again")
        }
    }

    @Test("a lost lease: after the grace period the job is recovered as worker lost and re-run, and the old worker's late completion is refused")
    func leaseLoss() async throws {
        try await TestRedis.withClient { client, ns in
            let keys = try ConveyorKeys(namespace: ns)
            let scheduler = JobScheduler(client: client, configuration: .init(keys: keys))
            let store = JobStore(client: client, keys: keys, staleAfterMs: 3_600_000)
            let job = try await scheduler.scheduleJob(WorkerJobConfig(
                WorkerEchoJob.self, userId: 1, data: .null, autoRescheduleOnFailure: true
            ))
            let partition = keys.partition(0)
            let now = Date().milliseconds
            let claimed = try await store.claim(partition: partition, now: now, workerId: "old", maxCount: 10, leaseMs: 1_000)
            #expect(claimed.jobs.map(\.id) == [job.id])
            #expect(claimed.jobs.first?.started == Date(milliseconds: now) && claimed.jobs.first?.workerId == "old")
            // Claiming takes the job out of the pair index: it is no longer pending.
            #expect(try await client.send("HGET", partition.pending, "\(WorkerEchoJob.typeName):1") == .null)
            #expect(try await scheduler.jobs(state: .pending, type: WorkerEchoJob.typeName, userId: 1).isEmpty)
            func recover(at ms: Int) async throws -> Int {
                try await store.recoverExpired(partition: partition, now: ms, estimatedNow: ms, graceMs: 2_000)
            }
            #expect(try await recover(at: now + 500) == 0, "lease valid")
            #expect(try await recover(at: now + 1_001) == 0, "expired: marked, the grace period begins")
            #expect(try await client.send("ZSCORE", partition.suspects, job.id).int == now + 1_001)
            #expect(try await recover(at: now + 3_000) == 0, "still in the grace period")
            #expect(try await recover(at: now + 3_001) == 1, "expired for the whole grace period")
            #expect(try await client.send("ZCARD", partition.suspects).int == 0, "the mark is dropped")
            let lost = try #require(try await scheduler.job(id: job.id))
            #expect(lost.success == false && lost.result["error"] == .string("worker lost"))
            #expect(lost.result["interrupted"] == .bool(true) && lost.result["interruptions"] == .integer(1))
            let late = try await store.complete(
                [.init(id: job.id, success: true, resultJSON: "\"late\"", cronNextDue: nil)], partition: partition, now: now + 4_000,
                workerId: "old"
            )
            #expect(late.first?.written == false)
            #expect(try await scheduler.job(id: job.id)?.result["error"] == .string("worker lost"))
            let retry = try await scheduler.jobs(state: .pending, type: WorkerEchoJob.typeName, userId: 1)
            #expect(retry.first?.rescheduledFromJob == job.id)
        }
    }

    @Test("concurrency 8 over 300 jobs: every job runs exactly once")
    func exactlyOnce() async throws {
        try await TestRedis.withClient { client, ns in
            let (jobs, app, scheduler) = try await withWorkerPool(client, namespace: ns) { scheduler, app, _, _ in
                let jobs = try await scheduler.scheduleJobs((1...300).map { WorkerJobConfig(WorkerEchoJob.self, userId: $0, data: .integer(Int64($0))) })
                #expect(try await eventually(timeout: .seconds(20)) { try await scheduler.counts()[.finished] == 300 })
                return (jobs, app, scheduler)
            }
            // Read once the pool has stopped: a duplicate run that started late is counted too.
            let counts = app.executions.withLock { $0 }
            let twice = counts.filter { $0.value != 1 }
            #expect(counts.count == 300 && twice.isEmpty, "ran \(counts.count) jobs; not exactly once: \(twice.prefix(10))")
            #expect(Set(counts.keys) == Set(jobs.map(\.id)))
            #expect(try await scheduler.counts() == [.pending: 0, .running: 0, .finished: 300])
            #expect(try await scheduler.jobs(ids: jobs.map(\.id)).allSatisfy { $0.success == true && $0.attempt == 1 })
        }
    }
}
