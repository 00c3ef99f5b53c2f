import ConveyorRedis
import ConveyorTesting
import Foundation

/// The Redis server the integration tests of this target share: `REDIS_URL`
/// when set (as `make test` does), otherwise a private server started once on
/// first use (it dies with the test process).
public enum TestRedis {
    private static let shared = Task<String, any Error> {
        if let url = ProcessInfo.processInfo.environment["REDIS_URL"], !url.isEmpty {
            return url
        }
        return try await RedisServerProcess.start().url
    }

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

    /// Every key of `namespace` (`SCAN MATCH "<namespace>:*"`), sorted.
    public static func keys(_ client: RedisClient, namespace: String) async throws -> [String] {
        var cursor = "0"
        var found: [String] = []
        repeat {
            let reply = try await client.send("SCAN", cursor, "MATCH", "\(namespace):*", "COUNT", 1000)
            guard let parts = reply.array, parts.count == 2, let next = parts[0].string else {
                throw RedisError(.unexpectedReply, message: "SCAN returned \(reply)")
            }
            found += parts[1].array?.compactMap(\.string) ?? []
            cursor = next
        } while cursor != "0"
        return found.sorted()
    }

    private static func cleanUp(_ client: RedisClient, _ namespace: String) async {
        if let keys = try? await keys(client, namespace: namespace) {
            for start in stride(from: 0, to: keys.count, by: 500) {
                let batch = Array(keys[start..<min(start + 500, keys.count)])
                _ = try? await client.send(RedisCommand("DEL", argumentList: batch))
            }
        }
        await client.shutdown()
    }
}
