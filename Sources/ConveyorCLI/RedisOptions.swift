import ConveyorRedis
import ConveyorTesting
import ArgumentParser
import Conveyor
import Foundation
import Logging

/// Options every command shares: where Redis is (URL, TLS, password) and the key layout.
struct RedisOptions: ParsableArguments {
    @OptionGroup var connection: RedisConnectionOptions

    @Option(name: .long, help: "Key namespace shared by producers and workers.")
    var namespace: String = "conveyor"

    @Option(name: .long, help: "Number of partitions (all processes must agree).")
    var partitions: Int = 1

    @Option(
        name: .customLong("partition-tags"),
        help: ArgumentHelp(
            "Partitions' hash tags: indexed ({p0}, {p1}, …) or spread (chosen so the partitions spread evenly over a Redis Cluster's masters). "
                + "All processes must agree. Default: what the namespace records; for a new namespace spread on redis+cluster://, else indexed.",
            valueName: "indexed|spread"
        )
    )
    var partitionTags: String?

    func validate() throws {
        guard partitions >= 1 else { throw ValidationError("--partitions must be at least 1, got \(partitions)") }
        _ = try keys()
    }

    /// The `--partition-tags` given, if any.
    func explicitPartitionTags() throws -> ConveyorKeys.PartitionTags? {
        guard let partitionTags else { return nil }
        guard let tags = ConveyorKeys.PartitionTags(rawValue: partitionTags) else {
            throw ValidationError("--partition-tags \"\(partitionTags)\": expected indexed or spread")
        }
        return tags
    }

    /// The key layout without asking Redis: `--partition-tags`, else indexed.
    /// Commands with a client use ``keys(for:)``, which applies the cluster default.
    func keys() throws -> ConveyorKeys {
        try keys(tags: explicitPartitionTags() ?? .indexed)
    }

    /// The key layout for `client`: `--partition-tags` if given; else the
    /// tags the namespace records; else, for a namespace no process used yet,
    /// slot-spread tags on a Redis Cluster and indexed ones on a single node.
    func keys(for client: RedisClient) async throws -> ConveyorKeys {
        if let tags = try explicitPartitionTags() { return try keys(tags: tags) }
        let probe = try keys(tags: .indexed)
        if let recorded = try await probe.recordedPartitionTags(client: client) { return try keys(tags: recorded) }
        return try keys(tags: client.isCluster ? .slotSpread : .indexed)
    }

    private func keys(tags: ConveyorKeys.PartitionTags) throws -> ConveyorKeys {
        do {
            return try ConveyorKeys(namespace: namespace, partitionCount: partitions, partitionTags: tags)
        } catch {
            throw ValidationError(error.message)
        }
    }

    /// A client for the configured server (see ``RedisConnectionOptions/client()``).
    func client() async throws -> RedisClient {
        try await connection.client()
    }

    /// A client, or a private redis-server when none is configured or found
    /// (see ``RedisConnectionOptions/clientOrEmbeddedServer(log:)``).
    func clientOrEmbeddedServer(log: (String) -> Void) async throws -> (RedisClient, RedisServerProcess?) {
        try await connection.clientOrEmbeddedServer(log: log)
    }
}

/// Reads `--due`: ISO 8601 (`2026-12-01T09:00:00Z`, fractional seconds allowed)
/// or an offset from now (`+10s`, `+500ms`, `+5m`, `+2h`, `+1d`).
/// `+10s`-style offsets as a duration; `nil` for anything else (an absolute time).
func parseDelay(_ text: String) throws -> Duration? {
    guard text.hasPrefix("+") else { return nil }
    let offset = try parseDue(text, now: Date(timeIntervalSince1970: 0))
    return .milliseconds(Int((offset.timeIntervalSince1970 * 1000).rounded()))
}

func parseDue(_ text: String, now: Date = Date()) throws -> Date {
    if text.hasPrefix("+") {
        let body = text.dropFirst()
        let units: [(String, Double)] = [("ms", 0.001), ("s", 1), ("m", 60), ("h", 3600), ("d", 86400)]
        for (suffix, seconds) in units where body.hasSuffix(suffix) {
            let number = body.dropLast(suffix.count)
            if let value = Double(number), value.isFinite, value >= 0, !(suffix == "m" && body.hasSuffix("ms")) {
                return now.addingTimeInterval(value * seconds)
            }
        }
        throw ValidationError("--due \"\(text)\": expected an offset such as +10s, +500ms, +5m, +2h or +1d")
    }
    guard let date = Date(iso8601Milliseconds: text) else {
        throw ValidationError("--due \"\(text)\": expected ISO 8601 (2026-12-01T09:00:00Z) or an offset such as +10s")
    }
    return date
}

/// Prints jobs as JSON (one object per line, API field names) or as text.
enum JobPrinter {
    static func json(_ job: WorkerJob, pretty: Bool = false) -> String {
        job.jsonString(pretty: pretty)
    }

    static func details(_ job: WorkerJob) -> String {
        var lines: [(String, String)] = [
            ("id", "\(job.id)"), ("type", job.type), ("userId", "\(job.userId)"), ("state", job.state.rawValue),
            ("data", job.dataJSON ?? "null"), ("due", job.due.iso8601Milliseconds),
            ("started", job.started?.iso8601Milliseconds ?? "-"), ("finished", job.finished?.iso8601Milliseconds ?? "-"),
            ("success", job.success.map { "\($0)" } ?? "-"), ("result", job.resultJSON == nil ? "-" : job.result.jsonText),
            ("cronSchedule", job.cronSchedule.map { "\($0) (\(job.cronTimeZone ?? "UTC"))" } ?? "-"),
            ("autoRescheduleOnFailure", "\(job.autoRescheduleOnFailure)"),
            ("autoRescheduleOnFailureDelay", "\(job.autoRescheduleOnFailureDelay) ms"),
            ("removeDelay", "\(job.removeDelay) ms"), ("removeAt", job.removeAt?.iso8601Milliseconds ?? "-"),
            ("rescheduledFromJob", job.rescheduledFromJob.map { "\($0)" } ?? "-"), ("attempt", "\(job.attempt)"),
            ("createdAt", job.createdAt.iso8601Milliseconds), ("updatedAt", job.updatedAt.iso8601Milliseconds),
        ]
        if let worker = job.workerId { lines.append(("workerId", worker)) }
        let width = lines.map(\.0.count).max() ?? 0
        return lines.map { $0.0.padding(toLength: width, withPad: " ", startingAt: 0) + "  " + $0.1 }.joined(separator: "\n")
    }

    static func table(_ jobs: [WorkerJob]) -> String {
        var rows = [["ID", "TYPE", "USER", "STATE", "DUE", "ATTEMPT", "FROM", "RESULT"]]
        for job in jobs {
            let outcome: String = switch job.success {
            case true?: "ok " + String(job.result.jsonText.prefix(40))
            case false?: "failed " + String(job.result.jsonText.prefix(40))
            case nil: "-"
            }
            rows.append([
                "\(job.id)", job.type, "\(job.userId)", job.state.rawValue, job.due.iso8601Milliseconds, "\(job.attempt)",
                job.rescheduledFromJob.map { "\($0)" } ?? "-", outcome,
            ])
        }
        let widths = (0..<rows[0].count).map { column in rows.map { $0[column].count }.max() ?? 0 }
        return rows.map { row in
            zip(row, widths).map { $0.0.padding(toLength: $0.1, withPad: " ", startingAt: 0) }.joined(separator: "  ")
        }.joined(separator: "\n")
    }
}
