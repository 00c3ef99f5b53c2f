import NIOCore

/// One request written to the socket: the encoded bytes of one or more
/// commands and where their replies go.
struct RedisRequest: Sendable {
    /// The encoded commands: one buffer, or one per pipelined command.
    enum Payload: Sendable {
        case one(ByteBuffer)
        case many([ByteBuffer])
    }

    enum Reply: Sendable {
        /// One command; its reply, error replies included, completes the promise.
        case single(EventLoopPromise<RESPValue>)
        /// `count` pipelined commands; the promise gets all replies in order.
        case batch(EventLoopPromise<[RESPValue]>, count: Int)
    }
    var payload: Payload
    var reply: Reply
    /// When the last reply must have arrived.
    var deadline: NIODeadline
}

/// Matches replies to requests in order (RESP is strictly FIFO per connection)
/// and fails everything in flight when the connection breaks or a reply is late.
///
/// All state is touched only on the channel's event loop. A single timer,
/// armed for the oldest request's deadline, enforces every command timeout:
/// replies arriving never touch the timer, so pipelined traffic pays nothing
/// for timeouts.
final class RedisChannelHandler: ChannelDuplexHandler {
    typealias InboundIn = ByteBuffer
    typealias OutboundIn = RedisRequest
    typealias OutboundOut = ByteBuffer

    private struct InFlight {
        var reply: RedisRequest.Reply
        var deadline: NIODeadline
    }

    private let reader = RESPReader()
    private var inFlight = CircularBuffer<InFlight>(initialCapacity: 64)
    /// Replies so far of the head request when it is a batch. Only the head
    /// ever collects (replies are FIFO), so one array serves all batches.
    private var headReplies: [RESPValue] = []
    private var timeoutTimer: Scheduled<Void>?
    private var armedDeadline: NIODeadline = .distantFuture
    private var closedError: RedisError?
    private var context: ChannelHandlerContext?
    /// Set while a flush is queued on the loop; writes until it runs join it.
    private var flushQueued = false
    /// Names transport failures (TLS alerts after the handshake, e.g. a server
    /// rejecting the client certificate) more precisely than "connection failed".
    private let classifyError: ((any Error) -> RedisError?)?

    init(classifyError: ((any Error) -> RedisError?)? = nil) {
        self.classifyError = classifyError
    }

    func handlerAdded(context: ChannelHandlerContext) {
        self.context = context
    }

    func handlerRemoved(context: ChannelHandlerContext) {
        failAll(RedisError(.connectionClosed, message: "connection handler removed"))
        self.context = nil
    }

    func write(context: ChannelHandlerContext, data: NIOAny, promise: EventLoopPromise<Void>?) {
        let request = unwrapOutboundIn(data)
        if let closedError {
            fail(request.reply, closedError)
            promise?.fail(closedError)
            return
        }
        inFlight.append(InFlight(reply: request.reply, deadline: request.deadline))
        // Usually deadlines only grow and the armed timer stays; a shorter
        // timeout than the one armed for moves the timer forward.
        if timeoutTimer == nil || request.deadline < armedDeadline {
            armTimer(context: context, for: request.deadline)
        }
        switch request.payload {
        case .one(let bytes):
            context.write(wrapOutboundOut(bytes), promise: promise)
        case .many(let buffers):
            for bytes in buffers.dropLast() {
                context.write(wrapOutboundOut(bytes), promise: nil)
            }
            context.write(wrapOutboundOut(buffers[buffers.count - 1]), promise: promise)
        }
    }

    /// Defers the flush to a task queued behind the loop's pending ones, so the
    /// requests handed to the loop together (the commands of many concurrent
    /// callers, a reply's resumed callers writing again) leave in one write
    /// system call instead of one each. A write on loopback also runs the
    /// receiver's side of TCP: one per job's command was ≈ 15 % of a busy
    /// worker's CPU (docs/benchmarks.md).
    func flush(context: ChannelHandlerContext) {
        guard !flushQueued else { return }
        flushQueued = true
        context.eventLoop.assumeIsolated().execute {
            self.flushQueued = false
            // Removed meanwhile (the channel closed): nothing left to flush.
            guard let context = self.context else { return }
            context.flush()
        }
    }

    func channelRead(context: ChannelHandlerContext, data: NIOAny) {
        do {
            try reader.feed(unwrapInboundIn(data))
            while let value = try reader.next() {
                deliver(value)
            }
        } catch {
            failAll(error)
            context.close(promise: nil)
        }
    }

    func channelInactive(context: ChannelHandlerContext) {
        failAll(RedisError(.connectionClosed, message: "connection closed by server"))
        context.fireChannelInactive()
    }

    func errorCaught(context: ChannelHandlerContext, error: any Error) {
        failAll(classifyError?(error) ?? RedisError(.connectionClosed, message: "connection failed", underlying: error))
        context.close(promise: nil)
    }

    private func deliver(_ value: RESPValue) {
        guard let head = inFlight.first else {
            // A reply nobody asked for means the stream is out of step; no later
            // reply could be trusted.
            failAll(RedisError(.protocolViolation, message: "unexpected reply with no command in flight"))
            context?.close(promise: nil)
            return
        }
        switch head.reply {
        case .single(let promise):
            inFlight.removeFirst()
            promise.succeed(value)
        case .batch(let promise, let count):
            if headReplies.isEmpty { headReplies.reserveCapacity(count) }
            headReplies.append(value)
            if headReplies.count == count {
                inFlight.removeFirst()
                let replies = headReplies
                headReplies = []
                promise.succeed(replies)
            }
        }
    }

    private func armTimer(context: ChannelHandlerContext, for deadline: NIODeadline) {
        timeoutTimer?.cancel()
        armedDeadline = deadline
        timeoutTimer = context.eventLoop.assumeIsolated().scheduleTask(deadline: deadline) {
            self.timerFired()
        }
    }

    private func timerFired() {
        timeoutTimer = nil
        armedDeadline = .distantFuture
        guard let context else { return }
        let now = NIODeadline.now()
        // Any overdue request, not only the head: a short-timeout command may
        // be queued behind a long one.
        if inFlight.contains(where: { $0.deadline <= now }) {
            failAll(RedisError(.timeout, message: "no reply within the command timeout; connection closed"))
            context.close(promise: nil)
        } else if let earliest = inFlight.lazy.map(\.deadline).min() {
            armTimer(context: context, for: earliest)
        }
    }

    private func failAll(_ error: any Error) {
        let redisError = error as? RedisError
            ?? RedisError(.connectionClosed, message: "connection failed", underlying: error)
        if closedError == nil { closedError = redisError }
        timeoutTimer?.cancel()
        timeoutTimer = nil
        headReplies = []
        while let entry = inFlight.popFirst() {
            fail(entry.reply, redisError)
        }
    }

    private func fail(_ reply: RedisRequest.Reply, _ error: RedisError) {
        switch reply {
        case .single(let promise): promise.fail(error)
        case .batch(let promise, _): promise.fail(error)
        }
    }
}
