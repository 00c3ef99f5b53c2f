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
