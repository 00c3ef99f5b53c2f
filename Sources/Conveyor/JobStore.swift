import ConveyorRedis
import Foundation

/// The worker-side script calls: claim, complete, renew, recover.
/// Arguments follow the script headers in `lua/`.
struct JobStore: Sendable {
    let client: RedisClient
    let keys: ConveyorKeys
    let staleAfterMs: Int
    /// How long failed jobs stay in Redis, and how many per partition (`includes/keepFailed.lua`).
    var failedRetention = FailedRetention()

    struct FailedRetention: Sendable {
        var ms = 7 * 86_400_000
        var max = 10_000
    }

    /// Most jobs one script call claims, completes, renews or releases: the
    /// scripts reject larger batches before writing anything.
    static let maxBatch = 1000

    /// Claims up to `maxCount` (at most ``maxBatch``) due jobs of one partition.
    ///
    /// Idempotent per `token`: sent again with the same token (its reply was
    /// lost), it returns the jobs the first call claimed that this worker
    /// still holds, and claims nothing new. `acknowledged` names earlier
    /// tokens whose replies arrived (at most 100): Redis forgets them.
    /// - Parameter now: ms; `nil` (production) uses Redis's clock. Tests pass one.
    /// - Returns: The claimed jobs, the earliest due time left, and the claim's
    ///   time by the clock the script used.
    func claim(
        partition: ConveyorKeys.Partition, now: Int?, workerId: String, maxCount: Int, leaseMs: Int, token: String = "",
        acknowledged: [String] = []
    ) async throws(ConveyorError) -> (jobs: [WorkerJob], nextDue: Int?, now: Int) {
        let token = token.isEmpty ? UUID().uuidString : token
        var arguments: [any RESPArgument] = [Self.argument(now), workerId, min(maxCount, Self.maxBatch), leaseMs, token]
        arguments += acknowledged.prefix(100).map { $0 as any RESPArgument }
        let reply = try await eval(ScriptSignature.claimJobs.call(partition, arguments, workerId: workerId))
        guard let items = reply.array, items.count >= 2, let nextDue = items[0].int, let claimedAt = items[1].int,
            items.count % 2 == 0
        else {
            throw ConveyorError(.redis, "claimJobs returned \(reply)")
        }
        let started = Date(milliseconds: claimedAt)
        var jobs: [WorkerJob] = []
        jobs.reserveCapacity(items.count / 2 - 1)
        for index in stride(from: 2, to: items.count, by: 2) {
            guard let id = items[index].int, let fields = items[index + 1].array else {
                throw ConveyorError(.redis, "claimJobs returned the entry \(items[index]), \(items[index + 1])")
            }
            // A first claim returns the hash before it (no st, w); a replay the hash as stored.
            guard var job = WorkerJob(id: id, hashFields: fields) else { continue }
            if job.started == nil { job.started = started }
            job.workerId = workerId
            jobs.append(job)
        }
        return (jobs, nextDue < 0 ? nil : nextDue, claimedAt)
    }

    /// `now` as a script argument: `""` asks the script for Redis's clock.
    static func argument(_ now: Int?) -> any RESPArgument {
        now.map { $0 as any RESPArgument } ?? ""
    }

    /// One finished job as the worker reports it.
    struct Completion: Sendable {
        var id: Int
        var status: Status
        /// The result or error JSON; for ``Status/interrupted``, the reason.
        var resultJSON: String?
        var cronNextDue: Int?

        var success: Bool { status == .succeeded }

        init(id: Int, status: Status, resultJSON: String?, cronNextDue: Int?) {
            self.id = id
            self.status = status
            self.resultJSON = resultJSON
            self.cronNextDue = cronNextDue
        }

        /// A run that ended by itself, succeeded or failed.
        init(id: Int, success: Bool, resultJSON: String?, cronNextDue: Int?) {
            self.init(id: id, status: success ? .succeeded : .failed, resultJSON: resultJSON, cronNextDue: cronNextDue)
        }

        /// How the run ended, as `completeJobs` takes it.
        enum Status: String, Sendable {
            case succeeded = "1"
            case failed = "0"
            /// Stopped by shutdown before it ended: re-run (lua/README.md).
            case interrupted = "i"
        }
    }

    /// Completes jobs of one partition; returns per job whether it was
    /// written (`false`: the lease was lost, nothing written) and the follow-up id.
    /// At most ``maxBatch`` completions per call.
    func complete(
        _ completions: [Completion], partition: ConveyorKeys.Partition, now: Int?, workerId: String, maxInterruptions: Int = 3
    ) async throws(ConveyorError) -> [(written: Bool, followUp: Int?)] {
        var arguments: [any RESPArgument] = [
            Self.argument(now), staleAfterMs, keys.partitionCount, partition.index, workerId, maxInterruptions,
            failedRetention.ms, failedRetention.max, completions.count,
        ]
        for completion in completions {
            arguments += [
                completion.id, completion.status.rawValue, completion.resultJSON ?? "",
                completion.cronNextDue.map(String.init) ?? "",
            ]
        }
        let reply = try await eval(ScriptSignature.completeJobs.call(partition, arguments))
        guard let items = reply.array, items.count == 2 * completions.count else {
            throw ConveyorError(.redis, "completeJobs returned \(reply)")
        }
        return try stride(from: 0, to: items.count, by: 2).map { index throws(ConveyorError) in
            let outcome = try ScriptOutcome(reply: items[index])
            let followUp = items[index + 1].int.flatMap { $0 > 0 ? $0 : nil }
            return (outcome == .completed, followUp)
        }
    }

    /// Renews the leases of jobs this worker holds (at most ``maxBatch``);
    /// returns the ids it lost.
    func renew(ids: [Int], partition: ConveyorKeys.Partition, now: Int?, workerId: String, leaseMs: Int, timeout: Duration? = nil)
        async throws(ConveyorError) -> [Int]
    {
        let reply = try await eval(
            ScriptSignature.renewLeases.call(partition, [Self.argument(now), workerId, leaseMs] + ids.map { $0 as any RESPArgument }),
            timeout: timeout
        )
        return reply.array?.compactMap(\.int) ?? []
    }

    /// What `releaseJobs` did with one job.
    enum Release: Sendable, Equatable {
        /// Back in `due`, due again at this time (ms).
        case released(dueAt: Int)
        /// Cancelled: a newer pending job of its type and user replaced it.
        case superseded(by: Int)
        /// This worker did not hold it; nothing written.
        case notHeld
    }

    /// Gives jobs this worker holds back to `due`, not started, with a backoff
    /// (for types it does not know). At most ``maxBatch`` ids.
    func release(ids: [Int], partition: ConveyorKeys.Partition, now: Int?, workerId: String)
        async throws(ConveyorError) -> [Release]
    {
        let reply = try await eval(ScriptSignature.releaseJobs.call(partition, [Self.argument(now), workerId] + ids.map { $0 as any RESPArgument }))
        guard let entries = reply.array, entries.count == ids.count else {
            throw ConveyorError(.redis, "releaseJobs returned \(reply)")
        }
        return try entries.map { entry throws(ConveyorError) in
            guard let pair = entry.array, pair.count == 2, let value = pair[1].int else {
                throw ConveyorError(.redis, "releaseJobs returned the entry \(entry)")
            }
            switch try ScriptOutcome(reply: pair[0]) {
            case .released: return .released(dueAt: value)
            case .superseded: return .superseded(by: value)
            default: return .notHeld
            }
        }
    }

    /// Fails jobs of one partition whose lease expired (their worker died),
    /// scheduling retries and next cron runs. Returns how many were recovered.
    ///
    /// With `lockOwner`, the pass runs only if this caller wins a short lock,
    /// so many workers do not all scan at once; correctness does not depend on
    /// it, since `recoverJobs` re-checks every candidate.
    ///
    /// A job is recovered only when its lease is still expired `graceMs` after
    /// a pass first saw it expired (`recoverJobs`): live workers renew first.
    /// - Parameter now: ms; `nil` (production) uses Redis's clock for the
    ///   decision. The candidates are read with `estimatedNow`, which the
    ///   script checks again.
    func recoverExpired(
        partition: ConveyorKeys.Partition, now: Int?, estimatedNow: Int, graceMs: Int, maxInterruptions: Int = 3,
        limit: Int = 100, lockOwner: String? = nil, lockMs: Int = 1_000
    ) async throws(ConveyorError) -> Int {
        try await recoveryPass(
            partition: partition, now: now, estimatedNow: estimatedNow, graceMs: graceMs, maxInterruptions: maxInterruptions,
            limit: limit, lockOwner: lockOwner, lockMs: lockMs
        ).recovered
    }

    /// What one recovery pass did.
    struct RecoveryPass: Sendable, Equatable {
        /// Jobs recovered (finished as lost, and re-run unless given up).
        var recovered = 0
        /// Candidates whose hash does not parse (an older or foreign version
        /// wrote it): handed to `recoverJobs` all the same, which finishes them
        /// as lost; the archiver then archives them raw.
        var unparseable: [Int] = []
        /// The type of each recovered job that parsed, for the `recovered` metric.
        var recoveredTypes: [String] = []
    }

    /// ``recoverExpired(partition:now:estimatedNow:graceMs:maxInterruptions:limit:lockOwner:lockMs:)``,
    /// saying also which candidates did not parse.
    ///
    /// Pages through up to `maxPages` pages of `limit` expired leases, so a
    /// worker that died holding many jobs has them all marked by one pass and
    /// recovered by the next one after the grace period: one page per pass
    /// recovered only `limit` jobs per grace period.
    func recoveryPass(
        partition: ConveyorKeys.Partition, now: Int?, estimatedNow: Int, graceMs: Int, maxInterruptions: Int = 3,
        limit: Int = 100, maxPages: Int = 10, lockOwner: String? = nil, lockMs: Int = 1_000
    ) async throws(ConveyorError) -> RecoveryPass {
        if let lockOwner {
            let acquired: RESPValue
            do {
                acquired = try await client.send(RedisCommand("SET", key: partition.recoveryLock, lockOwner, "NX", "PX", lockMs))
            } catch {
                throw ConveyorError(error)
            }
            guard acquired == .simpleString("OK") else { return RecoveryPass() }
        }
        var pass = RecoveryPass()
        var offset = 0
        for _ in 0..<max(1, maxPages) {
            let (page, candidates) = try await recoverPage(
                partition: partition, now: now, estimatedNow: estimatedNow, graceMs: graceMs, maxInterruptions: maxInterruptions,
                offset: offset, limit: limit
            )
            pass.recovered += page.recovered
            pass.unparseable += page.unparseable
            pass.recoveredTypes += page.recoveredTypes
            guard candidates == limit else { break }
            // Recovered jobs left `leases`; the ones only marked stay ahead of the next page.
            offset += candidates - page.recovered
        }
        return pass
    }

    /// One page of a recovery pass: the expired leases from `offset` on, and
    /// how many candidates the page read.
    private func recoverPage(
        partition: ConveyorKeys.Partition, now: Int?, estimatedNow: Int, graceMs: Int, maxInterruptions: Int, offset: Int, limit: Int
    ) async throws(ConveyorError) -> (RecoveryPass, candidates: Int) {
        let candidates: [Int]
        do {
            // A candidate read a little early or late is harmless: the script decides.
            candidates = try await client.send(RedisCommand("ZRANGEBYSCORE", key: partition.leases, "-inf", now ?? estimatedNow, "LIMIT", offset, limit))
                .array?.compactMap(\.int) ?? []
        } catch {
            throw ConveyorError(error)
        }
        guard !candidates.isEmpty else { return (RecoveryPass(), 0) }
        // The next cron run is computed here (the scripts have no cron parser);
        // the script re-checks every candidate, so a stale read is harmless.
        let reply = try await eval(ScriptSignature.getJobs.call(partition, candidates))
        var pass = RecoveryPass()
        var arguments: [any RESPArgument] = []
        var types: [String?] = []  // per candidate sent: its type when its hash parsed
        for entry in reply.array ?? [] {
            guard let items = entry.array, let id = items.first?.int else { continue }  // {}: gone meanwhile
            if let job = WorkerJob(id: id, hashFields: items.dropFirst()) {
                arguments += [id, job.nextCronDue(after: Date(milliseconds: now ?? estimatedNow)).map(String.init) ?? ""]
                types.append(job.type)
                continue
            }
            // A hash that does not parse is recovered all the same (no cron
            // run: its expression cannot be trusted), so it leaves `running`
            // and reaches the archiver, which keeps it raw. Without the pair
            // (`t`, `u`) the script finishes it as unreadable (no re-run).
            pass.unparseable.append(id)
            arguments += [id, ""]
            types.append(nil)
        }
        guard !arguments.isEmpty else { return (pass, candidates.count) }
        let header: [any RESPArgument] = [
            Self.argument(now), staleAfterMs, keys.partitionCount, partition.index, graceMs, maxInterruptions,
            failedRetention.ms, failedRetention.max, arguments.count / 2,
        ]
        let result = try await eval(ScriptSignature.recoverJobs.call(partition, header + arguments))
        // One {outcome, newJobId} per candidate, in the order sent.
        for (type, entry) in zip(types, result.array ?? []) where entry.array?.first?.int == ScriptOutcome.recovered.rawValue {
            pass.recovered += 1
            if let type { pass.recoveredTypes.append(type) }
        }
        return (pass, candidates.count)
    }

    private func eval(_ call: RedisScriptCall, timeout: Duration? = nil) async throws(ConveyorError) -> RESPValue {
        do {
            return try await client.eval(call, timeout: timeout)
        } catch {
            throw ConveyorError(error)
        }
    }
}

extension WorkerJob {
    /// The next cron occurrence after this run, in ms: after the later of its
    /// due time and `now`, so a late run does not trigger a burst of catch-up runs.
    func nextCronDue(after now: Date) -> Int? {
        guard let cronSchedule,
            let schedule = try? CronSchedule(cronSchedule, timeZoneIdentifier: cronTimeZone ?? "UTC")
        else { return nil }
        return schedule.next(after: max(due, now))?.milliseconds
    }
}
