import Foundation
import Synchronization
import Testing

@testable import Conveyor

/// What the claim-ahead tests' jobs saw.
final class ClaimAheadTestApp: Sendable {
    struct Seen {
        var running = 0
        var mostRunning = 0
        /// Most jobs the pool held (running or waiting for a runner) when a job began.
        var mostHeld = 0
        var runs: [Int: Int] = [:]
    }
    let seen = Mutex(Seen())
    /// The pool's count of jobs it holds; set once the pool exists.
    let heldCount = Mutex<(@Sendable () -> Int)?>(nil)
    init() {}
}

/// Runs for `ms` milliseconds (0: yields a few times), counting how many run at once.
struct ClaimAheadProbeJob: Job {
    static let typeName = "claimAheadProbe"
    struct Input: Codable, Sendable { var ms: Int }
    func run(_ params: JobParams<ClaimAheadTestApp, Input>) async throws -> Nothing {
        let held = params.app.heldCount.withLock { $0 }?() ?? 0
        params.app.seen.withLock { seen in
            seen.running += 1
            seen.mostRunning = max(seen.mostRunning, seen.running)
            seen.mostHeld = max(seen.mostHeld, held)
            seen.runs[params.job.id, default: 0] += 1
        }
        defer { params.app.seen.withLock { $0.running -= 1 } }
        if params.input.ms > 0 {
            try await Task.sleep(for: .milliseconds(params.input.ms))
        } else {
            for _ in 0..<3 { await Task.yield() }
        }
        return Nothing()
    }
}

@Suite("Claim-ahead: jobs claimed beyond the runners while jobs are short")
struct ClaimAheadTests {
    static func makePool(
        _ client: RedisClient, namespace: String, concurrency: Int, claimAhead: Int?
    ) throws -> (WorkerPool<ClaimAheadTestApp>, JobScheduler, ClaimAheadTestApp) {
        var registry = JobRegistry<ClaimAheadTestApp>()
        registry.register(ClaimAheadProbeJob.self)
        let keys = try ConveyorKeys(namespace: namespace)
        var configuration = WorkerPoolConfiguration(concurrency: concurrency, claimAhead: claimAhead, keys: keys)
        configuration.maxIdleWait = .milliseconds(200)
        let app = ClaimAheadTestApp()
        let pool = WorkerPool(client: client, registry: registry, app: app, configuration: configuration)
        app.heldCount.withLock { $0 = { pool.running.withLock { $0.count } } }
        return (pool, JobScheduler(client: client, configuration: .init(keys: keys)), app)
    }

    static func schedule(_ scheduler: JobScheduler, count: Int, ms: Int, firstUser: Int = 0) async throws -> [Int] {
        let jobs = try await scheduler.scheduleJobs(
            (0..<count).map { WorkerJobConfig(ClaimAheadProbeJob.self, userId: firstUser + $0, data: .init(ms: ms)) }
        )
        return jobs.map(\.id)
    }

    /// Runs `count` probe jobs of `ms` each through a pool; returns what the jobs saw.
    static func run(count: Int, ms: Int, concurrency: Int, claimAhead: Int?) async throws -> ClaimAheadTestApp.Seen {
        try await TestRedis.withClient { client, namespace in
            let (pool, scheduler, app) = try makePool(client, namespace: namespace, concurrency: concurrency, claimAhead: claimAhead)
            _ = try await schedule(scheduler, count: count, ms: ms)
            let worker = Task { try await pool.run() }
            let done = try await eventually(timeout: .seconds(30)) { app.seen.withLock { $0.runs.count } == count }
            pool.beginShutdown()
            try await worker.value
            #expect(done)
            let unfinished = try await scheduler.counts()
            #expect(unfinished[.running] == 0 && unfinished[.pending] == 0, "\(unfinished)")
            return app.seen.withLock { $0 }
        }
    }

    @Test("runners are handed out first come first served; a job cancelled while it waits gives up its turn and holds none")
    func runnerSlotsOrder() async throws {
        let slots = RunnerSlots(count: 1)
        #expect(slots.tryTake())
        #expect(!slots.tryTake(), "one runner, taken")
        let first = Task { try await slots.take() }
        #expect(try await eventually { slots.waiting == 1 })
        let second = Task { try await slots.take() }
        #expect(try await eventually { slots.waiting == 2 })
        slots.giveBack()
        try await first.value
        #expect(slots.waiting == 1, "the runner went to the first waiter only")
        second.cancel()
        await #expect(throws: CancellationError.self) { try await second.value }
        #expect(slots.waiting == 0)
        slots.giveBack()
        #expect(slots.tryTake(), "the runner given back with nobody waiting is free again")
        #expect(!slots.tryTake(), "the cancelled waiter took no runner")
    }

    @Test("short jobs are claimed ahead: the pool holds more jobs than runners, runs no more than its runners at once, and runs each job once")
    func shortJobsClaimedAhead() async throws {
        let seen = try await Self.run(count: 300, ms: 0, concurrency: 2, claimAhead: 4)
        #expect(seen.mostRunning <= 2, "\(seen.mostRunning) jobs ran at once on 2 runners")
        #expect(seen.mostHeld > 2, "never held more jobs than runners: nothing was claimed ahead")
        #expect(seen.mostHeld <= 2 + 4)
        #expect(seen.runs.values.allSatisfy { $0 == 1 })
    }

    @Test("claimAhead 0 turns it off: the pool never holds more jobs than runners")
    func claimAheadOff() async throws {
        let seen = try await Self.run(count: 300, ms: 0, concurrency: 2, claimAhead: 0)
        #expect(seen.mostHeld <= 2, "held \(seen.mostHeld) jobs with 2 runners and claimAhead 0")
        #expect(seen.runs.values.allSatisfy { $0 == 1 })
    }

    @Test("jobs that run longer than 2 ms on average are not claimed ahead")
    func longJobsNotClaimedAhead() async throws {
        let seen = try await Self.run(count: 40, ms: 5, concurrency: 2, claimAhead: 4)
        #expect(seen.mostHeld <= 2, "held \(seen.mostHeld) jobs of 5 ms with 2 runners")
        #expect(seen.runs.values.allSatisfy { $0 == 1 })
    }

    /// A pool of 1 runner warmed up on short jobs (so it claims ahead), then
    /// one job of `blockerMs` on the runner and 5 short ones claimed behind it.
    static func stopWithJobsWaiting(hard: Bool, blockerMs: Int) async throws {
        try await TestRedis.withClient { client, namespace in
            let (pool, scheduler, app) = try makePool(client, namespace: namespace, concurrency: 1, claimAhead: 5)
            let worker = Task { try await pool.run() }
            _ = try await schedule(scheduler, count: 20, ms: 0)
            #expect(try await eventually { app.seen.withLock { $0.runs.count } == 20 })
            let blocker = try await schedule(scheduler, count: 1, ms: blockerMs, firstUser: 100)[0]
            #expect(try await eventually { app.seen.withLock { $0.runs[blocker] } == 1 })
            let waiting = try await schedule(scheduler, count: 5, ms: 0, firstUser: 200)
            #expect(try await eventually { pool.running.withLock { $0.count } == 6 }, "the 5 short jobs were not claimed behind the running one")
            #expect(try await eventually { pool.runnerSlots.waiting == 5 })
            #expect(pool.running.withLock { $0.values.filter { $0.deadline == nil }.count } == 5, "no timeout runs while a job waits for a runner")
            #expect(WorkerHeartbeat(pool: pool).record().jobsRunning == 1, "the worker's record counts the jobs waiting for a runner as not running")
            if hard { worker.cancel() } else { pool.beginShutdown() }
            try await worker.value
            let ranWhileStopping = app.seen.withLock { seen in waiting.filter { seen.runs[$0] != nil } }
            #expect(try await scheduler.counts()[.running] == 0)
            if hard {
                #expect(ranWhileStopping.isEmpty, "a hard stop has no grace period")
                for id in waiting {
                    let stopped = try #require(try await scheduler.job(id: id))
                    #expect(stopped.success == false && stopped.result["error"] == .string("shutdown"), "\(stopped.jsonString())")
                }
                let rerun = try await scheduler.jobs(state: .pending, type: ClaimAheadProbeJob.typeName)
                #expect(Set(rerun.compactMap(\.rescheduledFromJob)) == Set(waiting + [blocker]), "each interrupted job is re-run, linked to it")
            } else {
                #expect(ranWhileStopping == waiting, "the jobs claimed ahead ran in the grace period")
                for id in waiting + [blocker] {
                    #expect(try await scheduler.job(id: id)?.success == true)
                }
                #expect(try await scheduler.jobs(state: .pending).isEmpty)
            }
        }
    }

    @Test("graceful shutdown runs the jobs claimed ahead in its grace period")
    func gracefulStopRunsWaitingJobs() async throws {
        try await Self.stopWithJobsWaiting(hard: false, blockerMs: 300)
    }

    @Test("a hard stop finishes jobs still waiting for a runner as interrupted, and re-runs each: none is lost")
    func hardStopRerunsWaitingJobs() async throws {
        try await Self.stopWithJobsWaiting(hard: true, blockerMs: 20_000)
    }
}
