import ConveyorRedis

/// Every Redis key name Conveyor uses, built in this one place.
///
/// Keys of one partition share one hash tag (`{p<N>}` with ``PartitionTags/indexed``,
/// e.g. `conveyor:{p0}:due`; `{p<N>.<k>}` with ``PartitionTags/slotSpread``),
/// so each Lua script touches one Redis Cluster slot. All jobs of one
/// (type, userId) pair live in the partition chosen by a stable hash of the
/// pair, so the replace rule sees them all.
public struct ConveyorKeys: Sendable, Hashable {
    /// The prefix of every key, default `conveyor`.
    public let namespace: String
    /// The number of partitions (≥ 1). Changing it strands existing jobs.
    public let partitionCount: Int
    /// How the partitions' hash tags are chosen. Changing it strands existing jobs.
    public let partitionTags: PartitionTags
    /// The hash tag of each partition, without braces.
    let tags: [String]

    /// Creates the key layout.
    /// - Parameters:
    ///   - namespace: The prefix of every key.
    ///   - partitionCount: The number of partitions.
    ///   - partitionTags: ``PartitionTags/indexed`` (the default, the layout of
    ///     every namespace created before Redis Cluster support) or
    ///     ``PartitionTags/slotSpread`` (partitions spread over a cluster's masters).
    /// - Throws: ``ConveyorError`` (`invalidArgument`) if the namespace is empty or
    ///   contains `{` or `}` (which would break the hash tag), or the count is < 1
    ///   (or above 16,384 with slot-spread tags: each partition needs a slot of its own).
    public init(
        namespace: String = "conveyor", partitionCount: Int = 1, partitionTags: PartitionTags = .indexed
    ) throws(ConveyorError) {
        guard !namespace.isEmpty, !namespace.contains("{"), !namespace.contains("}") else {
            throw ConveyorError(.invalidArgument, "namespace \"\(namespace)\" must be non-empty and contain no { or }")
        }
        guard partitionCount >= 1 else {
            throw ConveyorError(.invalidArgument, "partitionCount must be at least 1, got \(partitionCount)")
        }
        switch partitionTags {
        case .indexed:
            tags = (0..<partitionCount).map { "p\($0)" }
        case .slotSpread:
            guard partitionCount <= RedisCluster.slotCount else {
                throw ConveyorError(
                    .invalidArgument, "slot-spread partition tags allow at most \(RedisCluster.slotCount) partitions, got \(partitionCount)"
                )
            }
            tags = Self.slotSpreadTags(count: partitionCount)
        }
        self.namespace = namespace
        self.partitionCount = partitionCount
        self.partitionTags = partitionTags
    }

    /// The keys of one partition.
    public struct Partition: Sendable, Hashable {
        /// The partition's index.
        public let index: Int
        /// `<namespace>:{<tag>}:`, e.g. `conveyor:{p0}:`.
        public let prefix: String

        public var seq: String { prefix + "seq" }
        public var jobPrefix: String { prefix + "job:" }
        public var due: String { prefix + "due" }
        public var pending: String { prefix + "pending" }
        public var running: String { prefix + "running" }
        public var leases: String { prefix + "leases" }
        public var finished: String { prefix + "finished" }
        public var wake: String { prefix + "wake" }
        /// `SET NX PX` lock so that one worker at a time runs a recovery pass.
        public var recoveryLock: String { prefix + "recovery-lock" }
        /// HASH job id → type: jobs given back because no worker knew their type.
        public var parked: String { prefix + "parked" }
        /// ZSET job id → when its lease was first seen expired (recovery's grace period).
        public var suspects: String { prefix + "suspects" }
        /// HASH token → ids: one worker's claims in flight, kept so a claim can be replayed.
        func claims(workerId: String) -> String { prefix + "claims:" + workerId }
        /// ZSET job id → when it failed: the failed jobs kept in Redis (at most
        /// `WorkerPoolConfiguration.maxRetainedFailedJobs`).
        public var failed: String { prefix + "failed" }
        /// HASH "<type>:<userId>" → ids of running jobs that started more than
        /// an hour ago, and "@swept": the replace rule's index of stale jobs.
        public var stale: String { prefix + "stale" }
        /// HASH job id → identity of the archiver that claimed it.
        public var archiving: String { prefix + "archiving" }
        /// STRING, present while the partition's slot moves to another master
        /// (`conveyor cluster-move-partition`, with a safety TTL): every script that touches
        /// the partition checks it first and answers `TRYAGAIN` (docs/cluster.md §7).
        public var paused: String { prefix + "paused" }

        /// HASH of one minute's completions in this partition, `<prefix>stats:<minute>`
        /// (minute = Redis time in ms / 60000): fields `ok`, `failed`, `interrupted`.
        /// Written by `completeJobs`, which derives the name from `jobPrefix`;
        /// expires after about an hour.
        public func stats(minute: Int) -> String { prefix + "stats:" + String(minute) }

        /// The hash of one job.
        public func job(_ id: Int) -> String { jobPrefix + String(id) }
    }

    /// `<namespace>:archivers`: HASH archiver identity → the token of the history
    /// directory it belongs to. One identity never writes to two directories.
    /// Used by plain commands only, never inside a script with partition keys.
    public var archivers: String { "\(namespace):archivers" }

    /// `<namespace>:archiver-alive`: STRING, the identity of the archiver that
    /// last finished a pass, expiring a minute after it (`SET PX`). Absent:
    /// no archiver has finished a pass for that long. Plain commands only.
    public var archiverAlive: String { "\(namespace):archiver-alive" }

    /// `<namespace>:workers`: SET of the ids of workers that announced
    /// themselves; an id whose ``worker(_:)`` key expired is dropped by the
    /// next heartbeat of any worker. Plain commands only.
    public var workers: String { "\(namespace):workers" }

    /// `<namespace>:worker:<id>`: STRING, one worker's ``LiveWorker`` record
    /// as JSON, expiring three heartbeat intervals after its last heartbeat.
    public func worker(_ id: String) -> String { "\(namespace):worker:\(id)" }

    /// The keys of partition `index`.
    public func partition(_ index: Int) -> Partition {
        Partition(index: index, prefix: "\(namespace):{\(tags[index])}:")
    }

    /// Every partition.
    public var partitions: [Partition] { (0..<partitionCount).map { partition($0) } }

    /// The partition of a (type, userId) pair: FNV-1a of `"<type>:<userId>"`, so
    /// every process agrees without coordination.
    public func partition(type: String, userId: Int) -> Partition {
        guard partitionCount > 1 else { return partition(0) }
        var hash: UInt64 = 0xcbf2_9ce4_8422_2325
        for byte in "\(type):\(userId)".utf8 {
            hash ^= UInt64(byte)
            hash &*= 0x0000_0100_0000_01b3
        }
        return partition(Int(hash % UInt64(partitionCount)))
    }

    /// The partition a job id belongs to.
    public func partition(ofJob id: Int) -> Partition {
        partition(id % partitionCount)
    }
}
