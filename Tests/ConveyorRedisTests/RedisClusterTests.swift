import ConveyorTestSupport
import Foundation
import Testing

@testable import ConveyorRedis

#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif

@Suite("Redis Cluster: slots and URLs (no server)")
struct RedisClusterSlotTests {
    @Test("slots match Redis's CRC16 reference values and hash tags")
    func knownSlots() {
        // Values from the Redis Cluster specification and CLUSTER KEYSLOT.
        #expect(RedisCluster.slot(forKey: "123456789") == 0x31C3 & 0x3FFF)
        #expect(RedisCluster.slot(forKey: "foo") == 12_182)
        #expect(RedisCluster.slot(forKey: "{p0}") == 15_882)
        #expect(RedisCluster.slot(forKey: "user:{p0}:due") == RedisCluster.slot(forKey: "p0"))
        // Only the first {...} counts; an empty {} means the whole key.
        #expect(RedisCluster.slot(forKey: "a{b}{c}") == RedisCluster.slot(forKey: "b"))
        #expect(RedisCluster.slot(forKey: "{}x") != RedisCluster.slot(forKey: "x"))
        #expect(RedisCluster.slot(forKey: "{}x") == RedisCluster.slot(forKeyBytes: Array("{}x".utf8)))
    }

    @Test("keys in different slots are refused, naming both")
    func crossSlotCheck() throws {
        #expect(try RedisCluster.slot(forKeys: []) == nil)
        #expect(try RedisCluster.slot(forKeys: ["q:{p1}:a", "q:{p1}:b"]) == RedisCluster.slot(forKey: "p1"))
        do {
            _ = try RedisCluster.slot(forKeys: ["q:{p1}:a", "q:{p2}:b"])
            Issue.record("expected crossSlot")
        } catch {
            #expect(error.code == .crossSlot)
            #expect(error.message.contains("q:{p1}:a") && error.message.contains("q:{p2}:b"))
        }
    }

    @Test("redis+cluster URLs list seeds; credentials and TLS apply to all")
    func clusterURLs() throws {
        let plain = try RedisConfiguration(url: "redis+cluster://127.0.0.1:7000,[::1]:7001,cache.local")
        #expect(
            plain.endpoint
                == .cluster(seeds: [
                    RedisClusterSeed(host: "127.0.0.1", port: 7000), RedisClusterSeed(host: "::1", port: 7001),
                    RedisClusterSeed(host: "cache.local", port: 6379),
                ])
        )
        #expect(plain.isCluster && plain.tls == .disabled)
        #expect(plain.redactedURL == "redis+cluster://127.0.0.1:7000,[::1]:7001,cache.local:6379")

        let secure = try RedisConfiguration(url: "rediss+cluster://app:s3cret@a:1,b:2")
        #expect(secure.username == "app" && secure.password == "s3cret")
        #expect(secure.tls == .enabled(RedisConfiguration.TLSSettings()))
        #expect(secure.redactedURL == "rediss+cluster://app:***@a:1,b:2")
        #expect(!(try RedisConfiguration(url: "redis://a:1")).isCluster)

        for bad in ["redis+cluster://a:1/2", "redis+cluster://a:1,,b:2", "redis+cluster://a:x", "redis+cluster://"] {
            #expect(throws: RedisError.self, "\(bad)") { try RedisConfiguration(url: bad) }
        }
    }
}

/// A client on the cluster of `REDIS_CLUSTER_URL` (set by scripts/with-redis-cluster.sh,
/// which `make test` wraps the suite in) and a fresh namespace whose keys are deleted afterwards.
enum TestCluster {
    static func configuration(url: String) throws -> RedisConfiguration {
        var configuration = try RedisConfiguration(url: url)
        configuration.commandTimeout = .seconds(20)
        configuration.connectTimeout = .seconds(2)
        return configuration
    }

    static func withClient(_ body: (RedisClient, _ namespace: String) async throws -> Void) async throws {
        guard let url = ProcessInfo.processInfo.environment["REDIS_CLUSTER_URL"], !url.isEmpty else {
            Issue.record("REDIS_CLUSTER_URL is not set: run under ./scripts/with-redis-cluster.sh (make test does); cluster test not run")
            return
        }
        let client = RedisClient(configuration: try configuration(url: url))
        let namespace = "test-\(UUID().uuidString)"
        do {
            try await body(client, namespace)
        } catch {
            try? await deleteKeys(client, namespace)
            await client.shutdown()
            throw error
        }
        try await deleteKeys(client, namespace)
        await client.shutdown()
    }

    /// Every key of the namespace on every master (`SCAN` per node).
    static func keys(_ client: RedisClient, namespace: String) async throws -> [String] {
        var keys: [String] = []
        for node in try await client.clusterMasters() {
            var cursor = "0"
            repeat {
                let reply = try await client.send(RedisCommand("SCAN", cursor, "MATCH", "\(namespace):*", "COUNT", 1000), to: node)
                cursor = reply.array?[0].string ?? "0"
                keys += reply.array?[1].array?.compactMap(\.string) ?? []
            } while cursor != "0"
        }
        return keys.sorted()
    }

    static func deleteKeys(_ client: RedisClient, _ namespace: String) async throws {
        let keys = try await keys(client, namespace: namespace)
        _ = try await client.pipeline(keys.map { RedisCommand("DEL", routingKey: $0, $0) })
    }

    /// A key whose slot is owned by `node`, built from `prefix`.
    static func key(_ prefix: String, on node: RedisClusterNode) -> String {
        var index = 0
        while !node.owns(slot: RedisCluster.slot(forKey: "\(prefix){t\(index)}")) { index += 1 }
        return "\(prefix){t\(index)}"
    }

    /// `field:value` lines of `INFO <section>` on one node.
    static func info(_ client: RedisClient, _ section: String, on node: RedisClusterNode) async throws -> [String: String] {
        let text = try await client.send(RedisCommand("INFO", section), to: node).string ?? ""
        var fields: [String: String] = [:]
        for line in text.split(whereSeparator: \.isNewline) {
            let parts = line.split(separator: ":", maxSplits: 1)
            if parts.count == 2 { fields[String(parts[0])] = String(parts[1]) }
        }
        return fields
    }

    /// How many `ASKING` commands a node has served.
    static func askingCalls(_ client: RedisClient, on node: RedisClusterNode) async throws -> Int {
        try await calls("asking", client, on: node)
    }

    /// How many times a node received `command` (lower case), including calls it rejected
    /// (a redirect or TRYAGAIN counts as `rejected_calls`), from `INFO commandstats`.
    static func calls(_ command: String, _ client: RedisClient, on node: RedisClusterNode) async throws -> Int {
        let stats = try await info(client, "commandstats", on: node)["cmdstat_\(command)"] ?? ""
        var total = 0
        for field in stats.split(separator: ",") {
            let parts = field.split(separator: "=")
            if parts.count == 2, ["calls", "rejected_calls", "failed_calls"].contains(parts[0]) { total += Int(parts[1]) ?? 0 }
        }
        return total
    }
}

@Suite("Redis Cluster client against a real 3-master cluster", .serialized)
struct RedisClusterTests {
    @Test("the slot function agrees with CLUSTER KEYSLOT on generated keys")
    func slotsMatchServer() async throws {
        try await TestCluster.withClient { client, _ in
            var generator = SystemRandomNumberGenerator()
            let alphabet = Array("ab{}:xyz é🚀-{{}}")
            var keys = ["", "{", "}", "{}", "{}{a}", "a{}b", "{a", "a}", "{{a}}", "user:{p0}:due", "p17.3"]
            for _ in 0..<300 {
                let length = Int.random(in: 1...24, using: &generator)
                keys.append(String((0..<length).map { _ in alphabet.randomElement(using: &generator)! }))
            }
            let replies = try await client.pipeline(keys.map { RedisCommand("CLUSTER", "KEYSLOT", $0) })
            for (key, reply) in zip(keys, replies) {
                #expect(reply.int == RedisCluster.slot(forKey: key), "key \(key)")
            }
        }
    }

    @Test("discovery finds 3 masters covering every slot; keys land on the master owning their slot")
    func routingAcrossMasters() async throws {
        try await TestCluster.withClient { client, ns in
            #expect(client.isCluster)
            let masters = try await client.clusterMasters()
            #expect(masters.count == 3)
            #expect(masters.flatMap(\.slotRanges).map(\.count).reduce(0, +) == 16_384)
            let keys = (0..<300).map { "\(ns):k\($0)" }
            for key in keys {
                #expect(try await client.send(RedisCommand("SET", routingKey: key, key, "v-\(key)")) == .simpleString("OK"))
            }
            var perMaster: [String: Int] = [:]
            for key in keys {
                let slot = RedisCluster.slot(forKey: key)
                let owners = masters.filter { $0.owns(slot: slot) }
                try #require(owners.count == 1)
                // Sent to that node without redirects: a wrong routing would get MOVED here.
                #expect(try await client.send(RedisCommand("GET", key), to: owners[0]).string == "v-\(key)")
                perMaster[owners[0].id, default: 0] += 1
            }
            #expect(perMaster.count == 3, "keys on every master: \(perMaster)")
            #expect(try await TestCluster.keys(client, namespace: ns) == keys.sorted())
            // Keyless commands go to some master.
            #expect(try await client.send("PING") == .simpleString("PONG"))
            // A keyed command without a routing key still succeeds: the MOVED reply names the slot.
            for key in keys.prefix(12) {
                #expect(try await client.send(RedisCommand("GET", key)).string == "v-\(key)")
            }
            let unrouted = try await client.pipeline(keys.prefix(12).map { RedisCommand("GET", $0) })
            #expect(unrouted.map(\.string) == keys.prefix(12).map { "v-\($0)" })
            // A blocking command goes to a dedicated connection on the key's master.
            let list = "\(ns):{list}"
            #expect(try await client.send(RedisCommand("BLPOP", routingKey: list, list, "0.05"), timeout: .seconds(5)) == .null)
            _ = try await client.send(RedisCommand("RPUSH", routingKey: list, list, "x"))
            let popped = try await client.send(RedisCommand("BLPOP", routingKey: list, list, 1), timeout: .seconds(5))
            #expect(popped.array?.compactMap(\.string) == [list, "x"])
            // A keyed command sent without a routing key to the wrong master surfaces MOVED.
            let key = keys.first { !masters[0].owns(slot: RedisCluster.slot(forKey: $0)) }!
            await #expect(throws: RedisError.self) { try await client.send(RedisCommand("GET", key), to: masters[0]) }
        }
    }

    @Test("CLUSTER SLOTS (the fallback before Redis 7) and CLUSTER SHARDS give the same slot map")
    func slotsAndShardsAgree() async throws {
        try await TestCluster.withClient { client, _ in
            let node = try #require(try await client.clusterMasters().first)
            guard case .tcp(let host, let port) = node.endpoint else { return }
            let queried = RedisClusterAddress(host: host, port: port)
            let shards = try #require(
                RedisClusterSlotMap.parseShards(try await client.send(RedisCommand("CLUSTER", "SHARDS"), to: node), queried: queried, tls: false)
            )
            let slots = try #require(RedisClusterSlotMap.parseSlots(try await client.send(RedisCommand("CLUSTER", "SLOTS"), to: node), queried: queried))
            #expect(shards.masters.count == 3 && slots.masters.count == 3)
            #expect(shards.owners.allSatisfy { $0 != RedisClusterSlotMap.noOwner })
            let fromShards = shards.owners.map { shards.masters[Int($0)].address }
            let fromSlots = slots.owners.map { slots.masters[Int($0)].address }
            #expect(fromShards == fromSlots)
            #expect(Set(shards.masters.map(\.id)) == Set(slots.masters.map(\.id)))
        }
    }

    @Test("a pipeline spanning all masters returns replies in order")
    func pipelineOrder() async throws {
        try await TestCluster.withClient { client, ns in
            let keys = (0..<31).map { "\(ns):{c\($0)}" }
            let commands = (0..<1_500).map { index in
                index % 5 == 4
                    ? RedisCommand("GET", routingKey: keys[index % 31], keys[index % 31])
                    : RedisCommand("INCR", routingKey: keys[index % 31], keys[index % 31])
            }
            let replies = try await client.pipeline(commands)
            #expect(replies.count == commands.count)
            var counts = [Int](repeating: 0, count: 31)
            var wrong = 0
            for (index, reply) in replies.enumerated() {
                if index % 5 == 4 {
                    if (reply == .null ? 0 : reply.int ?? -1) != counts[index % 31] { wrong += 1 }
                } else {
                    counts[index % 31] += 1
                    if reply != .integer(counts[index % 31]) { wrong += 1 }
                }
            }
            #expect(wrong == 0)
            let masters = try await client.clusterMasters()
            #expect(masters.filter { master in keys.contains { master.owns(slot: RedisCluster.slot(forKey: $0)) } }.count == 3)
        }
    }

    @Test("scripts run on the master of their keys; NOSCRIPT on one node reloads there; cross-slot calls throw before sending")
    func scripts() async throws {
        try await TestCluster.withClient { client, ns in
            let script = RedisScript(name: "setPair", source: "redis.call('SET', KEYS[1], ARGV[1]); redis.call('SET', KEYS[2], ARGV[1]); return ARGV[1]")
            let masters = try await client.clusterMasters()
            let calls = masters.enumerated().map { index, master in
                let tag = TestCluster.key("", on: master)
                return RedisScriptCall(script, keys: ["\(ns):\(tag):a", "\(ns):\(tag):b"], arguments: ["m\(index)"])
            }
            #expect(try await client.evalPipelined(calls).map(\.string) == ["m0", "m1", "m2"])
            // Flush one master's script cache: only that node misses, and loads it again.
            _ = try await client.send(RedisCommand("SCRIPT", "FLUSH"), to: masters[1])
            #expect(try await client.eval(calls[1]).string == "m1")
            _ = try await client.send(RedisCommand("SCRIPT", "FLUSH"), to: masters[2])
            #expect(try await client.evalPipelined(calls).map(\.string) == ["m0", "m1", "m2"])
            for call in calls {
                #expect(try await client.send(RedisCommand("GET", routingKey: call.keys[1], call.keys[1])).string != nil)
            }

            let marker = "\(ns):{x}:marker"
            let crossing = RedisScriptCall(script, keys: [marker, "\(ns):{y}:other"], arguments: ["1"])
            try await Self.expectCrossSlot { () async throws(RedisError) in _ = try await client.eval(crossing) }
            try await Self.expectCrossSlot { () async throws(RedisError) in _ = try await client.evalPipelined([calls[0], crossing]) }
            #expect(try await client.send(RedisCommand("EXISTS", routingKey: marker, marker)) == .integer(0))
        }
    }

    @Test("cross-slot script calls throw before sending on a single node too")
    func crossSlotOnSingleNode() async throws {
        try await TestRedis.withClient { client, ns in
            #expect(!client.isCluster)
            let script = RedisScript(name: "setOne", source: "redis.call('SET', KEYS[1], '1'); return 1")
            let call = RedisScriptCall(script, keys: ["\(ns):{a}:one", "\(ns):{b}:two"], arguments: [])
            try await Self.expectCrossSlot { () async throws(RedisError) in _ = try await client.eval(call) }
            try await Self.expectCrossSlot { () async throws(RedisError) in _ = try await client.evalPipelined([call]) }
            #expect(try await client.send("EXISTS", "\(ns):{a}:one") == .integer(0))
            // The single-node forms of the cluster API.
            let masters = try await client.clusterMasters()
            #expect(masters.count == 1 && masters[0].owns(slot: 0) && masters[0].owns(slot: 16_383))
            #expect(try await client.send(RedisCommand("PING"), to: masters[0]) == .simpleString("PONG"))
            let pong = try await client.withDedicatedConnection(routingKey: "\(ns):k") { connection throws(RedisError) in
                try await connection.send(RedisCommand("PING"))
            }
            #expect(pong == .simpleString("PONG"))
        }
    }

    static func expectCrossSlot(_ body: () async throws(RedisError) -> Void) async throws {
        do {
            try await body()
            Issue.record("expected a crossSlot error")
        } catch {
            #expect(error.code == .crossSlot)
        }
    }

    @Test("a slot migrating between masters: ASK during the move, MOVED after it, commands keep succeeding")
    func slotMigration() async throws {
        try await TestCluster.withClient { client, ns in
            let masters = try await client.clusterMasters()
            let (source, target) = (masters[0], masters[1])
            let tag = TestCluster.key("", on: source)
            let slot = RedisCluster.slot(forKey: tag)
            let keys = (0..<20).map { "\(ns):\(tag):\($0)" }
            for key in keys { try await client.send(RedisCommand("SET", routingKey: key, key, key)) }

            try await Self.migrate(client, slot: slot, keys: keys, from: source, to: target) {
                // Half the keys moved: the moved ones answer ASK from the source; the target serves them after ASKING.
                let asksBefore = try await TestCluster.askingCalls(client, on: target)
                for key in keys {
                    #expect(try await client.send(RedisCommand("GET", routingKey: key, key)).string == key)
                }
                let newKey = "\(ns):\(tag):new"
                #expect(try await client.send(RedisCommand("SET", routingKey: newKey, newKey, newKey)) == .simpleString("OK"))
                let pipelined = try await client.pipeline(keys.map { RedisCommand("GET", routingKey: $0, $0) })
                #expect(pipelined.map(\.string) == keys.map { Optional($0) })
                #expect(try await TestCluster.askingCalls(client, on: target) - asksBefore >= 10 + 1 + 10)
                // A multi-key command over a moved and a not-yet-moved key: the source answers TRYAGAIN,
                // the client retries with backoff until the timeout, then returns the error.
                let mgetsBefore = try await TestCluster.calls("mget", client, on: source)
                do {
                    _ = try await client.send(RedisCommand("MGET", routingKey: keys[0], keys[0], keys[15]), timeout: .milliseconds(500))
                    Issue.record("expected TRYAGAIN")
                } catch {
                    #expect((error as? RedisError)?.serverErrorPrefix == "TRYAGAIN")
                }
                #expect(try await TestCluster.calls("mget", client, on: source) - mgetsBefore >= 2, "TRYAGAIN was retried")
                return [newKey]
            }
            // The slot now belongs to the target; the client's map still says source: MOVED, then routed right.
            for key in keys {
                #expect(try await client.send(RedisCommand("GET", routingKey: key, key)).string == key)
            }
            let owner = try await Self.eventually { () async throws(RedisError) -> Bool in
                try await client.clusterMasters().first { $0.owns(slot: slot) }?.id == target.id
            }
            #expect(owner, "the refreshed topology shows the slot on the target")
            // Put the slot back, so later tests see the original layout.
            try await Self.migrate(client, slot: slot, keys: keys + ["\(ns):\(tag):new"], from: target, to: source) { [] }
            for key in keys {
                #expect(try await client.send(RedisCommand("GET", routingKey: key, key)).string == key)
            }
        }
    }

    @Test("redis-cli --cluster reshard moves 200 slots under a concurrent INCR load: no command fails, no increment is lost")
    func reshardUnderLoad() async throws {
        try await TestCluster.withClient { client, ns in
            let masters = try await client.clusterMasters()
            let source = try #require(masters.first { $0.owns(slot: 0) })
            let target = try #require(masters.first { $0.id != source.id && $0.slotRanges[0].lowerBound > 199 })
            // Keys in the 200 slots redis-cli moves (the source's lowest), 4 per slot at most.
            var keys: [String] = []
            var index = 0
            while keys.count < 120 {
                let key = "\(ns):{r\(index)}"
                if RedisCluster.slot(forKey: key) < 200 { keys.append(key) }
                index += 1
            }
            _ = try await client.pipeline(keys.map { RedisCommand("SET", routingKey: $0, $0, 0) })
            for (from, to) in [(source, target), (target, source)] {
                // redis-cli refuses to reshard while the nodes' views of the slots differ (gossip lag).
                #expect(try await Self.eventually { () async throws(RedisError) -> Bool in try await Self.nodesAgree(client) })
                let reshard = try ClusterReshard.start(from: from, to: to, slots: 200)
                let outcomes = await Self.incrementWhile(keys, client: client) { reshard.isRunning }
                #expect(reshard.succeeded, "redis-cli --cluster reshard: \(reshard.output)")
                #expect(outcomes.failed == 0, "failed INCRs: \(outcomes.errors)")
                let values = try await client.pipeline(keys.map { RedisCommand("GET", routingKey: $0, $0) })
                #expect(values.compactMap(\.int).reduce(0, +) == outcomes.succeeded)
                let owner = try await Self.eventually { () async throws(RedisError) -> Bool in
                    try await client.clusterMasters().first { $0.owns(slot: 0) }?.id == to.id
                }
                #expect(owner)
                _ = try await client.pipeline(keys.map { RedisCommand("SET", routingKey: $0, $0, 0) })
            }
        }
    }

    /// Whether every node, replicas included, reports the same slot ranges per node and no open
    /// (migrating/importing) slot in `CLUSTER NODES`, as `redis-cli --cluster` requires.
    static func nodesAgree(_ client: RedisClient) async throws(RedisError) -> Bool {
        guard let master = try await client.clusterMasters().first else { return false }
        let listing = try await client.send(RedisCommand("CLUSTER", "NODES"), to: master).string ?? ""
        var views = Set<[String]>()
        for line in listing.split(separator: "\n") {
            // <id> <ip:port@bus> ...
            let address = line.split(separator: " ")[1].split(separator: "@")[0]
            guard let colon = address.lastIndex(of: ":"), let port = Int(address[address.index(after: colon)...]) else { return false }
            let endpoint = RedisConfiguration.Endpoint.tcp(host: String(address[..<colon]), port: port)
            let connection = try await RedisConnection.connect(configuration: RedisConfiguration(endpoint: endpoint))
            let text = try await connection.send(RedisCommand("CLUSTER", "NODES")).string ?? ""
            await connection.close()
            views.insert(
                text.split(separator: "\n").map { ([$0.split(separator: " ")[0]] + $0.split(separator: " ").dropFirst(8)).joined(separator: " ") }.sorted())
        }
        return views.count == 1 && !views.first!.contains { $0.contains("[") }
    }

    /// INCRs random keys from 4 tasks until `running` says stop (checked between commands).
    static func incrementWhile(
        _ keys: [String], client: RedisClient, _ running: @escaping @Sendable () -> Bool
    ) async -> (succeeded: Int, failed: Int, errors: [String]) {
        await withTaskGroup(of: (Int, Int, [String]).self) { group in
            for _ in 0..<4 {
                group.addTask {
                    var (succeeded, failed, errors) = (0, 0, [String]())
                    repeat {
                        let key = keys.randomElement()!
                        do {
                            _ = try await client.send(RedisCommand("INCR", routingKey: key, key))
                            succeeded += 1
                        } catch {
                            failed += 1
                            if errors.count < 5 { errors.append("\(error)") }
                        }
                    } while running()
                    return (succeeded, failed, errors)
                }
            }
            var total = (succeeded: 0, failed: 0, errors: [String]())
            for await (succeeded, failed, errors) in group {
                total.succeeded += succeeded
                total.failed += failed
                total.errors += errors
            }
            return total
        }
    }

    @Test("a redirect loop (source MIGRATING, target not IMPORTING) fails with clusterRedirectLoop")
    func redirectLoop() async throws {
        try await TestCluster.withClient { client, ns in
            let masters = try await client.clusterMasters()
            let (source, target) = (masters[0], masters[1])
            let tag = TestCluster.key("", on: source)
            let slot = RedisCluster.slot(forKey: tag)
            let key = "\(ns):\(tag):absent"
            _ = try await client.send(RedisCommand("CLUSTER", "SETSLOT", slot, "MIGRATING", target.id), to: source)
            do {
                // The source says ASK target; the target, not importing, says MOVED source; and so on.
                _ = try await client.send(RedisCommand("GET", routingKey: key, key))
                Issue.record("expected clusterRedirectLoop")
            } catch {
                #expect((error as? RedisError)?.code == .clusterRedirectLoop)
            }
            _ = try await client.send(RedisCommand("CLUSTER", "SETSLOT", slot, "STABLE"), to: source)
            #expect(try await client.send(RedisCommand("GET", routingKey: key, key)) == .null)
        }
    }

    /// Moves `slot` as `redis-cli --cluster reshard` does: IMPORTING on the target, MIGRATING on
    /// the source, MIGRATE the first half of `keys`, run `during` (which returns keys created
    /// meanwhile), MIGRATE the rest, then SETSLOT NODE on every master.
    static func migrate(
        _ client: RedisClient, slot: Int, keys: [String], from source: RedisClusterNode, to target: RedisClusterNode,
        during: () async throws -> [String]
    ) async throws {
        guard case .tcp(let host, let port) = target.endpoint else { return }
        _ = try await client.send(RedisCommand("CLUSTER", "SETSLOT", slot, "IMPORTING", source.id), to: target)
        _ = try await client.send(RedisCommand("CLUSTER", "SETSLOT", slot, "MIGRATING", target.id), to: source)
        let half = keys.count / 2
        func move(_ keys: [String]) async throws {
            guard !keys.isEmpty else { return }
            let arguments: [any RESPArgument] = [host, port, "", 0, 5000, "KEYS"] + keys
            _ = try await client.send(RedisCommand("MIGRATE", arguments: arguments), to: source)
        }
        try await move(Array(keys[..<half]))
        let created = try await during()
        // Keys written during the move went to the target already (ASK); MIGRATE skips missing keys.
        try await move(Array(keys[half...]).filter { !created.contains($0) })
        for node in try await client.clusterMasters() {
            _ = try await client.send(RedisCommand("CLUSTER", "SETSLOT", slot, "NODE", target.id), to: node)
        }
    }

    static func eventually(
        timeout: Duration = .seconds(10), _ condition: () async throws(RedisError) -> Bool
    ) async throws -> Bool {
        let deadline = ContinuousClock.now + timeout
        while ContinuousClock.now < deadline {
            if try await condition() { return true }
            try await Task.sleep(for: .milliseconds(100))
        }
        return false
    }

    @Test("a killed master: its replica is promoted and commands resume after re-discovery")
    func failover() async throws {
        let cluster = try await ThrowawayCluster.start()
        defer { cluster.stop() }
        let client = RedisClient(configuration: try TestCluster.configuration(url: cluster.url))
        let ns = "failover"
        let masters = try await client.clusterMasters()
        #expect(masters.count == 3)
        let victim = masters[0]
        guard case .tcp(_, let victimPort) = victim.endpoint else { return }
        var keys: [String] = []
        for master in masters { keys += (0..<10).map { TestCluster.key("\(ns):\($0):", on: master) } }
        // Written and acknowledged by a replica (WAIT on the same connection), so the failover cannot lose them.
        for key in keys {
            let acknowledged = try await client.withDedicatedConnection(routingKey: key) { connection throws(RedisError) in
                _ = try await connection.send(RedisCommand("SET", key, key))
                return try await connection.send(RedisCommand("WAIT", 1, 2000)).int
            }
            #expect(acknowledged == 1)
        }

        try cluster.kill(port: victimPort)
        let victimKey = keys[0]
        // Concurrent writers on every master's slots while the replica takes over.
        let counters = masters.map { TestCluster.key("\(ns):counter:", on: $0) }
        async let load = Self.increment(counters, times: 40, client: client)
        // Commands for the dead master's slots succeed once a replica took over (node timeout 1 s):
        // the client retries unreachable masters and CLUSTERDOWN within the command timeout.
        let started = ContinuousClock.now
        let resumed = try await Self.retrying(for: .seconds(30)) { () async throws(RedisError) in
            try await client.send(RedisCommand("GET", routingKey: victimKey, victimKey)).string
        }
        #expect(resumed == victimKey, "resumed after \(ContinuousClock.now - started)")
        // Every acknowledged INCR is in the counter (they all ran after the kill, so on a live
        // master); an INCR that failed on a broken connection may or may not have run.
        for (counter, outcome) in zip(counters, await load) {
            let value = try await client.send(RedisCommand("GET", routingKey: counter, counter)).int ?? 0
            #expect(outcome.succeeded >= 1, "\(counter): commands resumed")
            #expect(value >= outcome.succeeded && value <= outcome.succeeded + outcome.failed, "\(counter): \(value) vs \(outcome)")
        }
        let after = try await client.clusterMasters()
        #expect(after.count == 3)
        #expect(!after.contains { $0.endpoint == victim.endpoint }, "the dead master is no longer a master")
        #expect(after.flatMap(\.slotRanges).map(\.count).reduce(0, +) == 16_384)
        let replies = try await client.pipeline(keys.map { RedisCommand("GET", routingKey: $0, $0) })
        #expect(replies.map(\.string) == keys.map { Optional($0) })
        let script = RedisScript(name: "echo", source: "return redis.call('GET', KEYS[1])")
        #expect(try await client.eval(RedisScriptCall(script, keys: [victimKey], arguments: [])).string == victimKey)
        await client.shutdown()
    }

    @Test("a TLS-only cluster: every node is verified against the CA (its IP SAN) and serves routed commands")
    func tlsCluster() async throws {
        let certificates = try await TestCertificates.make()
        defer { try? FileManager.default.removeItem(atPath: certificates.directory) }
        let cluster = try await ThrowawayCluster.start(environment: [
            "REDIS_CLUSTER_TLS_CERT": certificates.serverCertificateFile, "REDIS_CLUSTER_TLS_KEY": certificates.serverKeyFile,
            "REDIS_CLUSTER_TLS_CA": certificates.caFile,
        ])
        defer { cluster.stop() }
        var configuration = try TestCluster.configuration(url: cluster.url)
        #expect(cluster.url.hasPrefix("rediss+cluster://"))
        configuration.tls = .enabled(RedisConfiguration.TLSSettings(caFile: certificates.caFile))
        let client = RedisClient(configuration: configuration)
        let masters = try await client.clusterMasters()
        #expect(masters.count == 3)
        let keys = masters.map { TestCluster.key("tls:", on: $0) }
        let script = RedisScript(name: "setGet", source: "redis.call('SET', KEYS[1], ARGV[1]); return redis.call('GET', KEYS[1])")
        let replies = try await client.evalPipelined(keys.map { RedisScriptCall(script, keys: [$0], arguments: [$0]) })
        #expect(replies.map(\.string) == keys.map { Optional($0) })
        await client.shutdown()

        // Another CA: discovery fails on every node with the verification named.
        configuration.tls = .enabled(RedisConfiguration.TLSSettings(caFile: certificates.otherCAFile))
        let untrusting = RedisClient(configuration: configuration)
        do {
            _ = try await untrusting.send("PING")
            Issue.record("expected a TLS verification failure")
        } catch {
            #expect(error.code == .clusterTopology)
            #expect(error.message.contains("not trusted"), "\(error.message)")
        }
        await untrusting.shutdown()
    }

    /// `INCR`s each counter `times` times, one task per counter, counting acknowledged and failed calls.
    static func increment(_ counters: [String], times: Int, client: RedisClient) async -> [(succeeded: Int, failed: Int)] {
        await withTaskGroup(of: (Int, Int, Int).self) { group in
            for (index, counter) in counters.enumerated() {
                group.addTask {
                    var (succeeded, failed) = (0, 0)
                    for _ in 0..<times {
                        do {
                            _ = try await client.send(RedisCommand("INCR", routingKey: counter, counter))
                            succeeded += 1
                        } catch {
                            failed += 1
                        }
                    }
                    return (index, succeeded, failed)
                }
            }
            var outcomes = [(succeeded: Int, failed: Int)](repeating: (0, 0), count: counters.count)
            for await (index, succeeded, failed) in group { outcomes[index] = (succeeded, failed) }
            return outcomes
        }
    }

    @Test("an ACL user's credentials apply to every node (discovery and routed commands)")
    func aclUserOnEveryNode() async throws {
        guard let directory = ProcessInfo.processInfo.environment["REDIS_CLUSTER_DIR"],
            let url = ProcessInfo.processInfo.environment["REDIS_CLUSTER_URL"]
        else {
            Issue.record("REDIS_CLUSTER_URL/REDIS_CLUSTER_DIR are not set: run under ./scripts/with-redis-cluster.sh; cluster test not run")
            return
        }
        let ports = try String(contentsOfFile: "\(directory)/ports.txt", encoding: .utf8).split(separator: "\n").compactMap { Int($0) }
        let user = "acl-\(UUID().uuidString.prefix(8))"
        // ACLs are per node: set the user on all six (replicas too, as a failover would need).
        func everyNode(_ arguments: [any RESPArgument]) async throws {
            for port in ports {
                let connection = try await RedisConnection.connect(configuration: RedisConfiguration(endpoint: .tcp(host: "127.0.0.1", port: port)))
                _ = try await connection.send(RedisCommand("ACL", arguments: arguments))
                await connection.close()
            }
        }
        try await everyNode([
            "SETUSER", user, "on", ">pw-\(user)", "resetkeys", "~\(user):*", "-@all", "+get", "+set", "+del", "+cluster|shards",
            "+cluster|slots", "+asking", "+ping",
        ])
        var configuration = try TestCluster.configuration(url: url.replacingOccurrences(of: "redis+cluster://", with: "redis+cluster://\(user):pw-\(user)@"))
        configuration.poolSize = 1
        let client = RedisClient(configuration: configuration)
        let keys = try await client.clusterMasters().map { TestCluster.key("\(user):", on: $0) }
        #expect(keys.count == 3)
        for key in keys {
            #expect(try await client.send(RedisCommand("SET", routingKey: key, key, "v")) == .simpleString("OK"))
            #expect(try await client.send(RedisCommand("GET", routingKey: key, key)).string == "v")
            _ = try await client.send(RedisCommand("DEL", routingKey: key, key))
        }
        do {
            _ = try await client.send(RedisCommand("GET", routingKey: "elsewhere", "elsewhere"))
            Issue.record("expected NOPERM for a key outside the user's pattern")
        } catch {
            #expect(error.serverErrorPrefix == "NOPERM")
        }
        await client.shutdown()
        try await everyNode(["DELUSER", user])
        // Wrong credentials fail discovery with a clear error.
        let wrong = RedisClient(
            configuration: try TestCluster.configuration(url: url.replacingOccurrences(of: "redis+cluster://", with: "redis+cluster://\(user):nope@")))
        do {
            _ = try await wrong.clusterMasters()
            Issue.record("expected an authentication failure")
        } catch {
            #expect(error.code == .clusterTopology)
            #expect(error.message.contains("credentials") && !error.message.contains("nope"))
        }
        await wrong.shutdown()
    }

    /// Runs `body` until it does not throw, for at most `limit`; the last error is rethrown.
    static func retrying<T>(for limit: Duration, _ body: () async throws(RedisError) -> T) async throws -> T {
        let deadline = ContinuousClock.now + limit
        while true {
            do {
                return try await body()
            } catch {
                if ContinuousClock.now > deadline { throw error }
                try await Task.sleep(for: .milliseconds(200))
            }
        }
    }
}

/// `redis-cli --cluster reshard` running in the background.
final class ClusterReshard: Sendable {
    private let process: Process
    private let log: String

    private init(process: Process, log: String) {
        self.process = process
        self.log = log
    }

    static func start(from source: RedisClusterNode, to target: RedisClusterNode, slots: Int) throws -> ClusterReshard {
        guard case .tcp(let host, let port) = source.endpoint else { throw RedisError(.clusterTopology, message: "not a TCP node") }
        let log = FileManager.default.temporaryDirectory.appendingPathComponent("reshard-\(UUID().uuidString).log").path
        _ = FileManager.default.createFile(atPath: log, contents: nil)
        let process = Process()
        process.executableURL = URL(fileURLWithPath: "/usr/bin/env")
        process.arguments = [
            "redis-cli", "--cluster", "reshard", "\(host):\(port)", "--cluster-from", source.id, "--cluster-to", target.id,
            "--cluster-slots", String(slots), "--cluster-yes",
        ]
        let output = FileHandle(forWritingAtPath: log)
        process.standardOutput = output
        process.standardError = output
        try process.run()
        return ClusterReshard(process: process, log: log)
    }

    deinit {
        try? FileManager.default.removeItem(atPath: log)
    }

    var isRunning: Bool { process.isRunning }
    var succeeded: Bool { !process.isRunning && process.terminationStatus == 0 }
    var output: String {
        let text = (try? String(contentsOfFile: log, encoding: .utf8)) ?? ""
        // The interesting lines: errors and warnings, not the per-slot progress.
        return text.split(separator: "\n").filter { $0.contains("ERR") || $0.contains("WARN") || $0.contains("agree") }.joined(separator: "\n")
    }
}

/// A cluster of its own, started by scripts/with-redis-cluster.sh for a test that breaks it; the
/// script stops it when its standard input closes (``stop()``, or this process dying).
final class ThrowawayCluster {
    let url: String
    let directory: String
    private let process: Process
    private let input: Pipe

    private init(url: String, directory: String, process: Process, input: Pipe) {
        self.url = url
        self.directory = directory
        self.process = process
        self.input = input
    }

    /// - Parameter environment: Added to the script's environment (e.g. its `REDIS_CLUSTER_TLS_*`).
    static func start(environment: [String: String] = [:]) async throws -> ThrowawayCluster {
        let root = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent().deletingLastPathComponent()
        let info = FileManager.default.temporaryDirectory.appendingPathComponent("cluster-\(UUID().uuidString).txt")
        let process = Process()
        process.executableURL = URL(fileURLWithPath: "/bin/bash")
        process.arguments = [
            root.appendingPathComponent("scripts/with-redis-cluster.sh").path, "bash", "-c",
            "echo \"$REDIS_CLUSTER_URL $REDIS_CLUSTER_DIR\" > '\(info.path)'; cat >/dev/null",
        ]
        process.environment = ProcessInfo.processInfo.environment.merging(environment) { $1 }
        let input = Pipe()
        process.standardInput = input
        process.standardOutput = FileHandle.nullDevice
        try process.run()
        let deadline = ContinuousClock.now + .seconds(30)
        while ContinuousClock.now < deadline, process.isRunning {
            if let text = try? String(contentsOf: info, encoding: .utf8), text.hasSuffix("\n") {
                try? FileManager.default.removeItem(at: info)
                let parts = text.trimmingCharacters(in: .whitespacesAndNewlines).split(separator: " ")
                if parts.count == 2 {
                    return ThrowawayCluster(url: String(parts[0]), directory: String(parts[1]), process: process, input: input)
                }
            }
            try await Task.sleep(for: .milliseconds(100))
        }
        try? input.fileHandleForWriting.close()
        throw RedisError(.clusterTopology, message: "scripts/with-redis-cluster.sh did not start a cluster within 30 s")
    }

    /// SIGKILLs the node on `port`.
    func kill(port: Int) throws {
        let text = try String(contentsOfFile: "\(directory)/\(port)/redis.pid", encoding: .utf8)
        let pid = try #require(Int32(text.trimmingCharacters(in: .whitespacesAndNewlines)))
        #expect(killProcess(pid) == 0)
    }

    /// Closes the script's input: it stops every node and exits.
    func stop() {
        try? input.fileHandleForWriting.close()
    }
}

private func killProcess(_ pid: Int32) -> Int32 {
    kill(pid, SIGKILL)
}
