import ConveyorTestSupport
import Foundation

extension ChaosScenario {
    /// Jobs sleeping 20–200 ms (seeded); 2 workers; one of them SIGKILLed and restarted at
    /// random moments (full: 20 kills over 20,000 jobs; short: 2 over 300).
    static func workerKill(_ settings: ChaosSettings, _ random: inout SeededRandom) async throws -> ChaosResult {
        let lease = settings.pick(full: 30, short: 3)
        return try await killWorkers(
            .workerKill, settings, &random, jobs: settings.pick(full: 20_000, short: 300), sleepMs: 20...200,
            concurrency: settings.pick(full: 20, short: 5), lease: lease,
            kills: settings.pick(full: 20, short: 2), gapMs: settings.pick(full: 1_500...3_500, short: 500...900),
            scenario: "2 workers, 1 SIGKILLed + restarted, \(lease) s lease", faultDetail: "SIGKILL of a worker"
        )
    }

    /// Jobs of 0–1 ms (seeded), short enough that the workers claim ahead (each holds up to
    /// twice its runners: `WorkerPoolConfiguration.claimAhead`); 2 workers; one of them
    /// SIGKILLed and restarted at random moments (full: 10 kills over 100,000 jobs; short: 2
    /// over 3,000), so kills take jobs claimed but not started with them.
    static func workerKillShortJobs(_ settings: ChaosSettings, _ random: inout SeededRandom) async throws -> ChaosResult {
        let lease = settings.pick(full: 30, short: 3)
        return try await killWorkers(
            .workerKillShortJobs, settings, &random, jobs: settings.pick(full: 100_000, short: 3_000), sleepMs: 0...1,
            concurrency: settings.pick(full: 20, short: 2), lease: lease,
            kills: settings.pick(full: 10, short: 2), gapMs: settings.pick(full: 300...700, short: 150...300),
            scenario: "short jobs claimed ahead; 2 workers, 1 SIGKILLed + restarted, \(lease) s lease",
            faultDetail: "SIGKILL of a worker holding jobs claimed ahead"
        )
    }

    /// Schedules `jobs` jobs of `sleepMs`, starts 2 workers, then `kills` times waits `gapMs` and
    /// SIGKILLs one of them (restarting it), and measures the drain.
    private static func killWorkers(
        _ name: ChaosScenario, _ settings: ChaosSettings, _ random: inout SeededRandom, jobs total: Int, sleepMs: ClosedRange<Int>,
        concurrency: Int, lease: Int, kills: Int, gapMs: ClosedRange<Int>, scenario: String, faultDetail: String
    ) async throws -> ChaosResult {
        let run = try await ChaosRun.start(settings, name: name.rawValue)
        do {
            var result = ChaosResult(scenario: scenario)
            let configs = (1...total).map { run.job($0, sleepMs: Int.random(in: sleepMs, using: &random)) }
            var acknowledged = Set<Int>()
            for start in stride(from: 0, to: configs.count, by: 1_000) {
                let batch = Array(configs[start..<min(start + 1_000, configs.count)])
                if try await run.scheduler.scheduleJobs(batch).count == batch.count { acknowledged.formUnion(batch.map(\.userId)) }
            }
            for _ in 0..<2 { try await run.startWorker(concurrency: concurrency, leaseSeconds: lease) }
            for _ in 0..<kills {
                try await Task.sleep(for: .milliseconds(Int.random(in: gapMs, using: &random)))
                try await run.killAndRestartWorker(at: Int.random(in: 0...1, using: &random), concurrency: concurrency, leaseSeconds: lease)
            }
            result.faults = kills
            result.faultDetail = faultDetail
            let last = await run.waitUntilDrained(expected: acknowledged, timeout: .seconds(lease * 3 + settings.pick(full: 240, short: 30)))
            await run.measure(&result, acknowledged: acknowledged, lastProgress: last)
            await run.finish()
            return result
        } catch {
            await run.finish()
            throw error
        }
    }

    /// 2 workers reach Redis through a ``FaultProxy`` injecting seeded random reply drops,
    /// stalls (0.2–2 s) and resets while jobs are scheduled directly.
    static func proxyFaults(_ settings: ChaosSettings, _ random: inout SeededRandom) async throws -> ChaosResult {
        // Sized so the jobs outlast the fault window (~110 ms each, 2 × 20 at once: ~28 s).
        let total = settings.pick(full: 10_000, short: 300)
        let lease = settings.pick(full: 30, short: 3)
        let concurrency = settings.pick(full: 20, short: 5)
        let run = try await ChaosRun.start(settings, name: ChaosScenario.proxyFaults.rawValue)
        let proxy = try await FaultProxy.start(upstreamPort: run.redis.port)
        do {
            var result = ChaosResult(scenario: "workers behind a proxy: random drops, stalls, resets, \(lease) s lease")
            let configs = (1...total).map { run.job($0, sleepMs: Int.random(in: 20...200, using: &random)) }
            var acknowledged = Set<Int>()
            for start in stride(from: 0, to: configs.count, by: 1_000) {
                let batch = Array(configs[start..<min(start + 1_000, configs.count)])
                if try await run.scheduler.scheduleJobs(batch).count == batch.count { acknowledged.formUnion(batch.map(\.userId)) }
            }
            for _ in 0..<2 { try await run.startWorker(url: proxy.url, concurrency: concurrency, leaseSeconds: lease) }
            let faults = FaultProxy.RandomFaults(
                seed: random.next(), meanInterval: .milliseconds(settings.pick(full: 1_000, short: 600)),
                duration: .seconds(settings.pick(full: 22, short: 5)), maxFaults: settings.pick(full: 20, short: 2)
            )
            let injected = await proxy.runRandomFaults(faults)
            run.markFault()
            let last = await run.waitUntilDrained(expected: acknowledged, timeout: .seconds(lease * 3 + settings.pick(full: 120, short: 30)))
            // Read after the drain: a requested drop takes effect on the next reply, maybe late.
            result.faults = proxy.faults.total
            result.faultDetail = "\(proxy.faults); \(injected.count) requested"
            await run.measure(&result, acknowledged: acknowledged, lastProgress: last)
            result.notes.append("proxy seed \(faults.seed)")
            await run.finish()
            await proxy.stop()
            return result
        } catch {
            await run.finish()
            await proxy.stop()
            throw error
        }
    }
}
