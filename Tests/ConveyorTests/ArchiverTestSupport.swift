@testable import Conveyor
import Foundation
import Synchronization
import Testing

#if canImport(Glibc)
import Glibc
#endif

/// What an archiver reported, in order.
final class ArchiverEventLog: Sendable {
    private let events = Mutex<[ArchiverEvent]>([])
    init() {}
    func append(_ event: ArchiverEvent) { events.withLock { $0.append(event) } }
    var all: [ArchiverEvent] { events.withLock { $0 } }
    var failures: [String] {
        all.compactMap { if case .failed(let message, _) = $0 { return message } else { return nil } }
    }
    var diskFullFailures: Int {
        all.filter { if case .failed(_, true) = $0 { return true } else { return false } }.count
    }
    var resumes: [(alreadyInLog: Int, written: Int)] {
        all.compactMap { if case .resumed(_, _, let already, let written) = $0 { return (already, written) } else { return nil } }
    }
    var repairedBytes: [Int] {
        all.compactMap { if case .started(_, _, let bytes) = $0 { return bytes } else { return nil } }
    }
    var archivedIds: [Int] {
        all.flatMap { if case .archived(_, _, let ids, _) = $0 { return ids } else { return [] } }
    }
}

enum ArchiverTestSupport {
    /// A fresh temporary directory path (not created).
    static func temporaryDirectory(_ label: String = "history") -> String {
        FileManager.default.temporaryDirectory.appendingPathComponent("conveyor-\(label)-\(UUID().uuidString)").path
    }

    /// Schedules `count` jobs and plays a worker that finishes all of them at
    /// once: every third user's fails, every fifth carries a payload longer
    /// than 64 bytes (stored in parts). The failed ones are kept as long as
    /// `removeDelay` (the worker's failed-job retention), so every job of a
    /// call is due for archiving at the same time. Returns the finished jobs
    /// as Redis holds them.
    @discardableResult
    static func makeFinishedJobs(
        _ client: RedisClient, keys: ConveyorKeys, count: Int, firstUser: Int = 1, type: String = "archiveTest",
        removeDelay: Int = 0, payloadBytes: Int = 100, read: Bool = true
    ) async throws -> [WorkerJob] {
        let scheduler = JobScheduler(client: client, configuration: .init(keys: keys))
        let filler = String(repeating: "x", count: payloadBytes)
        let specs = (0..<count).map { index in
            JobSpec(
                type: type, userId: firstUser + index,
                dataJSON: index % 5 == 0 ? #"{"n":\#(index),"text":"\#(filler)"}"# : #"{"n":\#(index)}"#, due: nil, cron: nil,
                autoRescheduleOnFailure: false, autoRescheduleOnFailureDelay: 0, removeDelay: removeDelay
            )
        }
        var created: [WorkerJob] = []
        for start in stride(from: 0, to: specs.count, by: 1000) {
            created += try await scheduler.schedule(Array(specs[start..<min(start + 1000, specs.count)]))
        }
        try await finishAllDue(client, keys: keys, failedKeepMs: removeDelay)
        return read ? try await scheduler.jobs(ids: created.map(\.id)) : created
    }

    /// Claims and completes every due job, as a worker would.
    static func finishAllDue(
        _ client: RedisClient, keys: ConveyorKeys, workerId: String = "archive-test-worker", failedKeepMs: Int = 0
    ) async throws {
        let store = JobStore(client: client, keys: keys, staleAfterMs: 3_600_000, failedRetention: .init(ms: failedKeepMs))
        for partition in keys.partitions {
            while true {
                let now = Date().milliseconds
                let (jobs, _, _) = try await store.claim(partition: partition, now: now, workerId: workerId, maxCount: 500, leaseMs: 60_000)
                if jobs.isEmpty { break }
                let completions = jobs.map { job in
                    job.userId % 3 == 0
                        ? JobStore.Completion(id: job.id, success: false, resultJSON: #"{"error":"failed on purpose"}"#, cronNextDue: nil)
                        : JobStore.Completion(id: job.id, success: true, resultJSON: #"{"ok":\#(job.id)}"#, cronNextDue: nil)
                }
                _ = try await store.complete(completions, partition: partition, now: Date().milliseconds, workerId: workerId)
            }
        }
    }

    /// Every record id in the directory's history files, in file and line
    /// order; records a test issue for a file that does not end in `\n` or a
    /// line that does not decode.
    static func loggedIds(_ directory: String, sourceLocation: SourceLocation = #_sourceLocation) throws -> [Int] {
        var ids: [Int] = []
        for file in try HistoryFile.list(directory: directory) {
            let data = Data(try HistoryCompressor.decompressedContents(of: file))
            if let last = data.last { #expect(last == UInt8(ascii: "\n"), "\(file.name) ends in a torn line", sourceLocation: sourceLocation) }
            for line in data.split(separator: UInt8(ascii: "\n")) {
                do {
                    ids.append(try JSONDecoder().decode(HistoryRecordID.self, from: Data(line)).id)
                } catch {
                    Issue.record("\(file.name): a line does not decode: \(String(decoding: line.prefix(80), as: UTF8.self))", sourceLocation: sourceLocation)
                }
            }
        }
        return ids
    }

    /// Ids that occur more than once.
    static func duplicates(_ ids: [Int]) -> [Int] {
        var counts: [Int: Int] = [:]
        for id in ids { counts[id, default: 0] += 1 }
        return counts.filter { $0.value > 1 }.map(\.key).sorted()
    }

    /// Finished jobs, claims and job hashes left in Redis.
    static func leftInRedis(_ client: RedisClient, keys: ConveyorKeys) async throws -> (finished: Int, claims: Int, jobHashes: Int) {
        var finished = 0
        var claims = 0
        var hashes = 0
        for partition in keys.partitions {
            finished += try await client.send("ZCARD", partition.finished).int ?? 0
            claims += try await client.send("HLEN", partition.archiving).int ?? 0
        }
        for key in try await TestRedis.keys(client, namespace: keys.namespace) where key.contains(":job:") { hashes += 1 }
        return (finished, claims, hashes)
    }

    /// Whether no finished job, claim or job hash is left in Redis.
    static func isClean(_ client: RedisClient, keys: ConveyorKeys) async throws -> Bool {
        let left = try await leftInRedis(client, keys: keys)
        return left.finished == 0 && left.claims == 0 && left.jobHashes == 0
    }

    /// Runs an archiver for the duration of `body`, then shuts it down gracefully.
    static func withArchiver(
        _ client: RedisClient, _ configuration: ArchiverConfiguration, events: ArchiverEventLog = ArchiverEventLog(),
        _ body: (Archiver) async throws -> Void
    ) async throws {
        let archiver = Archiver(client: client, configuration: configuration) { events.append($0) }
        let running = Task { try await archiver.run() }
        do {
            try await body(archiver)
            archiver.beginShutdown()
            try await running.value
        } catch {
            archiver.beginShutdown()
            try? await running.value
            throw error
        }
    }

    /// A configuration for tests: short intervals, small batches.
    static func configuration(
        _ directory: String, keys: ConveyorKeys, archiverId: String? = nil, batchSize: Int = 100
    ) -> ArchiverConfiguration {
        ArchiverConfiguration(
            historyDirectory: directory, keys: keys, archiverId: archiverId, passInterval: .milliseconds(100), batchSize: batchSize,
            retryInitialDelay: .milliseconds(50), retryMaxDelay: .milliseconds(200)
        )
    }

    /// Whether this process may mount a tmpfs (root with CAP_SYS_ADMIN), to
    /// make a read-only or full file system for real.
    static let canMountTmpfs: Bool = {
        #if os(Linux)
        let probe = temporaryDirectory("mount-probe")
        guard mkdir(probe, 0o755) == 0 else { return false }
        defer { rmdir(probe) }
        guard mount("tmpfs", probe, "tmpfs", 0, "size=64k") == 0 else { return false }
        umount2(probe, Int32(MNT_DETACH))
        return true
        #else
        return false
        #endif
    }()
}
