import ArgumentParser

/// The command a scenario sends; both Conveyor and redis-benchmark send exactly it.
enum BenchmarkCommand: String, CaseIterable, Codable, ExpressibleByArgument, Sendable {
    /// `PING`: measures the client and the round trip, with the least server work.
    case ping
    /// `EVALSHA <sha> 1 <key>` of ``luaSource``: a script call, as every Conveyor state change is.
    case evalsha

    /// The name printed in tables.
    var displayName: String { rawValue.uppercased() }

    /// The script measured by ``evalsha``: small, so the client's cost shows.
    static let luaSource = "return redis.call('INCR', KEYS[1])"
}

/// One cell of the benchmark matrix: a command at a concurrency and pipeline depth.
struct Scenario: Sendable, Hashable {
    var command: BenchmarkCommand
    /// Concurrent callers (Conveyor tasks; redis-benchmark `-c` clients).
    var concurrency: Int
    /// Commands per write (Conveyor `pipeline` batch size; redis-benchmark `-P`).
    /// 1 means each caller awaits each reply before sending the next command.
    var pipeline: Int
    /// Total commands, the same for both tools (redis-benchmark `-n`).
    var requests: Int

    var label: String { "\(command.displayName) c=\(concurrency) P=\(pipeline)" }

    /// Default request counts, sized so each measurement lasts roughly
    /// 2–5 s on a 2-core machine: long enough to average out scheduler noise,
    /// short enough that three interleaved repeats of the matrix fit in minutes.
    static func defaultRequests(concurrency: Int, pipeline: Int) -> Int {
        switch (concurrency > 1, pipeline > 1) {
        case (false, false): 50_000
        case (false, true): 400_000
        case (true, false): 300_000
        case (true, true): 1_000_000
        }
    }
}

/// The median of some samples (the mean of the middle two for an even count).
func median(_ values: [Double]) -> Double {
    precondition(!values.isEmpty, "median of no values")
    let sorted = values.sorted()
    let middle = sorted.count / 2
    return sorted.count % 2 == 1 ? sorted[middle] : (sorted[middle - 1] + sorted[middle]) / 2
}
