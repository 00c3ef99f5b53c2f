import Foundation

/// Which records of the history log to return. Every set criterion must hold.
public struct HistoryQuery: Sendable, Hashable {
    /// Only the job with this id.
    public var id: Int?
    /// Only jobs of this stored type name.
    public var type: String?
    /// Only jobs of this user.
    public var userId: Int?
    /// Only jobs that finished at or after this time.
    public var since: Date?
    /// Only jobs that finished before this time.
    public var until: Date?
    /// Only jobs that succeeded (`true`) or failed or were cancelled (`false`).
    public var success: Bool?
    /// At most this many records (newest first); `nil` for all.
    public var limit: Int?

    /// Creates a query; with no arguments it matches every record.
    public init(
        id: Int? = nil, type: String? = nil, userId: Int? = nil, since: Date? = nil, until: Date? = nil,
        success: Bool? = nil, limit: Int? = 100
    ) {
        self.id = id
        self.type = type
        self.userId = userId
        self.since = since
        self.until = until
        self.success = success
        self.limit = limit
    }

    /// Whether `job` matches.
    public func matches(_ job: WorkerJob) -> Bool {
        if let id, job.id != id { return false }
        if let type, job.type != type { return false }
        if let userId, job.userId != userId { return false }
        if let success, job.success != success { return false }
        if let since {
            guard let finished = job.finished, finished >= since else { return false }
        }
        if let until {
            guard let finished = job.finished, finished < until else { return false }
        }
        return true
    }

    /// Byte strings every matching line must contain, to skip most lines
    /// without decoding them (the decoded record is still checked).
    var needles: [[UInt8]] {
        var needles: [[UInt8]] = []
        if let id { needles.append(Array("\"id\":\(id)".utf8)) }
        if let userId { needles.append(Array("\"userId\":\(userId)".utf8)) }
        if let type, type.utf8.allSatisfy({ $0 >= 0x20 && $0 < 0x7f && $0 != UInt8(ascii: "\"") && $0 != UInt8(ascii: "\\") && $0 != UInt8(ascii: "/") }) {
            needles.append(Array("\"type\":\"\(type)\"".utf8))
        }
        return needles
    }
}

/// A ``HistoryQuery`` prepared for scanning raw lines: the times as the
/// log's ISO 8601 text (which sorts like the times), the type as bytes, and
/// the byte string every matching line must contain.
struct CompiledHistoryQuery: Sendable {
    var id: Int?
    var userId: Int?
    var success: Bool?
    var since: Date?
    var until: Date?
    var typeText: String?
    var typeBytes: [UInt8]?
    var sinceText: String?
    var untilText: String?
    var sinceBytes: [UInt8]?
    var untilBytes: [UInt8]?
    /// A byte string every matching line contains, to find candidates with
    /// `memmem` instead of looking at every line.
    var needle: [UInt8]?
    /// Whether the needle ends in a number (`"id":5`), so a digit after it means no match.
    var needleIsNumber = false

    init(_ query: HistoryQuery) {
        id = query.id
        userId = query.userId
        success = query.success
        since = query.since
        until = query.until
        typeText = query.type
        typeBytes = query.type.map { Array($0.utf8) }
        // finished has whole milliseconds: finished >= t ⇔ finished >= ceil(t), finished < t ⇔ finished < ceil(t).
        func text(_ date: Date) -> [UInt8] {
            var bytes: [UInt8] = []
            Date.appendISO8601(milliseconds: Int((date.timeIntervalSince1970 * 1000).rounded(.up)), to: &bytes)
            return bytes
        }
        sinceBytes = query.since.map(text)
        untilBytes = query.until.map(text)
        sinceText = sinceBytes.map { String(decoding: $0, as: UTF8.self) }
        untilText = untilBytes.map { String(decoding: $0, as: UTF8.self) }
        needle = query.needles.first
        needleIsNumber = query.id != nil || query.userId != nil
    }

    enum Match { case no, yes, decode }

    /// Whether the record with these fields matches; `.decode` when only a
    /// full decode can tell (a type written with JSON escapes, a line whose
    /// fields could not be read).
    func matches(_ fields: HistoryLineFields?, in buffer: UnsafeBufferPointer<UInt8>) -> Match {
        guard let fields, fields.id != nil else { return .decode }
        if let id, fields.id != id { return .no }
        if let userId, fields.userId != userId { return .no }
        if let success, fields.success != success { return .no }
        if sinceBytes != nil || untilBytes != nil {
            guard let finished = fields.finished else { return .no }
            if let sinceBytes, buffer.compare(finished, sinceBytes) < 0 { return .no }
            if let untilBytes, buffer.compare(finished, untilBytes) >= 0 { return .no }
        }
        if let typeBytes {
            guard let type = fields.type else { return .no }
            if buffer[type].contains(UInt8(ascii: "\\")) { return .decode }
            if !buffer[type].elementsEqual(typeBytes) { return .no }
        }
        return .yes
    }
}
