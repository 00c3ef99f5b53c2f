import Foundation
import Logging
import NIOPosix

#if canImport(Glibc)
import Glibc
#elseif canImport(Musl)
import Musl
#elseif canImport(Darwin)
import Darwin
#endif

/// History maintenance (compression, retention, disk and backlog figures)
/// and the operator's entry points.
extension Archiver {
    // MARK: Maintenance

    /// Compresses rotated files, applies retention and measures free space and
    /// backlog: at start, after each rotation, and every maintenanceInterval.
    func maintenanceLoop(_ io: NIOThreadPool) async {
        var warnedLowSpace = false
        while !isStopping {
            guard let archiverId else {
                await maintenanceWakeup.wait(upTo: .milliseconds(100))  // no identity yet
                continue
            }
            let settings = HistoryMaintenance.Settings(
                compress: configuration.compressRotatedFiles, retainDays: configuration.retainDays,
                retainBytes: configuration.retainBytes, tag: archiverId,
                // Compared with file modification times: this host's clock.
                now: configuration.testClock?() ?? Date()
            )
            let directory = configuration.historyDirectory
            guard var report = try? await io.runIfActive({ HistoryMaintenance.run(directory: directory, settings: settings) }) else { return }
            report.backlog = try? await store.backlog()
            for failure in report.failures {
                logger.info("archiver maintenance failed; retrying later", metadata: ["conveyor.error": "\(failure)"])
            }
            let threshold = configuration.lowDiskSpaceBytes ?? 4 * configuration.maxFileSize
            if let free = report.freeBytes, free < threshold {
                logger.warning(
                    "archiver: the history directory's disk is nearly full; set --retain-size or --retain-days, or free space",
                    metadata: [
                        "conveyor.archiver.directory": "\(directory)", "conveyor.archiver.free_bytes": "\(free)",
                        "conveyor.archiver.history_bytes": "\(report.historyBytes)", "conveyor.archiver.backlog": "\(report.backlog ?? -1)",
                    ]
                )
                warnedLowSpace = true
            } else if warnedLowSpace {
                warnedLowSpace = false
                logger.info("archiver: the history directory has room again", metadata: ["conveyor.archiver.free_bytes": "\(report.freeBytes ?? -1)"])
            }
            logger.debug(
                "archiver maintenance",
                metadata: [
                    "conveyor.archiver.compressed": "\(report.compressed.count)", "conveyor.archiver.deleted": "\(report.deleted.count)",
                    "conveyor.archiver.history_bytes": "\(report.historyBytes)", "conveyor.archiver.free_bytes": "\(report.freeBytes ?? -1)",
                    "conveyor.archiver.backlog": "\(report.backlog ?? -1)",
                ]
            )
            onEvent?(.maintained(report))
            await maintenanceWakeup.wait(upTo: configuration.maintenanceInterval)
        }
    }

    // MARK: Operations

    /// Releases every claim of an archiver identity and its binding, so other
    /// archivers take those jobs. Only for an identity whose history directory
    /// is lost for good: jobs its lost log already held are archived again.
    /// - Returns: The number of claims released.
    public static func releaseIdentity(_ archiverId: String, client: RedisClient, keys: ConveyorKeys) async throws(ConveyorError) -> Int {
        let store = ArchiveStore(client: client, keys: keys)
        let released = try await store.release(archiverId: archiverId)
        try await store.unbind(archiverId: archiverId)
        return released
    }

    /// Runs one maintenance round on a history directory now, as a running
    /// archiver does after each rotation: compresses (or indexes) every rotated
    /// plain file, then applies retention. For a directory written before
    /// compression existed, or with no archiver running.
    /// - Parameters:
    ///   - directory: The history directory.
    ///   - compress: Compress rotated files (else only index them).
    ///   - retainDays: Delete files whose last record is older than this many days.
    ///   - retainBytes: Delete the oldest files while the history takes more bytes than this.
    /// - Returns: What the round did; its `failures` say what it could not do.
    public static func maintain(directory: String, compress: Bool = true, retainDays: Int? = nil, retainBytes: Int? = nil) async throws
        -> HistoryMaintenanceReport
    {
        let settings = HistoryMaintenance.Settings(
            compress: compress, retainDays: retainDays, retainBytes: retainBytes, tag: "maintain-\(getpid())", now: Date()
        )
        return try await NIOThreadPool.singleton.runIfActive { HistoryMaintenance.run(directory: directory, settings: settings) }
    }

    /// The archiver's backlog: finished jobs still in Redis, over all
    /// partitions (those whose removeAt has not passed yet included).
    public static func backlog(client: RedisClient, keys: ConveyorKeys) async throws(ConveyorError) -> Int {
        try await ArchiveStore(client: client, keys: keys).backlog()
    }

    /// The number of jobs each archiver identity holds claimed now.
    public static func claims(client: RedisClient, keys: ConveyorKeys) async throws(ConveyorError) -> [String: Int] {
        try await ArchiveStore(client: client, keys: keys).claimsByArchiver()
    }
}
