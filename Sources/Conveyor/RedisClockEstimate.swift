import Foundation
import Synchronization

/// Redis's clock as this process estimates it, for the few local decisions
/// that need a time before asking Redis (how long to sleep until the next due
/// job, the next cron date to pass to a script). Every decision that is shared
/// — leases, due-now, recovery — is taken by a script on Redis's own clock.
final class RedisClockEstimate: Sendable {
    /// Redis's time minus this host's, in ms, from the latest script reply.
    private let offsetMs = Atomic<Int>(0)
    /// Tests only: replaces Redis's clock (see ``WorkerPoolConfiguration``).
    let testClock: (@Sendable () -> Date)?
    /// This host's wall clock; tests shift it to play a host whose clock is off.
    let hostClock: @Sendable () -> Date

    init(testClock: (@Sendable () -> Date)?, hostClock: @escaping @Sendable () -> Date = { Date() }) {
        self.testClock = testClock
        self.hostClock = hostClock
    }

    /// This host's time, in ms.
    var hostNowMs: Int { hostClock().milliseconds }

    /// The `now` argument of a script: `nil` lets the script read `TIME`.
    var scriptNow: Int? { testClock?().milliseconds }

    /// Redis's time, estimated, in ms.
    var nowMs: Int { testClock?().milliseconds ?? (hostNowMs + offsetMs.load(ordering: .relaxed)) }

    var now: Date { Date(milliseconds: nowMs) }

    /// Records a time a script reported, read between `sentAt` and now (local ms).
    func observe(redisMs: Int, sentAt: Int) {
        guard testClock == nil else { return }
        let midpoint = (sentAt + hostNowMs) / 2
        offsetMs.store(redisMs - midpoint, ordering: .relaxed)
    }
}
