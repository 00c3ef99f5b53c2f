@testable import Conveyor
import Foundation
import Synchronization
import Testing

private typealias Support = ArchiverTestSupport

/// Real `conveyor archiver` processes killed with SIGKILL at random moments
/// (between claiming, writing, syncing and deleting) while jobs keep finishing.
@Suite("Archiver processes killed with SIGKILL", .serialized)
struct ArchiverCrashTests {
    @Test("10,000 jobs finish while the archiver process is SIGKILLed at random moments at least 20 times: every job is in the log exactly once, none is left in Redis")
    func sigkillFaultInjection() async throws {
        let url = try await TestRedis.url()
        let total = 10_000
        try await TestRedis.withClient(poolSize: 4) { client, ns in
            let keys = try ConveyorKeys(namespace: ns, partitionCount: 2)
            let directory = Support.temporaryDirectory("crash")
            defer { try? FileManager.default.removeItem(atPath: directory) }
            let testStart = ContinuousClock.now
            // All jobs are pending first; a playing worker finishes them ~400 per 100 ms, faster than a debug-build archiver with batches of 10 keeps up (~1,500 jobs/s), so most kills land mid-batch.
            let created = try await Support.makeFinishedJobsLater(client, keys: keys, count: total)
            let producerDone = Mutex(false)
            let producer = Task {
                defer { producerDone.withLock { $0 = true } }
                try await Support.finishGradually(client, keys: keys, perTick: 400, tick: .milliseconds(100))
            }

            var kills = 0
            var logs = ""
            while kills < 20 || !producerDone.withLock({ $0 }) {
                let archiver = try ConveyorProcess.start([
                    "archiver", "--redis", url, "--namespace", ns, "--partitions", "2", "--history-dir", directory,
                    "--batch-size", "10", "--interval", "0.05", "--log-level", "info",
                ])
                try await Task.sleep(for: .milliseconds(Int.random(in: 150...650)))
                archiver.signal(SIGKILL)
                await archiver.waitForExit(timeout: .seconds(10))
                kills += 1
                logs += archiver.log
                try? FileManager.default.removeItem(atPath: archiver.logPath)
                #expect(ContinuousClock.now - testStart < .seconds(100), "the fault injection takes too long")
                if ContinuousClock.now - testStart > .seconds(100) { break }
            }
            try await producer.value

            // One last archiver, left alone, finishes what is left; then SIGTERM.
            let last = try ConveyorProcess.start([
                "archiver", "--redis", url, "--namespace", ns, "--partitions", "2", "--history-dir", directory,
                "--batch-size", "100", "--interval", "0.05",
            ])
            let drained = try await eventually(timeout: .seconds(60)) { try await Support.isClean(client, keys: keys) }
            last.signal(SIGTERM)
            await last.waitForExit(timeout: .seconds(10))
            logs += last.log
            try? FileManager.default.removeItem(atPath: last.logPath)

            let left = try await Support.leftInRedis(client, keys: keys)
            #expect(drained, "left in Redis: \(left)")
            let ids = try Support.loggedIds(directory)
            let duplicates = Support.duplicates(ids)
            #expect(duplicates.isEmpty, "written twice: \(duplicates.prefix(10)) of \(duplicates.count)")
            let missing = Set(created).subtracting(ids)
            #expect(missing.isEmpty, "missing from the log: \(missing.sorted().prefix(10)) of \(missing.count)")
            #expect(ids.count == total)
            #expect(kills >= 20)
            let resumed = logs.components(separatedBy: "resumed a claimed batch").count - 1
            // Batches the kill caught after the write (records in the log, claim still in Redis).
            let afterWrite = logs.components(separatedBy: "conveyor.archiver.already_in_log=").dropFirst()
                .filter { !$0.hasPrefix("0 ") }.count
            let repaired = logs.components(separatedBy: "removed a torn last line").count - 1
            #expect(resumed >= 1, "no kill landed inside a batch; the test proves less than it should")
            let files = try HistoryFile.list(directory: directory)
            print("archiver fault injection: \(total) jobs, \(kills) SIGKILLs, \(resumed) resumed batches (\(afterWrite) already written), \(repaired) torn lines repaired, \(files.count) file(s), \(ContinuousClock.now - testStart)")
        }
    }

    @Test("two archiver processes on one directory, one of them SIGKILLed at random 12 times while 3,000 jobs finish: each restart takes the dead identity over and finishes its batch; no job is written twice")
    func twoProcessesKilled() async throws {
        let url = try await TestRedis.url()
        let total = 3_000
        try await TestRedis.withClient(poolSize: 4) { client, ns in
            let keys = try ConveyorKeys(namespace: ns)
            let directory = Support.temporaryDirectory("crash2")
            defer { try? FileManager.default.removeItem(atPath: directory) }
            let created = try await Support.makeFinishedJobsLater(client, keys: keys, count: total)
            let producer = Task { try await Support.finishGradually(client, keys: keys, perTick: 300, tick: .milliseconds(100)) }
            let arguments = ["archiver", "--redis", url, "--namespace", ns, "--history-dir", directory, "--batch-size", "5", "--interval", "0.05"]
            var running = [try ConveyorProcess.start(arguments), try ConveyorProcess.start(arguments)]
            var logs = ""
            for kill in 0..<12 {
                try await Task.sleep(for: .milliseconds(Int.random(in: 150...650)))
                let victim = kill % 2 == 0 ? Int.random(in: 0...1) : (kill / 2) % 2
                running[victim].signal(SIGKILL)
                await running[victim].waitForExit(timeout: .seconds(10))
                logs += running[victim].log
                try? FileManager.default.removeItem(atPath: running[victim].logPath)
                running[victim] = try ConveyorProcess.start(arguments)
            }
            try await producer.value
            let drained = try await eventually(timeout: .seconds(60)) { try await Support.isClean(client, keys: keys) }
            for process in running {
                process.signal(SIGTERM)
                await process.waitForExit(timeout: .seconds(10))
                logs += process.log
                try? FileManager.default.removeItem(atPath: process.logPath)
            }
            let left = try await Support.leftInRedis(client, keys: keys)
            #expect(drained, "left in Redis: \(left)")
            let ids = try Support.loggedIds(directory)
            #expect(Support.duplicates(ids).isEmpty, "written twice: \(Support.duplicates(ids).prefix(10))")
            #expect(Set(ids) == Set(created) && ids.count == total)
            let identities = Set(try HistoryFile.list(directory: directory).map(\.archiverId))
            print("two archiver processes: \(total) jobs, 12 SIGKILLs, \(identities.count) identities wrote, \(logs.components(separatedBy: "resumed a claimed batch").count - 1) resumed batches")
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
        let store = JobStore(client: client, keys: keys, staleAfterMs: 3_600_000)
        while true {
            var claimed = 0
            for partition in keys.partitions {
                let (jobs, _, _) = try await store.claim(
                    partition: partition, now: Date().milliseconds, workerId: "crash-worker", maxCount: perTick / keys.partitionCount, leaseMs: 60_000
                )
                claimed += jobs.count
                guard !jobs.isEmpty else { continue }
                let completions = jobs.map {
                    JobStore.Completion(id: $0.id, success: $0.id % 4 != 0, resultJSON: #"{"n":\#($0.id)}"#, cronNextDue: nil)
                }
                _ = try await store.complete(completions, partition: partition, now: Date().milliseconds, workerId: "crash-worker")
            }
            if claimed == 0 { return }
            try await Task.sleep(for: tick)
        }
    }
}
