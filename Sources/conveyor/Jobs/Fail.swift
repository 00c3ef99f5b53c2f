import Conveyor

/// Always fails with the message in its input.
struct Fail: Job {
    struct Input: Codable, Sendable {
        var message: String = "failed on purpose"
    }

    struct Failure: Error, CustomStringConvertible {
        var description: String
    }

    func run(_ params: JobParams<DemoApp, Input>) async throws -> Nothing {
        throw Failure(description: params.input.message)
    }
}
