import Synchronization

/// A timed wait that another task can cut short (shutdown, "a job became due").
final class Wakeup: Sendable {
    private struct State {
        var waiter: (id: Int, continuation: CheckedContinuation<Void, Never>)?
        var signalled = false
        var nextId = 0
    }

    private let state = Mutex(State())

    init() {}

    /// Waits until ``signal()``, `duration`, or cancellation, whichever comes
    /// first. A signal sent while nobody waits ends the next wait at once.
    func wait(upTo duration: Duration) async {
        let id = state.withLock { state in
            state.nextId += 1
            return state.nextId
        }
        let timer = Task {
            try? await Task.sleep(for: duration)
            self.fire(id)
        }
        await withTaskCancellationHandler {
            await withCheckedContinuation { (continuation: CheckedContinuation<Void, Never>) in
                let resumeNow = state.withLock { state in
                    if state.signalled || Task.isCancelled {
                        state.signalled = false
                        return true
                    }
                    state.waiter = (id, continuation)
                    return false
                }
                if resumeNow { continuation.resume() }
            }
        } onCancel: {
            self.fire(id)
        }
        timer.cancel()
    }

    /// Ends the current wait, or the next one.
    func signal() {
        let continuation = state.withLock { state in
            guard let waiter = state.waiter else {
                state.signalled = true
                return nil as CheckedContinuation<Void, Never>?
            }
            state.waiter = nil
            return waiter.continuation
        }
        continuation?.resume()
    }

    private func fire(_ id: Int) {
        let continuation = state.withLock { state in
            guard let waiter = state.waiter, waiter.id == id else { return nil as CheckedContinuation<Void, Never>? }
            state.waiter = nil
            return waiter.continuation
        }
        continuation?.resume()
    }
}
