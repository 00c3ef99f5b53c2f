import ConveyorRedis
import Synchronization

extension ConveyorKeys {
    /// The version of the key and job-hash layout this build reads and writes.
    /// 2: the issue-11 layout (time-floored ids, `failed` and `stale` indexes).
    public static let layoutVersion = 2

    /// `<namespace>:layout`: HASH `partitions` → the partition count, `version`
    /// → the layout version, written by the first process that uses the namespace.
    public var layout: String { "\(namespace):layout" }

    /// Checks that the namespace in Redis uses this partition count and layout
    /// version, recording both on first use (`HSETNX`, so concurrent first
    /// uses agree on one). Schedulers, workers and archivers call it before
    /// their first write: a process started with another `--partitions`
    /// would schedule into partitions no worker reads, or read only some.
    /// - Throws: ``ConveyorError`` with code ``ConveyorError/Code/layoutMismatch``
    ///   naming both values, or `redis`.
    public func verifyLayout(client: RedisClient) async throws(ConveyorError) {
        let replies: [RESPValue]
        do {
            replies = try await client.pipeline([
                RedisCommand("HSETNX", arguments: [layout, "partitions", partitionCount]),
                RedisCommand("HSETNX", arguments: [layout, "version", Self.layoutVersion]),
                RedisCommand("HMGET", arguments: [layout, "partitions", "version"]),
            ])
        } catch {
            throw ConveyorError(error)
        }
        guard let stored = replies.last?.array, stored.count == 2 else {
            throw ConveyorError(.redis, "HMGET \(layout) returned \(String(describing: replies.last))")
        }
        let partitions = stored[0].string.flatMap(Int.init)
        let version = stored[1].string.flatMap(Int.init)
        if partitions != partitionCount {
            throw ConveyorError(
                .layoutMismatch,
                "namespace \"\(namespace)\" has \(stored[0].string ?? "?") partitions in Redis, this process uses \(partitionCount); "
                    + "every producer, worker and archiver of a namespace must use the same --partitions"
            )
        }
        if version != Self.layoutVersion {
            throw ConveyorError(
                .layoutMismatch,
                "namespace \"\(namespace)\" has layout version \(stored[1].string ?? "?") in Redis, this build uses \(Self.layoutVersion); "
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
/// copies): the first schedule pays one round trip, later ones none.
final class LayoutGate: Sendable {
    private let verified = Atomic<Bool>(false)

    nonisolated(nonsending) func verify(_ keys: ConveyorKeys, client: RedisClient) async throws(ConveyorError) {
        if verified.load(ordering: .acquiring) { return }
        try await keys.verifyLayout(client: client)
        verified.store(true, ordering: .releasing)
    }
}
