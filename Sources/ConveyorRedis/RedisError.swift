/// An error from the Redis layer of Conveyor.
///
/// One struct with an extensible ``Code``, so new failure kinds can be added
/// without breaking callers that `switch`. ``description`` never contains a
/// password or a command's arguments; ``debugDescription`` adds the
/// underlying cause.
public struct RedisError: Error, Sendable, Hashable, CustomStringConvertible, CustomDebugStringConvertible {
    /// What went wrong.
    public struct Code: Sendable, Hashable, CustomStringConvertible {
        private enum Base: String, Sendable, Hashable {
            case invalidURL, connectionRefused, hostNotFound, connectionFailed, connectionClosed
            case authenticationFailed, server, timeout, protocolViolation, scriptNotFound
            case poolShutDown, unexpectedReply
            case tlsConfiguration, tlsVerificationFailed, tlsHandshakeFailed
            case crossSlot, clusterRedirectLoop, clusterTopology
        }
        private let base: Base
        private init(_ base: Base) { self.base = base }

        /// The connection URL could not be parsed.
        public static let invalidURL = Code(.invalidURL)
        /// Nothing listens at the address (`ECONNREFUSED`), or a Unix socket is missing.
        public static let connectionRefused = Code(.connectionRefused)
        /// The host name did not resolve.
        public static let hostNotFound = Code(.hostNotFound)
        /// Connecting failed for another reason (timeout, unreachable network, ...).
        public static let connectionFailed = Code(.connectionFailed)
        /// The connection closed with the command in flight, or the client is
        /// between reconnect attempts after the server went away.
        public static let connectionClosed = Code(.connectionClosed)
        /// `AUTH` was rejected (`WRONGPASS`, `NOAUTH`, ...).
        public static let authenticationFailed = Code(.authenticationFailed)
        /// The server answered with an error reply (`-ERR ...`).
        public static let server = Code(.server)
        /// The command got no reply within its timeout.
        public static let timeout = Code(.timeout)
        /// The server sent bytes that are not valid RESP.
        public static let protocolViolation = Code(.protocolViolation)
        /// `EVALSHA` failed with `NOSCRIPT` even after loading the script.
        public static let scriptNotFound = Code(.scriptNotFound)
        /// The client has been shut down.
        public static let poolShutDown = Code(.poolShutDown)
        /// The reply did not have the shape the typed helper expected.
        public static let unexpectedReply = Code(.unexpectedReply)
        /// A TLS file (CA, client certificate or key) is missing, unreadable or
        /// not PEM, or the key does not belong to the certificate.
        public static let tlsConfiguration = Code(.tlsConfiguration)
        /// The server's certificate was not accepted: not signed by a trusted
        /// CA, expired, or not valid for the host name.
        public static let tlsVerificationFailed = Code(.tlsVerificationFailed)
        /// The TLS handshake failed for another reason: the server rejected or
        /// required a client certificate, or does not speak TLS on that port.
        public static let tlsHandshakeFailed = Code(.tlsHandshakeFailed)
        /// The keys of one script call (or multi-key command) lie in different
        /// hash slots; thrown before anything is sent, on a single node too.
        public static let crossSlot = Code(.crossSlot)
        /// A cluster command was redirected (`MOVED`/`ASK`) more than 5 times.
        public static let clusterRedirectLoop = Code(.clusterRedirectLoop)
        /// The cluster's topology could not be read from any node, or a slot
        /// has no master.
        public static let clusterTopology = Code(.clusterTopology)

        public var description: String { base.rawValue }
    }

    /// What went wrong.
    public var code: Code
    /// A readable, secret-free explanation.
    public var message: String
    /// For ``Code/server``: the error reply's first word (`ERR`, `WRONGTYPE`, `NOSCRIPT`, ...).
    public var serverErrorPrefix: String?
    /// The lower-level error, if any (socket errors). Shown only in `debugDescription`.
    public var underlying: String?

    /// Creates an error.
    public init(_ code: Code, message: String, underlying: (any Error)? = nil) {
        self.code = code
        self.message = message
        self.underlying = underlying.map { String(reflecting: $0) }
    }

    /// An error for a `-...` reply from the server.
    public static func server(_ reply: String, command: String) -> RedisError {
        var error = RedisError(.server, message: "\(command): \(reply)")
        error.serverErrorPrefix = reply.split(separator: " ", maxSplits: 1).first.map(String.init)
        return error
    }

    public var description: String { "Redis \(code): \(message)" }

    public var debugDescription: String {
        guard let underlying else { return description }
        return "\(description) (underlying: \(underlying))"
    }
}
