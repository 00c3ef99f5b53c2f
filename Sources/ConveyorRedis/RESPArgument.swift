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
    @inlinable
    mutating func writeRESPLength(prefix: UInt8, _ length: Int) {
        writeInteger(prefix)
        writeString(String(length))
        writeStaticString("\r\n")
    }

    @inlinable
    mutating func writeRESPBulk<Bytes: Sequence>(_ bytes: Bytes, count: Int) where Bytes.Element == UInt8 {
        writeRESPLength(prefix: UInt8(ascii: "$"), count)
        writeBytes(bytes)
        writeStaticString("\r\n")
    }
}

extension String: RESPArgument {
    @inlinable
    public func writeRESPBulkString(into buffer: inout ByteBuffer) {
        buffer.writeRESPBulk(utf8, count: utf8.count)
    }
}

extension Substring: RESPArgument {
    @inlinable
    public func writeRESPBulkString(into buffer: inout ByteBuffer) {
        buffer.writeRESPBulk(utf8, count: utf8.count)
    }
}

extension Int: RESPArgument {
    @inlinable
    public func writeRESPBulkString(into buffer: inout ByteBuffer) {
        String(self).writeRESPBulkString(into: &buffer)
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
        buffer.writeRESPLength(prefix: UInt8(ascii: "$"), readableBytes)
        buffer.writeImmutableBuffer(self)
        buffer.writeStaticString("\r\n")
    }
}

extension Array: RESPArgument where Element == UInt8 {
    @inlinable
    public func writeRESPBulkString(into buffer: inout ByteBuffer) {
        buffer.writeRESPBulk(self, count: count)
    }
}

/// One Redis command, already encoded in RESP and ready to write.
///
/// Encoding happens once, when the command is built, on the caller's task;
/// the event loop only copies finished bytes into the socket.
public struct RedisCommand: Sendable {
    /// The encoded request (`*<n>\r\n` followed by n bulk strings).
    public private(set) var encoded: ByteBuffer
    /// The command name, upper-cased, for errors and logs. Arguments are never
    /// kept in clear, so passwords and payloads cannot leak through errors.
    public let name: String

    /// Builds a command from its name and arguments.
    public init(_ name: String, _ arguments: any RESPArgument...) {
        self.init(name, arguments: arguments)
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
        self.encoded = buffer
        self.name = name.uppercased()
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
        self.encoded = buffer
        self.name = name.uppercased()
    }

    /// Whether the server may hold the reply back (`BLPOP`, `BZPOPMIN`, ...);
    /// such commands must run on a connection of their own.
    public var isBlocking: Bool {
        Self.blockingCommands.contains(name)
    }

    static let blockingCommands: Set<String> = [
        "BLPOP", "BRPOP", "BRPOPLPUSH", "BLMOVE", "BLMPOP", "BZPOPMIN", "BZPOPMAX", "BZMPOP", "WAIT",
    ]
}
