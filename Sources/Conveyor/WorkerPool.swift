import ConveyorRedis
import Foundation
import Logging
import ServiceLifecycle
import Synchronization

/// Runs due jobs on a pool of concurrent runners.
///
/// One dispatcher per pool claims due jobs atomically (`claimJobs`: marked
/// started, owned by this worker, leased) in batches sized to the free
/// runners, and runs each in its own task. When nothing is due it blocks on
/// the partitions' `wake` lists (`BLPOP`) until the earliest due time, so a
/// job scheduled for now starts at once and a job due at T starts at T,
/// without polling. Each completion is one atomic script call that stores the
/// result and schedules the re-run, retry or next cron run.
///
/// Every scheduled job runs at least once:
/// - A claim whose reply is lost is sent again with the same token and returns
///   the same jobs (`claimJobs` is idempotent per token).
/// - Leases are renewed until each job's completion is
///   written. A job whose lease was lost is cancelled at once; its late
///   result is not written.
/// - Jobs whose worker died are recovered by any pool once their lease has
///   stayed expired for ``WorkerPoolConfiguration/recoveryGracePeriod``, and re-run.
/// - A job of a type this pool does not know is given back to `due` with a
///   backoff, for a worker that knows it.
///
/// Graceful shutdown (swift-service-lifecycle): stop claiming, let running
/// jobs finish for up to ``WorkerPoolConfiguration/shutdownGracePeriod``, then cancel
/// the rest: they are finished as interrupted and re-run at once, so nothing
/// stays started.
public final class WorkerPool<App: Sendable>: Service {
    /// Pool settings.
    public typealias Configuration = WorkerPoolConfiguration
    /// A completed job.
    public typealias Event = WorkerPoolEvent

    public let configuration: Configuration
    let client: RedisClient
    let registry: JobRegistry<App>
    let app: App
    let logger: Logger
    let store: JobStore
    let onEvent: (@Sendable (Event) -> Void)?
    let clock: RedisClockEstimate
    let metrics: ConveyorMetrics
    let tracing: JobTracing

    /// Jobs whose task is running: the reason to interrupt each, and how.
    let running = Mutex<[Int: RunningJob]>([:])
    /// Jobs claimed whose completion (or release) is not written yet: their
    /// leases are renewed, and shutdown waits for them.
    let held = Mutex<Set<Int>>([])
    /// Signalled whenever a job leaves `running` or `held` (the drain waits on it).
    let settled = Wakeup()
    let completions: CompletionWriter
    /// Set once graceful shutdown begins: no more claims.
    let stopping = Mutex(false)
    /// The connections the wake listeners are blocked on (by listener),
    /// closed to wake them at shutdown.
    let blockedOn = Mutex<[Int: RedisConnection]>([:])
    /// Ends the dispatcher's idle wait: a wake marker arrived, or shutdown.
    let wakeup = Wakeup()
    /// Signals the dispatcher: a runner slot was freed or a claim returned.
    let freeSlots: AsyncStream<Void>
    let freeSlotsContinuation: AsyncStream<Void>.Continuation
    /// `claimJobs` calls in flight and what they decided.
    let claims = Mutex(ClaimState())
    /// The last claim token used (tokens are unique per worker id).
    let claimTokens = Atomic<Int>(0)
    /// Per partition, tokens of claims whose replies arrived, for the next
    /// claim there to drop from the worker's `claims` hash.
    let acknowledgedClaims = Mutex<[Int: [String]]>([:])
    /// Episodes of Redis trouble, each logged once.
    let trouble = TroubleLog()
    /// Types met that this pool does not run (warned about once each).
    let unknownTypesWarned = Mutex<Set<String>>([])
    /// The runners (``WorkerPoolConfiguration/concurrency``) the claimed jobs take turns on.
    let runnerSlots: RunnerSlots
    /// How many jobs to claim beyond the runners, from how long jobs run.
    let claimAhead: ClaimAhead

    /// Creates a pool.
    /// - Parameters:
    ///   - client: The Redis client (blocking waits use a dedicated connection).
    ///   - registry: The job types this worker runs; jobs of other types are
    ///     given back for a worker that knows them.
    ///   - app: The context every job receives.
    ///   - configuration: Concurrency, leases, recovery, shutdown; see ``WorkerPoolConfiguration``.
    ///   - logger: Where the pool logs; by default the task-local
    ///     `Logger.current`. Per swift-log's guidance it logs at info or below,
    ///     except one warning per episode of Redis trouble and per unknown type.
    ///   - onEvent: Called after each job completes (for logs and demos).
    public init(
        client: RedisClient, registry: JobRegistry<App>, app: App, configuration: Configuration = Configuration(),
        logger: Logger = .current, onEvent: (@Sendable (Event) -> Void)? = nil
    ) {
        self.client = client
        self.registry = registry
        self.app = app
        self.configuration = configuration
        self.logger = logger
        self.onEvent = onEvent
        self.clock = RedisClockEstimate(testClock: configuration.testClock, hostClock: configuration.testHostClock ?? { Date() })
        self.metrics = ConveyorMetrics(factory: configuration.metricsFactory)
        self.tracing = JobTracing(tracer: configuration.tracer)
        self.store = JobStore(
            client: client, keys: configuration.keys, staleAfterMs: Self.ms(configuration.staleAfter),
            failedRetention: .init(ms: Self.ms(configuration.failedJobRetention), max: configuration.maxRetainedFailedJobs)
        )
        self.completions = CompletionWriter(
            store: store, configuration: configuration, clock: clock, logger: logger, trouble: trouble
        )
        (self.freeSlots, self.freeSlotsContinuation) = AsyncStream.makeStream(of: Void.self, bufferingPolicy: .bufferingNewest(1))
        self.runnerSlots = RunnerSlots(count: configuration.concurrency)
        self.claimAhead = ClaimAhead(limit: configuration.claimAhead ?? configuration.concurrency)
    }

    static func ms(_ duration: Duration) -> Int { duration.wholeMilliseconds }

    /// Runs until graceful shutdown or cancellation.
    public func run() async throws {
        logger.debug("worker pool starting", metadata: ["conveyor.worker.id": "\(configuration.workerId)", "conveyor.worker.concurrency": "\(configuration.concurrency)"])
        // A pool with another partition count would leave partitions unread.
        let verified = try await withGracefulShutdownHandler {
            try await configuration.keys.verifyLayoutRetrying(client: client, isStopping: { self.isStopping })
        } onGracefulShutdown: {
            self.beginShutdown()
        }
        guard verified else { return }
        let leaseKeeper = LeaseKeeper(pool: self)
        let heartbeat = WorkerHeartbeat(pool: self)
        await withDiscardingTaskGroup { group in
            group.addTask { await leaseKeeper.run() }
            if let watch = ArchiverWatch(pool: self) { group.addTask { await watch.run() } }
            group.addTask { await heartbeat.run() }
            group.addTask { await self.listenForWakeMarkers() }
            await withGracefulShutdownHandler {
                await self.dispatch(into: &group)
            } onGracefulShutdown: {
                self.beginShutdown()
            }
            // Claiming stopped; jobs in flight get the grace period, then are
            // interrupted. On cancellation (a hard stop) there is no grace
            // period. An unstructured task, because a cancelled one could not
            // wait at all.
            let grace = Task.isCancelled ? .zero : self.configuration.shutdownGracePeriod
            await Task {
                await self.waitForClaimsInFlight()
                await self.drain(grace: grace)
            }.value
            self.beginShutdown()  // also unblocks the wake listener after a hard stop
            group.cancelAll()
        }
        // Stopped on purpose: leave the live-worker list now, not at expiry.
        await heartbeat.remove()
        logger.debug("worker pool stopped", metadata: ["conveyor.worker.id": "\(configuration.workerId)"])
    }

    var isStopping: Bool { Task.isCancelled || stopping.withLock { $0 } }

    /// Stops claiming and wakes the dispatcher wherever it waits.
    public func beginShutdown() {
        stopping.withLock { $0 = true }
        freeSlotsContinuation.yield()
        wakeup.signal()
        for connection in blockedOn.withLock({ Array($0.values) }) {
            Task { await connection.close() }
        }
    }

    // MARK: Running jobs

    /// Runs a claimed job in its own task, which then writes its completion.
    /// - Parameter runner: The registry's runner for the job's type (looked up once, by the caller).
    func start(_ job: WorkerJob, runner: @escaping JobRegistry<App>.Runner) {
        let outcome = JobOutcome()
        let timeout =
            configuration.jobTimeoutByType.isEmpty ? configuration.jobTimeout : configuration.jobTimeoutByType[job.type] ?? configuration.jobTimeout
        // A job claimed ahead has no runner yet: its timeout starts when it gets one.
        // Registered before the task exists, so a fast job cannot finish first.
        let hasRunner = runnerSlots.tryTake()
        running.withLock { $0[job.id] = RunningJob(job: job, task: nil, outcome: outcome, deadline: hasRunner ? .now + timeout : nil) }
        metrics.increment(.started, type: job.type)
        if let started = job.started {
            metrics.record(.lateness, type: job.type, nanoseconds: Int64(started.milliseconds - job.due.milliseconds) * 1_000_000)
        }
        let partition = job.id % configuration.keys.partitionCount
        // Unstructured on purpose, not a child of run(): a task group would keep run()
        // (and the process's shutdown) waiting forever on a job that ignores
        // cancellation. `running` tracks it instead; drain() finishes it as interrupted
        // after the grace period, and claimDelivery() drops its late result.
        let task = Task { [app, logger, tracing, metrics, runnerSlots, workerId = configuration.workerId] in
            let result: Result<String?, any Error>
            do {
                if !hasRunner {
                    try await runnerSlots.take()
                    self.running.withLock { $0[job.id]?.deadline = .now + timeout }
                }
                var log = logger
                log.handler = JobLogHandler(base: logger.handler, job: job)
                let began = ContinuousClock.now
                do {
                    if tracing.tracer == nil {
                        result = .success(try await runner(app, job, log))
                    } else {
                        result = .success(try await tracing.withRunSpan(job, partition: partition, workerId: workerId) { try await runner(app, job, log) })
                    }
                } catch {
                    result = .failure(error)
                }
                runnerSlots.giveBack()
                let ran = (ContinuousClock.now - began).nanoseconds
                claimAhead.observe(runNanoseconds: ran)
                if metrics.isEnabled { metrics.record(.runDuration, type: job.type, nanoseconds: ran) }
            } catch {
                // Interrupted while waiting for a runner: it never ran.
                result = .failure(error)
            }
            // Shutdown may have given up on this job already and finished it.
            if outcome.claimDelivery() {
                await self.finish(job, outcome: result)
            }
        }
        let interrupted = running.withLock { running in
            running[job.id]?.task = task
            return running[job.id]?.interruption != nil
        }
        if interrupted { task.cancel() }
    }

    func finish(_ job: WorkerJob, outcome: Result<String?, any Error>) async {
        let interruption = running.withLock { $0.removeValue(forKey: job.id)?.interruption }
        freeSlotsContinuation.yield()
        settled.signal()

        if interruption == .leaseLost {
            logger.info("job lease lost; its result is discarded", metadata: ["conveyor.job.id": "\(job.id)"])
            release(held: [job.id])
            onEvent?(Event(job: job, success: false, resultJSON: nil, followUpJobId: nil, written: false))
            return
        }
        let status: JobStore.Completion.Status
        let resultJSON: String?
        switch (outcome, interruption) {
        case (.success(let result), nil) where (result?.utf8.count ?? 0) > configuration.maxResultBytes:
            let message = "result too large: \(result!.utf8.count) bytes, the limit is \(configuration.maxResultBytes) (maxResultBytes)"
            (status, resultJSON) = (.failed, Self.errorJSON(message, type: nil))
        case (.success(let result), nil):
            (status, resultJSON) = (.succeeded, result)
        case (_, .shutdown?):
            // The script writes the interrupted result and re-runs the job.
            (status, resultJSON) = (.interrupted, Interruption.shutdown.reason)
        case (_, let interruption?):
            (status, resultJSON) = (.failed, Self.errorJSON(interruption.reason, type: nil))
        case (.failure(let error), nil):
            let message = (error as? ConveyorError)?.message ?? String(describing: error)
            (status, resultJSON) = (.failed, Self.errorJSON(message, type: String(reflecting: Swift.type(of: error))))
        }
        let completion = JobStore.Completion(
            id: job.id, status: status, resultJSON: resultJSON, cronNextDue: job.nextCronDue(after: clock.now)
        )
        let (written, followUp) = await completions.write(completion)
        // Counted before the job leaves `held`, so a pool that has stopped has counted every job.
        if written { count(job, status: status, interruption: interruption, followUp: followUp) }
        release(held: [job.id])
        if !written {
            logger.info("job completion refused: lease lost", metadata: ["conveyor.job.id": "\(job.id)"])
        }
        onEvent?(Event(job: job, success: completion.success, resultJSON: completion.resultJSON, followUpJobId: followUp, written: written))
    }

    /// Counts a written completion (a result refused because the lease was
    /// lost is counted by the recovery that took the job).
    private func count(_ job: WorkerJob, status: JobStore.Completion.Status, interruption: Interruption?, followUp: Int?) {
        switch status {
        case .succeeded:
            metrics.increment(.succeeded, type: job.type)
        case .failed:
            metrics.increment(.failed, type: job.type)
            if interruption == .timedOut { metrics.increment(.timedOut, type: job.type) }
            // A failed job's follow-up is its retry when it asked for one (else its next cron run).
            if followUp != nil && job.autoRescheduleOnFailure { metrics.increment(.retried, type: job.type) }
        case .interrupted:
            metrics.increment(.interrupted, type: job.type)
        }
    }

    /// Stops renewing leases of jobs whose completion or release is written.
    func release(held ids: [Int]) {
        held.withLock { held in
            for id in ids { held.remove(id) }
        }
        settled.signal()
    }

    static func errorJSON(_ message: String, type: String?) -> String {
        var object: [String: JSONValue] = ["error": .string(message)]
        if let type { object["errorType"] = .string(type) }
        return JSONValue.object(object).jsonText
    }

    func interrupt(_ id: Int, _ reason: Interruption) {
        let task: Task<Void, Never>? = running.withLock { running in
            guard running[id]?.interruption == nil else { return nil }
            running[id]?.interruption = reason
            return running[id]?.task
        }
        task?.cancel()
    }

    // MARK: Shutdown

    /// After claiming stops: wait up to the grace period, then interrupt what
    /// remains; wait for every completion to be written.
    private func drain(grace: Duration) async {
        await waitUntil(.now + grace) { $0.running.isEmpty }
        let remaining = running.withLock { Array($0.keys) }
        for id in remaining { interrupt(id, .shutdown) }
        // The interrupted jobs now complete (and are re-run). A job that
        // ignores cancellation gets a little longer; then it is finished
        // without its result, so shutdown cannot hang on it.
        let abandonAt = ContinuousClock.now + configuration.abandonAfter
        await waitUntil(abandonAt) { $0.running.isEmpty }
        let stuck = running.withLock { $0.values.map { ($0.job, $0.outcome) } }
        if !stuck.isEmpty {
            logger.warning("jobs ignored cancellation at shutdown; finished without their results", metadata: ["conveyor.jobs": "\(stuck.count)"])
            for (job, outcome) in stuck where outcome.claimDelivery() {
                await finish(job, outcome: .failure(CancellationError()))
            }
        }
        // Completions still being written (each retries transient failures).
        await waitUntil(nil) { $0.held.isEmpty }
    }

    private struct Snapshot {
        var running: [Int: RunningJob]
        var held: Set<Int>
    }

    /// Waits, woken by `settled`, until `done` holds or `deadline` passes.
    private func waitUntil(_ deadline: ContinuousClock.Instant?, _ done: (Snapshot) -> Bool) async {
        while true {
            let snapshot = Snapshot(running: running.withLock { $0 }, held: held.withLock { $0 })
            if done(snapshot) { return }
            let now = ContinuousClock.now
            if let deadline, now >= deadline { return }
            // The timeout only bounds a missed signal; every change signals.
            await settled.wait(upTo: deadline.map { min($0 - now, .seconds(1)) } ?? .seconds(1))
        }
    }
}

/// A job whose task is running: the reason to interrupt it, and how.
///
/// Not nested in the generic ``WorkerPool``: a nested type's metadata is
/// generic too, and looking it up at run time (`swift_getGenericMetadata`) on
/// every start and finish cost a visible share of a worker's CPU per job.
struct RunningJob {
    var job: WorkerJob
    var interruption: Interruption? = nil
    /// The job's task (cancelled to interrupt it); `nil` until it exists.
    var task: Task<Void, Never>?
    /// Who reports the result: the job's task, or shutdown if it never ends.
    var outcome: JobOutcome
    /// When the job times out; `nil` while it waits for a runner (claimed ahead).
    var deadline: ContinuousClock.Instant?
}

/// Why a running job was stopped before it ended.
enum Interruption: Sendable, Equatable {
    /// It ran longer than its timeout: a failure of the job (retry rules apply).
    case timedOut
    /// Another worker recovered it (this one was cut off too long): the
    /// result is discarded.
    case leaseLost
    /// The pool shut down before it ended: finished as interrupted and re-run.
    case shutdown

    var reason: String {
        switch self {
        case .timedOut: "timed out"
        case .leaseLost: "lease lost"
        case .shutdown: "shutdown"
        }
    }
}

/// Decides once who reports a job's result: the job's own task when it
/// ends, or shutdown when the job ignores cancellation past its grace period.
final class JobOutcome: Sendable {
    private let delivered = Atomic<Bool>(false)

    init() {}

    /// `true` for the first caller only: it reports the result.
    func claimDelivery() -> Bool {
        !delivered.exchange(true, ordering: .acquiringAndReleasing)
    }
}
