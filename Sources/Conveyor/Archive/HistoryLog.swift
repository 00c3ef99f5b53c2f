import Foundation
import NIOPosix

/// Reads the history log the archivers write: one directory of JSON-lines
/// files (see ``HistoryFile``), possibly written by several archivers.
///
/// Queries return records newest first: each archiver's files are read from
/// the last line back, and the archivers' streams are merged by `archivedAt`.
/// A torn last line (an archiver killed mid-write) is never returned, and a
/// line that does not parse is skipped. Reading blocks, so it runs on NIO's
/// shared blocking thread pool, never on the cooperative pool.
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

    /// The records that match `query`, newest first.
    /// - Throws: ``ArchiveError`` with code `io` when a file cannot be read.
    public func entries(matching query: HistoryQuery) async throws -> [HistoryEntry] {
        let directory = directory
        return try await NIOThreadPool.singleton.runIfActive { try Self.scan(directory: directory, query: query) }
    }

    /// The jobs that match `query`, newest first.
    public func jobs(matching query: HistoryQuery) async throws -> [WorkerJob] {
        try await entries(matching: query).map(\.job)
    }

    /// The job with this id, if the log has it.
    public func job(id: Int) async throws -> WorkerJob? {
        try await jobs(matching: HistoryQuery(id: id, limit: 1)).first
    }

    /// The chain of retries and cron runs that `id` belongs to, oldest first:
    /// `rescheduledFromJob` followed backwards and forwards, across the log and,
    /// when `scheduler` is given, the jobs still in Redis.
    ///
    /// A job and its follow-ups share type and user, so one scan of the log for
    /// that pair and one look at that pair's jobs in Redis find every link.
    /// - Returns: An empty list when neither the log nor Redis has the job.
    public func chain(of id: Int, scheduler: JobScheduler? = nil) async throws -> [WorkerJob] {
        var start = try await job(id: id)
        if let scheduler, let inRedis = try await scheduler.job(id: id) { start = inRedis }
        guard let start else { return [] }
        var known: [Int: WorkerJob] = [:]
        for job in try await jobs(matching: HistoryQuery(type: start.type, userId: start.userId, limit: nil)) {
            known[job.id] = job
        }
        if let scheduler {
            // Redis holds the newest state (a job may be in both while it is being archived).
            for job in try await scheduler.jobs(type: start.type, userId: start.userId, limit: Int.max) {
                known[job.id] = job
            }
        }
        known[start.id] = start
        var children: [Int: [Int]] = [:]
        for job in known.values {
            if let parent = job.rescheduledFromJob { children[parent, default: []].append(job.id) }
        }
        var chain: Set<Int> = [start.id]
        var cursor = start
        while let parent = cursor.rescheduledFromJob, !chain.contains(parent), let job = known[parent] {
            chain.insert(parent)
            cursor = job
        }
        var queue = [start.id]
        while let next = queue.popLast() {
            for child in children[next] ?? [] where !chain.contains(child) {
                chain.insert(child)
                queue.append(child)
            }
        }
        return chain.compactMap { known[$0] }.sorted { $0.id < $1.id }
    }

    // MARK: Scanning (blocking)

    /// One archiver's records, newest first: its files by descending sequence,
    /// each read from the end.
    final class Stream {
        private var files: [HistoryFile]
        private var reader: BackwardLineReader?
        private let needles: [[UInt8]]
        private let decoder = JSONDecoder()
        private(set) var head: HistoryEntry?

        init(files: [HistoryFile], needles: [[UInt8]]) {
            self.files = files.sorted { $0.sequence < $1.sequence }
            self.needles = needles
        }

        /// Moves `head` to the next record that contains every needle.
        func advance() throws(ArchiveError) {
            head = nil
            while true {
                if reader == nil {
                    guard let file = files.popLast() else { return }
                    do {
                        reader = try BackwardLineReader(path: file.path)
                    } catch where error.errorNumber == ENOENT {
                        continue  // rotated away meanwhile
                    }
                }
                guard let line = try reader?.next() else {
                    reader = nil
                    continue
                }
                if needles.contains(where: { line.firstRange(of: $0) == nil }) { continue }
                if let entry = try? HistoryEntry.decode(line, with: decoder) {
                    head = entry
                    return
                }
            }
        }
    }

    static func scan(directory: String, query: HistoryQuery) throws(ArchiveError) -> [HistoryEntry] {
        let files = try HistoryFile.list(directory: directory)
        let byArchiver = Dictionary(grouping: files, by: \.archiverId)
        let needles = query.needles
        var streams = byArchiver.keys.sorted().map { Stream(files: byArchiver[$0]!, needles: needles) }
        for stream in streams { try stream.advance() }
        let limit = query.limit ?? Int.max
        var result: [HistoryEntry] = []
        while result.count < limit {
            streams.removeAll { $0.head == nil }
            guard let newest = streams.max(by: { isOlder($0.head!, $1.head!) }), let entry = newest.head else { break }
            if query.matches(entry.job) { result.append(entry) }
            if query.id != nil && !result.isEmpty { break }  // ids are unique
            try newest.advance()
        }
        return result
    }

    private static func isOlder(_ a: HistoryEntry, _ b: HistoryEntry) -> Bool {
        (a.sortTime, a.job.id) < (b.sortTime, b.job.id)
    }
}
