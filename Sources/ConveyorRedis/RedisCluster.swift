/// Redis Cluster's key-to-slot mapping, computed locally (no I/O).
///
/// A key's slot is CRC16-XMODEM of its hash tag, the text between the first
/// `{` and the next `}` when that text is non-empty, or else of the whole
/// key, modulo 16,384. Keys sharing a hash tag share a slot, so one script or
/// multi-key command may use them together on a cluster.
public enum RedisCluster {
    /// The number of hash slots of every Redis Cluster.
    public static let slotCount = 16_384

    /// The hash slot of `key`, as `CLUSTER KEYSLOT` computes it.
    public static func slot(forKey key: String) -> Int {
        if let slot = key.utf8.withContiguousStorageIfAvailable({ slot(forKeyBytes: $0) }) {
            return slot
        }
        return slot(forKeyBytes: Array(key.utf8))
    }

    /// The hash slot of a binary key.
    public static func slot(forKeyBytes key: some Collection<UInt8>) -> Int {
        // The hash tag: after the first `{`, up to the next `}`, if non-empty.
        if let open = key.firstIndex(of: UInt8(ascii: "{")) {
            let afterOpen = key.index(after: open)
            if let close = key[afterOpen...].firstIndex(of: UInt8(ascii: "}")), close != afterOpen {
                return Int(crc16(key[afterOpen..<close]) & 0x3FFF)
            }
        }
        return Int(crc16(key) & 0x3FFF)
    }

    /// The one slot all `keys` share, `nil` for no keys. `command` names the
    /// caller in the error (built only when there is one).
    ///
    /// - Throws: ``RedisError`` with code ``RedisError/Code/crossSlot`` naming two
    ///   keys in different slots; Redis Cluster refuses such a command or script,
    ///   and the check runs on a single node too, so a key-layout bug fails in
    ///   every test rather than only on a cluster.
    public static func slot(
        forKeys keys: [String], command: @autoclosure () -> String = "script"
    ) throws(RedisError) -> Int? {
        guard let first = keys.first else { return nil }
        let slot = slot(forKey: first)
        for key in keys.dropFirst() {
            let other = Self.slot(forKey: key)
            if other != slot {
                throw RedisError(
                    .crossSlot,
                    message: "\(command()): keys \"\(first)\" (slot \(slot)) and \"\(key)\" (slot \(other)) are in different hash slots;"
                        + " every key of one command or script must share a hash tag"
                )
            }
        }
        return slot
    }

    /// CRC16-XMODEM (polynomial 0x1021, initial value 0), the variant Redis uses.
    static func crc16(_ bytes: some Collection<UInt8>) -> UInt16 {
        var crc: UInt16 = 0
        for byte in bytes {
            crc = (crc << 8) ^ crc16Table[Int(UInt8(truncatingIfNeeded: crc >> 8) ^ byte)]
        }
        return crc
    }

    private static let crc16Table: [UInt16] = (0..<256).map { index in
        var crc = UInt16(index) << 8
        for _ in 0..<8 {
            crc = crc & 0x8000 != 0 ? (crc << 1) ^ 0x1021 : crc << 1
        }
        return crc
    }
}

/// A node given in the configuration, used only to discover the cluster's topology.
public struct RedisClusterSeed: Sendable, Hashable, CustomStringConvertible {
    /// Host name or IP address.
    public var host: String
    /// TCP port.
    public var port: Int

    /// Creates a seed.
    public init(host: String, port: Int) {
        self.host = host
        self.port = port
    }

    public var description: String { host.contains(":") ? "[\(host)]:\(port)" : "\(host):\(port)" }
}

/// A master of a Redis Cluster and the slots it serves, as last discovered.
public struct RedisClusterNode: Sendable, Hashable, CustomStringConvertible {
    /// The node's cluster id (40 hex characters); on a single node, its endpoint's description.
    public var id: String
    /// Where the node listens.
    public var endpoint: RedisConfiguration.Endpoint
    /// The slot ranges it serves, ascending.
    public var slotRanges: [ClosedRange<Int>]

    /// Creates a node description.
    public init(id: String, endpoint: RedisConfiguration.Endpoint, slotRanges: [ClosedRange<Int>]) {
        self.id = id
        self.endpoint = endpoint
        self.slotRanges = slotRanges
    }

    /// Whether the node served `slot` when the topology was read.
    public func owns(slot: Int) -> Bool {
        slotRanges.contains { $0.contains(slot) }
    }

    public var description: String { "\(endpoint) (\(id.prefix(8)))" }
}
