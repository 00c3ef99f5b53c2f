import Foundation

/// One record of the history log: a finished job as it was when archived.
///
/// A line of the log is this record as one JSON object: every field of the
/// ``WorkerJob`` record with its API names (dates ISO 8601 UTC with
/// milliseconds, as `--json` prints them), plus `archivedAt`, the time the
/// archiver wrote it. Readers ignore fields they do not know.
public struct HistoryEntry: Sendable, Hashable, Codable {
    /// The job.
    public var job: WorkerJob
    /// When the archiver wrote it; `nil` in records written without it.
    public var archivedAt: Date?

    /// Creates a record.
    public init(job: WorkerJob, archivedAt: Date?) {
        self.job = job
        self.archivedAt = archivedAt
    }

    private enum CodingKeys: String, CodingKey {
        case archivedAt
    }

    public func encode(to encoder: any Encoder) throws {
        try job.encode(to: encoder)
        var container = encoder.container(keyedBy: CodingKeys.self)
        try container.encode(archivedAt?.iso8601Milliseconds, forKey: .archivedAt)
    }

    public init(from decoder: any Decoder) throws {
        job = try WorkerJob(from: decoder)
        let container = try decoder.container(keyedBy: CodingKeys.self)
        archivedAt = try container.decodeIfPresent(String.self, forKey: .archivedAt).flatMap(Date.init(iso8601Milliseconds:))
    }

    /// The order of the log: archive time, else finish time.
    var sortTime: Date { archivedAt ?? job.finished ?? job.updatedAt }

    /// Encodes records as lines: compact JSON, sorted keys, each ending in `\n`.
    /// JSON escapes every control character inside strings, so a record never
    /// contains a newline byte.
    /// - Throws: Never in practice (kept for encoders that can fail).
    public static func lines(_ entries: [HistoryEntry]) throws -> [UInt8] {
        var bytes: [UInt8] = []
        bytes.reserveCapacity(entries.count * 512)
        // Entries of one batch share their archivedAt: encode it once.
        var archivedAtJSON: (date: Date?, json: String) = (nil, "null")
        for entry in entries {
            if entry.archivedAt != archivedAtJSON.date {
                archivedAtJSON = (entry.archivedAt, entry.archivedAt.map { "\"\($0.iso8601Milliseconds)\"" } ?? "null")
            }
            entry.job.appendJSON(to: &bytes, extra: [("archivedAt", archivedAtJSON.json)])
            bytes.append(UInt8(ascii: "\n"))
        }
        return bytes
    }

    /// Decodes one line (without its `\n`).
    static func decode(_ line: ArraySlice<UInt8>, with decoder: JSONDecoder) throws -> HistoryEntry {
        try decoder.decode(HistoryEntry.self, from: Data(line))
    }
}

/// Only the id of a record, for reconciling a batch against the tail of the log.
struct HistoryRecordID: Decodable {
    var id: Int
}
