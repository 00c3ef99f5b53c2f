import ConveyorRedis

/// Moves one partition's hash slot to another master of a Redis Cluster while
/// workers, producers and archivers keep running (docs/cluster.md §7).
///
/// While a slot migrates, a partition's job hashes are split between two
/// masters, and a script that reaches an undeclared job hash fails half-way on
/// the source or reads it as missing on the target. So the mover first sets the
/// partition's ``ConveyorKeys/Partition/paused`` key: every Conveyor script on
/// the partition declares it and answers `TRYAGAIN` while it exists, which the
/// cluster client retries with backoff (up to its command timeout). Then:
/// `CLUSTER SETSLOT IMPORTING`/`MIGRATING`, `MIGRATE` of every key of the slot
/// (the pause key last, so it travels with the slot and holds on whichever
/// node runs a script), `CLUSTER SETSLOT NODE` on the target, the source and
/// the other masters, and `DEL` of the pause key.
///
/// The pause key has a TTL (``pauseTTL``), refreshed before each batch, so a
/// mover that crashes does not pause the partition for ever. A mover that
/// stops half-way throws an error that says how to finish; running the same
/// move again resumes it.
///
/// An administrative operation: the Redis user needs `CLUSTER`, `MIGRATE`
/// and the keys of the whole slot (docs/production-redis.md).
public struct ClusterPartitionMover: Sendable {
    /// The cluster client.
    public let client: RedisClient
    /// The namespace's layout.
    public let keys: ConveyorKeys
    /// How long the pause outlives a mover that stopped; refreshed before every batch.
    public var pauseTTL: Duration = .seconds(60)
    /// Keys per `MIGRATE` (1...10,000).
    public var batchSize = 100
    /// Redis's timeout for one `MIGRATE` batch.
    public var migrateTimeout: Duration = .seconds(5)

    /// A finished move.
    public struct Move: Sendable, Hashable {
        /// The partition's index.
        public var partition: Int
        /// Its hash slot.
        public var slot: Int
        /// The master that owned the slot.
        public var from: RedisClusterNode
        /// The master that owns it now.
        public var to: RedisClusterNode
        /// Keys migrated (every key of the slot, the pause key included; keys of
        /// other namespaces that share the slot move too).
        public var keysMoved: Int
        /// How long the partition was paused.
        public var paused: Duration
        /// Whether the move resumed one that an earlier run left half-done.
        public var resumed: Bool
    }

    /// Creates a mover.
    public init(client: RedisClient, keys: ConveyorKeys) {
        self.client = client
        self.keys = keys
    }

    /// Moves partition `index` to the master `target` (`host:port` as the
    /// cluster announces it, or a node id or a unique prefix of one, at least 8 characters).
    ///
    /// - Throws: ``ConveyorError`` with ``ConveyorError/Code/invalidArgument``
    ///   (unknown partition, no such node, a replica) or
    ///   ``ConveyorError/Code/invalidState`` (not a cluster, the target
    ///   already owns the slot, another migration of the slot or a pause is
    ///   under way) before changing anything; ``ConveyorError/Code/redis``
    ///   when a step fails, with the commands that finish the move by hand.
    public func move(partition index: Int, to target: String) async throws(ConveyorError) -> Move {
        guard client.isCluster else {
            throw ConveyorError(.invalidState, "not a Redis Cluster (\(client.configuration.redactedURL)): one server holds every partition")
        }
        guard keys.partitions.indices.contains(index) else {
            throw ConveyorError(.invalidArgument, "no partition \(index): the namespace has partitions 0...\(keys.partitionCount - 1)")
        }
        guard (1...10_000).contains(batchSize) else {
            throw ConveyorError(.invalidArgument, "batchSize must be 1...10000, got \(batchSize)")
        }
        let partition = keys.partition(index)
        let slot = RedisCluster.slot(forKey: partition.prefix)
        let plan = try await plan(slot: slot, target: target)
        let started = ContinuousClock.now
        let moved: Int
        do throws(MoveFailure) {
            moved = try await run(plan, partition: partition)
        } catch {
            throw error.conveyorError(plan: plan, paused: partition.paused, migrateTimeout: migrateTimeout)
        }
        return Move(
            partition: index, slot: slot, from: plan.source.node, to: plan.target.node, keysMoved: moved,
            paused: ContinuousClock.now - started, resumed: plan.resume
        )
    }

    // MARK: Topology

    /// One line of `CLUSTER NODES`.
    struct NodeLine: Sendable, Hashable {
        var id: String
        var host: String
        var port: Int
        var flags: Set<String>
        var slots: [ClosedRange<Int>]
        /// slot → the node it migrates to (only in the `myself` line).
        var migrating: [Int: String]
        /// slot → the node it is imported from (only in the `myself` line).
        var importing: [Int: String]

        var isMaster: Bool { flags.contains("master") }
        var isUsable: Bool { flags.isDisjoint(with: ["fail", "noaddr", "handshake"]) && port > 0 }
        var node: RedisClusterNode { RedisClusterNode(id: id, endpoint: .tcp(host: host, port: port), slotRanges: slots) }
        var address: String { host.contains(":") ? "[\(host)]:\(port)" : "\(host):\(port)" }
    }

    /// Parses `CLUSTER NODES` (`<id> <ip:port@cport[,hostname]> <flags> <master> <ping> <pong> <epoch> <link> <slot>…`).
    static func parseNodes(_ text: String) -> [NodeLine] {
        text.split(separator: "\n").compactMap { line in
            let fields = line.split(separator: " ")
            guard fields.count >= 8 else { return nil }
            let address = fields[1].split(separator: ",")[0].split(separator: "@")[0]
            guard let colon = address.lastIndex(of: ":"), let port = Int(address[address.index(after: colon)...]) else { return nil }
            var host = String(address[..<colon])
            if host.hasPrefix("["), host.hasSuffix("]") { host = String(host.dropFirst().dropLast()) }
            var node = NodeLine(
                id: String(fields[0]), host: host, port: port, flags: Set(fields[2].split(separator: ",").map(String.init)),
                slots: [], migrating: [:], importing: [:]
            )
            for field in fields.dropFirst(8) {
                if field.hasPrefix("[") {
                    // [slot->-id] migrating, [slot-<-id] importing
                    let inner = field.dropFirst().dropLast()
                    if let arrow = inner.range(of: "->-"), let slot = Int(inner[..<arrow.lowerBound]) {
                        node.migrating[slot] = String(inner[arrow.upperBound...])
                    } else if let arrow = inner.range(of: "-<-"), let slot = Int(inner[..<arrow.lowerBound]) {
                        node.importing[slot] = String(inner[arrow.upperBound...])
                    }
                } else if let dash = field.firstIndex(of: "-"), let first = Int(field[..<dash]),
                    let last = Int(field[field.index(after: dash)...]), first <= last
                {
                    node.slots.append(first...last)
                } else if let single = Int(field) {
                    node.slots.append(single...single)
                }
            }
            return node
        }
    }

    /// The checked move: each node as it describes itself.
    struct Plan: Sendable {
        var slot: Int
        var source: NodeLine
        var target: NodeLine
        var others: [NodeLine]
        /// An earlier run left this very move half-done (MIGRATING source → target, IMPORTING target ← source).
        var resume: Bool
    }

    private func send(_ command: RedisCommand, to node: NodeLine, timeout: Duration? = nil) async throws(RedisError) -> RESPValue {
        try await client.send(command, to: node.node, timeout: timeout)
    }

    /// Reads every master's own view (`CLUSTER NODES`'s `myself` line carries
    /// the slot's migration state) and checks the move before anything changes.
    func plan(slot: Int, target: String) async throws(ConveyorError) -> Plan {
        var view: [NodeLine] = []
        var selves: [NodeLine] = []
        do throws(RedisError) {
            guard let seed = try await client.clusterMasters().first else {
                throw RedisError(.clusterTopology, message: "the cluster has no master")
            }
            view = Self.parseNodes(try await client.send(RedisCommand("CLUSTER", "NODES"), to: seed).string ?? "")
            for line in view where line.isMaster && line.isUsable {
                let own = Self.parseNodes(try await send(RedisCommand("CLUSTER", "NODES"), to: line).string ?? "")
                if let me = own.first(where: { $0.flags.contains("myself") }) { selves.append(me) }
            }
        } catch {
            throw ConveyorError(error)
        }
        let owners = selves.filter { $0.node.owns(slot: slot) }
        guard owners.count == 1, let source = owners.first else {
            throw ConveyorError(
                .invalidState,
                "slot \(slot) has \(owners.isEmpty ? "no master" : "\(owners.count) masters claiming it (\(owners.map(\.address)))") right now;"
                    + " let the cluster settle (redis-cli --cluster check) and try again"
            )
        }
        let candidates = view.filter { line in
            line.address == target || line.id == target || (target.count >= 8 && line.id.hasPrefix(target))
        }
        guard candidates.count == 1, let named = candidates.first else {
            let masters = selves.map { "\($0.address) (\($0.id.prefix(8)))" }.joined(separator: ", ")
            throw ConveyorError(
                .invalidArgument,
                candidates.isEmpty
                    ? "no cluster node \"\(target)\": give host:port as the cluster announces it, or a node id; masters: \(masters)"
                    : "\"\(target)\" names \(candidates.count) nodes: give more of the id"
            )
        }
        guard named.isMaster, let dst = selves.first(where: { $0.id == named.id }) else {
            throw ConveyorError(
                .invalidArgument,
                "\(named.address) is \(named.isMaster ? "a master that is failing or unreachable" : "a replica"): the target must be a healthy master"
            )
        }
        guard dst.id != source.id else {
            throw ConveyorError(.invalidState, "\(dst.address) already owns slot \(slot): nothing to move")
        }
        let resume = source.migrating[slot] == dst.id && dst.importing[slot] == source.id
        let foreign =
            source.migrating[slot].map { "\(source.address) migrates it to \($0.prefix(8))" }
            ?? selves.first(where: { $0.importing[slot] != nil }).map { "\($0.address) imports it from \($0.importing[slot]!.prefix(8))" }
        if let foreign, !resume {
            throw ConveyorError(
                .invalidState,
                "another migration of slot \(slot) is in progress (\(foreign)): let it finish"
                    + " (redis-cli --cluster check / fix) before moving the partition"
            )
        }
        return Plan(slot: slot, source: source, target: dst, others: selves.filter { $0.id != source.id && $0.id != dst.id }, resume: resume)
    }

    // MARK: The move

    /// A step that failed after the checks.
    struct MoveFailure: Error {
        enum State {
            /// The pause key existed: nothing was changed.
            case alreadyPaused
            /// The failure was undone (pause dropped, slot stable): nothing changed.
            case undone
            /// The slot is left MIGRATING/IMPORTING, the partition paused until its TTL.
            case halfway(keysMoved: Bool)
            /// The slot moved; only the unpause failed.
            case handedOver
        }
        var step: String
        var error: RedisError
        var state: State

        func conveyorError(plan: Plan, paused: String, migrateTimeout: Duration) -> ConveyorError {
            let source = "redis-cli -h \(plan.source.host) -p \(plan.source.port)"
            let target = "redis-cli -h \(plan.target.host) -p \(plan.target.port)"
            let what = "moving slot \(plan.slot) from \(plan.source.address) to \(plan.target.address)"
            switch state {
            case .alreadyPaused:
                return ConveyorError(
                    .invalidState,
                    "\(paused) exists: another move of this partition is running, or an operator paused it"
                        + " (conveyor cluster-resume-partition, or wait for its TTL); nothing changed"
                )
            case .undone:
                return ConveyorError(
                    .redis, "\(what) failed at \(step): \(error); undone: the slot stays on \(plan.source.address), the partition is not paused"
                )
            case .handedOver:
                return ConveyorError(
                    .redis,
                    "\(what): the slot moved, but \(step) failed: \(error); the partition stays paused until the key expires"
                        + " (at most the pause TTL), or: \(target) DEL '\(paused)'"
                )
            case .halfway(let keysMoved):
                let timeoutMs = Int(migrateTimeout / .milliseconds(1))
                var text = """
                    \(what) failed at \(step): \(error).
                    The slot is left MIGRATING on \(plan.source.address) and IMPORTING on \(plan.target.address); the partition stays \
                    paused until its pause key (\(paused)) expires. Fix the cause and run the same move again: it resumes. \
                    Or finish by hand (with Conveyor's Redis credentials; pause first, so scripts wait):
                      redis-cli -c -h \(plan.source.host) -p \(plan.source.port) SET '\(paused)' manual PX 600000
                      \(source) CLUSTER GETKEYSINSLOT \(plan.slot) 100   # repeat with the next line until only the pause key is listed
                      \(source) MIGRATE \(plan.target.host) \(plan.target.port) "" 0 \(timeoutMs) [AUTH2 user password] KEYS <the listed keys>
                      \(source) MIGRATE \(plan.target.host) \(plan.target.port) "" 0 \(timeoutMs) [AUTH2 user password] KEYS '\(paused)'
                      \(target) CLUSTER SETSLOT \(plan.slot) NODE \(plan.target.id)
                      \(source) CLUSTER SETSLOT \(plan.slot) NODE \(plan.target.id)
                    """
                for other in plan.others {
                    text += "\n  redis-cli -h \(other.host) -p \(other.port) CLUSTER SETSLOT \(plan.slot) NODE \(plan.target.id)"
                }
                text += "\n  \(target) DEL '\(paused)'"
                if !keysMoved {
                    text += """

                        No key had moved yet, so cancelling is also safe:
                          \(target) CLUSTER SETSLOT \(plan.slot) STABLE
                          \(source) CLUSTER SETSLOT \(plan.slot) STABLE
                          \(source) DEL '\(paused)'
                        """
                }
                return ConveyorError(.redis, text)
            }
        }
    }

    /// `MIGRATE`'s credentials for the target: the client's own.
    private var migrateAuth: [String] {
        guard let password = client.configuration.password else { return [] }
        if let user = client.configuration.username { return ["AUTH2", user, password] }
        return ["AUTH", password]
    }

    /// Pauses the partition, migrates the slot, hands it over, unpauses; returns the keys moved.
    private func run(_ plan: Plan, partition: ConveyorKeys.Partition) async throws(MoveFailure) -> Int {
        let ttl = String(Int(pauseTTL / .milliseconds(1)))
        let paused = partition.paused
        let slot = String(plan.slot)
        var moved = 0

        // 1. Pause. Routed (ASK is followed): on a resumed move the key may already be on the target.
        var set = RedisCommand("SET", argumentList: [paused, "move-\(UInt64.random(in: 0...UInt64.max))"] + (plan.resume ? [] : ["NX"]) + ["PX", ttl])
        set.routingKey = paused
        let wasSet: Bool
        do throws(RedisError) {
            wasSet = try await !client.send(set).isNull
        } catch {
            throw MoveFailure(step: "pausing", error: error, state: .undone)
        }
        guard wasSet else {
            throw MoveFailure(step: "pausing", error: RedisError(.unexpectedReply, message: "already paused"), state: .alreadyPaused)
        }

        // 2. Open the slot on both sides (importing first, as redis-cli does).
        if !plan.resume {
            do throws(RedisError) {
                _ = try await send(RedisCommand("CLUSTER", "SETSLOT", slot, "IMPORTING", plan.source.id), to: plan.target)
                _ = try await send(RedisCommand("CLUSTER", "SETSLOT", slot, "MIGRATING", plan.target.id), to: plan.source)
            } catch {
                // Nothing moved yet: put the slot back and unpause.
                do throws(RedisError) {
                    _ = try await send(RedisCommand("CLUSTER", "SETSLOT", slot, "STABLE"), to: plan.target)
                    _ = try await send(RedisCommand("CLUSTER", "SETSLOT", slot, "STABLE"), to: plan.source)
                    _ = try await send(RedisCommand("DEL", paused), to: plan.source)
                } catch {
                    throw MoveFailure(step: "CLUSTER SETSLOT IMPORTING/MIGRATING", error: error, state: .halfway(keysMoved: false))
                }
                throw MoveFailure(step: "CLUSTER SETSLOT IMPORTING/MIGRATING", error: error, state: .undone)
            }
        }

        // 3. Every key of the slot, the pause key last.
        let timeoutMs = Int(migrateTimeout / .milliseconds(1))
        let migrate = [plan.target.host, String(plan.target.port), "", "0", String(timeoutMs)] + migrateAuth + ["KEYS"]
        do throws(RedisError) {
            while true {
                // Keep the pause alive while moving (routed: on a resume it may already be on the target).
                let alive = try await client.send(RedisCommand("PEXPIRE", routingKey: paused, paused, ttl))
                guard alive.int == 1 else {
                    throw RedisError(.unexpectedReply, message: "the pause key \(paused) is gone (expired?): scripts are no longer paused")
                }
                let listed = try await send(RedisCommand("CLUSTER", "GETKEYSINSLOT", slot, String(batchSize + 1)), to: plan.source)
                let batch = (listed.array ?? []).compactMap(\.string).filter { $0 != paused }.prefix(batchSize)
                if batch.isEmpty { break }
                _ = try await send(RedisCommand("MIGRATE", argumentList: migrate + batch), to: plan.source, timeout: migrateTimeout + .seconds(5))
                moved += batch.count
            }
            let last = try await send(RedisCommand("MIGRATE", argumentList: migrate + [paused]), to: plan.source, timeout: migrateTimeout + .seconds(5))
            if last.string != "NOKEY" { moved += 1 }
        } catch {
            throw MoveFailure(step: "MIGRATE", error: error, state: .halfway(keysMoved: moved > 0 || plan.resume))
        }

        // 4. Hand the slot over: the target first (it bumps its epoch), then the source, then the others.
        do throws(RedisError) {
            for node in [plan.target, plan.source] + plan.others {
                _ = try await send(RedisCommand("CLUSTER", "SETSLOT", slot, "NODE", plan.target.id), to: node)
            }
        } catch {
            throw MoveFailure(step: "CLUSTER SETSLOT NODE", error: error, state: .halfway(keysMoved: true))
        }

        // 5. Unpause on the new owner.
        do throws(RedisError) {
            _ = try await send(RedisCommand("DEL", paused), to: plan.target)
        } catch {
            throw MoveFailure(step: "DEL \(paused)", error: error, state: .handedOver)
        }
        return moved
    }
}
