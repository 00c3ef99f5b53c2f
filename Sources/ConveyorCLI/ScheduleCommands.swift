import ArgumentParser
import Conveyor
import Foundation

/// Options shared by `schedule` and `cron`.
struct JobOptions: ParsableArguments {
    @Option(name: .long, help: "User the job is for (0 = system).")
    var user: Int

    @Option(name: .long, help: "Job input as JSON; it must decode as the job type's Input, and is stored as written.")
    var data: String?

    @Flag(name: .customLong("auto-retry"), help: "Schedule a new job when this one fails.")
    var autoRetry = false

    @Option(name: .customLong("retry-delay"), help: ArgumentHelp("Milliseconds before the retry.", valueName: "ms"))
    var retryDelay: Int = 0

    @Option(name: .customLong("remove-delay"), help: ArgumentHelp("Milliseconds a finished job stays in Redis.", valueName: "ms"))
    var removeDelay: Int = 0

    @Flag(name: .long, help: "Print the created job as JSON.")
    var json = false

    func validate() throws {
        guard user >= 0 else { throw ValidationError("--user must be 0 (system) or positive, got \(user)") }
        guard retryDelay >= 0 else { throw ValidationError("--retry-delay must not be negative, got \(retryDelay)") }
        guard removeDelay >= 0 else { throw ValidationError("--remove-delay must not be negative, got \(removeDelay)") }
    }

    func config(type: String, due: Date?) -> UntypedJobConfig {
        UntypedJobConfig(
            type: type, userId: user, due: due, dataJSON: data, autoRescheduleOnFailure: autoRetry,
            autoRescheduleOnFailureDelay: retryDelay, removeDelay: removeDelay
        )
    }

    func print(_ job: WorkerJob) {
        Swift.print(json ? job.jsonString() : "scheduled job \(job.id) (\(job.type), user \(job.userId)) due \(job.due.iso8601Milliseconds)")
    }
}

func scheduler(_ redis: RedisOptions) async throws -> JobScheduler {
    let environment = CLIEnvironment.installed
    return JobScheduler(
        client: try await redis.client(),
        configuration: .init(
            keys: try redis.keys(),
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
        abstract: "Schedule a one-off job, cancelling matching pending jobs of the same type and user."
    )

    @Argument(help: "Job type (stored name, e.g. sendEmail).")
    var type: String

    @Option(
        name: .long,
        help: ArgumentHelp("When to run: ISO 8601, or +10s/+5m/+2h/+1d after now by Redis's clock (default: now).", valueName: "time")
    )
    var due: String?

    @OptionGroup var job: JobOptions
    @OptionGroup var redis: RedisOptions

    func validate() throws {
        if let due { _ = try parseDue(due) }
    }

    func run() async throws {
        let scheduler = try await scheduler(redis)
        defer { Task { [client = scheduler.client] in await client.shutdown() } }
        // An offset counts from Redis's clock, not this host's (which may be off).
        let delay = try due.flatMap { try parseDelay($0) }
        var config = job.config(type: type, due: delay == nil ? try due.map { try parseDue($0) } : nil)
        config.delay = delay
        job.print(try await scheduler.scheduleJob(config))
    }
}

struct CronCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "cron",
        abstract: "Schedule a cron job: it runs at each occurrence of SPEC, each run scheduling the next."
    )

    @Argument(help: "Job type (stored name).")
    var type: String

    @Argument(help: "Cron spec: 5 fields, or 6 with seconds first (\"*/2 * * * * *\"), or @hourly/@daily/...")
    var spec: String

    @Option(name: .long, help: "IANA time zone the spec is read in (stored as null when UTC).")
    var tz: String = "UTC"

    @OptionGroup var job: JobOptions
    @OptionGroup var redis: RedisOptions

    func validate() throws {
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
        let scheduler = try await scheduler(redis)
        defer { Task { [client = scheduler.client] in await client.shutdown() } }
        job.print(try await scheduler.scheduleCronJob(job.config(type: type, due: nil), cron: spec, timeZone: tz))
    }
}
