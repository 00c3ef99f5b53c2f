import Conveyor
import ConveyorTestSupport
import Foundation

extension ChaosScenario {
    /// One worker finishes jobs (removal due at once) while `conveyor archiver` processes are
    /// SIGKILLed at random moments (each after 150–650 ms); a last archiver, left alone, drains.
    /// Every job must be in the history exactly once and nothing left in Redis. The archiver
    /// crash tests (Tests/ConveyorTests/ArchiverCrashTests.swift) drive the store directly with
    /// internal API; this row runs the same kill loop against real worker-finished jobs.
    static func archiverKill(_ settings: ChaosSettings, _ random: inout SeededRandom) async throws -> ChaosResult {
        let total = settings.pick(full: 10_000, short: 300)
        let kills = settings.pick(full: 20, short: 3)
        let run = try await ChaosRun.start(settings, name: ChaosScenario.archiverKill.rawValue)
        let history = run.directory + "/history"
        do {
            try FileManager.default.createDirectory(atPath: history, withIntermediateDirectories: true)
            var result = ChaosResult(scenario: "archiver SIGKILLed at random while jobs finish")
            let configs = (1...total).map { run.job($0, sleepMs: Int.random(in: 0...20, using: &random)) }
            var jobIds = Set<Int>()
            for start in stride(from: 0, to: configs.count, by: 1_000) {
                jobIds.formUnion(try await run.scheduler.scheduleJobs(Array(configs[start..<min(start + 1_000, configs.count)])).map(\.id))
            }
            let acknowledged = Set(configs.map(\.userId))
            try await run.startWorker(concurrency: settings.pick(full: 20, short: 10), leaseSeconds: 30)
            let archiverArguments = [
                "archiver", "--redis", run.redis.url, "--namespace", ChaosRun.namespace, "--history-dir", history,
                "--batch-size", "10", "--interval", "0.05",
            ]
            for _ in 0..<kills {
                let archiver = try await run.conveyor(archiverArguments)
                try await Task.sleep(for: .milliseconds(Int.random(in: 150...650, using: &random)))
                await archiver.kill()
                run.markFault()
            }
            result.faults = kills
            result.faultDetail = "SIGKILL of the archiver"
            let last = try await run.conveyor(archiverArguments)
            _ = await run.waitUntilDrained(expected: acknowledged, timeout: .seconds(settings.pick(full: 240, short: 30)))
            // Then until the archiver has removed every finished job (at most 60 s).
            let drainDeadline = ContinuousClock.now + .seconds(60)
            while ContinuousClock.now < drainDeadline, (try? await run.scheduler.counts().values.reduce(0, +)) != 0 {
                try await Task.sleep(for: .milliseconds(200))
            }
            await last.stop()
            await run.measure(&result, acknowledged: acknowledged, lastProgress: nil)
            let left = (try? await run.scheduler.counts().values.reduce(0, +)) ?? -1
            var written: [Int: Int] = [:]
            var workerLost = 0
            var unreadable = 0
            for file in (try? FileManager.default.contentsOfDirectory(atPath: history)) ?? [] where file.hasSuffix(".jsonl") {
                let text = (try? String(contentsOfFile: history + "/" + file, encoding: .utf8)) ?? ""
                for line in text.split(separator: "\n") {
                    guard let entry = try? JSONDecoder().decode(HistoryEntry.self, from: Data(line.utf8)) else {
                        unreadable += 1
                        continue
                    }
                    written[entry.job.id, default: 0] += 1
                    if entry.job.result["error"] == .string("worker lost") { workerLost += 1 }
                }
            }
            result.workerLost = workerLost
            result.leftPendingOrRunning = left
            let twice = written.values.filter { $0 > 1 }.count
            let missing = jobIds.subtracting(written.keys).count
            result.notes.append("history: \(written.count) jobs, \(twice) written twice, \(missing) missing, \(unreadable) unreadable lines")
            result.notes.append("left counts finished jobs too")
            await run.finish()
            return result
        } catch {
            await run.finish()
            throw error
        }
    }
}
