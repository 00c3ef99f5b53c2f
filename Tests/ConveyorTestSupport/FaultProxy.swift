import NIOCore
import NIOPosix
import Synchronization

/// A loopback TCP proxy in front of a Redis server that injects network faults on demand.
///
/// Clients connect to ``url`` instead of the server's URL; every accepted connection gets its
/// own upstream connection, and bytes are copied both ways unchanged until a fault is triggered:
///
/// - ``dropNextReplies(_:)``: the next server→client chunk (the reply, or pipelined replies,
///   that one read delivers) is swallowed and that client's connection is closed, as when a
///   reply is lost with its connection. The command *did* run on the server.
/// - ``stall(for:)``: traffic in both directions is held (not lost) for a while, then released
///   in order, as a network partition that heals.
/// - ``reset()``: every current connection is closed at once, the client side with a TCP RST.
/// - ``pause()``/``resume()``: a stall without a set end.
/// - ``runRandomFaults(_:)``: seeded random drops, stalls and resets for a bounded time.
///
/// Everything runs on the NIO event loops without blocking; the shared state is behind a mutex.
/// Only `127.0.0.1` is used on either side.
public final class FaultProxy: Sendable {
    /// Faults injected so far, by kind.
    public struct FaultCounts: Sendable, Hashable, CustomStringConvertible {
        /// Replies swallowed (each closed one client connection).
        public var droppedReplies = 0
        /// Stalls started (``stall(for:)`` and random stalls; not ``pause()``).
        public var stalls = 0
        /// Resets that closed at least one connection.
        public var resets = 0
        /// All of them.
        public var total: Int { droppedReplies + stalls + resets }

        public var description: String { "\(droppedReplies) dropped replies, \(stalls) stalls, \(resets) resets" }
    }

    /// The port the proxy listens on, on 127.0.0.1.
    public let port: Int
    /// `redis://127.0.0.1:<port>`: the URL clients use to go through the proxy.
    public var url: String { "redis://127.0.0.1:\(port)" }
    private let upstreamPort: Int
    private let serverChannel: any Channel
    let state: Mutex<State>

    struct State {
        var connections: [ObjectIdentifier: Pair] = [:]
        var repliesToDrop = 0
        var stalledUntil: NIODeadline = .distantPast
        var paused = false
        var counts = FaultCounts()
        var accepted = 0
    }

    /// Both channels of one proxied connection.
    struct Pair {
        var client: any Channel
        var server: any Channel
    }

    private init(port: Int, upstreamPort: Int, serverChannel: any Channel) {
        self.port = port
        self.upstreamPort = upstreamPort
        self.serverChannel = serverChannel
        self.state = Mutex(State())
    }

    /// Starts a proxy on a free loopback port in front of `127.0.0.1:<upstreamPort>`.
    /// - Parameters:
    ///   - upstreamPort: The Redis server's port on 127.0.0.1.
    ///   - group: The event loops that run the proxy.
    /// - Throws: A NIO error if no port can be bound.
    public static func start(
        upstreamPort: Int, group: any EventLoopGroup = MultiThreadedEventLoopGroup.singleton
    ) async throws -> FaultProxy {
        let box = ProxyBox()
        let channel = try await ServerBootstrap(group: group)
            .serverChannelOption(.socketOption(.so_reuseaddr), value: 1)
            // Nothing is read from a client before its upstream connection is up.
            .childChannelOption(.autoRead, value: false)
            .childChannelInitializer { child in
                guard let proxy = box.proxy else { return child.close() }
                return proxy.connectUpstream(for: child)
            }
            .bind(host: "127.0.0.1", port: 0).get()
        guard let port = channel.localAddress?.port else {
            try await channel.close()
            throw ChannelError.unknownLocalAddress
        }
        let proxy = FaultProxy(port: port, upstreamPort: upstreamPort, serverChannel: channel)
        box.proxy = proxy
        return proxy
    }

    /// Closes the listening socket and every proxied connection.
    public func stop() async {
        try? await serverChannel.close()
        closeAll(reset: false)
    }

    /// Faults injected so far.
    public var faults: FaultCounts { state.withLock { $0.counts } }

    /// Client connections open now.
    public var openConnections: Int { state.withLock { $0.connections.count } }

    /// Client connections accepted since the start.
    public var acceptedConnections: Int { state.withLock { $0.accepted } }

    // MARK: Faults

    /// Swallows the next `count` server→client reads, each on whichever connection it arrives,
    /// and closes that connection (client and upstream) after each.
    ///
    /// A read usually carries one reply; pipelined replies that arrive together are lost together.
    public func dropNextReplies(_ count: Int = 1) {
        state.withLock { $0.repliesToDrop += max(0, count) }
    }

    /// Holds all traffic, both ways and on every connection (also new ones), for `duration`;
    /// held bytes are delivered in order afterwards. A longer stall running already is kept.
    public func stall(for duration: Duration) {
        let until = NIODeadline.now() + TimeAmount(duration)
        state.withLock { state in
            state.stalledUntil = max(state.stalledUntil, until)
            state.counts.stalls += 1
        }
    }

    /// Holds all traffic until ``resume()``, like a stall without a set end (not counted as a fault).
    public func pause() {
        state.withLock { $0.paused = true }
    }

    /// Ends a ``pause()`` and any stall; held bytes are delivered within a few milliseconds.
    public func resume() {
        state.withLock { state in
            state.paused = false
            state.stalledUntil = .distantPast
        }
    }

    /// Closes every current connection: the client side with a TCP RST (`SO_LINGER` 0), the
    /// upstream side plainly. Clients see a broken connection and must reconnect.
    /// - Returns: The number of connections closed.
    @discardableResult
    public func reset() -> Int {
        closeAll(reset: true)
    }

    // MARK: Internals used by the handlers (on their event loop)

    /// Whether traffic must be held now.
    var isHolding: Bool {
        state.withLock { $0.paused || $0.stalledUntil > .now() }
    }

    /// Takes one pending reply drop, counting it, if any is pending.
    func takeReplyDrop() -> Bool {
        state.withLock { state in
            guard state.repliesToDrop > 0 else { return false }
            state.repliesToDrop -= 1
            state.counts.droppedReplies += 1
            return true
        }
    }

    func forget(_ client: any Channel) {
        _ = state.withLock { $0.connections.removeValue(forKey: ObjectIdentifier(client)) }
    }

    @discardableResult
    private func closeAll(reset: Bool) -> Int {
        let pairs = state.withLock { state in
            let pairs = Array(state.connections.values)
            state.connections.removeAll()
            if reset, !pairs.isEmpty { state.counts.resets += 1 }
            return pairs
        }
        for pair in pairs {
            if reset {
                // Linger 0: close sends RST instead of FIN.
                if let socket = pair.client as? any SocketOptionProvider {
                    socket.setSoLinger(linger(l_onoff: 1, l_linger: 0)).whenComplete { _ in pair.client.close(promise: nil) }
                } else {
                    pair.client.close(promise: nil)
                }
            } else {
                pair.client.close(promise: nil)
            }
            pair.server.close(promise: nil)
        }
        return pairs.count
    }

    /// Runs on the accepted channel's event loop: connects upstream on the same loop, glues the two.
    private func connectUpstream(for client: any Channel) -> EventLoopFuture<Void> {
        ClientBootstrap(group: client.eventLoop)
            .channelOption(.socketOption(.tcp_nodelay), value: 1)
            .channelInitializer { upstream in
                upstream.eventLoop.makeCompletedFuture {
                    try upstream.pipeline.syncOperations.addHandler(ProxyGlueHandler(proxy: self, partner: client, isReplyDirection: true))
                }
            }
            .connect(host: "127.0.0.1", port: upstreamPort)
            .flatMapThrowing { upstream in
                try client.pipeline.syncOperations.addHandler(ProxyGlueHandler(proxy: self, partner: upstream, isReplyDirection: false))
                self.state.withLock { state in
                    state.connections[ObjectIdentifier(client)] = Pair(client: client, server: upstream)
                    state.accepted += 1
                }
                client.setOption(.autoRead, value: true).whenComplete { _ in }
            }
            .flatMapError { error in
                client.close().flatMapThrowing { throw error }
            }
    }
}

/// Lets the accept callback reach the proxy created after the bind.
///
/// Written once, before any connection can be accepted (``FaultProxy/start(upstreamPort:group:)``
/// stores it right after `bind` returns; a connection accepted before that is closed), then only read:
/// the mutex makes that hand-over safe.
private final class ProxyBox: Sendable {
    private let stored = Mutex<FaultProxy?>(nil)
    var proxy: FaultProxy? {
        get { stored.withLock { $0 } }
        set { stored.withLock { $0 = newValue } }
    }
}

/// Copies what one channel reads to its partner, holding it while the proxy stalls and
/// swallowing replies the proxy drops. Both channels of a pair live on one event loop.
final class ProxyGlueHandler: ChannelInboundHandler {
    typealias InboundIn = ByteBuffer

    private let proxy: FaultProxy
    private let partner: any Channel
    /// `true` on the upstream channel: what it reads are replies for the client.
    private let isReplyDirection: Bool
    private var held: [ByteBuffer] = []
    private var releaseScheduled = false
    private var context: ChannelHandlerContext?

    init(proxy: FaultProxy, partner: any Channel, isReplyDirection: Bool) {
        self.proxy = proxy
        self.partner = partner
        self.isReplyDirection = isReplyDirection
    }

    func handlerAdded(context: ChannelHandlerContext) {
        self.context = context
    }

    func handlerRemoved(context: ChannelHandlerContext) {
        self.context = nil
    }

    func channelRead(context: ChannelHandlerContext, data: NIOAny) {
        let buffer = unwrapInboundIn(data)
        if !held.isEmpty || proxy.isHolding {
            held.append(buffer)
            scheduleRelease(on: context.eventLoop)
        } else {
            forward([buffer], context: context)
        }
    }

    func channelInactive(context: ChannelHandlerContext) {
        partner.close(promise: nil)
        if !isReplyDirection { proxy.forget(context.channel) }
        context.fireChannelInactive()
    }

    func errorCaught(context: ChannelHandlerContext, error: any Error) {
        // A reset peer: close both sides, as a real network path would.
        context.close(promise: nil)
    }

    private func forward(_ buffers: [ByteBuffer], context: ChannelHandlerContext) {
        if isReplyDirection, proxy.takeReplyDrop() {
            context.close(promise: nil)
            partner.close(promise: nil)
            return
        }
        for buffer in buffers {
            partner.write(buffer, promise: nil)
        }
        partner.flush()
    }

    /// Checks again every few milliseconds (the stall may be extended or a pause lifted).
    private func scheduleRelease(on eventLoop: any EventLoop) {
        guard !releaseScheduled else { return }
        releaseScheduled = true
        let bound = NIOLoopBound(self, eventLoop: eventLoop)
        eventLoop.scheduleTask(in: .milliseconds(5)) {
            let handler = bound.value
            handler.releaseScheduled = false
            guard let context = handler.context, !handler.held.isEmpty else { return }
            if handler.proxy.isHolding {
                handler.scheduleRelease(on: context.eventLoop)
            } else {
                let buffers = handler.held
                handler.held = []
                handler.forward(buffers, context: context)
            }
        }
    }
}
