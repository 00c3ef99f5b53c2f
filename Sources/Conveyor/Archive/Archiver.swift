import Foundation
import Logging
import NIOPosix
import ServiceLifecycle
import Synchronization

/// Moves finished jobs out of Redis into the history log, exactly once.
///
/// Each pass, per partition: claim up to ``ArchiverConfiguration/batchSize``
/// finished jobs whose removeAt has passed (`claimArchiveBatch`: the claim names
/// this archiver; the jobs stay in Redis), append them to the log as JSON lines,
/// `fsync`, and only then delete them (`deleteArchivedJobs`, which only deletes
/// jobs this archiver claimed). A claim that outlives its archiver (SIGKILL
/// between any two steps) is found again by the next archiver that takes the
/// same identity, which reconciles it with the tail of the log: records already
/// there are only deleted, the others written first. `docs/archiver.md` has
/// the argument.
///
/// Identities: an archiver takes an identity of its history directory
/// (`archiver-<id>.lock`, held with `flock` while it runs), writes only that
/// identity's files, and claims under that id. Several archivers may run at
/// once, on one directory or on several; they never claim the same job.
///
/// Failures (unwritable directory, full disk, Redis unreachable): the archiver
/// stops claiming, logs an error, and retries with exponential backoff; a
/// batch it could not write stays claimed and in Redis, and is reconciled
/// before anything else is claimed.
///
/// File I/O (write, fsync, flock, reading the tail) runs on a dedicated
/// one-thread `NIOThreadPool`, never on the cooperative pool.
///
/// Graceful shutdown finishes the batch in progress and stops; cancellation
/// stops at once (the claim is resumed by the next start).
public final class Archiver: Service {
    /// Archiver settings.
    public typealias Configuration = ArchiverConfiguration
    /// What the archiver did.
    public typealias Event = ArchiverEvent

    public let configuration: Configuration
    let client: RedisClient
    let store: ArchiveStore
    let logger: Logger
    let onEvent: (@Sendable (Event) -> Void)?
    let metrics: ConveyorMetrics
    private let stopping = Mutex(false)
    private let wakeup = Wakeup()
    private let identity = Mutex<String?>(nil)
    let maintenanceWakeup = Wakeup()
    /// The file the last batch went to: a batch to another file means a rotation.
    private let lastFile = Mutex<String?>(nil)
    /// Redis's clock as the claim replies report it: when to wake for the
    /// next removeAt, `archivedAt`, file names.
    let clock: RedisClockEstimate

    /// How long the `archiver-alive` mark lasts after a pass (ms), and how
    /// often a running archiver refreshes it.
    static let heartbeatTTLMs = 60_000
    static let heartbeatInterval = Duration.seconds(10)

    /// Creates an archiver.
    /// - Parameters:
    ///   - client: The Redis client.
    ///   - configuration: Directory, key layout, batch and file sizes, intervals.
    ///   - logger: Passes and identities at `.debug`; failures of the history
    ///     directory at `.error` (jobs pile up in Redis until they are fixed).
    ///   - onEvent: Called after each batch, failure and recovery.
    public init(
        client: RedisClient, configuration: Configuration, logger: Logger = .current,
        onEvent: (@Sendable (Event) -> Void)? = nil
    ) {
        self.client = client
        self.configuration = configuration
        self.store = ArchiveStore(client: client, keys: configuration.keys)
        self.clock = RedisClockEstimate(testClock: configuration.testClock, hostClock: configuration.testHostClock ?? { Date() })
        self.logger = logger
        self.onEvent = onEvent
        self.metrics = ConveyorMetrics(factory: configuration.metricsFactory)
    }

    /// The identity this archiver writes under, once it has one.
    public var archiverId: String? { identity.withLock { $0 } }

    /// Runs until graceful shutdown or cancellation.
    /// - Throws: ``ArchiveError`` with code `invalidArgument` for an invalid configuration.
    public func run() async throws {
        try configuration.validate()
        let verified = try await withGracefulShutdownHandler {
            try await configuration.keys.verifyLayoutRetrying(client: client, isStopping: { self.isStopping })
        } onGracefulShutdown: {
            self.beginShutdown()
        }
        guard verified else { return }
        let io = NIOThreadPool(numberOfThreads: 1)
        io.start()
        // Compression and retention get their own thread: compressing a
        // 128 MiB file takes seconds, which must not delay the next batch.
        let maintenanceIO = NIOThreadPool(numberOfThreads: 1)
        maintenanceIO.start()
        await withGracefulShutdownHandler {
            await withDiscardingTaskGroup { group in
                group.addTask { await self.loop(io) }
                group.addTask { await self.maintenanceLoop(maintenanceIO) }
            }
        } onGracefulShutdown: {
            self.beginShutdown()
        }
        try? await io.shutdownGracefully()
        try? await maintenanceIO.shutdownGracefully()
    }

    /// Stops claiming; the batch in progress is finished first.
    public func beginShutdown() {
        stopping.withLock { $0 = true }
        wakeup.signal()
        maintenanceWakeup.signal()
    }

    /// Starts the next pass now (e.g. after a job with `removeDelay` 0 finished).
    public func wakeUp() {
        wakeup.signal()
    }

    var isStopping: Bool { Task.isCancelled || stopping.withLock { $0 } }

    /// Redis's time, estimated (ms).
    private var nowMs: Int { clock.nowMs }

    /// `claimArchiveBatch` on Redis's clock; the reply's time corrects the estimate.
    private func claimBatch(_ partition: ConveyorKeys.Partition, archiverId: String, maxCount: Int) async throws -> ArchiveStore.Claim {
        let sentAt = clock.hostNowMs
        let claim = try await store.claim(partition: partition, now: clock.scriptNow, archiverId: archiverId, maxCount: maxCount)
        clock.observe(redisMs: claim.now, sentAt: sentAt)
        return claim
    }

    // MARK: The loop

    private func loop(_ io: NIOThreadPool) async {
        var backoff = configuration.retryInitialDelay
        var failing = false

        // 1. An identity of the directory, bound to it in Redis.
        var writer: HistoryWriter?
        while !isStopping, writer == nil {
            do {
                writer = try await acquire(io, archiverId: configuration.archiverId)
            } catch {
                let first = !failing
                failing = true
                await fail(error, backoff: backoff, first: first)
                backoff = min(backoff * 2, configuration.retryMaxDelay)
            }
        }
        guard let writer else { return }
        identity.withLock { $0 = writer.archiverId }
        logger.debug(
            "archiver started",
            metadata: ["conveyor.archiver.id": "\(writer.archiverId)", "conveyor.archiver.directory": "\(configuration.historyDirectory)"]
        )
        if writer.repairedBytes > 0 {
            logger.info(
                "archiver removed a torn last line from its newest history file",
                metadata: ["conveyor.archiver.id": "\(writer.archiverId)", "conveyor.archiver.repaired_bytes": "\(writer.repairedBytes)"]
            )
        }
        onEvent?(.started(archiverId: writer.archiverId, directory: configuration.historyDirectory, repairedBytes: writer.repairedBytes))

        // 2. Identities of this directory whose archiver died: finish their batches.
        await adoptOrphans(io, excluding: writer.archiverId)

        // 3. Passes.
        var needsResume = true
        var lastHeartbeat: ContinuousClock.Instant?
        while !isStopping {
            do {
                if needsResume {
                    // Every held batch is finished before anything new is
                    // claimed, so at most one batch is ever written and not
                    // yet deleted: the one at the end of the log.
                    try await resumeAll(io, writer)
                    needsResume = false
                }
                var more = false
                var nextRemoveAt: Int?
                let passStart = ContinuousClock.now
                for partition in configuration.keys.partitions {
                    if isStopping { break }
                    let claim = try await claimBatch(partition, archiverId: writer.archiverId, maxCount: configuration.batchSize)
                    try await finish(claim, partition: partition, io: io, writer: writer)
                    if claim.resumed || claim.ids.count >= configuration.batchSize { more = true }
                    if let next = claim.nextRemoveAt { nextRemoveAt = min(nextRemoveAt ?? next, next) }
                }
                backoff = configuration.retryInitialDelay
                if lastHeartbeat.map({ ContinuousClock.now - $0 >= Self.heartbeatInterval }) ?? true {
                    try await store.heartbeat(archiverId: writer.archiverId, ttlMs: Self.heartbeatTTLMs)
                    lastHeartbeat = .now
                }
                if failing {
                    failing = false
                    logger.info("archiver is writing again", metadata: ["conveyor.archiver.id": "\(writer.archiverId)"])
                    onEvent?(.recovered)
                }
                if more || isStopping { continue }
                // A partial batch: let finished jobs gather for a moment, so a
                // steady stream is archived in big batches (fewer Redis calls
                // and fsyncs) rather than one small batch per wake-up.
                let gather = min(configuration.minPassInterval, configuration.passInterval) - (ContinuousClock.now - passStart)
                if gather > .zero { try? await Task.sleep(for: gather) }
                if let nextRemoveAt, nextRemoveAt <= nowMs { continue }
                var wait = configuration.passInterval
                if let nextRemoveAt {
                    wait = min(wait, .milliseconds(max(5, nextRemoveAt - nowMs)))
                }
                await wakeup.wait(upTo: wait)
            } catch {
                needsResume = true
                let first = !failing
                failing = true
                await fail(error, backoff: backoff, first: first)
                backoff = min(backoff * 2, configuration.retryMaxDelay)
            }
        }
        try? await io.runIfActive { writer.close() }
        logger.debug("archiver stopped", metadata: ["conveyor.archiver.id": "\(writer.archiverId)"])
    }

    /// Logs a failure clearly (a warning for the first of an episode, debug
    /// for its retries) and waits `backoff` (or until shutdown).
    private func fail(_ error: any Error, backoff: Duration, first: Bool) async {
        let archiveError = error as? ArchiveError
        let diskFull = archiveError?.isDiskFull ?? false
        let what: String
        switch archiveError?.code {
        case .io?:
            what = diskFull ? "archiver cannot write the history log: the disk is full" : "archiver cannot write the history log"
        case .identityInUse?, .identityMismatch?:
            what = "archiver cannot take its identity"
        case .some:
            what = "archiver failed"
        case nil:
            what = error is ConveyorError || error is RedisError ? "archiver cannot reach Redis" : "archiver failed"
        }
        logger.log(
            level: first ? .warning : .debug,
            "\(what); not taking jobs (they stay in Redis), retrying",
            metadata: [
                "conveyor.archiver.directory": "\(configuration.historyDirectory)", "conveyor.error": "\(error)",
                "conveyor.retry_ms": "\(backoff.wholeMilliseconds)",
            ]
        )
        onEvent?(.failed(message: "\(what): \(error)", diskFull: diskFull))
        if !isStopping { await wakeup.wait(upTo: backoff) }
    }

    /// Opens (or takes over) an identity and checks its binding in Redis.
    private func acquire(_ io: NIOThreadPool, archiverId: String?) async throws -> HistoryWriter {
        let directory = configuration.historyDirectory
        let maxFileSize = configuration.maxFileSize
        let writer = try await io.runIfActive {
            try HistoryWriter.open(directory: directory, archiverId: archiverId, maxFileSize: maxFileSize)
        }
        do {
            try await checkBinding(writer)
        } catch {
            try? await io.runIfActive { writer.close() }
            throw error
        }
        return writer
    }

    /// An identity is bound to the directory that first used it: the same id
    /// in two directories would mean two logs reconciling one claim.
    private func checkBinding(_ writer: HistoryWriter) async throws {
        let bound = try await store.bind(archiverId: writer.archiverId, token: writer.token)
        guard bound == writer.token else {
            throw ArchiveError(
                .identityMismatch,
                "archiver id \(writer.archiverId) belongs to another history directory; pick another --archiver-id (or, if that directory is lost for good, release the id)"
            )
        }
    }

    private func adoptOrphans(_ io: NIOThreadPool, excluding archiverId: String) async {
        let directory = configuration.historyDirectory
        let maxFileSize = configuration.maxFileSize
        let orphans: [HistoryWriter]
        do {
            orphans = try await io.runIfActive {
                try HistoryWriter.lockFreeIdentities(directory: directory, excluding: [archiverId], maxCount: 100, maxFileSize: maxFileSize)
            }
        } catch {
            logger.debug("archiver could not look for orphaned identities", metadata: ["conveyor.error": "\(error)"])
            return
        }
        for orphan in orphans {
            do {
                try await checkBinding(orphan)
                try await resumeAll(io, orphan)
            } catch {
                logger.info(
                    "archiver could not finish the batch of a stopped archiver; the next start retries",
                    metadata: ["conveyor.archiver.id": "\(orphan.archiverId)", "conveyor.error": "\(error)"]
                )
            }
            try? await io.runIfActive { orphan.close() }
        }
    }

    /// Finishes every batch `writer`'s identity holds, in every partition.
    private func resumeAll(_ io: NIOThreadPool, _ writer: HistoryWriter) async throws {
        for partition in configuration.keys.partitions {
            let claim = try await claimBatch(partition, archiverId: writer.archiverId, maxCount: 0)
            try await finish(claim, partition: partition, io: io, writer: writer)
        }
    }

    /// Writes a claimed batch (after reconciling a resumed one), syncs, deletes.
    private func finish(_ claim: ArchiveStore.Claim, partition: ConveyorKeys.Partition, io: NIOThreadPool, writer: HistoryWriter)
        async throws
    {
        guard !claim.ids.isEmpty else { return }
        var toWrite = claim.jobs
        var rawToWrite = claim.raw
        let found = claim.jobs.count + claim.raw.count
        if claim.resumed {
            // Only this identity writes these jobs, and its held batch is the
            // last thing it wrote: if any is in the log, it is in the last lines.
            let window = claim.ids.count + configuration.batchSize
            let inLog = try await io.runIfActive { try writer.idsInTail(lineCount: window) }
            toWrite = claim.jobs.filter { !inLog.contains($0.id) }
            rawToWrite = claim.raw.filter { !inLog.contains($0.id) }
            let written = toWrite.count + rawToWrite.count
            logger.debug(
                "archiver resumed a claimed batch",
                metadata: [
                    "conveyor.archiver.id": "\(writer.archiverId)", "conveyor.partition": "\(partition.index)",
                    "conveyor.archiver.already_in_log": "\(found - written)", "conveyor.archiver.writing": "\(written)",
                ]
            )
            onEvent?(.resumed(archiverId: writer.archiverId, partition: partition.index, alreadyInLog: found - written, written: written))
        }
        if let first = rawToWrite.first {
            // Not an error of the archiver: an older or foreign version wrote these.
            logger.info(
                "archiver: job hashes that do not parse are archived raw (every field as a string)",
                metadata: [
                    "conveyor.archiver.id": "\(writer.archiverId)", "conveyor.partition": "\(partition.index)",
                    "conveyor.archiver.raw_count": "\(rawToWrite.count)", "conveyor.job.id": "\(first.id)",
                    "conveyor.archiver.raw_reason": "\(first.reason)",
                ]
            )
        }
        var file: HistoryFile?
        if !toWrite.isEmpty || !rawToWrite.isEmpty {
            let now = clock.now
            let entries = toWrite.map { HistoryEntry(job: $0, archivedAt: now) } + rawToWrite.map { HistoryEntry(raw: $0, archivedAt: now) }
            file = try await io.runIfActive {
                let bytes: [UInt8]
                do {
                    bytes = try HistoryEntry.lines(entries)
                } catch {
                    throw ArchiveError(.invalidArgument, "a job could not be encoded as JSON: \(error)")
                }
                return try writer.append(bytes, now: now)
            }
        }
        try await store.delete(ids: claim.ids, partition: partition, archiverId: writer.archiverId)
        // Counted when deleted (once per job), so a batch resumed after a crash counts its jobs once.
        metrics.increment(.archived, types: claim.jobs.lazy.map(\.type))
        if let file {
            logger.trace(
                "archived jobs",
                metadata: [
                    "conveyor.archiver.id": "\(writer.archiverId)", "conveyor.archiver.count": "\(toWrite.count + rawToWrite.count)",
                    "conveyor.archiver.file": "\(file.name)",
                ]
            )
            onEvent?(
                .archived(archiverId: writer.archiverId, partition: partition.index, jobIds: toWrite.map(\.id) + rawToWrite.map(\.id), file: file.name)
            )
            let rotated = lastFile.withLock { last in
                defer { last = file.name }
                return last != nil && last != file.name
            }
            if rotated { maintenanceWakeup.signal() }
        }
    }
}
