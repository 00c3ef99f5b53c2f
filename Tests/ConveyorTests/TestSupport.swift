import Conveyor
@_exported import ConveyorTestSupport
import Foundation
import Synchronization

/// A clock tests move by hand, in whole milliseconds (the unit of every time
/// in Redis); pass ``now`` as a configuration's `now`.
final class TestClock: Sendable {
    private let current: Mutex<Int>

    /// A clock at `milliseconds` since the Unix epoch.
    init(milliseconds: Int) {
        current = Mutex(milliseconds)
    }

    /// The current time.
    var now: Date { Date(timeIntervalSince1970: Double(nowMilliseconds) / 1000) }

    /// The current time in milliseconds since the Unix epoch.
    var nowMilliseconds: Int { current.withLock { $0 } }

    /// Moves the clock forward (or back, with a negative value).
    func advance(milliseconds: Int) {
        current.withLock { $0 += milliseconds }
    }

    /// Sets the clock.
    func set(milliseconds: Int) {
        current.withLock { $0 = milliseconds }
    }
}
