import Foundation
import Testing

@testable import Conveyor

/// The two ways to stop a pool run in a plain task, as the README describes them.
@Suite("Stopping a pool run in a task")
struct PoolStopTests {
    /// Runs a pool of the worker tests' types in a task; returns the job it started and how long stopping took.
    static func stop(
        hard: Bool, jobMilliseconds: Int, client: RedisClient, namespace: String
    ) async throws -> (job: WorkerJob, scheduler: JobScheduler, took: Duration) {
        var registry = JobRegistry<WorkerTestApp>()
        registry.register(WorkerSleepJob.self)
        let keys = try ConveyorKeys(namespace: namespace)
        var configuration = WorkerPoolConfiguration(concurrency: 2, keys: keys)
        configuration.shutdownGracePeriod = .seconds(30)
        let pool = WorkerPool(client: client, registry: registry, app: WorkerTestApp(), configuration: configuration)
        let scheduler = JobScheduler(client: client, configuration: .init(keys: keys))
        let job = try await scheduler.scheduleJob(WorkerJobConfig(WorkerSleepJob.self, userId: 1, data: .init(ms: jobMilliseconds)))
        let worker = Task { try await pool.run() }
        let started = try await eventually { try await scheduler.job(id: job.id)?.started != nil }
        #expect(started)
        let clock = ContinuousClock()
        let begin = clock.now
        if hard { worker.cancel() } else { pool.beginShutdown() }
        try await worker.value
        return (job, scheduler, clock.now - begin)
    }

    @Test("cancelling the task is a hard stop: the running job is interrupted at once, without the grace period, and re-run")
    func hardStop() async throws {
        try await TestRedis.withClient { client, namespace in
            let (job, scheduler, took) = try await Self.stop(hard: true, jobMilliseconds: 20_000, client: client, namespace: namespace)
            // The job would sleep 20 s and the grace period is 30 s: neither was waited for.
            #expect(took < .seconds(15), "\(took)")
            let stopped = try #require(try await scheduler.job(id: job.id))
            #expect(stopped.success == false && stopped.result["error"] == .string("shutdown"), "\(stopped.jsonString())")
            let rerun = try await scheduler.jobs(state: .pending, type: WorkerSleepJob.typeName, userId: 1)
            #expect(rerun.count == 1 && rerun.first?.rescheduledFromJob == job.id, "re-run although it has no auto-retry")
            #expect(try await scheduler.counts()[.running] == 0)
        }
    }

    @Test("beginShutdown is the graceful stop: the running job finishes")
    func gracefulStop() async throws {
        try await TestRedis.withClient { client, namespace in
            let (job, scheduler, _) = try await Self.stop(hard: false, jobMilliseconds: 500, client: client, namespace: namespace)
            let finished = try #require(try await scheduler.job(id: job.id))
            #expect(finished.success == true, "\(finished.jsonString())")
            #expect(try await scheduler.jobs(state: .pending).isEmpty)
        }
    }
}
