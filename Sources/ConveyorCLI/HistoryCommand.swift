import ArgumentParser
import Conveyor
import Foundation
import Synchronization

#if canImport(Glibc)
import Glibc
#endif

struct HistoryCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "history",
        abstract: "Search the history log of archived jobs, newest first.",
        discussion: """
            Reads the files of the history directory (all archivers, plain and compressed), skipping \
            the blocks of rotated files that their index says cannot match. --json prints the log's \
            lines as stored, streamed (an export: --since ... --until ... --all --oldest-first --json). \
            --chain follows rescheduledFromJob links both ways, across the log and the jobs still in Redis.

            Examples:
              conveyor history --history-dir /var/lib/conveyor/history --type sendEmail --user 42 --success false
              CONVEYOR_HISTORY_DIR=/var/lib/conveyor/history conveyor history --chain 1234
              conveyor history --history-dir /var/lib/conveyor/history --since 2026-11-01 --until 2026-12-01 --all --oldest-first --json > november.jsonl
            """
    )

    @Option(name: .customLong("history-dir"), help: ArgumentHelp("History directory (default: $CONVEYOR_HISTORY_DIR).", valueName: "dir"))
    var historyDir: String?
    @Option(name: .long, help: "Only the job with this id.") var id: Int?
    @Option(name: .long, help: "Only this job type.") var type: String?
    @Option(name: .long, help: "Only this user.") var user: Int?
    @Option(name: .long, help: ArgumentHelp("Only jobs finished at or after this time (ISO 8601, or a date).", valueName: "iso"))
    var since: String?
    @Option(name: .long, help: ArgumentHelp("Only jobs finished before this time (ISO 8601, or a date).", valueName: "iso"))
    var until: String?
    @Option(name: .long, help: ArgumentHelp("Only succeeded (true) or failed and cancelled (false) jobs.", valueName: "true|false"))
    var success: Bool?
    @Option(name: .long, help: "At most this many jobs.") var limit: Int = 50
    @Flag(name: .long, help: "Every matching job (no --limit): with --json, an export.") var all = false
    @Flag(name: .customLong("oldest-first"), help: "Oldest first (default: newest first).") var oldestFirst = false
    @Option(name: .long, help: ArgumentHelp("Show the retry / cron chain of this job, across Redis and the log.", valueName: "id"))
    var chain: Int?
    @Flag(name: .long, help: "Print JSON lines (the log's record format).") var json = false
    @OptionGroup var redis: RedisOptions

    func validate() throws {
        guard limit > 0 else { throw ValidationError("--limit must be positive, got \(limit)") }
        _ = try directory()
        _ = try Self.parseTime(since, option: "--since")
        _ = try Self.parseTime(until, option: "--until")
    }

    func directory() throws -> String {
        if let historyDir, !historyDir.isEmpty { return historyDir }
        if let fromEnvironment = ProcessInfo.processInfo.environment["CONVEYOR_HISTORY_DIR"], !fromEnvironment.isEmpty {
            return fromEnvironment
        }
        throw ValidationError("pass --history-dir DIR (or set CONVEYOR_HISTORY_DIR)")
    }

    static func parseTime(_ text: String?, option: String) throws -> Date? {
        guard let text else { return nil }
        if let date = Date(iso8601Milliseconds: text) ?? Date(iso8601Milliseconds: text + "T00:00:00Z") { return date }
        throw ValidationError("\(option) \"\(text)\": expected ISO 8601 such as 2026-11-29T09:00:00Z or 2026-11-29")
    }

    func run() async throws {
        let log = HistoryLog(directory: try directory())
        if let chain {
            var scheduler: JobScheduler?
            do {
                let client = try await redis.client()
                scheduler = JobScheduler(client: client, configuration: .init(keys: try await redis.keys(for: client)))
            } catch {
                FileHandle.standardError.write(Data("warning: \(error); showing the log only\n".utf8))
            }
            let jobs = try await log.chain(of: chain, scheduler: scheduler)
            await scheduler?.client.shutdown()
            guard !jobs.isEmpty else { throw CLIError("job \(chain) is neither in Redis nor in the history log") }
            if json {
                for job in jobs { print(JobPrinter.json(job)) }
            } else {
                print(Self.table(jobs.map { HistoryEntry(job: $0, archivedAt: nil) }, showState: true))
            }
            return
        }
        var query = HistoryQuery(
            id: id, type: type, userId: user, since: try Self.parseTime(since, option: "--since"),
            until: try Self.parseTime(until, option: "--until"), success: success, limit: limit
        )
        if all { query.limit = nil }
        if json {
            let output = StandardOutput()
            try await log.export(matching: query, oldestFirst: oldestFirst) { line in
                try output.write(line)
                return true
            }
            try output.flush()
            return
        }
        print(Self.table(try await log.entries(matching: query, oldestFirst: oldestFirst), showState: false))
    }

    static func table(_ entries: [HistoryEntry], showState: Bool) -> String {
        var header = ["ID", "TYPE", "USER", "FINISHED", "ATTEMPT", "FROM", "RESULT"]
        if showState { header.insert("STATE", at: 3) }
        var rows = [header]
        for entry in entries {
            let job = entry.job
            if let raw = entry.raw {
                // A hash that did not parse, archived as it was: `--json` prints every field.
                var row = [
                    "\(raw.id)", raw.type ?? "?", raw.userId.map { "\($0)" } ?? "?", raw.finished?.iso8601Milliseconds ?? "-", "-", "-",
                    "raw (\(raw.reason)); see --json",
                ]
                if showState { row.insert("raw", at: 3) }
                rows.append(row)
                continue
            }
            let outcome: String = switch job.success {
            case true?: "ok " + String(job.result.jsonText.prefix(50))
            case false?: "failed " + String(job.result.jsonText.prefix(50))
            case nil: "-"
            }
            var row = [
                "\(job.id)", job.type, "\(job.userId)", job.finished?.iso8601Milliseconds ?? "-", "\(job.attempt)",
                job.rescheduledFromJob.map { "\($0)" } ?? "-", outcome,
            ]
            if showState { row.insert(job.state.rawValue, at: 3) }
            rows.append(row)
        }
        let widths = (0..<header.count).map { column in rows.map { $0[column].count }.max() ?? 0 }
        return rows.map { row in
            zip(row, widths).map { $0.0.padding(toLength: $0.1, withPad: " ", startingAt: 0) }.joined(separator: "  ")
                .trimmingCharacters(in: .whitespaces)
        }.joined(separator: "\n")
    }
}

/// Buffered writes of lines to standard output, from any thread (an export
/// writes millions of lines; one `write` per line would cost more than reading them).
final class StandardOutput: Sendable {
    private let buffer = Mutex<[UInt8]>([])

    func write(_ line: ArraySlice<UInt8>) throws {
        try buffer.withLock { buffer in
            buffer.append(contentsOf: line)
            buffer.append(0x0A)
            if buffer.count >= 1 << 20 { try Self.flush(&buffer) }
        }
    }

    func flush() throws {
        try buffer.withLock { try Self.flush(&$0) }
    }

    private static func flush(_ buffer: inout [UInt8]) throws {
        var done = 0
        while done < buffer.count {
            let count = buffer.withUnsafeBytes { Glibc.write(1, $0.baseAddress! + done, $0.count - done) }
            if count < 0 {
                if errno == EINTR { continue }
                throw CLIError("cannot write to standard output: \(String(cString: strerror(errno)))")
            }
            done += count
        }
        buffer.removeAll(keepingCapacity: true)
    }
}
