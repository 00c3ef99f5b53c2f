/// The field names of a job hash in Redis: one half of the contract with
/// `lua/` (the other half is the table "Job hash fields" in `lua/README.md`;
/// `ScriptContractTests` checks both, and every field name the scripts use,
/// against this list).
enum JobField: String, CaseIterable, Sendable {
    case type = "t"
    case userId = "u"
    /// The payload, or its first 63-byte part (`d2`, `d3`, … hold the rest).
    case data = "d"
    /// Due time as ms after `ca`.
    case dueOffset = "dd"
    /// Due time in ms, absolute (jobs stored before `dd` existed).
    case dueAbsolute = "du"
    case started = "st"
    case workerId = "w"
    case finished = "fi"
    case success = "ok"
    /// The result, or its first 63-byte part (`r2`, `r3`, … hold the rest).
    case result = "r"
    case cron = "cr"
    case cronTimeZone = "tz"
    case autoReschedule = "ar"
    case autoRescheduleDelay = "ard"
    case removeDelay = "rmd"
    case rescheduledFrom = "rf"
    case attempt = "a"
    case createdAt = "ca"
    /// Interruptions in a row before this job (re-runs only).
    case interruptions = "ic"
    /// Times a worker gave the job back because it does not run its type.
    case releases = "rl"
    case followUpSupersededBy = "sb"
    /// Most attempts when auto-retried.
    case maxAttempts = "am"
    /// Exponential retry backoff's cap, ms.
    case backoffMaxDelay = "bx"
    /// How long this failed job is kept in Redis, ms (instead of `rmd`).
    case failedRetention = "fr"
    /// Trace context of the span that scheduled the job (JSON carrier).
    case traceContext = "tc"
}
