import ConveyorRedis

// TEMPORARY until branch cluster-client lands: its ConveyorRedis has all of this.
extension RedisCommand {
    public init(_ name: String, routingKey: String?, arguments: [any RESPArgument]) {
        self.init(name, arguments: arguments)
    }
}

public struct RedisClusterNode: Sendable {
    public var id = "single"
    public var endpoint: RedisConfiguration.Endpoint
    public func owns(slot: Int) -> Bool { true }
}

public enum RedisCluster {
    public static func slot(forKey key: String) -> Int {
        var text = Substring(key)
        if let open = text.firstIndex(of: "{"), let close = text[text.index(after: open)...].firstIndex(of: "}"),
            close != text.index(after: open)
        {
            text = text[text.index(after: open)..<close]
        }
        return HashSlot.slot(ofTag: String(text))
    }

    public static func slot(forKeys keys: [String]) throws(RedisError) -> Int? {
        let slots = Set(keys.map(slot(forKey:)))
        guard slots.count <= 1 else { throw RedisError(.unexpectedReply, message: "cross slot") }
        return slots.first
    }
}

extension RedisClient {
    public var isCluster: Bool { false }
    public func clusterMasters() async throws(RedisError) -> [RedisClusterNode] {
        [RedisClusterNode(endpoint: configuration.endpoint)]
    }
    public func send(_ command: RedisCommand, to node: RedisClusterNode) async throws(RedisError) -> RESPValue {
        try await send(command)
    }
    public func withDedicatedConnection<Result>(
        routingKey: String?, _ body: (RedisConnection) async throws(RedisError) -> Result
    ) async throws(RedisError) -> Result {
        try await withDedicatedConnection(body)
    }
}
