import ArgumentParser
import Conveyor
import Foundation

/// The `conveyor` command line, for any app that embeds it.
public enum ConveyorCLI {
    /// Parses the process arguments and runs the chosen subcommand.
    public static func main<App>(_ app: CLIApp<App>) async {
        CLIEnvironment.install(
            CLIEnvironment(name: app.name, jobTypeNames: app.registry.typeNames) { client, configuration, logger, onEvent in
                WorkerPool(
                    client: client, registry: app.registry, app: try await app.makeContext(client),
                    configuration: configuration, logger: logger, onEvent: onEvent
                )
            }
        )
        await ConveyorCommand.main()
    }

    /// Parses `arguments` as the `conveyor` command line would, without
    /// running anything; throws the parser's error for invalid input.
    public static func validate(arguments: [String]) throws {
        _ = try ConveyorCommand.parseAsRoot(arguments)
    }
}

struct ConveyorCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "conveyor",
        abstract: "Redis-backed background jobs: schedule, inspect and run them.",
        subcommands: [
            WorkerCommand.self, ScheduleCommand.self, CronCommand.self, JobsCommand.self, PingCommand.self, DemoCommand.self,
            ArchiverCommand.self, HistoryCommand.self,
        ]
    )
}
