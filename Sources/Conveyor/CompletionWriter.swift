import Logging
import Synchronization

/// Writes job completions, group-committed per partition: while one
/// `completeJobs` call is in flight, completions that arrive are queued and
/// the next call writes them all, so a busy pool pays one round trip for many
/// jobs and an idle one waits for nobody.
final class CompletionWriter: Sendable {
    private struct Queued {
        var completion: JobStore.Completion
        /// `nil` for the flusher's own completion.
        var continuation: CheckedContinuation<Role, Never>?
    }

    private enum Role: Sendable {
        /// This task writes the queue.
        case flush
        /// Another task wrote this completion.
        case written(Bool, Int?)
    }

    private struct State {
        var waiting: [Int: [Queued]] = [:]
        var flushing: Set<Int> = []
    }

    private let state = Mutex(State())
    private let store: JobStore
    private let configuration: WorkerPoolConfiguration
    private let clock: RedisClockEstimate
    private let logger: Logger
    private let trouble: TroubleLog

    /// Jobs per `completeJobs` call (the script takes at most ``JobStore/maxBatch``).
    static let batchSize = 200

    init(store: JobStore, configuration: WorkerPoolConfiguration, clock: RedisClockEstimate, logger: Logger, trouble: TroubleLog) {
        self.store = store
        self.configuration = configuration
        self.clock = clock
        self.logger = logger
        self.trouble = trouble
    }

    /// Writes one completion (with whatever else is queued for its partition).
    /// - Returns: Whether it was written (`false`: the lease was lost) and the
    ///   follow-up job's id.
    func write(_ completion: JobStore.Completion) async -> (written: Bool, followUp: Int?) {
        let partition = completion.id % configuration.keys.partitionCount
        let role: Role = await withCheckedContinuation { continuation in
            let flushNow = state.withLock { state in
                if state.flushing.contains(partition) {
                    state.waiting[partition, default: []].append(Queued(completion: completion, continuation: continuation))
                    return false
                }
                state.flushing.insert(partition)
                return true
            }
            if flushNow { continuation.resume(returning: .flush) }
        }
        switch role {
        case .written(let written, let followUp):
            return (written, followUp)
        case .flush:
            var own: (written: Bool, followUp: Int?) = (false, nil)
            var batch = [Queued(completion: completion, continuation: nil)]
            while true {
                let haveOwn = !batch.isEmpty
                let queued = state.withLock { state in
                    let queued = state.waiting.removeValue(forKey: partition) ?? []
                    // Stop flushing in the same critical section that finds the
                    // queue empty, so no completion can be left behind.
                    if queued.isEmpty && !haveOwn { state.flushing.remove(partition) }
                    return queued
                }
                batch += queued
                if batch.isEmpty { return own }
                let results = await write(batch.map(\.completion), partition: configuration.keys.partition(partition))
                for (entry, result) in zip(batch, results) {
                    if let continuation = entry.continuation {
                        continuation.resume(returning: .written(result.written, result.followUp))
                    } else {
                        own = result
                    }
                }
                batch = []
            }
        }
    }

    /// One `completeJobs` call per at most ``batchSize`` jobs, retrying
    /// transient Redis failures: a result must not be dropped because Redis
    /// blinked. The job's lease is renewed meanwhile; if it is lost anyway the
    /// script refuses that job and recovery's verdict stands.
    private func write(_ completions: [JobStore.Completion], partition: ConveyorKeys.Partition) async -> [(written: Bool, followUp: Int?)] {
        var results: [(written: Bool, followUp: Int?)] = []
        for start in stride(from: 0, to: completions.count, by: Self.batchSize) {
            let chunk = Array(completions[start..<min(start + Self.batchSize, completions.count)])
            var delay = Duration.milliseconds(50)
            var written: [(written: Bool, followUp: Int?)]?
            for attempt in 1...20 where written == nil {
                do {
                    written = try await store.complete(
                        chunk, partition: partition, now: clock.scriptNow, workerId: configuration.workerId,
                        maxInterruptions: configuration.maxConsecutiveInterruptions
                    )
                    trouble.succeeded("completion", logger: logger, "worker writes job completions again")
                } catch {
                    trouble.failed(
                        "completion", "worker cannot write job completions; retrying", logger: logger,
                        metadata: ["conveyor.jobs": "\(chunk.count)", "conveyor.attempt": "\(attempt)", "conveyor.error": "\(error)"]
                    )
                    try? await Task.sleep(for: delay)
                    delay = min(delay * 2, .seconds(2))
                }
            }
            if written == nil {
                logger.info("job completions could not be written; recovery will re-run these jobs", metadata: ["conveyor.job.ids": "\(chunk.map(\.id))"])
            }
            results += written ?? Array(repeating: (false, nil), count: chunk.count)
        }
        return results
    }
}
