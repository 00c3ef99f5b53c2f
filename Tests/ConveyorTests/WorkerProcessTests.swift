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

    @Test("a worker killed with SIGKILL mid-job: once its lease and the grace period are over the job is finished as worker lost and re-run without auto-retry; a cron chain survives")
    func killedWorkerRecovered() async throws {
        let url = try await TestRedis.url()
        try await TestRedis.withClient { client, ns in
            let scheduler = JobScheduler(client: client, configuration: .init(keys: try ConveyorKeys(namespace: ns)))
            let key = "\(ns):executions"
            let oneOff = try await scheduler.scheduleJob(Self.countConfig(userId: 1, key: key, sleepMs: 60_000))
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
            let rescuer = try Self.worker(url, ns, ["--lease", "2", "--recovery-grace", "1", "--grace-period", "0"])
            defer { rescuer.signal(SIGKILL) }
            let recovered = try await eventually(timeout: .seconds(20)) {
                try await scheduler.jobs(ids: [oneOff.id, cron.id]).allSatisfy { $0.finished != nil }
            }
            #expect(recovered, "rescuer log: \(rescuer.log)")
            for id in [oneOff.id, cron.id] {
                let lost = try #require(try await scheduler.job(id: id))
                #expect(lost.success == false)
                #expect(lost.result["error"] == .string("worker lost") && lost.result["interrupted"] == .bool(true))
                // The stored finish (Redis's clock) against the lease: the last renewal came at most
                // one renew interval (0.67 s) before the kill, the lease is 2 s, the grace 1 s, and
                // recovery passes come every 0.67 s (two are needed: mark, then recover).
                let finished = try #require(lost.finished).timeIntervalSince(killedAt)
                #expect(finished >= 2 - 0.67 + 1 - 0.05 && finished < 2 + 1 + 2 * 0.67 + 2, "finished \(finished) s after the kill")
            }
            let followUps = try await scheduler.jobs(type: "count", limit: 100).filter { $0.rescheduledFromJob != nil }
            #expect(followUps.contains { $0.rescheduledFromJob == oneOff.id && $0.attempt == 2 }, "re-run although autoRescheduleOnFailure is off")
            #expect(followUps.contains { $0.rescheduledFromJob == cron.id && $0.cronSchedule == "* * * * * *" }, "the cron chain goes on")
            rescuer.signal(SIGTERM)
            await rescuer.waitForExit(timeout: .seconds(10))
        }
    }

    @Test("SIGTERM: jobs that finish within the grace period succeed; longer ones are interrupted by shutdown and re-run without auto-retry; the process exits")
    func sigtermGraceful() async throws {
        let url = try await TestRedis.url()
        try await TestRedis.withClient { client, ns in
            let scheduler = JobScheduler(client: client, configuration: .init(keys: try ConveyorKeys(namespace: ns)))
            let key = "\(ns):executions"
            // 4 s: still running when SIGTERM comes, even on a loaded machine.
            let short = try await scheduler.scheduleJob(Self.countConfig(userId: 1, key: key, sleepMs: 4_000))
            let long = try await scheduler.scheduleJob(Self.countConfig(userId: 2, key: key, sleepMs: 60_000))
            let worker = try Self.worker(url, ns, ["--grace-period", "6"])
            defer { worker.signal(SIGKILL) }
            #expect(try await eventually(timeout: .seconds(20)) {
                try await scheduler.jobs(ids: [short.id, long.id]).allSatisfy { $0.started != nil }
            }, "worker log: \(worker.log)")
            let stopAt = ContinuousClock.now
            let sigtermAt = Date()
            worker.signal(SIGTERM)
            await worker.waitForExit(timeout: .seconds(15))
            #expect(ContinuousClock.now - stopAt < .seconds(10))
            let finishedShort = try #require(try await scheduler.job(id: short.id))
            #expect(finishedShort.success == true)
            #expect(try #require(finishedShort.finished) > sigtermAt, "the short job was still running at SIGTERM")
            let stopped = try #require(try await scheduler.job(id: long.id))
            #expect(stopped.success == false && stopped.result["error"] == .string("shutdown"))
            #expect(stopped.result["interrupted"] == .bool(true))
            let retry = try await scheduler.jobs(state: .pending, type: "count", userId: 2)
            #expect(retry.first?.rescheduledFromJob == long.id)
            #expect(try await scheduler.counts()[.running] == 0, "nothing is left started")
        }
    }
}
