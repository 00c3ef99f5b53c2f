import Logging

/// The log handler of a running job: its `conveyor.job.id`, `conveyor.job.type`
/// and `conveyor.user.id` metadata are added when a message is logged, not
/// when the job starts.
///
/// Why: setting metadata on a handler such as `StreamLogHandler` re-renders
/// all of its metadata at once, which cost a noticeable share of a worker's
/// CPU per job although most jobs log nothing.
struct JobLogHandler: LogHandler {
    private var base: any LogHandler
    private let jobId: Int
    private let jobType: String
    private let userId: Int
    /// The metadata once the job changed it; until then, the base handler's
    /// plus the job's.
    private var changedMetadata: Logger.Metadata?

    init(base: any LogHandler, job: WorkerJob) {
        self.base = base
        self.jobId = job.id
        self.jobType = job.type
        self.userId = job.userId
    }

    private var jobMetadata: Logger.Metadata {
        ["conveyor.job.id": .stringConvertible(jobId), "conveyor.job.type": .string(jobType), "conveyor.user.id": .stringConvertible(userId)]
    }

    var metadata: Logger.Metadata {
        get { changedMetadata ?? base.metadata.merging(jobMetadata) { $1 } }
        set { changedMetadata = newValue }
    }

    subscript(metadataKey key: String) -> Logger.Metadata.Value? {
        get { metadata[key] }
        set { metadata[key] = newValue }
    }

    var logLevel: Logger.Level {
        get { base.logLevel }
        set { base.logLevel = newValue }
    }

    var metadataProvider: Logger.MetadataProvider? {
        get { base.metadataProvider }
        set { base.metadataProvider = newValue }
    }

    func log(event: LogEvent) {
        var event = event
        if let changedMetadata {
            // The base handler still adds its own metadata; the job's version wins.
            event.metadata = changedMetadata.merging(event.metadata ?? [:]) { $1 }
        } else {
            event.metadata = jobMetadata.merging(event.metadata ?? [:]) { $1 }
        }
        base.log(event: event)
    }
}
