import ConveyorRedis
import ConveyorTestSupport
import Foundation
import Testing

@testable import Conveyor

/// Every scheduled job runs at least once: the defects of issue 10, each
/// against a real redis-server.
@Suite("At least once")
struct AtLeastOnceTests {
    static func store(_ client: RedisClient, _ keys: ConveyorKeys) -> JobStore {
        JobStore(client: client, keys: keys, staleAfterMs: 3_600_000)
    }

    @Test("claimJobs refuses a batch over 1,000 before any write; a pool with concurrency 5,000 runs a backlog of 5,000")
    func largeClaim() async throws {
        try await TestRedis.withClient { client, ns in
            let keys = try ConveyorKeys(namespace: ns)
            let scheduler = JobScheduler(client: client, configuration: .init(keys: keys))
            let jobs = try await scheduler.scheduleJobs((1...5_000).map { WorkerJobConfig(WorkerEchoJob.self, userId: $0, data: .integer(Int64($0))) })
            let p = keys.partition(0)
            // Before: the script removed 5,000 jobs from `due`, marked them, then
            // failed in unpack — the jobs were in no index, lost for good.
            await #expect(throws: RedisError.self) {
                try await client.eval(ScriptSignature.claimJobs.call(
                    p, ["", "w", 5_000, 30_000, "t"], workerId: "w"
                ))
            }
            #expect(try await client.send("ZCARD", p.due).int == 5_000, "nothing was written")
            #expect(try await client.send("ZCARD", p.running).int == 0)

            try await withWorkerPool(client, namespace: ns, configure: { $0.concurrency = 5_000 }) { scheduler, app, _, _ in
                let done = try await eventually(timeout: .seconds(60)) { try await scheduler.counts()[.finished] == 5_000 }
                #expect(done)
                let counts = app.executions.withLock { $0 }
                #expect(Set(counts.keys) == Set(jobs.map(\.id)) && counts.values.allSatisfy { $0 == 1 })
            }
        }
    }

    @Test("every script refuses a batch over 1,000 before its first write")
    func oversizedBatchesWriteNothing() async throws {
        try await TestRedis.withClient { client, ns in
            let keys = try ConveyorKeys(namespace: ns)
            let scheduler = JobScheduler(client: client, configuration: .init(keys: keys))
            try await scheduler.scheduleJobs((1...3).map { WorkerJobConfig(WorkerEchoJob.self, userId: $0, data: .null) })
            let store = AtLeastOnceTests.store(client, keys)
            _ = try await store.claim(partition: keys.partition(0), now: nil, workerId: "w", maxCount: 2, leaseMs: 30_000)
            let p = keys.partition(0)
            func snapshot() async throws -> [String] {
                var dump: [String] = []
                for key in try await TestRedis.keys(client, namespace: ns) {
                    dump.append("\(key)=\(try await client.send("DUMP", key))")
                }
                return dump
            }
            let before = try await snapshot()
            let ids = (1...1_001).map { $0 as any RESPArgument }
            let calls: [(String, RedisScriptCall)] = [
                ("scheduleJobs", ScriptSignature.scheduleJobs.call(
                    p, ["", 3_600_000, 1, 0, 1_001, 13] + (1...1_001).flatMap { [WorkerEchoJob.typeName, $0, "", "", "", "", "", "", "", "", "", "", ""] as [any RESPArgument] }
                )),
                ("completeJobs", ScriptSignature.completeJobs.call(
                    p, ["", 3_600_000, 1, 0, "w", 3, 86_400_000, 10_000, 1_001] + (1...1_001).flatMap { [$0, "1", "", ""] as [any RESPArgument] }
                )),
                ("renewLeases", ScriptSignature.renewLeases.call(p, ["", "w", 30_000] + ids)),
                ("releaseJobs", ScriptSignature.releaseJobs.call(p, ["", "w"] + ids)),
                ("deleteArchivedJobs", ScriptSignature.deleteArchivedJobs.call(p, ["a"] + ids)),
            ]
            for (name, call) in calls {
                await #expect(throws: RedisError.self, "\(name)") { try await client.eval(call) }
            }
            #expect(try await snapshot() == before, "nothing was written")
        }
    }

    @Test("a claim sent again with its token (its reply was lost) returns the same jobs and claims nothing new")
    func claimReplay() async throws {
        try await TestRedis.withClient { client, ns in
            let keys = try ConveyorKeys(namespace: ns)
            let scheduler = JobScheduler(client: client, configuration: .init(keys: keys))
            let jobs = try await scheduler.scheduleJobs((1...3).map { WorkerJobConfig(WorkerEchoJob.self, userId: $0, data: .null) })
            let store = Self.store(client, keys)
            let p = keys.partition(0)
            let first = try await store.claim(partition: p, now: nil, workerId: "w1", maxCount: 2, leaseMs: 30_000, token: "t1")
            #expect(first.jobs.map(\.id) == Array(jobs.prefix(2).map(\.id)))
            let replay = try await store.claim(partition: p, now: nil, workerId: "w1", maxCount: 2, leaseMs: 30_000, token: "t1")
            #expect(replay.jobs.map(\.id) == first.jobs.map(\.id), "the same jobs, not new ones")
            #expect(replay.jobs.map(\.started) == first.jobs.map(\.started), "as claimed the first time")
            #expect(try await client.send("ZCARD", p.due).int == 1, "the third job is still due")
            #expect(try await client.send("ZCARD", p.running).int == 2)
            let next = try await store.claim(partition: p, now: nil, workerId: "w1", maxCount: 2, leaseMs: 30_000, token: "t2")
            #expect(next.jobs.map(\.id) == [jobs[2].id])
            // A job taken from the worker meanwhile (here: completed as another
            // worker's would be after recovery) is not handed back by a replay.
            _ = try await store.complete([.init(id: jobs[0].id, success: true, resultJSON: nil, cronNextDue: nil)], partition: p, now: nil, workerId: "w1")
            let late = try await store.claim(partition: p, now: nil, workerId: "w1", maxCount: 2, leaseMs: 30_000, token: "t1")
            #expect(late.jobs.map(\.id) == [jobs[1].id])
            // The worker names the tokens whose replies it received: Redis forgets them.
            #expect(try await client.send("HLEN", p.claims(workerId: "w1")).int == 2)
            _ = try await store.claim(partition: p, now: nil, workerId: "w1", maxCount: 2, leaseMs: 30_000, token: "t3", acknowledged: ["t1", "t2"])
            #expect(try await client.send("HLEN", p.claims(workerId: "w1")).int == 0)
            #expect(try await client.send("PTTL", p.claims(workerId: "w1")).int == -2, "no key left behind")
        }
    }

    @Test("a worker that died holding 250 jobs: one pass marks them all, the next one after the grace period recovers them all (not one page of 100 per grace period)")
    func recoveryPagesThroughExpiredLeases() async throws {
        try await TestRedis.withClient { client, ns in
            let keys = try ConveyorKeys(namespace: ns)
            let scheduler = JobScheduler(client: client, configuration: .init(keys: keys))
            _ = try await scheduler.scheduleJobs((1...250).map { WorkerJobConfig(WorkerEchoJob.self, userId: $0, data: .null) })
            let store = Self.store(client, keys)
            let p = keys.partition(0)
            let t = Date().milliseconds
            let (claimed, _, _) = try await store.claim(partition: p, now: t, workerId: "dead", maxCount: 250, leaseMs: 1_000)
            #expect(claimed.count == 250)
            #expect(try await store.recoverExpired(partition: p, now: t + 5_000, estimatedNow: t + 5_000, graceMs: 2_000) == 0)
            #expect(try await client.send("ZCARD", p.suspects).int == 250, "the first pass marks every expired lease")
            #expect(try await store.recoverExpired(partition: p, now: t + 7_000, estimatedNow: t + 7_000, graceMs: 2_000) == 250)
            #expect(try await client.send("ZCARD", p.leases).int == 0)
            #expect(try await scheduler.counts()[.pending] == 250, "each recovered job is re-run")
        }
    }

    @Test("a lease expired after an outage longer than the lease is renewed while the job is not recovered")
    func renewAfterOutage() async throws {
        try await TestRedis.withClient { client, ns in
            let keys = try ConveyorKeys(namespace: ns)
            let scheduler = JobScheduler(client: client, configuration: .init(keys: keys))
            let job = try await scheduler.scheduleJob(WorkerJobConfig(WorkerEchoJob.self, userId: 1, data: .null))
            let store = Self.store(client, keys)
            let p = keys.partition(0)
            let t = Date().milliseconds
            _ = try await store.claim(partition: p, now: t, workerId: "w1", maxCount: 1, leaseMs: 1_000)
            // Redis was away for 5 s: the lease expired; a recovery pass marks it first.
            #expect(try await store.recoverExpired(partition: p, now: t + 5_000, estimatedNow: t + 5_000, graceMs: 2_000) == 0)
            #expect(try await store.renew(ids: [job.id], partition: p, now: t + 5_100, workerId: "w1", leaseMs: 1_000).isEmpty)
            #expect(try await store.recoverExpired(partition: p, now: t + 7_000, estimatedNow: t + 7_000, graceMs: 2_000) == 0)
            #expect(try await scheduler.job(id: job.id)?.finished == nil, "kept by its live worker")
            // Expired again later (lease t + 6.1 s): the mark from before the renewal
            // is stale, so a fresh mark and a whole grace period.
            #expect(try await client.send("ZSCORE", p.suspects, job.id).int == t + 7_000)
            #expect(try await store.recoverExpired(partition: p, now: t + 8_999, estimatedNow: t + 8_999, graceMs: 2_000) == 0)
            #expect(try await store.recoverExpired(partition: p, now: t + 9_000, estimatedNow: t + 9_000, graceMs: 2_000) == 1)
        }
    }

    @Test("an interrupted job is re-run whatever autoRescheduleOnFailure says, until 3 interruptions in a row")
    func interruptionLimit() async throws {
        try await SchedulerHarness.run { h in
            let store = Self.store(h.client, h.keys)
            let p = h.keys.partition(0)
            var current = try await h.scheduler.scheduleJob(WorkerJobConfig(WorkerEchoJob.self, userId: 1, data: .string("payload")))
            var chain = [current.id]
            for interruption in 1...3 {
                let claimed = try await h.claim(leaseMs: 1_000)
                #expect(claimed.map(\.id) == [current.id])
                h.clock.advance(milliseconds: 1_001)
                #expect(try await store.recoverExpired(partition: p, now: h.clock.nowMilliseconds, estimatedNow: 0, graceMs: 500) == 0)
                h.clock.advance(milliseconds: 500)
                #expect(try await store.recoverExpired(partition: p, now: h.clock.nowMilliseconds, estimatedNow: 0, graceMs: 500) == 1)
                let lost = try await h.requireJob(current.id)
                #expect(lost.result["error"] == .string("worker lost"))
                #expect(lost.result["interruptions"] == .integer(Int64(interruption)))
                let pending = try await h.scheduler.jobs(state: .pending)
                if interruption < 3 {
                    #expect(lost.result["gaveUp"] == nil)
                    let rerun = try #require(pending.first)
                    #expect(pending.count == 1 && rerun.rescheduledFromJob == current.id)
                    #expect(rerun.attempt == interruption + 1 && rerun.data == .string("payload"))
                    #expect(rerun.due == dateAt(milliseconds: h.clock.nowMilliseconds), "due at once")
                    current = rerun
                    chain.append(rerun.id)
                } else {
                    #expect(lost.result["gaveUp"] == .bool(true))
                    #expect(pending.isEmpty, "a job that keeps taking its worker down is not run a fourth time")
                }
            }
            #expect(chain.count == 3)
        }
    }

    @Test("a shutdown interruption counts too, and a run that ends by itself resets the count")
    func shutdownInterruptionAndReset() async throws {
        try await SchedulerHarness.run { h in
            let first = try await h.scheduler.scheduleJob(WorkerJobConfig(WorkerEchoJob.self, userId: 1, data: .null, autoRescheduleOnFailure: true))
            try await h.claim()
            let store = Self.store(h.client, h.keys)
            let p = h.keys.partition(0)
            let stopped = try await store.complete(
                [.init(id: first.id, status: .interrupted, resultJSON: "shutdown", cronNextDue: nil)], partition: p,
                now: h.clock.nowMilliseconds, workerId: "worker-1", maxInterruptions: 2
            )
            let rerunId = try #require(stopped.first?.followUp)
            #expect(try await h.requireJob(first.id).result["interruptions"] == .integer(1))
            try await h.claim()
            // It fails by itself: an ordinary retry (ar), and the interruption count starts again.
            let failed = try await store.complete(
                [.init(id: rerunId, success: false, resultJSON: #"{"error":"boom"}"#, cronNextDue: nil)], partition: p,
                now: h.clock.nowMilliseconds, workerId: "worker-1", maxInterruptions: 2
            )
            let retryId = try #require(failed.first?.followUp)
            try await h.claim()
            let stoppedAgain = try await store.complete(
                [.init(id: retryId, status: .interrupted, resultJSON: "shutdown", cronNextDue: nil)], partition: p,
                now: h.clock.nowMilliseconds, workerId: "worker-1", maxInterruptions: 2
            )
            #expect(try await h.requireJob(retryId).result["interruptions"] == .integer(1))
            #expect(stoppedAgain.first?.followUp != nil)
        }
    }

    @Test("a job of a type this worker does not run is given back, listed as parked, and run by a worker that runs it")
    func unknownTypeParked() async throws {
        try await TestRedis.withClient { client, ns in
            let keys = try ConveyorKeys(namespace: ns)
            var job: WorkerJob?
            try await withWorkerPool(client, namespace: ns, types: [WorkerEchoJob.typeName]) { scheduler, _, _, _ in
                job = try await scheduler.scheduleJob(WorkerJobConfig(WorkerFlakyJob.self, userId: 1, data: .init(succeedOnAttempt: 1)))
                #expect(try await eventually { try await client.send("HGET", keys.partition(0).job(job!.id), "rl").string != nil })
                #expect(try await scheduler.parkedCounts() == [WorkerFlakyJob.typeName: 1])
            }
            // The pool claims it again after each backoff; once it has stopped
            // (claims in flight settled), the job waits, not started.
            let scheduler = JobScheduler(client: client, configuration: .init(keys: keys))
            let waiting = try #require(try await scheduler.job(id: job!.id))
            #expect(waiting.state == .pending && waiting.started == nil && waiting.workerId == nil && waiting.finished == nil)
            try await withWorkerPool(client, namespace: ns) { scheduler, _, _, _ in
                #expect(try await eventually { try await scheduler.job(id: job!.id)?.finished != nil })
                let done = try #require(try await scheduler.job(id: job!.id))
                #expect(done.success == true && done.attempt == 1, "run as a first attempt, never failed")
                #expect(try await scheduler.parkedCounts().isEmpty)
            }
        }
    }

    @Test("a job whose lease is taken by recovery is cancelled at once, and its late result is not written")
    func leaseLostCancelsAtOnce() async throws {
        try await TestRedis.withClient { client, ns in
            let keys = try ConveyorKeys(namespace: ns)
            try await withWorkerPool(client, namespace: ns, configure: { $0.leaseRenewInterval = .milliseconds(100) }) { scheduler, _, events, pool in
                let job = try await scheduler.scheduleJob(WorkerJobConfig(WorkerSleepJob.self, userId: 1, data: .init(ms: 20_000)))
                #expect(try await eventually { try await scheduler.job(id: job.id)?.started != nil })
                // Another worker's recovery, on a clock far ahead: mark, then recover.
                let far = Date().milliseconds + 3_600_000
                let store = Self.store(client, keys)
                _ = try await store.recoverExpired(partition: keys.partition(0), now: far, estimatedNow: far, graceMs: 0)
                #expect(try await scheduler.job(id: job.id)?.result["error"] == .string("worker lost"))
                let cancelledAt = ContinuousClock.now
                #expect(try await eventually { events.withLock { $0.contains { $0.job.id == job.id } } })
                #expect(ContinuousClock.now - cancelledAt < .seconds(5), "cancelled by the next renewal, not after its 20 s")
                #expect(events.withLock { $0.first { $0.job.id == job.id }?.written } == false)
                #expect(pool.running.withLock { $0.isEmpty })
            }
        }
    }
}

/// Counts its executions, then sleeps: long enough that faults land mid-run.
struct CountedSleepJob: Job {
    static let typeName = "countedSleep"
    func run(_ params: JobParams<WorkerTestApp, Int>) async throws -> Nothing {
        params.app.executions.withLock { $0[params.input, default: 0] += 1 }
        try await Task.sleep(for: .milliseconds(20))
        return Nothing()
    }
}

@Suite("At least once, through a proxy that drops replies")
struct DroppedReplyTests {
    @Test("replies dropped on the pool's connections (claims, completions, renewals, wake-ups): every job runs, none is failed as worker lost, none stays running")
    func droppedReplies() async throws {
        let upstream = try #require(URL(string: try await TestRedis.url())?.port)
        let proxy = try await FaultProxy.start(upstreamPort: upstream)
        var configuration = try RedisConfiguration(url: proxy.url)
        configuration.commandTimeout = .seconds(5)
        let poolClient = RedisClient(configuration: configuration)
        try await TestRedis.withClient { client, ns in
            let keys = try ConveyorKeys(namespace: ns)
            let scheduler = JobScheduler(client: client, configuration: .init(keys: keys))
            var registry = JobRegistry<WorkerTestApp>()
            registry.register(CountedSleepJob.self)
            var poolConfiguration = WorkerPoolConfiguration(concurrency: 8, keys: keys)
            // Short enough that a claim left unknown would be recovered (as worker
            // lost) within the test; long enough that renewals ride out the
            // reconnects on a loaded machine.
            poolConfiguration.leaseDuration = .seconds(5)
            poolConfiguration.leaseRenewInterval = .milliseconds(500)
            poolConfiguration.recoveryInterval = .milliseconds(500)
            poolConfiguration.recoveryGracePeriod = .seconds(3)
            poolConfiguration.maxIdleWait = .milliseconds(200)
            let app = WorkerTestApp()
            let pool = WorkerPool(client: poolClient, registry: registry, app: app, configuration: poolConfiguration)
            let running = Task { try await pool.run() }
            let jobs = try await scheduler.scheduleJobs((1...400).map { WorkerJobConfig(CountedSleepJob.self, userId: $0, data: $0) })
            // One reply lost every 40 ms on whichever connection it comes, for the whole run.
            let faults = Task {
                for _ in 0..<40 {
                    proxy.dropNextReplies(1)
                    try? await Task.sleep(for: .milliseconds(40))
                }
            }
            let done = try await eventually(timeout: .seconds(60)) {
                let counts = try await scheduler.counts()
                return app.executions.withLock { $0.count } == 400 && counts[.pending] == 0 && counts[.running] == 0
            }
            await faults.value
            pool.beginShutdown()
            try await running.value
            await poolClient.shutdown()
            await proxy.stop()
            let counts = try await scheduler.counts()
            #expect(done, "counts: \(counts)")
            #expect(proxy.faults.droppedReplies > 10, "faults: \(proxy.faults)")
            let finished = try await scheduler.jobs(state: .finished, limit: 10_000)
            let lost = finished.filter { $0.result["error"] == .string("worker lost") }
            #expect(lost.count == 0, "no job is failed as worker lost: \(lost.prefix(3).map(\.id))")
            #expect(finished.filter { $0.success != true }.count == 0)
            #expect(Set(finished.map(\.id)) == Set(jobs.map(\.id)))
            let executions = app.executions.withLock { $0 }
            #expect(Set(executions.keys) == Set(1...400), "every job ran")
            #expect(try await scheduler.counts()[.running] == 0)
        }
    }
}
