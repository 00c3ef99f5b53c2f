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
