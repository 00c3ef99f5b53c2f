import ArgumentParser
import Conveyor
import ConveyorDashboard
import Foundation
import Logging

struct DashboardCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "dashboard",
        abstract: "Serve the web dashboard: overview, job lists, job pages with their chains, cron, history; cancel, run again, delete.",
        discussion: """
            Listens on 127.0.0.1 unless --bind says otherwise; any other address requires --token-file. With a \
            token, every request needs it: as `Authorization: Bearer TOKEN`, or as the password of HTTP basic auth \
            (any user name), which browsers ask for. Actions are POST forms with a CSRF token.

            Examples:
              conveyor dashboard --port 8080 --history-dir /var/lib/conveyor/history
              conveyor dashboard --bind 0.0.0.0 --port 8080 --token-file /run/secrets/dashboard_token
            """
    )

    @Option(name: .long, help: "Port to listen on (0: any free port, printed at start).") var port: Int = 8080
    @Option(name: .long, help: ArgumentHelp("Address to listen on.", valueName: "addr")) var bind: String = "127.0.0.1"
    @Option(name: .customLong("token-file"), help: ArgumentHelp("File holding the access token (at least 16 characters).", valueName: "file"))
    var tokenFile: String?
    @Option(name: .customLong("history-dir"), help: ArgumentHelp("The archiver's history directory (default: $CONVEYOR_HISTORY_DIR).", valueName: "dir"))
    var historyDir: String?
    @Option(name: .customLong("page-size"), help: "Jobs per list page (1...500).") var pageSize: Int = 50
    @OptionGroup var redis: RedisOptions

    func validate() throws {
        _ = try dashboardConfiguration()
    }

    func dashboardConfiguration() throws -> DashboardConfiguration {
        var token: String?
        if let tokenFile {
            guard let text = try? String(contentsOfFile: tokenFile, encoding: .utf8) else {
                throw ValidationError("--token-file \(tokenFile): cannot read the file")
            }
            token = text.trimmingCharacters(in: .whitespacesAndNewlines)
        }
        let history = historyDir ?? ProcessInfo.processInfo.environment["CONVEYOR_HISTORY_DIR"].flatMap { $0.isEmpty ? nil : $0 }
        let configuration = DashboardConfiguration(
            bindAddress: bind, port: port, token: token, historyDirectory: history, keys: try redis.keys(), pageSize: pageSize
        )
        do {
            try configuration.validate()
        } catch {
            throw ValidationError(error.message)
        }
        return configuration
    }

    func run() async throws {
        var configuration = try dashboardConfiguration()
        let client = try await redis.client()
        // The tags the namespace records (spread by default on a cluster).
        configuration.keys = try await redis.keys(for: client)
        var logger = Logger(label: "conveyor.dashboard")
        logger.logLevel = .warning
        let dashboard = try Dashboard(client: client, configuration: configuration, logger: logger)
        let host = configuration.bindAddress.contains(":") ? "[\(configuration.bindAddress)]" : configuration.bindAddress
        try await dashboard.run { port in
            // Written at once (not buffered): scripts and tests wait for this line.
            FileHandle.standardOutput.write(Data("dashboard listening on http://\(host):\(port)/\n".utf8))
        }
        await client.shutdown()
    }
}
