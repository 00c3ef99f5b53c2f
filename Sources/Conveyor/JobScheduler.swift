import ConveyorRedis
import CoreMetrics
import Foundation
import Logging
import Tracing

/// Schedules jobs and reads them back.
///
/// Every write is one Lua script call (`lua/scheduleJobs-10.lua`), which first
/// cancels every *matching pending* job — same type and user, and not started,
/// or started more than ``Configuration/staleAfter`` ago and not finished —
/// and then inserts the new job, atomically. Concurrent schedulers for one
/// type and user therefore never leave two pending jobs.
///
/// All input is validated before anything is sent: bad input throws a
/// ``ConveyorError`` and writes nothing.
///
/// The scheduling methods are `nonisolated(nonsending)`: they run on the
/// caller's executor (the main actor, an event loop, the cooperative pool)
/// instead of first hopping to the cooperative pool, so an awaited call costs
/// one hop to the Redis connection's event loop and one back.
public struct JobScheduler: Sendable {
    /// Scheduler settings.
    public struct Configuration: Sendable {
        /// Key layout (namespace and partitions). All processes must agree.
        public var keys: ConveyorKeys
        /// Largest encoded `data` accepted, in bytes (default 1 MiB).
        public var maxPayloadBytes: Int
        /// A job started this long ago and not finished counts as pending for
        /// the replace rule (the seed's one hour).
        public var staleAfter: Duration
        /// Jobs per script call when scheduling in bulk (at most 1000); calls are pipelined.
        public var bulkBatchSize: Int
        /// When set, untyped scheduling accepts only these type names.
        public var knownJobTypes: Set<String>?
        /// Tests only: replaces Redis's clock in the scripts. Production
        /// scheduling never reads this host's clock: "now", created stamps,
        /// delays and a cron job's first run all come from Redis's `TIME`.
        var testClock: (@Sendable () -> Date)?
        /// Tests only: this host's wall clock (e.g. 5 minutes off), which the
        /// scheduler reads only to reject a cron expression that never fires.
        var testHostClock: (@Sendable () -> Date)?
        /// When set, untyped scheduling passes each job's type name and data
        /// through it and writes nothing if it throws: the scheduler made with a
        /// registry uses ``JobRegistry/checkInput(typeName:dataJSON:)``, so data
        /// that does not decode as the job's `Input` is rejected at once.
        public var inputCheck: (@Sendable (_ typeName: String, _ dataJSON: String?) throws(ConveyorError) -> Void)?
        /// Where the `scheduled` and `replaced` counters go; `nil` (the
        /// default) uses the bootstrapped `MetricsSystem.factory`.
        public var metricsFactory: (any MetricsFactory)?
        /// The tracer of the scheduling spans; `nil` (the default) uses the
        /// bootstrapped `InstrumentationSystem.tracer`. With the no-op tracer
        /// no span is made and no trace context is stored.
        public var tracer: (any Tracer)?
        /// Replicas that must acknowledge each scheduling call's writes (`WAIT`
        /// after the scripts, on their connection; 0, the default, waits for
        /// none; at most ``JobScheduler/maxReplicaAcknowledgements``). When
        /// fewer acknowledge within ``replicaTimeout``, the plain scheduling
        /// methods throw ``ConveyorError/Code/notReplicated`` and the
        /// `…ReportingReplication` methods say so in their result; the jobs
        /// exist on the master either way. See docs/cluster.md §5.
        public var replicaAcknowledgements: Int = 0
        /// How long each `WAIT` may block (1 ms ... 60 s; default 1 s).
        public var replicaTimeout: Duration = .seconds(1)

        /// Creates a configuration with defaults.
        public init(
            keys: ConveyorKeys = try! ConveyorKeys(),
            maxPayloadBytes: Int = 1 << 20,
            staleAfter: Duration = .seconds(3600),
            bulkBatchSize: Int = 100,
            knownJobTypes: Set<String>? = nil,
            metricsFactory: (any MetricsFactory)? = nil,
            tracer: (any Tracer)? = nil
        ) {
            self.keys = keys
            self.maxPayloadBytes = maxPayloadBytes
            self.staleAfter = staleAfter
            self.bulkBatchSize = bulkBatchSize
            self.knownJobTypes = knownJobTypes
            self.metricsFactory = metricsFactory
            self.tracer = tracer
        }
    }

    /// The Redis client.
    public let client: RedisClient
    /// The settings.
    public let configuration: Configuration
    let layoutGate = LayoutGate()

    let metrics: ConveyorMetrics
    let tracing: JobTracing

    /// Creates a scheduler.
    public init(client: RedisClient, configuration: Configuration = Configuration()) {
        self.client = client
        self.configuration = configuration
        self.metrics = ConveyorMetrics(factory: configuration.metricsFactory)
        self.tracing = JobTracing(tracer: configuration.tracer)
    }

    /// Creates a scheduler that accepts, on the untyped path, only the types of
    /// `registry`, with data that decodes as the type's `Input`.
    public init<App>(client: RedisClient, registry: JobRegistry<App>, configuration: Configuration = Configuration()) {
        var configuration = configuration
        configuration.knownJobTypes = Set(registry.typeNames)
        configuration.inputCheck = { typeName, dataJSON throws(ConveyorError) in
            try registry.checkInput(typeName: typeName, dataJSON: dataJSON)
        }
        self.init(client: client, configuration: configuration)
    }

    // MARK: Scheduling

    /// Schedules a one-off job, first cancelling matching pending jobs.
    /// - Returns: The created job.
    /// - Throws: ``ConveyorError``: `invalidArgument`, `invalidData`,
    ///   `payloadTooLarge` (nothing written), or `redis`.
    @discardableResult
    nonisolated(nonsending) public func scheduleJob<J: Job>(_ config: WorkerJobConfig<J>) async throws(ConveyorError) -> WorkerJob {
        try await schedule([spec(config, cron: nil)])[0]
    }

    /// Schedules a cron job: the created job is due at the first occurrence
    /// of `cron` after now (or after `config.due`, if later); each run
    /// schedules the next.
    /// - Parameters:
    ///   - config: The job: type, user, data, retry and removal settings.
    ///   - cron: 5 fields, or 6 with the seconds field first (`*/2 * * * * *`); see ``CronSchedule``.
    ///   - timeZone: IANA name the expression is read in (default UTC, stored as
    ///     a `nil` ``WorkerJob/cronTimeZone``).
    /// - Throws: ``ConveyorError`` with code `invalidCron` for a bad expression or zone.
    ///
    /// The chain lives in Redis, not in the app: it keeps running with any
    /// worker after the app exits, until its pending run is cancelled with
    /// ``cancelJob(id:reason:)`` or replaced by scheduling the same type and user.
    @discardableResult
    nonisolated(nonsending) public func scheduleCronJob<J: Job>(
        _ config: WorkerJobConfig<J>, cron: String, timeZone: String = "UTC"
    ) async throws(ConveyorError) -> WorkerJob {
        try await schedule([spec(config, cron: try Self.cronSchedule(cron, timeZone: timeZone))])[0]
    }

    /// Schedules many jobs in pipelined script calls (one round trip for all
    /// partitions); each still replaces matching pending jobs, in order.
    /// - Returns: The created jobs, in the order given.
    @discardableResult
    nonisolated(nonsending) public func scheduleJobs<J: Job>(_ configs: [WorkerJobConfig<J>]) async throws(ConveyorError) -> [WorkerJob] {
        var specs: [JobSpec] = []
        specs.reserveCapacity(configs.count)
        let encoder = JSONEncoder.conveyor
        for config in configs { specs.append(try spec(config, cron: nil, encoder: encoder)) }
        return try await schedule(specs)
    }

    /// Schedules many jobs by type name (the untyped bulk path); see the typed `scheduleJobs(_:)` above.
    @discardableResult
    nonisolated(nonsending) public func scheduleJobs(_ configs: [UntypedJobConfig]) async throws(ConveyorError) -> [WorkerJob] {
        var specs: [JobSpec] = []
        specs.reserveCapacity(configs.count)
        for config in configs { specs.append(try spec(config, cron: nil)) }
        return try await schedule(specs)
    }

    /// Schedules a job by type name with JSON data (the untyped path).
    /// - Throws: ``ConveyorError`` with code `unknownJobType` for a name not in
    ///   ``Configuration/knownJobTypes``, `invalidData` for text that is not JSON.
    @discardableResult
    nonisolated(nonsending) public func scheduleJob(_ config: UntypedJobConfig) async throws(ConveyorError) -> WorkerJob {
        try await schedule([spec(config, cron: nil)])[0]
    }

    /// Schedules a cron job by type name with JSON data (the untyped path).
    @discardableResult
    nonisolated(nonsending) public func scheduleCronJob(
        _ config: UntypedJobConfig, cron: String, timeZone: String = "UTC"
    ) async throws(ConveyorError) -> WorkerJob {
        try await schedule([spec(config, cron: try Self.cronSchedule(cron, timeZone: timeZone))])[0]
    }


    /// Redis's clock (or the test clock), for a cron job's first run.
    nonisolated(nonsending) private func redisNow() async throws(ConveyorError) -> Date {
        if let testClock = configuration.testClock { return testClock() }
        return try await JobInspector.redisTime(client)
    }

    /// Sets each cron job's due time to its first run after Redis's now (or
    /// after its own due time, if later); `specs` were validated.
    nonisolated(nonsending) private func resolvingCronDue(_ specs: [JobSpec]) async throws(ConveyorError) -> [JobSpec] {
        guard specs.contains(where: { $0.cron != nil }) else { return specs }
        let now = try await redisNow()
        var specs = specs
        for index in specs.indices {
            guard let cron = specs[index].cron else { continue }
            let start = max(specs[index].due ?? now, now)
            guard let next = cron.next(after: start) else {
                throw ConveyorError(.invalidCron, "cron expression \"\(cron.expression)\" never fires after \(start.iso8601Milliseconds)")
            }
            specs[index].due = next
        }
        return specs
    }

    /// Sends validated specs in a `send` span (when tracing), counting what
    /// was scheduled, replaced and not replicated.
    nonisolated(nonsending) func scheduleReporting(_ specs: [JobSpec]) async throws(ConveyorError) -> ScheduledJobs {
        let span = tracing.startScheduling(types: specs.map(\.type))
        do {
            let (created, replaced, replication) = try await send(specs, traceContext: span?.traceContext)
            tracing.endScheduling(span, ids: created.map(\.id), error: nil)
            metrics.increment(.scheduled, types: created.lazy.map(\.type))
            if metrics.isEnabled {
                for (job, count) in zip(created, replaced) where count > 0 { metrics.increment(.replaced, type: job.type, by: count) }
            }
            if let replication, !replication.isReplicated { metrics.increment(.notReplicated, types: created.lazy.map(\.type)) }
            return ScheduledJobs(jobs: created, replication: replication)
        } catch {
            tracing.endScheduling(span, ids: nil, error: error)
            throw error
        }
    }

    /// Sends validated specs: grouped by partition, batched, pipelined.
    /// - Returns: The created jobs, how many jobs each replaced, and the replicas that acknowledged them.
    nonisolated(nonsending) private func send(
        _ specs: [JobSpec], traceContext: String?
    ) async throws(ConveyorError) -> ([WorkerJob], [Int], Replication?) {
        try validateReplicaSettings()
        try await layoutGate.verify(configuration.keys, client: client)
        let specs = try await resolvingCronDue(specs)
        let scriptNow = configuration.testClock.map { String($0().milliseconds) } ?? ""
        let keys = configuration.keys
        var calls: [RedisScriptCall] = []
        var callMembers: [[Int]] = []  // input indices per call
        let batchSize = min(max(1, configuration.bulkBatchSize), JobStore.maxBatch)
        calls.reserveCapacity((specs.count + batchSize - 1) / batchSize)
        for (partitionIndex, members) in Self.byPartition(specs, keys: keys) {
            let partition = keys.partition(partitionIndex)
            for start in stride(from: 0, to: members.count, by: batchSize) {
                let batch = Array(members[start..<min(start + batchSize, members.count)])
                let arguments = Self.scheduleArguments(
                    specs, batch: batch, scriptNow: scriptNow, staleAfterMs: configuration.staleAfter.wholeMilliseconds,
                    partitionCount: keys.partitionCount, partitionIndex: partitionIndex, traceContext: traceContext)
                calls.append(ScriptSignature.scheduleJobs.call(partition, arguments))
                callMembers.append(batch)
            }
        }
        var replies: [RESPValue] = []
        var replication: Replication?
        replies.reserveCapacity(calls.count)
        for round in Self.rounds(specs, callMembers: callMembers) {
            let (roundReplies, roundReplication) = try await evalScheduling(Array(calls[round]))
            replies += roundReplies
            if let roundReplication, roundReplication.acknowledged < replication?.acknowledged ?? .max {
                replication = roundReplication
            }
        }
        var created = [WorkerJob?](repeating: nil, count: specs.count)
        var replaced = [Int](repeating: 0, count: specs.count)
        for (reply, members) in zip(replies, callMembers) {
            if case .error(let message) = reply {
                throw ConveyorError(redisReply: message, what: "scheduleJobs")
            }
            // {now, then newId and replaced per job}.
            guard let entries = reply.array, entries.count == 2 * members.count + 1, let nowMs = entries[0].int else {
                throw ConveyorError(.redis, "scheduleJobs returned \(reply)")
            }
            for (offset, index) in members.enumerated() {
                guard let id = entries[2 * offset + 1].int, let replacedCount = entries[2 * offset + 2].int else {
                    throw ConveyorError(.redis, "scheduleJobs returned \(entries[2 * offset + 1]), \(entries[2 * offset + 2])")
                }
                replaced[index] = replacedCount
                let spec = specs[index]
                created[index] = WorkerJob(
                    id: id, type: spec.type, userId: spec.userId, dataJSON: spec.dataJSON,
                    due: spec.due.map { Date(milliseconds: $0.milliseconds) }
                        ?? Date(milliseconds: nowMs + (spec.delay?.wholeMilliseconds ?? 0)),
                    cronSchedule: spec.cron?.expression,
                    cronTimeZone: spec.cron.map { Self.storedTimeZone($0.timeZone) }.flatMap { $0.isEmpty ? nil : $0 },
                    autoRescheduleOnFailure: spec.autoRescheduleOnFailure,
                    autoRescheduleOnFailureDelay: spec.autoRescheduleOnFailureDelay, removeDelay: spec.removeDelay,
                    rescheduledFromJob: spec.rescheduledFromJob, attempt: spec.attempt, createdAt: Date(milliseconds: nowMs),
                    autoRescheduleOnFailureMaxAttempts: spec.maxAttempts, autoRescheduleOnFailureBackoff: spec.backoff,
                    traceContext: traceContext
                )
            }
        }
        return (created.map { $0! }, replaced, replication)
    }

    /// `scheduleJobs`' `ARGV` for the jobs at `batch` (one partition), written
    /// straight into one buffer: 13 values per job as existentials cost more
    /// than their encoding. When every job takes the script's defaults, each
    /// sends only type, user, data and due: a third of the arguments to parse.
    static func scheduleArguments(
        _ specs: [JobSpec], batch: [Int], scriptNow: String, staleAfterMs: Int, partitionCount: Int, partitionIndex: Int,
        traceContext: String?
    ) -> RESPArgumentList {
        let fieldsPerJob = batch.allSatisfy { specs[$0].takesScriptDefaults } ? 4 : 13
        var arguments = RESPArgumentList(byteCapacity: 64 + batch.count * (fieldsPerJob == 4 ? 48 : 96))
        arguments.append(scriptNow)
        arguments.append(staleAfterMs)
        arguments.append(partitionCount)
        arguments.append(partitionIndex)
        arguments.append(batch.count)
        arguments.append(fieldsPerJob)
        for index in batch {
            let spec = specs[index]
            arguments.append(spec.type)
            arguments.append(spec.userId)
            arguments.append(spec.dataJSON ?? "")
            appendDueArgument(spec, to: &arguments)
            guard fieldsPerJob == 13 else { continue }
            arguments.append(spec.cron?.expression ?? "")
            arguments.append(spec.cron.map { storedTimeZone($0.timeZone) } ?? "")
            arguments.append(spec.autoRescheduleOnFailure ? "1" : "")
            arguments.append(spec.autoRescheduleOnFailureDelay)
            arguments.append(spec.removeDelay)
            appendOptional(spec.rescheduledFromJob, to: &arguments)
            arguments.append(spec.attempt)
            appendOptional(spec.maxAttempts, to: &arguments)
            appendOptional(spec.backoff.maxDelayMilliseconds, to: &arguments)
        }
        if let traceContext { arguments.append(traceContext) }
        return arguments
    }

    /// The script's `due`: absolute ms as given, `+<ms>` for a delay (from
    /// Redis's now), `""` for now.
    static func appendDueArgument(_ spec: JobSpec, to arguments: inout RESPArgumentList) {
        if let due = spec.due {
            arguments.append(due.milliseconds)
        } else if let delay = spec.delay {
            arguments.append("+\(delay.wholeMilliseconds)")
        } else {
            arguments.append("")
        }
    }

    /// An optional integer argument: its decimal digits, or `""` when absent.
    static func appendOptional(_ value: Int?, to arguments: inout RESPArgumentList) {
        if let value { arguments.append(value) } else { arguments.append("") }
    }

    /// `""` for UTC (the default the scripts leave unstored), else the IANA name.
    static func storedTimeZone(_ zone: TimeZone) -> String {
        zone.secondsFromGMT() == 0 && ["UTC", "GMT", "Etc/UTC", "Etc/GMT"].contains(zone.identifier) ? "" : zone.identifier
    }
}
