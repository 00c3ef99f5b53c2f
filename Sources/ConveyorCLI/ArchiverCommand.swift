import ArgumentParser
import Conveyor
import Foundation
import Logging
import ServiceLifecycle

struct ArchiverCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "archiver",
        abstract: "Move finished jobs whose removeAt has passed from Redis into the history log, exactly once.",
        discussion: """
            Appends each job as one JSON line to a file in the history directory, fsyncs, and only then \
            deletes it from Redis. Several archivers may run at once, on one directory or several. \
            Stops gracefully on SIGTERM/SIGINT (the batch in progress is finished); after SIGKILL the \
            next archiver started on the same directory finishes the claimed batch exactly once.

            Examples:
              conveyor archiver --history-dir /var/lib/conveyor/history
              conveyor archiver --history-dir /var/lib/conveyor/history --retain-days 30 --metrics-port 9091
              conveyor archiver --status --history-dir /var/lib/conveyor/history
            """
    )

    @Option(name: .customLong("history-dir"), help: ArgumentHelp("History directory (default: $CONVEYOR_HISTORY_DIR).", valueName: "dir"))
    var historyDir: String?
    @Option(name: .long, help: ArgumentHelp("Longest time between passes, in seconds.", valueName: "s"))
    var interval: Double = 1
    @Option(
        name: .customLong("min-interval"),
        help: ArgumentHelp("Shortest time between passes that found less than a full batch, in seconds (at most --interval): jobs gather into bigger batches.", valueName: "s")
    )
    var minInterval: Double = 0.02
    @Option(name: .customLong("batch-size"), help: "Jobs per batch (1–1000).")
    var batchSize: Int = 500
    @Option(name: .customLong("max-file-size"), help: ArgumentHelp("Rotate files before this size: bytes, or with K, M or G (KiB, MiB, GiB).", valueName: "size"))
    var maxFileSize: String = "128M"
    @Flag(name: .customLong("no-compress"), help: "Keep rotated files plain (default: gzip them; either way they get an index).")
    var noCompress = false
    @Option(name: .customLong("retain-days"), help: ArgumentHelp("Delete history files whose last record is older than N days (default: keep).", valueName: "n"))
    var retainDays: Int?
    @Option(name: .customLong("retain-size"), help: ArgumentHelp("Delete the oldest history files while the history takes more than this: bytes, or with K, M or G (default: no bound).", valueName: "size"))
    var retainSize: String?
    @Flag(name: .customLong("status"), help: "Print the history directory's size and free space and the backlog in Redis, then exit.")
    var status = false
    @Flag(name: .customLong("maintain"), help: "Compress (or, with --no-compress, index) the rotated files and apply retention once, then exit; needs no Redis.")
    var maintain = false
    @Option(name: .customLong("archiver-id"), help: "This archiver's identity (default: a free identity of the directory, or a new one).")
    var archiverId: String?
    @Option(name: .customLong("release"), help: ArgumentHelp("Release the claims of an archiver whose history directory is lost for good, then exit.", valueName: "archiver-id"))
    var release: String?
    @Flag(name: .customLong("claims"), help: "Print how many jobs each archiver holds claimed, then exit.")
    var claims = false
    @Option(name: .customLong("log-level"), help: "trace, debug, info, notice, warning, error or critical.")
    var logLevel: String = "info"
    @OptionGroup var metrics: MetricsOptions
    @OptionGroup var redis: RedisOptions

    func validate() throws {
        guard interval > 0 else { throw ValidationError("--interval must be positive, got \(interval)") }
        guard minInterval >= 0 else { throw ValidationError("--min-interval must not be negative, got \(minInterval)") }
        guard (1...1000).contains(batchSize) else { throw ValidationError("--batch-size must be between 1 and 1000, got \(batchSize)") }
        _ = try Self.parseSize(maxFileSize)
        if let retainSize { _ = try Self.parseSize(retainSize, option: "--retain-size") }
        if let retainDays, retainDays < 1 { throw ValidationError("--retain-days must be at least 1, got \(retainDays)") }
        guard Logger.Level(rawValue: logLevel) != nil else { throw ValidationError("--log-level \"\(logLevel)\" is not a log level") }
        if release == nil && !claims { _ = try directory() }
    }

    func directory() throws -> String {
        if let historyDir, !historyDir.isEmpty { return historyDir }
        if let fromEnvironment = ProcessInfo.processInfo.environment["CONVEYOR_HISTORY_DIR"], !fromEnvironment.isEmpty {
            return fromEnvironment
        }
        throw ValidationError("pass --history-dir DIR (or set CONVEYOR_HISTORY_DIR)")
    }

    /// `1048576`, `512K`, `128M`, `1G` → bytes.
    static func parseSize(_ text: String, option: String = "--max-file-size") throws -> Int {
        let units: [Character: Int] = ["K": 1 << 10, "M": 1 << 20, "G": 1 << 30]
        var digits = Substring(text.uppercased())
        var multiplier = 1
        if let last = digits.last, let unit = units[last] {
            multiplier = unit
            digits = digits.dropLast()
        }
        guard let value = Int(digits), value > 0, value <= Int.max / multiplier else {
            throw ValidationError("\(option) \"\(text)\": expected a positive size such as 134217728, 512K, 128M or 1G")
        }
        return value * multiplier
    }

    func run() async throws {
        var logger = Logger(label: "conveyor.archiver")
        logger.logLevel = Logger.Level(rawValue: logLevel) ?? .info
        if let release {
            let client = try await redis.client()
            let keys = try await redis.keys(for: client)
            let released = try await Archiver.releaseIdentity(release, client: client, keys: keys)
            await client.shutdown()
            print("released \(released) claimed job(s) of archiver \(release); other archivers will take them")
            return
        }
        if claims {
            let client = try await redis.client()
            let counts = try await Archiver.claims(client: client, keys: try await redis.keys(for: client))
            await client.shutdown()
            if counts.isEmpty { print("no claims") }
            for (archiverId, count) in counts.sorted(by: { $0.key < $1.key }) { print("\(archiverId): \(count)") }
            return
        }
        if maintain {
            let retainBytes = try retainSize.map { try Self.parseSize($0, option: "--retain-size") }
            let report = try await Archiver.maintain(directory: try directory(), compress: !noCompress, retainDays: retainDays, retainBytes: retainBytes)
            print("compressed \(report.compressed.count), indexed \(report.indexed.count), deleted \(report.deleted.count) file(s); history \(report.historyBytes) bytes")
            for failure in report.failures { print("failed: \(failure)") }
            if !report.failures.isEmpty { throw ExitCode.failure }
            return
        }
        if status {
            let usage = try await HistoryLog(directory: try directory()).diskUsage()
            let files = try await HistoryLog(directory: try directory()).files()
            print("history: \(usage.historyBytes) bytes in \(files.count) file(s), \(files.filter(\.isCompressed).count) compressed")
            if let free = usage.freeBytes, let total = usage.totalBytes { print("free: \(free) of \(total) bytes") }
            let client = try await redis.client()
            let backlog = try await Archiver.backlog(client: client, keys: try await redis.keys(for: client))
            await client.shutdown()
            print("backlog: \(backlog) finished job(s) in Redis")
            return
        }
        let metricsServer = metrics.bootstrap(logger: logger)
        let client = try await redis.client()
        let keys = try await redis.keys(for: client)
        var configuration = ArchiverConfiguration(historyDirectory: try directory(), keys: keys, archiverId: archiverId)
        configuration.passInterval = .milliseconds(Int(interval * 1000))
        configuration.minPassInterval = .microseconds(Int(minInterval * 1_000_000))
        configuration.batchSize = batchSize
        configuration.maxFileSize = try Self.parseSize(maxFileSize)
        configuration.compressRotatedFiles = !noCompress
        configuration.retainDays = retainDays
        configuration.retainBytes = try retainSize.map { try Self.parseSize($0, option: "--retain-size") }
        let eventLogger = logger
        let archiver = Archiver(client: client, configuration: configuration, logger: logger) { event in
            switch event {
            case .started(let archiverId, let directory, let repairedBytes):
                eventLogger.notice(
                    "archiver running",
                    metadata: [
                        "conveyor.archiver.id": "\(archiverId)", "conveyor.archiver.directory": "\(directory)",
                        "conveyor.archiver.repaired_bytes": "\(repairedBytes)", "conveyor.redis": "\(client.configuration.redactedURL)",
                    ]
                )
            case .archived(_, let partition, let ids, let file):
                eventLogger.info("archived jobs", metadata: ["conveyor.partition": "\(partition)", "conveyor.archiver.count": "\(ids.count)", "conveyor.archiver.file": "\(file)"])
            case .resumed(let archiverId, let partition, let alreadyInLog, let written):
                eventLogger.notice(
                    "resumed a claimed batch",
                    metadata: [
                        "conveyor.archiver.id": "\(archiverId)", "conveyor.partition": "\(partition)",
                        "conveyor.archiver.already_in_log": "\(alreadyInLog)", "conveyor.archiver.written": "\(written)",
                    ]
                )
            case .failed, .recovered, .maintained:
                break  // the archiver logs these itself
            }
        }
        let group = ServiceGroup(
            configuration: .init(
                services: [.init(service: archiver, successTerminationBehavior: .gracefullyShutdownGroup)]
                    + (metricsServer.map { [.init(service: $0)] } ?? []) + [.init(service: client)],
                gracefulShutdownSignals: [.sigterm, .sigint],
                logger: logger
            )
        )
        try await group.run()
    }
}
