import ConveyorRedis
import Foundation

/// Replica acknowledgements: `WAIT` after the scheduling scripts (docs/cluster.md §5).
///
/// Redis replicates asynchronously: a job whose `scheduleJobs` write the master
/// acknowledged is lost if the master dies before a replica received it and the
/// replica is promoted. With ``Configuration/replicaAcknowledgements`` ≥ 1 the
/// scheduler pipelines `WAIT <n> <replicaTimeout ms>` right after its scripts,
/// on the same connection, and learns how many replicas have the jobs. Workers
/// and the archiver do not wait: what a failover loses of their writes is a
/// re-run or a duplicate history record, which the at-least-once contract allows.
extension JobScheduler {
    /// The most replicas a scheduler may wait for.
    public static let maxReplicaAcknowledgements = 100
    /// The longest ``Configuration/replicaTimeout``.
    public static let maxReplicaTimeout = Duration.seconds(60)

    /// How many replicas acknowledged a scheduling call's writes.
    public struct Replication: Sendable, Hashable {
        /// The replicas asked for (``Configuration/replicaAcknowledgements``).
        public var required: Int
        /// The fewest replicas that acknowledged any of the call's writes
        /// within ``Configuration/replicaTimeout`` (on a cluster, replicas of
        /// the master that holds the write).
        public var acknowledged: Int
        /// Whether every write reached ``required`` replicas.
        public var isReplicated: Bool { acknowledged >= required }

        /// Creates a replication report.
        public init(required: Int, acknowledged: Int) {
            self.required = required
            self.acknowledged = acknowledged
        }
    }

    /// The jobs one call of a `…ReportingReplication` method created, and how
    /// far they were replicated.
    public struct ScheduledJobs: Sendable {
        /// The created jobs, in the order given. They exist on the master
        /// whether or not they were replicated.
        public var jobs: [WorkerJob]
        /// `nil` when ``Configuration/replicaAcknowledgements`` is 0 (nothing was waited for).
        public var replication: Replication?
    }

    // MARK: Scheduling with a replication report

    /// Schedules many jobs like `scheduleJobs(_:)`,
    /// returning how far they were replicated instead of throwing
    /// ``ConveyorError/Code/notReplicated`` when replicas fell short.
    /// - Throws: ``ConveyorError`` as `scheduleJobs`, never `notReplicated`.
    nonisolated(nonsending) public func scheduleJobsReportingReplication<J: Job>(
        _ configs: [WorkerJobConfig<J>]
    ) async throws(ConveyorError) -> ScheduledJobs {
        var specs: [JobSpec] = []
        specs.reserveCapacity(configs.count)
        let encoder = JSONEncoder.conveyor
        for config in configs { specs.append(try spec(config, cron: nil, encoder: encoder)) }
        return try await scheduleReporting(specs)
    }

    /// The untyped `scheduleJobsReportingReplication(_:)`.
    nonisolated(nonsending) public func scheduleJobsReportingReplication(
        _ configs: [UntypedJobConfig]
    ) async throws(ConveyorError) -> ScheduledJobs {
        var specs: [JobSpec] = []
        specs.reserveCapacity(configs.count)
        for config in configs { specs.append(try spec(config, cron: nil)) }
        return try await scheduleReporting(specs)
    }

    /// Schedules a cron job like `scheduleCronJob(_:cron:timeZone:)`,
    /// returning how far it was replicated.
    nonisolated(nonsending) public func scheduleCronJobReportingReplication<J: Job>(
        _ config: WorkerJobConfig<J>, cron: String, timeZone: String = "UTC"
    ) async throws(ConveyorError) -> ScheduledJobs {
        try await scheduleReporting([spec(config, cron: try Self.cronSchedule(cron, timeZone: timeZone))])
    }

    /// The untyped `scheduleCronJobReportingReplication(_:cron:timeZone:)`.
    nonisolated(nonsending) public func scheduleCronJobReportingReplication(
        _ config: UntypedJobConfig, cron: String, timeZone: String = "UTC"
    ) async throws(ConveyorError) -> ScheduledJobs {
        try await scheduleReporting([spec(config, cron: try Self.cronSchedule(cron, timeZone: timeZone))])
    }

    // MARK: Internals

    /// The plain scheduling methods: the jobs, or ``ConveyorError/Code/notReplicated``
    /// when replicas fell short (the jobs exist on the master).
    nonisolated(nonsending) func schedule(_ specs: [JobSpec]) async throws(ConveyorError) -> [WorkerJob] {
        let scheduled = try await scheduleReporting(specs)
        if let replication = scheduled.replication, !replication.isReplicated {
            throw Self.notReplicatedError(scheduled.jobs, replication, timeout: configuration.replicaTimeout)
        }
        return scheduled.jobs
    }

    /// Checks the replica settings before anything is sent.
    func validateReplicaSettings() throws(ConveyorError) {
        let required = configuration.replicaAcknowledgements
        guard (0...Self.maxReplicaAcknowledgements).contains(required) else {
            throw ConveyorError(
                .invalidArgument, "replicaAcknowledgements must be 0...\(Self.maxReplicaAcknowledgements), got \(required)"
            )
        }
        let timeout = configuration.replicaTimeout
        guard required == 0 || (timeout >= .milliseconds(1) && timeout <= Self.maxReplicaTimeout) else {
            throw ConveyorError(.invalidArgument, "replicaTimeout must be 1 ms...60 s, got \(timeout)")
        }
    }

    /// Runs the scheduling script calls, followed by `WAIT` when replicas are asked for.
    nonisolated(nonsending) func evalScheduling(_ calls: [RedisScriptCall]) async throws(ConveyorError) -> ([RESPValue], Replication?) {
        let required = configuration.replicaAcknowledgements
        do {
            guard required > 0 else { return (try await client.evalPipelined(calls), nil) }
            let result = try await client.evalPipelined(
                calls, awaitingReplicas: required, replicaTimeout: configuration.replicaTimeout
            )
            let acknowledged = result.acknowledgements.min() ?? required
            return (result.replies, Replication(required: required, acknowledged: acknowledged))
        } catch {
            throw ConveyorError(error)
        }
    }

    /// The error of a call whose jobs exist on the master but reached too few replicas.
    static func notReplicatedError(_ jobs: [WorkerJob], _ replication: Replication, timeout: Duration) -> ConveyorError {
        let shown = jobs.prefix(20).map { String($0.id) }.joined(separator: ", ") + (jobs.count > 20 ? ", ..." : "")
        let noun = jobs.count == 1 ? "job" : "jobs"
        return ConveyorError(
            .notReplicated,
            "\(jobs.count) \(noun) (\(shown)) scheduled on the master, but acknowledged by \(replication.acknowledged) of "
                + "\(replication.required) required replica\(replication.required == 1 ? "" : "s") within \(timeout): "
                + "a failover before they replicate loses them; scheduling them again replaces them (same type and user)"
        )
    }
}
