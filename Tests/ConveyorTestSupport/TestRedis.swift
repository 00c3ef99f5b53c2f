import ConveyorRedis
import ConveyorTesting
import Foundation

/// The Redis server the integration tests of this target share: `REDIS_URL`
/// when set (as `make test` does), otherwise a private server started once on
/// first use (it dies with the test process).
///
/// With `CONVEYOR_TEST_REDIS=cluster` it is the Redis Cluster of
/// `REDIS_CLUSTER_URL` instead (`make test`'s cluster step, under
/// `scripts/with-redis-cluster.sh`); a missing URL is an error, never a
/// silent fallback to the single node.
public enum TestRedis {
    private static let shared = Task<String, any Error> {
        let environment = ProcessInfo.processInfo.environment
        if isCluster {
            guard let url = environment["REDIS_CLUSTER_URL"], !url.isEmpty else {
                throw RedisError(
                    .invalidURL,
                    message: "CONVEYOR_TEST_REDIS=cluster needs REDIS_CLUSTER_URL: run under scripts/with-redis-cluster.sh"
                )
            }
            return url
        }
        if let url = environment["REDIS_URL"], !url.isEmpty {
            return url
        }
        return try await RedisServerProcess.start().url
    }

    /// Whether the tests run against a Redis Cluster (`CONVEYOR_TEST_REDIS=cluster`).
    public static let isCluster = ProcessInfo.processInfo.environment["CONVEYOR_TEST_REDIS"] == "cluster"

    /// The shared server's URL, for child processes.
    public static func url() async throws -> String {
        try await shared.value
    }

    /// A client configuration for the shared server.
    public static func configuration(poolSize: Int = 4) async throws -> RedisConfiguration {
        var configuration = try RedisConfiguration(url: try await shared.value)
        configuration.poolSize = poolSize
        configuration.commandTimeout = .seconds(30)
        return configuration
    }

    /// Runs `body` with a client and a fresh key namespace `test-<UUID>`; every
    /// key of the namespace is deleted afterwards, whether `body` throws or not
    /// (never `FLUSHALL`: the server may be shared).
    public static func withClient<T>(
        poolSize: Int = 4,
        _ body: (RedisClient, _ namespace: String) async throws -> T
    ) async throws -> T {
        let client = RedisClient(configuration: try await configuration(poolSize: poolSize))
        let namespace = "test-\(UUID().uuidString)"
        do {
            let result = try await body(client, namespace)
            await cleanUp(client, namespace)
            return result
        } catch {
            await cleanUp(client, namespace)
            throw error
        }
    }

    /// Every key of `namespace` (`SCAN MATCH "<namespace>:*"` on every master,
    /// one on a single node), sorted.
    public static func keys(_ client: RedisClient, namespace: String) async throws -> [String] {
        var found: [String] = []
        for node in try await client.clusterMasters() {
            var cursor = "0"
            repeat {
                let reply = try await client.send(
                    RedisCommand("SCAN", arguments: [cursor, "MATCH", "\(namespace):*", "COUNT", 1000]), to: node
                )
                guard let parts = reply.array, parts.count == 2, let next = parts[0].string else {
                    throw RedisError(.unexpectedReply, message: "SCAN returned \(reply)")
                }
                found += parts[1].array?.compactMap(\.string) ?? []
                cursor = next
            } while cursor != "0"
        }
        return found.sorted()
    }

    /// `INFO <section>` of the server that holds `key`: on a cluster, the master
    /// owning its slot (an unrouted `INFO` would reach an arbitrary master).
    public static func info(_ client: RedisClient, _ section: String, serverOf key: String) async throws -> String {
        let slot = RedisCluster.slot(forKey: key)
        guard let node = try await client.clusterMasters().first(where: { $0.owns(slot: slot) }) else {
            throw RedisError(.clusterTopology, message: "no master owns slot \(slot) of \(key)")
        }
        let reply = try await client.send(RedisCommand("INFO", arguments: [section]), to: node)
        guard let text = reply.string else { throw RedisError(.unexpectedReply, message: "INFO returned \(reply)") }
        return text
    }

    private static func cleanUp(_ client: RedisClient, _ namespace: String) async {
        if let keys = try? await keys(client, namespace: namespace) {
            // One DEL per key, pipelined: a multi-key DEL would cross slots on a cluster.
            let commands = keys.map { RedisCommand("DEL", routingKey: $0, arguments: [$0]) }
            for start in stride(from: 0, to: commands.count, by: 500) {
                _ = try? await client.pipeline(Array(commands[start..<min(start + 500, commands.count)]))
            }
        }
        await client.shutdown()
    }
}
