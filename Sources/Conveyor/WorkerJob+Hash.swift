import Foundation
import NIOCore

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
                switch JobField.named(key.readableBytesView) {
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
                case .maxAttempts?: autoRescheduleOnFailureMaxAttempts = reply.int
                case .backoffMaxDelay?: autoRescheduleOnFailureBackoff = reply.int.map { .exponential(maxDelay: .milliseconds($0)) } ?? .fixed
                case .failedRetention?: failedRetention = reply.int
                case .traceContext?: traceContext = String(buffer: value)
                case .type?, .userId?, .data?, .result?, .attempt?, .workerId?, .interruptions?, .releases?:
                    continue  // one-letter fields above; ic and rl are for the scripts only
                case nil:
                    // d2, d3, … and r2, r3, …: later parts of a split value.
                    let name = String(buffer: key)
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

extension JobField {
    /// The field a hash field name names, read from its bytes: every field of
    /// every job hash read (claims, the archiver) goes through this, and a
    /// `String` plus `init(rawValue:)` per field cost a visible share of a
    /// worker's CPU. `nil` for any other name (`d2`, `r3`, a foreign field).
    static func named(_ name: ByteBufferView) -> JobField? {
        guard let code = code(of: name) else { return nil }
        return byCode[code]
    }

    /// The name's length and its (at most 7) bytes in one integer: equal for
    /// equal names only.
    private static func code<Bytes: Collection<UInt8>>(of name: Bytes) -> Int? {
        let count = name.count
        guard count >= 1, count <= 7 else { return nil }
        var code = count
        for byte in name { code = code << 8 | Int(byte) }
        return code
    }

    private static let byCode: [Int: JobField] = Dictionary(
        uniqueKeysWithValues: allCases.map { field in
            guard let code = code(of: field.rawValue.utf8) else { preconditionFailure("JobField \(field) is longer than 7 bytes") }
            return (code, field)
        }
    )
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
