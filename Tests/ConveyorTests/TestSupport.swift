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

/// The seed of a test's random choices: `CONVEYOR_TEST_SEED` (decimal, or hex with `0x`)
/// when it is set, else the test's fixed default, so a failure can be replayed.
/// Tests print the seed and put it in their failure messages.
enum TestSeed {
    static let environmentVariable = "CONVEYOR_TEST_SEED"

    /// The seed to use; a value of `CONVEYOR_TEST_SEED` that is not a number is a usage error.
    static func value(default defaultSeed: UInt64) throws -> UInt64 {
        guard let text = ProcessInfo.processInfo.environment[environmentVariable], !text.isEmpty else { return defaultSeed }
        let parsed = text.lowercased().hasPrefix("0x") ? UInt64(text.dropFirst(2), radix: 16) : UInt64(text)
        guard let parsed else { throw InvalidSeed(text: text) }
        return parsed
    }

    struct InvalidSeed: Error, CustomStringConvertible {
        var text: String
        var description: String { "\(TestSeed.environmentVariable)=\(text) is not a UInt64 (decimal, or hex with 0x)" }
    }
}

extension TestRedis {
    /// The partition tags for test namespaces with several partitions:
    /// slot-spread on a cluster (`CONVEYOR_TEST_REDIS=cluster`), so the
    /// partitions land on different masters; the default, indexed, otherwise.
    static var partitionTags: ConveyorKeys.PartitionTags { isCluster ? .slotSpread : .indexed }
}
