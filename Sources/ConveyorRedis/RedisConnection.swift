import Logging
import NIOCore
import NIOPosix
import NIOSSL

#if canImport(Glibc)
import Glibc
#elseif canImport(Musl)
import Musl
#elseif canImport(Darwin)
import Darwin
#endif

/// One connection to a Redis server, with any number of commands in flight.
///
/// Replies are matched to commands in order, so concurrent callers pipeline
/// naturally. Most code uses ``RedisClient``, which pools connections and
/// reconnects; use a connection directly for blocking commands
/// (``RedisClient/withDedicatedConnection(_:)``).
public final class RedisConnection: Sendable {
    let channel: any Channel
    /// Default reply timeout for commands sent on this connection.
    public let commandTimeout: Duration
    /// The channel's event loop as a task executor: where a reply resumes its
    /// awaiting task (see `submit`).
    private let replyExecutor: EventLoopTaskExecutor

    private init(channel: any Channel, commandTimeout: Duration) {
        self.channel = channel
        self.commandTimeout = commandTimeout
        self.replyExecutor = EventLoopTaskExecutor(eventLoop: channel.eventLoop)
    }

    /// Whether the socket is still open.
    public var isActive: Bool { channel.isActive }

    /// Connects, authenticates and selects the database.
    ///
    /// - Throws: ``RedisError`` with code `connectionRefused`, `hostNotFound`,
    ///   `connectionFailed`, `authenticationFailed` or `server` (a failing `SELECT`);
    ///   for `rediss://` also `tlsConfiguration` (unusable files), `tlsVerificationFailed`
    ///   (the server's certificate) or `tlsHandshakeFailed` (e.g. a client certificate refused).
    public static func connect(
        configuration: RedisConfiguration,
        eventLoop: any EventLoop = MultiThreadedEventLoopGroup.singleton.any(),
        logger: Logger = Logger(label: "conveyor.redis")
    ) async throws(RedisError) -> RedisConnection {
        // TLS: the context (PEM files read off the event loop) and a promise
        // completed by the handshake.
        // A `let`, so the channel initializer (a `@Sendable` closure) may capture it.
        let tls: RedisTLS.Setup?
        if case .enabled(let settings) = configuration.tls {
            tls = try await RedisTLS.Setup(
                settings: settings, endpoint: configuration.endpoint, handshakeTimeout: TimeAmount(configuration.connectTimeout),
                handshakeDone: eventLoop.makePromise(of: Void.self)
            )
        } else {
            tls = nil
        }
        let bootstrap = ClientBootstrap(group: eventLoop)
            .connectTimeout(TimeAmount(configuration.connectTimeout))
            .channelOption(.socketOption(.so_keepalive), value: 1)
            .channelInitializer { channel in
                channel.eventLoop.makeCompletedFuture {
                    if let tls {
                        try tls.addHandlers(to: channel.pipeline.syncOperations)
                    } else {
                        try channel.pipeline.syncOperations.addHandler(RedisChannelHandler())
                    }
                }
            }
        let channel: any Channel
        do {
            switch configuration.endpoint {
            case .tcp(let host, let port):
                channel = try await bootstrap
                    .channelOption(.socketOption(.tcp_nodelay), value: 1)
                    .connect(host: host, port: port).get()
            case .unixSocket(let path):
                channel = try await bootstrap.connect(unixDomainSocketPath: path).get()
            case .cluster:
                // RedisClient routes cluster commands to per-node connections.
                throw RedisError(.invalidURL, message: "a single connection needs one node's endpoint, not a cluster")
            }
        } catch {
            tls?.handshakeDone.fail(RedisError(.connectionFailed, message: "not connected"))
            throw classifyConnectError(error, endpoint: configuration.endpoint)
        }
        if let tls {
            do {
                try await tls.handshakeDone.futureResult.get()
            } catch {
                try? await channel.close()
                throw redisError(error)
            }
        }
        let connection = RedisConnection(channel: channel, commandTimeout: configuration.commandTimeout)
        do {
            try await connection.handshake(configuration)
        } catch {
            try? await channel.close()
            // A server checking client certificates rejects after the client's
            // TLS 1.3 handshake is done: the first reply fails, maybe only as
            // "connection closed"; the TLS alert seen meanwhile says why.
            throw tls?.firstFailure ?? error
        }
        logger.debug("redis connected", metadata: ["conveyor.redis.endpoint": "\(configuration.endpoint)"])
        return connection
    }

    private func handshake(_ configuration: RedisConfiguration) async throws(RedisError) {
        var commands: [RedisCommand] = []
        if let password = configuration.password {
            if let username = configuration.username {
                commands.append(RedisCommand("AUTH", username, password))
            } else {
                commands.append(RedisCommand("AUTH", password))
            }
        }
        if configuration.database != 0 {
            commands.append(RedisCommand("SELECT", configuration.database))
        }
        if let name = configuration.clientName {
            commands.append(RedisCommand("CLIENT", "SETNAME", name))
        }
        // A PING last surfaces NOAUTH when the server wants a password we lack.
        commands.append(RedisCommand("PING"))
        let replies = try await pipeline(commands, timeout: configuration.connectTimeout)
        for (command, reply) in zip(commands, replies) {
            guard case .error(let message) = reply else { continue }
            if command.name == "AUTH" || message.hasPrefix("NOAUTH") || message.hasPrefix("WRONGPASS") {
                // The server's text never contains the password; still, say only what happened.
                throw RedisError(
                    .authenticationFailed,
                    message: message.hasPrefix("NOAUTH")
                        ? "the server requires a password and none was configured"
                        : "the server rejected the credentials (\(message.split(separator: " ").first ?? "ERR"))"
                )
            }
            throw RedisError.server(message, command: command.name)
        }
    }

    /// Sends one command and returns its reply.
    ///
    /// - Parameter timeout: How long to wait for the reply; defaults to the
    ///   configuration's `commandTimeout`. For blocking commands pass more than
    ///   the block time. When it passes the connection is closed, since later
    ///   replies could no longer be matched.
    /// - Throws: ``RedisError``; an error reply throws with code `server`.
    nonisolated(nonsending) public func send(_ command: RedisCommand, timeout: Duration? = nil) async throws(RedisError) -> RESPValue {
        let reply = try await sendReturningErrors(command, timeout: timeout)
        if case .error(let message) = reply {
            throw RedisError.server(message, command: command.name)
        }
        return reply
    }

    /// Sends one command; an error reply is returned as a value.
    nonisolated(nonsending) func sendReturningErrors(_ command: RedisCommand, timeout: Duration? = nil) async throws(RedisError) -> RESPValue {
        try await submit(.one(command.encoded), timeout: timeout) { .single($0) }
    }

    /// Sends many commands in one write and returns their replies in order.
    ///
    /// Error replies are returned as ``RESPValue/error(_:)`` values, so one
    /// failing command does not hide the others' results.
    nonisolated(nonsending) public func pipeline(_ commands: [RedisCommand], timeout: Duration? = nil) async throws(RedisError) -> [RESPValue] {
        guard !commands.isEmpty else { return [] }
        // The commands' own buffers are written one by one and flushed once:
        // one system call, no copy into a combined buffer.
        let count = commands.count
        return try await submit(count == 1 ? .one(commands[0].encoded) : .many(commands.map(\.encoded)), timeout: timeout) {
            .batch($0, count: count)
        }
    }

    /// Hands a request to the event loop and awaits its reply.
    ///
    /// From a task off the loop (the cooperative pool) this is one `execute`: the
    /// promise, the callback that resumes the caller and the write are all made on
    /// the loop. Making the promise here and awaiting `futureResult.get()` instead
    /// costs up to three (`writeAndFlush`, and a `whenComplete`/`whenFailure` each
    /// registered from off the loop), each of which may wake the loop's thread.
    nonisolated(nonsending) private func submit<Value: Sendable>(
        _ payload: RedisRequest.Payload, timeout: Duration?,
        reply: @escaping @Sendable (EventLoopPromise<Value>) -> RedisRequest.Reply
    ) async throws(RedisError) -> Value {
        let eventLoop = channel.eventLoop
        let deadline = NIODeadline.now() + TimeAmount(timeout ?? commandTimeout)
        do {
            if eventLoop.inEventLoop {
                let promise = eventLoop.makePromise(of: Value.self)
                write(RedisRequest(payload: payload, reply: reply(promise), deadline: deadline), failing: promise)
                return try await promise.futureResult.get()
            }
            // A resumed continuation is enqueued on the generic executor (or the
            // task's preferred one): right for a nonisolated caller, which goes on
            // there. An actor's caller (the main actor, say) would have a
            // cooperative-pool thread woken only to hop on to the actor; with the
            // loop as the task's preferred executor while it waits, the resume is
            // queued on the loop, which is running anyway, and hops from there:
            // one thread wake-up fewer per call. Only this resume runs on the loop
            // (the scope ends right after it), so no caller code can block it.
            if await Self.callerIsNonisolated() {
                return try await withUnsafeThrowingContinuation { self.start(payload, deadline: deadline, reply: reply, resuming: $0) }
            }
            return try await withTaskExecutorPreference(replyExecutor) { () async throws(any Error) -> Value in
                try await withUnsafeThrowingContinuation { self.start(payload, deadline: deadline, reply: reply, resuming: $0) }
            }
        } catch {
            throw Self.redisError(error)
        }
    }

    /// Whether the caller runs on no actor (the cooperative pool or its task's
    /// preferred executor). Its own function, and through a `let`: `#isolation`
    /// inside `submit` crashes Swift 6.3's optimizer, and `#isolation == nil`
    /// its debug build.
    nonisolated(nonsending) private static func callerIsNonisolated() async -> Bool {
        let isolation = #isolation
        return isolation == nil
    }

    /// From off the loop: on the loop, makes the reply promise, has it resume
    /// `continuation`, and writes the request.
    private func start<Value: Sendable>(
        _ payload: RedisRequest.Payload, deadline: NIODeadline,
        reply: @escaping @Sendable (EventLoopPromise<Value>) -> RedisRequest.Reply,
        resuming continuation: UnsafeContinuation<Value, any Error>
    ) {
        let eventLoop = channel.eventLoop
        eventLoop.execute {
            let promise = eventLoop.makePromise(of: Value.self)
            promise.futureResult.whenComplete { continuation.resume(with: $0) }
            self.write(RedisRequest(payload: payload, reply: reply(promise), deadline: deadline), failing: promise)
        }
    }

    /// Writes one command without waiting for its reply, which the returned
    /// future delivers (error replies included, as values).
    ///
    /// For callers that keep writing while earlier commands run: each command
    /// is its own request, so replies match even when other callers' commands
    /// are written in between. Commands enqueued by one task are written in
    /// the order enqueued (the loop runs its tasks in order).
    func enqueue(_ command: RedisCommand, timeout: Duration? = nil) -> EventLoopFuture<RESPValue> {
        let eventLoop = channel.eventLoop
        let deadline = NIODeadline.now() + TimeAmount(timeout ?? commandTimeout)
        let promise = eventLoop.makePromise(of: RESPValue.self)
        let request = RedisRequest(payload: .one(command.encoded), reply: .single(promise), deadline: deadline)
        if eventLoop.inEventLoop {
            write(request, failing: promise)
        } else {
            eventLoop.execute { self.write(request, failing: promise) }
        }
        return promise.futureResult
    }

    /// Writes a request; if the write fails before the handler took the request
    /// (the channel closed and its pipeline was torn down, which a TLS server
    /// rejecting the client right after the handshake makes likely), the reply
    /// promise fails too instead of waiting forever. A promise completed twice
    /// keeps its first result, so the usual path is unaffected.
    private func write<Value>(_ request: RedisRequest, failing reply: EventLoopPromise<Value>) {
        let written = channel.eventLoop.makePromise(of: Void.self)
        written.futureResult.whenFailure { error in
            reply.fail(error as? RedisError ?? RedisError(.connectionClosed, message: "connection closed", underlying: error))
        }
        channel.writeAndFlush(request, promise: written)
    }

    /// Closes the connection; commands in flight fail with `connectionClosed`.
    public func close() async {
        try? await channel.close()
    }

    static func redisError(_ error: any Error) -> RedisError {
        error as? RedisError ?? RedisError(.connectionClosed, message: "connection failed", underlying: error)
    }

    static func classifyConnectError(_ error: any Error, endpoint: RedisConfiguration.Endpoint) -> RedisError {
        if let error = error as? RedisError { return error }
        if let connectionError = error as? NIOConnectionError {
            if connectionError.connectionErrors.isEmpty,
                connectionError.dnsAError != nil || connectionError.dnsAAAAError != nil
            {
                return RedisError(.hostNotFound, message: "cannot resolve host of \(endpoint)", underlying: error)
            }
            if connectionError.connectionErrors.contains(where: { isRefused($0.error) }) {
                return RedisError(.connectionRefused, message: "connection refused by \(endpoint)", underlying: error)
            }
        }
        if error is SocketAddressError {
            return RedisError(.hostNotFound, message: "cannot resolve host of \(endpoint)", underlying: error)
        }
        if isRefused(error) {
            return RedisError(.connectionRefused, message: "connection refused by \(endpoint)", underlying: error)
        }
        if error is ChannelError, case ChannelError.connectTimeout = error {
            return RedisError(.connectionFailed, message: "timed out connecting to \(endpoint)", underlying: error)
        }
        return RedisError(.connectionFailed, message: "cannot connect to \(endpoint)", underlying: error)
    }

    private static func isRefused(_ error: any Error) -> Bool {
        guard let ioError = error as? IOError else { return false }
        return ioError.errnoCode == ECONNREFUSED || ioError.errnoCode == ENOENT
    }
}
