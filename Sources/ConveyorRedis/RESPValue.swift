import NIOCore

/// A reply from a Redis server, decoded from RESP2.
///
/// `error` is a *value* here, as the server sent it: inside a pipeline or a
/// `MULTI` block one command may fail while the others succeed. The
/// single-command APIs of ``RedisClient`` turn a top-level error reply into a
/// thrown ``RedisError`` with code ``RedisError/Code/server``.
public enum RESPValue: Sendable, Hashable {
    /// A status reply such as `+OK`.
    case simpleString(String)
    /// An error reply such as `-ERR unknown command`.
    case error(String)
    /// An integer reply.
    case integer(Int)
    /// A binary-safe bulk string.
    case bulkString(ByteBuffer)
    /// A null bulk string or null array (`$-1`, `*-1`).
    case null
    /// An array reply; elements may themselves be arrays.
    case array([RESPValue])
}

extension RESPValue {
    /// The reply as UTF-8 text, for simple and bulk strings and integers.
    public var string: String? {
        switch self {
        case .simpleString(let text): text
        case .bulkString(let buffer): String(buffer: buffer)
        case .integer(let value): String(value)
        case .error, .null, .array: nil
        }
    }

    /// The reply as an integer, for integer replies and strings holding a
    /// canonical decimal integer (optional leading `-`, no `+`, no spaces).
    public var int: Int? {
        switch self {
        case .integer(let value): value
        case .bulkString(let buffer): Self.decimal(buffer.readableBytesView)
        case .simpleString(let text): Self.decimal(text.utf8)
        case .error, .null, .array: nil
        }
    }

    /// Parses decimal digits straight from the bytes: a job record's integer
    /// fields are read this way on every claim, without a `String` each.
    static func decimal(_ bytes: some Collection<UInt8>) -> Int? {
        guard !bytes.isEmpty, bytes.count <= 20 else { return nil }
        var value = 0
        var negative = false
        for (offset, byte) in bytes.enumerated() {
            if offset == 0 && byte == UInt8(ascii: "-") && bytes.count > 1 {
                negative = true
                continue
            }
            guard byte >= UInt8(ascii: "0"), byte <= UInt8(ascii: "9") else { return nil }
            let digit = Int(byte &- UInt8(ascii: "0"))
            let (times10, overflow1) = value.multipliedReportingOverflow(by: 10)
            let (sum, overflow2) = negative ? times10.subtractingReportingOverflow(digit) : times10.addingReportingOverflow(digit)
            guard !overflow1, !overflow2 else { return nil }
            value = sum
        }
        return value
    }

    /// The reply's elements, for array replies.
    public var array: [RESPValue]? {
        if case .array(let elements) = self { return elements }
        return nil
    }

    /// The bytes of a bulk or simple string.
    public var bytes: [UInt8]? {
        switch self {
        case .bulkString(let buffer): Array(buffer.readableBytesView)
        case .simpleString(let text): Array(text.utf8)
        default: nil
        }
    }

    /// Whether the reply is `null`.
    public var isNull: Bool {
        if case .null = self { return true }
        return false
    }
}

extension RESPValue: CustomStringConvertible {
    public var description: String {
        switch self {
        case .simpleString(let text): "+\(text)"
        case .error(let message): "-\(message)"
        case .integer(let value): ":\(value)"
        case .bulkString(let buffer): "$\(buffer.readableBytes) bytes"
        case .null: "(null)"
        case .array(let elements): "[\(elements.map(\.description).joined(separator: ", "))]"
        }
    }
}
