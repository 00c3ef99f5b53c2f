import Logging
import NIOCore
import NIOPosix
import ServiceLifecycle
import Synchronization

/// A pooled, reconnecting Redis client.
///
/// Commands are spread round-robin over ``RedisConfiguration/poolSize``
/// connections and pipelined on each, so many tasks can share one client.
/// Connections open lazily. When one breaks, the next command on it
/// reconnects; after a failed attempt the slot waits an exponentially growing,
/// jittered delay, and commands arriving during that wait fail at once with
/// ``RedisError/Code/connectionClosed`` instead of hanging.
///
/// Blocking commands (`BLPOP`, `BZPOPMIN`, ...) are sent on dedicated
/// connections so they never hold up other commands.
///
/// As a `Service`, ``run()`` keeps the client alive until graceful shutdown
/// and then closes every connection.
///
/// With a ``RedisConfiguration/Endpoint/cluster(seeds:)`` endpoint the client
/// talks to a Redis Cluster: it reads the topology (`CLUSTER SHARDS`, or
/// `CLUSTER SLOTS` before Redis 7) from the seeds, keeps one such pool per
/// master, sends each command to the master owning its
/// ``RedisCommand/routingKey``'s slot and each script call to the master of
/// its keys' slot, follows `MOVED` and `ASK` (at most 5 times), retries
/// `TRYAGAIN`/`CLUSTERDOWN` and unreachable masters within the command
/// timeout, and re-reads the topology after a `MOVED`, a failed node, or
/// every 30 seconds (one discovery at a time).
public final class RedisClient: Sendable, Service {
    /// The configuration the client was created with.
    public let configuration: RedisConfiguration
    let eventLoopGroup: any EventLoopGroup
    let logger: Logger
    /// Runs tasks on the event loop of the pool's first connection, so that a
    /// task preferring it sends and receives without thread hops
    /// (``EventLoopTaskExecutor``).
    public let taskExecutor: EventLoopTaskExecutor

    private enum SlotState {
        case idle(failures: Int, retryAt: NIODeadline, lastError: RedisError?)
        case connecting(EventLoopFuture<RedisConnection>)
        case connected(RedisConnection, failures: Int)
    }

    private struct State {
        var slots: [SlotState]
        var nextSlot = 0
        var dedicated: [RedisConnection] = []
        var isShutDown = false
    }

    private let state: Mutex<State>
    /// Set for a cluster endpoint; the single-node path never touches it.
    let router: RedisClusterRouter?

    /// Creates a client; no connection is opened until the first command.
    /// - Parameters:
    ///   - configuration: Where the server is and how to behave.
    ///   - eventLoopGroup: The NIO event loops that own the sockets.
    ///   - logger: Receives connection events at `.debug`; never a password.
    public init(
        configuration: RedisConfiguration,
        eventLoopGroup: any EventLoopGroup = MultiThreadedEventLoopGroup.singleton,
        logger: Logger = Logger(label: "conveyor.redis")
    ) {
        self.configuration = configuration
        self.eventLoopGroup = eventLoopGroup
        self.logger = logger
        self.taskExecutor = EventLoopTaskExecutor(eventLoop: eventLoopGroup.next())
        let size = max(1, configuration.poolSize)
        self.state = Mutex(State(slots: Array(repeating: .idle(failures: 0, retryAt: .distantPast, lastError: nil), count: size)))
        if case .cluster(let seeds) = configuration.endpoint {
            router = RedisClusterRouter(configuration: configuration, seeds: seeds, eventLoopGroup: eventLoopGroup, logger: logger)
        } else {
            router = nil
        }
    }

    /// Whether the client talks to a Redis Cluster.
    public var isCluster: Bool { router != nil }

    /// The cluster's masters with their slot ranges, as last discovered (read
    /// from the cluster first if needed). On a single node: that node, owning
    /// every slot, so callers can fan out the same way in both modes.
    public func clusterMasters() async throws(RedisError) -> [RedisClusterNode] {
        if let router { return try await router.masters() }
        return [RedisClusterNode(id: configuration.endpoint.description, endpoint: configuration.endpoint, slotRanges: [0...16_383])]
    }

    /// Sends a command to one master, for per-node commands (`SCAN`, `INFO`,
    /// `DBSIZE`); redirects are not followed. On a single node it is ``send(_:timeout:)``.
    @discardableResult
    public func send(_ command: RedisCommand, to node: RedisClusterNode, timeout: Duration? = nil) async throws(RedisError) -> RESPValue {
        if let router { return try await router.send(command, to: node, timeout: timeout) }
        return try await send(command, timeout: timeout)
    }

    /// Runs until graceful shutdown or cancellation, then closes all connections.
    public func run() async throws {
        try? await gracefulShutdown()
        await shutdown()
    }

    /// Closes every connection; later commands fail with `poolShutDown`.
    public func shutdown() async {
        await router?.shutdown()
        let connections: [RedisConnection] = state.withLock { state in
            state.isShutDown = true
            var open = state.dedicated
            state.dedicated.removeAll()
            for (index, slot) in state.slots.enumerated() {
                if case .connected(let connection, _) = slot { open.append(connection) }
                state.slots[index] = .idle(failures: 0, retryAt: .distantFuture, lastError: nil)
            }
            return open
        }
        for connection in connections {
            await connection.close()
        }
    }

    // MARK: Commands

    /// Sends one command and returns its reply.
    ///
    /// - Parameters:
    ///   - command: The command. Blocking commands go to a dedicated connection.
    ///   - timeout: Reply timeout; defaults to the configuration's `commandTimeout`.
    /// - Throws: ``RedisError``; an error reply throws with code `server`.
    @discardableResult
    nonisolated(nonsending) public func send(_ command: RedisCommand, timeout: Duration? = nil) async throws(RedisError) -> RESPValue {
        if command.isBlocking {
            // On a cluster, a dedicated connection to the master of its routing key's slot.
            if let router { return try await router.send(command, timeout: timeout) }
            return try await withDedicatedConnection { connection throws(RedisError) in
                try await connection.send(command, timeout: timeout)
            }
        }
        if let router { return try await router.send(command, timeout: timeout) }
        return try await connection().send(command, timeout: timeout)
    }

    /// Sends one command built from a name and arguments.
    @discardableResult
    nonisolated(nonsending) public func send(_ name: String, _ arguments: any RESPArgument...) async throws(RedisError) -> RESPValue {
        try await send(RedisCommand(name, arguments: arguments))
    }

    /// Sends many commands in one write on one connection and returns their
    /// replies in order; error replies are values, not thrown.
    ///
    /// On a cluster the commands are split by master (by ``RedisCommand/routingKey``),
    /// each part is one write, the parts go out concurrently, and the replies
    /// come back in the order of `commands`; commands on different masters are
    /// not ordered relative to each other.
    nonisolated(nonsending) public func pipeline(_ commands: [RedisCommand], timeout: Duration? = nil) async throws(RedisError) -> [RESPValue] {
        if let router {
            return try await router.pipeline(commands, slots: commands.map { $0.routingKey.map(RedisCluster.slot(forKey:)) }, timeout: timeout)
        }
        return try await connection().pipeline(commands, timeout: timeout)
    }

    /// Runs `body` with a connection no other caller uses meanwhile, for
    /// blocking commands and `MULTI`/`WATCH` transactions.
    ///
    /// The connection returns to a small idle list afterwards if it is still open.
    public func withDedicatedConnection<Result>(
        _ body: (RedisConnection) async throws(RedisError) -> Result
    ) async throws(RedisError) -> Result {
        if let router { return try await router.withDedicatedConnection(slot: nil, body) }
        let reused: RedisConnection? = try state.withLock { state throws(RedisError) in
            if state.isShutDown { throw Self.shutDownError }
            while let connection = state.dedicated.popLast() {
                if connection.isActive { return connection }
            }
            return nil
        }
        let connection: RedisConnection
        if let reused {
            connection = reused
        } else {
            connection = try await RedisConnection.connect(
                configuration: configuration, eventLoop: eventLoopGroup.any(), logger: logger
            )
        }
        do {
            let result = try await body(connection)
            release(dedicated: connection)
            return result
        } catch {
            release(dedicated: connection)
            throw error
        }
    }

    /// Runs `body` with a dedicated connection to the master owning
    /// `routingKey`'s slot (any master for `nil`; the one server on a single node).
    ///
    /// Commands on it are not redirected: after a failover or resharding they
    /// fail (connection closed, or a `MOVED` error reply) and a new call
    /// reaches the new master once the client re-read the topology, which
    /// those failures trigger.
    public func withDedicatedConnection<Result>(
        routingKey: String?, _ body: (RedisConnection) async throws(RedisError) -> Result
    ) async throws(RedisError) -> Result {
        if let router { return try await router.withDedicatedConnection(slot: routingKey.map(RedisCluster.slot(forKey:)), body) }
        return try await withDedicatedConnection(body)
    }

    private func release(dedicated connection: RedisConnection) {
        guard connection.isActive else { return }
        let keep = state.withLock { state in
            guard !state.isShutDown, state.dedicated.count < 32 else { return false }
            state.dedicated.append(connection)
            return true
        }
        if !keep {
            Task { await connection.close() }
        }
    }

    // MARK: Pool

    private static let shutDownError = RedisError(.poolShutDown, message: "the Redis client has been shut down")

    private enum Acquisition {
        case ready(RedisConnection)
        case wait(EventLoopFuture<RedisConnection>)
        case connect(index: Int, eventLoop: any EventLoop, promise: EventLoopPromise<RedisConnection>, failures: Int)
    }

    /// A connection from the next slot, connecting it if needed.
    nonisolated(nonsending) func connection() async throws(RedisError) -> RedisConnection {
        let ownLoop = taskExecutor.eventLoop
        let acquisition: Acquisition = try state.withLock { state throws(RedisError) in
            if state.isShutDown { throw Self.shutDownError }
            // A caller on the executor's loop gets slot 0, which lives there:
            // no hop to another thread for its write.
            let index: Int
            if ownLoop.inEventLoop {
                index = 0
            } else {
                index = state.nextSlot
                state.nextSlot = (index + 1) % state.slots.count
            }
            var failures = 0
            switch state.slots[index] {
            case .connected(let connection, let previousFailures):
                if connection.isActive { return .ready(connection) }
                failures = previousFailures
            case .connecting(let future):
                return .wait(future)
            case .idle(let previousFailures, let retryAt, let lastError):
                if retryAt > .now() {
                    let wait = (retryAt - .now()).nanoseconds / 1_000_000
                    var error = RedisError(
                        .connectionClosed,
                        message: "not connected to \(configuration.endpoint); next reconnect attempt in \(wait) ms"
                            + (lastError.map { " (last error: \($0.message))" } ?? "")
                    )
                    error.underlying = lastError?.underlying
                    throw error
                }
                failures = previousFailures
            }
            let eventLoop = index == 0 ? ownLoop : eventLoopGroup.any()
            let promise = eventLoop.makePromise(of: RedisConnection.self)
            state.slots[index] = .connecting(promise.futureResult)
            return .connect(index: index, eventLoop: eventLoop, promise: promise, failures: failures)
        }
        switch acquisition {
        case .ready(let connection):
            return connection
        case .wait(let future):
            do {
                return try await future.get()
            } catch {
                throw RedisConnection.redisError(error)
            }
        case .connect(let index, let eventLoop, let promise, let failures):
            do throws(RedisError) {
                let connection = try await RedisConnection.connect(
                    configuration: configuration, eventLoop: eventLoop, logger: logger
                )
                let accepted = state.withLock { state in
                    guard !state.isShutDown else { return false }
                    // A connection that stays up resets the backoff on its next failure.
                    state.slots[index] = .connected(connection, failures: 0)
                    return true
                }
                promise.succeed(connection)
                if !accepted {
                    await connection.close()
                    throw Self.shutDownError
                }
                return connection
            } catch {
                let delay = backoff(afterFailures: failures + 1)
                logger.debug(
                    "redis connect failed",
                    metadata: ["conveyor.redis.error": "\(error)", "conveyor.redis.retry_ms": "\(delay.nanoseconds / 1_000_000)"]
                )
                state.withLock { state in
                    guard !state.isShutDown else { return }
                    state.slots[index] = .idle(failures: failures + 1, retryAt: .now() + delay, lastError: error)
                }
                promise.fail(error)
                throw error
            }
        }
    }

    /// Exponential backoff with "equal jitter": half fixed, half random, so
    /// many clients that lost the same server do not reconnect in lockstep.
    func backoff(afterFailures failures: Int) -> TimeAmount {
        let base = TimeAmount(configuration.reconnectBaseDelay).nanoseconds
        let cap = TimeAmount(configuration.reconnectMaxDelay).nanoseconds
        let exponent = min(failures - 1, 30)
        let full = min(cap, base << exponent)
        let half = full / 2
        return .nanoseconds(half + Int64.random(in: 0...max(half, 0)))
    }
}
