import Foundation
import NIOCore

/// A finished job whose hash does not parse as a job of this version (written
/// by an older or foreign version, or damaged), archived as it was stored.
///
/// The archiver never drops a job: a hash with a missing or malformed field,
/// a field it does not know, or a `data`/`result` that is not single-line
/// JSON is written to the history log as one *raw* record holding every
/// field as a string (`docs/archiver.md`, "Raw records"). Long values stay
/// in their parts (`d`, `d2`, …), exactly as in Redis.
public struct RawJobHash: Sendable, Hashable {
    /// The job id (from its key).
    public var id: Int
    /// Every field whose name and value are valid UTF-8: name → value, as stored.
    public var fields: [String: String]
    /// The other fields: base64 of the name → base64 of the value.
    public var base64Fields: [String: String]
    /// Why the hash did not parse (the first problem found).
    public var reason: String

    /// Creates a raw record.
    public init(id: Int, fields: [String: String], base64Fields: [String: String] = [:], reason: String) {
        self.id = id
        self.fields = fields
        self.base64Fields = base64Fields
        self.reason = reason
    }

    /// The job type (`t`), when it is there and not empty.
    public var type: String? { fields[JobField.type.rawValue].flatMap { $0.isEmpty ? nil : $0 } }
    /// The user (`u`), when it is a canonical integer.
    public var userId: Int? { fields[JobField.userId.rawValue].flatMap { Self.isCanonicalInteger($0.utf8) ? Int($0) : nil } }
    /// When it finished (`fi`), when that is an integer.
    public var finished: Date? { fields[JobField.finished.rawValue].flatMap(Self.integer).map(Date.init(milliseconds:)) }

    /// A placeholder ``WorkerJob`` for code that expects one: the id and what
    /// could be read (type, user, finished), everything else at its default.
    var placeholderJob: WorkerJob {
        let created = fields[JobField.createdAt.rawValue].flatMap(Self.integer).map(Date.init(milliseconds:)) ?? Date(timeIntervalSince1970: 0)
        return WorkerJob(
            id: id, type: type ?? "", userId: userId ?? 0, dataJSON: nil, due: created, finished: finished, cronSchedule: nil,
            cronTimeZone: nil, autoRescheduleOnFailure: false, autoRescheduleOnFailureDelay: 0, removeDelay: 0,
            rescheduledFromJob: nil, attempt: 1, createdAt: created
        )
    }

    // MARK: From a hash

    /// What a claimed job's hash becomes in the log: a record, or a raw record
    /// when anything about it does not parse.
    enum Archivable: Sendable {
        case job(WorkerJob)
        case raw(RawJobHash)

        var id: Int {
            switch self {
            case .job(let job): job.id
            case .raw(let raw): raw.id
            }
        }
    }

    /// Reads a hash as `HGETALL` returns it (`nil` for an empty one: the job is gone).
    static func archivable<Fields: Collection<RESPValue>>(id: Int, hashFields: Fields) -> Archivable? {
        guard !hashFields.isEmpty else { return nil }
        if let problem = problem(in: hashFields) {
            return .raw(RawJobHash(id: id, hashFields: hashFields, reason: problem))
        }
        guard let job = WorkerJob(id: id, hashFields: hashFields) else {
            return .raw(RawJobHash(id: id, hashFields: hashFields, reason: "the hash does not parse"))
        }
        return .job(job)
    }

    /// Every field of the hash, as stored.
    init<Fields: Collection<RESPValue>>(id: Int, hashFields: Fields, reason: String) {
        var fields: [String: String] = [:]
        var base64Fields: [String: String] = [:]
        var index = hashFields.startIndex
        while index != hashFields.endIndex {
            let valueIndex = hashFields.index(after: index)
            let name = Self.bytes(hashFields[index])
            let value = valueIndex == hashFields.endIndex ? [] : Self.bytes(hashFields[valueIndex])
            if let nameText = String(validating: name, as: UTF8.self), let valueText = String(validating: value, as: UTF8.self) {
                fields[nameText] = valueText
            } else {
                base64Fields[Data(name).base64EncodedString()] = Data(value).base64EncodedString()
            }
            index = valueIndex == hashFields.endIndex ? valueIndex : hashFields.index(after: valueIndex)
        }
        self.init(id: id, fields: fields, base64Fields: base64Fields, reason: reason)
    }

    private static func bytes(_ value: RESPValue) -> [UInt8] {
        switch value {
        case .bulkString(let buffer): Array(buffer.readableBytesView)
        case .simpleString(let text): Array(text.utf8)
        default: Array("\(value)".utf8)
        }
    }

    /// The first reason the hash is not a job this version reads exactly, or
    /// `nil`: a required field (`t`, `u`, `ca`) missing, a value of the wrong
    /// form, a field it does not know, a `data` or `result` that is not
    /// single-line JSON, or text that is not UTF-8. (``WorkerJob``'s own
    /// reader is lenient: it would skip or default all of these.)
    static func problem<Fields: Collection<RESPValue>>(in hashFields: Fields) -> String? {
        // Per archived job: no String per field name, no set or dictionary
        // unless a value is split in parts (names are matched on their bytes,
        // ASCII values need no UTF-8 decoding).
        var hasType = false
        var hasUserId = false
        var hasCreatedAt = false
        var firstParts: [UInt8: ByteBuffer] = [:]
        var laterParts: [UInt8: [Int: ByteBuffer]] = [:]
        var index = hashFields.startIndex
        while index != hashFields.endIndex {
            let valueIndex = hashFields.index(after: index)
            guard valueIndex != hashFields.endIndex else { return "a field has no value" }
            defer { index = hashFields.index(after: valueIndex) }
            guard case .bulkString(let key) = hashFields[index], case .bulkString(let value) = hashFields[valueIndex] else {
                return "a field or value is not a string"
            }
            let bytes = value.readableBytesView
            guard let field = JobField.named(key.readableBytesView) else {
                guard let name = String(validating: key.readableBytesView, as: UTF8.self) else { return "a field name is not UTF-8" }
                // d2, d3, … and r2, r3, …: later parts of a split value.
                guard let base = name.utf8.first, base == dataByte || base == resultByte, name.utf8.count > 1,
                    isCanonicalInteger(name.utf8.dropFirst()), let part = Int(name.dropFirst()), part >= 2
                else { return "unknown field \(quoted(name))" }
                laterParts[base, default: [:]][part] = value
                continue
            }
            let name = field.rawValue
            switch field {
            case .type:
                hasType = true
                guard !bytes.isEmpty, isUTF8(bytes) else { return "t is empty or not UTF-8" }
            case .userId:
                hasUserId = true
                guard isCanonicalInteger(bytes) else { return "u is not a canonical integer" }
            case .data, .result:
                firstParts[key.readableBytesView.first!] = value
            case .workerId, .cron, .cronTimeZone, .traceContext:
                guard isUTF8(bytes) else { return "\(name) is not UTF-8" }
            case .success, .autoReschedule:
                guard bytes.count == 1, bytes.first == UInt8(ascii: "0") || bytes.first == UInt8(ascii: "1") else {
                    return "\(name) is not 0 or 1"
                }
            case .createdAt:
                hasCreatedAt = true
                guard isInteger(bytes) else { return "\(name) is not an integer" }
            case .dueOffset, .dueAbsolute, .started, .finished, .autoRescheduleDelay, .removeDelay, .rescheduledFrom, .attempt,
                .interruptions, .releases, .followUpSupersededBy, .maxAttempts, .backoffMaxDelay, .failedRetention:
                guard isInteger(bytes) else { return "\(name) is not an integer" }
            }
        }
        for (required, present) in [(JobField.type, hasType), (.userId, hasUserId), (.createdAt, hasCreatedAt)] where !present {
            return "field \(required.rawValue) is missing"
        }
        for (base, name) in [(dataByte, "d"), (resultByte, "r")] {
            guard let numbered = laterParts[base] else {
                // Stored whole (the usual case): checked in place.
                guard let whole = firstParts[base] else { continue }
                let single = whole.withUnsafeReadableBytes { JSONSyntax.isSingleLineValue($0) }
                guard single else { return "\(name) is not single-line JSON" }
                continue
            }
            var all = numbered
            all[1] = firstParts[base]
            guard all.keys.sorted() == Array(1...all.count) else { return "the parts of \(name) are not numbered 1…n" }
            var joined: [UInt8] = []
            for part in 1...all.count { joined.append(contentsOf: all[part]!.readableBytesView) }
            guard JSONSyntax.isSingleLineValue(joined) else { return "\(name) is not single-line JSON" }
        }
        return nil
    }

    /// Whether `bytes` are valid UTF-8; ASCII (the usual case) without decoding.
    private static func isUTF8(_ bytes: ByteBufferView) -> Bool {
        bytes.allSatisfy { $0 < 0x80 } || String(validating: bytes, as: UTF8.self) != nil
    }

    private static let dataByte = JobField.data.rawValue.utf8.first!
    private static let resultByte = JobField.result.rawValue.utf8.first!

    /// An integer as the scripts write them (`toIntString`): optional `-`, 1–18 digits.
    static func isInteger<Bytes: Collection<UInt8>>(_ bytes: Bytes) -> Bool {
        let digits = bytes.first == UInt8(ascii: "-") ? bytes.dropFirst() : bytes[...]
        return (1...18).contains(digits.count) && digits.allSatisfy { $0 >= UInt8(ascii: "0") && $0 <= UInt8(ascii: "9") }
    }

    /// ``isInteger(_:)`` without leading zeros (`"7"`, not `"007"`), as a user id must be.
    static func isCanonicalInteger<Bytes: Collection<UInt8>>(_ bytes: Bytes) -> Bool {
        guard isInteger(bytes) else { return false }
        let digits = bytes.first == UInt8(ascii: "-") ? bytes.dropFirst() : bytes[...]
        return digits.count == 1 ? !(bytes.first == UInt8(ascii: "-") && digits.first == UInt8(ascii: "0")) : digits.first != UInt8(ascii: "0")
    }

    private static func integer(_ text: String) -> Int? {
        isInteger(text.utf8) ? Int(text) : nil
    }

    /// A field name for a reason: quoted, at most 40 characters.
    private static func quoted(_ name: String) -> String {
        "\"" + (name.count > 40 ? name.prefix(40) + "…" : name) + "\""
    }

    // MARK: The record

    /// Appends the raw record as one compact JSON object with sorted keys:
    /// `archivedAt`, `finished` / `type` / `userId` when they could be read
    /// (so queries by time, type and user find it), `id`, `raw` (every field),
    /// `rawBase64` (only when some field is not UTF-8), `rawReason`.
    func appendJSON(to bytes: inout [UInt8], archivedAtJSON: String) {
        var first = true
        func member(_ name: String) {
            if !first { bytes.append(UInt8(ascii: ",")) }
            first = false
            JSONText.appendString(name, to: &bytes)
            bytes.append(UInt8(ascii: ":"))
        }
        func object(_ values: [String: String]) {
            bytes.append(UInt8(ascii: "{"))
            var firstField = true
            for name in values.keys.sorted() {
                if !firstField { bytes.append(UInt8(ascii: ",")) }
                firstField = false
                JSONText.appendString(name, to: &bytes)
                bytes.append(UInt8(ascii: ":"))
                JSONText.appendString(values[name]!, to: &bytes)
            }
            bytes.append(UInt8(ascii: "}"))
        }
        bytes.append(UInt8(ascii: "{"))
        member("archivedAt")
        bytes.append(contentsOf: archivedAtJSON.utf8)
        if let finished {
            member("finished")
            bytes.append(UInt8(ascii: "\""))
            Date.appendISO8601(milliseconds: finished.milliseconds, to: &bytes)
            bytes.append(UInt8(ascii: "\""))
        }
        member("id")
        bytes.append(contentsOf: String(id).utf8)
        member("raw")
        object(fields)
        if !base64Fields.isEmpty {
            member("rawBase64")
            object(base64Fields)
        }
        member("rawReason")
        JSONText.appendString(reason, to: &bytes)
        if let type {
            member("type")
            JSONText.appendString(type, to: &bytes)
        }
        if let userId {
            member("userId")
            bytes.append(contentsOf: String(userId).utf8)
        }
        bytes.append(UInt8(ascii: "}"))
    }
}
