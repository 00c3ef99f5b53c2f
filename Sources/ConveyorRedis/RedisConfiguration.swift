import Foundation
/// How to reach a Redis server and how the client behaves.
///
/// Build one from a URL with ``init(url:)`` and adjust the fields that have
/// defaults:
/// ```swift
/// var configuration = try RedisConfiguration(url: "redis://:secret@localhost:6379/2")
/// configuration.poolSize = 8
/// ```
public struct RedisConfiguration: Sendable, Hashable {
    /// Where the server listens.
    public enum Endpoint: Sendable, Hashable, CustomStringConvertible {
        /// A TCP host and port.
        case tcp(host: String, port: Int)
        /// A Unix-domain socket path.
        case unixSocket(path: String)
        /// A Redis Cluster reached through any of these nodes: they are used
        /// only to discover the topology, then each command goes to the master
        /// owning its key's slot (see ``RedisClient``).
        case cluster(seeds: [RedisClusterSeed])

        public var description: String {
            switch self {
            case .tcp(let host, let port): host.contains(":") ? "[\(host)]:\(port)" : "\(host):\(port)"
            case .unixSocket(let path): "unix:\(path)"
            case .cluster(let seeds): "cluster:" + seeds.map(\.description).joined(separator: ",")
            }
        }
    }

    /// Whether the endpoint is a Redis Cluster (``Endpoint/cluster(seeds:)``).
    public var isCluster: Bool {
        if case .cluster = endpoint { return true }
        return false
    }

    /// Transport security. `rediss://` URLs select ``enabled(_:)``.
    public enum TLS: Sendable, Hashable {
        /// Plain TCP.
        case disabled
        /// TLS: the server's certificate is always verified, against
        /// ``TLSSettings/caFile`` or the system trust store.
        case enabled(TLSSettings)

        /// TLS with the system trust store, verifying the certificate for `serverHostname`.
        public static func enabled(serverHostname: String?) -> TLS {
            .enabled(TLSSettings(serverHostname: serverHostname))
        }
    }

    /// How a `rediss://` connection verifies the server and identifies itself.
    ///
    /// Files are PEM and are read again on every connect, so a rotated
    /// certificate is picked up by the next reconnect without a restart.
    public struct TLSSettings: Sendable, Hashable {
        /// The name the server's certificate must be valid for, also sent as
        /// SNI; `nil` uses the endpoint's host. An IP address is matched against
        /// the certificate's IP entries and, as TLS requires, not sent as SNI.
        public var serverHostname: String?
        /// CA certificates to trust instead of the system trust store.
        public var caFile: String?
        /// Client certificate (chain) for servers that require one (mutual TLS).
        public var certificateFile: String?
        /// Private key of ``certificateFile``; needed exactly when it is set.
        public var privateKeyFile: String?

        /// Creates TLS settings; all `nil` means the system trust store and no client certificate.
        public init(
            serverHostname: String? = nil, caFile: String? = nil, certificateFile: String? = nil, privateKeyFile: String? = nil
        ) {
            self.serverHostname = serverHostname
            self.caFile = caFile
            self.certificateFile = certificateFile
            self.privateKeyFile = privateKeyFile
        }
    }

    /// Where the server listens.
    public var endpoint: Endpoint
    /// ACL user name for `AUTH`; `nil` uses the default user.
    public var username: String?
    /// Password for `AUTH`; never printed.
    public var password: String?
    /// Logical database selected on connect (`SELECT`).
    public var database: Int
    /// Transport security.
    public var tls: TLS
    /// Multiplexed connections shared by all callers. Commands are spread over
    /// them round-robin and pipelined on each.
    public var poolSize: Int
    /// Upper bound for connecting, including `AUTH`/`SELECT`.
    public var connectTimeout: Duration
    /// Default time a command may wait for its reply; the connection is closed
    /// when it passes, because later replies could no longer be matched.
    public var commandTimeout: Duration
    /// First delay before reconnecting after a failure; doubles each attempt.
    public var reconnectBaseDelay: Duration
    /// Longest delay between reconnect attempts.
    public var reconnectMaxDelay: Duration
    /// Name shown by `CLIENT LIST`.
    public var clientName: String?

    /// Creates a configuration for an endpoint.
    public init(
        endpoint: Endpoint,
        username: String? = nil,
        password: String? = nil,
        database: Int = 0,
        tls: TLS = .disabled
    ) {
        self.endpoint = endpoint
        self.username = username
        self.password = password
        self.database = database
        self.tls = tls
        self.poolSize = 4
        self.connectTimeout = .seconds(5)
        self.commandTimeout = .seconds(10)
        self.reconnectBaseDelay = .milliseconds(50)
        self.reconnectMaxDelay = .seconds(5)
        self.clientName = nil
    }

    /// Parses a connection URL.
    ///
    /// Accepted forms:
    /// - `redis://[user[:password]@]host[:port][/db]` (`rediss://` for TLS); `user:@host`
    ///   or `?user=` names a user whose password is set separately
    /// - `unix:///path/to.sock[?db=N]` (also `redis+unix://`, and `password=`/`user=` query items)
    /// - `redis+cluster://[user[:password]@]host[:port][,host[:port]...]` (`rediss+cluster://` for
    ///   TLS): a Redis Cluster with these seed nodes; database 0 only. With TLS each node's
    ///   certificate is checked against the address the cluster announces for it.
    ///
    /// User and password are percent-decoded. The default port is 6379.
    /// - Throws: ``RedisError`` with code ``RedisError/Code/invalidURL``, naming the
    ///   part that is wrong; the password is never echoed.
    public init(url: String) throws(RedisError) {
        self = try RedisURLParser.parse(url)
    }

    /// The URL of this configuration with the password masked, for logs.
    public var redactedURL: String {
        var credentials = ""
        if username != nil || password != nil {
            credentials = (username ?? "") + (password != nil ? ":***" : "") + "@"
        }
        switch endpoint {
        case .tcp(let host, let port):
            let scheme = tls == .disabled ? "redis" : "rediss"
            let hostPart = host.contains(":") ? "[\(host)]" : host
            return "\(scheme)://\(credentials)\(hostPart):\(port)/\(database)"
        case .unixSocket(let path):
            return "unix://\(credentials)\(path)?db=\(database)"
        case .cluster(let seeds):
            let scheme = tls == .disabled ? "redis+cluster" : "rediss+cluster"
            return "\(scheme)://\(credentials)" + seeds.map(\.description).joined(separator: ",")
        }
    }
}

extension RedisConfiguration {
    /// The connection flags `redis-cli` and `redis-benchmark` take for this
    /// configuration (`-h`/`-p` or `-s`, `--user`, `-a`, `--dbnum`). For a cluster they
    /// name the first seed; add `-c` (redis-cli) or `--cluster` (redis-benchmark). They
    /// contain the password: never print them unredacted.
    public var commandLineArguments: [String] {
        var arguments: [String]
        switch endpoint {
        case .tcp(let host, let port): arguments = ["-h", host, "-p", String(port)]
        case .unixSocket(let path): arguments = ["-s", path]
        // The first seed; the caller adds redis-cli's -c or redis-benchmark's --cluster (their flags differ).
        case .cluster(let seeds): arguments = ["-h", seeds.first?.host ?? "127.0.0.1", "-p", String(seeds.first?.port ?? 6379)]
        }
        if let username { arguments += ["--user", username] }
        if let password { arguments += ["-a", password, "--no-auth-warning"] }
        if database != 0 { arguments += ["--dbnum", String(database)] }
        if case .enabled(let settings) = tls {
            arguments.append("--tls")
            if let name = settings.serverHostname { arguments += ["--sni", name] }
            if let file = settings.caFile { arguments += ["--cacert", file] }
            if let file = settings.certificateFile { arguments += ["--cert", file] }
            if let file = settings.privateKeyFile { arguments += ["--key", file] }
        }
        return arguments
    }
}

extension RedisConfiguration: CustomStringConvertible, CustomReflectable {
    public var description: String { redactedURL }

    /// The fields without the password, so `dump` and debuggers cannot print it.
    public var customMirror: Mirror {
        Mirror(
            self,
            children: [
                "endpoint": endpoint, "username": username as Any, "password": password == nil ? "nil" : "***",
                "database": database, "tls": tls, "poolSize": poolSize,
            ]
        )
    }
}

enum RedisURLParser {
    typealias TLSSettings = RedisConfiguration.TLSSettings

    static func parse(_ url: String) throws(RedisError) -> RedisConfiguration {
        func invalid(_ why: String) -> RedisError {
            RedisError(.invalidURL, message: "invalid Redis URL \"\(redact(url))\": \(why)")
        }
        guard let schemeEnd = url.range(of: "://") else {
            throw invalid("expected redis://host[:port][/db] or unix:///path/to.sock")
        }
        let scheme = url[..<schemeEnd.lowerBound].lowercased()
        var rest = Substring(url[schemeEnd.upperBound...])

        // A password holding a raw `?` puts part of it in what looks like the
        // query; then query errors must not echo any of that text.
        let mayHoldSecret = url.contains("@") || url.contains("password=")
        func named(_ text: Substring) -> String { mayHoldSecret ? "" : " \"\(text)\"" }
        var query: [String: String] = [:]
        if let questionMark = rest.firstIndex(of: "?") {
            for item in rest[rest.index(after: questionMark)...].split(separator: "&") {
                let parts = item.split(separator: "=", maxSplits: 1)
                guard parts.count == 2, let value = percentDecode(parts[1]) else {
                    throw invalid("malformed query item\(named(item.split(separator: "=").first ?? "")) (percent-encode ? @ / in a password)")
                }
                query[String(parts[0])] = value
            }
            rest = rest[..<questionMark]
        }

        var username: String?
        var password: String?
        if let at = rest.lastIndex(of: "@") {
            let credentials = rest[..<at]
            rest = rest[rest.index(after: at)...]
            let parts = credentials.split(separator: ":", maxSplits: 1, omittingEmptySubsequences: false)
            guard let user = percentDecode(parts[0]) else { throw invalid("malformed user name") }
            username = user.isEmpty ? nil : user
            if parts.count == 2 {
                guard let secret = percentDecode(parts[1]) else { throw invalid("malformed password") }
                // `user:@host`: a user whose password comes from elsewhere (a file, the environment).
                password = secret.isEmpty && username != nil ? nil : secret
            } else if username != nil {
                // Clients disagree on whether `redis://word@host` names a user or a
                // password; refusing is safer than sending the secret as a user name.
                throw invalid("credentials without a password: use redis://:password@host or redis://user:password@host")
            }
        }
        if let user = query.removeValue(forKey: "user") { username = user }
        if let secret = query.removeValue(forKey: "password") { password = secret }

        var database = 0
        if let db = query.removeValue(forKey: "db") {
            guard let number = Int(db), number >= 0 else { throw invalid("db must be a non-negative integer, got\(named(Substring(db)))") }
            database = number
        }
        if let unknown = query.keys.sorted().first {
            throw invalid("unknown query parameter\(named(Substring(unknown))) (accepted: db, user, password)")
        }

        switch scheme {
        case "redis", "rediss":
            var hostPort = rest
            if let slash = rest.firstIndex(of: "/") {
                hostPort = rest[..<slash]
                let path = rest[rest.index(after: slash)...]
                if !path.isEmpty {
                    guard let number = Int(path), number >= 0 else {
                        throw invalid("database must be a non-negative integer, got\(named(path))")
                    }
                    database = number
                }
            }
            let (host, port) = try hostAndPort(hostPort, invalid: invalid, named: named)
            let tls: RedisConfiguration.TLS = scheme == "rediss" ? .enabled(TLSSettings(serverHostname: String(host))) : .disabled
            return RedisConfiguration(
                endpoint: .tcp(host: String(host), port: port),
                username: username, password: password, database: database, tls: tls
            )
        case "redis+cluster", "rediss+cluster":
            let parts = rest.split(separator: "/", maxSplits: 1, omittingEmptySubsequences: false)
            guard database == 0, parts.count == 1 || parts[1].isEmpty || parts[1] == "0" else {
                throw invalid("Redis Cluster has only database 0")
            }
            let list = parts[0]
            var seeds: [RedisClusterSeed] = []
            for item in list.split(separator: ",", omittingEmptySubsequences: false) {
                let (host, port) = try hostAndPort(item, invalid: invalid, named: named)
                seeds.append(RedisClusterSeed(host: String(host), port: port))
            }
            // Each node is verified against its own announced address, not one shared name.
            let tls: RedisConfiguration.TLS = scheme == "rediss+cluster" ? .enabled(TLSSettings()) : .disabled
            return RedisConfiguration(endpoint: .cluster(seeds: seeds), username: username, password: password, tls: tls)
        case "unix", "redis+unix":
            guard rest.hasPrefix("/") else { throw invalid("a unix socket URL needs an absolute path: unix:///path/to.sock") }
            return RedisConfiguration(
                endpoint: .unixSocket(path: String(rest)),
                username: username, password: password, database: database
            )
        default:
            throw invalid("unsupported scheme \"\(scheme)\" (use redis, rediss, redis+cluster, rediss+cluster or unix)")
        }
    }

    /// `host[:port]` or `[v6]:port`; the port defaults to 6379.
    private static func hostAndPort(
        _ hostPort: Substring, invalid: (String) -> RedisError, named: (Substring) -> String
    ) throws(RedisError) -> (Substring, Int) {
        var host: Substring
        var port = 6379
        if hostPort.hasPrefix("[") {
            guard let close = hostPort.firstIndex(of: "]") else { throw invalid("unclosed IPv6 bracket") }
            host = hostPort[hostPort.index(after: hostPort.startIndex)..<close]
            let after = hostPort[hostPort.index(after: close)...]
            if !after.isEmpty {
                guard after.hasPrefix(":"), let number = Int(after.dropFirst()) else { throw invalid("malformed port") }
                port = number
            }
        } else if let colon = hostPort.lastIndex(of: ":") {
            host = hostPort[..<colon]
            guard let number = Int(hostPort[hostPort.index(after: colon)...]) else {
                throw invalid("port must be a number, got\(named(hostPort[hostPort.index(after: colon)...]))")
            }
            port = number
        } else {
            host = hostPort
        }
        guard !host.isEmpty else { throw invalid("missing host") }
        guard (1...65535).contains(port) else { throw invalid("port \(port) is out of range 1–65535") }
        guard host.allSatisfy({ $0.isLetter || $0.isNumber || "-._:".contains($0) }) else {
            throw invalid("host contains invalid characters")
        }
        return (host, port)
    }

    /// The URL with any password replaced, safe to print.
    static func redact(_ url: String) -> String {
        var text = url
        if let schemeEnd = text.range(of: "://"), let at = text[schemeEnd.upperBound...].lastIndex(of: "@") {
            let credentials = text[schemeEnd.upperBound..<at]
            if let colon = credentials.firstIndex(of: ":") {
                text.replaceSubrange(text.index(after: colon)..<at, with: "***")
            } else if !credentials.isEmpty {
                text.replaceSubrange(schemeEnd.upperBound..<at, with: "***")
            }
        }
        if let range = text.range(of: "password=") {
            let end = text[range.upperBound...].firstIndex(of: "&") ?? text.endIndex
            text.replaceSubrange(range.upperBound..<end, with: "***")
        }
        return text
    }

    static func percentDecode(_ text: Substring) -> String? {
        guard text.contains("%") else { return String(text) }
        var bytes: [UInt8] = []
        var iterator = text.utf8.makeIterator()
        while let byte = iterator.next() {
            if byte == UInt8(ascii: "%") {
                guard let high = iterator.next(), let low = iterator.next(),
                    let value = UInt8(String(decoding: [high, low], as: UTF8.self), radix: 16)
                else { return nil }
                bytes.append(value)
            } else {
                bytes.append(byte)
            }
        }
        return String(validating: bytes, as: UTF8.self)
    }
}
