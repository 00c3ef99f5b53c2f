import ArgumentParser
import Conveyor
import Foundation

#if canImport(Glibc)
import Glibc
#endif

struct StatsCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "stats",
        abstract: "Show the queue: jobs per state and type, the oldest due job, throughput and failures, live workers.",
        discussion: """
            Throughput and failures come from per-minute counters the workers write as they finish jobs \
            (kept about an hour). Per-type counts examine at most --type-scan-limit jobs per partition and \
            state (marked "at least" when that was not all). --watch redraws every --interval seconds: in \
            place on a terminal, as repeated blocks (or JSON lines) otherwise. The --json field names are \
            listed in the README (section "Operating it").

            Examples:
              conveyor stats
              conveyor stats --watch --interval 1
              conveyor stats --json --minutes 15
            """
    )

    @Flag(name: .long, help: "Print JSON (one object; with --watch, one per line).") var json = false
    @Flag(name: .long, help: "Keep printing every --interval seconds until interrupted.") var watch = false
    @Option(name: .long, help: "Seconds between refreshes with --watch.") var interval: Double = 2
    @Option(name: .long, help: "Minutes of completions to read (1...60).") var minutes: Int = 15
    @Option(name: .customLong("type-scan-limit"), help: "Jobs examined per partition and state for the per-type counts.")
    var typeScanLimit: Int = 10_000
    @OptionGroup var redis: RedisOptions

    func validate() throws {
        guard interval >= 0.1, interval <= 3600 else { throw ValidationError("--interval must be between 0.1 and 3600 seconds, got \(interval)") }
        guard (1...60).contains(minutes) else { throw ValidationError("--minutes must be between 1 and 60, got \(minutes)") }
        guard (1...1_000_000).contains(typeScanLimit) else {
            throw ValidationError("--type-scan-limit must be between 1 and 1000000, got \(typeScanLimit)")
        }
    }

    func run() async throws {
        let client = try await redis.client()
        let inspector = JobInspector(client: client, keys: try await redis.keys(for: client))
        let terminal = isatty(STDOUT_FILENO) == 1
        repeat {
            let stats = try await inspector.stats(minutes: minutes, typeScanLimit: typeScanLimit)
            var output: String
            if json {
                output = stats.jsonText(pretty: !watch) + "\n"
            } else {
                output = Self.render(stats, partitions: inspector.keys.partitionCount)
                if watch { output = terminal ? "\u{1B}[H\u{1B}[2J" + output : output + "\n" }
            }
            FileHandle.standardOutput.write(Data(output.utf8))
            if watch { try await Task.sleep(for: .milliseconds(Int(interval * 1000))) }
        } while watch
        await client.shutdown()
    }

    /// The text form: one block, each section under a heading.
    static func render(_ stats: QueueStats, partitions: Int) -> String {
        var lines = ["Conveyor at \(stats.time.iso8601Milliseconds) (\(partitions) partition\(partitions == 1 ? "" : "s"))", ""]
        lines.append("jobs: pending \(stats.counts.pending), running \(stats.counts.running), finished \(stats.counts.finished)")
        if !stats.byType.isEmpty {
            let atLeast = stats.byTypeComplete ? "" : " (at least: not every job was examined)"
            lines.append("")
            lines.append("by type\(atLeast):")
            var rows = [["TYPE", "PENDING", "RUNNING", "FINISHED"]]
            rows += stats.byType.map { [$0.type, "\($0.pending)", "\($0.running)", "\($0.finished)"] }
            lines += table(rows).map { "  " + $0 }
        }
        lines.append("")
        if let oldest = stats.oldestDue {
            let late = oldest.latenessMs > 0 ? "late by \(duration(ms: oldest.latenessMs))" : "not due yet"
            lines.append("oldest due: job \(oldest.id) (\(oldest.type), user \(oldest.userId)) due \(oldest.due.iso8601Milliseconds), \(late)")
        } else {
            lines.append("oldest due: none (nothing pending)")
        }
        lines.append("")
        lines.append("finished jobs (ok / failed / interrupted):")
        for span in [1, 5, 15, 60] where span <= stats.minutes.count {
            let total = stats.totals(lastMinutes: span)
            lines.append("  last \(span) min: \(total.ok) / \(total.failed) / \(total.interrupted)")
        }
        lines.append("")
        lines.append("live workers: \(stats.workers.count)")
        if !stats.workers.isEmpty {
            var rows = [["ID", "HOST", "PID", "RUNNING", "CONCURRENCY", "STARTED", "LAST HEARTBEAT", "TYPES"]]
            rows += stats.workers.map { worker in
                [
                    worker.id, worker.host, "\(worker.pid)", "\(worker.jobsRunning)", "\(worker.concurrency)",
                    worker.started.iso8601Milliseconds, worker.lastHeartbeat.iso8601Milliseconds, worker.jobTypes.joined(separator: ","),
                ]
            }
            lines += table(rows).map { "  " + $0 }
        }
        return lines.joined(separator: "\n") + "\n"
    }

    static func table(_ rows: [[String]]) -> [String] {
        let widths = (0..<rows[0].count).map { column in rows.map { $0[column].count }.max() ?? 0 }
        return rows.map { row in
            zip(row, widths).map { $0.0.padding(toLength: $0.1, withPad: " ", startingAt: 0) }.joined(separator: "  ")
                .trimmingCharacters(in: .whitespaces)
        }
    }

    static func duration(ms: Int) -> String {
        switch ms {
        case ..<1000: "\(ms) ms"
        case ..<60_000: String(format: "%.1f s", Double(ms) / 1000)
        case ..<3_600_000: "\(ms / 60_000) min \(ms % 60_000 / 1000) s"
        default: "\(ms / 3_600_000) h \(ms % 3_600_000 / 60_000) min"
        }
    }
}
