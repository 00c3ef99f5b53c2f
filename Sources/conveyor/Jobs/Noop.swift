import Conveyor

/// Does nothing; the unit of throughput benchmarks.
struct Noop: Job {
    func run(_ params: JobParams<DemoApp, Nothing>) async throws -> Nothing {
        Nothing()
    }
}
