import Foundation

/// The worker-side script calls: claim, complete, renew, recover.
/// Arguments follow the script headers in `lua/`.
struct JobStore: Sendable {
    let client: RedisClient
    let keys: ConveyorKeys
    let staleAfterMs: Int

    /// Claims up to `maxCount` due jobs of one partition.
    func claim(partition: ConveyorKeys.Partition, now: Int, workerId: String, maxCount: Int, leaseMs: Int)
        async throws(ConveyorError) -> (jobs: [WorkerJob], nextDue: Int?)
    {
        let reply = try await eval(
            LuaScripts.claimJobs,
            keys: [partition.jobPrefix, partition.due, partition.pending, partition.running, partition.leases, partition.wake],
            arguments: [now, workerId, maxCount, leaseMs]
        )
        guard let items = reply.array, let nextDue = items.first?.int, items.count % 2 == 1 else {
            throw ConveyorError(.redis, "claimJobs returned \(reply)")
        }
        let started = Date(milliseconds: now)
        var jobs: [WorkerJob] = []
        jobs.reserveCapacity(items.count / 2)
        for index in stride(from: 1, to: items.count, by: 2) {
            guard let id = items[index].int, let fields = items[index + 1].array else {
                throw ConveyorError(.redis, "claimJobs returned the entry \(items[index]), \(items[index + 1])")
            }
            // The script sets st and w as the claim; the reply is the hash before it.
            guard var job = WorkerJob(id: id, hashFields: fields) else { continue }
            job.started = started
            job.workerId = workerId
            jobs.append(job)
        }
        return (jobs, nextDue < 0 ? nil : nextDue)
    }

    /// One finished job as the worker reports it.
    struct Completion: Sendable {
        var id: Int
        var success: Bool
        var resultJSON: String?
        var cronNextDue: Int?
    }

    /// Completes jobs of one partition; returns per job whether it was
    /// written (`false`: the lease was lost, nothing written) and the follow-up id.
    func complete(_ completions: [Completion], partition: ConveyorKeys.Partition, now: Int, workerId: String)
        async throws(ConveyorError) -> [(written: Bool, followUp: Int?)]
    {
        var arguments: [any RESPArgument] = [now, staleAfterMs, keys.partitionCount, partition.index, workerId, completions.count]
        for completion in completions {
            arguments += [
                completion.id, completion.success ? 1 : 0, completion.resultJSON ?? "",
                completion.cronNextDue.map(String.init) ?? "",
            ]
        }
        let reply = try await eval(LuaScripts.completeJobs, keys: partition.all, arguments: arguments)
        guard let items = reply.array, items.count == 2 * completions.count else {
            throw ConveyorError(.redis, "completeJobs returned \(reply)")
        }
        return try stride(from: 0, to: items.count, by: 2).map { index throws(ConveyorError) in
            let outcome = try ScriptOutcome(reply: items[index])
            let followUp = items[index + 1].int.flatMap { $0 > 0 ? $0 : nil }
            return (outcome == .completed, followUp)
        }
    }

    /// Renews the leases of jobs this worker holds; returns the ids it lost.
    func renew(ids: [Int], partition: ConveyorKeys.Partition, now: Int, workerId: String, leaseMs: Int)
        async throws(ConveyorError) -> [Int]
    {
        let reply = try await eval(
            LuaScripts.renewLeases,
            keys: [partition.jobPrefix, partition.running, partition.leases],
            arguments: [now, workerId, leaseMs] + ids.map { $0 as any RESPArgument }
        )
        return reply.array?.compactMap(\.int) ?? []
    }

    /// Fails jobs of one partition whose lease expired (their worker died),
    /// scheduling retries and next cron runs. Returns how many were recovered.
    ///
    /// With `lockOwner`, the pass runs only if this caller wins a short lock,
    /// so many workers do not all scan at once; correctness does not depend on
    /// it, since `recoverJobs` re-checks every candidate.
    func recoverExpired(
        partition: ConveyorKeys.Partition, now: Int, limit: Int = 100, lockOwner: String? = nil, lockMs: Int = 1_000
    ) async throws(ConveyorError) -> Int {
        let candidates: [Int]
        do {
            if let lockOwner {
                let acquired = try await client.send("SET", partition.recoveryLock, lockOwner, "NX", "PX", lockMs)
                guard acquired == .simpleString("OK") else { return 0 }
            }
            candidates = try await client.send("ZRANGEBYSCORE", partition.leases, "-inf", now, "LIMIT", 0, limit).array?.compactMap(\.int) ?? []
        } catch {
            throw ConveyorError(error)
        }
        guard !candidates.isEmpty else { return 0 }
        // The next cron run is computed here (the scripts have no cron parser);
        // the script re-checks every candidate, so a stale read is harmless.
        let jobs = try await JobScheduler(client: client, configuration: .init(keys: keys)).jobs(ids: candidates)
        var arguments: [any RESPArgument] = [now, staleAfterMs, keys.partitionCount, partition.index, jobs.count]
        for job in jobs {
            arguments += [job.id, job.nextCronDue(after: Date(milliseconds: now)).map(String.init) ?? ""]
        }
        guard !jobs.isEmpty else { return 0 }
        let reply = try await eval(LuaScripts.recoverJobs, keys: partition.all, arguments: arguments)
        return (reply.array ?? []).filter { $0.array?.first?.int == ScriptOutcome.recovered.rawValue }.count
    }

    private func eval(_ script: RedisScript, keys: [String], arguments: [any RESPArgument]) async throws(ConveyorError) -> RESPValue {
        do {
            return try await client.eval(RedisScriptCall(script, keys: keys, arguments: arguments))
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
