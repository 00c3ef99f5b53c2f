// How a bulk call's jobs become script calls and pipelines.
extension JobScheduler {
    /// Input indices grouped by partition, in partition order and input order
    /// within each; one partition (the default layout) or one job needs no hashing.
    static func byPartition(_ specs: [JobSpec], keys: ConveyorKeys) -> [(Int, [Int])] {
        if keys.partitionCount == 1 { return [(0, Array(specs.indices))] }
        if specs.count == 1 { return [(keys.partition(type: specs[0].type, userId: specs[0].userId).index, [0])] }
        var groups: [Int: [Int]] = [:]
        for (index, spec) in specs.enumerated() {
            groups[keys.partition(type: spec.type, userId: spec.userId).index, default: []].append(index)
        }
        return groups.sorted(by: { $0.key < $1.key }).map { ($0.key, $0.value) }
    }

    /// The calls split into rounds that are sent one after another: a call
    /// that schedules a (type, user) pair an earlier call of its round also
    /// schedules starts the next round. Within one pipeline, calls that hit
    /// `NOSCRIPT` are retried after the others (a restart flushed the script and
    /// another client loaded it while the pipeline ran), and the replace rule
    /// needs a pair's jobs in input order to let the last one win.
    static func rounds(_ specs: [JobSpec], callMembers: [[Int]]) -> [Range<Int>] {
        guard callMembers.count > 1 else { return [0..<callMembers.count] }
        struct Pair: Hashable {
            let type: String
            let userId: Int
        }
        // The pairs of the round so far: each user's first type, and any other
        // type of the same user. Most bulk calls hash one Int per job, no String.
        var firstType: [Int: String] = [:]
        var otherPairs = Set<Pair>()
        func seen(_ spec: JobSpec) -> Bool {
            guard let type = firstType[spec.userId] else { return false }
            return type == spec.type || otherPairs.contains(Pair(type: spec.type, userId: spec.userId))
        }
        var rounds: [Range<Int>] = []
        var start = 0
        for (call, members) in callMembers.enumerated() {
            if call > start, members.contains(where: { seen(specs[$0]) }) {
                rounds.append(start..<call)
                start = call
                firstType.removeAll(keepingCapacity: true)
                otherPairs.removeAll(keepingCapacity: true)
            }
            for index in members {
                let spec = specs[index]
                if let type = firstType[spec.userId] {
                    if type != spec.type { otherPairs.insert(Pair(type: spec.type, userId: spec.userId)) }
                } else {
                    firstType[spec.userId] = spec.type
                }
            }
        }
        rounds.append(start..<callMembers.count)
        return rounds
    }
}
