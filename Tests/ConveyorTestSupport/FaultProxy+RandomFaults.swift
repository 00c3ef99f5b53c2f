extension FaultProxy {
    /// What ``runRandomFaults(_:)`` does: how often, for how long, which kinds.
    public struct RandomFaults: Sendable, Hashable {
        /// Seed of the generator that picks intervals, kinds and stall lengths; the same seed
        /// gives the same sequence of decisions (their effect still depends on timing).
        public var seed: UInt64
        /// Mean time between two faults; each gap is drawn uniformly from 0.5× to 1.5× of it.
        public var meanInterval: Duration
        /// The run ends after this long ...
        public var duration: Duration
        /// ... or after this many faults, whichever comes first.
        public var maxFaults: Int
        /// Relative weights of reply drops, stalls and resets (zero disables a kind).
        public var weights: (drop: Int, stall: Int, reset: Int) {
            get { (dropWeight, stallWeight, resetWeight) }
            set { (dropWeight, stallWeight, resetWeight) = newValue }
        }
        /// Shortest and longest stall, in milliseconds.
        public var stallMilliseconds: ClosedRange<Int>
        private var dropWeight = 1
        private var stallWeight = 1
        private var resetWeight = 1

        /// Creates a configuration; by default drops, stalls (0.2–2 s) and resets are equally likely.
        public init(
            seed: UInt64, meanInterval: Duration = .seconds(1), duration: Duration, maxFaults: Int = .max,
            stallMilliseconds: ClosedRange<Int> = 200...2_000
        ) {
            self.seed = seed
            self.meanInterval = meanInterval
            self.duration = duration
            self.maxFaults = maxFaults
            self.stallMilliseconds = stallMilliseconds
        }
    }

    /// One fault ``runRandomFaults(_:)`` injected.
    public enum InjectedFault: Sendable, Hashable {
        /// ``FaultProxy/dropNextReplies(_:)`` with 1.
        case dropReply
        /// ``FaultProxy/stall(for:)``.
        case stall(milliseconds: Int)
        /// ``FaultProxy/reset()``, which closed that many connections.
        case reset(connections: Int)
    }

    /// Injects seeded random faults until `configuration.duration` passes, `maxFaults` are
    /// injected or the task is cancelled, then returns what it did, in order.
    ///
    /// Run it in a child task next to the workload. A requested reply drop takes effect on the
    /// next reply any connection receives; ``faults`` counts only those that happened.
    public func runRandomFaults(_ configuration: RandomFaults) async -> [InjectedFault] {
        var random = SeededRandom(seed: configuration.seed)
        let clock = ContinuousClock()
        let end = clock.now + configuration.duration
        let (drop, stall, reset) = configuration.weights
        let totalWeight = max(0, drop) + max(0, stall) + max(0, reset)
        var injected: [InjectedFault] = []
        let meanMs = max(1, Int(configuration.meanInterval / .milliseconds(1)))
        while injected.count < configuration.maxFaults, totalWeight > 0, !Task.isCancelled {
            let gap = Duration.milliseconds(Int.random(in: meanMs / 2...meanMs * 3 / 2, using: &random))
            guard clock.now + gap < end else { break }
            try? await Task.sleep(for: gap)
            if Task.isCancelled { break }
            let pick = Int.random(in: 0..<totalWeight, using: &random)
            if pick < drop {
                dropNextReplies(1)
                injected.append(.dropReply)
            } else if pick < drop + stall {
                let milliseconds = Int.random(in: configuration.stallMilliseconds, using: &random)
                self.stall(for: .milliseconds(milliseconds))
                injected.append(.stall(milliseconds: milliseconds))
            } else {
                injected.append(.reset(connections: self.reset()))
            }
        }
        return injected
    }
}

/// SplitMix64: a small, fast, seedable generator, so a chaos run can be repeated by its seed.
public struct SeededRandom: RandomNumberGenerator, Sendable {
    private var state: UInt64

    /// A generator whose sequence is fixed by `seed`.
    public init(seed: UInt64) {
        state = seed
    }

    public mutating func next() -> UInt64 {
        state &+= 0x9E37_79B9_7F4A_7C15
        var z = state
        z = (z ^ (z >> 30)) &* 0xBF58_476D_1CE4_E5B9
        z = (z ^ (z >> 27)) &* 0x94D0_49BB_1331_11EB
        return z ^ (z >> 31)
    }
}
