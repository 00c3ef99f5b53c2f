import ArgumentParser
import Conveyor
import Foundation

/// The `conveyor` command line, for any app that embeds it.
public enum ConveyorCLI {
    /// Parses the process arguments and runs the chosen subcommand.
    ///
    /// Exits with status 0 on success, 1 when the command failed (one line on
    /// standard error), 2 for bad usage (the message and the usage text).
    /// An app with a `main` of its own passes the arguments it does not handle
    /// itself to ``main(_:arguments:)``.
    public static func main<App>(_ app: CLIApp<App>) async -> Never {
        await main(app, arguments: Array(CommandLine.arguments.dropFirst()))
    }

    /// Runs the command line `arguments` (without the executable's name) for
    /// `app`, then exits the process as ``main(_:)`` does.
    ///
    /// ```swift
    /// // an app whose executable is also its server:
    /// // `myapp serve` runs the server, `myapp worker` / `myapp jobs list` the CLI.
    /// let arguments = Array(CommandLine.arguments.dropFirst())
    /// if arguments.first == "serve" {
    ///     try await runServer()
    /// } else {
    ///     await ConveyorCLI.main(cliApp, arguments: arguments)
    /// }
    /// ```
    public static func main<App>(_ app: CLIApp<App>, arguments: [String]) async -> Never {
        install(app)
        do {
            var command = try ConveyorCommand.parseAsRoot(arguments)
            if var asyncCommand = command as? any AsyncParsableCommand {
                try await asyncCommand.run()
            } else {
                try command.run()
            }
        } catch {
            CLIExit.exit(for: error)
        }
        exit(0)
    }

    static func install<App>(_ app: CLIApp<App>) {
        CLIEnvironment.install(
            CLIEnvironment(
                name: app.name, jobTypeNames: app.registry.typeNames,
                inputCheck: { typeName, dataJSON throws(ConveyorError) in
                    try app.registry.checkInput(typeName: typeName, dataJSON: dataJSON)
                }
            ) { client, configuration, logger, onEvent in
                WorkerPool(
                    client: client, registry: app.registry, app: try await app.makeContext(client),
                    configuration: configuration, logger: logger, onEvent: onEvent
                )
            }
        )
    }

    /// Parses `arguments` as the `conveyor` command line would, without
    /// running anything; throws the parser's error for invalid input.
    public static func validate(arguments: [String]) throws {
        _ = try ConveyorCommand.parseAsRoot(arguments)
    }
}

struct ConveyorCommand: AsyncParsableCommand {
    /// Named after the app that embeds the CLI; `demo` only where the app
    /// runs the demo's job types (the example app does).
    static var configuration: CommandConfiguration {
        let environment = CLIEnvironment.installed
        var subcommands: [any ParsableCommand.Type] = [
            WorkerCommand.self, ScheduleCommand.self, CronCommand.self, JobsCommand.self, PingCommand.self,
        ]
        if DemoCommand.jobTypes.isSubset(of: environment.jobTypeNames) { subcommands.append(DemoCommand.self) }
        subcommands += [
            ArchiverCommand.self, HistoryCommand.self, StatsCommand.self, DashboardCommand.self, ClusterStatusCommand.self,
            ClusterMovePartitionCommand.self, ClusterPausePartitionCommand.self, ClusterResumePartitionCommand.self,
        ]
        return CommandConfiguration(
            commandName: environment.name,
            abstract: "Redis-backed background jobs: schedule, inspect and run them.",
            discussion: """
                Exit status: 0 success, 1 failure (one line on standard error), 2 bad usage or bad input \
                (nothing was done).

                Examples:
                  conveyor worker --concurrency 20
                  conveyor schedule sendEmail --user 42 --data '{"to":"a@example.com"}' --due +10m
                  conveyor schedule --from jobs.jsonl
                  conveyor stats --watch
                """,
            subcommands: subcommands
        )
    }
}
