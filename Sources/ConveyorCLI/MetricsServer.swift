import Logging
import NIOCore
import NIOHTTP1
import NIOPosix
import Prometheus
import ServiceLifecycle
import Synchronization

/// Serves `GET /metrics` in the Prometheus text exposition format from a
/// swift-prometheus registry: a small HTTP/1.1 server on SwiftNIO, so the
/// worker stays light. Each response closes its connection (Prometheus opens
/// one per scrape anyway). A `Service`: it binds in ``run()`` (or earlier, with
/// ``start()``) and closes at graceful shutdown.
public final class MetricsServer: Service {
    /// The registry every scrape renders.
    public let registry: PrometheusCollectorRegistry
    /// Where it listens; `port` 0 takes a free port (see ``start()``).
    public let host: String
    public let port: Int
    private let logger: Logger
    private let channel = Mutex<(any Channel)?>(nil)

    /// Creates a server; nothing is bound until ``start()`` or ``run()``.
    /// - Parameters:
    ///   - registry: The registry to render.
    ///   - host: The address to bind; loopback by default, since metrics name job types.
    ///   - port: The port; 0 for any free port.
    ///   - logger: Where the bound address is logged (`.notice`).
    public init(registry: PrometheusCollectorRegistry, host: String = "127.0.0.1", port: Int, logger: Logger = .current) {
        self.registry = registry
        self.host = host
        self.port = port
        self.logger = logger
    }

    /// Binds the listening socket (once).
    /// - Returns: The bound port.
    /// - Throws: The socket error, e.g. when the port is in use.
    @discardableResult
    public func start() async throws -> Int {
        if let bound = channel.withLock({ $0 }) { return bound.localAddress?.port ?? port }
        let registry = registry
        let bound = try await ServerBootstrap(group: MultiThreadedEventLoopGroup.singleton)
            .serverChannelOption(.backlog, value: 64)
            .serverChannelOption(.socketOption(.so_reuseaddr), value: 1)
            .childChannelInitializer { channel in
                channel.eventLoop.makeCompletedFuture {
                    try channel.pipeline.syncOperations.configureHTTPServerPipeline(withErrorHandling: true)
                    try channel.pipeline.syncOperations.addHandler(MetricsHTTPHandler(registry: registry))
                }
            }
            .bind(host: host, port: port).get()
        channel.withLock { $0 = bound }
        let boundPort = bound.localAddress?.port ?? port
        logger.notice("metrics served", metadata: ["conveyor.metrics.url": "http://\(host):\(boundPort)/metrics"])
        return boundPort
    }

    /// Closes the listening socket.
    public func stop() async {
        let bound = channel.withLock { channel in
            defer { channel = nil }
            return channel
        }
        try? await bound?.close()
    }

    /// Binds (unless ``start()`` did), serves until graceful shutdown or cancellation, then closes.
    public func run() async throws {
        try await start()
        try? await gracefulShutdown()
        await stop()
    }
}

/// Answers one request per connection: `GET`/`HEAD /metrics` with the
/// registry's exposition, anything else with 404 or 405.
final class MetricsHTTPHandler: ChannelInboundHandler {
    typealias InboundIn = HTTPServerRequestPart
    typealias OutboundOut = HTTPServerResponsePart

    private let registry: PrometheusCollectorRegistry
    private var head: HTTPRequestHead?

    init(registry: PrometheusCollectorRegistry) {
        self.registry = registry
    }

    func channelRead(context: ChannelHandlerContext, data: NIOAny) {
        switch unwrapInboundIn(data) {
        case .head(let head):
            self.head = head
        case .body:
            break
        case .end:
            guard let head else { return }
            self.head = nil
            respond(to: head, context: context)
        }
    }

    private func respond(to head: HTTPRequestHead, context: ChannelHandlerContext) {
        let path = head.uri.split(separator: "?", maxSplits: 1).first.map(String.init) ?? head.uri
        let status: HTTPResponseStatus
        var body: [UInt8]
        var contentType = "text/plain; charset=utf-8"
        if path != "/metrics" {
            (status, body) = (.notFound, Array("not found; metrics are at /metrics\n".utf8))
        } else if head.method != .GET && head.method != .HEAD {
            (status, body) = (.methodNotAllowed, Array("only GET and HEAD\n".utf8))
        } else {
            status = .ok
            body = []
            registry.emit(into: &body)
            contentType = "text/plain; version=0.0.4; charset=utf-8"
        }
        var headers = HTTPHeaders()
        headers.add(name: "Content-Type", value: contentType)
        headers.add(name: "Content-Length", value: String(body.count))
        headers.add(name: "Connection", value: "close")
        if status == .methodNotAllowed { headers.add(name: "Allow", value: "GET, HEAD") }
        context.write(wrapOutboundOut(.head(HTTPResponseHead(version: head.version, status: status, headers: headers))), promise: nil)
        if head.method != .HEAD {
            context.write(wrapOutboundOut(.body(.byteBuffer(context.channel.allocator.buffer(bytes: body)))), promise: nil)
        }
        let channel = context.channel
        context.writeAndFlush(wrapOutboundOut(.end(nil))).whenComplete { _ in channel.close(promise: nil) }
    }
}
