import Conveyor

/// Counts its own executions in Redis (`HINCRBY <key> <job id> 1`) and
/// returns the count: crash and multi-process tests use it to prove that
/// every job ran exactly once.
struct Count: Job {
    struct Input: Codable, Sendable {
        var key: String
        /// Milliseconds to sleep after counting, to keep the job running.
        var sleepMs: Int?
    }

    func run(_ params: JobParams<DemoApp, Input>) async throws -> Int {
        let count = try await params.app.redis.send("HINCRBY", params.input.key, params.job.id, 1).int ?? 0
        if let sleepMs = params.input.sleepMs {
            try await Task.sleep(for: .milliseconds(sleepMs))
        }
        return count
    }
}
