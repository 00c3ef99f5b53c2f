import ConveyorRedis
import Foundation

/// Reading and cancelling: thin forwards to ``JobInspector`` and the `cancelJob` script.
extension JobScheduler {
    // MARK: Reading

    /// Reads jobs and counts (the same as ``JobInspector``'s, which code that
    /// only reads should use).
    public var inspector: JobInspector { JobInspector(client: client, keys: configuration.keys, layoutGate: layoutGate) }

    /// The job with this id, or `nil` if there is none; see ``JobInspector/job(id:)``.
    public func job(id: Int) async throws(ConveyorError) -> WorkerJob? {
        try await inspector.job(id: id)
    }

    /// The jobs with these ids that exist, in the order given; see ``JobInspector/jobs(ids:)``.
    public func jobs(ids: [Int]) async throws(ConveyorError) -> [WorkerJob] {
        try await inspector.jobs(ids: ids)
    }

    /// Jobs by state, type and user; see ``JobInspector/jobs(state:type:userId:limit:scanLimit:)``.
    public func jobs(
        state: WorkerJob.State? = nil, type: String? = nil, userId: Int? = nil, limit: Int = 100, scanLimit: Int = 10_000
    ) async throws(ConveyorError) -> [WorkerJob] {
        try await inspector.jobs(state: state, type: type, userId: userId, limit: limit, scanLimit: scanLimit)
    }

    /// The number of jobs in each state; see ``JobInspector/counts()``.
    public func counts() async throws(ConveyorError) -> [WorkerJob.State: Int] {
        try await inspector.counts()
    }

    /// Parked jobs by type; see ``JobInspector/parkedCounts()``.
    public func parkedCounts() async throws(ConveyorError) -> [String: Int] {
        try await inspector.parkedCounts()
    }

    // MARK: Cancelling

    /// Cancels a pending (not started) job: it is finished with `success =
    /// false` and a result naming the reason, then archived as usual.
    public func cancelJob(id: Int, reason: String = "cancelled by request") async throws(ConveyorError) -> CancelOutcome {
        guard id > 0 else { return .notFound }
        try await inspector.checkLayout()
        let partition = configuration.keys.partition(ofJob: id)
        let reply: RESPValue
        do {
            let scriptNow: any RESPArgument = configuration.testClock.map { $0().milliseconds } ?? ""
            reply = try await client.eval(ScriptSignature.cancelJob.call(partition, [scriptNow, id, reason]))
        } catch {
            throw ConveyorError(error)
        }
        switch try ScriptOutcome(reply: reply) {
        case .cancelled: return .cancelled
        case .notFound: return .notFound
        case .alreadyRunning: return .alreadyRunning
        case .alreadyFinished: return .alreadyFinished
        default: throw ConveyorError(.redis, "cancelJob returned \(reply)")
        }
    }
}
