import Foundation

/// The figures of every run, their medians, and the goals of issue 6 beside them.
struct E2EReport {
    /// One line of the table.
    struct Row {
        var key: String
        var label: String
        var unit: String
        var digits: Int
        /// A rate that is also shown as a fraction of redis-benchmark's SET rate.
        var ratio: Bool
        var goal: String
        var peers: String
    }

    let settings: Settings
    let runs: [[String: Double]]
    let notes: [String]
    let redisVersion: String
    let server: String
    let loadAverage: String
    let command: String
    let setCommand: String
    let workerCommand: String

    var rows: [Row] {
        let n = Format.rate(Double(settings.jobs))
        let future = Format.rate(Double(settings.futureJobs))
        let c = settings.concurrency
        let peersE2E = "Sidekiq ≈ 9,000 (2 proc.), BullMQ (Python) ≈ 2,600, swift-jobs/Valkey ≈ 1,900"
        return [
            Row(key: "set", label: "redis-benchmark SET, \(settings.setClients) clients, unpipelined", unit: "ops/s", digits: 0, ratio: false,
                goal: "(yardstick)", peers: "≈ 80,000; EVALSHA of a 4-command script ≈ 65,000"),
            Row(key: "bulk", label: "1. bulk scheduling, \(n) no-op jobs", unit: "jobs/s", digits: 0, ratio: true,
                goal: "≥ 100,000", peers: "Sidekiq bulk ≈ 120,000 (one LPUSH per 1,000 jobs)"),
            Row(key: "e2e1", label: "2. end to end, \(n) jobs, 1 worker process (\(c) runners)", unit: "jobs/s", digits: 0, ratio: true,
                goal: "≥ 30,000 (≈ 0.35 × SET)", peers: peersE2E),
            Row(key: "e2e2", label: "2. end to end, \(n) jobs, 2 worker processes", unit: "jobs/s", digits: 0, ratio: true,
                goal: "≥ the 1-process figure", peers: peersE2E),
            Row(key: "single", label: "3. one producer, one job at a time", unit: "jobs/s", digits: 0, ratio: true,
                goal: "≥ 15,000", peers: ""),
            Row(key: "singleFloor", label: "3. … redis-benchmark -c 1, EVALSHA of a one-command script", unit: "ops/s", digits: 0, ratio: false,
                goal: "(the floor: one awaited round trip)", peers: ""),
            Row(key: "singleOfFloor", label: "3. … one at a time ÷ that floor", unit: "×", digits: 2, ratio: false, goal: "", peers: ""),
            Row(key: "singleServerMicros", label: "3. … Redis time per scheduleJobs call (commandstats)", unit: "µs", digits: 1, ratio: false,
                goal: "", peers: ""),
            Row(key: "idleNowP50", label: "4. start − due, idle pool, due now: p50", unit: "ms", digits: 2, ratio: false,
                goal: "≤ 1", peers: ""),
            Row(key: "idleNowP99", label: "4. start − due, idle pool, due now: p99", unit: "ms", digits: 2, ratio: false,
                goal: "≤ 2", peers: ""),
            Row(key: "idleNowMax", label: "4. start − due, idle pool, due now: max", unit: "ms", digits: 2, ratio: false,
                goal: "", peers: ""),
            Row(key: "idleLaterP50", label: "4. start − due, idle pool, due in 1 s: p50", unit: "ms", digits: 2, ratio: false,
                goal: "≤ 1", peers: "Redis-side schedulers: 100 ms – 6 s late"),
            Row(key: "idleLaterP99", label: "4. start − due, idle pool, due in 1 s: p99", unit: "ms", digits: 2, ratio: false,
                goal: "≤ 2", peers: "Redis-side schedulers: 100 ms – 6 s late"),
            Row(key: "idleLaterMax", label: "4. start − due, idle pool, due in 1 s: max", unit: "ms", digits: 2, ratio: false,
                goal: "", peers: ""),
            Row(key: "loadRate", label: "5. load applied (stamp jobs due now)", unit: "jobs/s", digits: 0, ratio: true,
                goal: "≈ ½ of the 1-process figure", peers: ""),
            Row(key: "loadP50", label: "5. start − due under that load: p50", unit: "ms", digits: 2, ratio: false, goal: "", peers: ""),
            Row(key: "loadP99", label: "5. start − due under that load: p99", unit: "ms", digits: 2, ratio: false, goal: "≤ 20", peers: ""),
            Row(key: "loadMax", label: "5. start − due under that load: max", unit: "ms", digits: 2, ratio: false, goal: "", peers: ""),
            Row(key: "claim", label: "6. end to end, 1 process, \(future) future jobs waiting", unit: "jobs/s", digits: 0, ratio: true,
                goal: "", peers: ""),
            Row(key: "claimRatio", label: "6. … ÷ the same run's figure with none", unit: "×", digits: 2, ratio: false,
                goal: "≥ 0.9 (with 1,000,000)", peers: ""),
            Row(key: "memory", label: "7. Redis memory per pending job, \(settings.payloadBytes)-byte payload", unit: "bytes", digits: 0, ratio: false,
                goal: "≤ 350", peers: "Sidekiq 273, BullMQ 734"),
            Row(key: "rss", label: "7. worker RSS, \(c) runners, after \(n) jobs", unit: "MiB", digits: 1, ratio: false,
                goal: "≤ 50", peers: ""),
            Row(key: "rssPeak", label: "7. worker peak RSS (VmHWM) in that run", unit: "MiB", digits: 1, ratio: false, goal: "", peers: ""),
            Row(key: "bulkCPU", label: "8. Redis CPU, bulk scheduling", unit: "s / 1,000 jobs", digits: 4, ratio: false, goal: "", peers: ""),
            Row(key: "bulkClientCPU", label: "   producer (this process) CPU, bulk scheduling", unit: "s / 1,000 jobs", digits: 4, ratio: false, goal: "", peers: ""),
            Row(key: "e2e1CPU", label: "8. Redis CPU, end to end, 1 process\(settings.archiver ? " (incl. archiving)" : "")", unit: "s / 1,000 jobs", digits: 4, ratio: false,
                goal: "", peers: ""),
            Row(key: "e2e2CPU", label: "8. Redis CPU, end to end, 2 processes\(settings.archiver ? " (incl. archiving)" : "")", unit: "s / 1,000 jobs", digits: 4, ratio: false,
                goal: "", peers: ""),
            Row(key: "e2e1WorkerCPU", label: "   worker processes' CPU, end to end, 1 process", unit: "s / 1,000 jobs", digits: 4, ratio: false, goal: "", peers: ""),
            Row(key: "e2e2WorkerCPU", label: "   worker processes' CPU, end to end, 2 processes", unit: "s / 1,000 jobs", digits: 4, ratio: false, goal: "", peers: ""),
            Row(key: "e2e1ArchiveLag", label: "   archiver done, after the last finish (1 process)", unit: "s", digits: 2, ratio: false, goal: "", peers: ""),
            Row(key: "e2e2ArchiveLag", label: "   archiver done, after the last finish (2 processes)", unit: "s", digits: 2, ratio: false, goal: "", peers: ""),
        ]
    }

    static func median(_ values: [Double]) -> Double? {
        guard !values.isEmpty else { return nil }
        let sorted = values.sorted()
        let middle = sorted.count / 2
        return sorted.count % 2 == 1 ? sorted[middle] : (sorted[middle - 1] + sorted[middle]) / 2
    }

    func samples(_ key: String) -> [Double] { runs.compactMap { $0[key] } }

    /// The median over runs of each run's own figure ÷ its own SET rate.
    func ratioToSet(_ key: String) -> Double? {
        Self.median(runs.compactMap { run in
            guard let value = run[key], let set = run["set"], set > 0 else { return nil }
            return value / set
        })
    }

    func table() -> String {
        let cores = ProcessInfo.processInfo.activeProcessorCount
        var lines = [
            "Conveyor end to end — redis \(redisVersion), \(cores) cores, \(server); median of \(runs.count) run\(runs.count == 1 ? "" : "s")",
            "load average: \(loadAverage)",
            "command: \(command)",
            "redis-benchmark: \(setCommand)",
            "workers: \(workerCommand)",
            "",
            "| measure | median | unit | \(runs.count > 1 ? "runs | " : "")÷ SET | goal (issue 6) | peers (issue 6, measured elsewhere) |",
            "| --- | ---: | --- | \(runs.count > 1 ? "--- | " : "")---: | --- | --- |",
        ]
        for row in rows {
            let values = samples(row.key)
            guard let median = Self.median(values) else { continue }
            var cells = [row.label, Format.number(median, digits: row.digits), row.unit]
            if runs.count > 1 { cells.append(values.map { Format.number($0, digits: row.digits) }.joined(separator: " / ")) }
            cells.append(row.ratio ? ratioToSet(row.key).map { Format.number($0, digits: 3) } ?? "" : "")
            cells += [row.goal, row.peers]
            lines.append("| " + cells.joined(separator: " | ") + " |")
        }
        if !notes.isEmpty { lines += [""] + notes }
        return lines.joined(separator: "\n")
    }

    func json() -> String {
        var metrics: [[String: Any]] = []
        for row in rows {
            let values = samples(row.key)
            guard let median = Self.median(values) else { continue }
            var entry: [String: Any] = ["key": row.key, "label": row.label, "unit": row.unit, "median": median, "runs": values]
            if row.ratio, let ratio = ratioToSet(row.key) { entry["ratioToSet"] = ratio }
            if !row.goal.isEmpty { entry["goal"] = row.goal }
            metrics.append(entry)
        }
        let object: [String: Any] = [
            "redisVersion": redisVersion, "cores": ProcessInfo.processInfo.activeProcessorCount, "server": server,
            "runs": runs.count, "loadAverage": loadAverage, "command": command, "redisBenchmarkCommand": setCommand, "workerCommand": workerCommand,
            "settings": [
                "jobs": settings.jobs, "concurrency": settings.concurrency, "bulkChunk": settings.bulkChunk,
                "bulkInFlight": settings.bulkInFlight, "singleJobs": settings.singleJobs, "producerOnEventLoop": settings.producerOnEventLoop, "latencyJobs": settings.latencyJobs,
                "futureJobs": settings.futureJobs, "memoryJobs": settings.memoryJobs, "payloadBytes": settings.payloadBytes,
                "archiver": settings.archiver, "loadFraction": settings.loadFraction,
            ] as [String: Any],
            "metrics": metrics, "notes": notes,
        ]
        guard let data = try? JSONSerialization.data(withJSONObject: object, options: [.prettyPrinted, .sortedKeys]) else { return "{}" }
        return String(decoding: data, as: UTF8.self)
    }
}
