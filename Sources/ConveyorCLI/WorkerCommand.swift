import ArgumentParser
import Conveyor
import Foundation
import Logging
import ServiceLifecycle

struct WorkerCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "worker",
        abstract: "Run the app's jobs until SIGTERM/SIGINT (graceful: running jobs may finish).",
        discussion: """
            Examples:
              conveyor worker --concurrency 20 --redis redis://localhost:6379
              conveyor worker --metrics-port 9090 --log-level info
              conveyor worker --archiver --history-dir /var/lib/conveyor/history
            """
    )

    @Option(name: .long, help: "Jobs run at once.") var concurrency: Int = 10
    @Option(
        name: .customLong("claim-ahead"),
        help: "Most jobs claimed beyond --concurrency while jobs run under 2 ms on average (default: --concurrency; 0: off)."
    )
    var claimAhead: Int?
    @Option(name: .customLong("grace-period"), help: ArgumentHelp("Seconds running jobs may finish after SIGTERM.", valueName: "s"))
    var gracePeriod: Double = 30
    @Option(name: .customLong("lease"), help: ArgumentHelp("Lease of a running job, in seconds.", valueName: "s"))
    var lease: Double = 30
    @Option(
        name: .customLong("recovery-grace"),
        help: ArgumentHelp("Seconds a lease must stay expired before its job is recovered (default: half the lease).", valueName: "s")
    )
    var recoveryGrace: Double?
    @Option(
        name: .customLong("max-interruptions"),
        help: "Consecutive interruptions (worker lost, shutdown) after which a job is not run again."
    )
    var maxInterruptions: Int = 3
    @Option(
        name: .customLong("max-result-size"),
        help: ArgumentHelp("Largest job result stored, in bytes (or 512K, 1M); a larger one fails the job.", valueName: "size")
    )
    var maxResultSize: String = "1M"
    @Option(
        name: .customLong("failed-retention"),
        help: ArgumentHelp("Seconds a failed job stays in Redis (for inspection and re-runs) before it is archived.", valueName: "s")
    )
    var failedRetention: Double = 7 * 86_400
    @Option(name: .customLong("max-failed-jobs"), help: "Most failed jobs kept in Redis per partition; beyond it the oldest are archived early.")
    var maxFailedJobs: Int = 10_000
    @Option(name: .customLong("log-level"), help: "trace, debug, info, notice, warning, error or critical.")
    var logLevel: String = "info"
    @Flag(name: .long, help: "Also run an archiver in this process (see `archiver`).")
    var archiver = false
    @Option(name: .customLong("history-dir"), help: ArgumentHelp("History directory for --archiver (default: $CONVEYOR_HISTORY_DIR).", valueName: "dir"))
    var historyDir: String?
    @OptionGroup var metrics: MetricsOptions
    @OptionGroup var redis: RedisOptions

    func validate() throws {
        guard concurrency >= 1 else { throw ValidationError("--concurrency must be at least 1, got \(concurrency)") }
        if let claimAhead, claimAhead < 0 { throw ValidationError("--claim-ahead must not be negative, got \(claimAhead)") }
        guard gracePeriod >= 0 else { throw ValidationError("--grace-period must not be negative") }
        guard lease >= 1 else { throw ValidationError("--lease must be at least 1 second") }
        if let recoveryGrace, recoveryGrace < 0 { throw ValidationError("--recovery-grace must not be negative") }
        _ = try ArchiverCommand.parseSize(maxResultSize, option: "--max-result-size")
        guard failedRetention >= 0 else { throw ValidationError("--failed-retention must not be negative") }
        guard maxFailedJobs >= 1 else { throw ValidationError("--max-failed-jobs must be at least 1, got \(maxFailedJobs)") }
        guard maxInterruptions >= 1 else { throw ValidationError("--max-interruptions must be at least 1, got \(maxInterruptions)") }
        guard Logger.Level(rawValue: logLevel) != nil else { throw ValidationError("--log-level \"\(logLevel)\" is not a log level") }
        if archiver { _ = try historyDirectory() }
    }

    func historyDirectory() throws -> String {
        if let historyDir, !historyDir.isEmpty { return historyDir }
        if let fromEnvironment = ProcessInfo.processInfo.environment["CONVEYOR_HISTORY_DIR"], !fromEnvironment.isEmpty {
            return fromEnvironment
        }
        throw ValidationError("--archiver needs --history-dir DIR (or CONVEYOR_HISTORY_DIR)")
    }

    func run() async throws {
        var logger = Logger(label: "conveyor.worker")
        logger.logLevel = Logger.Level(rawValue: logLevel) ?? .info
        let metricsServer = metrics.bootstrap(logger: logger)
        let (client, server) = try await redis.clientOrEmbeddedServer { logger.notice("\($0)") }
        let keys = try await redis.keys(for: client)
        var configuration = WorkerPoolConfiguration(concurrency: concurrency, claimAhead: claimAhead, keys: keys)
        configuration.shutdownGracePeriod = .milliseconds(Int(gracePeriod * 1000))
        configuration.leaseDuration = .milliseconds(Int(lease * 1000))
        configuration.leaseRenewInterval = .milliseconds(Int(lease * 1000 / 3))
        // Look for dead workers' jobs at least as often as leases are renewed.
        configuration.recoveryInterval = min(configuration.recoveryInterval, configuration.leaseRenewInterval)
        // Longer than a renewal interval, so live workers renew first after an outage.
        configuration.recoveryGracePeriod = .milliseconds(Int((recoveryGrace ?? lease / 2) * 1000))
        configuration.maxConsecutiveInterruptions = maxInterruptions
        configuration.maxResultBytes = try ArchiverCommand.parseSize(maxResultSize, option: "--max-result-size")
        configuration.failedJobRetention = .milliseconds(Int(failedRetention * 1000))
        configuration.maxRetainedFailedJobs = maxFailedJobs
        let eventLogger = logger
        let archiverService = try archiver
            ? Archiver(client: client, configuration: ArchiverConfiguration(historyDirectory: historyDirectory(), keys: keys), logger: logger)
            : nil
        let pool = try await CLIEnvironment.installed.makePool(client, configuration, logger) { event in
            // A job archived on the next pass need not wait for the pass timer.
            if event.written && (event.success ? event.job.removeDelay : Int(failedRetention * 1000)) == 0 { archiverService?.wakeUp() }
            guard eventLogger.logLevel <= .info || !event.written else { return }
            var metadata: Logger.Metadata = [
                "conveyor.job.id": "\(event.job.id)", "conveyor.job.type": "\(event.job.type)",
                "conveyor.user.id": "\(event.job.userId)", "conveyor.job.success": "\(event.success)",
            ]
            if let followUp = event.followUpJobId { metadata["conveyor.job.follow_up"] = "\(followUp)" }
            eventLogger.info(event.written ? "job finished" : "job result discarded (lease lost)", metadata: metadata)
        }
        logger.notice("worker running", metadata: ["conveyor.worker.id": "\(configuration.workerId)", "conveyor.redis": "\(client.configuration.redactedURL)"])
        let group = ServiceGroup(
            configuration: .init(
                // Shut down in reverse order: the pool finishes its jobs
                // (writing their results) before the client closes.
                services: [.init(service: client)] + (metricsServer.map { [.init(service: $0)] } ?? [])
                    + (archiverService.map { [.init(service: $0)] } ?? [])
                    + [.init(service: pool, successTerminationBehavior: .gracefullyShutdownGroup)],
                gracefulShutdownSignals: [.sigterm, .sigint],
                logger: logger
            )
        )
        try await group.run()
        await server?.stop()
    }
}
