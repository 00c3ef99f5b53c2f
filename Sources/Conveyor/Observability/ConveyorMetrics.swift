import CoreMetrics
import Metrics

/// What Conveyor reports through swift-metrics (the API only: the app picks
/// the backend by bootstrapping `MetricsSystem`, or passes a factory in a
/// configuration). Every name starts with `conveyor_`; counters and timers
/// carry a `type` label (the job type), gauges a `partition` label. The list,
/// with meanings, is in the Operations article and `docs/operations.md`.
///
/// With no backend bootstrapped (swift-metrics' no-op factory) every call
/// returns at once, so an app that does not collect metrics pays nothing.
struct ConveyorMetrics: Sendable {
    /// Counter names, each labelled `type`.
    enum CounterName: String, CaseIterable, Sendable {
        /// Jobs created by `JobScheduler` (follow-ups are counted as retried, or not at all).
        case scheduled = "conveyor_jobs_scheduled_total"
        /// Jobs cancelled by the replace rule when a job of their type and user was scheduled.
        case replaced = "conveyor_jobs_replaced_total"
        /// Jobs scheduled with `replicaAcknowledgements` that fewer replicas acknowledged in time.
        case notReplicated = "conveyor_jobs_not_replicated_total"
        /// Jobs claimed and started by a worker.
        case started = "conveyor_jobs_started_total"
        /// Runs that succeeded (result written).
        case succeeded = "conveyor_jobs_succeeded_total"
        /// Runs that failed (error written), timed-out runs included.
        case failed = "conveyor_jobs_failed_total"
        /// Failed runs for which a retry was scheduled (`autoRescheduleOnFailure`).
        case retried = "conveyor_jobs_retried_total"
        /// Runs stopped by a worker's shutdown; they run again at once.
        case interrupted = "conveyor_jobs_interrupted_total"
        /// Jobs whose worker was lost (lease expired), finished by recovery.
        case recovered = "conveyor_jobs_recovered_total"
        /// Runs cancelled for exceeding their timeout (also counted as failed).
        case timedOut = "conveyor_jobs_timed_out_total"
        /// Finished jobs written to the history log and deleted from Redis.
        case archived = "conveyor_jobs_archived_total"
    }

    /// Timer names, each labelled `type`.
    enum TimerName: String, CaseIterable, Sendable {
        /// How long a run took, from its start to its end (the completion write excluded).
        case runDuration = "conveyor_job_run_duration_seconds"
        /// Start minus due time: how late a job started (Redis's clock on both ends).
        case lateness = "conveyor_job_lateness_seconds"
    }

    /// Gauge names, each labelled `partition`.
    enum GaugeName: String, CaseIterable, Sendable {
        /// Jobs not started (`due`), due now or later.
        case pending = "conveyor_jobs_pending"
        /// Pending jobs whose due time has come.
        case dueNow = "conveyor_jobs_due_now"
        /// Jobs running (claimed, not finished).
        case running = "conveyor_jobs_running"
        /// Finished jobs still in Redis, waiting for the archiver.
        case awaitingArchive = "conveyor_jobs_awaiting_archive"
    }

    /// `nil` when metrics go nowhere (no backend bootstrapped).
    private let factory: (any MetricsFactory)?

    /// - Parameter factory: The backend; `nil` uses the bootstrapped `MetricsSystem.factory`.
    init(factory: (any MetricsFactory)?) {
        let factory = factory ?? MetricsSystem.factory
        self.factory = factory is NOOPMetricsHandler ? nil : factory
    }

    /// Whether a backend receives the metrics.
    var isEnabled: Bool { factory != nil }

    func increment(_ name: CounterName, type: String, by amount: Int = 1) {
        guard let factory, amount > 0 else { return }
        Counter(label: name.rawValue, dimensions: [("type", type)], factory: factory).increment(by: amount)
    }

    /// Records a duration; a negative one (clocks a little apart) as zero.
    func record(_ name: TimerName, type: String, nanoseconds: Int64) {
        guard let factory else { return }
        Timer(label: name.rawValue, dimensions: [("type", type)], factory: factory).recordNanoseconds(max(0, nanoseconds))
    }

    func record(_ name: GaugeName, partition: Int, _ value: Int) {
        guard let factory else { return }
        Gauge(label: name.rawValue, dimensions: [("partition", String(partition))], factory: factory).record(value)
    }

    /// Counts `types` (one entry per job) by type.
    func increment(_ name: CounterName, types: some Sequence<String>) {
        guard factory != nil else { return }
        var counts: [String: Int] = [:]
        for type in types { counts[type, default: 0] += 1 }
        for (type, count) in counts { increment(name, type: type, by: count) }
    }
}
