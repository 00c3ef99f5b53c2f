import ConveyorTesting
import ConveyorRedis
import Foundation

/// One measurement by `redis-benchmark`.
struct RedisBenchmarkSample: Sendable {
    var opsPerSecond: Double
    /// Its p50 latency per request, in microseconds (it reports milliseconds).
    var p50Microseconds: Double
}

/// Runs the `redis-benchmark` executable (Debian package `redis-tools`) and
/// parses its `--csv` output.
///
/// It runs single-threaded (no `--threads`), with one connection per client
/// (`-c`), each keeping `-P` requests in flight, against the same server and
/// with the same command and total `-n` as the Conveyor measurement.
struct RedisBenchmarkTool: Sendable {
    let executable: String
    /// `-h`/`-p` or `-s`, plus `--user`/`-a`/`--dbnum` when the URL has them.
    let connectionArguments: [String]

    init(configuration: RedisConfiguration) throws {
        guard let executable = RedisServerProcess.findExecutable("redis-benchmark") else {
            throw BenchmarkError("redis-benchmark not found on PATH; install redis-tools (make deps does)")
        }
        self.executable = executable
        self.connectionArguments = configuration.commandLineArguments
    }

    /// The arguments of one run (`-n` is the same total the client sends).
    func arguments(clients: Int, requests: Int, pipeline: Int, command: [String]) -> [String] {
        connectionArguments + ["-c", String(clients), "-n", String(requests), "-P", String(pipeline), "--csv"] + command
    }

    /// The command line with any password masked.
    func printable(clients: Int, requests: Int, pipeline: Int, command: [String]) -> String {
        var words = ["redis-benchmark"] + arguments(clients: clients, requests: requests, pipeline: pipeline, command: command)
        if let index = words.firstIndex(of: "-a"), index + 1 < words.count { words[index + 1] = "***" }
        return words.joined(separator: " ")
    }

    func run(clients: Int, requests: Int, pipeline: Int, command: [String]) async throws -> RedisBenchmarkSample {
        let output = FileManager.default.temporaryDirectory
            .appendingPathComponent("conveyor-bench-\(UInt64.random(in: 0...UInt64.max)).csv").path
        defer { try? FileManager.default.removeItem(atPath: output) }
        let process = try ChildProcess.spawn(
            executable,
            arguments: arguments(clients: clients, requests: requests, pipeline: pipeline, command: command),
            standardOutput: output
        )
        await process.waitForExit(timeout: .seconds(900))
        let text = (try? String(contentsOfFile: output, encoding: .utf8)) ?? ""
        guard let sample = Self.parseCSV(text) else {
            throw BenchmarkError("cannot read redis-benchmark's result; it printed: \(text.suffix(400))")
        }
        return sample
    }

    /// Reads the data row of `--csv` output:
    /// `"test","rps","avg_latency_ms","min_latency_ms","p50_latency_ms",...`.
    static func parseCSV(_ text: String) -> RedisBenchmarkSample? {
        let lines = text.split(whereSeparator: \.isNewline)
        guard let header = lines.first(where: { $0.hasPrefix("\"test\"") }) else { return nil }
        let names = fields(header)
        guard let rpsIndex = names.firstIndex(of: "rps"), let p50Index = names.firstIndex(of: "p50_latency_ms"),
            let row = lines.last(where: { !$0.hasPrefix("\"test\"") && $0.hasPrefix("\"") })
        else { return nil }
        let values = fields(row)
        guard values.count == names.count, let rps = Double(values[rpsIndex]), let p50 = Double(values[p50Index]) else {
            return nil
        }
        return RedisBenchmarkSample(opsPerSecond: rps, p50Microseconds: p50 * 1_000)
    }

    private static func fields(_ line: Substring) -> [String] {
        line.split(separator: ",", omittingEmptySubsequences: false).map {
            $0.trimmingCharacters(in: CharacterSet(charactersIn: "\" "))
        }
    }
}
