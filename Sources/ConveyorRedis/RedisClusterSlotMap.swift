import NIOCore

/// A cluster node's address as the cluster announces it (or a `MOVED` names it).
struct RedisClusterAddress: Hashable, Sendable, CustomStringConvertible {
    var host: String
    var port: Int

    var description: String { host.contains(":") ? "[\(host)]:\(port)" : "\(host):\(port)" }

    /// Parses the `host:port` of a `MOVED`/`ASK` reply; an empty host means
    /// the node that replied (the cluster does not know the target's address).
    init?(redirectTarget text: Substring, replyingNode: RedisClusterAddress) {
        guard let colon = text.lastIndex(of: ":"), let port = Int(text[text.index(after: colon)...]) else { return nil }
        var host = text[..<colon]
        if host.hasPrefix("[") && host.hasSuffix("]") { host = host.dropFirst().dropLast() }
        self.host = host.isEmpty ? replyingNode.host : String(host)
        self.port = port
    }

    init(host: String, port: Int) {
        self.host = host
        self.port = port
    }
}

/// Which master serves each hash slot: a flat 16,384-entry array of small
/// indices into `masters`, so routing is one array read under the router's lock.
struct RedisClusterSlotMap: Sendable {
    struct Master: Sendable {
        var id: String
        var address: RedisClusterAddress
        /// The announced host name (`CLUSTER SHARDS`), checked by TLS when set.
        var hostname: String?
        var slotRanges: [ClosedRange<Int>]
    }

    static let noOwner = UInt16.max
    var masters: [Master]
    var owners: [UInt16]

    init(masters: [Master]) {
        self.masters = masters
        owners = Array(repeating: Self.noOwner, count: RedisCluster.slotCount)
        for (index, master) in masters.enumerated() {
            for range in master.slotRanges where range.lowerBound >= 0 && range.upperBound < RedisCluster.slotCount {
                for slot in range { owners[slot] = UInt16(index) }
            }
        }
    }

    /// Applies a `MOVED`: `slot` is now served by `address`.
    mutating func move(slot: Int, to address: RedisClusterAddress) {
        guard (0..<RedisCluster.slotCount).contains(slot) else { return }
        if let index = masters.firstIndex(where: { $0.address == address }) {
            owners[slot] = UInt16(index)
        } else {
            masters.append(Master(id: "?", address: address, hostname: nil, slotRanges: []))
            owners[slot] = UInt16(masters.count - 1)
        }
    }

    /// Parses a `CLUSTER SHARDS` reply (Redis 7; RESP2: each shard and node a flat key/value array).
    static func parseShards(_ reply: RESPValue, queried: RedisClusterAddress, tls: Bool) -> RedisClusterSlotMap? {
        guard let shards = reply.array else { return nil }
        var masters: [Master] = []
        for shard in shards {
            let fields = dictionary(shard)
            guard let slotValues = fields["slots"]?.array, !slotValues.isEmpty, let nodes = fields["nodes"]?.array else { continue }
            var ranges: [ClosedRange<Int>] = []
            var index = 0
            while index + 1 < slotValues.count {
                if let low = slotValues[index].int, let high = slotValues[index + 1].int, low <= high { ranges.append(low...high) }
                index += 2
            }
            // A shard lists its failed old master next to the promoted one for a while: prefer an online master.
            let candidates = nodes.map(dictionary).filter { $0["role"]?.string == "master" }
            guard let master = candidates.first(where: { $0["health"]?.string == "online" }) ?? candidates.first,
                let id = master["id"]?.string
            else { continue }
            let port = (tls ? master["tls-port"]?.int : nil) ?? master["port"]?.int
            guard let port else { continue }
            var host = master["endpoint"]?.string ?? ""
            if host.isEmpty || host == "?" { host = master["ip"]?.string ?? "" }
            if host.isEmpty || host == "?" { host = queried.host }
            let hostname = master["hostname"]?.string.flatMap { $0.isEmpty ? nil : $0 }
            masters.append(Master(id: id, address: RedisClusterAddress(host: host, port: port), hostname: hostname, slotRanges: ranges))
        }
        return masters.isEmpty ? nil : RedisClusterSlotMap(masters: merged(masters))
    }

    /// Parses a `CLUSTER SLOTS` reply: `[start, end, [ip, port, id, ...], replicas...]` per range.
    static func parseSlots(_ reply: RESPValue, queried: RedisClusterAddress) -> RedisClusterSlotMap? {
        guard let entries = reply.array else { return nil }
        var masters: [Master] = []
        for entry in entries {
            guard let items = entry.array, items.count >= 3, let low = items[0].int, let high = items[1].int, low <= high,
                let node = items[2].array, node.count >= 2, let port = node[1].int
            else { continue }
            var host = node[0].string ?? ""
            if host.isEmpty || host == "?" { host = queried.host }
            let id = node.count >= 3 ? node[2].string ?? "?" : "?"
            masters.append(Master(id: id, address: RedisClusterAddress(host: host, port: port), hostname: nil, slotRanges: [low...high]))
        }
        return masters.isEmpty ? nil : RedisClusterSlotMap(masters: merged(masters))
    }

    /// One entry per master, its ranges sorted.
    private static func merged(_ masters: [Master]) -> [Master] {
        var result: [Master] = []
        for master in masters {
            if let index = result.firstIndex(where: { $0.address == master.address }) {
                result[index].slotRanges += master.slotRanges
            } else {
                result.append(master)
            }
        }
        for index in result.indices { result[index].slotRanges.sort { $0.lowerBound < $1.lowerBound } }
        return result
    }

    private static func dictionary(_ value: RESPValue) -> [String: RESPValue] {
        guard let items = value.array else { return [:] }
        var fields: [String: RESPValue] = [:]
        var index = 0
        while index + 1 < items.count {
            if let key = items[index].string { fields[key] = items[index + 1] }
            index += 2
        }
        return fields
    }
}

extension RESPValue {
    var errorMessage: String? {
        if case .error(let message) = self { return message }
        return nil
    }
}
