/// Script calls followed by `WAIT`: how many replicas acknowledged the writes.
extension RedisClient {
    /// The replies of ``evalPipelined(_:awaitingReplicas:replicaTimeout:timeout:)``.
    public struct ReplicatedReplies: Sendable {
        /// One reply per call, in order; error replies are values, as in ``evalPipelined(_:timeout:)``.
        public var replies: [RESPValue]
        /// Per call: how many replicas acknowledged its write (and every write
        /// sent before it on the same connection); `0` when the `WAIT` itself
        /// failed. Redis counts a master's replicas only, so on a cluster this
        /// is per master.
        public var acknowledgements: [Int]
    }

    /// Runs script calls like ``evalPipelined(_:timeout:)``, each slot's calls
    /// followed on the same connection, in the same write, by
    /// `WAIT replicas <replicaTimeout ms>`.
    ///
    /// `WAIT` blocks until `replicas` replicas acknowledged every write the
    /// connection made before it, or until `replicaTimeout` passes, and returns
    /// the count reached; it narrows what an asynchronous-replication failover
    /// can lose but does not make Redis strongly consistent (a replica that
    /// acknowledged can still lose the election). A call sent again, after
    /// `NOSCRIPT` or a cluster redirect, takes its `WAIT` along; its count is
    /// the smallest of the `WAIT`s that covered it.
    ///
    /// While replicas lag, a `WAIT` holds its pooled connection up to
    /// `replicaTimeout`, and commands of other callers multiplexed on it wait
    /// behind it: give a producer that waits its own client.
    /// - Parameters:
    ///   - calls: The script calls; each call's keys share a slot.
    ///   - replicas: The replicas each write should reach (below 1 counts as 1).
    ///   - replicaTimeout: How long `WAIT` may block (below 1 ms counts as 1 ms: `WAIT`'s 0, forever, is never sent).
    ///   - timeout: The reply timeout besides `replicaTimeout`; the configuration's `commandTimeout` by default.
    /// - Throws: ``RedisError``, as ``evalPipelined(_:timeout:)``.
    nonisolated(nonsending) public func evalPipelined(
        _ calls: [RedisScriptCall], awaitingReplicas replicas: Int, replicaTimeout: Duration, timeout: Duration? = nil
    ) async throws(RedisError) -> ReplicatedReplies {
        // Below 1 counts as 1: `WAIT 0 0` would block forever.
        let replicas = max(1, replicas)
        let waitMs = max(1, Int(replicaTimeout.components.seconds * 1000 + replicaTimeout.components.attoseconds / 1_000_000_000_000_000))
        guard !calls.isEmpty else { return ReplicatedReplies(replies: [], acknowledgements: []) }
        let total = (timeout ?? configuration.commandTimeout) + replicaTimeout
        var slots: [Int?] = []
        slots.reserveCapacity(calls.count)
        for call in calls { slots.append(try RedisCluster.slot(forKeys: call.keys, command: "EVALSHA \(call.script.name)")) }
        for call in calls where call.script.sha == nil { try await load(call.script) }

        var replies = [RESPValue](repeating: .null, count: calls.count)
        var acknowledgements = [Int](repeating: Int.max, count: calls.count)
        var pending = Array(calls.indices)
        var bySource = false
        // Round 1 by SHA; calls that hit NOSCRIPT (a node that never loaded the
        // script, or a promoted replica after a failover) go again as source.
        for _ in 0..<2 where !pending.isEmpty {
            var commands: [RedisCommand] = []
            var callOf: [Int?] = []  // the call index of each command, nil for a WAIT
            var covered: [[Int]] = []  // per WAIT, in order: the calls it acknowledges
            // On a single node one WAIT at the end covers the whole pipeline (one
            // connection); on a cluster one WAIT per slot, after its last call.
            let groupKey: (Int) -> Int = { [isCluster = router != nil] in isCluster ? slots[$0] ?? -1 : 0 }
            var lastOfGroup: [Int: Int] = [:]
            for index in pending { lastOfGroup[groupKey(index)] = index }
            var members: [Int: [Int]] = [:]
            for index in pending {
                let call = calls[index]
                // Routed by its first key, like its WAIT: into the same per-master
                // sub-pipeline, on one connection.
                commands.append(bySource ? call.sourceCommand() : call.command(sha: call.script.sha!))
                callOf.append(index)
                members[groupKey(index), default: []].append(index)
                if lastOfGroup[groupKey(index)] == index {
                    commands.append(RedisCommand("WAIT", routingKey: call.keys.first, arguments: [replicas, waitMs]))
                    callOf.append(nil)
                    covered.append(members[groupKey(index)]!)
                }
            }
            let results = try await pipeline(commands, timeout: total)
            var waitNumber = 0
            var missing: [Int] = []
            for (position, result) in results.enumerated() {
                if let index = callOf[position] {
                    replies[index] = result
                    if result.isNoScriptError { missing.append(index) }
                } else {
                    let count = result.int ?? 0
                    for index in covered[waitNumber] { acknowledgements[index] = count }
                    waitNumber += 1
                }
            }
            pending = missing
            bySource = true
        }
        return ReplicatedReplies(replies: replies, acknowledgements: acknowledgements.map { $0 == Int.max ? 0 : $0 })
    }
}
