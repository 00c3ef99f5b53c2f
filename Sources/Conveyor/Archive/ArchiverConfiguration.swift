import CoreMetrics
import Foundation

/// Settings of an ``Archiver``.
public struct ArchiverConfiguration: Sendable {
    /// The history directory (created if missing). Several archivers may share
    /// it; each writes only its own files.
    public var historyDirectory: String
    /// Key layout; all processes must agree.
    public var keys: ConveyorKeys
    /// The archiver's identity; `nil` (the default) takes an identity of the
    /// directory that no running archiver holds, or creates one. Letters,
    /// digits, `.`, `_` and `-`, at most 64.
    public var archiverId: String?
    /// Longest time between two passes (default 1 s). The archiver wakes
    /// earlier when the earliest finished job's removeAt comes first.
    public var passInterval: Duration
    /// Shortest time from the start of a pass that found less than a full
    /// batch to the next pass (default 20 ms): under a steady stream of
    /// finishing jobs, they are archived in batches of many instead of one
    /// small batch per wake-up, at the cost of archiving up to this much later.
    /// Never more than ``passInterval``.
    public var minPassInterval: Duration
    /// Jobs claimed, written and deleted per batch (1...1000, default 500).
    public var batchSize: Int
    /// A file is rotated before it would grow past this many bytes (default 128 MiB);
    /// files are also rotated at each UTC midnight.
    public var maxFileSize: Int
    /// Compress rotated files with gzip (default `true`). Readers read plain
    /// and compressed files alike; either way a rotated file gets an index.
    public var compressRotatedFiles: Bool
    /// Delete history files whose last record is older than this many days
    /// (default `nil`: keep them). Never the files an archiver writes or may
    /// have to reconcile (its newest files holding its last 2 000 records).
    public var retainDays: Int?
    /// Delete the oldest history files while the directory's history files and
    /// indexes take more than this many bytes (default `nil`: no bound), with
    /// the same exceptions as ``retainDays``.
    public var retainBytes: Int?
    /// Longest time between two maintenance rounds (compression, retention,
    /// free space); a rotation starts one at once (default 30 s).
    public var maintenanceInterval: Duration
    /// Warn (log at `.warning`) when the directory's file system has less free
    /// space than this (default `nil`: four times ``maxFileSize``).
    public var lowDiskSpaceBytes: Int?
    /// First wait after a failure (unwritable directory, full disk, Redis down).
    public var retryInitialDelay: Duration
    /// Longest wait between retries; the wait doubles up to it.
    public var retryMaxDelay: Duration
    /// Tests only: a clock that replaces Redis's. `nil` (the default) lets
    /// `claimArchiveBatch` take "now" from Redis (`TIME`), so archivers whose
    /// clocks differ agree with the workers on when a job is due for archiving;
    /// the archiver's own waits, `archivedAt` and file names use Redis's time
    /// as the replies report it.
    var testClock: (@Sendable () -> Date)?
    /// Tests only: this host's clock (default `Date()`), to run an archiver
    /// whose clock is wrong.
    var testHostClock: (@Sendable () -> Date)?
    /// Where `conveyor_jobs_archived_total` goes; `nil` (the default) uses the
    /// bootstrapped `MetricsSystem.factory`.
    public var metricsFactory: (any MetricsFactory)?

    /// Creates a configuration with defaults.
    public init(
        historyDirectory: String,
        keys: ConveyorKeys = try! ConveyorKeys(),
        archiverId: String? = nil,
        passInterval: Duration = .seconds(1),
        minPassInterval: Duration = .milliseconds(20),
        batchSize: Int = 500,
        maxFileSize: Int = 128 << 20,
        compressRotatedFiles: Bool = true,
        retainDays: Int? = nil,
        retainBytes: Int? = nil,
        maintenanceInterval: Duration = .seconds(30),
        retryInitialDelay: Duration = .milliseconds(500),
        retryMaxDelay: Duration = .seconds(30),
        metricsFactory: (any MetricsFactory)? = nil
    ) {
        self.historyDirectory = historyDirectory
        self.keys = keys
        self.archiverId = archiverId
        self.passInterval = passInterval
        self.minPassInterval = minPassInterval
        self.batchSize = batchSize
        self.maxFileSize = maxFileSize
        self.compressRotatedFiles = compressRotatedFiles
        self.retainDays = retainDays
        self.retainBytes = retainBytes
        self.maintenanceInterval = maintenanceInterval
        self.lowDiskSpaceBytes = nil
        self.retryInitialDelay = retryInitialDelay
        self.retryMaxDelay = retryMaxDelay
        self.metricsFactory = metricsFactory
    }

    /// Checks the settings.
    /// - Throws: ``ArchiveError`` with code `invalidArgument`.
    public func validate() throws(ArchiveError) {
        guard !historyDirectory.isEmpty else { throw ArchiveError(.invalidArgument, "the history directory must not be empty") }
        if let archiverId, !Self.isValidArchiverId(archiverId) {
            throw ArchiveError(.invalidArgument, "archiver id \"\(archiverId)\" must be 1–64 letters, digits, '.', '_' or '-'")
        }
        guard (1...1000).contains(batchSize) else {
            throw ArchiveError(.invalidArgument, "batchSize must be between 1 and 1000, got \(batchSize)")
        }
        guard maxFileSize >= 1 else { throw ArchiveError(.invalidArgument, "maxFileSize must be positive, got \(maxFileSize)") }
        guard passInterval > .zero, retryInitialDelay > .zero, retryMaxDelay >= retryInitialDelay else {
            throw ArchiveError(.invalidArgument, "passInterval and the retry delays must be positive (retryMaxDelay ≥ retryInitialDelay)")
        }
        if let retainDays, retainDays < 1 { throw ArchiveError(.invalidArgument, "retainDays must be at least 1, got \(retainDays)") }
        if let retainBytes, retainBytes < 1 { throw ArchiveError(.invalidArgument, "retainBytes must be positive, got \(retainBytes)") }
        guard maintenanceInterval > .zero else { throw ArchiveError(.invalidArgument, "maintenanceInterval must be positive") }
        guard minPassInterval >= .zero else {
            throw ArchiveError(.invalidArgument, "minPassInterval must not be negative, got \(minPassInterval)")
        }
    }

    static func isValidArchiverId(_ id: String) -> Bool {
        !id.isEmpty && id.utf8.count <= 64
            && id.utf8.allSatisfy { byte in
                (UInt8(ascii: "a")...UInt8(ascii: "z")).contains(byte) || (UInt8(ascii: "A")...UInt8(ascii: "Z")).contains(byte)
                    || (UInt8(ascii: "0")...UInt8(ascii: "9")).contains(byte) || byte == UInt8(ascii: ".") || byte == UInt8(ascii: "_")
                    || byte == UInt8(ascii: "-")
            }
            && id != "." && id != ".."
    }
}

/// What an ``Archiver`` did, for observers (logs, tests, the CLI).
public enum ArchiverEvent: Sendable, Hashable {
    /// The archiver took its identity and repaired its newest file
    /// (`repairedBytes` of a torn last line removed).
    case started(archiverId: String, directory: String, repairedBytes: Int)
    /// Jobs were written, synced and then deleted from Redis.
    case archived(archiverId: String, partition: Int, jobIds: [Int], file: String)
    /// A claimed batch was found again (after a crash or a failed write) and
    /// reconciled with the tail of the log: `alreadyInLog` jobs were only
    /// deleted, `written` were written first.
    case resumed(archiverId: String, partition: Int, alreadyInLog: Int, written: Int)
    /// A pass failed; nothing more is claimed until a retry succeeds.
    case failed(message: String, diskFull: Bool)
    /// A pass succeeded after failures.
    case recovered
    /// A maintenance round ran: rotated files compressed, old files deleted,
    /// free space and backlog measured.
    case maintained(HistoryMaintenanceReport)
}
