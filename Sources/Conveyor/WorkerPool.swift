import Foundation
import Logging
import ServiceLifecycle
import Synchronization

/// Runs due jobs on a pool of concurrent runners.
///
/// One dispatcher per pool claims due jobs atomically (`claimJobs`: marked
/// started, owned by this worker, leased) in batches sized to the free
/// runners, and starts each in a child task. When nothing is due it blocks on
/// the partitions' `wake` lists (`BLPOP`) until the earliest due time, so a
/// job scheduled for now starts at once and a job due at T starts at T,
/// without polling. Each completion is one atomic script call that stores the
/// result and schedules the retry or next cron run.
///
/// Leases: the pool renews its jobs' leases every ``Configuration/leaseRenewInterval``
/// in one call per partition; a job whose lease is lost (the pool was cut off
/// and another worker recovered it) is cancelled and its late result is not
/// written. Any pool also recovers jobs whose lease expired — their worker
/// died — failing them as `worker lost`, after which retry and cron rules apply.
///
/// Graceful shutdown (swift-service-lifecycle): stop claiming, let running
/// jobs finish for up to ``Configuration/shutdownGracePeriod``, then fail the
/// rest with `shutdown` (retry rules apply) so nothing stays started.
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

    /// Jobs running now: the reason to interrupt each, and how.
    private struct Running {
        var job: WorkerJob
        var interruption: String?
        /// Cancels the job's task; `nil` until the task exists.
        var cancel: (@Sendable () -> Void)?
        /// Who reports the result: the job's task, or shutdown if it never ends.
        var outcome: JobOutcome
        /// When the job times out.
        var deadline: ContinuousClock.Instant
    }
    private let running = Mutex<[Int: Running]>([:])
    private let completions = Mutex(CompletionQueue())
    /// Set once graceful shutdown begins: no more claims.
    private let stopping = Mutex(false)
    /// The connection the dispatcher is blocked on, closed to wake it at shutdown.
    private let blockedOn = Mutex<RedisConnection?>(nil)
    /// Ends the dispatcher's idle wait: a wake marker arrived, or shutdown.
    private let wakeup = Wakeup()
    /// Signals the dispatcher: a runner slot was freed or a claim returned.
    private let freeSlots: AsyncStream<Void>
    private let freeSlotsContinuation: AsyncStream<Void>.Continuation
    /// `claimJobs` calls in flight and what they decided.
    private let claims = Mutex(ClaimState())
    /// Jobs started whose completion is not written yet (shutdown waits for them).
    private let unwritten = Mutex(0)

    /// Creates a pool.
    /// - Parameters:
    ///   - client: The Redis client (blocking waits use a dedicated connection).
    ///   - registry: The job types this worker runs; others fail with `unknown job type`.
    ///   - app: The context every job receives.
    ///   - onEvent: Called after each job completes (for logs and demos).
    public init(
        client: RedisClient, registry: JobRegistry<App>, app: App, configuration: Configuration = Configuration(),
        logger: Logger = Logger(label: "conveyor.worker"), onEvent: (@Sendable (Event) -> Void)? = nil
    ) {
        self.client = client
        self.registry = registry
        self.app = app
        self.configuration = configuration
        self.logger = logger
        self.onEvent = onEvent
        self.store = JobStore(client: client, keys: configuration.keys, staleAfterMs: Self.ms(configuration.staleAfter))
        (self.freeSlots, self.freeSlotsContinuation) = AsyncStream.makeStream(of: Void.self, bufferingPolicy: .bufferingNewest(1))
    }

    static func ms(_ duration: Duration) -> Int { duration.wholeMilliseconds }

    private var nowMs: Int { configuration.now().milliseconds }

    /// Runs until graceful shutdown or cancellation.
    public func run() async throws {
        logger.debug("worker pool starting", metadata: ["conveyor.worker.id": "\(configuration.workerId)", "conveyor.worker.concurrency": "\(configuration.concurrency)"])
        await withDiscardingTaskGroup { group in
            group.addTask { await self.maintain() }
            group.addTask { await self.listenForWakeMarkers() }
            await withGracefulShutdownHandler {
                await self.dispatch(into: &group)
            } onGracefulShutdown: {
                self.beginShutdown()
            }
            // Claiming stopped; jobs in flight get the grace period, then are
            // failed. On cancellation (a hard stop) there is no grace period. An
            // unstructured task, because a cancelled one could not wait at all.
            let grace = Task.isCancelled ? .zero : self.configuration.shutdownGracePeriod
            await Task {
                // Jobs that claims still in flight return are started, then drained.
                while self.claims.withLock({ $0.inFlight > 0 }) {
                    try? await Task.sleep(for: .milliseconds(5))
                }
                await self.drain(grace: grace)
            }.value
            self.beginShutdown()  // also unblocks the wake listener after a hard stop
            group.cancelAll()
        }
        logger.debug("worker pool stopped", metadata: ["conveyor.worker.id": "\(configuration.workerId)"])
    }

    // MARK: Dispatching

    private var isStopping: Bool { Task.isCancelled || stopping.withLock { $0 } }

    /// Stops claiming and wakes the dispatcher wherever it waits.
    public func beginShutdown() {
        stopping.withLock { $0 = true }
        freeSlotsContinuation.yield()
        wakeup.signal()
        if let connection = blockedOn.withLock({ $0 }) {
            Task { await connection.close() }
        }
    }

    /// Claims jobs for free runners. Claims run as child tasks, so more can
    /// be on their way while one is in flight (for runners freed meanwhile):
    /// Redis does not wait for this process's round trips, and no job is
    /// claimed without a free runner for it.
    private func dispatch(into group: inout DiscardingTaskGroup) async {
        var signals = freeSlots.makeAsyncIterator()
        let concurrency = configuration.concurrency
        // Up to 3 claims in flight; another one only for a worthwhile batch
        // (both measured best of 1–3 and concurrency/4–/8 end to end).
        let maxClaimsInFlight = 3
        let pipelinedBatch = max(1, concurrency / 8)
        while !isStopping {
            let held = running.withLock { $0.count }
            let step: DispatchStep = claims.withLock { state in
                let free = concurrency - held - state.reserved
                if let pause = state.pause {
                    return state.inFlight == 0 ? .pause(pause) : .waitForSignal
                }
                guard free > 0, state.inFlight < maxClaimsInFlight, state.inFlight == 0 || free >= pipelinedBatch else {
                    return .waitForSignal
                }
                state.inFlight += 1
                state.reserved += free
                return .claim(free)
            }
            switch step {
            case .claim(let count):
                group.addTask { await self.claimAndStart(count) }
            case .waitForSignal:
                _ = await signals.next()
            case .pause(let duration):
                await wakeup.wait(upTo: duration)
                claims.withLock { $0.pause = nil }
            }
        }
    }

    /// One claim of up to `count` jobs over the partitions, the jobs started,
    /// and the dispatcher told whether to claim again at once or to pause
    /// until a wake marker, the next due time or the end of an error backoff.
    private func claimAndStart(_ count: Int) async {
        var claimed = 0
        var earliest: Int?
        var failure: (any Error)?
        do {
            for partition in configuration.keys.partitions where claimed < count {
                let (jobs, nextDue) = try await store.claim(
                    partition: partition, now: nowMs, workerId: configuration.workerId, maxCount: count - claimed,
                    leaseMs: Self.ms(configuration.leaseDuration)
                )
                for job in jobs { start(job) }
                claimed += jobs.count
                if let nextDue { earliest = min(earliest ?? nextDue, nextDue) }
            }
        } catch {
            failure = error
        }
        let now = nowMs
        let backoff: Duration? = claims.withLock { state in
            state.inFlight -= 1
            state.reserved -= count
            if failure != nil {
                state.pause = state.backoff
                defer { state.backoff = min(state.backoff * 2, .seconds(5)) }
                return state.backoff
            }
            state.backoff = .milliseconds(50)
            if claimed == count {
                state.pause = nil  // maybe more is due: claim again
            } else if let earliest, earliest <= now {
                state.pause = nil  // became due meanwhile
            } else {
                // Nothing more is due: wait for a wake marker or the next due time.
                state.pause = min(earliest.map { .milliseconds($0 - now) } ?? configuration.maxIdleWait, configuration.maxIdleWait)
            }
            return nil
        }
        if let failure, let backoff, !isStopping {
            logger.warning("worker could not claim jobs; retrying", metadata: ["conveyor.error": "\(failure)", "conveyor.retry_ms": "\(Self.ms(backoff))"])
        }
        freeSlotsContinuation.yield()
    }

    /// Keeps one `BLPOP` on the partitions' wake lists outstanding and turns
    /// each marker into a wake-up of the dispatcher.
    ///
    /// The dispatcher's timer for the next due job is local (``Wakeup``), not
    /// the `BLPOP` timeout: Redis times out blocked clients only on its `hz`
    /// tick (every 100 ms by default), which made jobs due later start up to
    /// 100 ms late.
    private func listenForWakeMarkers() async {
        let seconds = max(1, Double(Self.ms(configuration.maxIdleWait)) / 1000)
        var arguments: [any RESPArgument] = configuration.keys.partitions.map(\.wake)
        arguments.append(String(format: "%.3f", seconds))
        let command = RedisCommand("BLPOP", arguments: arguments)
        var backoff = Duration.milliseconds(50)
        while !isStopping {
            do {
                try await client.withDedicatedConnection { connection throws(RedisError) in
                    blockedOn.withLock { $0 = connection }
                    defer { blockedOn.withLock { $0 = nil } }
                    while !isStopping {
                        let reply = try await connection.send(command, timeout: .seconds(seconds + 5))
                        if !reply.isNull { wakeup.signal() }
                    }
                }
                backoff = .milliseconds(50)
            } catch {
                if isStopping { break }
                logger.debug("wake listener reconnecting", metadata: ["conveyor.error": "\(error)"])
                // Without a listener the dispatcher still wakes on its timer
                // (at most maxIdleWait), so nothing is lost meanwhile.
                wakeup.signal()
                try? await Task.sleep(for: backoff)
                backoff = min(backoff * 2, .seconds(2))
            }
        }
    }

    /// Runs a claimed job in its own task, which then writes its completion.
    private func start(_ job: WorkerJob) {
        let outcome = JobOutcome()
        unwritten.withLock { $0 += 1 }
        let timeout = configuration.jobTimeoutByType[job.type] ?? configuration.jobTimeout
        // Registered before the task exists, so a fast job cannot finish first.
        running.withLock {
            $0[job.id] = Running(job: job, interruption: nil, cancel: nil, outcome: outcome, deadline: .now + timeout)
        }
        let task = Task { [registry, app, logger] in
            var log = logger
            log.handler = JobLogHandler(base: logger.handler, job: job)
            let result: Result<String?, any Error>
            do {
                guard let runner = registry.runner(for: job.type) else {
                    throw ConveyorError(.unknownJobType, "unknown job type \"\(job.type)\": this worker runs \(registry.typeNames.joined(separator: ", "))")
                }
                result = .success(try await runner(app, job, log))
            } catch {
                result = .failure(error)
            }
            // Shutdown may have given up on this job already and finished it.
            if outcome.claimDelivery() {
                await self.finish(job, outcome: result)
            }
        }
        let interrupted = running.withLock { running in
            running[job.id]?.cancel = { task.cancel() }
            return running[job.id]?.interruption != nil
        }
        if interrupted { task.cancel() }
    }

    private func finish(_ job: WorkerJob, outcome: Result<String?, any Error>) async {
        defer { unwritten.withLock { $0 -= 1 } }
        let interruption = running.withLock { $0.removeValue(forKey: job.id)?.interruption }
        freeSlotsContinuation.yield()

        if interruption == "lease lost" {
            logger.warning("job lease lost; its result is discarded", metadata: ["conveyor.job.id": "\(job.id)"])
            onEvent?(Event(job: job, success: false, resultJSON: nil, followUpJobId: nil, written: false))
            return
        }
        let success: Bool
        let resultJSON: String?
        switch outcome {
        case .success(let result) where interruption == nil:
            (success, resultJSON) = (true, result)
        case .success:
            (success, resultJSON) = (false, Self.errorJSON(interruption!, type: nil))
        case .failure(let error):
            let message = interruption ?? ((error as? ConveyorError)?.message ?? String(describing: error))
            (success, resultJSON) = (false, Self.errorJSON(message, type: interruption == nil ? String(reflecting: Swift.type(of: error)) : nil))
        }
        let completion = JobStore.Completion(
            id: job.id, success: success, resultJSON: resultJSON, cronNextDue: job.nextCronDue(after: configuration.now())
        )
        await complete(job, completion)
    }

    /// Writes a completion. Completions are group-committed per partition:
    /// while one `completeJobs` call is in flight, completions that arrive are
    /// queued and the next call writes them all, so a busy pool pays one round
    /// trip for many jobs and an idle one waits for nobody.
    private func complete(_ job: WorkerJob, _ completion: JobStore.Completion) async {
        let partition = job.id % configuration.keys.partitionCount
        let role: CompletionRole = await withCheckedContinuation { continuation in
            let flushNow = completions.withLock { state in
                if state.flushing.contains(partition) {
                    state.waiting[partition, default: []].append(QueuedCompletion(job: job, completion: completion, continuation: continuation))
                    return false
                }
                state.flushing.insert(partition)
                return true
            }
            if flushNow { continuation.resume(returning: .flush) }
        }
        switch role {
        case .written(let written, let followUp):
            report(job, completion, written: written, followUp: followUp)
        case .flush:
            var batch = [QueuedCompletion(job: job, completion: completion, continuation: nil)]
            while true {
                let haveOwn = !batch.isEmpty
                let queued = completions.withLock { state in
                    let queued = state.waiting.removeValue(forKey: partition) ?? []
                    // Stop flushing in the same critical section that finds the
                    // queue empty, so no completion can be left behind.
                    if queued.isEmpty && !haveOwn { state.flushing.remove(partition) }
                    return queued
                }
                batch += queued
                if batch.isEmpty { return }
                let results = await write(batch, partition: configuration.keys.partition(partition))
                for (entry, result) in zip(batch, results) {
                    if let continuation = entry.continuation {
                        continuation.resume(returning: .written(result.written, result.followUp))
                    } else {
                        report(entry.job, entry.completion, written: result.written, followUp: result.followUp)
                    }
                }
                batch = []
            }
        }
    }

    /// One `completeJobs` call per at most 200 jobs, retrying transient Redis
    /// failures: a result must not be dropped because Redis blinked. If a lease
    /// expires meanwhile the script refuses that job and recovery's verdict stands.
    private func write(_ batch: [QueuedCompletion], partition: ConveyorKeys.Partition) async -> [(written: Bool, followUp: Int?)] {
        var results: [(written: Bool, followUp: Int?)] = []
        for start in stride(from: 0, to: batch.count, by: 200) {
            let chunk = batch[start..<min(start + 200, batch.count)].map(\.completion)
            var delay = Duration.milliseconds(50)
            var written: [(written: Bool, followUp: Int?)]?
            for attempt in 1...20 where written == nil {
                do {
                    written = try await store.complete(chunk, partition: partition, now: nowMs, workerId: configuration.workerId)
                } catch {
                    logger.warning("job completion failed; retrying", metadata: ["conveyor.jobs": "\(chunk.count)", "conveyor.attempt": "\(attempt)", "conveyor.error": "\(error)"])
                    try? await Task.sleep(for: delay)
                    delay = min(delay * 2, .seconds(2))
                }
            }
            if written == nil {
                logger.error("job completions could not be written; recovery will fail these jobs as worker lost", metadata: ["conveyor.job.ids": "\(chunk.map(\.id))"])
            }
            results += written ?? Array(repeating: (false, nil), count: chunk.count)
        }
        return results
    }

    private func report(_ job: WorkerJob, _ completion: JobStore.Completion, written: Bool, followUp: Int?) {
        if !written {
            logger.warning("job completion refused: lease lost", metadata: ["conveyor.job.id": "\(job.id)"])
        }
        onEvent?(Event(job: job, success: completion.success, resultJSON: completion.resultJSON, followUpJobId: followUp, written: written))
    }

    static func errorJSON(_ message: String, type: String?) -> String {
        var object: [String: JSONValue] = ["error": .string(message)]
        if let type { object["errorType"] = .string(type) }
        return JSONValue.object(object).jsonText
    }

    private func interrupt(_ id: Int, reason: String) {
        let cancel: (@Sendable () -> Void)? = running.withLock { running in
            guard var entry = running[id], entry.interruption == nil else { return nil }
            entry.interruption = reason
            running[id] = entry
            return entry.cancel
        }
        cancel?()
    }

    // MARK: Leases, recovery, shutdown

    /// Renews leases and recovers expired ones until cancelled.
    private func maintain() async {
        let clock = ContinuousClock()
        var nextRenew = clock.now + configuration.leaseRenewInterval
        var nextRecovery = clock.now
        // One timeout check for all jobs instead of a timer task per job;
        // granularity is a tenth of the shortest timeout, 10 ms to 1 s.
        let shortestTimeout = ([configuration.jobTimeout] + configuration.jobTimeoutByType.values).min()!
        let timeoutCheck = min(max(shortestTimeout / 10, .milliseconds(10)), .seconds(1))
        var nextTimeoutCheck = clock.now + timeoutCheck
        while !Task.isCancelled {
            let now = clock.now
            if now >= nextTimeoutCheck {
                let overdue = running.withLock { running in running.filter { $0.value.deadline <= now }.map(\.key) }
                for id in overdue { interrupt(id, reason: "timed out") }
                nextTimeoutCheck = now + timeoutCheck
            }
            if now >= nextRenew {
                await renewLeases()
                nextRenew = now + configuration.leaseRenewInterval
            }
            if now >= nextRecovery {
                for partition in configuration.keys.partitions {
                    do {
                        let recovered = try await store.recoverExpired(
                            partition: partition, now: nowMs, lockOwner: configuration.workerId,
                            lockMs: max(100, Self.ms(configuration.recoveryInterval) / 2)
                        )
                        if recovered > 0 {
                            logger.info("recovered jobs of lost workers", metadata: ["conveyor.recovered": "\(recovered)"])
                        }
                    } catch {
                        logger.debug("recovery pass failed", metadata: ["conveyor.error": "\(error)"])
                    }
                }
                nextRecovery = now + configuration.recoveryInterval
            }
            try? await Task.sleep(until: min(nextRenew, nextRecovery, nextTimeoutCheck))
        }
    }

    private func renewLeases() async {
        let held = running.withLock { $0.keys.sorted() }
        guard !held.isEmpty else { return }
        var byPartition: [Int: [Int]] = [:]
        for id in held { byPartition[id % configuration.keys.partitionCount, default: []].append(id) }
        for (index, ids) in byPartition {
            do {
                let lost = try await store.renew(
                    ids: ids, partition: configuration.keys.partition(index), now: nowMs, workerId: configuration.workerId,
                    leaseMs: Self.ms(configuration.leaseDuration)
                )
                for id in lost { interrupt(id, reason: "lease lost") }
            } catch {
                // Leases run out only after leaseDuration; the next renewal may succeed.
                logger.warning("lease renewal failed", metadata: ["conveyor.error": "\(error)"])
            }
        }
    }

    /// After claiming stops: wait up to the grace period, then interrupt what remains.
    private func drain(grace: Duration) async {
        let deadline = ContinuousClock.now + grace
        while running.withLock({ !$0.isEmpty }) && ContinuousClock.now < deadline {
            try? await Task.sleep(for: .milliseconds(20))
        }
        let remaining = running.withLock { Array($0.keys) }
        for id in remaining { interrupt(id, reason: "shutdown") }
        // The interrupted jobs now complete as failed (and retry if configured).
        // A job that ignores cancellation gets a few more seconds; then it is
        // failed without its result, so shutdown cannot hang on it.
        let abandonAt = ContinuousClock.now + .seconds(5)
        while running.withLock({ !$0.isEmpty }) {
            if ContinuousClock.now >= abandonAt {
                let stuck = running.withLock { $0.values.map { ($0.job, $0.outcome) } }
                logger.warning("jobs ignored cancellation at shutdown; failed without their results", metadata: ["conveyor.jobs": "\(stuck.count)"])
                for (job, outcome) in stuck where outcome.claimDelivery() {
                    await finish(job, outcome: .failure(CancellationError()))
                }
                break
            }
            try? await Task.sleep(for: .milliseconds(10))
        }
        // Completions still being written (each retries transient failures).
        while unwritten.withLock({ $0 > 0 }) {
            try? await Task.sleep(for: .milliseconds(10))
        }
    }
}

/// Settings of a ``WorkerPool``.
public struct WorkerPoolConfiguration: Sendable {
    /// Jobs run at once.
    public var concurrency: Int
    /// How long a claimed job is leased before others may recover it.
    public var leaseDuration: Duration
    /// How often leases are renewed; well below ``leaseDuration``.
    public var leaseRenewInterval: Duration
    /// How often expired leases are looked for.
    public var recoveryInterval: Duration
    /// Longest a job may run before it is cancelled and failed as `timed out`.
    public var jobTimeout: Duration
    /// Per-type overrides of ``jobTimeout``, by stored type name.
    public var jobTimeoutByType: [String: Duration]
    /// How long running jobs may finish after shutdown begins.
    public var shutdownGracePeriod: Duration
    /// Longest idle block on `wake` before looking again.
    public var maxIdleWait: Duration
    /// This worker's id, stored on the jobs it claims.
    public var workerId: String
    /// Key layout; all processes must agree.
    public var keys: ConveyorKeys
    /// The replace rule's "started over an hour ago" threshold.
    public var staleAfter: Duration
    /// The clock.
    public var now: @Sendable () -> Date

    /// Creates a configuration with defaults.
    public init(
        concurrency: Int = 10,
        leaseDuration: Duration = .seconds(30),
        leaseRenewInterval: Duration = .seconds(10),
        recoveryInterval: Duration = .seconds(5),
        jobTimeout: Duration = .seconds(3600),
        jobTimeoutByType: [String: Duration] = [:],
        shutdownGracePeriod: Duration = .seconds(30),
        maxIdleWait: Duration = .seconds(2),
        workerId: String = WorkerPoolConfiguration.defaultWorkerId(),
        keys: ConveyorKeys = try! ConveyorKeys(),
        staleAfter: Duration = .seconds(3600),
        now: @escaping @Sendable () -> Date = { Date() }
    ) {
        self.concurrency = concurrency
        self.leaseDuration = leaseDuration
        self.leaseRenewInterval = leaseRenewInterval
        self.recoveryInterval = recoveryInterval
        self.jobTimeout = jobTimeout
        self.jobTimeoutByType = jobTimeoutByType
        self.shutdownGracePeriod = shutdownGracePeriod
        self.maxIdleWait = maxIdleWait
        self.workerId = workerId
        self.keys = keys
        self.staleAfter = staleAfter
        self.now = now
    }

    /// `<host>-<pid>-<random>`: unique per process, readable in `jobs show`.
    public static func defaultWorkerId() -> String {
        "\(ProcessInfo.processInfo.hostName.prefix(32))-\(ProcessInfo.processInfo.processIdentifier)-\(UInt16.random(in: 0...UInt16.max))"
    }
}

/// What happened to a finished job, for observers such as the demo.
public struct WorkerPoolEvent: Sendable {
    /// The job as claimed.
    public var job: WorkerJob
    /// Whether it succeeded.
    public var success: Bool
    /// The stored result (or error) JSON.
    public var resultJSON: String?
    /// The retry or next cron job the completion created.
    public var followUpJobId: Int?
    /// Whether the result was written (`false`: the lease had been lost).
    public var written: Bool
}

/// The dispatcher's claims in flight.
struct ClaimState {
    /// `claimJobs` calls in flight (at most 3).
    var inFlight = 0
    /// Runner slots those calls may fill.
    var reserved = 0
    /// Set when the last claim found nothing more due, or failed: how long to
    /// wait (for a wake marker, the next due time, or the retry) before claiming.
    var pause: Duration?
    /// The next retry delay after a failed claim.
    var backoff = Duration.milliseconds(50)
}

enum DispatchStep {
    case claim(Int)
    case waitForSignal
    case pause(Duration)
}

/// Completions waiting for the in-flight `completeJobs` call of their partition.
struct CompletionQueue {
    var waiting: [Int: [QueuedCompletion]] = [:]
    var flushing: Set<Int> = []
}

struct QueuedCompletion {
    var job: WorkerJob
    var completion: JobStore.Completion
    /// `nil` for the flusher's own completion.
    var continuation: CheckedContinuation<CompletionRole, Never>?
}

enum CompletionRole: Sendable {
    /// This task writes the queue.
    case flush
    /// Another task wrote this completion.
    case written(Bool, Int?)
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
