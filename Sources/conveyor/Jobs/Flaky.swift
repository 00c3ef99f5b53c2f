import Conveyor

/// Fails until its attempt number (along an auto-retry chain) reaches
/// `succeedOnAttempt`, then succeeds; shows retries in the demo and tests.
struct Flaky: Job {
    struct Input: Codable, Sendable {
        var succeedOnAttempt: Int
    }

    struct Output: Codable, Sendable {
        var succeededOnAttempt: Int
    }

    struct NotYet: Error, CustomStringConvertible {
        var attempt: Int
        var needed: Int
        var description: String { "attempt \(attempt) of \(needed): failing on purpose" }
    }

    func run(_ params: JobParams<DemoApp, Input>) async throws -> Output {
        guard params.job.attempt >= params.input.succeedOnAttempt else {
            throw NotYet(attempt: params.job.attempt, needed: params.input.succeedOnAttempt)
        }
        return Output(succeededOnAttempt: params.job.attempt)
    }
}
