import ConveyorRedis

extension ConveyorKeys {
    /// How partitions' hash tags are chosen (docs/cluster.md §3). Part of the
    /// namespace's layout: every process of a namespace must use the same one.
    public enum PartitionTags: String, Sendable, Hashable, CaseIterable {
        /// Partition `i` is `{p<i>}`: the layout of every namespace created
        /// before Redis Cluster support, and the default. On a cluster, where
        /// these tags land is luck (3 partitions: one master gets none).
        case indexed
        /// Partition `i` of `N` is `{p<i>.<k>}` with the smallest `k ≥ 0` whose
        /// slot lies in `[⌊i·16384/N⌋, ⌊(i+1)·16384/N⌋)`: a cluster whose `M`
        /// masters own equal contiguous slot ranges gets `N/M` partitions per
        /// master when `M` divides `N`, at most one more than the average otherwise.
        case slotSpread = "spread"
    }

    /// The slot stratum partition `index` of `count` lands in with slot-spread tags.
    static func slotStratum(index: Int, count: Int) -> Range<Int> {
        (index * RedisCluster.slotCount / count)..<((index + 1) * RedisCluster.slotCount / count)
    }

    /// The slot-spread tags for `count` partitions (about `count` CRC16
    /// evaluations per partition, once per process).
    static func slotSpreadTags(count: Int) -> [String] {
        (0..<count).map { index in
            let stratum = slotStratum(index: index, count: count)
            var suffix = 0
            while true {
                let tag = "p\(index).\(suffix)"
                if stratum.contains(RedisCluster.slot(forKey: tag)) { return tag }
                suffix += 1
            }
        }
    }
}
