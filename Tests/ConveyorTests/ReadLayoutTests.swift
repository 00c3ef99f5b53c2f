import ConveyorRedis
import ConveyorTestSupport
import Foundation
import Testing

@testable import Conveyor

/// Reads check the namespace's recorded layout as writes do: a reader with
/// another partition count or tag scheme gets `layoutMismatch` instead of an
/// empty answer from partitions that hold nothing. Runs on a single node and
/// on the cluster (`make test`'s cluster step).
@Suite("Reads check the recorded layout")
struct ReadLayoutTests {
    private static func config(_ userId: Int) -> WorkerJobConfig<SyncInboxTestJob> {
        WorkerJobConfig(SyncInboxTestJob.self, userId: userId, data: Nothing())
    }

    /// Every read of `inspector` and the read-side operator actions of
    /// `scheduler` throw `layoutMismatch` with a message containing `flag`.
    private static func expectRefused(
        _ scheduler: JobScheduler, flag: String, ids: [Int], sourceLocation: SourceLocation = #_sourceLocation
    ) async {
        let inspector = JobInspector(client: scheduler.client, keys: scheduler.configuration.keys)
        let reads: [(String, @Sendable () async throws -> Void)] = [
            ("jobs(ids:)", { _ = try await inspector.jobs(ids: ids) }),
            ("job(id:)", { _ = try await inspector.job(id: ids[0]) }),
            ("jobs(state:)", { _ = try await inspector.jobs(state: .pending) }),
            ("counts", { _ = try await inspector.counts() }),
            ("stats", { _ = try await inspector.stats() }),
            ("page", { _ = try await inspector.page(state: .pending) }),
            ("parkedCounts", { _ = try await inspector.parkedCounts() }),
            ("archiveBacklog", { _ = try await inspector.archiveBacklog() }),
            ("scheduler.jobs(ids:)", { _ = try await scheduler.jobs(ids: ids) }),
            ("cancelJob", { _ = try await scheduler.cancelJob(id: ids[0]) }),
            ("deleteFinishedJob", { _ = try await scheduler.deleteFinishedJob(id: ids[0]) }),
        ]
        for (name, read) in reads {
            do {
                try await read()
                Issue.record("\(name) read with a mismatched layout", sourceLocation: sourceLocation)
            } catch let error as ConveyorError {
                #expect(error.code == .layoutMismatch, "\(name): \(error)", sourceLocation: sourceLocation)
                #expect(error.message.contains(flag), "\(name): \(error)", sourceLocation: sourceLocation)
            } catch {
                Issue.record("\(name): \(error)", sourceLocation: sourceLocation)
            }
        }
    }

    @Test("a reader with another partition count or tag scheme gets layoutMismatch from every read, and writes nothing")
    func mismatchedReadersAreRefused() async throws {
        try await TestRedis.withClient { client, ns in
            let tags = TestRedis.partitionTags
            let otherTags: ConveyorKeys.PartitionTags = tags == .indexed ? .slotSpread : .indexed
            let keys = try ConveyorKeys(namespace: ns, partitionCount: 3, partitionTags: tags)
            let scheduler = JobScheduler(client: client, configuration: .init(keys: keys))
            let jobs = try await scheduler.scheduleJobs((1...6).map(Self.config))
            let ids = jobs.map(\.id)
            let before = try await TestRedis.keys(client, namespace: ns)

            let fewer = JobScheduler(
                client: client, configuration: .init(keys: try ConveyorKeys(namespace: ns, partitionCount: 2, partitionTags: tags))
            )
            await Self.expectRefused(fewer, flag: "--partitions", ids: ids)
            let otherScheme = JobScheduler(
                client: client, configuration: .init(keys: try ConveyorKeys(namespace: ns, partitionCount: 3, partitionTags: otherTags))
            )
            await Self.expectRefused(otherScheme, flag: "--partition-tags", ids: ids)
            #expect(try await TestRedis.keys(client, namespace: ns) == before, "a refused read wrote nothing")

            // The matching layout reads every job, through the inspector and the scheduler.
            #expect(try await JobInspector(client: client, keys: keys).jobs(ids: ids).map(\.id) == ids)
            #expect(try await scheduler.jobs(ids: ids).map(\.id) == ids)
            #expect(try await scheduler.counts()[.pending] == 6)
        }
    }

    @Test("the check is made once per inspector; a namespace without a layout is read (empty) and not recorded")
    func checkedOnceAndNeverRecorded() async throws {
        try await TestRedis.withClient { client, ns in
            let keys = try ConveyorKeys(namespace: ns, partitionCount: 3, partitionTags: TestRedis.partitionTags)
            let inspector = JobInspector(client: client, keys: keys)
            // Nothing used the namespace yet: nothing to read, and the reader records no layout
            // (a later producer with other settings must not be refused because of it).
            #expect(try await inspector.jobs(ids: [1, 2, 3]).isEmpty)
            #expect(try await inspector.counts()[.pending] == 0)
            #expect(try await client.send("EXISTS", keys.layout).int == 0)

            let scheduler = JobScheduler(client: client, configuration: .init(keys: keys))
            let job = try await scheduler.scheduleJob(Self.config(1))
            #expect(try await inspector.job(id: job.id)?.id == job.id)
            // Cached: this inspector does not read the layout hash again (it now
            // disagrees with Redis), while a new one does and is refused.
            _ = try await client.send(RedisCommand("HSET", routingKey: keys.layout, arguments: [keys.layout, "partitions", 5]))
            #expect(try await inspector.job(id: job.id)?.id == job.id)
            let error = await #expect(throws: ConveyorError.self) {
                try await JobInspector(client: client, keys: keys).job(id: job.id)
            }
            #expect(error?.code == .layoutMismatch)
            #expect(error?.message.contains("has 5 partitions in Redis, this process uses 3") == true, "\(String(describing: error))")
        }
    }
}
