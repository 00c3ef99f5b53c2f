import Conveyor
import Foundation

/// Returns the moment it started, in microseconds since the epoch: the
/// benchmark subtracts the job's due time to measure start latency more
/// finely than the millisecond `started` field.
struct Stamp: Job {
    struct Output: Codable, Sendable {
        var startedAtMicros: Int64
    }

    func run(_ params: JobParams<DemoApp, Nothing>) async throws -> Output {
        Output(startedAtMicros: Int64(Date().timeIntervalSince1970 * 1_000_000))
    }
}
