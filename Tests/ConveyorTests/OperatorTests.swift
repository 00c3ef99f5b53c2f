import ConveyorRedis
import Foundation
import Testing

@testable import Conveyor

/// Issue 12's operator views: live workers, per-minute completion counters,
/// the stats snapshot, paging by index, and the rerun and delete actions.
@Suite("Operator views and actions against a real server")
struct OperatorTests {
    @Test("a pool announces itself while it runs and leaves the list at graceful shutdown")
    func liveWorkerLifecycle() async throws {
        try await TestRedis.withClient { client, ns in
            let keys = try ConveyorKeys(namespace: ns)
            let inspector = JobInspector(client: client, keys: keys)
            let workerId: String = try await withWorkerPool(
                client, namespace: ns,
                configure: {
                    $0.heartbeatInterval = .milliseconds(100)
                    $0.concurrency = 3
                }
            ) { scheduler, _, _, pool in
                let listed = try await eventually { try await inspector.liveWorkers().count == 1 }
                #expect(listed)
                let worker = try #require(try await inspector.liveWorkers().first)
                #expect(worker.id == pool.configuration.workerId)
                #expect(worker.pid == Int(ProcessInfo.processInfo.processIdentifier))
                #expect(worker.concurrency == 3)
                #expect(worker.jobTypes == [WorkerEchoJob.typeName, WorkerFlakyJob.typeName, WorkerSleepJob.typeName, WorkerStubbornJob.typeName].sorted())
                #expect(worker.lastHeartbeat >= worker.started)
                // A running job shows at the next heartbeat.
                _ = try await scheduler.scheduleJob(WorkerJobConfig(WorkerSleepJob.self, userId: 1, data: .init(ms: 1500)))
                let busy = try await eventually { try await inspector.liveWorkers().first?.jobsRunning == 1 }
                #expect(busy)
                let ttl = try await client.send("PTTL", keys.worker(worker.id)).int ?? -1
                #expect(ttl > 0 && ttl <= 300, "TTL is three heartbeats")
                return worker.id
            }
            #expect(try await inspector.liveWorkers().isEmpty, "removed at shutdown, not at expiry")
            #expect(try await client.send("SISMEMBER", keys.workers, workerId).int == 0)
        }
    }

    @Test("a worker that stops beating disappears when its record expires; a live heartbeat prunes its id")
    func deadWorkerDisappears() async throws {
        try await TestRedis.withClient { client, ns in
            let keys = try ConveyorKeys(namespace: ns)
            let inspector = JobInspector(client: client, keys: keys)
            // What a killed worker leaves: its last record, expiring.
            let dead = LiveWorker(
                id: "dead-1", host: "h", pid: 1, concurrency: 1, jobTypes: ["x"], started: Date(), lastHeartbeat: Date(), jobsRunning: 0
            )
            let json = String(decoding: try JSONEncoder().encode(dead), as: UTF8.self)
            _ = try await client.send("SET", keys.worker(dead.id), json, "PX", 300)
            _ = try await client.send("SADD", keys.workers, dead.id)
            #expect(try await inspector.liveWorkers().map(\.id) == ["dead-1"])
            try await Task.sleep(for: .milliseconds(400))
            #expect(try await inspector.liveWorkers().isEmpty)
            try await withWorkerPool(client, namespace: ns, configure: { $0.heartbeatInterval = .milliseconds(100) }) { _, _, _, pool in
                let pruned = try await eventually {
                    try await client.send("SMEMBERS", keys.workers).array?.compactMap(\.string) == [pool.configuration.workerId]
                }
                #expect(pruned)
            }
        }
    }

    @Test("completeJobs counts finished jobs per minute and outcome, with an expiry of about an hour")
    func perMinuteCounters() async throws {
        try await TestRedis.withClient { client, ns in
            let keys = try ConveyorKeys(namespace: ns, partitionCount: 2)
            let inspector = JobInspector(client: client, keys: keys)
            let scheduler = JobScheduler(client: client, configuration: .init(keys: keys))
            try await withWorkerPool(client, namespace: ns, configure: { $0.keys = keys }) { _, _, _, _ in
                for user in 1...3 {
                    _ = try await scheduler.scheduleJob(WorkerJobConfig(WorkerEchoJob.self, userId: user, data: .integer(Int64(user))))
                }
                for user in 1...2 {
                    _ = try await scheduler.scheduleJob(WorkerJobConfig(WorkerFlakyJob.self, userId: user, data: .init(succeedOnAttempt: 9)))
                }
                let done = try await eventually { try await scheduler.counts()[.finished] == 5 }
                #expect(done)
                let minutes = try await inspector.completionsPerMinute(minutes: 2)
                #expect(minutes.count == 2 && minutes[1].minute > minutes[0].minute)
                #expect(minutes.reduce(0) { $0 + $1.ok } == 3)
                #expect(minutes.reduce(0) { $0 + $1.failed } == 2)
                #expect(minutes.reduce(0) { $0 + $1.interrupted } == 0)
                let statsKeys = try await TestRedis.keys(client, namespace: ns).filter { $0.contains(":stats:") }
                #expect(!statsKeys.isEmpty)
                for key in statsKeys {
                    let ttl = try await client.send("TTL", key).int ?? -1
                    #expect(ttl > 3600 && ttl <= 3900, "\(key) expires in \(ttl) s")
                }
            }
            await #expect(throws: ConveyorError.self) { try await inspector.completionsPerMinute(minutes: 61) }
        }
    }

    @Test("stats: counts per state and type, the oldest due job and its lateness")
    func statsSnapshot() async throws {
        try await TestRedis.withClient { client, ns in
            let keys = try ConveyorKeys(namespace: ns)
            let scheduler = JobScheduler(client: client, configuration: .init(keys: keys))
            let past = Date().addingTimeInterval(-30)
            let first = try await scheduler.scheduleJob(UntypedJobConfig(type: "mail", userId: 1, due: past))
            let second = try await scheduler.scheduleJob(UntypedJobConfig(type: "mail", userId: 2, due: Date().addingTimeInterval(60)))
            _ = try await scheduler.scheduleJob(UntypedJobConfig(type: "<script>x</script>", userId: 1))
            let stats = try await scheduler.inspector.stats(minutes: 5)
            #expect(stats.counts == .init(pending: 3, running: 0, finished: 0))
            #expect(stats.byType.map(\.type) == ["<script>x</script>", "mail"])
            #expect(stats.byType.map(\.pending) == [1, 2] && stats.byTypeComplete)
            let oldest = try #require(stats.oldestDue)
            #expect(oldest.id == first.id && oldest.type == "mail")
            #expect(oldest.latenessMs >= 29_000 && oldest.latenessMs < 120_000)
            #expect(stats.minutes.count == 5 && stats.workers.isEmpty)
            let json = try JSONSerialization.jsonObject(with: Data(stats.jsonText().utf8)) as? [String: Any]
            #expect(Set(json?.keys.map { $0 } ?? []) == ["time", "counts", "byType", "byTypeComplete", "oldestDue", "minutes", "workers"])
            // A scan limit below a state's count says the per-type counts are partial.
            for job in [first, second] { #expect(try await scheduler.cancelJob(id: job.id) == .cancelled) }
            let partial = try await scheduler.inspector.stats(minutes: 1, typeScanLimit: 1)
            #expect(partial.byTypeComplete == false && partial.byType.first { $0.type == "mail" }?.finished == 1)
        }
    }

    @Test("a page is read by index: offsets, the end, filters that stop where they matched")
    func paging() async throws {
        try await TestRedis.withClient { client, ns in
            let keys = try ConveyorKeys(namespace: ns)
            let scheduler = JobScheduler(client: client, configuration: .init(keys: keys))
            var configs: [UntypedJobConfig] = []
            for user in 1...25 {
                configs.append(
                    UntypedJobConfig(
                        type: user % 5 == 0 ? "rare" : "common", userId: user,
                        due: Date(timeIntervalSince1970: 2_000_000_000 + Double(user))))
            }
            let jobs = try await scheduler.scheduleJobs(configs)
            let inspector = scheduler.inspector
            let first = try await inspector.page(state: .pending, limit: 10)
            #expect(first.jobs.map(\.id) == jobs.prefix(10).map(\.id) && first.nextOffset == 10 && first.total == 25)
            let last = try await inspector.page(state: .pending, offset: 20, limit: 10)
            #expect(last.jobs.map(\.id) == jobs.suffix(5).map(\.id) && last.nextOffset == nil)
            let rare = try await inspector.page(state: .pending, limit: 2, type: "rare")
            #expect(rare.jobs.map(\.userId) == [5, 10])
            let rareNext = try #require(rare.nextOffset)
            #expect(rareNext == 10, "the next page starts after the last match")
            let rest = try await inspector.page(state: .pending, offset: rareNext, limit: 10, type: "rare")
            #expect(rest.jobs.map(\.userId) == [15, 20, 25] && rest.nextOffset == nil)
            let pair = try await inspector.page(state: .pending, type: "common", userId: 7)
            #expect(pair.jobs.map(\.userId) == [7] && pair.examined == 1)
            let newest = try await inspector.page(state: .pending, limit: 3, newestFirst: true)
            #expect(newest.jobs.map(\.userId) == [25, 24, 23])
            await #expect(throws: ConveyorError.self) { try await inspector.page(state: .pending, partition: 1) }
            await #expect(throws: ConveyorError.self) { try await inspector.page(state: .pending, limit: 1001) }
        }
    }

    @Test("rerunJob schedules a linked copy of a failed job and refuses what it must not touch")
    func rerun() async throws {
        try await TestRedis.withClient { client, ns in
            let keys = try ConveyorKeys(namespace: ns)
            let scheduler = JobScheduler(client: client, configuration: .init(keys: keys))
            let failing: WorkerJob = try await withWorkerPool(client, namespace: ns) { scheduler, _, _, _ in
                let job = try await scheduler.scheduleJob(
                    WorkerJobConfig(WorkerFlakyJob.self, userId: 4, data: .init(succeedOnAttempt: 2), removeDelay: 600_000)
                )
                #expect(try await eventually { try await scheduler.job(id: job.id)?.finished != nil })
                return job
            }
            let rerun = try await scheduler.rerunJob(id: failing.id)
            #expect(rerun.rescheduledFromJob == failing.id && rerun.attempt == 2 && rerun.type == failing.type)
            let stored = try #require(try await scheduler.job(id: rerun.id))
            #expect(stored.state == .pending && stored.dataJSON == failing.dataJSON && stored.removeDelay == 600_000)
            #expect(stored.rescheduledFromJob == failing.id)
            // Its pair now has a pending job (the rerun): a second rerun would replace it.
            await #expect(throws: ConveyorError.self) { try await scheduler.rerunJob(id: failing.id) }
            // A pending job is not run again, nor an unknown one.
            await #expect(throws: ConveyorError.self) { try await scheduler.rerunJob(id: rerun.id) }
            await #expect(throws: ConveyorError.self) { try await scheduler.rerunJob(id: 999_999) }
            // The rerun runs (attempt 2 succeeds) and links back.
            try await withWorkerPool(client, namespace: ns) { scheduler, _, _, _ in
                let succeeded = try await eventually { try await scheduler.job(id: rerun.id)?.success == true }
                #expect(succeeded)
            }
            await #expect(throws: ConveyorError.self) { try await scheduler.rerunJob(id: rerun.id) }
        }
    }

    @Test("deleteFinishedJob deletes finished jobs only, and never one an archiver holds")
    func deleteFinished() async throws {
        try await TestRedis.withClient { client, ns in
            let keys = try ConveyorKeys(namespace: ns)
            let scheduler = JobScheduler(client: client, configuration: .init(keys: keys))
            let pending = try await scheduler.scheduleJob(UntypedJobConfig(type: "t", userId: 1, due: Date().addingTimeInterval(600)))
            #expect(try await scheduler.deleteFinishedJob(id: pending.id) == .notFinished)
            let cancelled = try await scheduler.scheduleJob(UntypedJobConfig(type: "t", userId: 2, due: Date().addingTimeInterval(600)))
            #expect(try await scheduler.cancelJob(id: cancelled.id) == .cancelled)
            let held = try await scheduler.scheduleJob(UntypedJobConfig(type: "t", userId: 3, due: Date().addingTimeInterval(600)))
            #expect(try await scheduler.cancelJob(id: held.id) == .cancelled)
            _ = try await client.send("HSET", keys.partition(0).archiving, held.id, "archiver-1")
            #expect(try await scheduler.deleteFinishedJob(id: held.id) == .beingArchived)
            #expect(try await scheduler.job(id: held.id) != nil)
            #expect(try await scheduler.deleteFinishedJob(id: cancelled.id) == .deleted)
            #expect(try await scheduler.job(id: cancelled.id) == nil)
            #expect(try await client.send("ZSCORE", keys.partition(0).finished, cancelled.id).isNull)
            #expect(try await scheduler.deleteFinishedJob(id: cancelled.id) == .notFound)
            #expect(try await scheduler.counts() == [.pending: 1, .running: 0, .finished: 1])
        }
    }
}
