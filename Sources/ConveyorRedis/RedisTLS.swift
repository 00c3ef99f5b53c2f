import Foundation
import NIOCore
import NIOPosix
import NIOSSL
import NIOTLS
import Synchronization

/// TLS for `rediss://`: builds the client context from ``RedisConfiguration/TLSSettings``
/// and turns TLS failures into specific ``RedisError`` codes, so "the CA does not
/// trust this server" never reads like "the server is down".
enum RedisTLS {
    /// Reads the PEM files and builds a context. File reads block, so this runs
    /// on NIO's blocking-I/O thread pool, not on an event loop or the cooperative pool.
    static func makeContext(_ settings: RedisConfiguration.TLSSettings) async throws(RedisError) -> NIOSSLContext {
        do {
            return try await NIOThreadPool.singleton.runIfActive { try makeContextBlocking(settings) }
        } catch let error as RedisError {
            throw error
        } catch {
            throw RedisError(.tlsConfiguration, message: "cannot set up TLS", underlying: error)
        }
    }

    static func makeContextBlocking(_ settings: RedisConfiguration.TLSSettings) throws(RedisError) -> NIOSSLContext {
        var configuration = TLSConfiguration.makeClientConfiguration()
        configuration.certificateVerification = .fullVerification
        if let caFile = settings.caFile {
            configuration.trustRoots = .certificates(try certificates(in: caFile, what: "CA file"))
        }
        switch (settings.certificateFile, settings.privateKeyFile) {
        case (nil, nil):
            break
        case (let certificateFile?, let keyFile?):
            configuration.certificateChain = try certificates(in: certificateFile, what: "client certificate file").map { .certificate($0) }
            configuration.privateKey = .privateKey(try privateKey(in: keyFile))
        case (_?, nil):
            throw RedisError(.tlsConfiguration, message: "a client certificate needs its private key (--tls-key-file / REDIS_TLS_KEY_FILE)")
        case (nil, _?):
            throw RedisError(.tlsConfiguration, message: "a private key needs its client certificate (--tls-cert-file / REDIS_TLS_CERT_FILE)")
        }
        do {
            return try NIOSSLContext(configuration: configuration)
        } catch {
            if settings.caFile == nil, settings.certificateFile == nil {
                // Nothing of the caller's was loaded: the system trust store is what failed.
                throw RedisError(
                    .tlsConfiguration,
                    message: "cannot load the system trust store (install ca-certificates, or pass --tls-ca-file)",
                    underlying: error
                )
            }
            if case NIOSSLError.failedToLoadPrivateKey = error, let key = settings.privateKeyFile,
                let certificate = settings.certificateFile
            {
                throw RedisError(
                    .tlsConfiguration,
                    message: "the private key \(key) does not belong to the client certificate \(certificate)",
                    underlying: error
                )
            }
            throw RedisError(
                .tlsConfiguration,
                message: "cannot use the TLS settings (\(reason(of: error) ?? "rejected by BoringSSL"); does the key belong to the certificate?)",
                underlying: error
            )
        }
    }

    private static func certificates(in path: String, what: String) throws(RedisError) -> [NIOSSLCertificate] {
        try checkReadable(path, what: what)
        let found: [NIOSSLCertificate]
        do {
            found = try NIOSSLCertificate.fromPEMFile(path)
        } catch {
            throw RedisError(.tlsConfiguration, message: "\(what) \(path) holds no PEM certificate", underlying: error)
        }
        guard !found.isEmpty else { throw RedisError(.tlsConfiguration, message: "\(what) \(path) holds no PEM certificate") }
        return found
    }

    private static func privateKey(in path: String) throws(RedisError) -> NIOSSLPrivateKey {
        try checkReadable(path, what: "private key file")
        do {
            return try NIOSSLPrivateKey(file: path, format: .pem)
        } catch {
            // The error never includes key material, only that parsing failed.
            throw RedisError(
                .tlsConfiguration,
                message: "private key file \(path) holds no unencrypted PEM private key",
                underlying: error
            )
        }
    }

    private static func checkReadable(_ path: String, what: String) throws(RedisError) {
        guard FileManager.default.isReadableFile(atPath: path) else {
            let exists = FileManager.default.fileExists(atPath: path)
            throw RedisError(.tlsConfiguration, message: "\(what) \(path) \(exists ? "is not readable" : "does not exist")")
        }
    }

    /// The name to send as SNI: TLS forbids IP addresses there; for those the
    /// handler verifies the certificate against the connected address instead.
    static func sniHostname(_ settings: RedisConfiguration.TLSSettings, endpoint: RedisConfiguration.Endpoint) -> String? {
        let name: String?
        switch endpoint {
        case .tcp(let host, _): name = settings.serverHostname ?? host
        case .unixSocket, .cluster: name = settings.serverHostname
        }
        guard let name, !isIPAddress(name) else { return nil }
        return name
    }

    static func isIPAddress(_ text: String) -> Bool {
        (try? SocketAddress(ipAddress: text, port: 0)) != nil
    }

    /// A specific error for a TLS failure, or `nil` when `error` is not one.
    static func classify(
        _ error: any Error, endpoint: RedisConfiguration.Endpoint, settings: RedisConfiguration.TLSSettings
    ) -> RedisError? {
        if let error = error as? RedisError { return error }
        let trust = settings.caFile.map { "the CA file \($0)" } ?? "the system trust store"
        if let extra = error as? NIOSSLExtraError, extra == .failedToValidateHostname {
            let name: String
            switch endpoint {
            case .tcp(let host, _): name = settings.serverHostname ?? host
            case .unixSocket, .cluster: name = settings.serverHostname ?? "\(endpoint)"
            }
            return RedisError(
                .tlsVerificationFailed,
                message: "TLS: the certificate of \(endpoint) is not valid for \"\(name)\" (host name mismatch)",
                underlying: error
            )
        }
        guard error is NIOSSLError || error is BoringSSLError || error is NIOSSLExtraError else { return nil }
        let token = reason(of: error)
        switch token {
        case "CERTIFICATE_VERIFY_FAILED":
            return RedisError(
                .tlsVerificationFailed,
                message: "TLS: the certificate of \(endpoint) is not trusted by \(trust), or has expired (CERTIFICATE_VERIFY_FAILED)",
                underlying: error
            )
        case let token?
        where token.contains("CERTIFICATE_REQUIRED") || token.contains("BAD_CERTIFICATE")
            || token.contains("UNKNOWN_CA") || token.contains("CERTIFICATE_UNKNOWN"):
            // The server's alerts about the client's certificate (mutual TLS).
            let mine =
                settings.certificateFile.map { "does not accept the client certificate \($0)" }
                ?? "requires a client certificate (--tls-cert-file and --tls-key-file)"
            return RedisError(.tlsHandshakeFailed, message: "TLS: \(endpoint) \(mine) (\(token))", underlying: error)
        case let token? where token.contains("HANDSHAKE_FAILURE"):
            let hint = settings.certificateFile == nil ? "; does it require a client certificate?" : ""
            return RedisError(
                .tlsHandshakeFailed,
                message: "TLS: \(endpoint) refused the handshake (no common protocol version or cipher\(hint)) (\(token))",
                underlying: error
            )
        case let token? where token.contains("WRONG_VERSION_NUMBER") || token.contains("PACKET_LENGTH_TOO_LONG"):
            return RedisError(
                .tlsHandshakeFailed,
                message: "TLS: \(endpoint) does not speak TLS on this port; is it a plain redis:// port? (\(token))",
                underlying: error
            )
        default:
            if case NIOSSLError.uncleanShutdown = error {
                return RedisError(
                    .tlsHandshakeFailed,
                    message: "TLS: \(endpoint) closed the connection without a TLS close (it may have rejected this client)",
                    underlying: error
                )
            }
            return RedisError(
                .tlsHandshakeFailed, message: "TLS: handshake with \(endpoint) failed (\(token ?? "\(error)"))", underlying: error
            )
        }
    }

    /// The BoringSSL reason (`CERTIFICATE_VERIFY_FAILED`, `TLSV1_ALERT_CERTIFICATE_REQUIRED`, ...)
    /// from an error's text: `error:...:SSL routines:OPENSSL_internal:<REASON>`.
    static func reason(of error: any Error) -> String? {
        let text = String(describing: error)
        guard let range = text.range(of: "OPENSSL_internal:", options: .backwards) else { return nil }
        let reason = text[range.upperBound...].prefix { $0.isUppercase || $0.isNumber || $0 == "_" }
        return reason.isEmpty ? nil : String(reason)
    }
}

extension RedisTLS {
    /// What one connection attempt needs for TLS: the context, the handshake
    /// promise, and the first TLS failure seen on the channel.
    struct Setup: Sendable {
        let context: NIOSSLContext
        let settings: RedisConfiguration.TLSSettings
        let endpoint: RedisConfiguration.Endpoint
        let handshakeTimeout: TimeAmount
        let handshakeDone: EventLoopPromise<Void>
        private let failure = FailureRecord()

        init(
            settings: RedisConfiguration.TLSSettings, endpoint: RedisConfiguration.Endpoint, handshakeTimeout: TimeAmount,
            handshakeDone: EventLoopPromise<Void>
        ) async throws(RedisError) {
            if case .unixSocket = endpoint, settings.serverHostname == nil {
                handshakeDone.fail(RedisError(.tlsConfiguration, message: "not connected"))
                throw RedisError(.tlsConfiguration, message: "TLS over a Unix socket needs TLSSettings.serverHostname to verify against")
            }
            do {
                context = try await RedisTLS.makeContext(settings)
            } catch {
                handshakeDone.fail(error)
                throw error
            }
            self.settings = settings
            self.endpoint = endpoint
            self.handshakeTimeout = handshakeTimeout
            self.handshakeDone = handshakeDone
        }

        /// The first TLS failure classified on this channel, if any.
        var firstFailure: RedisError? { failure.value }

        /// TLS, then the handshake watcher, then the Redis handler.
        func addHandlers(to pipeline: ChannelPipeline.SynchronousOperations) throws {
            let (settings, endpoint, failure) = (settings, endpoint, failure)
            let classify: (any Error) -> RedisError? = { error in
                let classified = RedisTLS.classify(error, endpoint: endpoint, settings: settings)
                if let classified { failure.record(classified) }
                return classified
            }
            try pipeline.addHandler(NIOSSLClientHandler(context: context, serverHostname: RedisTLS.sniHostname(settings, endpoint: endpoint)))
            try pipeline.addHandler(
                RedisTLSHandshakeHandler(promise: handshakeDone, endpoint: endpoint, timeout: handshakeTimeout) { error in
                    classify(error) ?? RedisError(.tlsHandshakeFailed, message: "TLS: handshake with \(endpoint) failed", underlying: error)
                }
            )
            try pipeline.addHandler(RedisChannelHandler(classifyError: classify))
        }
    }

    /// The first error recorded; written on the event loop, read by the connecting task.
    final class FailureRecord: Sendable {
        private let first = Mutex<RedisError?>(nil)
        func record(_ error: RedisError) { first.withLock { $0 = $0 ?? error } }
        var value: RedisError? { first.withLock { $0 } }
    }
}

/// Completes `promise` when the TLS handshake finishes, fails it with a
/// classified error when the handshake fails, is cut or takes longer than
/// `timeout`. Sits right after the `NIOSSLClientHandler`; every event passes through.
final class RedisTLSHandshakeHandler: ChannelInboundHandler, RemovableChannelHandler {
    typealias InboundIn = NIOAny

    private let promise: EventLoopPromise<Void>
    private let endpoint: RedisConfiguration.Endpoint
    private let timeout: TimeAmount
    private let classify: (any Error) -> RedisError
    private var timer: Scheduled<Void>?
    private var done = false

    init(
        promise: EventLoopPromise<Void>, endpoint: RedisConfiguration.Endpoint, timeout: TimeAmount,
        classify: @escaping (any Error) -> RedisError
    ) {
        self.promise = promise
        self.endpoint = endpoint
        self.timeout = timeout
        self.classify = classify
    }

    func handlerAdded(context: ChannelHandlerContext) {
        if context.channel.isActive { armTimer(context: context) }
    }

    func channelActive(context: ChannelHandlerContext) {
        armTimer(context: context)
        context.fireChannelActive()
    }

    func userInboundEventTriggered(context: ChannelHandlerContext, event: Any) {
        context.fireUserInboundEventTriggered(event)
        if let event = event as? TLSUserEvent, case .handshakeCompleted = event {
            finish(.success(()))
            // Its work is done: replies no longer pass through it.
            context.pipeline.syncOperations.removeHandler(context: context, promise: nil)
        }
    }

    func errorCaught(context: ChannelHandlerContext, error: any Error) {
        finish(.failure(classify(error)))
        context.fireErrorCaught(error)
    }

    func channelInactive(context: ChannelHandlerContext) {
        finish(.failure(RedisError(.tlsHandshakeFailed, message: "TLS: the connection closed during the TLS handshake")))
        context.fireChannelInactive()
    }

    func handlerRemoved(context: ChannelHandlerContext) {
        finish(.failure(RedisError(.tlsHandshakeFailed, message: "TLS: the connection ended before the TLS handshake completed")))
    }

    private func armTimer(context: ChannelHandlerContext) {
        guard timer == nil, !done else { return }
        let milliseconds = timeout.nanoseconds / 1_000_000
        timer = context.eventLoop.assumeIsolated().scheduleTask(in: timeout) {
            // A plain Redis port reads the ClientHello as the start of a command
            // and waits for the rest: silence is the usual sign of it.
            let message = "TLS: no handshake reply from \(self.endpoint) within \(milliseconds) ms; is it a plain redis:// port?"
            self.finish(.failure(RedisError(.tlsHandshakeFailed, message: message)))
            context.close(promise: nil)
        }
    }

    private func finish(_ result: Result<Void, RedisError>) {
        guard !done else { return }
        done = true
        timer?.cancel()
        timer = nil
        promise.completeWith(result.mapError { $0 as any Error })
    }
}
