import Foundation
import NIOCore

/// A job as stored: what was scheduled, and what happened to it.
///
/// Encodes to JSON with the API field names (`id`, `type`, `userId`, `data`,
/// `due`, ...), dates as ISO 8601 UTC with milliseconds; this is the format of
/// `--json` output and of the history log.
public struct WorkerJob: Sendable, Hashable {
    /// Unique, increasing within a partition; `id % partitionCount` is the partition.
    public var id: Int
    /// The stored job type name.
    public var type: String
    /// The user the job is for; 0 for system-level jobs.
    public var userId: Int
    /// The job's input as JSON text, as stored; `nil` is JSON `null`.
    public var dataJSON: String?
    /// When the job may start.
    public var due: Date
    /// When a worker claimed it.
    public var started: Date?
    /// When it finished (succeeded, failed, cancelled or was lost).
    public var finished: Date?
    /// Whether it succeeded; `nil` until finished.
    public var success: Bool?
    /// The result (or error) as JSON text; `nil` is JSON `null`.
    public var resultJSON: String?
    /// The cron expression of a cron job.
    public var cronSchedule: String?
    /// The cron expression's IANA time zone; `nil` is UTC.
    public var cronTimeZone: String?
    /// Whether a failure schedules a retry.
    public var autoRescheduleOnFailure: Bool
    /// Milliseconds between a failure and its retry.
    public var autoRescheduleOnFailureDelay: Int
    /// Milliseconds a finished job stays in Redis before it is archived.
    public var removeDelay: Int
    /// The job this one is a retry or the next cron run of.
    public var rescheduledFromJob: Int?
    /// 1 for a new job, +1 along an auto-retry chain.
    public var attempt: Int
    /// When the job was created.
    public var createdAt: Date
    /// The worker that claimed it.
    public var workerId: String?
    /// When this job ended without its retry, re-run or next cron run because
    /// the app had scheduled a job of the same type and user after this one
    /// started: that newer job's id (the newer schedule wins).
    public var followUpSupersededBy: Int?

    /// When it becomes eligible for archiving: `finished + removeDelay`.
    public var removeAt: Date? {
        finished.map { $0.addingTimeInterval(Double(removeDelay) / 1000) }
    }

    /// The last change: finished, else started, else created.
    public var updatedAt: Date { finished ?? started ?? createdAt }

    /// The job's input as a JSON value.
    public var data: JSONValue { (try? JSONValue(jsonText: dataJSON)) ?? .string(dataJSON ?? "") }

    /// The job's result as a JSON value.
    public var result: JSONValue { (try? JSONValue(jsonText: resultJSON)) ?? .string(resultJSON ?? "") }

    /// The job's state.
    public var state: State {
        if finished != nil { return .finished }
        if started != nil { return .running }
        return .pending
    }

    /// Where a job is in its life.
    public enum State: String, Sendable, Hashable, Codable, CaseIterable {
        /// Waiting for its due time or a worker.
        case pending
        /// Claimed by a worker.
        case running
        /// Succeeded, failed or cancelled; waiting for the archiver.
        case finished
    }

    /// Decodes the data as a job's input type.
    public func decodeData<Input: Decodable>(as type: Input.Type = Input.self) throws -> Input {
        try JSONDecoder().decode(Input.self, from: Data((dataJSON ?? "null").utf8))
    }
}

extension WorkerJob {
    /// Builds a record from a job hash's short fields and values as `HGETALL`
    /// returns them (`lua/README.md`, "Job hash fields"). The one place that
    /// knows them. Values split into parts (`d`, `d2`, `d3`, …; `r`, `r2`, …
    /// — `lua/includes/appendChunked.lua`) are joined again by part number,
    /// in any field order. Returns `nil` without `t`, `u` or `ca`.
    init?<Fields: Collection<RESPValue>>(id: Int, hashFields: Fields) {
        var type: String?
        var userId: Int?
        var createdMs: Int?
        var data = ChunkedValue()
        var result = ChunkedValue()
        self.id = id
        self.type = ""
        self.userId = 0
        self.createdAt = Date(timeIntervalSince1970: 0)
        self.due = createdAt
        self.autoRescheduleOnFailure = false
        self.autoRescheduleOnFailureDelay = 0
        self.removeDelay = 0
        self.attempt = 1
        var dueMs: Int?
        var dueOffsetMs: Int?
        var index = hashFields.startIndex
        while index != hashFields.endIndex {
            let valueIndex = hashFields.index(after: index)
            guard valueIndex != hashFields.endIndex else { break }
            defer { index = hashFields.index(after: valueIndex) }
            let reply = hashFields[valueIndex]
            guard case .bulkString(let key) = hashFields[index], case .bulkString(let value) = reply else { continue }
            // Field names are JobField's raw values (the contract with lua/);
            // the one-letter fields of every job are matched on their byte.
            switch key.readableBytesView.count == 1 ? key.readableBytesView.first! : 0 {
            case Self.typeByte: type = String(buffer: value)
            case Self.userIdByte: userId = reply.int
            case Self.dataByte: data.add(part: 1, value)
            case Self.resultByte: result.add(part: 1, value)
            case Self.attemptByte: attempt = reply.int ?? 1
            case Self.workerIdByte: workerId = String(buffer: value)
            default:
                let name = String(buffer: key)
                switch JobField(rawValue: name) {
                case .createdAt?: createdMs = reply.int
                case .dueOffset?: dueOffsetMs = reply.int
                case .dueAbsolute?: dueMs = reply.int  // written before `dd` existed: absolute
                case .started?: started = reply.int.map(Date.init(milliseconds:))
                case .finished?: finished = reply.int.map(Date.init(milliseconds:))
                case .success?: success = value.readableBytesView.first == UInt8(ascii: "1")
                case .cron?: cronSchedule = String(buffer: value)
                case .cronTimeZone?: cronTimeZone = String(buffer: value)
                case .autoReschedule?: autoRescheduleOnFailure = value.readableBytesView.first == UInt8(ascii: "1")
                case .autoRescheduleDelay?: autoRescheduleOnFailureDelay = reply.int ?? 0
                case .removeDelay?: removeDelay = reply.int ?? 0
                case .rescheduledFrom?: rescheduledFromJob = reply.int
                case .followUpSupersededBy?: followUpSupersededBy = reply.int
                case .type?, .userId?, .data?, .result?, .attempt?, .workerId?, .interruptions?, .releases?:
                    continue  // one-letter fields above; ic and rl are for the scripts only
                case nil:
                    // d2, d3, … and r2, r3, …: later parts of a split value.
                    guard let base = name.utf8.first, base == Self.dataByte || base == Self.resultByte,
                        let part = Int(name.dropFirst()), part >= 2
                    else { continue }
                    if base == Self.dataByte { data.add(part: part, value) } else { result.add(part: part, value) }
                }
            }
        }
        guard let type, let userId, let createdMs else { return nil }
        self.type = type
        self.userId = userId
        self.createdAt = Date(milliseconds: createdMs)
        self.due = Date(milliseconds: dueOffsetMs.map { createdMs + $0 } ?? dueMs ?? createdMs)
        self.dataJSON = data.joined
        self.resultJSON = result.joined
    }

    private static let typeByte = JobField.type.rawValue.utf8.first!
    private static let userIdByte = JobField.userId.rawValue.utf8.first!
    private static let dataByte = JobField.data.rawValue.utf8.first!
    private static let resultByte = JobField.result.rawValue.utf8.first!
    private static let attemptByte = JobField.attempt.rawValue.utf8.first!
    private static let workerIdByte = JobField.workerId.rawValue.utf8.first!

    /// Parses `{id, field, value, ...}` as returned by `getJobs`.
    init?(reply: RESPValue) {
        guard let items = reply.array, let id = items.first?.int else { return nil }
        self.init(id: id, hashFields: items.dropFirst())
    }
}

/// A hash value stored whole or in numbered parts.
private struct ChunkedValue {
    private var first: ByteBuffer?
    private var rest: [(part: Int, bytes: ByteBuffer)] = []

    mutating func add(part: Int, _ bytes: ByteBuffer) {
        if part == 1 { first = bytes } else { rest.append((part, bytes)) }
    }

    var joined: String? {
        guard var whole = first else { return nil }
        if rest.isEmpty { return String(buffer: whole) }
        for (_, bytes) in rest.sorted(by: { $0.part < $1.part }) {
            var bytes = bytes
            whole.writeBuffer(&bytes)
        }
        return String(buffer: whole)
    }
}

extension WorkerJob: Codable {
    enum CodingKeys: String, CodingKey {
        case id, type, userId, data, due, started, finished, success, result, cronSchedule, cronTimeZone
        case autoRescheduleOnFailure, autoRescheduleOnFailureDelay, removeDelay, removeAt, rescheduledFromJob
        case attempt, createdAt, updatedAt, workerId, state, followUpSupersededBy
    }

    public func encode(to encoder: any Encoder) throws {
        var container = encoder.container(keyedBy: CodingKeys.self)
        try container.encode(id, forKey: .id)
        try container.encode(type, forKey: .type)
        try container.encode(userId, forKey: .userId)
        try container.encode(data, forKey: .data)
        try container.encode(due.iso8601Milliseconds, forKey: .due)
        try container.encode(started?.iso8601Milliseconds, forKey: .started)
        try container.encode(finished?.iso8601Milliseconds, forKey: .finished)
        try container.encode(success, forKey: .success)
        try container.encode(result, forKey: .result)
        try container.encode(cronSchedule, forKey: .cronSchedule)
        try container.encode(cronTimeZone, forKey: .cronTimeZone)
        try container.encode(autoRescheduleOnFailure, forKey: .autoRescheduleOnFailure)
        try container.encode(autoRescheduleOnFailureDelay, forKey: .autoRescheduleOnFailureDelay)
        try container.encode(removeDelay, forKey: .removeDelay)
        try container.encode(removeAt?.iso8601Milliseconds, forKey: .removeAt)
        try container.encode(rescheduledFromJob, forKey: .rescheduledFromJob)
        try container.encode(attempt, forKey: .attempt)
        try container.encode(createdAt.iso8601Milliseconds, forKey: .createdAt)
        try container.encode(updatedAt.iso8601Milliseconds, forKey: .updatedAt)
        try container.encode(workerId, forKey: .workerId)
        try container.encode(state, forKey: .state)
        try container.encodeIfPresent(followUpSupersededBy, forKey: .followUpSupersededBy)
    }

    public init(from decoder: any Decoder) throws {
        let container = try decoder.container(keyedBy: CodingKeys.self)
        func date(_ key: CodingKeys) throws -> Date? {
            guard let text = try container.decodeIfPresent(String.self, forKey: key) else { return nil }
            guard let value = Date(iso8601Milliseconds: text) else {
                throw DecodingError.dataCorruptedError(forKey: key, in: container, debugDescription: "not an ISO 8601 date: \(text)")
            }
            return value
        }
        id = try container.decode(Int.self, forKey: .id)
        type = try container.decode(String.self, forKey: .type)
        userId = try container.decode(Int.self, forKey: .userId)
        let dataValue = try container.decodeIfPresent(JSONValue.self, forKey: .data) ?? .null
        dataJSON = dataValue == .null ? nil : dataValue.jsonText
        let resultValue = try container.decodeIfPresent(JSONValue.self, forKey: .result) ?? .null
        resultJSON = resultValue == .null ? nil : resultValue.jsonText
        guard let created = try date(.createdAt) else {
            throw DecodingError.keyNotFound(CodingKeys.createdAt, .init(codingPath: [], debugDescription: "createdAt is required"))
        }
        createdAt = created
        due = try date(.due) ?? created
        started = try date(.started)
        finished = try date(.finished)
        success = try container.decodeIfPresent(Bool.self, forKey: .success)
        cronSchedule = try container.decodeIfPresent(String.self, forKey: .cronSchedule)
        cronTimeZone = try container.decodeIfPresent(String.self, forKey: .cronTimeZone)
        autoRescheduleOnFailure = try container.decodeIfPresent(Bool.self, forKey: .autoRescheduleOnFailure) ?? false
        autoRescheduleOnFailureDelay = try container.decodeIfPresent(Int.self, forKey: .autoRescheduleOnFailureDelay) ?? 0
        removeDelay = try container.decodeIfPresent(Int.self, forKey: .removeDelay) ?? 0
        rescheduledFromJob = try container.decodeIfPresent(Int.self, forKey: .rescheduledFromJob)
        attempt = try container.decodeIfPresent(Int.self, forKey: .attempt) ?? 1
        workerId = try container.decodeIfPresent(String.self, forKey: .workerId)
        followUpSupersededBy = try container.decodeIfPresent(Int.self, forKey: .followUpSupersededBy)
    }
}

extension Date {
    /// Milliseconds since the Unix epoch, the unit of every time in Redis.
    /// Rounded to the nearest millisecond: a `Date` holds seconds as a
    /// `Double`, so `Date(milliseconds: n)` times 1000 may come out as
    /// n − 0.000001, which rounding down would turn into n − 1.
    var milliseconds: Int { Int((timeIntervalSince1970 * 1000).rounded()) }

    init(milliseconds: Int) {
        self.init(timeIntervalSince1970: Double(milliseconds) / 1000)
    }

    /// `2026-11-29T01:02:03.456Z`: UTC, always with milliseconds. Computed from
    /// whole milliseconds by integer arithmetic (Foundation's formatter both
    /// truncated binary fractions, printing …919 ms as …918, and cost ~7 µs a
    /// date on the archiver's hot path).
    public var iso8601Milliseconds: String {
        var bytes: [UInt8] = []
        bytes.reserveCapacity(24)
        Self.appendISO8601(milliseconds: milliseconds, to: &bytes)
        return String(decoding: bytes, as: UTF8.self)
    }

    /// Appends `YYYY-MM-DDTHH:MM:SS.mmmZ` for a time in ms since the epoch.
    static func appendISO8601(milliseconds: Int, to bytes: inout [UInt8]) {
        let days = milliseconds.floorDivided(by: 86_400_000)
        let msOfDay = milliseconds - days * 86_400_000
        let (year, month, day) = CivilCalendar.civil(fromDays: days)
        func digits(_ value: Int, _ count: Int) {
            var divisor = 1
            for _ in 1..<count { divisor *= 10 }
            var rest = value
            while divisor > 0 {
                bytes.append(UInt8(48 + rest / divisor))
                rest %= divisor
                divisor /= 10
            }
        }
        digits(year, 4)
        bytes.append(UInt8(ascii: "-"))
        digits(month, 2)
        bytes.append(UInt8(ascii: "-"))
        digits(day, 2)
        bytes.append(UInt8(ascii: "T"))
        digits(msOfDay / 3_600_000, 2)
        bytes.append(UInt8(ascii: ":"))
        digits(msOfDay / 60_000 % 60, 2)
        bytes.append(UInt8(ascii: ":"))
        digits(msOfDay / 1000 % 60, 2)
        bytes.append(UInt8(ascii: "."))
        digits(msOfDay % 1000, 3)
        bytes.append(UInt8(ascii: "Z"))
    }

    /// Parses ISO 8601 with or without fractional seconds, to the nearest millisecond.
    public init?(iso8601Milliseconds text: String) {
        let parsed: Date
        if let value = try? Date.ISO8601FormatStyle(includingFractionalSeconds: true).parse(text) {
            parsed = value
        } else if let value = try? Date.ISO8601FormatStyle().parse(text) {
            parsed = value
        } else {
            return nil
        }
        self.init(milliseconds: Int((parsed.timeIntervalSince1970 * 1000).rounded()))
    }
}

extension Int {
    func floorDivided(by divisor: Int) -> Int {
        let quotient = self / divisor
        return (self % divisor < 0) ? quotient - 1 : quotient
    }

    func floorModulo(_ divisor: Int) -> Int {
        let remainder = self % divisor
        return remainder < 0 ? remainder + divisor : remainder
    }
}

extension Duration {
    /// Whole milliseconds, the unit the scripts take.
    var wholeMilliseconds: Int {
        let (seconds, attoseconds) = components
        return Int(seconds) * 1000 + Int(attoseconds / 1_000_000_000_000_000)
    }
}

extension WorkerJob {
    /// Appends this record as one compact JSON object with sorted keys, the
    /// same fields and values as its `Codable` encoding, plus `extra` members
    /// (already-encoded JSON values). Hand-written because the history log
    /// writes one per archived job and `JSONEncoder` cost ~40 µs each;
    /// `data` and `result` are copied in as stored (they are JSON already).
    func appendJSON(to bytes: inout [UInt8], extra: [(key: String, json: String)] = []) {
        func needsEscape(_ byte: UInt8) -> Bool {
            byte < 0x20 || byte == UInt8(ascii: "\"") || byte == UInt8(ascii: "\\")
        }
        func string(_ value: String) {
            bytes.append(UInt8(ascii: "\""))
            // Fast path: a native string's contiguous UTF-8 with nothing to escape.
            let copied = value.utf8.withContiguousStorageIfAvailable { utf8 -> Bool in
                guard !utf8.contains(where: needsEscape) else { return false }
                bytes.append(contentsOf: utf8)
                return true
            } ?? false
            if !copied {
                for byte in value.utf8 {
                    switch byte {
                    case UInt8(ascii: "\""), UInt8(ascii: "\\"): bytes.append(contentsOf: [92, byte])
                    case 0..<0x20:
                        let hex = Array("0123456789abcdef".utf8)
                        bytes.append(contentsOf: [92, UInt8(ascii: "u"), 48, 48, hex[Int(byte >> 4)], hex[Int(byte & 15)]])
                    default: bytes.append(byte)
                    }
                }
            }
            bytes.append(UInt8(ascii: "\""))
        }
        func text(_ value: String?) {
            if let value { string(value) } else { bytes.append(contentsOf: "null".utf8) }
        }
        func date(_ value: Date?) {
            guard let value else { return bytes.append(contentsOf: "null".utf8) }
            bytes.append(UInt8(ascii: "\""))
            Date.appendISO8601(milliseconds: value.milliseconds, to: &bytes)
            bytes.append(UInt8(ascii: "\""))
        }
        func raw(_ json: String?) { bytes.append(contentsOf: (json ?? "null").utf8) }
        func bool(_ value: Bool?) { raw(value.map { $0 ? "true" : "false" }) }
        func int(_ value: Int?) {
            guard let value else { return raw(nil) }
            if value < 0 { bytes.append(UInt8(ascii: "-")) }
            var magnitude = value.magnitude
            var digits: (UInt8, UInt8, UInt8, UInt8, UInt8, UInt8, UInt8, UInt8, UInt8, UInt8,
                         UInt8, UInt8, UInt8, UInt8, UInt8, UInt8, UInt8, UInt8, UInt8, UInt8) =
                (0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0)
            withUnsafeMutableBytes(of: &digits) { buffer in
                var start = buffer.count
                repeat {
                    start -= 1
                    buffer[start] = UInt8(ascii: "0") + UInt8(magnitude % 10)
                    magnitude /= 10
                } while magnitude > 0
                bytes.append(contentsOf: buffer[start...])
            }
        }
        // Members in key order, as JSONEncoder's .sortedKeys writes them;
        // `extra` members are merged in at their place.
        let extras = extra.sorted { $0.key < $1.key }
        var nextExtra = 0
        var first = true
        func extrasBefore(_ name: String?) {
            while nextExtra < extras.count, name.map({ extras[nextExtra].key < $0 }) ?? true {
                member(extras[nextExtra].key)
                raw(extras[nextExtra].json)
                nextExtra += 1
            }
        }
        func key(_ name: String) {
            extrasBefore(name)
            member(name)
        }
        func member(_ name: String) {
            if !first { bytes.append(UInt8(ascii: ",")) }
            first = false
            string(name)
            bytes.append(UInt8(ascii: ":"))
        }
        bytes.append(UInt8(ascii: "{"))
        key("attempt"); int(attempt)
        key("autoRescheduleOnFailure"); bool(autoRescheduleOnFailure)
        key("autoRescheduleOnFailureDelay"); int(autoRescheduleOnFailureDelay)
        key("createdAt"); date(createdAt)
        key("cronSchedule"); text(cronSchedule)
        key("cronTimeZone"); text(cronTimeZone)
        key("data"); raw(dataJSON)
        key("due"); date(due)
        key("finished"); date(finished)
        if let followUpSupersededBy { key("followUpSupersededBy"); int(followUpSupersededBy) }
        key("id"); int(id)
        key("removeAt"); date(removeAt)
        key("removeDelay"); int(removeDelay)
        key("rescheduledFromJob"); int(rescheduledFromJob)
        key("result"); raw(resultJSON)
        key("started"); date(started)
        key("state"); string(state.rawValue)
        key("success"); bool(success)
        key("type"); string(type)
        key("updatedAt"); date(updatedAt)
        key("userId"); int(userId)
        key("workerId"); text(workerId)
        extrasBefore(nil)
        bytes.append(UInt8(ascii: "}"))
    }
}
