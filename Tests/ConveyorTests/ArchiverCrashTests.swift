@testable import Conveyor
import Foundation
import Synchronization
import Testing

private typealias Support = ArchiverTestSupport

/// Real `conveyor archiver` processes killed with SIGKILL at random moments
/// (between claiming, writing, syncing and deleting) while jobs keep finishing.
@Suite("Archiver processes killed with SIGKILL", .serialized)
struct ArchiverCrashTests {
    @Test("10,000 jobs finish while the archiver process is SIGKILLed at random moments at least 20 times: every job is in the log exactly once, none is left in Redis; batches a kill left claimed, written or torn are resumed or repaired")
    func sigkillFaultInjection() async throws {
        let url = try await TestRedis.url()
        let total = 10_000
        let seed = try TestSeed.value(default: 0xA5C1_0017)
        print("archiver fault injection: kill times from seed \(seed) (\(TestSeed.environmentVariable) replays another)")
        try await TestRedis.withClient(poolSize: 4) { client, ns in
            var random = SeededRandom(seed: seed)
            let keys = try ConveyorKeys(namespace: ns, partitionCount: 2, partitionTags: TestRedis.partitionTags)
            let directory = Support.temporaryDirectory("crash")
            defer { try? FileManager.default.removeItem(atPath: directory) }
            let testStart = ContinuousClock.now
            // All jobs are pending first; a playing worker finishes them ~400 per 100 ms, faster than a debug-build archiver with batches of 10 keeps up (~1,500 jobs/s), so most kills land mid-batch.
            var created = try await Support.makeFinishedJobsLater(client, keys: keys, count: total)
            let producerDone = Mutex(false)
            var producers: [Task<Void, any Error>] = []
            producers.append(Task {
                defer { producerDone.withLock { $0 = true } }
                try await Support.finishGradually(client, keys: keys, perTick: 400, tick: .milliseconds(100))
            })

            var kills = 0
            var logs = ""
            // What the kills left behind, seen in Redis and on disk right after each kill (each counted once,
            // however many kills see it): claimed batches, those already (partly) in the log, torn last lines.
            var claimed = Set<Support.ClaimedBatch>()
            var claimedAndWritten = Set<Support.ClaimedBatch>()
            var torn = Set<String>()
            var backlog = total
            // At least 20 kills, until the producer is done; then on, while jobs are left, until one kill
            // has landed between a batch's write and its delete.
            while kills < 20 || !producerDone.withLock({ $0 }) || (claimedAndWritten.isEmpty && backlog > 0) {
                let archiver = try ConveyorProcess.start([
                    "archiver", "--redis", url, "--namespace", ns, "--partitions", "2", "--history-dir", directory,
                    "--batch-size", "10", "--interval", "0.05", "--log-level", "debug",
                ])
                try await Task.sleep(for: .milliseconds(Int.random(in: 150...650, using: &random)))
                archiver.signal(SIGKILL)
                await archiver.waitForExit(timeout: .seconds(10))
                kills += 1
                logs += archiver.log
                try? FileManager.default.removeItem(atPath: archiver.logPath)
                let left = try await Support.afterKill(client, keys: keys, directory: directory)
                claimed.formUnion(left.claimed)
                claimedAndWritten.formUnion(left.claimed.filter { !$0.ids.isDisjoint(with: left.loggedTail) })
                torn.formUnion(left.tornFiles)
                backlog = left.finished
                if producerDone.withLock({ $0 }), claimedAndWritten.isEmpty, backlog == 0 {
                    // The work ran out before a kill landed between a write and its delete: more work.
                    created += try await Support.makeFinishedJobsLater(client, keys: keys, count: 2_000)
                    producers.append(Task { try await Support.finishGradually(client, keys: keys, perTick: 400, tick: .milliseconds(100)) })
                    backlog = 2_000
                }
                #expect(ContinuousClock.now - testStart < .seconds(100), "the fault injection takes too long (seed \(seed))")
                if ContinuousClock.now - testStart > .seconds(100) { break }
            }
            for producer in producers { try await producer.value }

            // One last archiver, left alone, finishes what is left; then SIGTERM.
            let last = try ConveyorProcess.start([
                "archiver", "--redis", url, "--namespace", ns, "--partitions", "2", "--history-dir", directory,
                "--batch-size", "100", "--interval", "0.05", "--log-level", "debug",
            ])
            let drained = try await eventually(timeout: .seconds(60)) { try await Support.isClean(client, keys: keys) }
            last.signal(SIGTERM)
            await last.waitForExit(timeout: .seconds(10))
            logs += last.log
            try? FileManager.default.removeItem(atPath: last.logPath)

            let left = try await Support.leftInRedis(client, keys: keys)
            #expect(drained, "left in Redis: \(left) (seed \(seed))")
            let ids = try Support.loggedIds(directory)
            let duplicates = Support.duplicates(ids)
            #expect(duplicates.isEmpty, "written twice: \(duplicates.prefix(10)) of \(duplicates.count) (seed \(seed))")
            let missing = Set(created).subtracting(ids)
            #expect(missing.isEmpty, "missing from the log: \(missing.sorted().prefix(10)) of \(missing.count) (seed \(seed))")
            #expect(ids.count == created.count)
            #expect(kills >= 20)

            let resumes = Support.ArchiverLogLine.all(in: logs, message: "archiver resumed a claimed batch")
            let resumedAfterWrite = resumes.filter { ($0["conveyor.archiver.already_in_log"].flatMap { Int($0) } ?? 0) > 0 }
            let repairs = Support.ArchiverLogLine.all(in: logs, message: "removed a torn last line")
            // Each claimed batch a kill left behind is resumed by a later start (some more than once, when
            // that start was killed too); each one that was already in the log is found there; each torn
            // last line is cut off.
            #expect(!claimed.isEmpty, "no kill landed inside a batch; the test proves less than it should (seed \(seed))")
            #expect(resumes.count >= claimed.count, "\(claimed.count) claimed batches left by kills, \(resumes.count) resumed (seed \(seed))")
            #expect(!claimedAndWritten.isEmpty, "no kill landed between a batch's write and its delete in \(kills) kills (seed \(seed))")
            #expect(
                resumedAfterWrite.count >= claimedAndWritten.count,
                "\(claimedAndWritten.count) batches were in the log but still claimed after a kill; \(resumedAfterWrite.count) resumes found records already in the log (seed \(seed))"
            )
            #expect(repairs.count >= torn.count, "\(torn.count) torn last lines left by kills, \(repairs.count) repaired (seed \(seed))")
            let files = try HistoryFile.list(directory: directory)
            print(
                "archiver fault injection (seed \(seed)): \(created.count) jobs, \(kills) SIGKILLs, \(claimed.count) claimed batches left (\(claimedAndWritten.count) already written, \(torn.count) torn), \(resumes.count) resumes (\(resumedAfterWrite.count) found records in the log), \(repairs.count) torn lines repaired, \(files.count) file(s), \(ContinuousClock.now - testStart)"
            )
        }
    }

    @Test("two archiver processes on one directory, one of them SIGKILLed at random at least 12 times while 6,000 jobs finish: each restart takes the dead identity over and finishes its batch; no job is written twice")
    func twoProcessesKilled() async throws {
        let url = try await TestRedis.url()
        // ~6 s of finishing at ~1,000 a second: long enough that several kills land
        // while an archiver holds a claimed batch.
        let total = 6_000
        let seed = try TestSeed.value(default: 0x2A5C_0017)
        print("two archiver processes: kill times and victims from seed \(seed) (\(TestSeed.environmentVariable) replays another)")
        try await TestRedis.withClient(poolSize: 4) { client, ns in
            var random = SeededRandom(seed: seed)
            let keys = try ConveyorKeys(namespace: ns)
            let directory = Support.temporaryDirectory("crash2")
            defer { try? FileManager.default.removeItem(atPath: directory) }
            var created = try await Support.makeFinishedJobsLater(client, keys: keys, count: total)
            // ~1,000 jobs a second, so that the archivers are busy during most kills.
            var producers = [Task { try await Support.finishGradually(client, keys: keys, perTick: 100, tick: .milliseconds(100)) }]
            let arguments = [
                "archiver", "--redis", url, "--namespace", ns, "--history-dir", directory, "--batch-size", "5", "--interval", "0.05",
                "--log-level", "debug",
            ]
            /// A process and the identity its restart should take: the one its predecessor died with.
            struct Run { var process: ConveyorProcess; var takesOver: String? }
            var running = [Run(process: try ConveyorProcess.start(arguments), takesOver: nil), Run(process: try ConveyorProcess.start(arguments), takesOver: nil)]
            var finishedRuns: [(run: Run, log: String)] = []
            var claimed = Set<Support.ClaimedBatch>()
            var kill = 0
            var backlog = total
            // 12 kills, then on (up to 40) while jobs are left until one kill has left a claimed batch.
            while kill < 12 || (claimed.isEmpty && backlog > 0 && kill < 40) {
                defer { kill += 1 }
                // Both have their identity (and so have adopted any orphan) before one is killed: a restart
                // must find the dead identity free.
                let started = try await eventually(timeout: .seconds(20)) {
                    running.allSatisfy { Support.ArchiverLogLine.identity(in: $0.process.log) != nil }
                }
                #expect(started, "an archiver did not start within 20 s (seed \(seed))")
                try await Task.sleep(for: .milliseconds(Int.random(in: 150...650, using: &random)))
                let victim = kill % 2 == 0 ? Int.random(in: 0...1, using: &random) : (kill / 2) % 2
                running[victim].process.signal(SIGKILL)
                await running[victim].process.waitForExit(timeout: .seconds(10))
                let log = running[victim].process.log
                try? FileManager.default.removeItem(atPath: running[victim].process.logPath)
                let dead = Support.ArchiverLogLine.identity(in: log) ?? running[victim].takesOver
                // Claims of the dead identity only: the other process's are in flight and end normally.
                let left = try await Support.afterKill(client, keys: keys, directory: directory)
                claimed.formUnion(left.claimed.filter { $0.archiverId == dead })
                backlog = left.finished
                if kill >= 11, claimed.isEmpty, backlog == 0 {
                    // No kill has landed inside a batch yet: more work, so the next ones can.
                    created += try await Support.makeFinishedJobsLater(client, keys: keys, count: 1_000)
                    producers.append(Task { try await Support.finishGradually(client, keys: keys, perTick: 100, tick: .milliseconds(100)) })
                    backlog = 1_000
                }
                finishedRuns.append((running[victim], log))
                running[victim] = Run(process: try ConveyorProcess.start(arguments), takesOver: dead)
            }
            for producer in producers { try await producer.value }
            let drained = try await eventually(timeout: .seconds(60)) { try await Support.isClean(client, keys: keys) }
            // The last restart has taken its identity (and resumed its batch) before it is stopped.
            let startedAll = try await eventually(timeout: .seconds(20)) {
                running.allSatisfy { Support.ArchiverLogLine.identity(in: $0.process.log) != nil }
            }
            #expect(startedAll, "an archiver did not start within 20 s (seed \(seed))")
            for run in running {
                run.process.signal(SIGTERM)
                await run.process.waitForExit(timeout: .seconds(10))
                finishedRuns.append((run, run.process.log))
                try? FileManager.default.removeItem(atPath: run.process.logPath)
            }
            let left = try await Support.leftInRedis(client, keys: keys)
            #expect(drained, "left in Redis: \(left) (seed \(seed))")
            let ids = try Support.loggedIds(directory)
            #expect(Support.duplicates(ids).isEmpty, "written twice: \(Support.duplicates(ids).prefix(10)) (seed \(seed))")
            #expect(Set(ids) == Set(created) && ids.count == created.count)

            // Take-over: every restart took the identity its predecessor died with, so two identities are all there are.
            let takeOvers = finishedRuns.filter { $0.run.takesOver != nil }.map { (expected: $0.run.takesOver!, took: Support.ArchiverLogLine.identity(in: $0.log)) }
            #expect(takeOvers.count == kill)
            #expect(takeOvers.allSatisfy { $0.took == $0.expected }, "restarts took \(takeOvers.map { "\($0.took ?? "nothing") for \($0.expected)" }) (seed \(seed))")
            let initial = Set(finishedRuns.filter { $0.run.takesOver == nil }.compactMap { Support.ArchiverLogLine.identity(in: $0.log) })
            #expect(initial.count == 2)
            let identities = Set(finishedRuns.compactMap { Support.ArchiverLogLine.identity(in: $0.log) })
            #expect(identities == initial, "identities \(identities.sorted()), started with \(initial.sorted()) (seed \(seed))")
            let lockFiles = try FileManager.default.contentsOfDirectory(atPath: directory).filter { $0.hasPrefix("archiver-") && $0.hasSuffix(".lock") }
            #expect(lockFiles.count == 2, "\(lockFiles.sorted())")
            // Resumed batches: every batch a kill left claimed is finished under the dead identity.
            let resumes = finishedRuns.flatMap { Support.ArchiverLogLine.all(in: $0.log, message: "archiver resumed a claimed batch") }
            #expect(!claimed.isEmpty, "no kill landed inside a batch; the test proves less than it should (seed \(seed))")
            for identity in identities {
                let left = claimed.filter { $0.archiverId == identity }.count
                let resumed = resumes.filter { $0["conveyor.archiver.id"] == identity }.count
                #expect(resumed >= left, "identity \(identity): \(left) batches left claimed by kills, \(resumed) resumed (seed \(seed))")
            }
            print("two archiver processes (seed \(seed)): \(created.count) jobs, \(kill) SIGKILLs, \(identities.count) identities, \(takeOvers.count) take-overs, \(claimed.count) claimed batches left by kills, \(resumes.count) resumed")
        }
    }
}

extension ArchiverTestSupport {
    /// Schedules `count` jobs due now (nothing finished yet); returns their ids.
    static func makeFinishedJobsLater(_ client: RedisClient, keys: ConveyorKeys, count: Int) async throws -> [Int] {
        let scheduler = JobScheduler(client: client, configuration: .init(keys: keys))
        let specs = (0..<count).map { index in
            JobSpec(
                type: "crashTest", userId: index + 1, dataJSON: #"{"n":\#(index)}"#, due: nil, cron: nil,
                autoRescheduleOnFailure: false, autoRescheduleOnFailureDelay: 0, removeDelay: 0
            )
        }
        var ids: [Int] = []
        for start in stride(from: 0, to: specs.count, by: 1000) {
            ids += try await scheduler.schedule(Array(specs[start..<min(start + 1000, specs.count)])).map(\.id)
        }
        return ids
    }

    /// Plays a worker: every `tick`, claims and completes up to `perTick` due jobs, until none is left.
    static func finishGradually(_ client: RedisClient, keys: ConveyorKeys, perTick: Int, tick: Duration) async throws {
        let store = JobStore(client: client, keys: keys, staleAfterMs: 3_600_000, failedRetention: .init(ms: 0))
        while true {
            var claimed = 0
            for partition in keys.partitions {
                let (jobs, _, _) = try await store.claim(
                    partition: partition, now: Date().milliseconds, workerId: "crash-worker", maxCount: perTick / keys.partitionCount, leaseMs: 60_000
                )
                claimed += jobs.count
                guard !jobs.isEmpty else { continue }
                let completions = jobs.map {
                    JobStore.Completion(id: $0.id, success: $0.userId % 4 != 0, resultJSON: #"{"n":\#($0.id)}"#, cronNextDue: nil)
                }
                _ = try await store.complete(completions, partition: partition, now: Date().milliseconds, workerId: "crash-worker")
            }
            if claimed == 0 { return }
            try await Task.sleep(for: tick)
        }
    }
}

extension ArchiverTestSupport {
    /// The jobs one archiver identity held claimed in one partition.
    struct ClaimedBatch: Hashable {
        var archiverId: String
        var partition: Int
        var ids: Set<Int>
    }

    /// What a killed archiver left: claims in Redis, the ids in the last lines of each
    /// history file, files that end in a torn line ("name:size"), and finished jobs left.
    static func afterKill(_ client: RedisClient, keys: ConveyorKeys, directory: String) async throws
        -> (claimed: [ClaimedBatch], loggedTail: Set<Int>, tornFiles: [String], finished: Int)
    {
        var claimed: [ClaimedBatch] = []
        var finished = 0
        for partition in keys.partitions {
            finished += try await client.send("ZCARD", partition.finished).int ?? 0
            let pairs = try await client.send("HGETALL", partition.archiving).array ?? []
            var byArchiver: [String: Set<Int>] = [:]
            for index in stride(from: 0, to: pairs.count - 1, by: 2) {
                guard let id = pairs[index].string.flatMap({ Int($0) }), let archiverId = pairs[index + 1].string else { continue }
                byArchiver[archiverId, default: []].insert(id)
            }
            claimed += byArchiver.map { ClaimedBatch(archiverId: $0.key, partition: partition.index, ids: $0.value) }
        }
        var loggedTail = Set<Int>()
        var torn: [String] = []
        let decoder = JSONDecoder()
        for file in try HistoryFile.list(directory: directory) where !file.isCompressed {
            let data = try Data(contentsOf: URL(fileURLWithPath: file.path))
            if let last = data.last, last != UInt8(ascii: "\n") { torn.append("\(file.name):\(data.count)") }
            for line in data.split(separator: UInt8(ascii: "\n")).suffix(200) {
                if let record = try? decoder.decode(HistoryRecordID.self, from: Data(line)) { loggedTail.insert(record.id) }
            }
        }
        return (claimed, loggedTail, torn, finished)
    }

    /// A line an archiver process logged (swift-log's stream format: `key=value` metadata, then the message).
    enum ArchiverLogLine {
        /// The metadata of every line whose message contains `message`.
        static func all(in log: String, message: String) -> [[String: String]] {
            log.split(separator: "\n").filter { $0.contains(message) }.map { line in
                var metadata: [String: String] = [:]
                for word in line.split(separator: " ") where word.hasPrefix("conveyor.") {
                    guard let equals = word.firstIndex(of: "=") else { continue }
                    metadata[String(word[..<equals])] = String(word[word.index(after: equals)...])
                }
                return metadata
            }
        }

        /// The identity the process logged when it started (`archiver started`), if it got that far.
        static func identity(in log: String) -> String? {
            all(in: log, message: "archiver started").first?["conveyor.archiver.id"]
        }
    }
}
