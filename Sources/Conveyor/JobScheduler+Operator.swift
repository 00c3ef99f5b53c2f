import ConveyorRedis
import Foundation

/// Operator actions (the dashboard's): run a failed job again, delete a finished one.
extension JobScheduler {
    /// Runs a failed job again now: schedules a new job with the same type,
    /// user, data and retry (attempt limit, backoff) and removal settings, due now, with
    /// `rescheduledFromJob` = `id` and `attempt` + 1, so `history --chain`
    /// and the dashboard show it in the job's chain.
    ///
    /// The new job is a one-off: a failed cron run's chain goes on through
    /// its own next run, which the worker scheduled when the run failed. A
    /// rerun is refused while a job of the same type and user is pending,
    /// because scheduling it would replace that job (the replace rule) — for a
    /// cron job, its next run.
    /// - Parameter id: A finished, failed job still in Redis.
    /// - Returns: The new job.
    /// - Throws: ``ConveyorError`` `jobNotFound` (no such job in Redis),
    ///   `invalidState` (not finished, succeeded, or its pair has a pending job), or `redis`.
    @discardableResult
    public func rerunJob(id: Int) async throws(ConveyorError) -> WorkerJob {
        guard let job = try await job(id: id) else {
            throw ConveyorError(.jobNotFound, "no job \(id) in Redis (it never existed, or it was archived)")
        }
        return try await rerun(job)
    }

    /// Runs `job` (read from Redis or the history log) again now; see ``rerunJob(id:)``.
    @discardableResult
    public func rerun(_ job: WorkerJob) async throws(ConveyorError) -> WorkerJob {
        guard job.state == .finished, job.success == false else {
            let what = job.state == .finished ? "succeeded" : "is \(job.state.rawValue)"
            throw ConveyorError(.invalidState, "job \(job.id) \(what); only failed (or cancelled) jobs are run again")
        }
        try await inspector.checkLayout()
        let partition = configuration.keys.partition(type: job.type, userId: job.userId)
        let pending: RESPValue
        do {
            pending = try await client.send(RedisCommand("HGET", key: partition.pending, "\(job.type):\(job.userId)"))
        } catch {
            throw ConveyorError(error)
        }
        if let other = pending.int {
            throw ConveyorError(
                .invalidState,
                "job \(other) of the same type and user is pending; running job \(job.id) again would replace it"
            )
        }
        let spec = JobSpec(
            type: job.type, userId: job.userId, dataJSON: job.dataJSON, due: nil, cron: nil,
            autoRescheduleOnFailure: job.autoRescheduleOnFailure, autoRescheduleOnFailureDelay: job.autoRescheduleOnFailureDelay,
            maxAttempts: job.autoRescheduleOnFailureMaxAttempts, backoff: job.autoRescheduleOnFailureBackoff,
            removeDelay: job.removeDelay, rescheduledFromJob: job.id, attempt: job.attempt + 1
        )
        return try await schedule([spec])[0]
    }

    /// Deletes a finished job from Redis before the archiver takes it: it
    /// will not appear in the history log. Pending and running jobs, and jobs
    /// an archiver is writing, are left alone (one atomic script,
    /// `lua/deleteFinishedJob-5.lua`).
    /// - Throws: ``ConveyorError`` (`redis`).
    public func deleteFinishedJob(id: Int) async throws(ConveyorError) -> DeleteOutcome {
        guard id > 0 else { return .notFound }
        try await inspector.checkLayout()
        let partition = configuration.keys.partition(ofJob: id)
        let reply: RESPValue
        do {
            reply = try await client.eval(ScriptSignature.deleteFinishedJob.call(partition, [id]))
        } catch {
            throw ConveyorError(error)
        }
        switch try ScriptOutcome(reply: reply) {
        case .deleted: return .deleted
        case .notFound: return .notFound
        case .notFinished: return .notFinished
        case .beingArchived: return .beingArchived
        default: throw ConveyorError(.redis, "deleteFinishedJob returned \(reply)")
        }
    }
}
