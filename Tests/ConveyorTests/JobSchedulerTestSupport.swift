@testable import Conveyor
import Foundation
import Testing

// MARK: - Job types of the scheduler tests

/// The app context of the scheduler tests' job types (never used: nothing runs).
struct SchedulerTestApp: Sendable {}

/// A job with a structured input.
struct SendEmailTestJob: Job {
    typealias App = SchedulerTestApp
    struct Input: Codable, Sendable, Hashable {
        var to: String
        var subject: String
        var tags: [String] = []
        var attempts: Int = 0
    }
    typealias Output = Nothing
    static let typeName = "sendEmail"

    func run(_ params: JobParams<SchedulerTestApp, Input>) async throws -> Nothing { Nothing() }
}

/// A job without input.
struct SyncInboxTestJob: Job {
    typealias App = SchedulerTestApp
    typealias Input = Nothing
    typealias Output = Nothing
    static let typeName = "syncInbox"

    func run(_ params: JobParams<SchedulerTestApp, Nothing>) async throws -> Nothing { Nothing() }
}

/// A job whose input can hold a value JSON cannot encode (`Double.nan`).
struct MeasureTestJob: Job {
    typealias App = SchedulerTestApp
    struct Input: Codable, Sendable, Hashable {
        var value: Double
    }
    typealias Output = Nothing
    static let typeName = "measure"

    func run(_ params: JobParams<SchedulerTestApp, Input>) async throws -> Nothing { Nothing() }
}

/// A job whose input is a bare JSON string.
struct NoteTestJob: Job {
    typealias App = SchedulerTestApp
    typealias Input = String
    typealias Output = Nothing
    static let typeName = "note"

    func run(_ params: JobParams<SchedulerTestApp, String>) async throws -> Nothing { Nothing() }
}

// MARK: - Harness

/// 2026-11-29T01:02:03.456Z, the default start of a harness clock.
let schedulerTestStart = 1_795_914_123_456

/// A scheduler on a fresh namespace with a hand-moved clock, plus direct
/// script calls that play a worker (claim, complete).
struct SchedulerHarness: Sendable {
    let client: RedisClient
    let namespace: String
    let keys: ConveyorKeys
    let clock: TestClock
    let scheduler: JobScheduler

    /// Runs `body` with a harness; the namespace's keys are deleted afterwards.
    static func run<T>(
        partitionCount: Int = 1,
        startMilliseconds: Int = schedulerTestStart,
        poolSize: Int = 4,
        configure: (inout JobScheduler.Configuration) -> Void = { _ in },
        _ body: (SchedulerHarness) async throws -> T
    ) async throws -> T {
        try await TestRedis.withClient(poolSize: poolSize) { client, namespace in
            let keys = try ConveyorKeys(namespace: namespace, partitionCount: partitionCount, partitionTags: TestRedis.partitionTags)
            let clock = TestClock(milliseconds: startMilliseconds)
            var configuration = JobScheduler.Configuration(keys: keys)
            configuration.testClock = { clock.now }
            configure(&configuration)
            let harness = SchedulerHarness(
                client: client, namespace: namespace, keys: keys, clock: clock,
                scheduler: JobScheduler(client: client, configuration: configuration)
            )
            return try await body(harness)
        }
    }

    /// Claims due jobs of one partition as `workerId`, at the clock's now (`claimJobs`).
    @discardableResult
    func claim(
        partition index: Int = 0, workerId: String = "worker-1", maxCount: Int = 100, leaseMs: Int = 30_000
    ) async throws -> [WorkerJob] {
        let store = JobStore(client: client, keys: keys, staleAfterMs: 3_600_000)
        return try await store.claim(
            partition: keys.partition(index), now: clock.nowMilliseconds, workerId: workerId, maxCount: maxCount, leaseMs: leaseMs
        ).jobs
    }

    /// Completes one running job as `workerId`, at the clock's now (`completeJobs`).
    /// - Returns: The script's outcome code (1 completed, 2 lease lost) and follow-up id.
    @discardableResult
    func complete(
        _ id: Int, success: Bool, resultJSON: String = "", workerId: String = "worker-1", cronNextDue: Int? = nil,
        failedKeepMs: Int = 7 * 86_400_000, maxFailed: Int = 10_000
    ) async throws -> (outcome: Int, newJobId: Int) {
        let p = keys.partition(ofJob: id)
        let reply = try await client.eval(ScriptSignature.completeJobs.call(
            p,
            [
                clock.nowMilliseconds, 3_600_000, keys.partitionCount, p.index, workerId, 3, failedKeepMs, maxFailed, 1,
                id, success ? "1" : "0", resultJSON, cronNextDue.map(String.init) ?? "",
            ]
        ))
        let entry = try #require(reply.array, "completeJobs returned \(reply)")
        try #require(entry.count == 2, "completeJobs returned \(reply)")
        return (try #require(entry[0].int), try #require(entry[1].int))
    }

    /// Every key of the namespace.
    func namespaceKeys() async throws -> [String] {
        try await TestRedis.keys(client, namespace: namespace)
    }

    /// Every key of the namespace with its `DUMP` (the serialized value, byte for byte)
    /// and `PTTL`: two snapshots are equal only if nothing was written in between.
    func namespaceSnapshot() async throws -> [String: [RESPValue]] {
        var snapshot: [String: [RESPValue]] = [:]
        for key in try await namespaceKeys() {
            snapshot[key] = [try await client.send("DUMP", key), try await client.send("PTTL", key)]
        }
        return snapshot
    }

    /// The job, which must exist.
    func requireJob(_ id: Int, sourceLocation: SourceLocation = #_sourceLocation) async throws -> WorkerJob {
        try #require(try await scheduler.job(id: id), "job \(id) not found", sourceLocation: sourceLocation)
    }
}

/// The result the replace rule writes into the job it cancels.
func replacedResult(by id: Int) -> String { #"{"cancelled":true,"replacedBy":\#(id)}"# }

/// `date` in whole milliseconds since the Unix epoch.
func epochMilliseconds(_ date: Date) -> Int { Int((date.timeIntervalSince1970 * 1000).rounded(.down)) }

/// A date at `milliseconds` since the Unix epoch.
func dateAt(milliseconds: Int) -> Date { Date(timeIntervalSince1970: Double(milliseconds) / 1000) }

/// Runs `body` and returns the ``ConveyorError`` it throws (or records an issue).
func conveyorError(
    sourceLocation: SourceLocation = #_sourceLocation, _ body: () async throws -> Void
) async -> ConveyorError? {
    do {
        try await body()
        Issue.record("expected a ConveyorError, nothing was thrown", sourceLocation: sourceLocation)
        return nil
    } catch let error as ConveyorError {
        return error
    } catch {
        Issue.record("expected a ConveyorError, got \(error)", sourceLocation: sourceLocation)
        return nil
    }
}
