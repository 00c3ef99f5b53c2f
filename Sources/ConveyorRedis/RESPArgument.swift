import NIOCore

/// A value that can be sent to Redis as one argument of a command.
///
/// Arguments are written straight into the outgoing buffer as RESP bulk
/// strings (`$<length>\r\n<bytes>\r\n`), so they are binary-safe and need no
/// intermediate copy. The encoding is byte-for-byte the one hiredis's
/// `redisFormatCommandArgv` produces (a test checks this).
public protocol RESPArgument: Sendable {
    /// Writes this argument as one RESP bulk string.
    func writeRESPBulkString(into buffer: inout ByteBuffer)
}

extension ByteBuffer {
    // Each piece of RESP is written with one `writeWithUnsafeMutableBytes`: one
    // capacity check and one exclusivity-checked access of the storage, where
    // a `writeInteger` per byte made 5 of each per argument (a third of a bulk
    // `scheduleJobs` call's client CPU went there).

    /// Writes `<prefix><decimal length>\r\n` without building a `String`.
    @inlinable
    mutating func writeRESPLength(prefix: UInt8, _ length: Int) {
        writeWithUnsafeMutableBytes(minimumWritableBytes: 24) { out in
            out[0] = prefix
            let end = 1 + Self.putDecimal(length, into: out, at: 1)
            out[end] = UInt8(ascii: "\r")
            out[end + 1] = UInt8(ascii: "\n")
            return end + 2
        }
    }

    /// How many bytes `value` takes in decimal, with its sign.
    @inlinable
    static func decimalWidth(_ value: Int) -> Int {
        var width = value < 0 ? 2 : 1
        var rest = value.magnitude
        while rest >= 10 {
            rest /= 10
            width += 1
        }
        return width
    }

    /// Writes `value` in decimal at `start` (at most 20 bytes, with the sign);
    /// returns how many bytes it wrote.
    @inlinable
    static func putDecimal(_ value: Int, into out: UnsafeMutableRawBufferPointer, at start: Int) -> Int {
        let width = decimalWidth(value)
        if value < 0 { out[start] = UInt8(ascii: "-") }
        var magnitude = value.magnitude
        var index = start + width
        repeat {
            index -= 1
            out[index] = UInt8(truncatingIfNeeded: 48 &+ magnitude % 10)
            magnitude /= 10
        } while magnitude > 0
        return width
    }

    /// Writes `$<count>\r\n<bytes>\r\n` in one go.
    @inlinable
    mutating func writeRESPBulk(contiguous bytes: UnsafeRawBufferPointer) {
        let count = bytes.count
        writeWithUnsafeMutableBytes(minimumWritableBytes: count + 25) { out in
            out[0] = UInt8(ascii: "$")
            var index = 1 + Self.putDecimal(count, into: out, at: 1)
            out[index] = UInt8(ascii: "\r")
            out[index + 1] = UInt8(ascii: "\n")
            index += 2
            if count > 0 {
                (out.baseAddress! + index).copyMemory(from: bytes.baseAddress!, byteCount: count)
                index += count
            }
            out[index] = UInt8(ascii: "\r")
            out[index + 1] = UInt8(ascii: "\n")
            return index + 2
        }
    }

    @inlinable
    mutating func writeRESPBulk<Bytes: Sequence>(_ bytes: Bytes, count: Int) where Bytes.Element == UInt8 {
        let done: Void? = bytes.withContiguousStorageIfAvailable { writeRESPBulk(contiguous: UnsafeRawBufferPointer($0)) }
        guard done == nil else { return }
        writeRESPLength(prefix: UInt8(ascii: "$"), count)
        writeBytes(bytes)
        writeInteger(UInt16(0x0D0A))
    }

    /// A string as a bulk string, copying its UTF-8 storage in one go when it is contiguous.
    @inlinable
    mutating func writeRESPBulk(_ string: some StringProtocol) {
        let done: Void? = string.utf8.withContiguousStorageIfAvailable { writeRESPBulk(contiguous: UnsafeRawBufferPointer($0)) }
        if done == nil { writeRESPBulk(string.utf8, count: string.utf8.count) }
    }
}

extension String: RESPArgument {
    @inlinable
    public func writeRESPBulkString(into buffer: inout ByteBuffer) {
        buffer.writeRESPBulk(self)
    }
}

extension Substring: RESPArgument {
    @inlinable
    public func writeRESPBulkString(into buffer: inout ByteBuffer) {
        buffer.writeRESPBulk(self)
    }
}

extension Int: RESPArgument {
    @inlinable
    public func writeRESPBulkString(into buffer: inout ByteBuffer) {
        // `$<width>\r\n<digits>\r\n`, in one write.
        let width = ByteBuffer.decimalWidth(self)
        buffer.writeWithUnsafeMutableBytes(minimumWritableBytes: 32) { out in
            out[0] = UInt8(ascii: "$")
            var index = 1 + ByteBuffer.putDecimal(width, into: out, at: 1)
            out[index] = UInt8(ascii: "\r")
            out[index + 1] = UInt8(ascii: "\n")
            index += 2 + ByteBuffer.putDecimal(self, into: out, at: index + 2)
            out[index] = UInt8(ascii: "\r")
            out[index + 1] = UInt8(ascii: "\n")
            return index + 2
        }
    }
}

extension Double: RESPArgument {
    /// Writes the shortest representation that round-trips, which Redis parses.
    public func writeRESPBulkString(into buffer: inout ByteBuffer) {
        let text: String =
            if isInfinite { self < 0 ? "-inf" : "+inf" } else { "\(self)" }
        text.writeRESPBulkString(into: &buffer)
    }
}

extension ByteBuffer: RESPArgument {
    @inlinable
    public func writeRESPBulkString(into buffer: inout ByteBuffer) {
        withUnsafeReadableBytes { buffer.writeRESPBulk(contiguous: $0) }
    }
}

extension Array: RESPArgument where Element == UInt8 {
    @inlinable
    public func writeRESPBulkString(into buffer: inout ByteBuffer) {
        buffer.writeRESPBulk(self, count: count)
    }
}

/// Arguments encoded as they are appended, for long argument lists built in
/// a loop: each value is written straight into one buffer, with no
/// `[any RESPArgument]` (an existential box and its copies per value).
public struct RESPArgumentList: Sendable {
    @usableFromInline var storedCount = 0
    @usableFromInline var buffer: ByteBuffer

    /// How many arguments were appended.
    public var count: Int { storedCount }
    /// The arguments' RESP bulk strings, back to back.
    public var encoded: ByteBuffer { buffer }

    /// An empty list with room for about `byteCapacity` bytes.
    public init(byteCapacity: Int = 0) {
        buffer = ByteBuffer()
        if byteCapacity > 0 { buffer.reserveCapacity(byteCapacity) }
    }

    /// Appends one argument.
    @inlinable
    public mutating func append(_ argument: some RESPArgument) {
        argument.writeRESPBulkString(into: &buffer)
        storedCount += 1
    }
}

/// One Redis command, already encoded in RESP and ready to write.
///
/// Encoding happens once, when the command is built, on the caller's task;
/// the event loop only copies finished bytes into the socket.
public struct RedisCommand: Sendable {
    /// The encoded request (`*<n>\r\n` followed by n bulk strings).
    public private(set) var encoded: ByteBuffer
    /// The command name as given, for errors and logs. Arguments are never
    /// kept in clear, so passwords and payloads cannot leak through errors.
    public let name: String
    /// Whether the server may hold the reply back (`BLPOP`, `BZPOPMIN`, ...);
    /// such commands must run on a connection of their own.
    public let isBlocking: Bool
    /// The key whose hash slot decides which master of a Redis Cluster runs
    /// the command (its first key); `nil` sends it to any master, right for
    /// `PING`, `TIME` or `SCRIPT LOAD` and wrong for a keyed command.
    /// Ignored on a single node.
    public var routingKey: String? = nil

    /// Builds a command from its name and arguments.
    public init(_ name: String, _ arguments: any RESPArgument...) {
        self.init(name, arguments: arguments)
    }

    /// Builds a keyed command: `routingKey` (usually the first key among the
    /// arguments) routes it on a Redis Cluster.
    public init(_ name: String, routingKey: String?, arguments: [any RESPArgument]) {
        self.init(name, arguments: arguments)
        self.routingKey = routingKey
    }

    /// Builds a keyed command from variadic arguments; see ``init(_:routingKey:arguments:)``.
    public init(_ name: String, routingKey: String?, _ arguments: any RESPArgument...) {
        self.init(name, arguments: arguments)
        self.routingKey = routingKey
    }

    /// Builds a command from its name and an array of arguments.
    public init(_ name: String, arguments: [any RESPArgument]) {
        var buffer = ByteBuffer()
        buffer.reserveCapacity(32 + name.utf8.count + arguments.count * 16)
        buffer.writeRESPLength(prefix: UInt8(ascii: "*"), arguments.count + 1)
        name.writeRESPBulkString(into: &buffer)
        for argument in arguments {
            argument.writeRESPBulkString(into: &buffer)
        }
        self.init(encoded: buffer, name: name)
    }

    /// Wraps bytes already encoded as one RESP command.
    init(encoded: ByteBuffer, name: String) {
        self.encoded = encoded
        self.name = name
        self.isBlocking = Self.isBlockingCommand(name)
    }

    /// Builds a command whose arguments are all of one concrete type, without
    /// existential boxing (the fast path for long argument lists).
    public init<Arguments: Collection>(_ name: String, argumentList: Arguments)
    where Arguments.Element: RESPArgument {
        var buffer = ByteBuffer()
        buffer.reserveCapacity(32 + name.utf8.count + argumentList.count * 16)
        buffer.writeRESPLength(prefix: UInt8(ascii: "*"), argumentList.count + 1)
        name.writeRESPBulkString(into: &buffer)
        for argument in argumentList {
            argument.writeRESPBulkString(into: &buffer)
        }
        self.init(encoded: buffer, name: name)
    }

    /// Decided once per command; only names starting with B or W can block,
    /// so most commands skip the upper-casing and the set lookup.
    static func isBlockingCommand(_ name: String) -> Bool {
        guard let first = name.utf8.first, first | 0x20 == UInt8(ascii: "b") || first | 0x20 == UInt8(ascii: "w") else {
            return false
        }
        return blockingCommands.contains(name.uppercased())
    }

    static let blockingCommands: Set<String> = [
        "BLPOP", "BRPOP", "BRPOPLPUSH", "BLMOVE", "BLMPOP", "BZPOPMIN", "BZPOPMAX", "BZMPOP", "WAIT",
    ]
}
