import ConveyorRedis
import ConveyorTesting
import Foundation
import Synchronization
import Testing

@testable import Conveyor

// Job types whose names look like keys, hash tags and glob patterns: a name
// must never steer a script to a key outside its namespace. (`:` is refused in
// type names, see NamespaceIsolationTests.)

/// A type name made of hash tags and a key suffix.
struct KeyLikeNameJob: Job {
    static let typeName = "{p0}due{p1}"
    func run(_ params: JobParams<WorkerTestApp, JSONValue>) async throws -> JSONValue { params.input }
}

/// Braces, glob characters and spaces.
struct GlobNameJob: Job {
    static let typeName = "}{*?[x] sp ace*"
    func run(_ params: JobParams<WorkerTestApp, JSONValue>) async throws -> JSONValue { params.input }
}

/// Non-ASCII, with another partition's hash tag.
struct UnicodeNameJob: Job {
    static let typeName = "ünï cødé ✓ 日本 {p1}"
    func run(_ params: JobParams<WorkerTestApp, JSONValue>) async throws -> JSONValue { params.input }
}

/// Fails its first attempt, so the retry path (a follow-up job) runs too.
struct FailOnceJob: Job {
    static let typeName = "fail once *"
    struct FirstAttempt: Error {}
    func run(_ params: JobParams<WorkerTestApp, JSONValue>) async throws -> JSONValue {
        guard params.job.attempt > 1 else { throw FirstAttempt() }
        return params.input
    }
}

/// The scheduling → worker → archiver path, run end to end on one client: the
/// part of Conveyor the production-Redis tests (TLS, ACL user, namespace
/// isolation) run under their special conditions.
enum ProductionPath {
    struct Outcome {
        /// Every job that existed: the scheduled ones and the retry follow-up.
        var jobIds: Set<Int>
        /// What the archiver wrote to the history.
        var archivedIds: Set<Int>
        /// Jobs per state in Redis at the end (all zero when everything was archived).
        var counts: [WorkerJob.State: Int]
        /// The finished jobs as the inspector listed them before archiving.
        var finishedBeforeArchiving: [WorkerJob]
        /// What `cancelJob` reported for the job due in an hour.
        var cancelOutcome: CancelOutcome
    }

    static let typeNames = [KeyLikeNameJob.typeName, GlobNameJob.typeName, UnicodeNameJob.typeName, FailOnceJob.typeName]

    /// Data that names keys of other namespaces and glob patterns.
    static func data(_ namespace: String, _ index: Int) -> String {
        #"{"n":\#(index),"key":"\#(namespace)x:{p0}:due","victim":"other:victim","glob":"*","tag":"{p0}","text":"ünï ✓ \"q\""}"#
    }

    /// Schedules `perType` jobs of each odd type (users 1…perType, ids
    /// across `partitions`), one job that fails once and is retried, and one
    /// cancelled job; runs a worker pool (with worker id `workerId`) and an
    /// archiver until every job is archived.
    static func run(
        _ client: RedisClient, namespace: String, partitions: Int = 3, perType: Int = 4, workerId: String? = nil,
        timeout: Duration = .seconds(60)
    ) async throws -> Outcome {
        let keys = try ConveyorKeys(namespace: namespace, partitionCount: partitions)
        var registry = JobRegistry<WorkerTestApp>()
        registry.register(KeyLikeNameJob.self)
        registry.register(GlobNameJob.self)
        registry.register(UnicodeNameJob.self)
        registry.register(FailOnceJob.self)
        var poolConfiguration = WorkerPoolConfiguration(concurrency: 4, keys: keys)
        poolConfiguration.maxIdleWait = .milliseconds(200)
        poolConfiguration.recoveryInterval = .milliseconds(300)
        poolConfiguration.failedJobRetention = .zero  // the failed run is archived with the rest
        if let workerId { poolConfiguration.workerId = workerId }
        let scheduler = JobScheduler(client: client, configuration: .init(keys: keys))

        let configs = [KeyLikeNameJob.typeName, GlobNameJob.typeName, UnicodeNameJob.typeName].flatMap { type in
            (1...perType).map { UntypedJobConfig(type: type, userId: $0, dataJSON: data(namespace, $0)) }
        }
        var jobIds = Set(try await scheduler.scheduleJobs(configs).map(\.id))
        let failing = try await scheduler.scheduleJob(
            UntypedJobConfig(type: FailOnceJob.typeName, userId: 7, dataJSON: data(namespace, 0), autoRescheduleOnFailure: true)
        )
        jobIds.insert(failing.id)
        let later = try await scheduler.scheduleJob(
            UntypedJobConfig(type: GlobNameJob.typeName, userId: 99, due: Date().addingTimeInterval(3600), dataJSON: data(namespace, 99))
        )
        jobIds.insert(later.id)
        let cancelOutcome = try await scheduler.cancelJob(id: later.id)

        let pool = WorkerPool(client: client, registry: registry, app: WorkerTestApp(), configuration: poolConfiguration)
        let runningPool = Task { try await pool.run() }
        defer { pool.beginShutdown() }
        // The follow-up of the failing job has a new id: wait for 2 jobs of its user.
        let ran = try await eventually(timeout: timeout) {
            let finished = try await scheduler.jobs(state: .finished, limit: 1_000)
            return finished.count == jobIds.count + 1 && finished.allSatisfy { $0.state == .finished }
        }
        let countsAfterRun = try await scheduler.counts()
        #expect(ran, "counts: \(countsAfterRun)")
        let finishedBeforeArchiving = try await scheduler.jobs(state: .finished, limit: 1_000)
        jobIds.formUnion(finishedBeforeArchiving.map(\.id))
        pool.beginShutdown()
        try await runningPool.value

        let directory = ArchiverTestSupport.temporaryDirectory("production-path")
        defer { try? FileManager.default.removeItem(atPath: directory) }
        let events = ArchiverEventLog()
        try await ArchiverTestSupport.withArchiver(client, ArchiverTestSupport.configuration(directory, keys: keys), events: events) { _ in
            let archived = try await eventually(timeout: timeout) { Set(events.archivedIds).isSuperset(of: jobIds) }
            #expect(archived, "archived \(events.archivedIds.count) of \(jobIds.count); failures: \(events.failures)")
        }
        // The operator's read paths (archiver --status, jobs counts) under the same conditions.
        #expect(try await Archiver.backlog(client: client, keys: keys) == 0)
        _ = try await Archiver.claims(client: client, keys: keys)
        return Outcome(
            jobIds: jobIds, archivedIds: Set(events.archivedIds), counts: try await scheduler.counts(),
            finishedBeforeArchiving: finishedBeforeArchiving, cancelOutcome: cancelOutcome
        )
    }

    /// Checks what every run must show: all jobs ran, the failing one was
    /// retried, the cancelled one was cancelled, everything was archived.
    static func expectComplete(_ outcome: Outcome, perType: Int = 4) {
        #expect(outcome.cancelOutcome == .cancelled)
        #expect(outcome.jobIds.count == 3 * perType + 3, "scheduled, retry follow-up and cancelled: \(outcome.jobIds.count)")
        #expect(outcome.archivedIds.isSuperset(of: outcome.jobIds))
        #expect(outcome.counts.values.allSatisfy { $0 == 0 }, "left in Redis: \(outcome.counts)")
        let byType = Dictionary(grouping: outcome.finishedBeforeArchiving, by: \.type)
        for type in [KeyLikeNameJob.typeName, GlobNameJob.typeName, UnicodeNameJob.typeName] {
            #expect(byType[type]?.filter { $0.success == true }.count == perType, "type \(type)")
        }
        let failOnce = byType[FailOnceJob.typeName] ?? []
        #expect(failOnce.count == 2 && Set(failOnce.compactMap(\.success)) == [false, true], "\(failOnce.map(\.success))")
    }
}
