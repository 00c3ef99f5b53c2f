import Conveyor

/// The example app's context, handed to every job. A real app keeps its
/// database pool, HTTP client, configuration, ... here.
struct DemoApp: Sendable {
    var name = "conveyor-demo"
}
