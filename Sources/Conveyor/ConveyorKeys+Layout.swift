import ConveyorRedis
import Synchronization

extension ConveyorKeys {
    /// The version of the key and job-hash layout this build reads and writes
    /// with ``PartitionTags/indexed`` tags.
    /// 2: the issue-11 layout (time-floored ids, `failed` and `stale` indexes).
    public static let layoutVersion = 2

    /// The version recorded for slot-spread tags: layout 2 with
    /// ``PartitionTags/slotSpread`` hash tags. A distinct number, so that a
    /// build from before cluster support (which knows only `{p<N>}` tags)
    /// refuses such a namespace instead of writing to partitions no one reads.
    public static let slotSpreadLayoutVersion = 3

    /// The layout version this process records and expects: the tag scheme
    /// is part of it (``layoutVersion`` or ``slotSpreadLayoutVersion``).
    public var recordedLayoutVersion: Int {
        partitionTags == .indexed ? Self.layoutVersion : Self.slotSpreadLayoutVersion
    }

    /// `<namespace>:layout`: HASH `partitions` → the partition count, `version`
    /// → the layout version (which also names the tag scheme: 2 indexed,
    /// 3 slot-spread), `tags` → `indexed` or `spread` (for people; absent in
    /// namespaces created before it, which are indexed), written by the first
    /// process that uses the namespace.
    public var layout: String { "\(namespace):layout" }

    /// A command on the layout hash, routed to its slot on a cluster.
    private func layoutCommand(_ name: String, _ arguments: [any RESPArgument]) -> RedisCommand {
        RedisCommand(name, routingKey: layout, arguments: [layout] + arguments)
    }

    /// The tag scheme recorded in the namespace's layout hash, or `nil` when
    /// the namespace has no layout yet (no process used it). The CLI uses it
    /// to pick slot-spread tags by default for a new namespace on a cluster.
    /// - Throws: ``ConveyorError`` (`redis`, or `layoutMismatch` for a version
    ///   this build does not know).
    public func recordedPartitionTags(client: RedisClient) async throws(ConveyorError) -> PartitionTags? {
        let version: RESPValue
        do {
            version = try await client.send(layoutCommand("HGET", ["version"]))
        } catch {
            throw ConveyorError(error)
        }
        guard let text = version.string else { return nil }
        switch Int(text) {
        case Self.layoutVersion: return .indexed
        case Self.slotSpreadLayoutVersion: return .slotSpread
        default:
            throw ConveyorError(
                .layoutMismatch,
                "namespace \"\(namespace)\" has layout version \(text) in Redis, this build knows \(Self.layoutVersion) and \(Self.slotSpreadLayoutVersion); "
                    + "run every process of the namespace on the same Conveyor version"
            )
        }
    }

    /// Checks that the namespace in Redis uses this partition count, tag
    /// scheme and layout version, recording them on first use (`HSETNX`, so
    /// concurrent first uses agree on one). Schedulers, workers and archivers
    /// call it before their first write: a process started with another
    /// `--partitions` or `--partition-tags` would schedule into partitions no
    /// worker reads, or read only some.
    /// - Throws: ``ConveyorError`` with code ``ConveyorError/Code/layoutMismatch``
    ///   naming both values, or `redis`.
    public func verifyLayout(client: RedisClient) async throws(ConveyorError) {
        let replies: [RESPValue]
        do {
            replies = try await client.pipeline([
                layoutCommand("HSETNX", ["partitions", partitionCount]),
                layoutCommand("HSETNX", ["version", recordedLayoutVersion]),
                layoutCommand("HMGET", ["partitions", "version"]),
            ])
        } catch {
            throw ConveyorError(error)
        }
        guard let stored = replies.last?.array, stored.count == 2 else {
            throw ConveyorError(.redis, "HMGET \(layout) returned \(String(describing: replies.last))")
        }
        try check(recorded: stored)
        if replies.count == 3, replies[1].int == 1 {
            // This process recorded the layout: name the tags for people reading
            // the hash (the version stays the one that decides).
            _ = try? await client.send(layoutCommand("HSETNX", ["tags", partitionTags.rawValue]))
        }
    }

    /// Checks, writing nothing, that the layout recorded in Redis (if any) is
    /// this process's: readers (``JobInspector``, the scheduler's reads and
    /// operator actions) call it, so that a `--partitions` or `--partition-tags`
    /// that differs from the namespace's is refused instead of reading
    /// partitions that hold nothing.
    /// - Returns: Whether the namespace has a recorded layout (none before
    ///   any process scheduled, worked or archived in it: nothing to read).
    /// - Throws: ``ConveyorError`` with code ``ConveyorError/Code/layoutMismatch``
    ///   naming both values, or `redis`.
    @discardableResult
    public func checkRecordedLayout(client: RedisClient) async throws(ConveyorError) -> Bool {
        let reply: RESPValue
        do {
            reply = try await client.send(layoutCommand("HMGET", ["partitions", "version"]))
        } catch {
            throw ConveyorError(error)
        }
        guard let stored = reply.array, stored.count == 2 else {
            throw ConveyorError(.redis, "HMGET \(layout) returned \(reply)")
        }
        if stored[0] == .null && stored[1] == .null { return false }
        try check(recorded: stored)
        return true
    }

    /// Compares the layout hash's `partitions` and `version` with this process's.
    private func check(recorded stored: [RESPValue]) throws(ConveyorError) {
        let partitions = stored[0].string.flatMap(Int.init)
        let version = stored[1].string.flatMap(Int.init)
        if partitions != partitionCount {
            throw ConveyorError(
                .layoutMismatch,
                "namespace \"\(namespace)\" has \(stored[0].string ?? "?") partitions in Redis, this process uses \(partitionCount); "
                    + "every producer, worker and archiver of a namespace must use the same --partitions"
            )
        }
        if version != recordedLayoutVersion {
            let known = [Self.layoutVersion: PartitionTags.indexed, Self.slotSpreadLayoutVersion: .slotSpread]
            if let version, let theirs = known[version] {
                throw ConveyorError(
                    .layoutMismatch,
                    "namespace \"\(namespace)\" uses \(theirs.rawValue) partition tags in Redis (layout version \(version)), "
                        + "this process uses \(partitionTags.rawValue); every producer, worker and archiver of a namespace "
                        + "must use the same --partition-tags"
                )
            }
            throw ConveyorError(
                .layoutMismatch,
                "namespace \"\(namespace)\" has layout version \(stored[1].string ?? "?") in Redis, this build uses \(recordedLayoutVersion); "
                    + "run every process of the namespace on the same Conveyor version"
            )
        }
    }
}

extension ConveyorKeys {
    /// ``verifyLayout(client:)`` until it succeeds: Redis trouble (down at
    /// start, loading) is retried with backoff while `isStopping()` is false;
    /// a mismatch is thrown at once.
    /// - Returns: `false` when it stopped before Redis answered.
    func verifyLayoutRetrying(client: RedisClient, isStopping: () -> Bool) async throws(ConveyorError) -> Bool {
        var delay = Duration.milliseconds(100)
        while !isStopping() {
            do {
                try await verifyLayout(client: client)
                return true
            } catch  where error.code == .layoutMismatch {
                throw error
            } catch {
                try? await Task.sleep(for: delay)
                delay = min(delay * 2, .seconds(5))
            }
        }
        return false
    }
}

/// Runs ``ConveyorKeys/verifyLayout(client:)`` once per scheduler (and its
/// copies, and its inspector): the first schedule pays one round trip, later
/// ones none. Reads check without recording (``verifyForReading(_:client:)``);
/// a matching recorded layout satisfies both.
final class LayoutGate: Sendable {
    private let verified = Atomic<Bool>(false)

    nonisolated(nonsending) func verify(_ keys: ConveyorKeys, client: RedisClient) async throws(ConveyorError) {
        if verified.load(ordering: .acquiring) { return }
        try await keys.verifyLayout(client: client)
        verified.store(true, ordering: .releasing)
    }

    /// ``ConveyorKeys/checkRecordedLayout(client:)`` until a recorded layout
    /// matched: a namespace with none yet is checked again on the next read
    /// (the first writer may record another layout meanwhile).
    nonisolated(nonsending) func verifyForReading(_ keys: ConveyorKeys, client: RedisClient) async throws(ConveyorError) {
        if verified.load(ordering: .acquiring) { return }
        if try await keys.checkRecordedLayout(client: client) { verified.store(true, ordering: .releasing) }
    }
}
