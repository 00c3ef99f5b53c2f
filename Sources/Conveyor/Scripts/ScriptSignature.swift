import ConveyorRedis

/// A key a script takes in `KEYS`, named as in the script's header
/// (`KEYS[n] <name>`).
enum ScriptKey: String, Sendable {
    case seq, jobPrefix, due, pending, running, leases, finished, wake
    case parked, suspects, claims, archiving, archivers, failed, stale, paused
}

/// One script of `lua/` and the `KEYS` it takes, in order: the Swift half of
/// the contract. Every script call is built here, so the key lists exist
/// once; `ScriptContractTests` checks each list against the script's header.
struct ScriptSignature: Sendable {
    let script: RedisScript
    let keys: [ScriptKey]

    /// - Precondition: `keys` has as many entries as the script's file name
    ///   says (`verbNoun-<number of KEYS>.lua`).
    init(_ script: RedisScript, keyCount: Int, keys: [ScriptKey]) {
        precondition(keys.count == keyCount, "\(script.name) takes \(keyCount) KEYS, not \(keys.count)")
        self.script = script
        self.keys = keys
    }

    /// The call on one partition's keys.
    /// - Parameter workerId: The claiming worker, for `claimJobs` (its `claims` hash).
    func call(
        _ partition: ConveyorKeys.Partition, _ arguments: [any RESPArgument], workerId: String? = nil
    ) -> RedisScriptCall {
        RedisScriptCall(script, keys: keys.map { partition.key($0, workerId: workerId) }, arguments: arguments)
    }

    /// The call on one partition's keys, its `ARGV` already encoded.
    func call(_ partition: ConveyorKeys.Partition, _ arguments: RESPArgumentList) -> RedisScriptCall {
        RedisScriptCall(script, keys: keys.map { partition.key($0, workerId: nil) }, arguments: [], argumentList: arguments)
    }

    /// The call on namespace-wide keys (`bindArchiver`).
    func call(_ keys: ConveyorKeys, _ arguments: [any RESPArgument]) -> RedisScriptCall {
        RedisScriptCall(
            script,
            keys: self.keys.map { key in
                guard key == .archivers else { preconditionFailure("\(script.name): \(key) is a partition key; call it with a partition") }
                return keys.archivers
            },
            arguments: arguments
        )
    }

    static let scheduleJobs = ScriptSignature(
        LuaScripts.scheduleJobs, keyCount: LuaScripts.scheduleJobsKeyCount,
        keys: [.seq, .jobPrefix, .due, .pending, .running, .leases, .finished, .wake, .stale, .paused]
    )
    static let claimJobs = ScriptSignature(
        LuaScripts.claimJobs, keyCount: LuaScripts.claimJobsKeyCount,
        keys: [.jobPrefix, .due, .pending, .running, .leases, .wake, .parked, .claims, .finished, .paused]
    )
    static let completeJobs = ScriptSignature(
        LuaScripts.completeJobs, keyCount: LuaScripts.completeJobsKeyCount,
        keys: [.seq, .jobPrefix, .due, .pending, .running, .leases, .finished, .wake, .failed, .stale, .paused]
    )
    static let renewLeases = ScriptSignature(
        LuaScripts.renewLeases, keyCount: LuaScripts.renewLeasesKeyCount, keys: [.jobPrefix, .running, .leases, .paused]
    )
    static let recoverJobs = ScriptSignature(
        LuaScripts.recoverJobs, keyCount: LuaScripts.recoverJobsKeyCount,
        keys: [.seq, .jobPrefix, .due, .pending, .running, .leases, .finished, .wake, .suspects, .failed, .stale, .paused]
    )
    static let releaseJobs = ScriptSignature(
        LuaScripts.releaseJobs, keyCount: LuaScripts.releaseJobsKeyCount,
        keys: [.jobPrefix, .due, .pending, .running, .leases, .finished, .parked, .paused]
    )
    static let cancelJob = ScriptSignature(
        LuaScripts.cancelJob, keyCount: LuaScripts.cancelJobKeyCount, keys: [.jobPrefix, .due, .pending, .running, .leases, .finished, .paused]
    )
    static let deleteFinishedJob = ScriptSignature(
        LuaScripts.deleteFinishedJob, keyCount: LuaScripts.deleteFinishedJobKeyCount,
        keys: [.jobPrefix, .finished, .archiving, .failed, .paused]
    )
    static let getJobs = ScriptSignature(LuaScripts.getJobs, keyCount: LuaScripts.getJobsKeyCount, keys: [.jobPrefix, .paused])
    static let claimArchiveBatch = ScriptSignature(
        LuaScripts.claimArchiveBatch, keyCount: LuaScripts.claimArchiveBatchKeyCount, keys: [.jobPrefix, .finished, .archiving, .paused]
    )
    static let deleteArchivedJobs = ScriptSignature(
        LuaScripts.deleteArchivedJobs, keyCount: LuaScripts.deleteArchivedJobsKeyCount,
        keys: [.jobPrefix, .finished, .archiving, .failed, .paused]
    )
    static let releaseArchiveClaims = ScriptSignature(
        LuaScripts.releaseArchiveClaims, keyCount: LuaScripts.releaseArchiveClaimsKeyCount, keys: [.archiving, .paused]
    )
    static let bindArchiver = ScriptSignature(LuaScripts.bindArchiver, keyCount: LuaScripts.bindArchiverKeyCount, keys: [.archivers])

    /// Every script, for the contract test.
    static let all: [ScriptSignature] = [
        scheduleJobs, claimJobs, completeJobs, renewLeases, recoverJobs, releaseJobs, cancelJob, deleteFinishedJob, getJobs,
        claimArchiveBatch, deleteArchivedJobs, releaseArchiveClaims, bindArchiver,
    ]
}

extension ConveyorKeys.Partition {
    /// The key a script knows as `key`.
    func key(_ key: ScriptKey, workerId: String? = nil) -> String {
        switch key {
        case .seq: seq
        case .jobPrefix: jobPrefix
        case .due: due
        case .pending: pending
        case .running: running
        case .leases: leases
        case .finished: finished
        case .wake: wake
        case .parked: parked
        case .suspects: suspects
        case .archiving: archiving
        case .failed: failed
        case .stale: stale
        case .paused: paused
        case .claims:
            // Only claimJobs takes it, always with a worker id.
            claims(workerId: workerId ?? "")
        case .archivers:
            preconditionFailure("archivers is namespace-wide: use ScriptSignature.call(_:_:) with ConveyorKeys")
        }
    }
}
