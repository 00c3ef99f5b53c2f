import ConveyorRedis
import Foundation

/// The Redis server integration tests share: `REDIS_URL` when set (as
/// `make test` does), otherwise a private server started on first use.
enum TestRedis {
    private static let shared = Task<String, any Error> {
        if let url = ProcessInfo.processInfo.environment["REDIS_URL"], !url.isEmpty {
            return url
        }
        return try await RedisServerProcess.start().url
    }

    static func configuration() async throws -> RedisConfiguration {
        var configuration = try RedisConfiguration(url: try await shared.value)
        configuration.commandTimeout = .seconds(30)
        return configuration
    }

    /// A client for one test, with a key namespace of its own; the keys are
    /// deleted when `body` returns (never FLUSHALL: the server may be shared).
    static func withClient<T>(
        poolSize: Int = 2,
        _ body: (RedisClient, _ namespace: String) async throws -> T
    ) async throws -> T {
        var configuration = try await configuration()
        configuration.poolSize = poolSize
        let client = RedisClient(configuration: configuration)
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

    private static func cleanUp(_ client: RedisClient, _ namespace: String) async {
        var cursor = "0"
        repeat {
            guard let reply = try? await client.send("SCAN", cursor, "MATCH", "\(namespace)*", "COUNT", 1000),
                let parts = reply.array, parts.count == 2, let next = parts[0].string
            else { break }
            let keys = parts[1].array?.compactMap(\.string) ?? []
            if !keys.isEmpty { _ = try? await client.send(RedisCommand("DEL", argumentList: keys)) }
            cursor = next
        } while cursor != "0"
        await client.shutdown()
    }
}
