import Conveyor
import Foundation
import Hummingbird
import Mustache

/// Builds each page's template context from Redis (and the history log) and
/// performs the actions. Every value from job data reaches the page through
/// an escaping `{{…}}` tag.
struct DashboardPages: Sendable {
    let scheduler: JobScheduler
    let configuration: DashboardConfiguration
    let templates: MustacheLibrary
    let csrf: CSRFToken

    var inspector: JobInspector { scheduler.inspector }
    var history: HistoryLog? { configuration.historyDirectory.map { HistoryLog(directory: $0) } }

    func render(_ template: String, _ context: [String: Any], status: HTTPResponse.Status = .ok) async throws -> Response {
        var context = context
        context["now"] = (try? await inspector.redisTime())?.iso8601Milliseconds ?? "-"
        let html = templates.render(context, withTemplate: template) ?? "template \(template) missing"
        var headers = HTTPFields()
        headers[.contentType] = "text/html; charset=utf-8"
        return Response(status: status, headers: headers, body: .init(byteBuffer: ByteBuffer(string: html)))
    }

    static func flash(_ request: Request) -> String? {
        switch FormFields(request.uri.query)["done"] {
        case "cancelled": "The job was cancelled."
        case "rerun": "This job was scheduled to run again now."
        case "deleted": "The job was deleted."
        default: nil
        }
    }

    // MARK: Overview

    func overview(_ request: Request) async throws -> Response {
        let typeScanLimit = 10_000
        let stats = try await inspector.stats(minutes: 60, typeScanLimit: typeScanLimit)
        var context: [String: Any] = [
            "title": "Overview",
            "counts": ["pending": stats.counts.pending, "running": stats.counts.running, "finished": stats.counts.finished],
            "workerCount": stats.workers.count,
            "byType": stats.byType.map { ["type": $0.type, "pending": $0.pending, "running": $0.running, "finished": $0.finished] },
            "byTypeComplete": stats.byTypeComplete, "typeScanLimit": typeScanLimit,
            "chart": ThroughputChart.svg(stats.minutes),
            "hour": Self.totals(stats.totals(lastMinutes: 60)), "five": Self.totals(stats.totals(lastMinutes: 5)),
            "workers": stats.workers.map { worker -> [String: Any] in
                [
                    "id": worker.id, "host": worker.host, "pid": worker.pid, "jobsRunning": worker.jobsRunning,
                    "concurrency": worker.concurrency, "types": worker.jobTypes.joined(separator: ", "),
                    "started": worker.started.iso8601Milliseconds, "lastHeartbeat": worker.lastHeartbeat.iso8601Milliseconds,
                ]
            },
        ]
        if let oldest = stats.oldestDue {
            context["oldest"] = [
                "id": oldest.id, "type": oldest.type, "userId": oldest.userId, "due": oldest.due.iso8601Milliseconds,
                "lateness": oldest.latenessMs > 0 ? "late by \(Self.duration(ms: oldest.latenessMs))" : "not due yet",
            ]
        }
        if let flash = Self.flash(request) { context["flash"] = flash }
        return try await render("overview", context)
    }

    static func totals(_ totals: (ok: Int, failed: Int, interrupted: Int)) -> [String: Any] {
        ["ok": totals.ok, "failed": totals.failed, "interrupted": totals.interrupted]
    }

    static func duration(ms: Int) -> String {
        switch ms {
        case ..<1000: "\(ms) ms"
        case ..<60_000: String(format: "%.1f s", Double(ms) / 1000)
        case ..<3_600_000: "\(ms / 60_000) min \(ms % 60_000 / 1000) s"
        default: "\(ms / 3_600_000) h \(ms % 3_600_000 / 60_000) min"
        }
    }

    // MARK: Job list

    func jobList(_ request: Request) async throws -> Response {
        let form = FormFields(request.uri.query)
        var errors: [String] = []
        let state = form["state"].flatMap(WorkerJob.State.init(rawValue:)) ?? .pending
        if let text = form["state"], WorkerJob.State(rawValue: text) == nil {
            errors.append("unknown state \"\(text)\": pending, running or finished")
        }
        let type = form["type"]
        var user: Int?
        if let text = form["user"] {
            if let value = Int(text), value >= 0 { user = value } else { errors.append("user must be a non-negative integer, got \"\(text)\"") }
        }
        var partition = 0
        if let text = form["partition"] {
            if let value = Int(text), (0..<configuration.keys.partitionCount).contains(value) {
                partition = value
            } else {
                errors.append("partition must be in 0..<\(configuration.keys.partitionCount), got \"\(text)\"")
            }
        }
        var offset = 0
        if let text = form["offset"] {
            if let value = Int(text), value >= 0 { offset = value } else { errors.append("offset must be a non-negative integer") }
        }
        guard errors.isEmpty else {
            return try await render("message", ["title": "Jobs", "error": errors.joined(separator: "; ")], status: .badRequest)
        }
        let page = try await inspector.page(
            state: state, partition: partition, offset: offset, limit: configuration.pageSize, type: type, userId: user,
            newestFirst: state == .finished
        )
        func link(offset: Int) -> String {
            var items = [URLQueryItem(name: "state", value: state.rawValue)]
            if let type { items.append(URLQueryItem(name: "type", value: type)) }
            if let user { items.append(URLQueryItem(name: "user", value: String(user))) }
            if partition != 0 { items.append(URLQueryItem(name: "partition", value: String(partition))) }
            if offset != 0 { items.append(URLQueryItem(name: "offset", value: String(offset))) }
            var components = URLComponents()
            components.path = "/jobs"
            components.queryItems = items
            return components.string ?? "/jobs"
        }
        let filtered = type != nil || user != nil
        var context: [String: Any] = [
            "title": "\(state.rawValue.prefix(1).uppercased() + state.rawValue.dropFirst()) jobs",
            "states": WorkerJob.State.allCases.map { ["name": $0.rawValue, "selected": $0 == state] as [String: Any] },
            "state": state.rawValue, "type": type ?? "", "user": user.map(String.init) ?? "",
            "multiPartition": configuration.keys.partitionCount > 1, "partition": partition,
            "partitionCount": configuration.keys.partitionCount, "total": page.total, "shown": page.jobs.count, "offset": offset,
            "filtered": filtered, "examined": page.examined, "rows": page.jobs.map(Self.row),
        ]
        if let flash = Self.flash(request) { context["flash"] = flash }
        if let next = page.nextOffset { context["next"] = link(offset: next) }
        if offset > 0 {
            if filtered { context["first"] = link(offset: 0) } else { context["previous"] = link(offset: max(0, offset - configuration.pageSize)) }
        }
        return try await render("jobs", context)
    }

    static func outcome(_ job: WorkerJob) -> String {
        switch job.success {
        case true?: "ok " + String(job.result.jsonText.prefix(80))
        case false?: "failed " + String(job.result.jsonText.prefix(80))
        case nil: "-"
        }
    }

    static func row(_ job: WorkerJob) -> [String: Any] {
        var row: [String: Any] = [
            "id": job.id, "type": job.type, "userId": job.userId, "due": job.due.iso8601Milliseconds,
            "started": job.started?.iso8601Milliseconds ?? "-", "finished": job.finished?.iso8601Milliseconds ?? "-",
            "outcome": outcome(job), "attempt": job.attempt,
        ]
        if let from = job.rescheduledFromJob { row["from"] = from }
        return row
    }
}
