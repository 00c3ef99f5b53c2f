import ConveyorRedis
import Histogram

/// One measurement of the Conveyor client.
struct ClientSample: Sendable {
    var opsPerSecond: Double
    /// Latency of one call (`send`/`eval`, or one whole `pipeline` batch), in microseconds.
    var p50Microseconds: Double
    var p99Microseconds: Double
}

/// Drives a ``RedisClient`` with a ``Scenario``'s workload.
///
/// `concurrency` tasks share the one client, as a worker pool's tasks do. Each
/// builds its commands per call through the public API (`send`, `pipeline`,
/// `eval`, `evalPipelined`), so encoding and reply decoding are measured,
/// exactly as an application pays for them.
struct ClientRunner: Sendable {
    let client: RedisClient
    let call: RedisScriptCall

    /// Runs `requests` commands of `scenario` and times the whole run.
    func run(_ scenario: Scenario, requests: Int) async throws -> ClientSample {
        let clock = ContinuousClock()
        let callers = scenario.concurrency
        let start = clock.now
        let merged = try await withThrowingTaskGroup(of: Histogram<UInt64>.self) { group in
            for index in 0..<callers {
                // Spread the remainder so the total is exactly `requests`.
                let share = requests / callers + (index < requests % callers ? 1 : 0)
                group.addTask { try await caller(scenario: scenario, operations: share) }
            }
            var merged = Self.makeHistogram()
            for try await histogram in group {
                merged.add(histogram)
            }
            return merged
        }
        let elapsed = clock.now - start
        return ClientSample(
            opsPerSecond: Double(requests) / elapsed.seconds,
            p50Microseconds: Double(merged.valueAtPercentile(50)) / 1_000,
            p99Microseconds: Double(merged.valueAtPercentile(99)) / 1_000
        )
    }

    private func caller(scenario: Scenario, operations: Int) async throws -> Histogram<UInt64> {
        var histogram = Self.makeHistogram()
        let clock = ContinuousClock()
        var remaining = operations
        while remaining > 0 {
            let count = min(scenario.pipeline, remaining)
            let start = clock.now
            switch (scenario.command, scenario.pipeline > 1) {
            case (.ping, false):
                try Self.expectPong(try await client.send(RedisCommand("PING")))
            case (.ping, true):
                var commands: [RedisCommand] = []
                commands.reserveCapacity(count)
                for _ in 0..<count { commands.append(RedisCommand("PING")) }
                let replies = try await client.pipeline(commands)
                try Self.expect(replies, count: count, Self.expectPong)
            case (.evalsha, false):
                try Self.expectInteger(try await client.eval(call))
            case (.evalsha, true):
                let replies = try await client.evalPipelined(Array(repeating: call, count: count))
                try Self.expect(replies, count: count, Self.expectInteger)
            }
            _ = histogram.record(UInt64((clock.now - start).nanoseconds))
            remaining -= count
        }
        return histogram
    }

    /// Nanoseconds from 100 ns to 60 s at three significant digits.
    static func makeHistogram() -> Histogram<UInt64> {
        Histogram(lowestDiscernibleValue: 100, highestTrackableValue: 60_000_000_000, numberOfSignificantValueDigits: .three)
    }

    private static func expect(_ replies: [RESPValue], count: Int, _ check: (RESPValue) throws -> Void) throws {
        guard replies.count == count else {
            throw BenchmarkError("expected \(count) replies, got \(replies.count)")
        }
        for reply in replies { try check(reply) }
    }

    private static func expectPong(_ reply: RESPValue) throws {
        guard case .simpleString = reply else { throw BenchmarkError("PING replied \(reply)") }
    }

    private static func expectInteger(_ reply: RESPValue) throws {
        guard case .integer = reply else { throw BenchmarkError("EVALSHA replied \(reply)") }
    }
}

extension Duration {
    var seconds: Double {
        let parts = components
        return Double(parts.seconds) + Double(parts.attoseconds) / 1e18
    }

    var nanoseconds: Int64 {
        let parts = components
        return parts.seconds * 1_000_000_000 + parts.attoseconds / 1_000_000_000
    }
}
