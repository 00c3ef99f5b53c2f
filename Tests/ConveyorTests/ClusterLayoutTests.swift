import ConveyorRedis
import Foundation
import Testing

@testable import Conveyor
@testable import ConveyorCLI

/// Partition hash tags on a Redis Cluster (docs/cluster.md §3) and the
/// one-slot-per-script contract, checked with ConveyorRedis's slot function
/// (an implementation independent of the one that chooses the tags).
@Suite("Cluster key layout")
struct ClusterLayoutTests {
    /// The slot ranges `redis-cli --cluster create` gives `masters` masters.
    static func equalRanges(masters: Int) -> [ClosedRange<Int>] {
        let perMaster = 16384.0 / Double(masters)
        var first = 0
        var cursor = 0.0
        var ranges: [ClosedRange<Int>] = []
        for index in 0..<masters {
            var last = Int((cursor + perMaster - 1).rounded())
            if last > 16383 || index == masters - 1 { last = 16383 }
            ranges.append(first...last)
            first = last + 1
            cursor += perMaster
        }
        return ranges
    }

    @Test("indexed tags are today's {pN}, the default")
    func indexedTagsUnchanged() throws {
        let keys = try ConveyorKeys(namespace: "ns", partitionCount: 3)
        #expect(keys.partitionTags == .indexed)
        #expect(keys.partitions.map(\.prefix) == ["ns:{p0}:", "ns:{p1}:", "ns:{p2}:"])
        #expect(keys.recordedLayoutVersion == ConveyorKeys.layoutVersion)
    }

    @Test("slot-spread tags for 1…64 partitions land in their strata, and are the documented ones for 6")
    func spreadTagsInStrata() throws {
        for count in 1...64 {
            let keys = try ConveyorKeys(namespace: "ns", partitionCount: count, partitionTags: .slotSpread)
            for partition in keys.partitions {
                let slot = RedisCluster.slot(forKey: partition.due)
                let stratum = (partition.index * 16384 / count)..<((partition.index + 1) * 16384 / count)
                #expect(stratum.contains(slot), "partition \(partition.index) of \(count): slot \(slot) outside \(stratum)")
            }
        }
        let six = try ConveyorKeys(namespace: "conveyor", partitionCount: 6, partitionTags: .slotSpread)
        #expect(six.partitions.map(\.prefix) == ["p0.1", "p1.3", "p2.2", "p3.11", "p4.20", "p5.0"].map { "conveyor:{\($0)}:" })
        #expect(six.partitions.map { RedisCluster.slot(forKey: $0.seq) } == [1099, 4921, 6728, 10146, 13309, 16282])
    }

    @Test("with M equal masters each gets N/M spread partitions when M divides N, at most one more than ⌈N/M⌉ otherwise")
    func spreadBalancedOverMasters() throws {
        for masters in 1...6 {
            let ranges = Self.equalRanges(masters: masters)
            for count in 1...64 {
                let keys = try ConveyorKeys(namespace: "ns", partitionCount: count, partitionTags: .slotSpread)
                let slots = keys.partitions.map { RedisCluster.slot(forKey: $0.wake) }
                let perMaster = ranges.map { range in slots.filter { range.contains($0) }.count }
                if count % masters == 0 {
                    #expect(perMaster == Array(repeating: count / masters, count: masters), "\(count) over \(masters): \(perMaster)")
                } else {
                    let ceiling = (count + masters - 1) / masters
                    #expect(perMaster.max()! <= ceiling + 1, "\(count) over \(masters): \(perMaster)")
                }
            }
        }
        // With indexed tags the 3-partition case leaves a master idle (the reason for spread tags).
        let indexed = try ConveyorKeys(namespace: "ns", partitionCount: 3)
        let ranges = Self.equalRanges(masters: 3)
        let used = Set(indexed.partitions.map { slot in ranges.firstIndex { $0.contains(RedisCluster.slot(forKey: slot.due)) }! })
        #expect(used.count < 3)
    }

    @Test("spread tags are bounded by the slot count")
    func spreadBound() throws {
        #expect(throws: ConveyorError.self) { try ConveyorKeys(partitionCount: 16385, partitionTags: .slotSpread) }
    }

    @Test("every script's KEYS for a partition share one slot, with both tag schemes")
    func scriptKeysShareOneSlot() throws {
        for tags in ConveyorKeys.PartitionTags.allCases {
            for count in [1, 3, 7, 12, 64] {
                let keys = try ConveyorKeys(namespace: "a:b c*é", partitionCount: count, partitionTags: tags)
                for partition in keys.partitions {
                    let expected = RedisCluster.slot(forKey: partition.prefix)
                    for signature in ScriptSignature.all {
                        let call: RedisScriptCall
                        if signature.keys.contains(.archivers) {
                            call = signature.call(keys, [])
                            #expect(call.keys.count == 1, "\(signature.script.name) takes one namespace-wide key")
                            continue
                        }
                        call = signature.call(partition, [], workerId: "worker-{x}:1")
                        let slots = Set(call.keys.map { RedisCluster.slot(forKey: $0) })
                        #expect(slots == [expected], "\(signature.script.name) on partition \(partition.index) (\(tags)): \(call.keys)")
                        // The client's own check agrees (it throws crossSlot before sending).
                        #expect(try RedisCluster.slot(forKeys: call.keys) == expected)
                    }
                    // Keys the scripts derive from KEYS (job hashes, stats) share it too.
                    for derived in [partition.job(12345), partition.stats(minute: 29_000_000), partition.recoveryLock] {
                        #expect(RedisCluster.slot(forKey: derived) == expected, "\(derived)")
                    }
                }
            }
        }
    }

    @Test("the layout records the tag scheme: spread is version 3, an indexed process is refused with a clear error")
    func layoutRecordsTags() async throws {
        try await TestRedis.withClient { client, ns in
            let spread = try ConveyorKeys(namespace: ns, partitionCount: 3, partitionTags: .slotSpread)
            #expect(try await spread.recordedPartitionTags(client: client) == nil)
            try await spread.verifyLayout(client: client)
            #expect(try await client.send("HGET", spread.layout, "version").string == "3")
            #expect(try await client.send("HGET", spread.layout, "tags").string == "spread")
            #expect(try await spread.recordedPartitionTags(client: client) == .slotSpread)
            try await spread.verifyLayout(client: client)

            let indexed = try ConveyorKeys(namespace: ns, partitionCount: 3)
            let error = await #expect(throws: ConveyorError.self) { try await indexed.verifyLayout(client: client) }
            #expect(error?.code == .layoutMismatch)
            #expect(error?.message.contains("uses spread partition tags in Redis") == true, "\(String(describing: error))")
            #expect(error?.message.contains("--partition-tags") == true)
            #expect(try await client.send("HGET", spread.layout, "tags").string == "spread", "unchanged")
        }
    }

    @Test("a namespace recorded before tags existed (version 2, no tags field) stays indexed and refuses spread")
    func oldNamespaceStaysIndexed() async throws {
        try await TestRedis.withClient { client, ns in
            let indexed = try ConveyorKeys(namespace: ns, partitionCount: 2)
            _ = try await client.send("HSET", indexed.layout, "partitions", 2, "version", 2)
            #expect(try await indexed.recordedPartitionTags(client: client) == .indexed)
            try await indexed.verifyLayout(client: client)
            let spread = try ConveyorKeys(namespace: ns, partitionCount: 2, partitionTags: .slotSpread)
            let error = await #expect(throws: ConveyorError.self) { try await spread.verifyLayout(client: client) }
            #expect(error?.message.contains("uses indexed partition tags in Redis") == true, "\(String(describing: error))")
            #expect(try await client.send("HGETALL", indexed.layout).array?.count == 4, "no tags field written")
        }
    }

    @Test("cluster-status on a single node: the one server owns every partition")
    func clusterStatusSingleNode() async throws {
        try await TestRedis.withClient { client, ns in
            let keys = try ConveyorKeys(namespace: ns, partitionCount: 4, partitionTags: .slotSpread)
            let layout = ClusterStatusCommand.layout(keys: keys, masters: try await client.clusterMasters())
            #expect(layout.count == 1)
            #expect(layout.first?.partitions.map(\.index) == [0, 1, 2, 3])
            #expect(layout.first?.partitions.map(\.tag) == keys.partitions.map { String($0.prefix.dropFirst(ns.count + 2).dropLast(2)) })
        }
    }

    @Test("--partition-tags: explicit, recorded, or the single-node default; a bad value is refused")
    func cliPartitionTags() async throws {
        #expect(throws: (any Error).self) { try RedisOptions.parse(["--partition-tags", "random"]) }
        try await TestRedis.withClient { client, ns in
            let plain = try RedisOptions.parse(["--namespace", ns, "--partitions", "3"])
            #expect(try await plain.keys(for: client).partitionTags == .indexed, "a single node defaults to indexed")
            let explicit = try RedisOptions.parse(["--namespace", ns, "--partitions", "3", "--partition-tags", "spread"])
            let keys = try await explicit.keys(for: client)
            #expect(keys.partitionTags == .slotSpread)
            try await keys.verifyLayout(client: client)
            #expect(try await plain.keys(for: client).partitionTags == .slotSpread, "the recorded scheme wins over the default")
        }
    }
}
