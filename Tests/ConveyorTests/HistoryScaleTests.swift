@testable import Conveyor
import Foundation
import Logging
import Synchronization
import Testing

private typealias Support = ArchiverTestSupport

/// Compression, indexes, retention and repeated ids of the history log.
@Suite("History at scale")
struct HistoryScaleTests {
    /// A finished job with the fields the tests vary.
    static func job(
        id: Int, type: String = "scaleTest", user: Int = 1, created: Int, finished: Int? = nil, from parent: Int? = nil,
        success: Bool = true, data: String = #"{"n":1}"#
    ) -> WorkerJob {
        WorkerJob(
            id: id, type: type, userId: user, dataJSON: data, due: Date(milliseconds: created), started: Date(milliseconds: created + 1),
            finished: Date(milliseconds: finished ?? created + 2), success: success, resultJSON: #"{"ok":true}"#, cronSchedule: nil,
            cronTimeZone: nil, autoRescheduleOnFailure: false, autoRescheduleOnFailureDelay: 0, removeDelay: 0,
            rescheduledFromJob: parent, attempt: 1, createdAt: Date(milliseconds: created), workerId: "w"
        )
    }

    /// Writes `entries` as one history file of identity `archiverId`.
    static func writeFile(_ directory: String, archiverId: String = "gen", sequence: Int, _ entries: [HistoryEntry]) throws -> HistoryFile {
        try FileManager.default.createDirectory(atPath: directory, withIntermediateDirectories: true)
        let name = HistoryFile.name(createdAt: entries.first?.archivedAt ?? Date(), archiverId: archiverId, sequence: sequence)
        let file = try #require(HistoryFile(name: name, directory: directory))
        try Data(try HistoryEntry.lines(entries)).write(to: URL(fileURLWithPath: file.path))
        return file
    }

    @Test("a real archiver compresses its rotated files (verified, with an index; gzip reads them) and queries read plain and compressed alike")
    func archiverCompresses() async throws {
        try await TestRedis.withClient { client, ns in
            let keys = try ConveyorKeys(namespace: ns)
            let directory = Support.temporaryDirectory()
            defer { try? FileManager.default.removeItem(atPath: directory) }
            var configuration = Support.configuration(directory, keys: keys, archiverId: "gz", batchSize: 50)
            configuration.maxFileSize = 16 * 1024
            configuration.maintenanceInterval = .milliseconds(100)
            let jobs = try await Support.makeFinishedJobs(client, keys: keys, count: 600, type: "gzTest")
            let events = ArchiverEventLog()
            try await Support.withArchiver(client, configuration, events: events) { _ async throws in
                #expect(try await eventually { try await Support.isClean(client, keys: keys) })
                // Every file but the one being written ends up compressed.
                #expect(try await eventually(timeout: .seconds(90)) { try HistoryFile.list(directory: directory).dropLast().allSatisfy(\.isCompressed) })
            }
            let files = try HistoryFile.list(directory: directory)
            #expect(files.count >= 5 && files.last?.isCompressed == false, "\(files.map(\.name))")
            let names = try FileManager.default.contentsOfDirectory(atPath: directory)
            #expect(!names.contains { $0.contains(".tmp-") }, "\(names)")
            var plainBytes = 0
            var compressedBytes = 0
            for file in files.dropLast() {
                #expect(!names.contains(file.stem + ".jsonl"), "the original of \(file.name) is gone")
                let size = try #require(HistoryMaintenance.fileSize(file.path))
                let index = try #require(HistoryIndex.load(for: file, fileSize: size), "\(file.name) has its index")
                let contents = try HistoryCompressor.decompressedContents(of: file)
                #expect(index.dataSize == contents.count && index.records == contents.split(separator: 0x0A).count)
                // The system's gzip reads the concatenated members as one file.
                let gunzip = Process()
                gunzip.executableURL = URL(fileURLWithPath: "/bin/gzip")
                gunzip.arguments = ["-dc", file.path]
                let pipe = Pipe()
                gunzip.standardOutput = pipe
                try gunzip.run()
                let output = pipe.fileHandleForReading.readDataToEndOfFile()
                gunzip.waitUntilExit()
                #expect(gunzip.terminationStatus == 0 && Array(output) == contents)
                plainBytes += contents.count
                compressedBytes += size
            }
            print("history compression (archiver test records): \(plainBytes) -> \(compressedBytes) bytes, ratio \(Double(plainBytes) / Double(max(compressedBytes, 1)))")
            #expect(compressedBytes * 3 < plainBytes, "gzip shrinks JSON lines at least threefold")
            #expect(events.all.contains { if case .maintained(let report) = $0 { return !report.compressed.isEmpty } else { return false } })

            let ids = try Support.loggedIds(directory)
            #expect(ids.sorted() == jobs.map(\.id).sorted() && Support.duplicates(ids).isEmpty)
            let log = HistoryLog(directory: directory)
            #expect(try await log.entries(matching: HistoryQuery(limit: nil)).count == 600)
            let oldest = try #require(jobs.min { $0.id < $1.id })
            #expect(try await log.job(id: oldest.id)?.data == oldest.data)
            #expect(try await log.jobs(matching: HistoryQuery(userId: jobs[321].userId)).map(\.id) == [jobs[321].id])
            #expect(try await log.jobs(matching: HistoryQuery(type: "nope", limit: nil)).isEmpty)
        }
    }

    @Test("indexed and compressed files answer every kind of query exactly as the plain file does, and a stale index is ignored")
    func indexedQueriesMatchPlain() async throws {
        let plainDirectory = Support.temporaryDirectory("plain")
        let packedDirectory = Support.temporaryDirectory("packed")
        defer {
            try? FileManager.default.removeItem(atPath: plainDirectory)
            try? FileManager.default.removeItem(atPath: packedDirectory)
        }
        let base = 1_795_914_123_000
        let types = ["alpha", "beta", "gamma", "rare"]
        var sequence = 0
        for part in 0..<3 {
            // 6,000 records per file: several 1 MiB blocks, with ids, users, times and types spread out.
            let entries = (0..<6000).map { index -> HistoryEntry in
                let n = part * 6000 + index
                let job = Self.job(
                    id: 1000 + n, type: n % 997 == 0 ? "rare" : types[n % 3], user: (n * 7919) % 5000, created: base + n * 1000,
                    finished: base + n * 1000 + 500, success: n % 4 != 0, data: #"{"n":\#(n),"pad":"\#(String(repeating: "p", count: 120))","id":5}"#
                )
                return HistoryEntry(job: job, archivedAt: Date(milliseconds: base + n * 1000 + 900))
            }
            sequence += 1
            _ = try Self.writeFile(plainDirectory, sequence: sequence, entries)
            let packed = try Self.writeFile(packedDirectory, sequence: sequence, entries)
            if part < 2 { try HistoryCompressor.compress(packed, tag: "t") }
        }
        let packedFiles = try HistoryFile.list(directory: packedDirectory)
        #expect(packedFiles.map(\.isCompressed) == [true, true, false])
        let index = try #require(HistoryIndex.load(for: packedFiles[0], fileSize: HistoryMaintenance.fileSize(packedFiles[0].path)!))
        #expect(index.blocks.count >= 3 && index.records == 6000, "\(index.blocks.count) blocks")
        #expect(index.header.summary.minId == 1000 && index.header.summary.maxId == 6999 && index.header.summary.types == ["alpha", "beta", "gamma", "rare"])

        let plain = HistoryLog(directory: plainDirectory)
        let packed = HistoryLog(directory: packedDirectory)
        let queries: [HistoryQuery] = [
            HistoryQuery(id: 1000 + 4321, limit: nil), HistoryQuery(id: 5, limit: nil), HistoryQuery(type: "rare", limit: 20),
            HistoryQuery(type: "beta", userId: (777 * 7919) % 5000, limit: nil), HistoryQuery(userId: 42, limit: nil),
            HistoryQuery(since: Date(milliseconds: base + 3000 * 1000 + 500), until: Date(milliseconds: base + 3010 * 1000 + 500), limit: nil),
            HistoryQuery(until: Date(milliseconds: base + 20 * 1000), success: false, limit: nil), HistoryQuery(limit: 7), HistoryQuery(limit: nil),
        ]
        for query in queries {
            let expected = try await plain.entries(matching: query)
            let got = try await packed.entries(matching: query)
            #expect(got == expected, "\(query)")
            #expect(expected == expected.filter { query.matches($0.job) })
            let oldest = try await packed.entries(matching: query, oldestFirst: true)
            if query.limit == nil { #expect(oldest == expected.reversed(), "\(query)") }
        }
        #expect(try await packed.entries(matching: HistoryQuery(id: 1000 + 4321, limit: nil)).map(\.job.id) == [5321])
        #expect(try await packed.entries(matching: HistoryQuery(id: 5, limit: nil)).isEmpty, "an id inside data is not the record's id")
        #expect(try await packed.entries(matching: HistoryQuery(since: Date(milliseconds: base + 3000 * 1000 + 500), until: Date(milliseconds: base + 3010 * 1000 + 500), limit: nil)).count == 10)

        // An index that does not describe its file (here: of another size) is not used.
        let stale = packedFiles[0]
        var wrong = index
        wrong.fileSize += 1
        wrong.blocks = []
        try Data(try wrong.encoded()).write(to: URL(fileURLWithPath: stale.indexPath))
        #expect(try await packed.entries(matching: HistoryQuery(id: 1000 + 10, limit: nil)).map(\.job.id) == [1010])
        // Export: raw lines in order, as stored.
        let lines = LineCollector()
        try await packed.export(matching: HistoryQuery(type: "rare", limit: nil)) { line in
            lines.append(Array(line))
            return true
        }
        let exported = lines.all.map { try? JSONDecoder().decode(HistoryEntry.self, from: Data($0)) }
        #expect(exported.map { $0?.job.id } == (try await plain.entries(matching: HistoryQuery(type: "rare", limit: nil))).reversed().map(\.job.id))
    }

    @Test("a compression killed between its rename and its unlink leaves both files: readers count the records once, and the next round finishes it")
    func interruptedCompression() async throws {
        let directory = Support.temporaryDirectory()
        defer { try? FileManager.default.removeItem(atPath: directory) }
        let base = 1_795_914_123_000
        let first = try Self.writeFile(directory, sequence: 1, (0..<50).map { HistoryEntry(job: Self.job(id: $0 + 1, created: base + $0), archivedAt: Date(milliseconds: base + 100)) })
        _ = try Self.writeFile(directory, sequence: 2, (50..<60).map { HistoryEntry(job: Self.job(id: $0 + 1, created: base + $0), archivedAt: Date(milliseconds: base + 200)) })
        let original = try Data(contentsOf: URL(fileURLWithPath: first.path))
        try HistoryCompressor.compress(first, tag: "t")
        // Put the original back beside its compressed copy, and a temporary file of a dead round.
        try original.write(to: URL(fileURLWithPath: first.path))
        try Data("garbage".utf8).write(to: URL(fileURLWithPath: first.compressed.path + ".tmp-t"))
        #expect(try HistoryFile.list(directory: directory).map(\.name) == [first.name, try HistoryFile.list(directory: directory)[1].name])
        let log = HistoryLog(directory: directory)
        #expect(try await log.entries(matching: HistoryQuery(limit: nil)).count == 60)
        let report = HistoryMaintenance.run(directory: directory, settings: .init(compress: true, tag: "t", now: Date()))
        #expect(report.failures.isEmpty && report.compressed == [first.compressed.name])
        let names = Set(try FileManager.default.contentsOfDirectory(atPath: directory))
        #expect(!names.contains(first.name) && names.contains(first.compressed.name) && !names.contains { $0.contains(".tmp-") }, "\(names)")
        #expect(try await log.entries(matching: HistoryQuery(limit: nil)).count == 60)
        #expect(Array(original) == (try HistoryCompressor.decompressedContents(of: first.compressed)))
    }

    @Test("the same id twice: one job written twice is shown once; two jobs with one id stay apart, and --chain follows the one whose createdAt fits")
    func repeatedIds() async throws {
        let directory = Support.temporaryDirectory()
        defer { try? FileManager.default.removeItem(atPath: directory) }
        let t = 1_795_914_123_000
        // Before a Redis restart: 10 failed, its retry 11 succeeded. Redis lost its last writes and gave
        // out 10 and 11 again: a new 10 (other data) failed and was retried as 12.
        let a10 = Self.job(id: 10, created: t, finished: t + 100, success: false, data: #"{"run":"first"}"#)
        let a11 = Self.job(id: 11, created: t + 100, finished: t + 200, from: 10)
        let b10 = Self.job(id: 10, created: t + 10_000, finished: t + 10_100, success: false, data: #"{"run":"second"}"#)
        let b12 = Self.job(id: 12, created: t + 10_100, finished: t + 10_200, from: 10)
        let other = Self.job(id: 13, user: 2, created: t + 10_150, from: 10)  // another user: never in the chain
        _ = try Self.writeFile(directory, sequence: 1, [a10, a11].map { HistoryEntry(job: $0, archivedAt: Date(milliseconds: t + 1000)) })
        // An archiver wrote a11 a second time (same id and createdAt), later.
        _ = try Self.writeFile(directory, sequence: 2, [a11, b10, b12, other].map { HistoryEntry(job: $0, archivedAt: Date(milliseconds: t + 20_000)) })
        let log = HistoryLog(directory: directory)
        let all = try await log.entries(matching: HistoryQuery(limit: nil))
        #expect(all.map(\.job.id).sorted() == [10, 10, 11, 12, 13], "a11 once, both 10s")
        #expect(try await log.jobs(matching: HistoryQuery(id: 11, limit: nil)).count == 1)
        #expect(try await log.jobs(matching: HistoryQuery(id: 10, limit: nil)).compactMap(\.dataJSON).sorted() == [a10.dataJSON!, b10.dataJSON!].sorted())
        #expect(try await log.job(id: 10)?.dataJSON == b10.dataJSON, "the id's newest job")
        #expect(try await log.chain(of: 11) == [a10, a11])
        #expect(try await log.chain(of: 12) == [b10, b12])
        #expect(try await log.chain(of: 10) == [b10, b12], "id 10 alone means the newest job 10")
    }

    @Test("retention: over a long run of a real archiver with small files, the directory stays under --retain-size and the newest records are kept")
    func retention() async throws {
        try await TestRedis.withClient { client, ns in
            let keys = try ConveyorKeys(namespace: ns)
            let directory = Support.temporaryDirectory()
            defer { try? FileManager.default.removeItem(atPath: directory) }
            let bound = 160 * 1024
            var configuration = Support.configuration(directory, keys: keys, archiverId: "ret", batchSize: 100)
            configuration.maxFileSize = 8 * 1024
            configuration.retainBytes = bound
            configuration.maintenanceInterval = .milliseconds(50)
            let events = ArchiverEventLog()
            var archived = 0
            var largest = 0
            try await Support.withArchiver(client, configuration, events: events) { _ async throws in
                for round in 0..<10 {
                    try await Support.makeFinishedJobs(client, keys: keys, count: 500, firstUser: 1 + round * 1000, type: "retTest", payloadBytes: 300)
                    archived += 500
                    #expect(try await eventually { try await Support.isClean(client, keys: keys) })
                    // Wait for two maintenance rounds after the last batch (the first may have begun before it),
                    // then measure the directory itself. (Generous timeouts: a debug build on a busy machine is slow.)
                    let seen = events.all.count
                    #expect(try await eventually(timeout: .seconds(90)) { events.all.dropFirst(seen).filter { if case .maintained = $0 { true } else { false } }.count >= 2 })
                    let bytes = try FileManager.default.contentsOfDirectory(atPath: directory).filter { $0.hasPrefix("history-") }
                        .reduce(0) { $0 + (HistoryMaintenance.fileSize((directory as NSString).appendingPathComponent($1)) ?? 0) }
                    largest = max(largest, bytes)
                    #expect(bytes <= bound, "round \(round): \(bytes) bytes of history, bound \(bound)")
                }
            }
            let deleted = events.all.reduce(0) { if case .maintained(let report) = $1 { $0 + report.deleted.count } else { $0 } }
            #expect(deleted > 0, "the run outgrew the bound, so files were deleted")
            let left = try await HistoryLog(directory: directory).entries(matching: HistoryQuery(limit: nil))
            #expect(left.count >= HistoryMaintenance.protectedRecords && left.count < archived, "\(left.count) of \(archived) records kept")
            #expect(left.first?.job.userId == 9500 || left.contains { $0.job.userId >= 9001 }, "the newest records are kept")
            print("retention: \(archived) records archived, \(left.count) kept, largest directory \(largest) bytes (bound \(bound)), \(deleted) files deleted")

        }
    }

    @Test("--retain-days deletes files older than N days, oldest first, but never an identity's newest files holding its last 1,000 records")
    func retentionByAge() async throws {
        let directory = Support.temporaryDirectory()
        defer { try? FileManager.default.removeItem(atPath: directory) }
        let t = 1_795_914_123_000
        var files: [HistoryFile] = []
        for sequence in 1...5 {
            let entries = (0..<400).map { n in
                HistoryEntry(job: Self.job(id: sequence * 1000 + n, created: t + n), archivedAt: Date(milliseconds: t + sequence * 1000))
            }
            files.append(try Self.writeFile(directory, sequence: sequence, entries))
        }
        let settings = HistoryMaintenance.Settings(compress: true, retainDays: 1, tag: "t", now: Date().addingTimeInterval(10 * 86_400))
        let report = HistoryMaintenance.run(directory: directory, settings: settings)
        #expect(report.failures.isEmpty, "\(report.failures)")
        // Files 5, 4 and 3 hold the last 1,200 records (≥ 1,000): kept, though old; 1 and 2 go.
        #expect(report.deleted == [files[0].name, files[1].name].map { String($0.dropLast(".jsonl".count)) + ".jsonl.gz" } || report.deleted == [files[0].name, files[1].name])
        let left = try HistoryFile.list(directory: directory)
        #expect(left.map(\.sequence) == [3, 4, 5] && left.last?.isCompressed == false)
        let names = try FileManager.default.contentsOfDirectory(atPath: directory)
        #expect(!names.contains { $0.contains("000001") || $0.contains("000002") }, "no index of a deleted file is left: \(names)")
        #expect(try await HistoryLog(directory: directory).entries(matching: HistoryQuery(limit: nil)).count == 1200)
        // Young files are kept.
        let young = HistoryMaintenance.run(directory: directory, settings: .init(compress: true, retainDays: 1, tag: "t", now: Date()))
        #expect(young.deleted.isEmpty)
    }
}

extension HistoryScaleTests {
    @Test("disk trouble is visible early: each maintenance round reports free space and the backlog in Redis, and warns below the threshold")
    func diskSpaceAndBacklog() async throws {
        try await TestRedis.withClient { client, ns in
            let keys = try ConveyorKeys(namespace: ns)
            let directory = Support.temporaryDirectory()
            defer { try? FileManager.default.removeItem(atPath: directory) }
            // Finished, but kept in Redis for an hour: the backlog the archiver reports.
            try await Support.makeFinishedJobs(client, keys: keys, count: 30, type: "backlogTest", removeDelay: 3_600_000)
            var configuration = Support.configuration(directory, keys: keys, archiverId: "disk")
            configuration.maintenanceInterval = .milliseconds(50)
            configuration.lowDiskSpaceBytes = Int.max  // any disk is "nearly full"
            let sink = WarningSink()
            let logger = Logger(label: "test") { _ in WarningCapture(sink: sink) }
            let events = ArchiverEventLog()
            let archiver = Archiver(client: client, configuration: configuration, logger: logger) { events.append($0) }
            let running = Task { try await archiver.run() }
            func reports() -> [HistoryMaintenanceReport] {
                events.all.compactMap { if case .maintained(let report) = $0 { report } else { nil } }
            }
            #expect(try await eventually(timeout: .seconds(60)) { reports().contains { $0.backlog == 30 } })
            #expect(try await eventually(timeout: .seconds(60)) { sink.messages.contains { $0.contains("nearly full") } })
            archiver.beginShutdown()
            try await running.value
            let report = try #require(reports().last)
            #expect((report.freeBytes ?? 0) > 0 && (report.totalBytes ?? 0) >= (report.freeBytes ?? 0))
            let usage = try await HistoryLog(directory: directory).diskUsage()
            #expect(usage.freeBytes != nil && usage.historyBytes == 0)
            #expect(try await Archiver.backlog(client: client, keys: keys) == 30)
        }
    }
}

private final class WarningSink: Sendable {
    private let store = Mutex<[String]>([])
    func append(_ message: String) { store.withLock { $0.append(message) } }
    var messages: [String] { store.withLock { $0 } }
}

/// Keeps the messages logged at `.warning` and above.
private struct WarningCapture: LogHandler {
    let sink: WarningSink
    var metadata: Logger.Metadata = [:]
    var logLevel: Logger.Level = .trace

    subscript(metadataKey key: String) -> Logger.Metadata.Value? {
        get { metadata[key] }
        set { metadata[key] = newValue }
    }

    func log(event: LogEvent) {
        if event.level >= .warning { sink.append(event.message.description) }
    }
}

/// Collects exported lines (the export's body runs on another thread).
final class LineCollector: Sendable {
    private let lines = Mutex<[[UInt8]]>([])
    func append(_ line: [UInt8]) { lines.withLock { $0.append(line) } }
    var all: [[UInt8]] { lines.withLock { $0 } }
}
