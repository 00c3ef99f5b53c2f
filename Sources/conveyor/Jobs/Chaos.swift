import Conveyor
#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif

/// The chaos runs' job (`Chaos/`): sleeps `sleepMs`, then appends the line "<n>\n" to the file
/// `log`, so every execution is recorded outside Redis, which a run may kill. A logical job is
/// its `n`: a retry after an interruption has a new job id and the same `n`.
struct Chaos: Job {
    struct Input: Codable, Sendable {
        var n: Int
        var sleepMs: Int
        var log: String
    }

    struct Failure: Error, CustomStringConvertible {
        var description: String
    }

    func run(_ params: JobParams<DemoApp, Input>) async throws -> Int {
        try await Task.sleep(for: .milliseconds(params.input.sleepMs))
        // One write(2) with O_APPEND: concurrent appenders (other jobs, other workers) never
        // interleave inside a line this short.
        let descriptor = open(params.input.log, O_WRONLY | O_APPEND | O_CREAT, 0o644)
        guard descriptor >= 0 else { throw Failure(description: "cannot open the chaos log (errno \(errno))") }
        defer { close(descriptor) }
        let line = Array("\(params.input.n)\n".utf8)
        let written = line.withUnsafeBytes { write(descriptor, $0.baseAddress, $0.count) }
        guard written == line.count else { throw Failure(description: "short write to the chaos log (errno \(errno))") }
        return params.input.n
    }
}
