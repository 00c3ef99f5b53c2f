@testable import Conveyor
import Foundation
import Testing

private typealias Support = ArchiverTestSupport

@Suite("History log")
struct HistoryLogTests {
    @Test("files rotate by size and by UTC day, their names sort by time, and queries read them all back newest first")
    func rotationAndQueries() async throws {
        try await TestRedis.withClient { client, ns in
            let keys = try ConveyorKeys(namespace: ns)
            let directory = Support.temporaryDirectory()
            defer { try? FileManager.default.removeItem(atPath: directory) }
            // The archiver's clock: a minute ahead of the jobs (so all are due), then a day later, twice.
            let clock = TestClock(milliseconds: Date().milliseconds + 60_000)
            var configuration = Support.configuration(directory, keys: keys, archiverId: "rot", batchSize: 7)
            configuration.maxFileSize = 4096
            configuration.testClock = { clock.now }
            var rounds: [[WorkerJob]] = []
            for (round, type) in ["roundA", "roundB", "roundC"].enumerated() {
                rounds.append(try await Support.makeFinishedJobs(client, keys: keys, count: 40, firstUser: 1 + round * 1000, type: type))
                try await Support.withArchiver(client, configuration) { _ async throws in
                    #expect(try await eventually { try await Support.isClean(client, keys: keys) })
                }
                clock.advance(milliseconds: 86_400_000)
                try await Task.sleep(for: .milliseconds(5))
            }
            let files = try HistoryFile.list(directory: directory)
            #expect(files.count >= 6, "rotated by size: \(files.map(\.name))")
            #expect(Set(files.map(\.utcDay)).count == 3, "rotated by day: \(files.map(\.name))")
            #expect(files.map(\.name) == files.map(\.name).sorted(), "names sort by time")
            #expect(files.map(\.sequence) == Array(1...files.count))
            for file in files {
                let contents = try HistoryCompressor.decompressedContents(of: file)  // rotated files may be compressed by now
                let size = contents.count
                let lines = contents.split(separator: 0x0A).count
                #expect(size <= 4096 || lines <= 7, "\(file.name) has \(size) bytes: rotation happens between batches")
            }

            let log = HistoryLog(directory: directory)
            let all = try await log.entries(matching: HistoryQuery(limit: nil))
            #expect(all.count == 120)
            #expect(zip(all, all.dropFirst()).allSatisfy { $0.archivedAt! >= $1.archivedAt! }, "newest first")
            #expect(all.prefix(40).allSatisfy { $0.job.type == "roundC" } && all.suffix(40).allSatisfy { $0.job.type == "roundA" })

            #expect(try await log.jobs(matching: HistoryQuery(type: "roundB", limit: nil)).map(\.id).sorted() == rounds[1].map(\.id).sorted())
            #expect(try await log.jobs(matching: HistoryQuery(limit: 5)).map(\.id) == all.prefix(5).map(\.job.id))
            let someone = rounds[1][17]
            #expect(try await log.jobs(matching: HistoryQuery(userId: someone.userId)).map(\.id) == [someone.id])
            #expect(try await log.job(id: someone.id)?.data == someone.data)
            #expect(try await log.job(id: 987_654_321) == nil)
            let failed = rounds.joined().filter { $0.success == false }
            #expect(try await log.jobs(matching: HistoryQuery(success: false, limit: nil)).count == failed.count)
            #expect(try await log.jobs(matching: HistoryQuery(success: true, limit: nil)).count == 120 - failed.count)
            let roundCStart = try #require(rounds[2].compactMap(\.finished).min())
            let sinceC = try await log.jobs(matching: HistoryQuery(since: roundCStart, limit: nil))
            #expect(Set(sinceC.map(\.id)) == Set(rounds[2].map(\.id)))
            let beforeB = try #require(rounds[1].compactMap(\.finished).min())
            #expect(Set(try await log.jobs(matching: HistoryQuery(until: beforeB, limit: nil)).map(\.id)) == Set(rounds[0].map(\.id)))
            #expect(try await log.jobs(matching: HistoryQuery(type: "roundA", userId: someone.userId, limit: nil)).isEmpty)
        }
    }

    @Test("--chain follows rescheduledFromJob both ways, across the log (archived retries) and Redis (the pending one)")
    func chainAcrossRedisAndLog() async throws {
        try await TestRedis.withClient { client, ns in
            let keys = try ConveyorKeys(namespace: ns)
            let directory = Support.temporaryDirectory()
            defer { try? FileManager.default.removeItem(atPath: directory) }
            let scheduler = JobScheduler(client: client, configuration: .init(keys: keys))
            let store = JobStore(client: client, keys: keys, staleAfterMs: 3_600_000, failedRetention: .init(ms: 0))
            // Unrelated jobs of the same type (other users) stay out of the chain.
            try await Support.makeFinishedJobs(client, keys: keys, count: 3, type: "chainTest")
            var chain = [try await scheduler.scheduleJob(UntypedJobConfig(type: "chainTest", userId: 7, autoRescheduleOnFailure: true)).id]
            for _ in 0..<3 {
                let (jobs, _, _) = try await store.claim(partition: keys.partition(0), now: Date().milliseconds, workerId: "w", maxCount: 10, leaseMs: 60_000)
                #expect(jobs.map(\.id) == [chain.last!])
                let results = try await store.complete(
                    [.init(id: chain.last!, success: false, resultJSON: #"{"error":"again"}"#, cronNextDue: nil)],
                    partition: keys.partition(0), now: Date().milliseconds, workerId: "w"
                )
                chain.append(try #require(results.first?.followUp))
            }
            try await Support.withArchiver(client, Support.configuration(directory, keys: keys)) { _ async throws in
                #expect(try await eventually { try await Support.leftInRedis(client, keys: keys).finished == 0 })
            }
            let log = HistoryLog(directory: directory)
            for id in chain {
                let found = try await log.chain(of: id, scheduler: scheduler)
                #expect(found.map(\.id) == chain, "chain of \(id)")
                #expect(found.map(\.attempt) == [1, 2, 3, 4], "\(found.map { ($0.id, $0.state, $0.rescheduledFromJob) })")
                #expect(found.last?.state == .pending && found.dropLast().allSatisfy { $0.state == .finished })
            }
            #expect(try await log.chain(of: chain[1]).map(\.id) == Array(chain.prefix(3)), "the log alone")
            #expect(try await log.chain(of: 123_456_789, scheduler: scheduler).isEmpty)

            // The same through the CLI.
            let url = try await TestRedis.url()
            let chainOutput = try await Self.runCLI(["history", "--history-dir", directory, "--chain", "\(chain[2])", "--json", "--redis", url, "--namespace", ns])
            let printed = chainOutput.split(separator: "\n").compactMap { try? JSONDecoder().decode(WorkerJob.self, from: Data($0.utf8)) }
            #expect(printed.map(\.id) == chain, "\(chainOutput)")
            let failedOutput = try await Self.runCLI(["history", "--history-dir", directory, "--type", "chainTest", "--user", "7", "--success", "false", "--json"])
            let lines = failedOutput.split(separator: "\n").compactMap { try? JSONDecoder().decode(HistoryEntry.self, from: Data($0.utf8)) }
            #expect(lines.map(\.job.id) == chain.prefix(3).reversed(), "\(failedOutput)")
            #expect(lines.allSatisfy { $0.archivedAt != nil })
            let table = try await Self.runCLI(["history", "--history-dir", directory, "--limit", "2"])
            #expect(table.split(separator: "\n").count == 3 && table.hasPrefix("ID"), "\(table)")
        }
    }

    static func runCLI(_ arguments: [String]) async throws -> String {
        let process = try ConveyorProcess.start(arguments)
        await process.waitForExit(timeout: .seconds(30))
        defer { try? FileManager.default.removeItem(atPath: process.logPath) }
        return process.log
    }

    @Test("the backward reader returns complete lines last to first, across chunk borders, and never a torn last line")
    func backwardReader() throws {
        let path = Support.temporaryDirectory("lines")
        defer { try? FileManager.default.removeItem(atPath: path) }
        let lines = (0..<200).map { index in String(repeating: Character(UnicodeScalar(UInt8(65 + index % 26))), count: (index * 37) % 300 + 1) }
        for (torn, chunk) in [("", 7), ("partial", 7), ("", 4096), ("x", 1), (String(repeating: "t", count: 1000), 64)] {
            try Data((lines.joined(separator: "\n") + "\n" + torn).utf8).write(to: URL(fileURLWithPath: path))
            let reader = try BackwardLineReader(path: path, chunkSize: chunk)
            var read: [String] = []
            while let line = try reader.next() { read.append(String(decoding: line, as: UTF8.self)) }
            #expect(read == lines.reversed(), "torn \(torn.count) bytes, chunk \(chunk)")
        }
        try Data("no newline at all".utf8).write(to: URL(fileURLWithPath: path))
        #expect(try BackwardLineReader(path: path, chunkSize: 4).next() == nil)
        try Data().write(to: URL(fileURLWithPath: path))
        #expect(try BackwardLineReader(path: path).next() == nil)
    }

    @Test("file names: time first, then identity and sequence; parsed back; other files ignored")
    func fileNames() throws {
        let date = Date(timeIntervalSince1970: 1_795_914_123.456)  // 2026-11-29T01:02:03.456Z
        let name = HistoryFile.name(createdAt: date, archiverId: "host-1", sequence: 42)
        #expect(name == "history-20261129T010203Z-host-1-000042.jsonl")
        let file = try #require(HistoryFile(name: name, directory: "/h"))
        #expect(file.archiverId == "host-1" && file.sequence == 42 && file.createdAt == Date(timeIntervalSince1970: 1_795_914_123))
        #expect(file.path == "/h/" + name)
        #expect(HistoryFile(name: "archiver-x.lock", directory: "/h") == nil)
        #expect(HistoryFile(name: "history-2026112T010203Z-a-000001.jsonl", directory: "/h") == nil)
        #expect(HistoryFile(name: "history-20261129T010203Z--000001.jsonl", directory: "/h") == nil)
        for days in [-1, 0, 59, 365, 11_000, 20_000, 2_932_896] {
            let (year, month, day) = CivilCalendar.civil(fromDays: days)
            #expect(CivilCalendar.days(fromCivilYear: year, month: month, day: day) == days)
        }
    }
}
