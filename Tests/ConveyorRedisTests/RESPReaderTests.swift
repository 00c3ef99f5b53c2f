import CHiredis
import NIOCore
import Testing

@testable import ConveyorRedis

@Suite("RESP decoding and encoding")
struct RESPReaderTests {
    @Test("RESPValue.int: canonical decimal integers in bulk and simple strings, overflow rejected", arguments: [
        ("0", 0), ("7", 7), ("-7", -7), ("9223372036854775807", Int.max), ("-9223372036854775808", Int.min),
        ("9223372036854775808", nil), ("", nil), ("-", nil), ("1.5", nil), ("1e3", nil), (" 1", nil), ("+1", nil),
    ] as [(String, Int?)])
    func decimal(text: String, expected: Int?) {
        #expect(RESPValue.bulkString(ByteBuffer(string: text)).int == expected)
        #expect(RESPValue.simpleString(text).int == expected)
    }

    static let cases: [(String, RESPValue)] = [
        ("+OK\r\n", .simpleString("OK")),
        ("-ERR wrong number of arguments\r\n", .error("ERR wrong number of arguments")),
        (":-42\r\n", .integer(-42)),
        ("$5\r\nhello\r\n", .bulkString(ByteBuffer(string: "hello"))),
        ("$0\r\n\r\n", .bulkString(ByteBuffer())),
        ("$-1\r\n", .null),
        ("*-1\r\n", .null),
        ("*0\r\n", .array([])),
        (
            "*3\r\n:1\r\n*2\r\n$1\r\na\r\n$-1\r\n+x\r\n",
            .array([.integer(1), .array([.bulkString(ByteBuffer(string: "a")), .null]), .simpleString("x")])
        ),
    ]

    @Test("every reply type decodes", arguments: 0..<cases.count)
    func decodesWhole(index: Int) throws {
        let (wire, expected) = Self.cases[index]
        let reader = RESPReader()
        try reader.feed(ByteBuffer(string: wire))
        #expect(try reader.next() == expected)
        #expect(try reader.next() == nil)
    }

    @Test("bytes arriving one at a time produce the same replies, each exactly once")
    func decodesByteByByte() throws {
        let wire = Self.cases.map(\.0).joined()
        let reader = RESPReader()
        var decoded: [RESPValue] = []
        for byte in wire.utf8 {
            var buffer = ByteBuffer()
            buffer.writeInteger(byte)
            try reader.feed(buffer)
            while let value = try reader.next() { decoded.append(value) }
        }
        #expect(decoded == Self.cases.map(\.1))
    }

    @Test("a reply split at every position decodes")
    func decodesEverySplit() throws {
        let wire = Array("*2\r\n$3\r\nfoo\r\n*1\r\n:7\r\n".utf8)
        for split in 0...wire.count {
            let reader = RESPReader()
            try reader.feed(ByteBuffer(bytes: wire[..<split]))
            let early = try reader.next()
            try reader.feed(ByteBuffer(bytes: wire[split...]))
            let value = try early ?? reader.next()
            #expect(value == .array([.bulkString(ByteBuffer(string: "foo")), .array([.integer(7)])]), "split at \(split)")
        }
    }

    @Test("binary bulk strings keep NUL and CR LF bytes")
    func binarySafe() throws {
        let payload: [UInt8] = [0, 13, 10, 255, 0, 36]
        var wire = ByteBuffer(string: "$6\r\n")
        wire.writeBytes(payload)
        wire.writeString("\r\n")
        let reader = RESPReader()
        try reader.feed(wire)
        #expect(try reader.next()?.bytes == payload)
    }

    @Test("garbage is a protocol violation, not a crash")
    func protocolError() throws {
        let reader = RESPReader()
        #expect {
            try reader.feed(ByteBuffer(string: "!oops\r\n"))
            _ = try reader.next()
        } throws: { error in
            (error as? RedisError)?.code == .protocolViolation
        }
    }

    @Test("commands encode byte for byte as hiredis's redisFormatCommandArgv")
    func encoderMatchesHiredis() {
        let argumentLists: [[[UInt8]]] = [
            [Array("PING".utf8)],
            [Array("SET".utf8), Array("key".utf8), [0, 1, 2, 13, 10]],
            [Array("EVALSHA".utf8), Array("abc".utf8), Array("0".utf8), [], Array("é ünïcödé".utf8)],
            [Array("SET".utf8), Array("big".utf8), Array(repeating: 120, count: 70_000)],
        ]
        for arguments in argumentLists {
            let ours = RedisCommand(String(decoding: arguments[0], as: UTF8.self), argumentList: arguments.dropFirst())
            #expect(Array(ours.encoded.readableBytesView) == hiredisFormat(arguments))
        }
    }

    @Test("every argument type encodes byte for byte as hiredis's redisFormatCommandArgv")
    func argumentTypesMatchHiredis() {
        let integers = [0, 9, 10, -1, -10, 99, 100, 12_345_678, Int.max, Int.min]
        let longText = String(repeating: "ü", count: 40_000)
        let arguments: [any RESPArgument] =
            integers.map { $0 as any RESPArgument } + [
                "", "a", "small string", "é ünïcödé", longText, longText.dropFirst(3), Substring(""),
                ByteBuffer(bytes: [0, 13, 10, 255]), ByteBuffer(), [UInt8](), [UInt8](repeating: 7, count: 300), 1.5,
            ]
        let textual: [[UInt8]] =
            [Array("CMD".utf8)] + integers.map { Array(String($0).utf8) } + [
                [], Array("a".utf8), Array("small string".utf8), Array("é ünïcödé".utf8), Array(longText.utf8),
                Array(longText.dropFirst(3).utf8), [], [0, 13, 10, 255], [], [], [UInt8](repeating: 7, count: 300),
                Array("1.5".utf8),
            ]
        let ours = RedisCommand("CMD", arguments: arguments)
        #expect(Array(ours.encoded.readableBytesView) == hiredisFormat(textual))
        // Each argument alone too, so a wrong length shows which type wrote it.
        for (argument, bytes) in zip(arguments, textual.dropFirst()) {
            let single = RedisCommand("CMD", arguments: [argument])
            #expect(Array(single.encoded.readableBytesView) == hiredisFormat([Array("CMD".utf8), bytes]), "\(argument)")
        }
    }

    private func hiredisFormat(_ arguments: [[UInt8]]) -> [UInt8] {
        let copies = arguments.map { bytes -> UnsafeMutablePointer<CChar> in
            let pointer = UnsafeMutablePointer<CChar>.allocate(capacity: max(bytes.count, 1))
            bytes.withUnsafeBytes { raw in
                UnsafeMutableRawPointer(pointer).copyMemory(from: raw.baseAddress ?? UnsafeRawPointer(pointer), byteCount: bytes.count)
            }
            return pointer
        }
        defer { copies.forEach { $0.deallocate() } }
        var pointers: [UnsafePointer<CChar>?] = copies.map { UnsafePointer($0) }
        let lengths = arguments.map(\.count)
        var target: UnsafeMutablePointer<CChar>?
        let length = redisFormatCommandArgv(&target, Int32(arguments.count), &pointers, lengths)
        defer { redisFreeCommand(target) }
        return Array(UnsafeRawBufferPointer(start: target, count: Int(length)))
    }
}
