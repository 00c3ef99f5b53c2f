import CoreMetrics
import Foundation
import Tracing

/// Settings of a ``WorkerPool``.
public struct WorkerPoolConfiguration: Sendable {
    /// Jobs run at once.
    public var concurrency: Int
    /// Most jobs claimed beyond ``concurrency`` while jobs are short; `nil`
    /// (the default) is as many as ``concurrency``, 0 turns it off.
    ///
    /// A claim is a round trip to Redis: while it is on its way, runners freed
    /// by jobs of a few hundred microseconds sit idle and claims stay small.
    /// While the pool's jobs run for less than 2 ms on average, it claims up to
    /// this many more jobs than it has runners; each waits, leased and marked
    /// started, for the next free runner (about as long as one job runs), and
    /// its ``jobTimeout`` counts from then. Longer jobs are not claimed ahead.
    /// At shutdown jobs claimed ahead run in the grace period like the others;
    /// a job still waiting when it ends is finished as interrupted and re-run.
    public var claimAhead: Int?
    /// How long a claimed job is leased before others may recover it.
    public var leaseDuration: Duration
    /// How often leases are renewed; well below ``leaseDuration``.
    public var leaseRenewInterval: Duration
    /// How often expired leases are looked for.
    public var recoveryInterval: Duration
    /// How long a lease must stay expired after a recovery pass first saw it
    /// expired before the job is recovered (default 15 s).
    ///
    /// After an outage of Redis longer than the lease every lease looks
    /// expired; live workers renew theirs within this period, so only the
    /// jobs of workers that are really gone are recovered. Keep it above
    /// ``leaseRenewInterval``.
    public var recoveryGracePeriod: Duration
    /// Consecutive interruptions (worker lost, or shutdown before the job
    /// ended) after which a job is not run again (default 3).
    ///
    /// An interrupted job is re-run at once whatever its
    /// `autoRescheduleOnFailure` says; a job interrupted this many times in a
    /// row most likely takes its worker down, so it then stays failed.
    public var maxConsecutiveInterruptions: Int
    /// Longest a job may run before it is cancelled and failed as `timed out`.
    public var jobTimeout: Duration
    /// Per-type overrides of ``jobTimeout``, by stored type name.
    public var jobTimeoutByType: [String: Duration]
    /// How long running jobs may finish after shutdown begins.
    public var shutdownGracePeriod: Duration
    /// How long a job that ignores cancellation is waited for after the grace
    /// period before it is failed without its result (default 5 s).
    public var abandonAfter: Duration
    /// Largest result a job may return, in bytes of JSON (default 1 MiB): a
    /// larger one is not stored; the job fails with `result too large`
    /// (retry rules apply), so one job cannot bloat Redis.
    public var maxResultBytes: Int
    /// How long a failed job (it failed, timed out or was interrupted) stays in
    /// Redis, where it can be inspected and run again, before it is archived
    /// (default 7 days). `removeDelay` applies to successful jobs only.
    public var failedJobRetention: Duration
    /// Most failed jobs kept per partition (default 10,000): beyond it the
    /// oldest go to the archiver early, so a failure storm cannot fill Redis.
    public var maxRetainedFailedJobs: Int
    /// Longest idle block on `wake` before looking again.
    public var maxIdleWait: Duration
    /// How often the pool announces itself as a ``LiveWorker`` (default 5 s);
    /// its record expires after three intervals without a heartbeat.
    public var heartbeatInterval: Duration
    /// This worker's id, stored on the jobs it claims.
    public var workerId: String
    /// Key layout; all processes must agree.
    public var keys: ConveyorKeys
    /// The replace rule's "started over an hour ago" threshold.
    public var staleAfter: Duration
    /// Warn in the log (once per episode) when a finished job's removeAt
    /// passed longer ago than this and no archiver is running (default
    /// 10 minutes; `nil`: never). See `docs/archiver.md`.
    public var archiverMissingWarning: Duration? = .seconds(600)
    /// How often the pool looks for a missing archiver.
    var archiverCheckInterval: Duration = .seconds(60)
    /// Where the pool's metrics go (`ConveyorMetrics`: started, succeeded,
    /// failed, retried, recovered, timed out; run duration and lateness; the
    /// per-partition gauges); `nil` (the default) uses the bootstrapped
    /// `MetricsSystem.factory`. With no backend nothing is recorded.
    public var metricsFactory: (any MetricsFactory)?
    /// How often the per-partition gauges (pending, due now, running,
    /// awaiting archive) are read from Redis: one pipelined round trip of
    /// four counts per partition. Only when a metrics backend is set; `nil` never.
    public var gaugeRefreshInterval: Duration?
    /// The tracer of the run spans; `nil` (the default) uses the bootstrapped
    /// `InstrumentationSystem.tracer`. With the no-op tracer no span is made.
    public var tracer: (any Tracer)?
    /// Tests only: a clock that replaces Redis's. `nil` (the default) lets
    /// every script take "now" from Redis (`TIME`), so workers whose clocks
    /// differ agree on leases and due times.
    var testClock: (@Sendable () -> Date)?
    /// Tests only: this host's wall clock (e.g. 5 minutes fast), which the pool
    /// reads only to estimate Redis's; `nil` is the real one.
    var testHostClock: (@Sendable () -> Date)?

    /// Creates a configuration with defaults.
    public init(
        concurrency: Int = 10,
        claimAhead: Int? = nil,
        leaseDuration: Duration = .seconds(30),
        leaseRenewInterval: Duration = .seconds(10),
        recoveryInterval: Duration = .seconds(5),
        recoveryGracePeriod: Duration = .seconds(15),
        maxConsecutiveInterruptions: Int = 3,
        jobTimeout: Duration = .seconds(3600),
        jobTimeoutByType: [String: Duration] = [:],
        shutdownGracePeriod: Duration = .seconds(30),
        abandonAfter: Duration = .seconds(5),
        maxResultBytes: Int = 1 << 20,
        failedJobRetention: Duration = .seconds(7 * 86_400),
        maxRetainedFailedJobs: Int = 10_000,
        maxIdleWait: Duration = .seconds(2),
        heartbeatInterval: Duration = .seconds(5),
        workerId: String = WorkerPoolConfiguration.defaultWorkerId(),
        keys: ConveyorKeys = try! ConveyorKeys(),
        staleAfter: Duration = .seconds(3600),
        metricsFactory: (any MetricsFactory)? = nil,
        gaugeRefreshInterval: Duration? = .seconds(10),
        tracer: (any Tracer)? = nil
    ) {
        self.concurrency = concurrency
        self.claimAhead = claimAhead
        self.leaseDuration = leaseDuration
        self.leaseRenewInterval = leaseRenewInterval
        self.recoveryInterval = recoveryInterval
        self.recoveryGracePeriod = recoveryGracePeriod
        self.maxConsecutiveInterruptions = maxConsecutiveInterruptions
        self.jobTimeout = jobTimeout
        self.jobTimeoutByType = jobTimeoutByType
        self.shutdownGracePeriod = shutdownGracePeriod
        self.abandonAfter = abandonAfter
        self.maxResultBytes = maxResultBytes
        self.failedJobRetention = failedJobRetention
        self.maxRetainedFailedJobs = maxRetainedFailedJobs
        self.maxIdleWait = maxIdleWait
        self.heartbeatInterval = heartbeatInterval
        self.workerId = workerId
        self.keys = keys
        self.staleAfter = staleAfter
        self.metricsFactory = metricsFactory
        self.gaugeRefreshInterval = gaugeRefreshInterval
        self.tracer = tracer
    }

    /// `<host>-<pid>-<random>`: unique per process, readable in `jobs show`.
    public static func defaultWorkerId() -> String {
        "\(ProcessInfo.processInfo.hostName.prefix(32))-\(ProcessInfo.processInfo.processIdentifier)-\(UInt16.random(in: 0...UInt16.max))"
    }
}

/// What happened to a finished job, for observers such as the demo.
public struct WorkerPoolEvent: Sendable {
    /// The job as claimed.
    public var job: WorkerJob
    /// Whether it succeeded.
    public var success: Bool
    /// The stored result (or error) JSON.
    public var resultJSON: String?
    /// The retry, re-run or next cron job the completion created.
    public var followUpJobId: Int?
    /// Whether the result was written (`false`: the lease had been lost).
    public var written: Bool
}
