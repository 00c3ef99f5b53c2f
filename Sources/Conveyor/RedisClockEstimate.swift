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
    /// This host's clock: `Date()`, or a skewed one in tests (the estimate
    /// must come out right whatever it says).
    private let localClock: @Sendable () -> Date

    init(testClock: (@Sendable () -> Date)?, localClock: (@Sendable () -> Date)? = nil) {
        self.testClock = testClock
        self.localClock = localClock ?? { Date() }
    }

    /// This host's time, in ms: what `observe(redisMs:sentAt:)` takes as `sentAt`.
    var localMs: Int { localClock().milliseconds }

    /// The `now` argument of a script: `nil` lets the script read `TIME`.
    var scriptNow: Int? { testClock?().milliseconds }

    /// Redis's time, estimated, in ms.
    var nowMs: Int { testClock?().milliseconds ?? (localMs + offsetMs.load(ordering: .relaxed)) }

    var now: Date { Date(milliseconds: nowMs) }

    /// Records a time a script reported, read between `sentAt` and now (local ms).
    func observe(redisMs: Int, sentAt: Int) {
        guard testClock == nil else { return }
        let midpoint = (sentAt + localMs) / 2
        offsetMs.store(redisMs - midpoint, ordering: .relaxed)
    }
}
