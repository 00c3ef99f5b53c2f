import Synchronization

/// The pool's runners: a claimed job's task takes one before the job's body
/// runs and gives it back when the body ends.
///
/// Without claim-ahead there are never more jobs than runners and
/// ``tryTake()`` always succeeds. With it, the jobs claimed ahead wait in
/// ``take()``, first come first served, each for the next runner freed.
final class RunnerSlots: Sendable {
    private struct Waiter {
        var id: Int
        var continuation: CheckedContinuation<Void, any Error>
    }

    private struct State {
        var free: Int
        /// In arrival order; at most the jobs claimed ahead.
        var waiters: [Waiter] = []
        /// Ids handed out whose continuation is not registered yet.
        var arriving: Set<Int> = []
        /// Of those, the ones cancelled before they registered.
        var cancelledArriving: Set<Int> = []
        var nextId = 0
    }

    private let state: Mutex<State>

    init(count: Int) {
        state = Mutex(State(free: count))
    }

    /// Takes a runner if one is free, without waiting.
    func tryTake() -> Bool {
        state.withLock { state in
            guard state.free > 0 else { return false }
            state.free -= 1
            return true
        }
    }

    /// Takes a runner, waiting for one if none is free.
    /// - Throws: `CancellationError` when the task is cancelled while it waits
    ///   (it then holds no runner).
    func take() async throws {
        let id: Int? = state.withLock { state in
            if state.free > 0 {
                state.free -= 1
                return nil
            }
            state.nextId += 1
            state.arriving.insert(state.nextId)
            return state.nextId
        }
        guard let id else { return }
        try await withTaskCancellationHandler {
            try await withCheckedThrowingContinuation { (continuation: CheckedContinuation<Void, any Error>) in
                let cancelled = state.withLock { state in
                    state.arriving.remove(id)
                    if state.cancelledArriving.remove(id) != nil { return true }
                    state.waiters.append(Waiter(id: id, continuation: continuation))
                    return false
                }
                if cancelled { continuation.resume(throwing: CancellationError()) }
            }
        } onCancel: {
            let waiter: Waiter? = state.withLock { state in
                if let index = state.waiters.firstIndex(where: { $0.id == id }) {
                    return state.waiters.remove(at: index)
                }
                // Not registered yet: it resumes itself when it registers. An id
                // in neither place was already given a runner; nothing to undo.
                if state.arriving.contains(id) { state.cancelledArriving.insert(id) }
                return nil
            }
            waiter?.continuation.resume(throwing: CancellationError())
        }
    }

    /// Gives a runner back: to the longest waiting job, or to the free ones.
    func giveBack() {
        let next: Waiter? = state.withLock { state in
            guard !state.waiters.isEmpty else {
                state.free += 1
                return nil
            }
            return state.waiters.removeFirst()
        }
        next?.continuation.resume()
    }

    /// Jobs waiting for a runner (the worker record leaves them out of `jobsRunning`).
    var waiting: Int {
        state.withLock { $0.waiters.count + $0.arriving.count }
    }
}

/// How many jobs a pool claims beyond its runners: up to its limit while its
/// jobs run shorter than ``shortRunNanoseconds`` on average, none otherwise.
///
/// A claim is a round trip to Redis. While one is on its way, runners freed by
/// jobs of a few hundred microseconds sit idle, and the claims stay small
/// (Redis and the worker pay per call, not only per job). A job claimed ahead
/// instead waits for the next free runner: about as long as one job runs, so
/// only while jobs are short, where that is less than a claim's round trip.
final class ClaimAhead: Sendable {
    /// The average run time below which jobs are claimed ahead: 2 ms.
    static let shortRunNanoseconds: Int64 = 2_000_000

    /// Most jobs claimed beyond the runners (0: never).
    let limit: Int
    /// An exponential average of the last ≈ 16 run times, in nanoseconds;
    /// -1 until a job has run.
    private let averageRun = Atomic<Int64>(-1)

    init(limit: Int) {
        self.limit = max(0, limit)
    }

    /// Counts a job's run time into the average.
    func observe(runNanoseconds sample: Int64) {
        guard limit > 0 else { return }
        // Load and store, not one atomic step: two jobs ending together may
        // each drop the other's sample, which moves the average by little.
        let old = averageRun.load(ordering: .relaxed)
        averageRun.store(old < 0 ? sample : old + (sample - old) / 16, ordering: .relaxed)
    }

    /// Jobs to claim beyond the runners now.
    var current: Int {
        let average = averageRun.load(ordering: .relaxed)
        return average >= 0 && average < Self.shortRunNanoseconds ? limit : 0
    }
}
