import ConveyorRedis
import Foundation

extension JobInspector {
    /// The workers that announced themselves within three heartbeat
    /// intervals (see ``LiveWorker``), sorted by id.
    public func liveWorkers() async throws(ConveyorError) -> [LiveWorker] {
        do {
            let ids = try await client.send(RedisCommand("SMEMBERS", key: keys.workers)).array?.compactMap(\.string) ?? []
            guard !ids.isEmpty else { return [] }
            let records = try await client.pipeline(ids.map { RedisCommand("GET", key: keys.worker($0)) })
            let decoder = JSONDecoder()
            return records.compactMap { reply in
                reply.string.flatMap { try? decoder.decode(LiveWorker.self, from: Data($0.utf8)) }
            }.sorted { $0.id < $1.id }
        } catch {
            throw ConveyorError(error)
        }
    }

    /// Redis's clock (`TIME`).
    public func redisTime() async throws(ConveyorError) -> Date {
        try await Self.redisTime(client)
    }

    /// Redis's clock (`TIME`), to the millisecond: the one reader of `TIME` outside
    /// the scripts, for the scheduler, the inspector and the tests.
    static func redisTime(_ client: RedisClient) async throws(ConveyorError) -> Date {
        let reply: RESPValue
        do {
            reply = try await client.send("TIME")
        } catch {
            throw ConveyorError(error)
        }
        guard let parts = reply.array, parts.count == 2, let seconds = parts[0].int, let micros = parts[1].int else {
            throw ConveyorError(.redis, "TIME returned \(reply)")
        }
        return Date(milliseconds: seconds * 1000 + micros / 1000)
    }

    /// Completions per minute over the last `minutes` minutes of Redis time,
    /// summed over partitions, oldest first (from the `stats:<minute>` hashes
    /// `completeJobs` writes; they live about an hour).
    /// - Parameters:
    ///   - minutes: 1 ... 60.
    ///   - now: The time the last minute contains; `nil` reads Redis's clock.
    public func completionsPerMinute(minutes: Int, now: Date? = nil) async throws(ConveyorError) -> [QueueStats.MinuteCounts] {
        guard (1...60).contains(minutes) else {
            throw ConveyorError(.invalidArgument, "minutes must be between 1 and 60, got \(minutes)")
        }
        try await checkLayout()
        let nowMs: Int
        if let now { nowMs = now.milliseconds } else { nowMs = try await redisTime().milliseconds }
        let current = nowMs / 60_000
        let range = (current - minutes + 1)...current
        var commands: [RedisCommand] = []
        for minute in range {
            for partition in keys.partitions {
                commands.append(RedisCommand("HMGET", key: partition.stats(minute: minute), "ok", "failed", "interrupted"))
            }
        }
        let replies: [RESPValue]
        do {
            replies = try await client.pipeline(commands)
        } catch {
            throw ConveyorError(error)
        }
        var result: [QueueStats.MinuteCounts] = []
        var index = 0
        for minute in range {
            var counts = QueueStats.MinuteCounts(minute: Date(milliseconds: minute * 60_000), ok: 0, failed: 0, interrupted: 0)
            for _ in keys.partitions {
                let values = (replies[index].array ?? []).map { $0.string.flatMap(Int.init) ?? 0 }
                if values.count == 3 {
                    counts.ok += values[0]
                    counts.failed += values[1]
                    counts.interrupted += values[2]
                }
                index += 1
            }
            result.append(counts)
        }
        return result
    }

    /// A snapshot for operators: counts per state and per type, the oldest
    /// due job, completions per minute and live workers.
    /// - Parameters:
    ///   - minutes: Minutes of completions to read (1 ... 60).
    ///   - typeScanLimit: Jobs examined per partition and state for the
    ///     per-type counts (bounded, so a snapshot stays cheap with millions
    ///     of jobs); ``QueueStats/byTypeComplete`` says whether it sufficed.
    public func stats(minutes: Int = 15, typeScanLimit: Int = 10_000) async throws(ConveyorError) -> QueueStats {
        guard (1...1_000_000).contains(typeScanLimit) else {
            throw ConveyorError(.invalidArgument, "typeScanLimit must be between 1 and 1000000, got \(typeScanLimit)")
        }
        let now = try await redisTime()
        let counts = try await self.counts()
        let (byType, complete) = try await typeCounts(scanLimit: typeScanLimit)
        return QueueStats(
            time: now,
            counts: .init(pending: counts[.pending] ?? 0, running: counts[.running] ?? 0, finished: counts[.finished] ?? 0),
            byType: byType, byTypeComplete: complete, oldestDue: try await oldestDue(now: now),
            minutes: try await completionsPerMinute(minutes: minutes, now: now), workers: try await liveWorkers()
        )
    }

    /// The pending job due earliest, over all partitions.
    public func oldestDue(now: Date) async throws(ConveyorError) -> QueueStats.OldestDue? {
        try await checkLayout()
        let replies: [RESPValue]
        do {
            replies = try await client.pipeline(keys.partitions.map { RedisCommand("ZRANGE", key: $0.due, 0, 0, "WITHSCORES") })
        } catch {
            throw ConveyorError(error)
        }
        let heads = replies.compactMap { reply -> (id: Int, due: Int)? in
            guard let pair = reply.array, pair.count == 2, let id = pair[0].int ?? pair[0].string.flatMap(Int.init),
                let due = pair[1].string.flatMap(Double.init)
            else { return nil }
            return (id, Int(due))
        }
        guard let head = heads.min(by: { $0.due < $1.due }), let job = try await job(id: head.id) else { return nil }
        return QueueStats.OldestDue(
            id: job.id, type: job.type, userId: job.userId, due: job.due, latenessMs: max(0, now.milliseconds - job.due.milliseconds)
        )
    }

    /// Jobs per state and type: pending from the pair index (`HSCAN`),
    /// running and finished from their sets' oldest entries and each job's
    /// type, at most `scanLimit` per partition and state.
    func typeCounts(scanLimit: Int) async throws(ConveyorError) -> ([QueueStats.TypeCounts], Bool) {
        var table: [String: QueueStats.TypeCounts] = [:]
        var complete = true
        func add(_ type: String, _ state: WorkerJob.State) {
            var entry = table[type] ?? .init(type: type, pending: 0, running: 0, finished: 0)
            switch state {
            case .pending: entry.pending += 1
            case .running: entry.running += 1
            case .finished: entry.finished += 1
            }
            table[type] = entry
        }
        do {
            for partition in keys.partitions {
                var cursor = "0"
                var seen = 0
                repeat {
                    let reply = try await client.send(RedisCommand("HSCAN", key: partition.pending, cursor, "COUNT", 1000)).array ?? []
                    guard reply.count == 2 else { break }
                    cursor = reply[0].string ?? "0"
                    let fields = reply[1].array?.compactMap(\.string) ?? []
                    for index in stride(from: 0, to: fields.count - 1, by: 2) {
                        let pair = fields[index]
                        add(String(pair[..<(pair.lastIndex(of: ":") ?? pair.endIndex)]), .pending)
                        seen += 1
                    }
                } while cursor != "0" && seen < scanLimit
                if cursor != "0" { complete = false }
                for (state, key) in [(WorkerJob.State.running, partition.running), (.finished, partition.finished)] {
                    let ids = try await client.send(RedisCommand("ZRANGE", key: key, 0, scanLimit)).array?.compactMap { $0.string } ?? []
                    if ids.count > scanLimit { complete = false }
                    let types = try await client.pipeline(ids.prefix(scanLimit).map { RedisCommand("HGET", key: partition.jobPrefix + $0, "t") })
                    for type in types.compactMap(\.string) { add(type, state) }
                }
            }
        } catch {
            throw ConveyorError(error)
        }
        return (table.values.sorted { $0.type < $1.type }, complete)
    }
}
