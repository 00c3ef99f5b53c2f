import NIOCore
import NIOEmbedded
import Testing

@testable import ConveyorRedis

@Suite("Redis channel handler")
struct RedisChannelHandlerTests {
    /// Counts the flushes that pass it on their way to the socket.
    final class FlushCounter: ChannelOutboundHandler {
        typealias OutboundIn = ByteBuffer
        var flushes = 0

        func flush(context: ChannelHandlerContext) {
            flushes += 1
            context.flush()
        }
    }

    private static func ping(_ loop: EmbeddedEventLoop) -> (RedisRequest, EventLoopFuture<RESPValue>) {
        let promise = loop.makePromise(of: RESPValue.self)
        let request = RedisRequest(payload: .one(RedisCommand("PING").encoded), reply: .single(promise), deadline: .now() + .seconds(60))
        return (request, promise.futureResult)
    }

    @Test("requests written in one pass of the loop leave in one flush, and their replies still match in order")
    func coalescesFlushes() throws {
        let counter = FlushCounter()
        let channel = EmbeddedChannel(handlers: [counter, RedisChannelHandler()])
        let loop = channel.embeddedEventLoop
        var replies: [EventLoopFuture<RESPValue>] = []
        for _ in 0..<3 {
            let (request, reply) = Self.ping(loop)
            channel.writeAndFlush(request, promise: nil)
            replies.append(reply)
        }
        // Nothing has reached the socket yet: the flush waits behind the loop's tasks.
        #expect(counter.flushes == 0)
        #expect(try channel.readOutbound(as: ByteBuffer.self) == nil)

        loop.run()
        #expect(counter.flushes == 1)
        var written = ByteBuffer()
        while var part = try channel.readOutbound(as: ByteBuffer.self) { written.writeBuffer(&part) }
        #expect(written == ByteBuffer(string: String(repeating: "*1\r\n$4\r\nPING\r\n", count: 3)))

        try channel.writeInbound(ByteBuffer(string: "+A\r\n+B\r\n+C\r\n"))
        #expect(try replies.map { try $0.wait() } == [.simpleString("A"), .simpleString("B"), .simpleString("C")])

        // A later request gets a flush of its own.
        let (request, _) = Self.ping(loop)
        channel.writeAndFlush(request, promise: nil)
        loop.run()
        #expect(counter.flushes == 2)
        _ = try channel.finish(acceptAlreadyClosed: true)
    }

    @Test("a request whose flush was still queued when the channel closed fails instead of waiting")
    func closedBeforeFlush() throws {
        let channel = EmbeddedChannel(handlers: [RedisChannelHandler()])
        let loop = channel.embeddedEventLoop
        let (request, reply) = Self.ping(loop)
        channel.writeAndFlush(request, promise: nil)
        _ = try channel.finish(acceptAlreadyClosed: true)
        loop.run()
        #expect(throws: RedisError.self) { try reply.wait() }
    }
}
