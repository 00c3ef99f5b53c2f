import Conveyor

/// Sleeps for `ms` milliseconds (cancellable), then returns how long it slept.
struct Sleep: Job {
    struct Input: Codable, Sendable {
        var ms: Int
    }

    struct Output: Codable, Sendable {
        var sleptMs: Int
    }

    func run(_ params: JobParams<DemoApp, Input>) async throws -> Output {
        try await Task.sleep(for: .milliseconds(params.input.ms))
        return Output(sleptMs: params.input.ms)
    }
}
