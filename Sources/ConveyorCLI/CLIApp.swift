import ArgumentParser
import Conveyor
import Logging
import ServiceLifecycle
import Synchronization

/// What an app hands to the CLI: its name and job registry, and how to make
/// the context its jobs receive.
///
/// ```swift
/// // Sources/myapp/main.swift
/// await ConveyorCLI.main(CLIApp(name: "myapp", registry: WorkerJobType.registry()) { redis in MyApp(redis: redis) })
/// ```
///
/// `name` is the command name in `--help` and usage lines; the registry decides
/// which types `schedule` and `cron` accept and checks their `--data` against
/// each type's `Input`; `makeContext` runs once per `worker` process.
public struct CLIApp<App: Sendable>: Sendable {
    /// The executable's name, for help text.
    public var name: String
    /// The app's job types.
    public var registry: JobRegistry<App>
    /// Builds the app context once per worker process, given the worker's Redis client.
    public var makeContext: @Sendable (RedisClient) async throws -> App

    /// Creates the description of an app.
    public init(name: String, registry: JobRegistry<App>, makeContext: @escaping @Sendable (RedisClient) async throws -> App) {
        self.name = name
        self.registry = registry
        self.makeContext = makeContext
    }
}

/// The app-independent view of a ``CLIApp`` the subcommands use.
struct CLIEnvironment: Sendable {
    var name: String
    var jobTypeNames: [String]
    /// Checks untyped data against the registry's `Input` for its type.
    var inputCheck: (@Sendable (String, String?) throws(ConveyorError) -> Void)?
    /// Builds a worker pool for the app's jobs, type-erased so that
    /// subcommands need not be generic.
    var makePool: @Sendable (RedisClient, WorkerPoolConfiguration, Logger, (@Sendable (WorkerPoolEvent) -> Void)?) async throws -> any Service

    private static let current = Mutex<CLIEnvironment?>(nil)

    static func install(_ environment: CLIEnvironment) {
        current.withLock { $0 = environment }
    }

    /// The environment installed by ``ConveyorCLI/main(_:)``; a plain one for
    /// commands parsed without it (tests of the argument parser).
    static var installed: CLIEnvironment {
        current.withLock { $0 } ?? CLIEnvironment(name: "conveyor", jobTypeNames: [], inputCheck: nil) { _, _, _, _ in
            throw CLIError("this build of the CLI has no job registry")
        }
    }
}
