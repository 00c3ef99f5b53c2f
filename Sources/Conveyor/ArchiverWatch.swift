import Logging

/// Warns a worker's log when finished jobs wait for an archiver that is not
/// running: without one, Redis keeps every finished job and grows until it
/// hits `maxmemory`.
///
/// Every ``WorkerPoolConfiguration/archiverCheckInterval`` it reads the
/// backlog (``JobInspector/archiveBacklog(now:)``, on Redis's clock). When a
/// finished job's removeAt passed more than
/// ``WorkerPoolConfiguration/archiverMissingWarning`` ago and no archiver has
/// finished a pass within the last minute (the `archiver-alive` mark), it logs
/// one warning; while that lasts, debug lines; when jobs are archived again,
/// one info line (``TroubleLog``, one warning per episode).
struct ArchiverWatch: Sendable {
    let inspector: JobInspector
    let threshold: Duration
    let interval: Duration
    let clock: RedisClockEstimate
    let logger: Logger
    let trouble: TroubleLog

    init?<App: Sendable>(pool: WorkerPool<App>) {
        guard let threshold = pool.configuration.archiverMissingWarning else { return nil }
        inspector = JobInspector(client: pool.client, keys: pool.configuration.keys)
        self.threshold = threshold
        interval = pool.configuration.archiverCheckInterval
        clock = pool.clock
        logger = pool.logger
        trouble = pool.trouble
    }

    /// Runs until cancelled.
    func run() async {
        while !Task.isCancelled {
            await check()
            try? await Task.sleep(for: interval)
        }
    }

    /// One look at the backlog.
    func check() async {
        let backlog: JobInspector.ArchiveBacklog
        do {
            backlog = try await inspector.archiveBacklog(now: clock.scriptNow)
        } catch {
            logger.debug("could not read the archive backlog", metadata: ["conveyor.error": "\(error)"])
            return
        }
        if let overdue = backlog.oldestOverdueMs, overdue > threshold.wholeMilliseconds, backlog.aliveArchiver == nil {
            trouble.failed(
                "archiver",
                "finished jobs are waiting for an archiver and none is running: Redis keeps them until one runs (`conveyor archiver`, or a worker with --archiver)",
                logger: logger,
                metadata: [
                    "conveyor.archiver.awaiting": "\(backlog.awaitingArchive)", "conveyor.archiver.oldest_overdue_ms": "\(overdue)",
                ]
            )
        } else {
            trouble.succeeded("archiver", logger: logger, "finished jobs are being archived again")
        }
    }
}
