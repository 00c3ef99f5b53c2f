import Foundation
import Testing

@testable import Conveyor

@Suite("Partition fairness")
struct PartitionFairnessTests {
    /// `count` sleeping jobs in each partition (users picked by the partition hash).
    static func backlog(perPartition count: Int, keys: ConveyorKeys) -> [WorkerJobConfig<WorkerSleepJob>] {
        var configs: [WorkerJobConfig<WorkerSleepJob>] = []
        var perPartition = [Int: Int]()
        var userId = 0
        while configs.count < count * keys.partitionCount {
            userId += 1
            let partition = keys.partition(type: WorkerSleepJob.typeName, userId: userId).index
            guard perPartition[partition, default: 0] < count else { continue }
            perPartition[partition, default: 0] += 1
            configs.append(WorkerJobConfig(WorkerSleepJob.self, userId: userId, data: .init(ms: 30)))
        }
        return configs
    }

    @Test("with a backlog in every partition, claims rotate over the partitions: none waits until another is drained")
    func noPartitionStarves() async throws {
        try await TestRedis.withClient { client, ns in
            let keys = try ConveyorKeys(namespace: ns, partitionCount: 4, partitionTags: TestRedis.partitionTags)
            let scheduler = JobScheduler(client: client, configuration: .init(keys: keys))
            // 40 sleeping jobs per partition, all due now, before the pool starts.
            try await scheduler.scheduleJobs(Self.backlog(perPartition: 40, keys: keys))
            let startedOrder: [Int] = try await withWorkerPool(client, namespace: ns, configure: {
                $0.concurrency = 2
                $0.keys = keys
            }) { _, _, events, _ in
                let enough = try await eventually { events.withLock { $0.count >= 16 } }
                #expect(enough)
                return events.withLock { Array($0.prefix(16).map { $0.job.id % 4 }) }
            }
            let partitionsServed = Set(startedOrder)
            // Always starting at partition 0 served only partition 0 here (40 jobs there).
            #expect(partitionsServed.count == 4, "the first 16 jobs came from partitions \(startedOrder)")
        }
    }
}
