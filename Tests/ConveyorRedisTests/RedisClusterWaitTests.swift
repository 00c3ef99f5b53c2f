import ConveyorRedis
import Foundation
import Testing

/// `evalPipelined(_:awaitingReplicas:replicaTimeout:)` on the local cluster:
/// each master's `WAIT` follows its scripts, and a script redirected to a new
/// owner takes its `WAIT` along to the node that ran it.
@Suite("Redis Cluster: WAIT behind scripts", .serialized)
struct RedisClusterWaitTests {
    /// A hash tag `{<prefix><N>}` whose slot `node` owns, other than `avoiding`'s.
    static func tag(on node: RedisClusterNode, prefix: String = "w", avoiding: String? = nil) -> String {
        var index = 0
        while true {
            let tag = "{\(prefix)\(index)}"
            let slot = RedisCluster.slot(forKey: tag)
            if node.owns(slot: slot), slot != avoiding.map(RedisCluster.slot(forKey:)) { return tag }
            index += 1
        }
    }

    @Test("one WAIT per master's scripts, acknowledged by its replica; a MOVED script is resent with its WAIT on the new owner")
    func waitFollowsScripts() async throws {
        try await TestCluster.withClient { client, ns in
            let script = RedisScript(name: "setOne", source: "redis.call('SET', KEYS[1], ARGV[1]); return ARGV[1]")
            let masters = try await client.clusterMasters()
            let calls = masters.enumerated().map { index, master in
                RedisScriptCall(script, keys: ["\(ns):\(Self.tag(on: master)):a"], arguments: ["v\(index)"])
            }
            var waitsBefore: [Int] = []
            for master in masters { waitsBefore.append(try await TestCluster.calls("wait", client, on: master)) }
            let result = try await client.evalPipelined(calls, awaitingReplicas: 1, replicaTimeout: .seconds(5))
            #expect(result.replies.map(\.string) == ["v0", "v1", "v2"])
            #expect(result.acknowledgements == [1, 1, 1], "each master's replica acknowledged")
            for (master, before) in zip(masters, waitsBefore) {
                #expect(try await TestCluster.calls("wait", client, on: master) > before, "a WAIT reached \(master.id)")
            }
            // The script is cached on every master now (NOSCRIPT was answered on each).

            // Another client moves an empty slot from masters[0] to masters[1]: this
            // client's map is stale, so its script gets MOVED from the old owner.
            let other = RedisClient(configuration: client.configuration)
            let (source, target) = (masters[0], masters[1])
            // An empty slot: not the one of the keys written above.
            let tag = Self.tag(on: source, prefix: "m", avoiding: Self.tag(on: source))
            let slot = RedisCluster.slot(forKey: tag)
            let key = "\(ns):\(tag):moved"
            do {
                try await RedisClusterTests.migrate(other, slot: slot, keys: [], from: source, to: target) { [] }
                let targetWaits = try await TestCluster.calls("wait", client, on: target)
                let moved = try await client.evalPipelined(
                    [RedisScriptCall(script, keys: [key], arguments: ["m"])], awaitingReplicas: 1, replicaTimeout: .seconds(5)
                )
                #expect(moved.replies.map(\.string) == ["m"])
                #expect(moved.acknowledgements == [1])
                let targetWaitsAfter = try await TestCluster.calls("wait", client, on: target)
                #expect(
                    targetWaitsAfter == targetWaits + 1,
                    "the resent script's WAIT ran on the node that ran the script"
                )
                #expect(try await client.send(RedisCommand("GET", routingKey: key, key)).string == "m")
                try await RedisClusterTests.migrate(other, slot: slot, keys: [key], from: target, to: source) { [] }
            } catch {
                await other.shutdown()
                throw error
            }
            await other.shutdown()
            #expect(try await client.send(RedisCommand("GET", routingKey: key, key)).string == "m")
        }
    }
}
