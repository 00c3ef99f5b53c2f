import ConveyorRedis
import Foundation
import Testing

@testable import Conveyor

/// Producers and workers whose wall clocks are 5 minutes off Redis's: every
/// shared decision (created, due, leases, recovery) uses Redis's clock.
///
/// The skew is injected through the internal `testHostClock` of the
/// scheduler and the pool: the only places they read this host's clock (to
/// estimate Redis's, and to reject a cron expression that never fires).
/// libfaketime cannot do it here: a Swift process under it loses its
/// arguments, and Debian's redis-server (jemalloc) does not start under it.
@Suite("Clock skew", .serialized)
struct ClockSkewTests {

    @Test(
        "a producer and a worker 5 minutes fast or slow: created, due-now, delays and a cron job's first run are on Redis's clock, and the jobs run on time",
        arguments: [300.0, -300.0]
    )
    func skewedProducerAndWorker(skewSeconds: Double) async throws {
        try await TestRedis.withClient { client, ns in
            let keys = try ConveyorKeys(namespace: ns)
            var configuration = JobScheduler.Configuration(keys: keys)
            configuration.testHostClock = { Date().addingTimeInterval(skewSeconds) }
            let scheduler = JobScheduler(client: client, configuration: configuration)
            try await withWorkerPool(
                client, namespace: ns,
                configure: { configuration in
                    configuration.testHostClock = { Date().addingTimeInterval(skewSeconds) }
                }
            ) { _, _, _, _ in
                let before = try await JobInspector.redisTime(client)
                let now = try await scheduler.scheduleJob(WorkerJobConfig(WorkerEchoJob.self, userId: 1, data: .null))
                let later = try await scheduler.scheduleJob(WorkerJobConfig(WorkerEchoJob.self, userId: 2, delay: .seconds(2), data: .null))
                let cron = try await scheduler.scheduleCronJob(WorkerJobConfig(WorkerEchoJob.self, userId: 3, data: .null), cron: "* * * * * *")
                let after = try await JobInspector.redisTime(client)
                for job in [now, later, cron] {
                    #expect(job.createdAt >= before && job.createdAt <= after, "created \(job.createdAt); Redis's time \(before)…\(after)")
                }
                #expect(now.due == now.createdAt)
                #expect(later.due == later.createdAt.addingTimeInterval(2))
                #expect(cron.due > before && cron.due <= after.addingTimeInterval(1), "first run \(cron.due)")
                let ran = try await eventually(timeout: .seconds(20)) {
                    try await scheduler.jobs(ids: [now.id, later.id, cron.id]).allSatisfy { $0.success == true }
                }
                #expect(ran)
                for job in try await scheduler.jobs(ids: [now.id, later.id, cron.id]) {
                    let started = try #require(job.started)
                    #expect(started >= job.due && started.timeIntervalSince(job.due) < 3, "job \(job.id) due \(job.due), started \(started)")
                }
            }
        }
    }

    @Test("a worker whose clock is 5 minutes fast does not recover the live job of one whose clock is right; one 5 minutes slow runs due jobs on time")
    func skewedWorkers() async throws {
        try await TestRedis.withClient { client, ns in
            try await withWorkerPool(
                client, namespace: ns,
                configure: { configuration in
                    configuration.concurrency = 1
                    configuration.leaseDuration = .seconds(2)
                    configuration.leaseRenewInterval = .milliseconds(500)
                }
            ) { scheduler, _, honestEvents, _ in
                // 6 s on a 2 s lease: renewed by its worker while the fast one looks.
                let long = try await scheduler.scheduleJob(WorkerJobConfig(WorkerSleepJob.self, userId: 1, data: .init(ms: 6_000)))
                let started = try await eventually(timeout: .seconds(10)) { try await scheduler.job(id: long.id)?.started != nil }
                #expect(started)
                let fastDone = try await withWorkerPool(
                    client, namespace: ns,
                    configure: { configuration in
                        configuration.leaseDuration = .seconds(2)
                        configuration.recoveryInterval = .milliseconds(200)
                        configuration.recoveryGracePeriod = .milliseconds(500)
                        configuration.testHostClock = { Date().addingTimeInterval(300) }
                    }
                ) { _, _, _, _ in
                    try await withWorkerPool(
                        client, namespace: ns,
                        configure: { configuration in
                            configuration.testHostClock = { Date().addingTimeInterval(-300) }
                        }
                    ) { _, _, _, _ in
                        // The honest worker is busy: the skewed ones run these, now and 2 s later.
                        let short = try await scheduler.scheduleJobs([
                            WorkerJobConfig(WorkerEchoJob.self, userId: 2, data: .null),
                            WorkerJobConfig(WorkerEchoJob.self, userId: 3, delay: .seconds(2), data: .null),
                        ])
                        let finished = try await eventually(timeout: .seconds(20)) {
                            try await scheduler.jobs(ids: [long.id] + short.map(\.id)).allSatisfy { $0.finished != nil }
                        }
                        #expect(finished)
                        return try await scheduler.jobs(ids: short.map(\.id))
                    }
                }
                let finished = try #require(try await scheduler.job(id: long.id))
                #expect(finished.success == true, "the long job stayed with its worker: \(finished.resultJSON ?? "")")
                #expect(try await scheduler.jobs(type: WorkerSleepJob.typeName, userId: 1).count == 1, "no re-run of the long job")
                #expect(honestEvents.withLock { $0.allSatisfy(\.written) }, "the honest worker wrote every result")
                for job in fastDone {
                    let started = try #require(job.started)
                    #expect(job.success == true)
                    #expect(started >= job.due && started.timeIntervalSince(job.due) < 3, "job \(job.id) due \(job.due), started \(started)")
                }
            }
        }
    }
}
