import ArgumentParser
import Conveyor
import Foundation

struct JobsCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "jobs",
        abstract: "Inspect and cancel jobs in Redis.",
        discussion: """
            Examples:
              conveyor jobs list --state pending --type sendEmail
              conveyor jobs show 1234 --json
              conveyor jobs cancel 1234 --reason "sent by hand"
              conveyor jobs counts
            """,
        subcommands: [Show.self, List.self, Cancel.self, Counts.self]
    )

    struct Show: AsyncParsableCommand {
        static let configuration = CommandConfiguration(
            abstract: "Show one job.",
            discussion: """
                Examples:
                  conveyor jobs show 1234
                  conveyor jobs show 1234 --json
                """
        )

        @Argument(help: "Job id.") var id: Int
        @Flag(name: .long, help: "Print the job as JSON.") var json = false
        @OptionGroup var redis: RedisOptions

        func run() async throws {
            let scheduler = try await scheduler(redis)
            guard let job = try await scheduler.job(id: id) else {
                throw CLIError("no job \(id) in Redis (it never existed, or it was archived)")
            }
            print(json ? job.jsonString(pretty: true) : JobPrinter.details(job))
            await scheduler.client.shutdown()
        }
    }

    struct List: AsyncParsableCommand {
        static let configuration = CommandConfiguration(
            abstract: "List jobs, oldest first.",
            discussion: """
                Examples:
                  conveyor jobs list --state pending --type sendEmail --limit 20
                  conveyor jobs list --user 42 --json
                """
        )

        @Option(name: .long, help: "Only this job type.") var type: String?
        @Option(name: .long, help: "Only this user.") var user: Int?
        @Option(name: .long, help: "pending, running or finished.") var state: WorkerJob.State?
        @Option(name: .long, help: "At most this many jobs.") var limit: Int = 50
        @Flag(name: .long, help: "Print JSON lines, one job per line.") var json = false
        @OptionGroup var redis: RedisOptions

        func validate() throws {
            guard limit > 0 else { throw ValidationError("--limit must be positive, got \(limit)") }
        }

        func run() async throws {
            let scheduler = try await scheduler(redis)
            let jobs = try await scheduler.jobs(state: state, type: type, userId: user, limit: limit)
            if json {
                for job in jobs { print(job.jsonString()) }
            } else {
                print(JobPrinter.table(jobs))
            }
            await scheduler.client.shutdown()
        }
    }

    struct Cancel: AsyncParsableCommand {
        static let configuration = CommandConfiguration(
            abstract: "Cancel a pending (not started) job.",
            discussion: """
                Example:
                  conveyor jobs cancel 1234 --reason "customer unsubscribed"
                """
        )

        @Argument(help: "Job id.") var id: Int
        @Option(name: .long, help: "Reason stored in the job's result.") var reason: String = "cancelled by request"
        @OptionGroup var redis: RedisOptions

        func run() async throws {
            let scheduler = try await scheduler(redis)
            let outcome = try await scheduler.cancelJob(id: id, reason: reason)
            await scheduler.client.shutdown()
            switch outcome {
            case .cancelled: print("cancelled job \(id)")
            case .notFound: throw CLIError("no job \(id) in Redis (it never existed, or it was archived)")
            case .alreadyRunning: throw CLIError("job \(id) is running; only pending jobs can be cancelled")
            case .alreadyFinished: throw CLIError("job \(id) has already finished")
            }
        }
    }

    struct Counts: AsyncParsableCommand {
        static let configuration = CommandConfiguration(
            abstract: "Count jobs by state.",
            discussion: """
                Also counts the finished jobs due for archiving (removeAt passed, by Redis's clock), how long the \
                oldest has waited past its removeAt, and whether an archiver is running (one finished a pass \
                within the last minute). --json adds them as awaitingArchive, oldestArchiveOverdueMs (null when \
                none is due) and aliveArchiver (the archiver's id, or null).

                Examples:
                  conveyor jobs counts
                  conveyor jobs counts --json
                """
        )

        @Flag(name: .long, help: "Print JSON.") var json = false
        @OptionGroup var redis: RedisOptions

        func run() async throws {
            let scheduler = try await scheduler(redis)
            let counts = try await scheduler.counts()
            let parked = try await scheduler.parkedCounts()
            let archive = try await scheduler.inspector.archiveBacklog()
            await scheduler.client.shutdown()
            let ordered = WorkerJob.State.allCases.map { ($0.rawValue, counts[$0] ?? 0) }
            if json {
                let byType = parked.keys.sorted().map { "\(JSONValue.string($0).jsonText):\(parked[$0]!)" }.joined(separator: ",")
                let archiveFields = [
                    "\"awaitingArchive\":\(archive.awaitingArchive)",
                    "\"oldestArchiveOverdueMs\":\(archive.oldestOverdueMs.map(String.init) ?? "null")",
                    "\"aliveArchiver\":\(archive.aliveArchiver.map { JSONValue.string($0).jsonText } ?? "null")",
                ]
                print(
                    "{" + ordered.map { "\"\($0.0)\":\($0.1)" }.joined(separator: ",") + ",\"parkedByType\":{\(byType)},"
                        + archiveFields.joined(separator: ",") + "}"
                )
            } else {
                for (state, count) in ordered { print("\(state): \(count)") }
                // Pending jobs no worker has run because none that claimed them knew their type.
                for type in parked.keys.sorted() {
                    print("pending, waiting for a worker that runs \(JSONValue.string(type).jsonText): \(parked[type]!)")
                }
                print(Self.archiveLine(archive))
            }
        }
    }
}

extension JobsCommand.Counts {
    /// `finished, awaiting archive: N (oldest 12m 5s past its removeAt); archiver: …`.
    static func archiveLine(_ archive: JobInspector.ArchiveBacklog) -> String {
        var line = "finished, awaiting archive: \(archive.awaitingArchive)"
        if let overdue = archive.oldestOverdueMs { line += " (oldest \(duration(overdue)) past its removeAt)" }
        line += "; archiver: " + (archive.aliveArchiver.map { "running (\($0))" } ?? "none running (no pass in the last minute)")
        return line
    }

    /// `950ms`, `42s`, `12m 5s`, `3h 2m`, `4d 1h`.
    static func duration(_ milliseconds: Int) -> String {
        let seconds = milliseconds / 1000
        switch seconds {
        case ..<1: return "\(milliseconds)ms"
        case ..<60: return "\(seconds)s"
        case ..<3600: return "\(seconds / 60)m \(seconds % 60)s"
        case ..<86_400: return "\(seconds / 3600)h \(seconds % 3600 / 60)m"
        default: return "\(seconds / 86_400)d \(seconds % 86_400 / 3600)h"
        }
    }
}

extension WorkerJob.State: ExpressibleByArgument {}
