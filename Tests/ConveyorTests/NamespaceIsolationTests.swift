import ConveyorRedis
import ConveyorTesting
import Foundation
import Testing

@testable import Conveyor

/// Namespaces isolate tenants: whatever the type names, worker id, data and the
/// namespace's own characters, the scheduling, worker and archiver path creates
/// and changes keys of its namespace only.
@Suite("Namespace isolation", .serialized)
struct NamespaceIsolationTests {
    /// Every key of the server with its `DUMP` and `PTTL`.
    static func snapshot(_ client: RedisClient) async throws -> [String: [RESPValue]] {
        var cursor = "0"
        var keys: [String] = []
        repeat {
            let reply = try await client.send("SCAN", cursor, "COUNT", 1000)
            guard let parts = reply.array, parts.count == 2, let next = parts[0].string else {
                throw RedisError(.unexpectedReply, message: "SCAN returned \(reply)")
            }
            keys += parts[1].array?.compactMap(\.string) ?? []
            cursor = next
        } while cursor != "0"
        var result: [String: [RESPValue]] = [:]
        for key in keys {
            result[key] = try await client.pipeline([RedisCommand("DUMP", key), RedisCommand("PTTL", key)])
        }
        return result
    }

    @Test(
        "type names holding { } * ? [ spaces and non-ASCII (: is refused), a worker id with : too, data naming other keys, a namespace holding : * ? [ space and non-ASCII: schedule, run and archive touch only the namespace's keys",
        arguments: ["iso-\(UUID().uuidString.prefix(8))", "iso ü✓:*?[-\(UUID().uuidString.prefix(8))"]
    )
    func onlyNamespaceKeys(namespace: String) async throws {
        let server = try await RedisServerProcess.start()
        let client = RedisClient(configuration: try RedisConfiguration(url: server.url))
        defer { Task { await server.stop() } }

        // Neighbours: keys named like the data and type names, other namespaces'
        // keys, and a neighbour namespace with jobs due now that no worker of its own runs.
        _ = try await client.send("SET", "other:victim", "untouched")
        _ = try await client.send("ZADD", "\(namespace)x:{p0}:due", 1, "1")
        _ = try await client.send("HSET", "\(namespace)x:{p0}:job:1", "type", KeyLikeNameJob.typeName)
        _ = try await client.send("ZADD", "a:b:{p0}:due", 1, "1")
        _ = try await client.send("RPUSH", "{p0}:wake", "x")
        _ = try await client.send("ZADD", "conveyor:{p0}:due", 1, "1")
        _ = try await client.send("SET", "\(namespace)", "the bare namespace name is not one of its keys")
        let neighbour = JobScheduler(client: client, configuration: .init(keys: try ConveyorKeys(namespace: namespace + "-n", partitionCount: 3)))
        _ = try await neighbour.scheduleJobs(
            ProductionPath.typeNames.flatMap { type in
                (1...3).map { UntypedJobConfig(type: type, userId: $0, dataJSON: ProductionPath.data(namespace, $0)) }
            }
        )
        let before = try await Self.snapshot(client)

        // `:` in a type name is refused before anything is written (it separates
        // type and user in the replace rule's field).
        let scheduler = JobScheduler(client: client, configuration: .init(keys: try ConveyorKeys(namespace: namespace, partitionCount: 3)))
        for type in ["a:b:{p0}:due", ":", "x:*"] {
            await #expect(throws: ConveyorError.self) {
                _ = try await scheduler.scheduleJob(UntypedJobConfig(type: type, userId: 1, dataJSON: "{}"))
            }
        }
        #expect(try await Self.snapshot(client) == before)

        let outcome = try await ProductionPath.run(client, namespace: namespace, workerId: "w:{p1}* ü ✓ [x]")
        ProductionPath.expectComplete(outcome)

        let after = try await Self.snapshot(client)
        for (key, value) in before {
            #expect(after[key] == value, "a key outside the namespace changed: \(key)")
        }
        let created = after.keys.filter { before[$0] == nil }.sorted()
        #expect(!created.isEmpty)
        for key in created {
            #expect(key.hasPrefix(namespace + ":"), "a key outside the namespace was created: \(key)")
            // Every namespace key is <namespace>:{p<N>}:… or one of the namespace-wide
            // keys (docs/redis-layout.md): no type name or data shaped its partition or
            // its place; a worker id only names its own heartbeat key.
            let rest = key.dropFirst(namespace.count + 1)
            let namespaceWide: Set<Substring> = ["archivers", "archiver-alive", "layout", "workers"]
            #expect(
                namespaceWide.contains(rest) || rest.hasPrefix("worker:") || rest.contains(/^\{p[0-2]\}:/),
                "unexpected key shape: \(key)"
            )
        }
        // The neighbour's jobs are still all pending, untouched by this namespace's worker.
        #expect(try await neighbour.counts()[.pending] == 3 * ProductionPath.typeNames.count)
        await client.shutdown()
    }
}
