import Conveyor
import ConveyorRedis
import ConveyorTestSupport
import Foundation
import Synchronization

/// The pieces of one scenario: its directory, redis-server, a direct client, worker processes,
/// the execution log, and the measurements every row shares.
///
/// Jobs are of the example app's `chaos` type: each sleeps, then appends its `n` to
/// ``executionLog``. A logical job is its `n` (user id `n` too, so the replace rule never
/// cancels one job for another).
final class ChaosRun: Sendable {
    static let namespace = "chaos"
    let settings: ChaosSettings
    let name: String
    let directory: String
    let redis: ChaosRedisServer
    let client: RedisClient
    let scheduler: JobScheduler
    let executionLog: String
    let started = ContinuousClock.now
    private let workers = Mutex<[GuardedProcess]>([])
    private let spawned = Mutex(0)
    private let lastFault = Mutex<ContinuousClock.Instant?>(nil)

    private init(settings: ChaosSettings, name: String, directory: String, redis: ChaosRedisServer) throws {
        self.settings = settings
        self.name = name
        self.directory = directory
        self.redis = redis
        var configuration = try RedisConfiguration(url: redis.url)
        configuration.poolSize = 2
        configuration.commandTimeout = .seconds(5)
        configuration.reconnectMaxDelay = .milliseconds(500)
        client = RedisClient(configuration: configuration)
        scheduler = JobScheduler(client: client, configuration: .init(keys: try ConveyorKeys(namespace: Self.namespace)))
        executionLog = directory + "/executions.log"
    }

    /// Makes the scenario directory and starts its redis-server with `redisArguments`.
    static func start(_ settings: ChaosSettings, name: String, redisArguments: [String] = []) async throws -> ChaosRun {
        let directory = settings.workDirectory + "/" + name
        try? FileManager.default.removeItem(atPath: directory)
        try FileManager.default.createDirectory(atPath: directory, withIntermediateDirectories: true)
        let redis = try await ChaosRedisServer.start(directory: directory, extraArguments: redisArguments)
        return try ChaosRun(settings: settings, name: name, directory: directory, redis: redis)
    }

    /// Stops every process and the client; removes the directory unless kept.
    func finish() async {
        for worker in workers.withLock({ $0 }) { await worker.kill() }
        await client.shutdown()
        await redis.stop()
        if !settings.keepFiles { try? FileManager.default.removeItem(atPath: directory) }
    }

    // MARK: Processes

    /// Starts `conveyor <arguments>` against this run's namespace, logging to the directory.
    func conveyor(_ arguments: [String]) async throws -> GuardedProcess {
        let index = spawned.withLock { $0 += 1; return $0 }
        return try await GuardedProcess.start(settings.conveyorPath, arguments, logPath: directory + "/\(arguments[0])-\(index).log")
    }

    /// Starts a `conveyor worker` on `url` (default: the server itself) and keeps it in ``workerList``.
    @discardableResult
    func startWorker(url: String? = nil, concurrency: Int, leaseSeconds: Int, extra: [String] = []) async throws -> GuardedProcess {
        let worker = try await conveyor([
            "worker", "--redis", url ?? redis.url, "--namespace", Self.namespace, "--concurrency", "\(concurrency)",
            "--lease", "\(leaseSeconds)", "--grace-period", "1", "--log-level", "warning",
        ] + extra)
        workers.withLock { $0.append(worker) }
        return worker
    }

    /// SIGKILLs the worker at `index` and starts a new one with the same arguments in its place.
    func killAndRestartWorker(at index: Int, url: String? = nil, concurrency: Int, leaseSeconds: Int) async throws {
        let victim = workers.withLock { $0[index] }
        await victim.kill()
        markFault()
        let replacement = try await conveyor([
            "worker", "--redis", url ?? redis.url, "--namespace", Self.namespace, "--concurrency", "\(concurrency)",
            "--lease", "\(leaseSeconds)", "--grace-period", "1", "--log-level", "warning",
        ])
        workers.withLock { $0[index] = replacement }
    }

    /// Records "now" as the time of the last fault (for the recovery time).
    func markFault() {
        lastFault.withLock { $0 = .now }
    }

    // MARK: Jobs

    /// The scheduling configuration of logical job `n`.
    func job(_ n: Int, sleepMs: Int, removeDelay: Int = 0) -> UntypedJobConfig {
        UntypedJobConfig(
            type: "chaos", userId: n, dataJSON: #"{"n":\#(n),"sleepMs":\#(sleepMs),"log":"\#(executionLog)"}"#, removeDelay: removeDelay
        )
    }

    /// Schedules `jobs` in one call, retrying a failed call (connection lost, server down, ...)
    /// every 100 ms until it is acknowledged or `deadline` passes. A retry of a call whose reply
    /// was lost replaces the stored jobs (same type and user) instead of doubling them.
    /// - Returns: The stored jobs, or `nil` if the deadline passed first; and the failures seen.
    func scheduleRetrying(_ jobs: [UntypedJobConfig], until deadline: ContinuousClock.Instant) async -> (jobs: [WorkerJob]?, failures: [String]) {
        var failures: [String] = []
        while ContinuousClock.now < deadline {
            do {
                return (try await scheduler.scheduleJobs(jobs), failures)
            } catch {
                failures.append("\(error)")
                try? await Task.sleep(for: .milliseconds(100))
            }
        }
        return (nil, failures)
    }

    /// How often each `n` was recorded in the execution log.
    func executions() -> [Int: Int] {
        guard let text = try? String(contentsOfFile: executionLog, encoding: .utf8) else { return [:] }
        var counts: [Int: Int] = [:]
        for line in text.split(separator: "\n") {
            if let n = Int(line) { counts[n, default: 0] += 1 }
        }
        return counts
    }

    /// Jobs pending or running now, or `nil` if Redis does not answer.
    func pendingOrRunning() async -> Int? {
        guard let counts = try? await scheduler.counts() else { return nil }
        return (counts[.pending] ?? 0) + (counts[.running] ?? 0)
    }

    /// Waits until nothing is pending or running (and, if given, every `expected` n ran), at
    /// most `timeout`; returns when the last new execution was recorded.
    @discardableResult
    func waitUntilDrained(expected: Set<Int>? = nil, timeout: Duration) async -> ContinuousClock.Instant? {
        let deadline = ContinuousClock.now + timeout
        var lastCount = -1
        var lastProgress: ContinuousClock.Instant?
        var idleSince: ContinuousClock.Instant?
        while ContinuousClock.now < deadline {
            let count = executionLogSize()
            if count != lastCount {
                lastCount = count
                lastProgress = .now
            }
            if let left = await pendingOrRunning(), left == 0 {
                // Done when every expected job ran, or when nothing was pending or running
                // for 3 s (jobs lost for good: nothing will run them any more).
                if let expected, !expected.isSubset(of: Set(executions().keys)) {
                    let since = idleSince ?? .now
                    idleSince = since
                    if ContinuousClock.now - since > .seconds(3) { break }
                } else {
                    break
                }
            } else {
                idleSince = nil
            }
            try? await Task.sleep(for: .milliseconds(200))
        }
        // One last look: a line may have landed since the last poll.
        if executionLogSize() != lastCount { lastProgress = .now }
        return lastProgress
    }

    private func executionLogSize() -> Int {
        ((try? FileManager.default.attributesOfItem(atPath: executionLog))?[.size] as? NSNumber)?.intValue ?? 0
    }

    /// Jobs of type `chaos` finished as `worker lost` and still in Redis.
    func workerLostCount() async -> Int {
        guard let finished = try? await scheduler.jobs(state: .finished, type: "chaos", limit: 10_000_000, scanLimit: 10_000_000) else {
            return -1
        }
        return finished.filter { $0.result["error"] == .string("worker lost") }.count
    }

    /// Fills in the figures every row shares, for the logical jobs `acknowledged`.
    func measure(_ result: inout ChaosResult, acknowledged: Set<Int>, lastProgress: ContinuousClock.Instant?) async {
        let executions = executions()
        result.seed = settings.seed
        result.jobsScheduled = acknowledged.count
        result.neverRan = acknowledged.subtracting(executions.keys).count
        result.ranMoreThanOnce = executions.values.filter { $0 > 1 }.count
        result.leftPendingOrRunning = await pendingOrRunning() ?? -1
        result.workerLost = await workerLostCount()
        if let fault = lastFault.withLock({ $0 }), let lastProgress, lastProgress > fault {
            result.recoverySeconds = (lastProgress - fault).seconds
        }
        result.durationSeconds = (ContinuousClock.now - started).seconds
    }
}

extension Duration {
    /// The duration in seconds, as a `Double`.
    var seconds: Double {
        let (whole, fraction) = components
        return Double(whole) + Double(fraction) / 1e18
    }
}

/// A counter tasks share.
final class SharedCounter: Sendable {
    private let count = Mutex(0)
    var value: Int { count.withLock { $0 } }
    func increment() { count.withLock { $0 += 1 } }
}
