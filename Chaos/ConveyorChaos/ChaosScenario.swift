import ConveyorTestSupport

/// The fault-injection scenarios of issue 10; each produces one ``ChaosResult``.
public enum ChaosScenario: String, Sendable, CaseIterable {
    /// SIGKILL one of two worker processes at random moments, restarting it each time.
    case workerKill = "worker-kill"
    /// The same with jobs of 0–1 ms, which workers claim ahead of their free runners.
    case workerKillShortJobs = "worker-kill-short-jobs"
    /// SIGKILL the redis-server (AOF, `appendfsync always`) and restart it, twice, mid-run.
    case redisRestart = "redis-restart"
    /// SIGSTOP the redis-server for longer than the lease, then SIGCONT.
    case redisFreeze = "redis-freeze"
    /// Workers reach Redis through a ``FaultProxy`` that drops replies, stalls and resets at random.
    case proxyFaults = "proxy-faults"
    /// Scheduling until `maxmemory` (`noeviction`) refuses, then freeing memory.
    case maxmemory
    /// SIGKILL the archiver at random moments while jobs finish.
    case archiverKill = "archiver-kill"

    /// Runs the scenario at `settings`' scale and returns its row. Every loop inside is bounded
    /// in count and time; all processes are stopped before it returns.
    public func run(_ settings: ChaosSettings) async throws -> ChaosResult {
        var random = SeededRandom(seed: settings.seed ^ UInt64(bitPattern: Int64(rawValue.hashValueStable)))
        switch self {
        case .workerKill: return try await Self.workerKill(settings, &random)
        case .workerKillShortJobs: return try await Self.workerKillShortJobs(settings, &random)
        case .redisRestart: return try await Self.redisRestart(settings, &random)
        case .redisFreeze: return try await Self.redisFreeze(settings, &random)
        case .proxyFaults: return try await Self.proxyFaults(settings, &random)
        case .maxmemory: return try await Self.maxmemory(settings, &random)
        case .archiverKill: return try await Self.archiverKill(settings, &random)
        }
    }
}

extension String {
    /// FNV-1a of the UTF-8 bytes: unlike `hashValue`, the same in every process, so a seed
    /// reproduces a run.
    var hashValueStable: Int {
        var hash: UInt64 = 0xcbf2_9ce4_8422_2325
        for byte in utf8 {
            hash = (hash ^ UInt64(byte)) &* 0x0000_0100_0000_01B3
        }
        return Int(truncatingIfNeeded: hash)
    }
}
