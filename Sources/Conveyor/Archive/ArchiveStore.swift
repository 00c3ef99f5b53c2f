import ConveyorRedis
/// The archiver's script calls: claim, delete, release; and the binding of an
/// archiver identity to its history directory. Arguments follow the script
/// headers in `lua/`.
struct ArchiveStore: Sendable {
    let client: RedisClient
    let keys: ConveyorKeys

    /// What `claimArchiveBatch` returned.
    struct Claim: Sendable {
        /// The batch was already held by this archiver (a resume): reconcile first.
        var resumed: Bool
        /// Every claimed id, including those whose hash is gone.
        var ids: [Int]
        /// The claimed jobs that still exist and parse, in claim order.
        var jobs: [WorkerJob]
        /// The claimed jobs whose hashes do not parse: archived raw.
        var raw: [RawJobHash] = []
        /// removeAt (ms) of the earliest finished job nobody has claimed.
        var nextRemoveAt: Int?
        /// The time the script used (ms): Redis's, unless a test passed one.
        var now: Int = 0
    }

    /// Claims up to `maxCount` due finished jobs of one partition for
    /// `archiverId`, or returns the batch it already holds; `maxCount` 0 only
    /// returns a held batch.
    /// - Parameter now: ms; `nil` (production) uses Redis's clock. Tests pass one.
    func claim(partition: ConveyorKeys.Partition, now: Int?, archiverId: String, maxCount: Int)
        async throws(ConveyorError) -> Claim
    {
        let reply = try await eval(ScriptSignature.claimArchiveBatch.call(partition, [JobStore.argument(now), archiverId, maxCount]))
        guard let items = reply.array, items.count >= 3, let resumed = items[0].int, let next = items[1].int,
            let scriptNow = items[2].int
        else {
            throw ConveyorError(.redis, "claimArchiveBatch returned \(reply)")
        }
        let ids = try items.dropFirst(3).map { item throws(ConveyorError) in
            guard let id = item.int else { throw ConveyorError(.redis, "claimArchiveBatch returned the id \(item)") }
            return id
        }
        // The claimed jobs' hashes cannot change until this archiver deletes
        // them, so they are read after the claim, outside Lua (cheaper for Redis).
        let hashes: [RESPValue]
        do {
            hashes = ids.isEmpty ? [] : try await client.pipeline(ids.map { RedisCommand("HGETALL", key: partition.job($0)) })
        } catch {
            throw ConveyorError(error)
        }
        var jobs: [WorkerJob] = []
        var raw: [RawJobHash] = []
        jobs.reserveCapacity(ids.count)
        for (id, hash) in zip(ids, hashes) {
            if case .error(let message) = hash { throw ConveyorError(.redis, "HGETALL of job \(id) failed: \(message)") }
            // An empty hash: the claimed job is gone; only its claim is deleted.
            // One that does not parse is archived as it is, never dropped.
            switch hash.array.flatMap({ RawJobHash.archivable(id: id, hashFields: $0) }) {
            case .job(let job)?: jobs.append(job)
            case .raw(let record)?: raw.append(record)
            case nil: break
            }
        }
        return Claim(resumed: resumed == 1, ids: ids, jobs: jobs, raw: raw, nextRemoveAt: next < 0 ? nil : next, now: scriptNow)
    }

    /// Marks an archiver alive for `ttlMs` (`<namespace>:archiver-alive`):
    /// workers and `jobs counts` tell "no archiver runs" from "it is behind".
    func heartbeat(archiverId: String, ttlMs: Int) async throws(ConveyorError) {
        do {
            _ = try await client.send(RedisCommand("SET", key: keys.archiverAlive, archiverId, "PX", ttlMs))
        } catch {
            throw ConveyorError(error)
        }
    }

    /// Deletes jobs `archiverId` claimed and has made durable; returns the ids deleted.
    @discardableResult
    func delete(ids: [Int], partition: ConveyorKeys.Partition, archiverId: String) async throws(ConveyorError) -> [Int] {
        guard !ids.isEmpty else { return [] }
        let reply = try await eval(ScriptSignature.deleteArchivedJobs.call(partition, [archiverId] + ids.map { $0 as any RESPArgument }))
        return reply.array?.compactMap(\.int) ?? []
    }

    /// Releases every claim of `archiverId` in every partition; returns how many.
    func release(archiverId: String) async throws(ConveyorError) -> Int {
        var released = 0
        for partition in keys.partitions {
            let reply = try await eval(ScriptSignature.releaseArchiveClaims.call(partition, [archiverId]))
            released += reply.int ?? 0
        }
        return released
    }

    /// The number of claims each archiver identity holds, over all partitions.
    func claimsByArchiver() async throws(ConveyorError) -> [String: Int] {
        var counts: [String: Int] = [:]
        do {
            for partition in keys.partitions {
                let reply = try await client.send(RedisCommand("HGETALL", key: partition.archiving))
                let items = reply.array ?? []
                var index = 1
                while index < items.count {
                    if let owner = items[index].string { counts[owner, default: 0] += 1 }
                    index += 2
                }
            }
        } catch {
            throw ConveyorError(error)
        }
        return counts
    }

    /// Finished jobs in Redis, over all partitions: the archiver's backlog
    /// (jobs not yet due for archiving included).
    func backlog() async throws(ConveyorError) -> Int {
        var count = 0
        do {
            for partition in keys.partitions {
                count += try await client.send(RedisCommand("ZCARD", key: partition.finished)).int ?? 0
            }
        } catch {
            throw ConveyorError(error)
        }
        return count
    }

    /// Binds `archiverId` to the directory whose token is `token`, or checks
    /// the existing binding. Returns the token it is bound to.
    func bind(archiverId: String, token: String) async throws(ConveyorError) -> String {
        // A script, so that it runs at maxmemory too (bindArchiver-1.lua).
        let bound = try await eval(ScriptSignature.bindArchiver.call(keys, [archiverId, token])).string
        return bound ?? token
    }

    /// Removes the binding of `archiverId`.
    func unbind(archiverId: String) async throws(ConveyorError) {
        do {
            _ = try await client.send(RedisCommand("HDEL", key: keys.archivers, archiverId))
        } catch {
            throw ConveyorError(error)
        }
    }

    private func eval(_ call: RedisScriptCall) async throws(ConveyorError) -> RESPValue {
        do {
            return try await client.eval(call)
        } catch {
            throw ConveyorError(error)
        }
    }
}
