import Foundation

/// One record of the history log: a finished job as it was when archived.
///
/// A line of the log is this record as one JSON object: every field of the
/// ``WorkerJob`` record with its API names (dates ISO 8601 UTC with
/// milliseconds, as `--json` prints them), plus `archivedAt`, the time the
/// archiver wrote it. Readers ignore fields they do not know.
///
/// A job whose hash did not parse (written by an older or foreign version) is
/// a *raw* record: ``raw`` holds every field of its hash as a string, and
/// ``job`` is only a placeholder with what could be read.
public struct HistoryEntry: Sendable, Hashable, Codable {
    /// The job. For a raw record (``raw`` is set), a placeholder: the id, and
    /// the type, user and finish time when they could be read; every other
    /// property at its default.
    public var job: WorkerJob
    /// When the archiver wrote it; `nil` in records written without it.
    public var archivedAt: Date?
    /// The job's hash as stored, when it did not parse; `nil` for a normal record.
    public var raw: RawJobHash?

    /// Creates a record.
    public init(job: WorkerJob, archivedAt: Date?) {
        self.job = job
        self.archivedAt = archivedAt
        self.raw = nil
    }

    /// Creates a raw record: a job whose hash did not parse.
    public init(raw: RawJobHash, archivedAt: Date?) {
        self.job = raw.placeholderJob
        self.archivedAt = archivedAt
        self.raw = raw
    }

    private enum CodingKeys: String, CodingKey {
        case archivedAt, id, raw, rawBase64, rawReason
    }

    public func encode(to encoder: any Encoder) throws {
        var container = encoder.container(keyedBy: CodingKeys.self)
        try container.encode(archivedAt?.iso8601Milliseconds, forKey: .archivedAt)
        guard let raw else { return try job.encode(to: encoder) }
        try container.encode(raw.id, forKey: .id)
        try container.encode(raw.fields, forKey: .raw)
        if !raw.base64Fields.isEmpty { try container.encode(raw.base64Fields, forKey: .rawBase64) }
        try container.encode(raw.reason, forKey: .rawReason)
    }

    public init(from decoder: any Decoder) throws {
        let container = try decoder.container(keyedBy: CodingKeys.self)
        archivedAt = try container.decodeIfPresent(String.self, forKey: .archivedAt).flatMap(Date.init(iso8601Milliseconds:))
        if let fields = try container.decodeIfPresent([String: String].self, forKey: .raw) {
            let raw = RawJobHash(
                id: try container.decode(Int.self, forKey: .id), fields: fields,
                base64Fields: try container.decodeIfPresent([String: String].self, forKey: .rawBase64) ?? [:],
                reason: try container.decodeIfPresent(String.self, forKey: .rawReason) ?? ""
            )
            self.raw = raw
            job = raw.placeholderJob
        } else {
            raw = nil
            job = try WorkerJob(from: decoder)
        }
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
            if let raw = entry.raw {
                raw.appendJSON(to: &bytes, archivedAtJSON: archivedAtJSON.json)
            } else {
                entry.job.appendJSON(to: &bytes, extra: [("archivedAt", archivedAtJSON.json)])
            }
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
