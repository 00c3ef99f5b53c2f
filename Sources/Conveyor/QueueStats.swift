import Foundation

/// A snapshot of the queue for operators: what `conveyor stats` prints and
/// the dashboard's overview shows. Read by ``JobInspector/stats(minutes:typeScanLimit:)``.
///
/// Encodes to JSON with these field names (a contract: `conveyor stats --json`),
/// dates as ISO 8601 UTC with milliseconds.
public struct QueueStats: Sendable, Hashable, Codable {
    /// Redis's clock when the snapshot was read.
    public var time: Date
    /// Jobs in each state, over all partitions (exact).
    public var counts: StateCounts
    /// Jobs in each state per type, sorted by type name.
    public var byType: [TypeCounts]
    /// `false` when a state had more jobs than the type scan examined
    /// (`typeScanLimit` per partition and state): ``byType`` then counts only
    /// the jobs examined, the oldest of each state.
    public var byTypeComplete: Bool
    /// The pending job due earliest, if any.
    public var oldestDue: OldestDue?
    /// Completions per minute, oldest first, the current minute last.
    public var minutes: [MinuteCounts]
    /// Workers that announced themselves within three heartbeats, by id.
    public var workers: [LiveWorker]

    /// Numbers of jobs per state.
    public struct StateCounts: Sendable, Hashable, Codable {
        /// Waiting for their due time or a worker.
        public var pending: Int
        /// Claimed by a worker.
        public var running: Int
        /// Finished, waiting for the archiver.
        public var finished: Int
    }

    /// Numbers of jobs per state of one type.
    public struct TypeCounts: Sendable, Hashable, Codable {
        /// The stored job type name.
        public var type: String
        /// Pending jobs of the type.
        public var pending: Int
        /// Running jobs of the type.
        public var running: Int
        /// Finished jobs of the type still in Redis.
        public var finished: Int
    }

    /// The pending job due earliest.
    public struct OldestDue: Sendable, Hashable, Codable {
        /// The job's id.
        public var id: Int
        /// Its type.
        public var type: String
        /// Its user.
        public var userId: Int
        /// When it became (or becomes) due.
        public var due: Date
        /// How long it has been due (Redis time − due), 0 if not due yet, in ms.
        public var latenessMs: Int
    }

    /// Jobs finished in one minute, by outcome (written by `completeJobs`).
    public struct MinuteCounts: Sendable, Hashable, Codable {
        /// The minute's start.
        public var minute: Date
        /// Succeeded.
        public var ok: Int
        /// Failed (errors, timeouts, results too large).
        public var failed: Int
        /// Interrupted by a worker's shutdown (and re-run).
        public var interrupted: Int
    }

    /// Completions over the last `minutes` minutes (the current one included).
    public func totals(lastMinutes count: Int) -> (ok: Int, failed: Int, interrupted: Int) {
        minutes.suffix(count).reduce(into: (0, 0, 0)) { sum, minute in
            sum.0 += minute.ok
            sum.1 += minute.failed
            sum.2 += minute.interrupted
        }
    }

    /// The snapshot as JSON text (sorted keys, ISO 8601 dates).
    public func jsonText(pretty: Bool = false) -> String {
        let encoder = JSONEncoder()
        encoder.outputFormatting = pretty ? [.sortedKeys, .prettyPrinted, .withoutEscapingSlashes] : [.sortedKeys, .withoutEscapingSlashes]
        encoder.dateEncodingStrategy = .custom { date, encoder in
            var container = encoder.singleValueContainer()
            try container.encode(date.iso8601Milliseconds)
        }
        return (try? String(decoding: encoder.encode(self), as: UTF8.self)) ?? "{}"
    }
}
