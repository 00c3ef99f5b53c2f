import Foundation

/// The results of one `conveyor-bench redis` invocation.
struct Report: Encodable, Sendable {
    /// One scenario, at the client pool size that did best.
    struct Row: Encodable, Sendable {
        var benchmark: String
        var concurrency: Int
        var pipeline: Int
        var requests: Int
        var poolSize: Int
        var conveyorOpsPerSecond: Double
        var redisBenchmarkOpsPerSecond: Double
        /// Conveyor ÷ redis-benchmark; the goal is at least 0.8.
        var ratio: Double
        /// The median of each repeat's own ratio. Both tools of one repeat run
        /// seconds apart, so this cancels slow drifts in machine load better.
        var pairedRatio: Double
        var conveyorP50Microseconds: Double
        var conveyorP99Microseconds: Double
        var redisBenchmarkP50Microseconds: Double
        /// Every repeat, in run order; the rates above are their medians.
        var conveyorRuns: [Double]
        var redisBenchmarkRuns: [Double]
        var redisBenchmarkCommand: String
    }

    /// One client pool size tried for a scenario with several callers.
    struct PoolRow: Encodable, Sendable {
        var benchmark: String
        var concurrency: Int
        var pipeline: Int
        var poolSize: Int
        var conveyorOpsPerSecond: Double
        var ratio: Double
        var conveyorRuns: [Double]
    }

    var cores: Int
    var redisVersion: String
    var server: String
    var eventLoopThreads: Int
    /// How processes were pinned to CPUs, if they were.
    var pinned: String?
    var executor: String
    var repeats: Int
    var rows: [Row]
    var poolSweep: [PoolRow]

    func json() -> String {
        let encoder = JSONEncoder()
        encoder.outputFormatting = [.prettyPrinted, .sortedKeys]
        guard let data = try? encoder.encode(self) else { return "{}" }
        return String(decoding: data, as: UTF8.self)
    }

    func table() -> String {
        var lines: [String] = [
            "Redis client vs redis-benchmark — redis \(redisVersion), \(cores) cores, "
                + "\(eventLoopThreads) event loop threads, executor: \(executor), median of \(repeats) run\(repeats == 1 ? "" : "s")",
        ]
        if let pinned { lines.append("pinned: \(pinned)") }
        lines.append("")
        lines += render(
            header: ["benchmark", "concurrency", "pipeline", "pool", "Conveyor ops/s", "redis-benchmark ops/s", "ratio",
                     "paired ratio", "Conveyor p50 µs", "redis-benchmark p50 µs"],
            rows: rows.map {
                [$0.benchmark, "\($0.concurrency)", "\($0.pipeline)", "\($0.poolSize)", formatRate($0.conveyorOpsPerSecond),
                 formatRate($0.redisBenchmarkOpsPerSecond), formatRatio($0.ratio), formatRatio($0.pairedRatio),
                 formatMicroseconds($0.conveyorP50Microseconds), formatMicroseconds($0.redisBenchmarkP50Microseconds)]
            }
        )
        if !poolSweep.isEmpty {
            lines += ["", "Client pool sizes tried (the best is reported above):", ""]
            lines += render(
                header: ["benchmark", "concurrency", "pipeline", "pool", "Conveyor ops/s", "ratio"],
                rows: poolSweep.map {
                    [$0.benchmark, "\($0.concurrency)", "\($0.pipeline)", "\($0.poolSize)",
                     formatRate($0.conveyorOpsPerSecond), formatRatio($0.ratio)]
                }
            )
        }
        return lines.joined(separator: "\n")
    }

    /// Left-aligns the first column and right-aligns the others.
    private func render(header: [String], rows: [[String]]) -> [String] {
        let all = [header] + rows
        let widths = header.indices.map { column in all.map { $0[column].count }.max() ?? 0 }
        func line(_ cells: [String]) -> String {
            cells.enumerated().map { column, cell in
                let pad = String(repeating: " ", count: widths[column] - cell.count)
                return column == 0 ? cell + pad : pad + cell
            }.joined(separator: "  ")
        }
        return [line(header), line(widths.map { String(repeating: "-", count: $0) })] + rows.map(line)
    }
}

/// `123456.7` → `123,457`.
func formatRate(_ value: Double) -> String {
    let digits = String(Int(value.rounded()))
    var result = ""
    for (index, character) in digits.reversed().enumerated() {
        if index > 0, index % 3 == 0 { result.append(",") }
        result.append(character)
    }
    return String(result.reversed())
}

func formatRatio(_ value: Double) -> String {
    String(format: "%.2f", value)
}

func formatMicroseconds(_ value: Double) -> String {
    value >= 100 ? String(Int(value.rounded())) : String(format: "%.1f", value)
}
