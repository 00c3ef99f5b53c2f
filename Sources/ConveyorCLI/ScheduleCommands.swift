import ArgumentParser
import Conveyor
import Foundation

/// Options shared by `schedule` and `cron`.
struct JobOptions: ParsableArguments {
    @Option(name: .long, help: "User the job is for (0 = system); required unless --from.")
    var user: Int?

    @Option(name: .long, help: "Job input as JSON; it must decode as the job type's Input, and is stored as written.")
    var data: String?

    @Flag(name: .customLong("auto-retry"), help: "Schedule a new job when this one fails.")
    var autoRetry = false

    @Option(name: .customLong("retry-delay"), help: ArgumentHelp("Milliseconds before the retry.", valueName: "ms"))
    var retryDelay: Int = 0

    @Option(name: .customLong("max-attempts"), help: "With --auto-retry: stop retrying after this many attempts (default: no limit).")
    var maxAttempts: Int?

    @Option(
        name: .customLong("backoff-max-delay"),
        help: ArgumentHelp("With --auto-retry: exponential backoff from --retry-delay, capped at this many ms.", valueName: "ms")
    )
    var backoffMaxDelay: Int?

    @Option(name: .customLong("remove-delay"), help: ArgumentHelp("Milliseconds a finished job stays in Redis.", valueName: "ms"))
    var removeDelay: Int = 0

    @Flag(name: .long, help: "Print the created job as JSON.")
    var json = false

    func validate() throws {
        if let user, user < 0 { throw ValidationError("--user must be 0 (system) or positive, got \(user)") }
        if let maxAttempts, maxAttempts < 1 { throw ValidationError("--max-attempts must be at least 1, got \(maxAttempts)") }
        if let backoffMaxDelay, backoffMaxDelay < 1 { throw ValidationError("--backoff-max-delay must be at least 1 ms, got \(backoffMaxDelay)") }
        guard retryDelay >= 0 else { throw ValidationError("--retry-delay must not be negative, got \(retryDelay)") }
        guard removeDelay >= 0 else { throw ValidationError("--remove-delay must not be negative, got \(removeDelay)") }
    }

    /// Fails unless `--user` was given (commands that schedule one job need it).
    func requireUser() throws {
        guard user != nil else { throw ValidationError("Missing expected argument '--user <user>' (0 for system jobs)") }
    }

    /// The flags given with `--from`, which takes every job field from the file.
    var perJobFlags: [String] {
        var flags: [String] = []
        if user != nil { flags.append("--user") }
        if data != nil { flags.append("--data") }
        if autoRetry { flags.append("--auto-retry") }
        if retryDelay != 0 { flags.append("--retry-delay") }
        if maxAttempts != nil { flags.append("--max-attempts") }
        if backoffMaxDelay != nil { flags.append("--backoff-max-delay") }
        if removeDelay != 0 { flags.append("--remove-delay") }
        return flags
    }

    func config(type: String, due: Date?) -> UntypedJobConfig {
        UntypedJobConfig(
            type: type, userId: user ?? 0, due: due, dataJSON: data, autoRescheduleOnFailure: autoRetry,
            autoRescheduleOnFailureDelay: retryDelay, autoRescheduleOnFailureMaxAttempts: maxAttempts,
            autoRescheduleOnFailureBackoff: backoffMaxDelay.map { .exponential(maxDelay: .milliseconds($0)) } ?? .fixed,
            removeDelay: removeDelay
        )
    }

    func print(_ job: WorkerJob) {
        Swift.print(json ? job.jsonString() : "scheduled job \(job.id) (\(job.type), user \(job.userId)) due \(job.due.iso8601Milliseconds)")
    }

    /// Prints the created job (with `"replicated"` in `--json` when replicas
    /// were asked for), then fails if it reached too few replicas.
    func print(_ scheduled: JobScheduler.ScheduledJobs, scheduler: JobScheduler) throws {
        guard let job = scheduled.jobs.first else { return }
        if json {
            Swift.print(ReplicaOptions.jsonLine(job, scheduled.replication))
        } else {
            print(job)
        }
        if let replication = scheduled.replication, !replication.isReplicated {
            throw ReplicaOptions.shortfall(1, replication, timeoutMs: Int(scheduler.configuration.replicaTimeout / .milliseconds(1)))
        }
    }
}

func scheduler(_ redis: RedisOptions) async throws -> JobScheduler {
    let environment = CLIEnvironment.installed
    let client = try await redis.client()
    return JobScheduler(
        client: client,
        configuration: .init(
            keys: try await redis.keys(for: client),
            knownJobTypes: environment.jobTypeNames.isEmpty ? nil : Set(environment.jobTypeNames)
        )
    )
    .checkingInput(environment.inputCheck)
}

extension JobScheduler {
    /// This scheduler, also checking untyped data with `check` (the app's registry).
    func checkingInput(_ check: (@Sendable (String, String?) throws(ConveyorError) -> Void)?) -> JobScheduler {
        var configuration = configuration
        configuration.inputCheck = check
        return JobScheduler(client: client, configuration: configuration)
    }
}

struct ScheduleCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "schedule",
        abstract: "Schedule a one-off job, cancelling matching pending jobs of the same type and user.",
        discussion: """
            With --from, schedules every job of a JSON-lines file (one object per line; `-` reads standard input). \
            Fields, as the flags: "type" (string, required), "user" (or "userId"; integer, required, 0 for system \
            jobs), "data" (any JSON, stored as written), "due" (ISO 8601 or +10s/+5m/+2h/+1d after Redis's now), \
            "autoRetry" (true/false), "retryDelay", "maxAttempts", "backoffMaxDelay", "removeDelay" (integers, \
            milliseconds). Blank lines are skipped; any other field is refused. The whole input (at most \
            1,000,000 jobs) is checked first: with a bad line, each is reported with its number and nothing is \
            scheduled (exit 2). Jobs are then sent 1,000 at a time; if Redis fails, the error says which lines \
            were scheduled (exit 1). As for a single job, a job replaces the pending job of its type and user, \
            so a file with two lines for one type and user leaves the last one, and running a file again \
            replaces its still-pending jobs instead of adding copies.

            Examples:
              conveyor schedule sendEmail --user 42 --data '{"to":"a@example.com"}'
              conveyor schedule report --user 0 --due +10m --auto-retry --retry-delay 5000 --max-attempts 5
              conveyor schedule --from jobs.jsonl
              producer | conveyor schedule --from - --json
            A line of jobs.jsonl:
              {"type":"sendEmail","user":42,"data":{"to":"a@example.com"},"due":"+1h","autoRetry":true}
            """
    )

    @Argument(help: "Job type (stored name, e.g. sendEmail); not with --from.")
    var type: String?

    @Option(
        name: .long,
        help: ArgumentHelp("Schedule the jobs of a JSON-lines file (`-`: standard input); see below.", valueName: "file")
    )
    var from: String?

    @Option(
        name: .long,
        help: ArgumentHelp("When to run: ISO 8601, or +10s/+5m/+2h/+1d after now by Redis's clock (default: now).", valueName: "time")
    )
    var due: String?

    @OptionGroup var job: JobOptions
    @OptionGroup var replicas: ReplicaOptions
    @OptionGroup var redis: RedisOptions

    func validate() throws {
        if from != nil {
            let flags = (type == nil ? [] : ["a job type"]) + (due == nil ? [] : ["--due"]) + job.perJobFlags
            guard flags.isEmpty else {
                throw ValidationError("--from takes every job field from the file; drop \(flags.joined(separator: ", "))")
            }
            return
        }
        guard type != nil else { throw ValidationError("Missing expected argument '<type>' (or --from FILE)") }
        try job.requireUser()
        if let due { _ = try parseDue(due) }
    }

    func run() async throws {
        let scheduler = try replicas.apply(to: try await scheduler(redis))
        defer { Task { [client = scheduler.client] in await client.shutdown() } }
        if let from {
            try await BulkSchedule(source: from, json: job.json).run(scheduler)
            return
        }
        guard let type else { throw ValidationError("Missing expected argument '<type>' (or --from FILE)") }
        // An offset counts from Redis's clock, not this host's (which may be off).
        let delay = try due.flatMap { try parseDelay($0) }
        var config = job.config(type: type, due: delay == nil ? try due.map { try parseDue($0) } : nil)
        config.delay = delay
        try job.print(try await scheduler.scheduleJobsReportingReplication([config]), scheduler: scheduler)
    }
}

struct CronCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "cron",
        abstract: "Schedule a cron job: it runs at each occurrence of SPEC, each run scheduling the next.",
        discussion: """
            Examples:
              conveyor cron cleanup "0 3 * * *" --user 0
              conveyor cron digest "0 9 * * MON-FRI" --user 42 --tz Europe/Berlin
              conveyor cron ping "*/10 * * * * *" --user 0 --remove-delay 60000
            """
    )

    @Argument(help: "Job type (stored name).")
    var type: String

    @Argument(help: "Cron spec: 5 fields, or 6 with seconds first (\"*/2 * * * * *\"), or @hourly/@daily/...")
    var spec: String

    @Option(name: .long, help: "IANA time zone the spec is read in (stored as null when UTC).")
    var tz: String = "UTC"

    @OptionGroup var job: JobOptions
    @OptionGroup var replicas: ReplicaOptions
    @OptionGroup var redis: RedisOptions

    func validate() throws {
        try job.requireUser()
        guard TimeZone(identifier: tz) != nil else {
            throw ValidationError("--tz \"\(tz)\": unknown time zone; expected an IANA name such as UTC or Europe/Berlin")
        }
        do {
            _ = try CronSchedule(spec, timeZoneIdentifier: tz)
        } catch {
            throw ValidationError(error.description)
        }
    }

    func run() async throws {
        let scheduler = try replicas.apply(to: try await scheduler(redis))
        defer { Task { [client = scheduler.client] in await client.shutdown() } }
        try job.print(
            try await scheduler.scheduleCronJobReportingReplication(job.config(type: type, due: nil), cron: spec, timeZone: tz),
            scheduler: scheduler
        )
    }
}
