import Conveyor

/// Returns its input as its result.
struct Echo: Job {
    func run(_ params: JobParams<DemoApp, JSONValue>) async throws -> JSONValue {
        params.input
    }
}
