import Conveyor
import Foundation

/// Settings of a ``Dashboard``.
public struct DashboardConfiguration: Sendable {
    /// Address to listen on (default `127.0.0.1`, loopback only).
    public var bindAddress: String
    /// Port to listen on; 0 picks a free one (reported to `onListening`).
    public var port: Int
    /// Required on every request when set: `Authorization: Bearer <token>`, or
    /// HTTP basic auth with any user name and the token as password (what a
    /// browser asks for). Required when ``bindAddress`` is not loopback.
    public var token: String?
    /// The archiver's history directory, for `/history` and chains that
    /// reach into archived jobs; `nil` shows Redis only.
    public var historyDirectory: String?
    /// Key layout; must match the workers'.
    public var keys: ConveyorKeys
    /// Jobs per list page (1 ... 500).
    public var pageSize: Int

    /// Creates a configuration.
    public init(
        bindAddress: String = "127.0.0.1", port: Int = 8080, token: String? = nil, historyDirectory: String? = nil,
        keys: ConveyorKeys = try! ConveyorKeys(), pageSize: Int = 50
    ) {
        self.bindAddress = bindAddress
        self.port = port
        self.token = token
        self.historyDirectory = historyDirectory
        self.keys = keys
        self.pageSize = pageSize
    }

    /// Whether ``bindAddress`` accepts connections from this host only.
    public var isLoopback: Bool {
        let address = bindAddress.lowercased()
        return address == "localhost" || address == "::1" || address == "[::1]" || address.hasPrefix("127.")
    }

    /// Checks the settings before anything listens.
    /// - Throws: ``DashboardError`` for a non-loopback bind without a token,
    ///   a token shorter than 16 characters, or a port or page size out of range.
    public func validate() throws(DashboardError) {
        guard (0...65535).contains(port) else { throw DashboardError("port must be between 0 and 65535, got \(port)") }
        guard (1...500).contains(pageSize) else { throw DashboardError("pageSize must be between 1 and 500, got \(pageSize)") }
        if let token, token.count < 16 {
            throw DashboardError("the access token must be at least 16 characters, got \(token.count)")
        }
        if !isLoopback && token == nil {
            throw DashboardError(
                "binding to \(bindAddress) exposes the dashboard beyond this host: give an access token (--token-file FILE)"
            )
        }
    }
}

/// Why the dashboard cannot start.
public struct DashboardError: Error, Sendable, CustomStringConvertible {
    /// What is wrong, in one line.
    public var message: String

    /// Creates an error.
    public init(_ message: String) { self.message = message }

    public var description: String { message }
}
