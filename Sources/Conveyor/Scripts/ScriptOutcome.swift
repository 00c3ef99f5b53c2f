/// The domain outcomes the Lua scripts return, one-to-one with the table in
/// `lua/README.md`. Mapped from integers here and nowhere else.
enum ScriptOutcome: Int, Sendable, CaseIterable {
    case completed = 1
    case leaseLost = 2
    case cancelled = 3
    case notFound = 4
    case alreadyRunning = 5
    case alreadyFinished = 6
    case recovered = 7
    case notExpired = 8
    case notRunning = 9
    case inGrace = 10
    case released = 11
    case superseded = 12
    // 20...: the operator's scripts (deleteFinishedJob); 13...19 left to the worker's.
    case deleted = 20
    case notFinished = 21
    case beingArchived = 22

    init(reply: RESPValue) throws(ConveyorError) {
        guard let code = reply.int, let outcome = ScriptOutcome(rawValue: code) else {
            throw ConveyorError(.redis, "unexpected script outcome \(reply)")
        }
        self = outcome
    }
}

/// What ``JobScheduler/cancelJob(id:reason:)`` did.
public enum CancelOutcome: Sendable, Hashable {
    /// The pending job was cancelled.
    case cancelled
    /// No job has that id (never existed, or archived).
    case notFound
    /// The job has started; running jobs are not cancelled.
    case alreadyRunning
    /// The job had finished already.
    case alreadyFinished
}

/// What ``JobScheduler/deleteFinishedJob(id:)`` did.
public enum DeleteOutcome: Sendable, Hashable {
    /// The finished job was deleted from Redis; it will not be archived.
    case deleted
    /// No job has that id (never existed, or archived).
    case notFound
    /// The job is pending or running; only finished jobs are deleted.
    case notFinished
    /// An archiver is writing the job to the history log right now.
    case beingArchived
}
