import ConveyorRedis
import Foundation

/// Reads jobs and counts from Redis: by id, by state, type and user, and the
/// number in each state. It writes nothing, so the worker, the archive and
/// tools read through it without building a ``JobScheduler``.
public struct JobInspector: Sendable {
    /// The Redis client.
    public let client: RedisClient
    /// Key layout (namespace and partitions).
    public let keys: ConveyorKeys
    /// Checks `keys` against the namespace's recorded layout once (shared with
    /// the scheduler an inspector comes from).
    let layoutGate: LayoutGate

    /// Creates an inspector. Its first read checks `keys` against the layout
    /// recorded in Redis and throws ``ConveyorError/Code/layoutMismatch`` when
    /// they differ (a namespace with no layout yet is not checked).
    public init(client: RedisClient, keys: ConveyorKeys) {
        self.init(client: client, keys: keys, layoutGate: LayoutGate())
    }

    init(client: RedisClient, keys: ConveyorKeys, layoutGate: LayoutGate) {
        self.client = client
        self.keys = keys
        self.layoutGate = layoutGate
    }

    /// Throws ``ConveyorError/Code/layoutMismatch`` when `keys` is not the
    /// namespace's recorded layout (one round trip, then cached).
    nonisolated(nonsending) func checkLayout() async throws(ConveyorError) {
        try await layoutGate.verifyForReading(keys, client: client)
    }

    /// The job with this id, or `nil` if there is none (never existed or archived).
    public func job(id: Int) async throws(ConveyorError) -> WorkerJob? {
        try await jobs(ids: [id]).first
    }

    /// The jobs with these ids that exist, in the order given.
    public func jobs(ids: [Int]) async throws(ConveyorError) -> [WorkerJob] {
        guard !ids.isEmpty else { return [] }
        try await checkLayout()
        var groups: [Int: [Int]] = [:]
        for id in ids where id > 0 { groups[id % keys.partitionCount, default: []].append(id) }
        let ordered = groups.sorted { $0.key < $1.key }
        let calls = ordered.map { partitionIndex, members in
            ScriptSignature.getJobs.call(keys.partition(partitionIndex), members)
        }
        let replies: [RESPValue]
        do {
            replies = try await client.evalPipelined(calls)
        } catch {
            throw ConveyorError(error)
        }
        var found: [Int: WorkerJob] = [:]
        for reply in replies {
            if case .error(let message) = reply { throw ConveyorError(.redis, "getJobs failed: \(message)") }
            for entry in reply.array ?? [] {
                if let job = WorkerJob(reply: entry) { found[job.id] = job }
            }
        }
        return ids.compactMap { found[$0] }
    }

    /// Jobs by state, optionally filtered by type and user, oldest first.
    ///
    /// Pending jobs come in due order, running in start order, finished in
    /// removal order. With both `type` and `userId`, pending jobs are found
    /// through the pair index at once; otherwise up to `scanLimit` entries
    /// per partition and state are examined.
    public func jobs(
        state: WorkerJob.State? = nil, type: String? = nil, userId: Int? = nil, limit: Int = 100, scanLimit: Int = 10_000
    ) async throws(ConveyorError) -> [WorkerJob] {
        try await checkLayout()
        let states = state.map { [$0] } ?? WorkerJob.State.allCases
        // Every index read of every partition in one pipelined round trip.
        var commands: [RedisCommand] = []
        for partition in keys.partitions {
            for state in states {
                if state == .pending, let type, let userId {
                    // The pair index names the one pending job, in the pair's partition.
                    guard keys.partition(type: type, userId: userId) == partition else { continue }
                    commands.append(RedisCommand("HGET", key: partition.pending, "\(type):\(userId)"))
                    continue
                }
                let key =
                    switch state {
                    case .pending: partition.due
                    case .running: partition.running
                    case .finished: partition.finished
                    }
                commands.append(RedisCommand("ZRANGE", key: key, 0, scanLimit - 1))
            }
        }
        var ids: [Int] = []
        do throws(RedisError) {
            for reply in try await client.pipeline(commands) {
                if case .error(let message) = reply { throw RedisError.server(message, command: "ZRANGE") }
                ids += reply.array?.compactMap(\.int) ?? reply.int.map { [$0] } ?? []
            }
        } catch {
            throw ConveyorError(error)
        }
        var result: [WorkerJob] = []
        for start in stride(from: 0, to: ids.count, by: 500) where result.count < limit {
            let batch = try await jobs(ids: Array(ids[start..<min(start + 500, ids.count)]))
            result += batch.filter { job in
                (type == nil || job.type == type) && (userId == nil || job.userId == userId)
            }
        }
        return Array(result.prefix(limit))
    }

    /// The number of jobs in each state, over all partitions.
    public func counts() async throws(ConveyorError) -> [WorkerJob.State: Int] {
        try await checkLayout()
        var commands: [RedisCommand] = []
        for partition in keys.partitions {
            commands += [
                RedisCommand("ZCARD", key: partition.due), RedisCommand("ZCARD", key: partition.running),
                RedisCommand("ZCARD", key: partition.finished),
            ]
        }
        let replies: [RESPValue]
        do {
            replies = try await client.pipeline(commands)
        } catch {
            throw ConveyorError(error)
        }
        var counts: [WorkerJob.State: Int] = [.pending: 0, .running: 0, .finished: 0]
        for (index, reply) in replies.enumerated() {
            let state: WorkerJob.State = [.pending, .running, .finished][index % 3]
            counts[state, default: 0] += reply.int ?? 0
        }
        return counts
    }

    /// Finished jobs waiting for an archiver, and whether one is running.
    public struct ArchiveBacklog: Sendable, Hashable {
        /// Finished jobs in Redis, whether their removeAt has passed or not.
        public var finished: Int
        /// Finished jobs whose removeAt has passed (by Redis's clock): due for
        /// archiving, claimed by an archiver or not.
        public var awaitingArchive: Int
        /// How long ago the earliest removeAt passed, in ms of Redis's clock;
        /// `nil` when no finished job is due for archiving.
        public var oldestOverdueMs: Int?
        /// The archiver that last finished a pass, if one did within the last
        /// minute (`<namespace>:archiver-alive`); `nil`: none is running, or
        /// none can work (each failing pass skips the mark).
        public var aliveArchiver: String?
    }

    /// Finished jobs waiting for an archiver, over all partitions, on Redis's
    /// clock: so `jobs counts` and the workers can tell an archiver that is
    /// missing from one that is only behind.
    /// - Parameter now: Tests only: the time to count from (ms); `nil` reads Redis's `TIME`.
    public func archiveBacklog(now: Int? = nil) async throws(ConveyorError) -> ArchiveBacklog {
        try await checkLayout()
        let nowMs: Int
        if let now { nowMs = now } else { nowMs = try await redisTime().milliseconds }
        let replies: [RESPValue]
        do throws(RedisError) {
            var commands = [RedisCommand("GET", key: keys.archiverAlive)]
            for partition in keys.partitions {
                commands += [
                    RedisCommand("ZCARD", key: partition.finished), RedisCommand("ZCOUNT", key: partition.finished, "-inf", nowMs),
                    RedisCommand("ZRANGE", key: partition.finished, 0, 0, "WITHSCORES"),
                ]
            }
            replies = try await client.pipeline(commands)
        } catch {
            throw ConveyorError(error)
        }
        if let failed = replies.first(where: { if case .error = $0 { true } else { false } }) {
            throw ConveyorError(.redis, "reading the archive backlog failed: \(failed)")
        }
        var backlog = ArchiveBacklog(finished: 0, awaitingArchive: 0, oldestOverdueMs: nil, aliveArchiver: replies[0].string)
        for index in stride(from: 1, to: replies.count, by: 3) {
            backlog.finished += replies[index].int ?? 0
            backlog.awaitingArchive += replies[index + 1].int ?? 0
            // Scores are whole ms (the scripts write them with toIntString).
            let head = replies[index + 2].array ?? []
            if head.count == 2, let removeAt = head[1].int, removeAt <= nowMs {
                backlog.oldestOverdueMs = max(backlog.oldestOverdueMs ?? 0, nowMs - removeAt)
            }
        }
        return backlog
    }

    /// Pending jobs that a worker gave back because it does not run their
    /// type, by type: they wait for a worker that does (each time a worker
    /// that does not know the type claims one, it is due again after a
    /// backoff: 0.5 s, doubling, at most 30 s).
    public func parkedCounts() async throws(ConveyorError) -> [String: Int] {
        try await checkLayout()
        do {
            var counts: [String: Int] = [:]
            for partition in keys.partitions {
                let fields = try await client.send(RedisCommand("HGETALL", key: partition.parked)).array?.compactMap(\.string) ?? []
                guard !fields.isEmpty else { continue }
                let pairs = stride(from: 0, to: fields.count - 1, by: 2).map { (id: fields[$0], type: fields[$0 + 1]) }
                // An entry of a job cancelled while parked lingers until a
                // release pass prunes it: count only jobs still waiting.
                let due = try await client.pipeline(pairs.map { RedisCommand("ZSCORE", key: partition.due, $0.id) })
                for (pair, score) in zip(pairs, due) where !score.isNull {
                    counts[pair.type, default: 0] += 1
                }
            }
            return counts
        } catch {
            throw ConveyorError(error)
        }
    }
}
