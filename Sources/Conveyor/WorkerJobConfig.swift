import Foundation

/// A job to schedule, typed by its ``Job``: the data must be the job's `Input`.
///
/// ```swift
/// let job = try await scheduler.scheduleJob(
///     WorkerJobConfig(SendEmail.self, userId: 42, data: .init(to: "a@example.com"))
/// )
/// ```
public struct WorkerJobConfig<J: Job>: Sendable {
    /// The user the job is for; 0 for system-level jobs.
    public var userId: Int
    /// When the job may start, kept as given; `nil` is now (or ``delay`` after now).
    public var due: Date?
    /// When ``due`` is `nil`: how long after now the job may start, counted
    /// on Redis's clock (a producer whose own clock is off still gets it right).
    public var delay: Duration?
    /// The input passed to `run`.
    public var data: J.Input
    /// Whether a failure schedules a new job (a retry) after ``autoRescheduleOnFailureDelay``.
    public var autoRescheduleOnFailure: Bool
    /// Milliseconds between a failure and its retry (with
    /// ``RetryBackoff/exponential(maxDelay:)``, the first delay).
    public var autoRescheduleOnFailureDelay: Int
    /// Most attempts in all, the first run included, when
    /// ``autoRescheduleOnFailure`` is set; `nil` (the default) is no limit.
    public var autoRescheduleOnFailureMaxAttempts: Int?
    /// How the delay grows from one retry to the next (default ``RetryBackoff/fixed``).
    public var autoRescheduleOnFailureBackoff: RetryBackoff
    /// Milliseconds a *successful* job stays in Redis before it may be
    /// archived; default 0 (an archiver, where one runs, removes it at once,
    /// and ``JobScheduler/job(id:)`` then returns `nil`; the history log keeps
    /// it). Failed jobs stay for the worker's
    /// ``WorkerPoolConfiguration/failedJobRetention`` instead.
    public var removeDelay: Int

    /// Creates a configuration. Arguments keep this order: `userId`, `due`,
    /// `delay`, `data`, the retry settings, `removeDelay`.
    public init(
        _ type: J.Type,
        userId: Int,
        due: Date? = nil,
        delay: Duration? = nil,
        data: J.Input,
        autoRescheduleOnFailure: Bool = false,
        autoRescheduleOnFailureDelay: Int = 0,
        autoRescheduleOnFailureMaxAttempts: Int? = nil,
        autoRescheduleOnFailureBackoff: RetryBackoff = .fixed,
        removeDelay: Int = 0
    ) {
        self.userId = userId
        self.due = due
        self.delay = delay
        self.data = data
        self.autoRescheduleOnFailure = autoRescheduleOnFailure
        self.autoRescheduleOnFailureDelay = autoRescheduleOnFailureDelay
        self.autoRescheduleOnFailureMaxAttempts = autoRescheduleOnFailureMaxAttempts
        self.autoRescheduleOnFailureBackoff = autoRescheduleOnFailureBackoff
        self.removeDelay = removeDelay
    }
}

/// How the delay between automatic retries grows.
public enum RetryBackoff: Sendable, Hashable {
    /// Every retry waits `autoRescheduleOnFailureDelay` (the seed's behaviour).
    case fixed
    /// The retry after attempt *n* waits min(`maxDelay`, max(delay, 1 s) × 2^(n−1)),
    /// less a random part of up to half, so that failing jobs spread out
    /// (exponential backoff with jitter).
    case exponential(maxDelay: Duration)

    /// The job hash's `bx`: the cap in ms, `nil` for fixed.
    var maxDelayMilliseconds: Int? {
        if case .exponential(let maxDelay) = self { return maxDelay.wholeMilliseconds }
        return nil
    }
}

extension WorkerJobConfig where J.Input == Nothing {
    /// Creates a configuration for a job without input.
    public init(
        _ type: J.Type,
        userId: Int,
        due: Date? = nil,
        delay: Duration? = nil,
        autoRescheduleOnFailure: Bool = false,
        autoRescheduleOnFailureDelay: Int = 0,
        autoRescheduleOnFailureMaxAttempts: Int? = nil,
        autoRescheduleOnFailureBackoff: RetryBackoff = .fixed,
        removeDelay: Int = 0
    ) {
        self.init(
            type, userId: userId, due: due, delay: delay, data: Nothing(), autoRescheduleOnFailure: autoRescheduleOnFailure,
            autoRescheduleOnFailureDelay: autoRescheduleOnFailureDelay,
            autoRescheduleOnFailureMaxAttempts: autoRescheduleOnFailureMaxAttempts,
            autoRescheduleOnFailureBackoff: autoRescheduleOnFailureBackoff, removeDelay: removeDelay
        )
    }
}

/// A job to schedule by type *name* with JSON data, for tools such as the
/// CLI that cannot name the Swift type. The scheduler checks the name against
/// its known job types.
public struct UntypedJobConfig: Sendable, Hashable {
    /// The stored job type name.
    public var type: String
    /// The user the job is for; 0 for system-level jobs.
    public var userId: Int
    /// When the job may start, kept as given; `nil` is now (or ``delay`` after now).
    public var due: Date?
    /// See ``WorkerJobConfig/delay``.
    public var delay: Duration?
    /// The input as JSON text; `nil` is `null`.
    public var dataJSON: String?
    /// See ``WorkerJobConfig/autoRescheduleOnFailure``.
    public var autoRescheduleOnFailure: Bool
    /// See ``WorkerJobConfig/autoRescheduleOnFailureDelay``.
    public var autoRescheduleOnFailureDelay: Int
    /// See ``WorkerJobConfig/autoRescheduleOnFailureMaxAttempts``.
    public var autoRescheduleOnFailureMaxAttempts: Int?
    /// See ``WorkerJobConfig/autoRescheduleOnFailureBackoff``.
    public var autoRescheduleOnFailureBackoff: RetryBackoff
    /// See ``WorkerJobConfig/removeDelay``.
    public var removeDelay: Int

    /// Creates a configuration.
    public init(
        type: String,
        userId: Int,
        due: Date? = nil,
        delay: Duration? = nil,
        dataJSON: String? = nil,
        autoRescheduleOnFailure: Bool = false,
        autoRescheduleOnFailureDelay: Int = 0,
        autoRescheduleOnFailureMaxAttempts: Int? = nil,
        autoRescheduleOnFailureBackoff: RetryBackoff = .fixed,
        removeDelay: Int = 0
    ) {
        self.type = type
        self.userId = userId
        self.due = due
        self.delay = delay
        self.dataJSON = dataJSON
        self.autoRescheduleOnFailure = autoRescheduleOnFailure
        self.autoRescheduleOnFailureDelay = autoRescheduleOnFailureDelay
        self.autoRescheduleOnFailureMaxAttempts = autoRescheduleOnFailureMaxAttempts
        self.autoRescheduleOnFailureBackoff = autoRescheduleOnFailureBackoff
        self.removeDelay = removeDelay
    }
}

/// One job as the scheduling script takes it: validated, encoded, untyped.
struct JobSpec: Sendable {
    var type: String
    var userId: Int
    var dataJSON: String?
    var due: Date?
    var delay: Duration? = nil
    var cron: CronSchedule?
    var autoRescheduleOnFailure: Bool
    var autoRescheduleOnFailureDelay: Int
    var maxAttempts: Int? = nil
    var backoff: RetryBackoff = .fixed
    var removeDelay: Int
    var rescheduledFromJob: Int?
    var attempt: Int = 1
}

extension JobSpec {
    /// Whether `scheduleJobs` may take this job's options as its defaults
    /// (no cron, no retry, no remove delay, first attempt), so that only its
    /// type, user, data and due time are sent.
    var takesScriptDefaults: Bool {
        cron == nil && !autoRescheduleOnFailure && autoRescheduleOnFailureDelay == 0 && removeDelay == 0
            && rescheduledFromJob == nil && attempt == 1 && maxAttempts == nil && backoff.maxDelayMilliseconds == nil
    }
}
