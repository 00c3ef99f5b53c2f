import ConveyorRedis
import ConveyorTesting
import Foundation
import Testing

@testable import Conveyor

/// A Redis that restarts from data lacking its last writes (an older RDB file,
/// or an AOF with `appendfsync everysec` losing its last second).
@Suite("Redis restarts from older data", .serialized)
struct RedisRestartTests {
    @Test("ids handed out after the last save are not handed out again after a restart from that save", arguments: [1, 4])
    func idsNeverReused(partitionCount: Int) async throws {
        let directory = FileManager.default.temporaryDirectory.appendingPathComponent("conveyor-restart-\(UUID().uuidString)").path
        defer { try? FileManager.default.removeItem(atPath: directory) }
        var server = try await RedisServerProcess.start(.init(directory: directory))
        let port = server.port
        let keys = try ConveyorKeys(namespace: "restart", partitionCount: partitionCount)
        func schedule(_ client: RedisClient, users: ClosedRange<Int>) async throws -> [WorkerJob] {
            let scheduler = JobScheduler(client: client, configuration: .init(keys: keys))
            return try await scheduler.scheduleJobs(users.map { WorkerJobConfig(WorkerEchoJob.self, userId: $0, data: .null) })
        }

        var client = RedisClient(configuration: try RedisConfiguration(url: server.url))
        let saved = try await schedule(client, users: 1...200)
        _ = try await client.send("SAVE")
        let backup = directory + "/older.rdb"
        try FileManager.default.copyItem(atPath: directory + "/dump.rdb", toPath: backup)
        // Handed out to the app, then lost with the rest of what followed the save.
        let lost = try await schedule(client, users: 201...400)
        await client.shutdown()
        await server.kill()

        try FileManager.default.removeItem(atPath: directory + "/dump.rdb")
        try FileManager.default.moveItem(atPath: backup, toPath: directory + "/dump.rdb")
        server = try await RedisServerProcess.start(.init(port: port, directory: directory))
        defer { Task { [server] in await server.stop() } }
        client = RedisClient(configuration: try RedisConfiguration(url: server.url))
        defer { Task { [client] in await client.shutdown() } }
        let inspector = JobInspector(client: client, keys: keys)
        #expect(try await inspector.jobs(ids: lost.map(\.id)).isEmpty, "the restart lost them")
        #expect(try await inspector.jobs(ids: saved.map(\.id)).count == saved.count, "the save kept these")

        let after = try await schedule(client, users: 401...600)
        let reused = Set(after.map(\.id)).intersection(saved.map(\.id) + lost.map(\.id))
        #expect(reused.isEmpty, "ids handed out again: \(reused.sorted().prefix(5))")
        #expect(Set(after.map(\.id)).count == after.count)
        // The app still holds the lost ids: they name no job now, rather than a stranger's.
        let scheduler = JobScheduler(client: client, configuration: .init(keys: keys))
        #expect(try await scheduler.cancelJob(id: lost[0].id) == .notFound)
    }
}
