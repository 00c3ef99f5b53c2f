import Foundation
import NIOPosix

/// Reads the history log the archivers write: one directory of JSON-lines
/// files (see ``HistoryFile``), possibly written by several archivers.
///
/// Queries return records newest first: each archiver's files are read from
/// the last line back, and the archivers' streams are merged by `archivedAt`.
/// Plain (`.jsonl`) and compressed (`.jsonl.gz`) files are read alike; a
/// file's sidecar index (`HistoryIndex`) lets a query skip the blocks that
/// cannot match, and the rest is filtered on raw bytes, decoding only the
/// records returned. A torn last line (an archiver killed mid-write) is never
/// returned, and a line that does not parse is skipped. A raw record (a job
/// hash that did not parse, archived as it was) is returned by ``entries(matching:oldestFirst:)``
/// with ``HistoryEntry/raw`` set; it matches a query on its id, and on type,
/// user and finish time when those could be read from it. A job written twice
/// (same id and `createdAt`) is returned once. Reading blocks, so it runs on
/// NIO's shared blocking thread pool, never on the cooperative pool.
public struct HistoryLog: Sendable {
    /// The history directory.
    public let directory: String

    /// A reader of the log in `directory`.
    public init(directory: String) {
        self.directory = directory
    }

    /// The files of the log, oldest first.
    /// - Throws: ``ArchiveError`` with code `io` when the directory cannot be listed.
    public func files() async throws -> [HistoryFile] {
        let directory = directory
        return try await NIOThreadPool.singleton.runIfActive { try HistoryFile.list(directory: directory) }
    }

    /// The records that match `query`, newest first (or oldest first: then a
    /// `limit` keeps the oldest).
    /// - Throws: ``ArchiveError`` with code `io` when a file cannot be read.
    public func entries(matching query: HistoryQuery, oldestFirst: Bool = false) async throws -> [HistoryEntry] {
        let directory = directory
        return try await NIOThreadPool.singleton.runIfActive {
            try Self.scan(directory: directory, query: query, order: oldestFirst ? .oldestFirst : .newestFirst)
        }
    }

    /// The jobs that match `query`, newest first. Raw records (hashes that
    /// did not parse, see ``HistoryEntry/raw``) are not jobs: only
    /// ``entries(matching:oldestFirst:)`` returns them.
    public func jobs(matching query: HistoryQuery) async throws -> [WorkerJob] {
        try await entries(matching: query).compactMap { $0.raw == nil ? $0.job : nil }
    }

    /// How much the log takes and how much room its file system has left
    /// (``HistoryMaintenanceReport/historyBytes``, ``HistoryMaintenanceReport/freeBytes``,
    /// ``HistoryMaintenanceReport/totalBytes``; the lists stay empty).
    public func diskUsage() async throws -> HistoryMaintenanceReport {
        let directory = directory
        return try await NIOThreadPool.singleton.runIfActive { try HistoryMaintenance.usage(directory: directory) }
    }

    /// The job with this id, if the log has it: of several records with this
    /// id, the one created last (see "Repeated ids" below).
    public func job(id: Int) async throws -> WorkerJob? {
        try await jobs(matching: HistoryQuery(id: id, limit: nil)).max { ($0.createdAt, $0.updatedAt) < ($1.createdAt, $1.updatedAt) }
    }

    /// Streams the raw records (the log's lines, without `\n`) that match
    /// `query`, in log order, at the speed of reading: records are not decoded
    /// unless only a decode can tell whether they match. `body` runs on a
    /// blocking thread, once per record; it returns `false` to stop.
    ///
    /// With a `limit`, a second copy of a record (same id and `createdAt`) is
    /// dropped, as ``entries(matching:oldestFirst:)`` does; without one (an export of
    /// millions of records) it is not, as that would take memory per record:
    /// a consumer that loads an export elsewhere deduplicates on `(id, createdAt)`.
    /// - Throws: ``ArchiveError`` with code `io` when a file cannot be read,
    ///   and what `body` throws.
    public func export(
        matching query: HistoryQuery, oldestFirst: Bool = true, _ body: @escaping @Sendable (ArraySlice<UInt8>) throws -> Bool
    ) async throws {
        let directory = directory
        try await NIOThreadPool.singleton.runIfActive {
            let decoder = JSONDecoder()
            var count = 0
            try Self.scan(directory: directory, query: query, order: oldestFirst ? .oldestFirst : .newestFirst, dedupe: query.limit != nil) { hit in
                if hit.needsDecode {
                    guard let entry = try? HistoryEntry.decode(hit.line[...], with: decoder), query.matches(entry.job) else { return true }
                }
                count += 1
                guard try body(hit.line[...]) else { return false }
                return query.limit.map { count < $0 } ?? true
            }
        }
    }

    /// The chain of retries and cron runs that `id` belongs to, oldest first:
    /// `rescheduledFromJob` followed backwards and forwards, across the log and,
    /// when `scheduler` is given, the jobs still in Redis.
    ///
    /// A job and its follow-ups share type and user, so one scan of the log for
    /// that pair and one look at that pair's jobs in Redis find every link.
    ///
    /// Repeated ids: a job is identified by its id *and* its `createdAt`. Two
    /// records with both equal are one job written twice (an archiver that
    /// rewrote a record); the newest state counts. Two with one id and
    /// different `createdAt` are two jobs (Redis lost its last writes and gave
    /// an id out again). The chain starts at the job with `id` that was created
    /// last (the one in Redis, if any), and a link `rescheduledFromJob = P`
    /// leads to the job with id `P` created last at or before the follow-up
    /// (a follow-up is created when its predecessor finishes).
    /// - Returns: An empty list when neither the log nor Redis has the job.
    public func chain(of id: Int, scheduler: JobScheduler?) async throws -> [WorkerJob] {
        try await chain(of: id, redis: scheduler?.inspector)
    }

    /// The chain of `id` (see ``chain(of:scheduler:)``), reading Redis through `redis` when given.
    public func chain(of id: Int, redis: JobInspector? = nil) async throws -> [WorkerJob] {
        var start = try await job(id: id)
        if let redis, let inRedis = try await redis.job(id: id) { start = inRedis }
        guard let start else { return [] }
        struct Key: Hashable {
            var id: Int
            var createdAt: Date
        }
        var known: [Key: WorkerJob] = [:]
        for job in try await jobs(matching: HistoryQuery(type: start.type, userId: start.userId, limit: nil)).reversed() {
            known[Key(id: job.id, createdAt: job.createdAt)] = job  // newest first, reversed: the newest copy stays
        }
        if let redis {
            // Redis holds the newest state (a job may be in both while it is being archived).
            for job in try await redis.jobs(type: start.type, userId: start.userId, limit: Int.max) {
                known[Key(id: job.id, createdAt: job.createdAt)] = job
            }
        }
        let startKey = Key(id: start.id, createdAt: start.createdAt)
        known[startKey] = start
        var byId: [Int: [Key]] = [:]
        for key in known.keys { byId[key.id, default: []].append(key) }
        func parent(of job: WorkerJob) -> Key? {
            guard let parentId = job.rescheduledFromJob else { return nil }
            return byId[parentId]?.filter { $0.createdAt <= job.createdAt }.max { $0.createdAt < $1.createdAt }
        }
        var children: [Key: [Key]] = [:]
        for (key, job) in known {
            if let parent = parent(of: job) { children[parent, default: []].append(key) }
        }
        var chain: Set<Key> = [startKey]
        var cursor = start
        while let parentKey = parent(of: cursor), !chain.contains(parentKey), let job = known[parentKey] {
            chain.insert(parentKey)
            cursor = job
        }
        var queue = [startKey]
        while let next = queue.popLast() {
            for child in children[next] ?? [] where !chain.contains(child) {
                chain.insert(child)
                queue.append(child)
            }
        }
        return chain.compactMap { known[$0] }.sorted { ($0.createdAt, $0.id) < ($1.createdAt, $1.id) }
    }

    // MARK: Scanning (blocking)

    /// Reads the records that may match `query` in log order, merging the
    /// archivers' streams by `archivedAt`, and hands each to `body` until it
    /// returns `false`. With `dedupe`, a second record with the id and
    /// `createdAt` of one already handed over is dropped.
    static func scan(
        directory: String, query: HistoryQuery, order: HistoryScanOrder, dedupe: Bool, _ body: (HistoryHit) throws -> Bool
    ) throws {
        let files = try HistoryFile.list(directory: directory)
        let compiled = CompiledHistoryQuery(query)
        let byArchiver = Dictionary(grouping: files, by: \.archiverId)
        var streams: [(stream: HistoryStream, head: HistoryHit)] = []
        for archiverId in byArchiver.keys.sorted() {
            let stream = HistoryStream(files: byArchiver[archiverId]!, query: compiled, order: order)
            if let head = try stream.next() { streams.append((stream, head)) }
        }
        struct Seen: Hashable {
            var id: Int
            var createdAt: [UInt8]
        }
        var seen = Set<Seen>()
        while !streams.isEmpty {
            var best = 0
            for index in streams.indices.dropFirst() {
                let better = order == .newestFirst
                    ? streams[best].head.isBefore(streams[index].head) : streams[index].head.isBefore(streams[best].head)
                if better { best = index }
            }
            let hit = streams[best].head
            if let next = try streams[best].stream.next() {
                streams[best].head = next
            } else {
                streams.remove(at: best)
            }
            if dedupe && !hit.createdAt.isEmpty && !seen.insert(Seen(id: hit.id, createdAt: hit.createdAt)).inserted { continue }
            guard try body(hit) else { return }
        }
    }

    static func scan(directory: String, query: HistoryQuery, order: HistoryScanOrder = .newestFirst) throws -> [HistoryEntry] {
        let decoder = JSONDecoder()
        let limit = query.limit ?? Int.max
        var result: [HistoryEntry] = []
        guard limit > 0 else { return [] }
        try scan(directory: directory, query: query, order: order, dedupe: true) { hit in
            if let entry = try? HistoryEntry.decode(hit.line[...], with: decoder), query.matches(entry.job) {
                result.append(entry)
            }
            return result.count < limit
        }
        return result
    }
}
