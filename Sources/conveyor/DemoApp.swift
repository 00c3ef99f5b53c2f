import Conveyor

/// The example app's context, handed to every job. A real app keeps its
/// database pool, HTTP client, configuration, ... here.
struct DemoApp: Sendable {
    /// The worker's Redis client, which jobs may use too (see `Count`).
    var redis: RedisClient
}
