import Conveyor
import ConveyorRedis
import ConveyorTestSupport
import Foundation
import Synchronization

extension ChaosScenario {
    /// A producer schedules in batches while 2 workers run; the redis-server (AOF,
    /// `appendfsync always`) is SIGKILLed and restarted on the same port and directory twice.
    /// Workers and the producer reconnect by themselves; the producer retries failed calls.
    static func redisRestart(_ settings: ChaosSettings, _ random: inout SeededRandom) async throws -> ChaosResult {
        let total = settings.pick(full: 10_000, short: 300)
        let batchSize = settings.pick(full: 100, short: 10)
        let lease = settings.pick(full: 30, short: 3)
        let concurrency = settings.pick(full: 20, short: 5)
        let downMs = settings.pick(full: 2_000, short: 500)
        let run = try await ChaosRun.start(
            settings, name: ChaosScenario.redisRestart.rawValue, redisArguments: ["--appendonly", "yes", "--appendfsync", "always"]
        )
        do {
            var result = ChaosResult(scenario: "redis-server SIGKILLed + restarted (AOF always), \(lease) s lease")
            for _ in 0..<2 { try await run.startWorker(concurrency: concurrency, leaseSeconds: lease) }
            let configs = (1...total).map { run.job($0, sleepMs: Int.random(in: 20...200, using: &random)) }
            let batches = stride(from: 0, to: configs.count, by: batchSize).map { Array(configs[$0..<min($0 + batchSize, configs.count)]) }
            // Scheduling spreads over ~2/3 of the full run's time so the restarts land inside it.
            let pauseMs = settings.pick(full: 40, short: 50)
            let restartAt = [batches.count / 3, batches.count * 2 / 3]
            let batchesDone = SharedCounter()
            let producer = Task { () -> (Set<Int>, Int) in
                var acknowledged = Set<Int>()
                var failedCalls = 0
                let deadline = ContinuousClock.now + .seconds(settings.pick(full: 300, short: 60))
                for batch in batches {
                    let (stored, failures) = await run.scheduleRetrying(batch, until: deadline)
                    failedCalls += failures.count
                    if stored != nil { acknowledged.formUnion(batch.map(\.userId)) }
                    batchesDone.increment()
                    try? await Task.sleep(for: .milliseconds(pauseMs))
                }
                return (acknowledged, failedCalls)
            }
            // Each restart once the producer has got so far (at most 2 minutes' wait each).
            for index in restartAt {
                let waitDeadline = ContinuousClock.now + .seconds(120)
                while batchesDone.value < index, ContinuousClock.now < waitDeadline {
                    try await Task.sleep(for: .milliseconds(10))
                }
                await run.redis.kill()
                run.markFault()
                try await Task.sleep(for: .milliseconds(downMs))
                try await run.redis.restart()
            }
            let (acknowledged, failedCalls) = await producer.value
            result.faults = 2
            result.faultDetail = "SIGKILL + restart of redis-server, \(downMs) ms down"
            let last = await run.waitUntilDrained(expected: acknowledged, timeout: .seconds(lease * 3 + settings.pick(full: 180, short: 30)))
            await run.measure(&result, acknowledged: acknowledged, lastProgress: last)
            result.notes.append("\(failedCalls) schedule calls failed and were retried")
            result.notes.append("\(total - acknowledged.count) never acknowledged")
            await run.finish()
            return result
        } catch {
            await run.finish()
            throw error
        }
    }

    /// The redis-server is frozen (SIGSTOP) for longer than the lease while jobs run, then
    /// thawed: no live worker's job should be failed as `worker lost`.
    static func redisFreeze(_ settings: ChaosSettings, _ random: inout SeededRandom) async throws -> ChaosResult {
        let total = settings.pick(full: 2_000, short: 150)
        let lease = settings.pick(full: 30, short: 4)
        // The short freeze also outlasts the 10 s command timeout, as the full one does.
        let freezeSeconds = settings.pick(full: 40, short: 12)
        let concurrency = settings.pick(full: 20, short: 5)
        let run = try await ChaosRun.start(settings, name: ChaosScenario.redisFreeze.rawValue)
        do {
            var result = ChaosResult(scenario: "redis-server SIGSTOPped \(freezeSeconds) s, \(lease) s lease")
            let sleeps = settings.pick(full: 20...200, short: 200...400)
            let configs = (1...total).map { run.job($0, sleepMs: Int.random(in: sleeps, using: &random)) }
            let acknowledged = Set(try await run.scheduler.scheduleJobs(configs).map(\.userId))
            for _ in 0..<2 { try await run.startWorker(concurrency: concurrency, leaseSeconds: lease) }
            // Freeze once jobs are running.
            let runningDeadline = ContinuousClock.now + .seconds(30)
            while ContinuousClock.now < runningDeadline, run.executions().isEmpty {
                try await Task.sleep(for: .milliseconds(20))
            }
            try await Task.sleep(for: .milliseconds(Int.random(in: 200...600, using: &random)))
            run.redis.freeze()
            try await Task.sleep(for: .seconds(freezeSeconds))
            run.redis.thaw()
            run.markFault()
            result.faults = 1
            result.faultDetail = "SIGSTOP \(freezeSeconds) s, then SIGCONT"
            let last = await run.waitUntilDrained(expected: acknowledged, timeout: .seconds(lease * 3 + settings.pick(full: 120, short: 30)))
            await run.measure(&result, acknowledged: acknowledged, lastProgress: last)
            result.notes.append("every `worker lost` here is false: no worker died")
            await run.finish()
            return result
        } catch {
            run.redis.thaw()
            await run.finish()
            throw error
        }
    }

    /// No workers: schedule until `maxmemory` (`noeviction`) refuses; check the error and that
    /// every acknowledged job is stored; then workers with an archiver run and remove finished
    /// jobs, which frees memory, and scheduling must succeed again.
    static func maxmemory(_ settings: ChaosSettings, _ random: inout SeededRandom) async throws -> ChaosResult {
        let headroom = settings.pick(full: 8 << 20, short: 1 << 20)
        let lease = settings.pick(full: 30, short: 3)
        let run = try await ChaosRun.start(settings, name: ChaosScenario.maxmemory.rawValue, redisArguments: ["--maxmemory-policy", "noeviction"])
        do {
            var result = ChaosResult(scenario: "maxmemory reached (noeviction), freed by the archiver")
            let info = try await run.client.send("INFO", "memory").string ?? ""
            let used = info.split(whereSeparator: \.isNewline).first { $0.hasPrefix("used_memory:") }
                .flatMap { Int($0.dropFirst("used_memory:".count)) } ?? 1 << 20
            try await run.client.send("CONFIG", "SET", "maxmemory", "\(used + headroom)")

            var acknowledged = Set<Int>()
            var n = 0
            var refusal: String?
            let fillDeadline = ContinuousClock.now + .seconds(settings.pick(full: 120, short: 30))
            while refusal == nil, ContinuousClock.now < fillDeadline, n < 1_000_000 {
                let batch = (n + 1...n + 50).map { run.job($0, sleepMs: Int.random(in: 0...5, using: &random)) }
                do {
                    _ = try await run.scheduler.scheduleJobs(batch)
                    acknowledged.formUnion(batch.map(\.userId))
                    n += 50
                } catch {
                    refusal = "\(error)"
                }
            }
            run.markFault()
            let storedAtRefusal = try await run.scheduler.counts()[.pending] ?? 0
            result.faults = refusal == nil ? 0 : 1
            result.faultDetail = "maxmemory \(used + headroom) bytes"
            result.notes.append("refused with: \(refusal.map { String($0.prefix(120)) } ?? "never refused")")
            result.notes.append("acknowledged \(acknowledged.count), pending at refusal \(storedAtRefusal)")

            // Workers with an archiver finish and remove jobs; scheduling must work again.
            let history = run.directory + "/history"
            try FileManager.default.createDirectory(atPath: history, withIntermediateDirectories: true)
            try await run.startWorker(concurrency: 20, leaseSeconds: lease, extra: ["--archiver", "--history-dir", history])
            let more = (n + 1...n + 50).map { run.job($0, sleepMs: 0) }
            var (stored, failures) = await run.scheduleRetrying(more, until: .now + .seconds(settings.pick(full: 60, short: 10)))
            if stored != nil {
                result.notes.append("scheduling worked again after \(failures.count) refused retries")
            } else {
                // Memory did not free by itself: raise the limit, as an operator would, so the
                // rest of the row still shows whether what was stored survives.
                result.notes.append("NOT RECOVERED by workers + archiver (\(failures.count) refused retries); then CONFIG SET maxmemory 0")
                try await run.client.send("CONFIG", "SET", "maxmemory", "0")
                (stored, failures) = await run.scheduleRetrying(more, until: .now + .seconds(10))
            }
            if stored != nil { acknowledged.formUnion(more.map(\.userId)) }
            let last = await run.waitUntilDrained(expected: acknowledged, timeout: .seconds(lease * 3 + settings.pick(full: 120, short: 30)))
            await run.measure(&result, acknowledged: acknowledged, lastProgress: last)
            result.notes.append("worker lost counts jobs not yet archived only")
            await run.finish()
            return result
        } catch {
            await run.finish()
            throw error
        }
    }
}
