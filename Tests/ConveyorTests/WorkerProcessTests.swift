import Foundation
import Testing

@testable import Conveyor

/// Real `conveyor worker` processes: several sharing one Redis, killed with
/// SIGKILL mid-job, stopped with SIGTERM.
@Suite("Worker processes", .serialized)
struct WorkerProcessTests {
    static func worker(_ url: String, _ namespace: String, _ extra: [String] = []) throws -> ConveyorProcess {
        try ConveyorProcess.start(["worker", "--redis", url, "--namespace", namespace, "--log-level", "info"] + extra)
    }

    static func countConfig(userId: Int, key: String, sleepMs: Int? = nil, autoRetry: Bool = false) -> UntypedJobConfig {
        var data = #"{"key":"\#(key)""#
        if let sleepMs { data += #","sleepMs":\#(sleepMs)"# }
        data += "}"
        return UntypedJobConfig(type: "count", userId: userId, dataJSON: data, autoRescheduleOnFailure: autoRetry)
    }

    @Test("2 worker processes × concurrency 20 over 5,000 jobs: every job runs exactly once")
    func twoProcessesExactlyOnce() async throws {
        let url = try await TestRedis.url()
        try await TestRedis.withClient { client, ns in
            let scheduler = JobScheduler(client: client, configuration: .init(keys: try ConveyorKeys(namespace: ns)))
            let key = "\(ns):executions"
            let jobs = try await scheduler.scheduleJobs((1...5_000).map { Self.countConfig(userId: $0, key: key) })
            let workers = try (0..<2).map { _ in try Self.worker(url, ns, ["--concurrency", "20"]) }
            defer { workers.forEach { $0.signal(SIGKILL) } }
            let done = try await eventually(timeout: .seconds(120)) { try await scheduler.counts()[.finished] == 5_000 }
            let counts = try await scheduler.counts()
            #expect(done, "counts: \(counts)")
            let executions = try await client.send("HGETALL", key).array?.compactMap(\.string) ?? []
            var perJob: [Int: Int] = [:]
            for index in stride(from: 0, to: executions.count - 1, by: 2) {
                perJob[Int(executions[index])!] = Int(executions[index + 1])!
            }
            #expect(perJob.count == 5_000)
            #expect(perJob.values.allSatisfy { $0 == 1 }, "ran more than once: \(perJob.filter { $0.value != 1 }.prefix(5))")
            #expect(Set(perJob.keys) == Set(jobs.map(\.id)))
            let finished = try await scheduler.jobs(state: .finished, limit: 10_000)
            #expect(Set(finished.compactMap(\.workerId)).count == 2, "both processes took part")
            for worker in workers { worker.signal(SIGTERM) }
            for worker in workers { await worker.waitForExit(timeout: .seconds(10)) }
        }
    }

    @Test("a worker killed with SIGKILL mid-job: the job is failed as worker lost within the lease and retried; a cron chain survives")
    func killedWorkerRecovered() async throws {
        let url = try await TestRedis.url()
        try await TestRedis.withClient { client, ns in
            let scheduler = JobScheduler(client: client, configuration: .init(keys: try ConveyorKeys(namespace: ns)))
            let key = "\(ns):executions"
            let oneOff = try await scheduler.scheduleJob(Self.countConfig(userId: 1, key: key, sleepMs: 60_000, autoRetry: true))
            let cron = try await scheduler.scheduleCronJob(Self.countConfig(userId: 2, key: key, sleepMs: 60_000), cron: "* * * * * *")
            let victim = try Self.worker(url, ns, ["--lease", "2"])
            let started = try await eventually(timeout: .seconds(20)) {
                try await scheduler.jobs(ids: [oneOff.id, cron.id]).allSatisfy { $0.started != nil }
            }
            #expect(started, "worker log: \(victim.log)")
            victim.signal(SIGKILL)
            await victim.waitForExit()
            let killedAt = Date()

            // A second worker notices the expired leases and recovers both jobs.
            let rescuer = try Self.worker(url, ns, ["--lease", "2", "--grace-period", "0"])
            defer { rescuer.signal(SIGKILL) }
            let recovered = try await eventually(timeout: .seconds(20)) {
                try await scheduler.jobs(ids: [oneOff.id, cron.id]).allSatisfy { $0.finished != nil }
            }
            #expect(recovered, "rescuer log: \(rescuer.log)")
            #expect(Date().timeIntervalSince(killedAt) < 10, "recovered within a few lease periods")
            for id in [oneOff.id, cron.id] {
                let lost = try #require(try await scheduler.job(id: id))
                #expect(lost.success == false)
                #expect(lost.result["error"] == .string("worker lost"))
            }
            let followUps = try await scheduler.jobs(type: "count", limit: 100).filter { $0.rescheduledFromJob != nil }
            #expect(followUps.contains { $0.rescheduledFromJob == oneOff.id && $0.attempt == 2 }, "the auto-retry")
            #expect(followUps.contains { $0.rescheduledFromJob == cron.id && $0.cronSchedule == "* * * * * *" }, "the cron chain goes on")
            rescuer.signal(SIGTERM)
            await rescuer.waitForExit(timeout: .seconds(10))
        }
    }

    @Test("SIGTERM: jobs that finish within the grace period succeed; longer ones fail as shutdown and are retried; the process exits")
    func sigtermGraceful() async throws {
        let url = try await TestRedis.url()
        try await TestRedis.withClient { client, ns in
            let scheduler = JobScheduler(client: client, configuration: .init(keys: try ConveyorKeys(namespace: ns)))
            let key = "\(ns):executions"
            let short = try await scheduler.scheduleJob(Self.countConfig(userId: 1, key: key, sleepMs: 500))
            let long = try await scheduler.scheduleJob(Self.countConfig(userId: 2, key: key, sleepMs: 60_000, autoRetry: true))
            let worker = try Self.worker(url, ns, ["--grace-period", "2"])
            defer { worker.signal(SIGKILL) }
            #expect(try await eventually(timeout: .seconds(20)) {
                try await scheduler.jobs(ids: [short.id, long.id]).allSatisfy { $0.started != nil }
            }, "worker log: \(worker.log)")
            let stopAt = ContinuousClock.now
            worker.signal(SIGTERM)
            await worker.waitForExit(timeout: .seconds(15))
            #expect(ContinuousClock.now - stopAt < .seconds(8))
            #expect(try await scheduler.job(id: short.id)?.success == true)
            let stopped = try #require(try await scheduler.job(id: long.id))
            #expect(stopped.success == false && stopped.result["error"] == .string("shutdown"))
            let retry = try await scheduler.jobs(state: .pending, type: "count", userId: 2)
            #expect(retry.first?.rescheduledFromJob == long.id)
            #expect(try await scheduler.counts()[.running] == 0, "nothing is left started")
        }
    }
}
