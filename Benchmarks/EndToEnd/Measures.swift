import Conveyor
import ConveyorRedis
import Foundation
import Histogram
#if canImport(Glibc)
import Glibc
#endif

/// What one run measures, and how big.
struct Settings: Sendable {
    var measures: Set<Measure>
    var jobs: Int
    var concurrency: Int
    /// Worker process counts of the end-to-end measure, in order (default 1, 2).
    var workerProcesses: [Int]
    var bulkChunk: Int
    var bulkInFlight: Int
    var singleJobs: Int
    /// The one-at-a-time producer runs on the client's event loop.
    var producerOnEventLoop: Bool
    var latencyJobs: Int
    var latencySpacing: Duration
    var loadFraction: Double
    var loadRate: Double?
    var loadDuration: Duration
    var loadWarmup: Duration
    var futureJobs: Int
    var memoryJobs: Int
    var payloadBytes: Int
    var archiver: Bool
    /// Schedule in `send` spans of a ``BenchTracer`` (the jobs then carry `tc`).
    var trace: Bool
    var setClients: Int
    var setRequests: Int
    var binary: String
    var scratch: String
}

/// The measures `--only`/`--skip` select.
enum Measure: String, CaseIterable, Sendable {
    /// redis-benchmark's SET rate, the yardstick of every ratio.
    case set
    /// Redis memory per pending job with a 100-byte payload.
    case memory
    /// Bulk scheduling of N no-op jobs (jobs/s, Redis CPU).
    case bulk
    /// Those N processed by 1 worker process, then 2 (jobs/s, Redis CPU, worker RSS).
    case e2e
    /// One producer scheduling one job at a time, awaiting each.
    case single
    /// Start minus due on an idle pool, for "now" and for +1 s.
    case latency
    /// Start minus due at a fraction of the 1-process throughput.
    case load
    /// End-to-end throughput with many future jobs waiting.
    case claim
}

/// One run of every selected measure; figures land in `results`.
final class Bench: @unchecked Sendable {
    // Driven by one task at a time (the command's `run`), never concurrently.
    let target: Target
    let settings: Settings
    let progress = Progress()
    let repetition: Int
    var results: [String: Double] = [:]
    /// Notes for the report (encoding of a job hash, achieved load rate, ...).
    var notes: [String] = []

    init(target: Target, settings: Settings, repetition: Int) {
        self.target = target
        self.settings = settings
        self.repetition = repetition
    }

    func namespace(_ phase: String) -> String {
        "e2e-bench-\(getpid())-\(repetition)-\(phase)"
    }

    func scheduler(_ namespace: String) throws -> JobScheduler {
        JobScheduler(
            client: target.client,
            configuration: .init(keys: try ConveyorKeys(namespace: namespace), tracer: settings.trace ? BenchTracer() : nil)
        )
    }

    private func label(_ text: String) -> String { "[run \(repetition)] \(text)" }

    // MARK: The run

    func runAll() async throws {
        let selected = settings.measures
        if selected.contains(.set) { try await measureSetRate() }
        if selected.contains(.memory) { try await measureMemory() }
        if selected.contains(.bulk) || selected.contains(.e2e) {
            let processes = selected.contains(.e2e) ? settings.workerProcesses : [1]
            for (index, count) in processes.enumerated() {
                try await measureBulkAndEndToEnd(processes: count, runWorkers: selected.contains(.e2e), recordBulk: index == 0)
            }
        }
        if selected.contains(.single) { try await measureSingle() }
        if selected.contains(.latency) { try await measureIdleLatency() }
        if selected.contains(.load) { try await measureLoadLatency() }
        if selected.contains(.claim) { try await measureClaimCost() }
    }

    // MARK: redis-benchmark

    func measureSetRate() async throws {
        progress.update(label("redis-benchmark -t set -c \(settings.setClients) -n \(settings.setRequests) ..."))
        let rate = try await RedisBenchmark.setRate(
            configuration: target.configuration, clients: settings.setClients, requests: settings.setRequests, scratch: settings.scratch
        )
        try await target.client.send("DEL", "key:__rand_int__")  // the one key `-t set` writes
        results["set"] = rate
        progress.done(label("redis-benchmark SET: \(Format.rate(rate))/s"))
    }

    // MARK: Memory

    /// `used_memory` delta per pending `echo` job whose data is a JSON string of
    /// `payloadBytes` bytes, due in an hour so it stays pending.
    func measureMemory() async throws {
        // Key names are part of the cost: an 8-character namespace, as long as the default "conveyor".
        let namespace = "m" + String(format: "%07d", Int(getpid()) % 10_000_000)
        let keys = try ConveyorKeys(namespace: namespace).partition(0)
        let scheduler = try scheduler(namespace)
        let payload = "\"" + String(repeating: "x", count: max(0, settings.payloadBytes - 2)) + "\""
        let due = Date().addingTimeInterval(3600)
        // Loads the script and creates the partition's keys before the baseline.
        let first = try await scheduler.scheduleJob(UntypedJobConfig(type: "echo", userId: 0, due: due, dataJSON: payload))
        let before = try await target.usedMemory()
        let count = settings.memoryJobs
        _ = try await scheduler.scheduleInChunks(count: count, chunk: settings.bulkChunk, inFlight: settings.bulkInFlight, progress: { done in
            self.progress.update(self.label("memory: scheduling \(done)/\(count) pending echo jobs"))
        }) { index in
            UntypedJobConfig(type: "echo", userId: index + 1, due: due, dataJSON: payload)
        }
        let after = try await target.usedMemory()
        let perJob = Double(after - before) / Double(count)
        results["memory"] = perJob
        // Where it goes: one job hash (with its key), and the due and pending indexes per job.
        func usage(_ key: String) async throws -> Int {
            try await target.client.send("MEMORY", "USAGE", key, "SAMPLES", 0).int ?? 0
        }
        let jobHash = try await usage(keys.job(first.id))
        let dueIndex = Double(try await usage(keys.due)) / Double(count + 1)
        let pendingIndex = Double(try await usage(keys.pending)) / Double(count + 1)
        let encoding = try await target.client.send("OBJECT", "ENCODING", keys.job(first.id)).string ?? "?"
        let breakdown = "job hash \(jobHash) bytes (\(encoding), key `\(keys.job(first.id))`), due ZSET ≈ \(Format.number(dueIndex, digits: 0)), pending HASH ≈ \(Format.number(pendingIndex, digits: 0)) bytes per job (MEMORY USAGE)"
        notes.append("memory: \(breakdown)")
        progress.done(label("memory: \(Format.number(perJob, digits: 0)) bytes per pending job (\(settings.payloadBytes)-byte payload); \(breakdown)"))
        try await target.clean(namespace: namespace)
    }

    // MARK: Bulk scheduling and end to end

    func measureBulkAndEndToEnd(processes: Int, runWorkers: Bool, recordBulk: Bool = true) async throws {
        let namespace = namespace("e2e\(processes)")
        let scheduler = try scheduler(namespace)
        let count = settings.jobs
        _ = try await scheduler.scheduleJob(UntypedJobConfig(type: "noop", userId: 0, due: Date().addingTimeInterval(86_400)))
        let cpuBefore = try await target.cpuSeconds()
        let ownBefore = ownCPUSeconds()
        let start = ContinuousClock.now
        _ = try await scheduler.scheduleInChunks(count: count, chunk: settings.bulkChunk, inFlight: settings.bulkInFlight, progress: { done in
            self.progress.update(self.label("bulk: \(done)/\(count) no-op jobs scheduled"))
        }) { index in
            UntypedJobConfig(type: "noop", userId: index + 1)
        }
        let elapsed = ContinuousClock.now - start
        let own = ownCPUSeconds() - ownBefore
        let cpu = try await target.cpuSeconds() - cpuBefore
        if recordBulk {
            results["bulk"] = Double(count) / elapsed.seconds
            results["bulkCPU"] = cpu / Double(count) * 1_000
            results["bulkClientCPU"] = own / Double(count) * 1_000
        }
        progress.done(label("bulk: \(count) jobs in \(Format.seconds(elapsed)): \(Format.rate(Double(count) / elapsed.seconds)) jobs/s, CPU per 1,000: Redis \(Format.number(cpu / Double(count) * 1_000, digits: 4)) s, producer \(Format.number(own / Double(count) * 1_000, digits: 4)) s"))
        // The far-future job stays pending: subtract it when watching.
        if runWorkers {
            let run = try await endToEnd(namespace: namespace, jobs: count, extraPending: 1, processes: processes, name: "e2e \(processes) process\(processes == 1 ? "" : "es")", sampleMemory: processes == 1)
            results["e2e\(processes)"] = run.rate
            results["e2e\(processes)CPU"] = run.cpuPer1000
            results["e2e\(processes)WorkerCPU"] = run.workerCPUPer1000
            if let lag = run.archiveLag { results["e2e\(processes)ArchiveLag"] = lag }
            if let memory = run.workerMemory {
                results["rss"] = Double(memory.rss) / 1_048_576
                results["rssPeak"] = Double(memory.peak) / 1_048_576
            }
        }
        try await target.clean(namespace: namespace)
    }

    struct EndToEndRun {
        var rate: Double
        var cpuPer1000: Double
        /// User + system CPU of the worker processes (with the archiver), per 1,000 jobs.
        var workerCPUPer1000: Double
        var archiveLag: Double?
        var workerMemory: (rss: Int, peak: Int)?
    }

    /// Starts `processes` workers on `jobs` due jobs already pending (plus
    /// `extraPending` that are not due) and watches until every due job has
    /// finished: jobs/s from the first claim to the last finish, Redis CPU
    /// from the workers' start until the archiver (when on) has moved every
    /// finished job out of Redis.
    func endToEnd(namespace: String, jobs: Int, extraPending: Int, processes: Int, name: String, sampleMemory: Bool) async throws -> EndToEndRun {
        let scheduler = try scheduler(namespace)
        let history = settings.archiver ? settings.scratch + "/history-\(namespace)" : nil
        let cpuBefore = try await target.cpuSeconds()
        let clock = ContinuousClock()
        let spawned = clock.now
        let workers = try Workers.spawn(
            count: processes, binary: settings.binary, url: target.url, namespace: namespace, concurrency: settings.concurrency,
            archiverDirectory: history, logDirectory: settings.scratch
        )
        do {
            var first: ContinuousClock.Instant?
            var lastChange = clock.now
            var lastRemaining = Int.max
            var polls = 0
            let end: ContinuousClock.Instant
            while true {
                let counts = try await scheduler.counts()
                let pending = (counts[.pending] ?? 0) - extraPending
                let remaining = pending + (counts[.running] ?? 0)
                let now = clock.now
                polls += 1
                if first == nil, pending < jobs {
                    // Seen on the very first poll: the claim came before it, so take the spawn time.
                    first = polls == 1 ? spawned : now
                }
                if remaining <= 0 {
                    end = now
                    break
                }
                if remaining != lastRemaining {
                    lastRemaining = remaining
                    lastChange = now
                } else if now - lastChange > .seconds(60) {
                    throw BenchError("\(name): no progress for 60 s with \(remaining) jobs left")
                }
                try workers.checkAlive()
                if let first {
                    let done = jobs - remaining
                    progress.update(label("\(name): \(done)/\(jobs) done, \(Format.rate(Double(done) / (now - first).seconds)) jobs/s"))
                } else {
                    progress.update(label("\(name): waiting for the first claim"))
                }
                try await Task.sleep(for: .milliseconds(5))
            }
            let elapsed = end - (first ?? spawned)
            let memory = sampleMemory ? Workers.memory(of: workers.members[0].process.pid) : nil
            var archiveLag: Double?
            if history != nil {
                // Finished jobs leave Redis as the archiver writes them.
                while try await (scheduler.counts()[.finished] ?? 0) > 0 {
                    if clock.now - end > .seconds(120) { throw BenchError("\(name): the archiver did not drain the finished jobs within 120 s") }
                    try workers.checkAlive()
                    progress.update(label("\(name): waiting for the archiver"))
                    try await Task.sleep(for: .milliseconds(10))
                }
                archiveLag = (clock.now - end).seconds
            }
            let cpu = try await target.cpuSeconds() - cpuBefore
            let workerCPU = workers.members.compactMap { Workers.cpuSeconds(of: $0.process.pid) }.reduce(0, +)
            await workers.stop()
            let run = EndToEndRun(
                rate: Double(jobs) / elapsed.seconds, cpuPer1000: cpu / Double(jobs) * 1_000,
                workerCPUPer1000: workerCPU / Double(jobs) * 1_000, archiveLag: archiveLag, workerMemory: memory
            )
            var line = "\(name): \(jobs) jobs in \(Format.seconds(elapsed)): \(Format.rate(run.rate)) jobs/s, CPU per 1,000: Redis \(Format.number(run.cpuPer1000, digits: 4)) s, workers \(Format.number(run.workerCPUPer1000, digits: 4)) s"
            if let archiveLag { line += ", archived \(Format.number(archiveLag, digits: 2)) s after the last finish" }
            if let memory { line += ", worker RSS \(Format.number(Double(memory.rss) / 1_048_576, digits: 1)) MiB (peak \(Format.number(Double(memory.peak) / 1_048_576, digits: 1)))" }
            progress.done(label(line))
            return run
        } catch {
            await workers.stop()
            throw error
        }
    }

    // MARK: One at a time

    func measureSingle() async throws {
        let namespace = namespace("single")
        let scheduler = try scheduler(namespace)
        _ = try await scheduler.scheduleJob(UntypedJobConfig(type: "noop", userId: 0))
        let count = settings.singleJobs
        let before = try await evalshaStats()
        // The producer loop runs on the client's event loop (as the README
        // recommends for a latency-bound producer): no thread hop per call.
        let executor: (any TaskExecutor)? = settings.producerOnEventLoop ? target.client.taskExecutor : nil
        let start = ContinuousClock.now
        try await withTaskExecutorPreference(executor) {
            for index in 0..<count {
                try await scheduler.scheduleJob(UntypedJobConfig(type: "noop", userId: index + 1))
                if index % 1_000 == 0 {
                    progress.update(label("one at a time: \(index)/\(count), \(Format.rate(Double(index) / (ContinuousClock.now - start).seconds)) jobs/s"))
                }
            }
        }
        let elapsed = ContinuousClock.now - start
        let after = try await evalshaStats()
        results["single"] = Double(count) / elapsed.seconds
        // Server time per call includes the scripts of anything else running
        // on the server meanwhile (nothing, in this benchmark's own runs).
        results["singleServerMicros"] = Double(after.usec - before.usec) / Double(max(1, after.calls - before.calls))
        progress.done(label("one at a time: \(count) jobs in \(Format.seconds(elapsed)): \(Format.rate(Double(count) / elapsed.seconds)) jobs/s"))
        try await target.clean(namespace: namespace)

        // The yardstick: redis-benchmark awaiting one script call at a time.
        let key = "\(namespace):{bench}:counter"
        guard let sha = try await target.client.send("SCRIPT", "LOAD", "return redis.call('INCR', KEYS[1])").string else {
            throw BenchError("SCRIPT LOAD returned no SHA")
        }
        progress.update(label("redis-benchmark -c 1 EVALSHA ..."))
        let floor = try await RedisBenchmark.rate(
            arguments: RedisBenchmark.evalshaArguments(for: target.configuration, requests: count, sha: sha, key: key), scratch: settings.scratch
        )
        try await target.client.send("DEL", key)
        results["singleFloor"] = floor
        results["singleOfFloor"] = results["single"]! / floor
        progress.done(label("redis-benchmark -c 1 EVALSHA: \(Format.rate(floor))/s"))
    }

    /// `INFO commandstats` for `evalsha`: calls and microseconds so far.
    func evalshaStats() async throws -> (calls: Int, usec: Int) {
        let info = try await target.client.send("INFO", "commandstats").string ?? ""
        guard let line = info.split(whereSeparator: \.isNewline).first(where: { $0.hasPrefix("cmdstat_evalsha:") }) else { return (0, 0) }
        var calls = 0
        var usec = 0
        for field in line.dropFirst("cmdstat_evalsha:".count).split(separator: ",") {
            let parts = field.split(separator: "=")
            guard parts.count == 2, let value = Int(parts[1]) else { continue }
            if parts[0] == "calls" { calls = value } else if parts[0] == "usec" { usec = value }
        }
        return (calls, usec)
    }

    // MARK: Start minus due

    /// Nanoseconds are too fine: latencies are recorded in microseconds, 1 µs to 60 s.
    static func histogram() -> Histogram<UInt64> {
        Histogram(lowestDiscernibleValue: 1, highestTrackableValue: 60_000_000, numberOfSignificantValueDigits: .three)
    }

    /// Waits until no job of the namespace is pending (beyond `extraPending`) or running.
    func waitIdle(_ scheduler: JobScheduler, workers: Workers, name: String, extraPending: Int = 0, timeout: Duration = .seconds(120)) async throws {
        let deadline = ContinuousClock.now + timeout
        while true {
            let counts = try await scheduler.counts()
            let remaining = (counts[.pending] ?? 0) - extraPending + (counts[.running] ?? 0)
            if remaining <= 0 { return }
            guard ContinuousClock.now < deadline else { throw BenchError("\(name): \(remaining) jobs still not finished after \(timeout)") }
            try workers.checkAlive()
            progress.update(label("\(name): \(remaining) jobs left"))
            try await Task.sleep(for: .milliseconds(10))
        }
    }

    /// Start minus due (µs) of finished `stamp` jobs; `due` maps id → due in µs.
    func latencies(_ scheduler: JobScheduler, due: [Int: Int64]) async throws -> Histogram<UInt64> {
        var histogram = Self.histogram()
        let jobs = try await scheduler.finishedJobs(ids: Array(due.keys))
        guard jobs.count == due.count else { throw BenchError("only \(jobs.count) of \(due.count) stamp jobs finished") }
        for job in jobs {
            guard let started = startedAtMicros(job), let dueMicros = due[job.id] else {
                throw BenchError("stamp job \(job.id) has no startedAtMicros: \(job.resultJSON ?? "nil")")
            }
            histogram.record(UInt64(max(0, started - dueMicros)))
        }
        return histogram
    }

    func record(_ histogram: Histogram<UInt64>, as key: String) {
        results[key + "P50"] = Double(histogram.valueAtPercentile(50)) / 1_000
        results[key + "P99"] = Double(histogram.valueAtPercentile(99)) / 1_000
        results[key + "Max"] = Double(histogram.max) / 1_000
    }

    static func summary(_ histogram: Histogram<UInt64>) -> String {
        "p50 \(Format.ms(histogram.valueAtPercentile(50))), p99 \(Format.ms(histogram.valueAtPercentile(99))), max \(Format.ms(histogram.max)) ms (\(histogram.totalCount) jobs)"
    }

    /// One idle worker process and `stamp` jobs scheduled one at a time: first
    /// due now, `latencySpacing` apart (due = the producer's clock just before
    /// the schedule call, in µs), then due in 1 s (due = the stored whole
    /// millisecond; see below).
    func measureIdleLatency() async throws {
        let namespace = namespace("latency")
        let scheduler = try scheduler(namespace)
        let workers = try Workers.spawn(
            count: 1, binary: settings.binary, url: target.url, namespace: namespace, concurrency: settings.concurrency,
            archiverDirectory: settings.archiver ? settings.scratch + "/history-\(namespace)" : nil, logDirectory: settings.scratch
        )
        do {
            // Warm up: the worker connects, loads its scripts and goes idle.
            for index in 0..<3 {
                try await scheduler.scheduleJob(UntypedJobConfig(type: "stamp", userId: 1_000_000 + index))
                try await waitIdle(scheduler, workers: workers, name: "latency warm-up", timeout: .seconds(30))
            }
            try await Task.sleep(for: .milliseconds(300))
            let removeDelay = 3_600_000  // keep the results away from the archiver
            let count = settings.latencyJobs
            var nowDue: [Int: Int64] = [:]
            for index in 0..<count {
                let before = WallClock.micros()
                let job = try await scheduler.scheduleJob(UntypedJobConfig(type: "stamp", userId: index, removeDelay: removeDelay))
                nowDue[job.id] = before
                progress.update(label("latency, idle pool: due now \(index + 1)/\(count)"))
                try await Task.sleep(for: settings.latencySpacing)
            }
            try await waitIdle(scheduler, workers: workers, name: "latency, due now")
            // Due in 1 s: Redis times out a blocked BLPOP only when its event
            // loop wakes (a cron tick, every 1/hz s, or any command), so any
            // traffic of ours would flatter the result. The jobs are scheduled
            // one at a time, back to back, due 1 s after the first call and
            // `latencySpacing` apart; then the producer stays silent until the
            // last is due, and only the worker's own commands reach Redis.
            var laterDue: [Int: Int64] = [:]
            let spacingMs = Int(settings.latencySpacing.seconds * 1_000)
            let firstDueMs = WallClock.millis() + 1_000
            for index in 0..<count {
                let dueMs = firstDueMs + index * spacingMs
                let job = try await scheduler.scheduleJob(UntypedJobConfig(
                    type: "stamp", userId: count + index, due: Date(timeIntervalSince1970: Double(dueMs) / 1_000), removeDelay: removeDelay
                ))
                laterDue[job.id] = Int64((job.due.timeIntervalSince1970 * 1_000).rounded()) * 1_000
            }
            if WallClock.millis() >= firstDueMs {
                notes.append("latency: scheduling the due-in-1-s series took over 1 s, so its first jobs saw producer traffic")
            }
            let lastDueMs = firstDueMs + (count - 1) * spacingMs
            progress.update(label("latency, idle pool: \(count) jobs due in 1 s + \(spacingMs) ms × i; waiting silently"))
            try await Task.sleep(for: .milliseconds(max(0, lastDueMs - WallClock.millis()) + 500))
            try await waitIdle(scheduler, workers: workers, name: "latency, due in 1 s")
            let now = try await latencies(scheduler, due: nowDue)
            let later = try await latencies(scheduler, due: laterDue)
            record(now, as: "idleNow")
            record(later, as: "idleLater")
            progress.done(label("start − due, idle pool, due now: \(Self.summary(now))"))
            progress.done(label("start − due, idle pool, due in 1 s: \(Self.summary(later))"))
            await workers.stop()
        } catch {
            await workers.stop()
            throw error
        }
        try await target.clean(namespace: namespace)
    }

    /// One worker process, `stamp` jobs due now scheduled at `loadFraction`
    /// of the 1-process throughput (or `loadRate`), in a `scheduleJobs` call
    /// every few milliseconds; jobs of the first `loadWarmup` are not counted.
    func measureLoadLatency() async throws {
        let rate: Double
        if let given = settings.loadRate {
            rate = given
        } else {
            if results["e2e1"] == nil {
                progress.done(label("load: measuring the 1-process throughput first"))
                try await measureBulkAndEndToEnd(processes: 1, runWorkers: true, recordBulk: false)
            }
            rate = settings.loadFraction * results["e2e1"]!
        }
        let namespace = namespace("load")
        let scheduler = try scheduler(namespace)
        let workers = try Workers.spawn(
            count: 1, binary: settings.binary, url: target.url, namespace: namespace, concurrency: settings.concurrency,
            archiverDirectory: settings.archiver ? settings.scratch + "/history-\(namespace)" : nil, logDirectory: settings.scratch
        )
        do {
            try await scheduler.scheduleJob(UntypedJobConfig(type: "stamp", userId: 0))
            try await waitIdle(scheduler, workers: workers, name: "load warm-up", timeout: .seconds(30))
            let clock = ContinuousClock()
            let start = clock.now
            var scheduled = 0
            var due: [Int: Int64] = [:]
            due.reserveCapacity(Int(rate * settings.loadDuration.seconds) + 1_000)
            while true {
                let elapsed = clock.now - start
                if elapsed >= settings.loadDuration { break }
                let target = Int(rate * elapsed.seconds)
                if target > scheduled {
                    let count = target - scheduled
                    let before = WallClock.micros()
                    let jobs = try await scheduler.scheduleJobs((0..<count).map {
                        UntypedJobConfig(type: "stamp", userId: scheduled + $0 + 1, removeDelay: 3_600_000)
                    })
                    if elapsed >= settings.loadWarmup {
                        for job in jobs { due[job.id] = before }
                    }
                    scheduled = target
                }
                try workers.checkAlive()
                progress.update(label("load: \(scheduled) stamp jobs scheduled at \(Format.rate(rate))/s"))
                try await Task.sleep(for: .milliseconds(2))
            }
            let achieved = Double(scheduled) / (clock.now - start).seconds
            try await waitIdle(scheduler, workers: workers, name: "load")
            let histogram = try await latencies(scheduler, due: due)
            record(histogram, as: "load")
            results["loadRate"] = achieved
            progress.done(label("start − due at \(Format.rate(achieved)) jobs/s (target \(Format.rate(rate))): \(Self.summary(histogram))"))
            await workers.stop()
        } catch {
            await workers.stop()
            throw error
        }
        try await target.clean(namespace: namespace)
    }

    // MARK: Claim cost

    /// `futureJobs` no-op jobs due in a day, then the usual N due now and one
    /// worker process: throughput against the same run's figure with none.
    func measureClaimCost() async throws {
        if results["e2e1"] == nil {
            progress.done(label("claim: measuring the 1-process throughput without future jobs first"))
            try await measureBulkAndEndToEnd(processes: 1, runWorkers: true, recordBulk: false)
        }
        let namespace = namespace("claim")
        let scheduler = try scheduler(namespace)
        let future = settings.futureJobs
        let due = Date().addingTimeInterval(86_400)
        _ = try await scheduler.scheduleInChunks(count: future, chunk: settings.bulkChunk, inFlight: settings.bulkInFlight, progress: { done in
            self.progress.update(self.label("claim: \(done)/\(future) future jobs scheduled"))
        }) { index in
            UntypedJobConfig(type: "noop", userId: 1_000_000_000 + index, due: due)
        }
        let count = settings.jobs
        _ = try await scheduler.scheduleInChunks(count: count, chunk: settings.bulkChunk, inFlight: settings.bulkInFlight, progress: { done in
            self.progress.update(self.label("claim: \(done)/\(count) due jobs scheduled"))
        }) { index in
            UntypedJobConfig(type: "noop", userId: index + 1)
        }
        progress.done(label("claim: \(future) future jobs and \(count) due jobs pending"))
        let run = try await endToEnd(namespace: namespace, jobs: count, extraPending: future, processes: 1, name: "e2e 1 process, \(future) future jobs", sampleMemory: false)
        results["claim"] = run.rate
        results["claimRatio"] = run.rate / results["e2e1"]!
        try await target.clean(namespace: namespace)
    }
}

extension Duration {
    var seconds: Double {
        let (seconds, attoseconds) = components
        return Double(seconds) + Double(attoseconds) / 1e18
    }
}

enum Format {
    /// Fixed decimals with thousands separators: `12,345.67`.
    static func number(_ value: Double, digits: Int) -> String {
        guard value.isFinite else { return String(value) }
        let text = String(format: "%.\(digits)f", abs(value))
        let parts = text.split(separator: ".", maxSplits: 1)
        var integer = String(parts[0])
        var grouped = ""
        while integer.count > 3 {
            grouped = "," + integer.suffix(3) + grouped
            integer.removeLast(3)
        }
        let sign = value < 0 && text.contains(where: { $0 != "0" && $0 != "." }) ? "-" : ""
        return sign + integer + grouped + (parts.count > 1 ? "." + parts[1] : "")
    }

    static func rate(_ value: Double) -> String { number(value, digits: 0) }
    static func seconds(_ duration: Duration) -> String { number(duration.seconds, digits: 2) + " s" }
    static func ms(_ micros: UInt64) -> String { number(Double(micros) / 1_000, digits: 2) }
}
