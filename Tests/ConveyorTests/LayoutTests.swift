import ConveyorRedis
import Foundation
import Testing

@testable import Conveyor

/// The partition count and layout version are stored in Redis on first use;
/// a process that disagrees refuses to start instead of writing where no one reads.
@Suite("Namespace layout")
struct LayoutTests {
    @Test("a scheduler, a pool and an archiver with another partition count are refused with a clear error, and write nothing")
    func partitionCountMismatch() async throws {
        try await TestRedis.withClient { client, ns in
            let two = try ConveyorKeys(namespace: ns, partitionCount: 2)
            let first = JobScheduler(client: client, configuration: .init(keys: two))
            _ = try await first.scheduleJob(WorkerJobConfig(WorkerEchoJob.self, userId: 1, data: .null))
            #expect(try await client.send("HGET", two.layout, "partitions").string == "2")
            #expect(try await client.send("HGET", two.layout, "version").string == String(ConveyorKeys.layoutVersion))
            let before = try await TestRedis.keys(client, namespace: ns)

            let four = try ConveyorKeys(namespace: ns, partitionCount: 4)
            let other = JobScheduler(client: client, configuration: .init(keys: four))
            let error = await #expect(throws: ConveyorError.self) {
                try await other.scheduleJob(WorkerJobConfig(WorkerEchoJob.self, userId: 2, data: .null))
            }
            #expect(error?.code == .layoutMismatch)
            #expect(error?.message.contains("has 2 partitions in Redis, this process uses 4") == true, "\(String(describing: error))")
            #expect(try await TestRedis.keys(client, namespace: ns) == before, "nothing written")

            var registry = JobRegistry<WorkerTestApp>()
            registry.register(WorkerEchoJob.self)
            let pool = WorkerPool(client: client, registry: registry, app: WorkerTestApp(), configuration: .init(keys: four))
            await #expect(throws: ConveyorError.self) { try await pool.run() }
            let directory = ArchiverTestSupport.temporaryDirectory()
            defer { try? FileManager.default.removeItem(atPath: directory) }
            let archiver = Archiver(client: client, configuration: ArchiverTestSupport.configuration(directory, keys: four, archiverId: "a"))
            await #expect(throws: ConveyorError.self) { try await archiver.run() }
            #expect(try await TestRedis.keys(client, namespace: ns) == before, "nothing written")
        }
    }

    @Test("a namespace with another layout version is refused")
    func versionMismatch() async throws {
        try await TestRedis.withClient { client, ns in
            let keys = try ConveyorKeys(namespace: ns)
            _ = try await client.send("HSET", keys.layout, "partitions", 1, "version", ConveyorKeys.layoutVersion + 1)
            let error = await #expect(throws: ConveyorError.self) { try await keys.verifyLayout(client: client) }
            #expect(error?.code == .layoutMismatch)
        }
    }
}
