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
    /// When the job may start; `nil` is now.
    public var due: Date?
    /// The input passed to `run`.
    public var data: J.Input
    /// Whether a failure schedules a new job (a retry) after ``autoRescheduleOnFailureDelay``.
    public var autoRescheduleOnFailure: Bool
    /// Milliseconds between a failure and its retry.
    public var autoRescheduleOnFailureDelay: Int
    /// Milliseconds a finished job stays in Redis before it may be archived;
    /// default 0 (an archiver, where one runs, removes it at once, and
    /// ``JobScheduler/job(id:)`` then returns `nil`; the history log keeps it).
    public var removeDelay: Int

    /// Creates a configuration. Arguments keep this order: `userId`, `due`,
    /// `data`, the retry settings, `removeDelay`.
    public init(
        _ type: J.Type,
        userId: Int,
        due: Date? = nil,
        data: J.Input,
        autoRescheduleOnFailure: Bool = false,
        autoRescheduleOnFailureDelay: Int = 0,
        removeDelay: Int = 0
    ) {
        self.userId = userId
        self.due = due
        self.data = data
        self.autoRescheduleOnFailure = autoRescheduleOnFailure
        self.autoRescheduleOnFailureDelay = autoRescheduleOnFailureDelay
        self.removeDelay = removeDelay
    }
}

extension WorkerJobConfig where J.Input == Nothing {
    /// Creates a configuration for a job without input.
    public init(
        _ type: J.Type,
        userId: Int,
        due: Date? = nil,
        autoRescheduleOnFailure: Bool = false,
        autoRescheduleOnFailureDelay: Int = 0,
        removeDelay: Int = 0
    ) {
        self.init(
            type, userId: userId, due: due, data: Nothing(), autoRescheduleOnFailure: autoRescheduleOnFailure,
            autoRescheduleOnFailureDelay: autoRescheduleOnFailureDelay, removeDelay: removeDelay
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
    /// When the job may start; `nil` is now.
    public var due: Date?
    /// The input as JSON text; `nil` is `null`.
    public var dataJSON: String?
    /// See ``WorkerJobConfig/autoRescheduleOnFailure``.
    public var autoRescheduleOnFailure: Bool
    /// See ``WorkerJobConfig/autoRescheduleOnFailureDelay``.
    public var autoRescheduleOnFailureDelay: Int
    /// See ``WorkerJobConfig/removeDelay``.
    public var removeDelay: Int

    /// Creates a configuration.
    public init(
        type: String,
        userId: Int,
        due: Date? = nil,
        dataJSON: String? = nil,
        autoRescheduleOnFailure: Bool = false,
        autoRescheduleOnFailureDelay: Int = 0,
        removeDelay: Int = 0
    ) {
        self.type = type
        self.userId = userId
        self.due = due
        self.dataJSON = dataJSON
        self.autoRescheduleOnFailure = autoRescheduleOnFailure
        self.autoRescheduleOnFailureDelay = autoRescheduleOnFailureDelay
        self.removeDelay = removeDelay
    }
}

/// One job as the scheduling script takes it: validated, encoded, untyped.
struct JobSpec: Sendable {
    var type: String
    var userId: Int
    var dataJSON: String?
    var due: Date?
    var cron: CronSchedule?
    var autoRescheduleOnFailure: Bool
    var autoRescheduleOnFailureDelay: Int
    var removeDelay: Int
    var rescheduledFromJob: Int?
    var attempt: Int = 1
}
