@testable import Conveyor
import Foundation
import Logging
import Synchronization
import Testing

private typealias Support = ArchiverTestSupport

@Suite("Finished jobs awaiting an archiver")
struct ArchiverLivenessTests {
    @Test("archiveBacklog counts the jobs due for archiving on Redis's clock, how overdue the oldest is, and whether an archiver runs")
    func backlog() async throws {
        try await TestRedis.withClient { client, ns in
            let keys = try ConveyorKeys(namespace: ns, partitionCount: 3, partitionTags: TestRedis.partitionTags)
            let inspector = JobInspector(client: client, keys: keys)
            let due = try await Support.makeFinishedJobs(client, keys: keys, count: 6, removeDelay: 0)
            let later = try await Support.makeFinishedJobs(client, keys: keys, count: 2, firstUser: 100, removeDelay: 3_600_000)
            try await Task.sleep(for: .milliseconds(30))
            let oldest = try #require(due.compactMap(\.removeAt).min()).milliseconds
            let before = try await redisTimeMs(client)
            let backlog = try await inspector.archiveBacklog()
            let after = try await redisTimeMs(client)
            #expect(backlog.finished == 8 && backlog.awaitingArchive == 6 && backlog.aliveArchiver == nil, "\(backlog)")
            let overdue = try #require(backlog.oldestOverdueMs)
            #expect((before - oldest...after - oldest).contains(overdue), "\(overdue) ms, by Redis's clock")

            let hourLater = try #require(later.compactMap(\.removeAt).max()).milliseconds + 3_600_000
            let then = try await inspector.archiveBacklog(now: hourLater)
            #expect(then.awaitingArchive == 8 && then.oldestOverdueMs == hourLater - oldest)

            let directory = Support.temporaryDirectory()
            defer { try? FileManager.default.removeItem(atPath: directory) }
            try await Support.withArchiver(client, Support.configuration(directory, keys: keys, archiverId: "alive-1")) { _ async throws in
                let archived = try await eventually {
                    let now = try await inspector.archiveBacklog()
                    return now.awaitingArchive == 0 && now.aliveArchiver == "alive-1"
                }
                #expect(archived)
            }
            let left = try await inspector.archiveBacklog()
            #expect(left.finished == 2 && left.awaitingArchive == 0 && left.oldestOverdueMs == nil)
            let ttl = try #require(try await client.send("PTTL", keys.archiverAlive).int)
            #expect((1...Archiver.heartbeatTTLMs).contains(ttl), "the mark expires: \(ttl) ms")
        }
    }

    @Test("jobs counts shows them, in text and --json, next to the fields it printed before")
    func countsCommand() async throws {
        try await TestRedis.withClient { client, ns in
            let keys = try ConveyorKeys(namespace: ns)
            _ = try await Support.makeFinishedJobs(client, keys: keys, count: 2, removeDelay: 0)
            _ = try await Support.makeFinishedJobs(client, keys: keys, count: 1, firstUser: 50, removeDelay: 3_600_000)
            let url = try await TestRedis.url()
            let json = try await HistoryLogTests.runCLI(["jobs", "counts", "--json", "--redis", url, "--namespace", ns])
            let line = try #require(json.split(separator: "\n").last(where: { $0.hasPrefix("{") }), "\(json)")
            let object = try #require(try JSONSerialization.jsonObject(with: Data(line.utf8)) as? [String: Any])
            #expect(object["pending"] as? Int == 0 && object["running"] as? Int == 0 && object["finished"] as? Int == 3)
            #expect(object["parkedByType"] is [String: Any])
            #expect(object["awaitingArchive"] as? Int == 2)
            #expect((object["oldestArchiveOverdueMs"] as? Int).map { $0 >= 0 && $0 < 60_000 } == true, "\(line)")
            #expect(object["aliveArchiver"] is NSNull, "\(line)")

            _ = try await client.send("SET", keys.archiverAlive, "arch-7", "PX", 60_000)
            let text = try await HistoryLogTests.runCLI(["jobs", "counts", "--redis", url, "--namespace", ns])
            #expect(text.contains("finished: 3"), "\(text)")
            #expect(text.contains("finished, awaiting archive: 2 (oldest "), "\(text)")
            #expect(text.contains("archiver: running (arch-7)"), "\(text)")
        }
    }

    @Test("a worker pool warns once per episode when finished jobs wait past the threshold and no archiver runs")
    func workerWarning() async throws {
        try await TestRedis.withClient { client, ns in
            let keys = try ConveyorKeys(namespace: ns)
            let sink = LogLines()
            var logger = Logger(label: "test") { _ in LineCapture(sink: sink) }
            logger.logLevel = .debug
            var configuration = WorkerPoolConfiguration(concurrency: 2, keys: keys)
            configuration.archiverMissingWarning = .milliseconds(300)
            configuration.archiverCheckInterval = .milliseconds(50)
            var registry = JobRegistry<WorkerTestApp>()
            registry.register(WorkerEchoJob.self)
            let pool = WorkerPool(client: client, registry: registry, app: WorkerTestApp(), configuration: configuration, logger: logger)
            let running = Task { try await pool.run() }
            defer { running.cancel() }
            let warning = "finished jobs are waiting for an archiver"
            let recovered = "finished jobs are being archived again"
            // The pool runs the jobs itself (it would give back jobs of a type it does not know).
            let scheduler = JobScheduler(client: client, configuration: .init(keys: keys))
            func finish(_ count: Int, firstUser: Int) async throws {
                let specs = (0..<count).map { index in
                    JobSpec(
                        type: WorkerEchoJob.typeName, userId: firstUser + index, dataJSON: "{}", due: nil, cron: nil,
                        autoRescheduleOnFailure: false, autoRescheduleOnFailureDelay: 0, removeDelay: 0
                    )
                }
                let ids = try await scheduler.schedule(specs).map(\.id)
                let done = try await eventually { try await scheduler.jobs(ids: ids).allSatisfy { $0.finished != nil } }
                #expect(done)
            }

            try await finish(3, firstUser: 1)
            #expect(try await eventually { sink.count(warning, at: .warning) == 1 })
            try await Task.sleep(for: .milliseconds(500))  // ten more checks
            #expect(sink.count(warning, at: .warning) == 1, "one warning per episode: \(sink.all)")
            #expect(sink.count(warning, at: .debug) >= 3, "the episode goes on at debug")

            // An archiver runs: the episode ends, once.
            let directory = Support.temporaryDirectory()
            defer { try? FileManager.default.removeItem(atPath: directory) }
            try await Support.withArchiver(client, Support.configuration(directory, keys: keys, archiverId: "back")) { _ async throws in
                #expect(try await eventually { sink.count(recovered, at: .info) == 1 })
            }
            // Overdue jobs while an archiver is alive (it is behind, or they
            // are held by a dead identity): no warning.
            try await finish(2, firstUser: 10)
            try await Task.sleep(for: .milliseconds(700))
            #expect(sink.count(warning, at: .warning) == 1, "an archiver ran within the last minute")
            // The mark expires: a second episode, a second warning.
            _ = try await client.send("DEL", keys.archiverAlive)
            #expect(try await eventually { sink.count(warning, at: .warning) == 2 }, "\(sink.all.suffix(8))")
            pool.beginShutdown()
            try await running.value
            #expect(sink.count(recovered, at: .info) == 1)
        }
    }
}

final class LogLines: Sendable {
    private let lines = Mutex<[(level: Logger.Level, message: String)]>([])
    func append(_ level: Logger.Level, _ message: String) { lines.withLock { $0.append((level, message)) } }
    func count(_ prefix: String, at level: Logger.Level) -> Int {
        lines.withLock { $0.filter { $0.level == level && $0.message.hasPrefix(prefix) }.count }
    }
    var all: [String] { lines.withLock { $0.map { "\($0.level): \($0.message)" } } }
}

/// Keeps every message with its level.
struct LineCapture: LogHandler {
    let sink: LogLines
    var metadata: Logger.Metadata = [:]
    var logLevel: Logger.Level = .trace

    subscript(metadataKey key: String) -> Logger.Metadata.Value? {
        get { metadata[key] }
        set { metadata[key] = newValue }
    }

    func log(event: LogEvent) {
        sink.append(event.level, event.message.description)
    }
}
