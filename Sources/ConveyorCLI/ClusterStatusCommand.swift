import ArgumentParser
import Conveyor
import ConveyorRedis
import Foundation

/// `cluster-status`: where each partition's hash tag lands, per master
/// (docs/cluster.md §3), so an uneven layout is visible.
struct ClusterStatusCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "cluster-status",
        abstract: "Show each master's slot ranges and the partitions whose hash tags land on it.",
        discussion: """
            On a single Redis the one server owns every partition. With --json, one object: \
            partitionTags, partitions, and masters (id, endpoint, slots as [first, last] pairs, \
            partitions as {index, tag, slot}).

            Examples:
              conveyor cluster-status --redis redis+cluster://10.0.0.1:6379,10.0.0.2:6379 --partitions 12
              conveyor cluster-status --partitions 6 --partition-tags spread --json
            """
    )

    @OptionGroup var redis: RedisOptions
    @Flag(name: .long, help: "Print JSON.") var json = false

    /// One master and the partitions it owns.
    struct MasterPartitions {
        var node: RedisClusterNode
        var partitions: [(index: Int, tag: String, slot: Int)]
    }

    /// The partitions of `keys` grouped by the master owning their slot (a
    /// partition no master owns, during resharding or a failover, is left out).
    static func layout(keys: ConveyorKeys, masters: [RedisClusterNode]) -> [MasterPartitions] {
        masters.map { node in
            let owned = keys.partitions.compactMap { partition -> (index: Int, tag: String, slot: Int)? in
                let slot = RedisCluster.slot(forKey: partition.prefix)
                guard node.owns(slot: slot) else { return nil }
                let tag = partition.prefix.split(separator: "{").last.map { String($0.prefix { $0 != "}" }) } ?? ""
                return (partition.index, tag, slot)
            }
            return MasterPartitions(node: node, partitions: owned)
        }
    }

    func run() async throws {
        let client = try await redis.client()
        let keys: ConveyorKeys
        let layout: [MasterPartitions]
        do {
            keys = try await redis.keys(for: client)
            layout = Self.layout(keys: keys, masters: try await client.clusterMasters())
            await client.shutdown()
        } catch {
            await client.shutdown()
            throw error
        }
        if json {
            let masters = layout.map { master in
                let slots = master.node.slotRanges.map { "[\($0.lowerBound),\($0.upperBound)]" }.joined(separator: ",")
                let partitions = master.partitions.map { #"{"index":\#($0.index),"tag":\#(JSONValue.string($0.tag).jsonText),"slot":\#($0.slot)}"# }
                return #"{"id":\#(JSONValue.string(master.node.id).jsonText),"endpoint":\#(JSONValue.string("\(master.node.endpoint)").jsonText),"#
                    + #""slots":[\#(slots)],"partitions":[\#(partitions.joined(separator: ","))]}"#
            }
            print(
                #"{"partitionTags":"\#(keys.partitionTags.rawValue)","partitions":\#(keys.partitionCount),"masters":[\#(masters.joined(separator: ","))]}"#
            )
            return
        }
        print("\(layout.count) master\(layout.count == 1 ? "" : "s"), \(keys.partitionCount) partitions, \(keys.partitionTags.rawValue) tags")
        for master in layout {
            let slots = master.node.slotRanges.map { "\($0.lowerBound)-\($0.upperBound)" }.joined(separator: ",")
            let partitions = master.partitions.map { "\($0.index) {\($0.tag)} slot \($0.slot)" }.joined(separator: "; ")
            print("\(master.node) slots \(slots): \(master.partitions.count) partition(s)\(partitions.isEmpty ? "" : ": " + partitions)")
        }
        let counts = layout.map(\.partitions.count)
        if let most = counts.max(), let least = counts.min(), most - least > 1 {
            print("uneven: \(counts.map(String.init).joined(separator: "/")) partitions per master (slot-spread tags and equal slot ranges balance them)")
        }
    }
}
