import Conveyor
import Foundation
import Hummingbird

extension DashboardPages {
    // MARK: Job page

    func job(_ request: Request, id: Int) async throws -> Response {
        var job = try await inspector.job(id: id)
        let inRedis = job != nil
        if job == nil, let history { job = try await history.job(id: id) }
        guard let job else {
            return try await render(
                "message", ["title": "Job \(id)", "error": "no job \(id) in Redis\(history == nil ? "" : " or in the history log")"],
                status: .notFound
            )
        }
        let chain = try await chain(of: job)
        let redisIds = Set(try await inspector.jobs(ids: chain.map(\.id)).map(\.id))
        var context: [String: Any] = [
            "title": "Job \(job.id)", "id": job.id, "csrf": csrf.value,
            "source": inRedis ? "In Redis (\(job.state.rawValue))." : "Archived: read from the history log.",
            "fields": Self.fields(job), "historyConfigured": history != nil,
            "canCancel": inRedis && job.state == .pending, "canRerun": job.state == .finished && job.success == false,
            "canDelete": inRedis && job.state == .finished,
            "chain": chain.map { link -> [String: Any] in
                [
                    "id": link.id, "where": redisIds.contains(link.id) ? "Redis" : "history", "state": link.state.rawValue,
                    "created": link.createdAt.iso8601Milliseconds, "finished": link.finished?.iso8601Milliseconds ?? "-",
                    "outcome": Self.outcome(link), "attempt": link.attempt, "from": link.rescheduledFromJob.map(String.init) ?? "-",
                    "current": link.id == job.id && link.createdAt == job.createdAt,
                ]
            },
        ]
        if let flash = Self.flash(request) { context["flash"] = flash }
        return try await render("job", context)
    }

    static func fields(_ job: WorkerJob) -> [[String: Any]] {
        var rows: [(String, String, Int?)] = [
            ("id", "\(job.id)", nil), ("type", job.type, nil), ("userId", "\(job.userId)", nil), ("state", job.state.rawValue, nil),
            ("data", job.data.jsonText, nil), ("due", job.due.iso8601Milliseconds, nil),
            ("started", job.started?.iso8601Milliseconds ?? "-", nil), ("finished", job.finished?.iso8601Milliseconds ?? "-", nil),
            ("success", job.success.map { "\($0)" } ?? "-", nil), ("result", job.resultJSON == nil ? "-" : job.result.jsonText, nil),
            ("cronSchedule", job.cronSchedule ?? "-", nil), ("cronTimeZone", job.cronTimeZone ?? (job.cronSchedule == nil ? "-" : "UTC"), nil),
            ("autoRescheduleOnFailure", "\(job.autoRescheduleOnFailure)", nil),
            ("autoRescheduleOnFailureDelay", "\(job.autoRescheduleOnFailureDelay) ms", nil),
            ("autoRescheduleOnFailureMaxAttempts", job.autoRescheduleOnFailureMaxAttempts.map(String.init) ?? "-", nil),
            ("autoRescheduleOnFailureBackoff", Self.backoff(job.autoRescheduleOnFailureBackoff), nil),
            ("removeDelay", "\(job.removeDelay) ms", nil),
            ("failedRetention", job.failedRetention.map { "\($0) ms" } ?? "-", nil),
            ("removeAt", job.removeAt?.iso8601Milliseconds ?? "-", nil),
            ("rescheduledFromJob", job.rescheduledFromJob.map(String.init) ?? "-", job.rescheduledFromJob),
            ("attempt", "\(job.attempt)", nil), ("createdAt", job.createdAt.iso8601Milliseconds, nil),
            ("updatedAt", job.updatedAt.iso8601Milliseconds, nil), ("workerId", job.workerId ?? "-", nil),
        ]
        if let newer = job.followUpSupersededBy { rows.append(("followUpSupersededBy", "\(newer)", newer)) }
        return rows.map { name, value, link in
            var row: [String: Any] = ["name": name, "value": value]
            if let link { row["link"] = link }
            return row
        }
    }

    static func backoff(_ backoff: RetryBackoff) -> String {
        switch backoff {
        case .fixed: "fixed"
        case .exponential(let maxDelay): "exponential, at most \(maxDelay.components.seconds) s"
        }
    }

    /// The job's `rescheduledFromJob` chain: across Redis and the history log
    /// when one is configured (as `history --chain`), else within Redis.
    func chain(of job: WorkerJob) async throws -> [WorkerJob] {
        if let history {
            let chain = try await history.chain(of: job.id, redis: inspector)
            return chain.isEmpty ? [job] : chain
        }
        var known: [Int: WorkerJob] = [job.id: job]
        for other in try await inspector.jobs(type: job.type, userId: job.userId, limit: 10_000) { known[other.id] = other }
        var chain = [job.id]
        var cursor = job
        // Parents: follow the links up (a retry or cron chain stays with its type and user).
        while let parent = cursor.rescheduledFromJob, let found = known[parent], !chain.contains(parent), chain.count < 1000 {
            chain.insert(parent, at: 0)
            cursor = found
        }
        var queue = [job.id]
        while let next = queue.popLast(), chain.count < 1000 {
            for child in known.values where child.rescheduledFromJob == next && !chain.contains(child.id) {
                chain.append(child.id)
                queue.append(child.id)
            }
        }
        return chain.compactMap { known[$0] }.sorted { ($0.createdAt, $0.id) < ($1.createdAt, $1.id) }
    }

    // MARK: Actions

    func act(_ request: Request, id: Int, action: String) async throws -> Response {
        var request = request
        let body = try await request.collectBody(upTo: 16 * 1024)
        let form = FormFields(String(buffer: body))
        guard csrf.accepts(form: form, request: request) else {
            return try await render(
                "message", ["title": "Refused", "error": "missing or wrong CSRF token: reload the job's page and try again"],
                status: .forbidden
            )
        }
        let refused: String
        switch action {
        case "cancel":
            switch try await scheduler.cancelJob(id: id, reason: "cancelled from the dashboard") {
            case .cancelled: return Self.redirect("/jobs/\(id)?done=cancelled")
            case .notFound: refused = "no job \(id) in Redis"
            case .alreadyRunning: refused = "job \(id) is running; only pending jobs can be cancelled"
            case .alreadyFinished: refused = "job \(id) has already finished"
            }
        case "rerun":
            var job = try await inspector.job(id: id)
            if job == nil, let history { job = try await history.job(id: id) }
            guard let job else {
                refused = "no job \(id) in Redis or the history log"
                break
            }
            do {
                let new = try await scheduler.rerun(job)
                return Self.redirect("/jobs/\(new.id)?done=rerun")
            } catch {
                refused = error.message
            }
        case "delete":
            switch try await scheduler.deleteFinishedJob(id: id) {
            case .deleted: return Self.redirect("/jobs?state=finished&done=deleted")
            case .notFound: refused = "no job \(id) in Redis"
            case .notFinished: refused = "job \(id) has not finished; only finished jobs are deleted"
            case .beingArchived: refused = "job \(id) is being archived right now"
            }
        default:
            throw HTTPError(.notFound, message: "unknown action \(action): cancel, rerun or delete")
        }
        return try await render("message", ["title": "Job \(id)", "error": refused], status: .conflict)
    }

    static func redirect(_ location: String) -> Response {
        var headers = HTTPFields()
        headers[.location] = location
        return Response(status: .seeOther, headers: headers)
    }

    // MARK: Cron

    func cron(_ request: Request) async throws -> Response {
        let scanLimit = 10_000
        var rows: [[String: Any]] = []
        var examined = 0
        var truncated = false
        for partition in configuration.keys.partitions {
            // The earliest pending jobs' `cr` fields in one pipeline; whole jobs only for cron ones.
            let client = scheduler.client
            let range = RedisCommand("ZRANGE", routingKey: partition.due, arguments: [partition.due, 0, scanLimit])
            let ids = try await client.send(range).array?.compactMap(\.int) ?? []
            if ids.count > scanLimit { truncated = true }
            let examinedIds = Array(ids.prefix(scanLimit))
            examined += examinedIds.count
            let crons = try await client.pipeline(
                examinedIds.map { RedisCommand("HGET", routingKey: partition.job($0), arguments: [partition.job($0), "cr"]) }
            )
            let cronIds = zip(examinedIds, crons).filter { !$0.1.isNull }.map(\.0)
            let jobs = try await inspector.jobs(ids: cronIds)
            for job in jobs {
                guard let expression = job.cronSchedule else { continue }
                let zone = job.cronTimeZone ?? "UTC"
                var later: [String] = []
                if let schedule = try? CronSchedule(expression, timeZoneIdentifier: zone) {
                    var cursor = job.due
                    for _ in 0..<3 {
                        guard let next = schedule.next(after: cursor) else { break }
                        later.append(next.iso8601Milliseconds)
                        cursor = next
                    }
                }
                rows.append([
                    "id": job.id, "type": job.type, "userId": job.userId, "schedule": expression, "timeZone": zone,
                    "due": job.due.iso8601Milliseconds, "later": later.joined(separator: ", "),
                ])
            }
        }
        return try await render("cron", ["title": "Cron schedules", "rows": rows, "examined": examined, "truncated": truncated])
    }

    // MARK: History

    func history(_ request: Request) async throws -> Response {
        guard let history else { return try await render("history", ["title": "History", "configured": false]) }
        let form = FormFields(request.uri.query)
        var errors: [String] = []
        func integer(_ name: String, in range: ClosedRange<Int>) -> Int? {
            guard let text = form[name] else { return nil }
            guard let value = Int(text), range.contains(value) else {
                errors.append("\(name) must be an integer in \(range.lowerBound)...\(range.upperBound), got \"\(text)\"")
                return nil
            }
            return value
        }
        func date(_ name: String) -> Date? {
            guard let text = form[name] else { return nil }
            guard let value = Date(iso8601Milliseconds: text) ?? Date(iso8601Milliseconds: text + "T00:00:00Z") else {
                errors.append("\(name) must be ISO 8601 such as 2026-11-29T09:00:00Z or 2026-11-29, got \"\(text)\"")
                return nil
            }
            return value
        }
        let success: Bool? = form["success"].flatMap { $0 == "true" ? true : $0 == "false" ? false : nil }
        let limit = integer("limit", in: 1...500) ?? 50
        let query = HistoryQuery(
            id: integer("id", in: 1...Int.max), type: form["type"], userId: integer("user", in: 0...Int.max), since: date("since"),
            until: date("until"), success: success, limit: limit
        )
        var context: [String: Any] = [
            "title": "History", "configured": true,
            "query": [
                "id": form["id"] ?? "", "type": form["type"] ?? "", "user": form["user"] ?? "", "since": form["since"] ?? "",
                "until": form["until"] ?? "", "limit": String(limit), "ok": success == true, "failed": success == false,
            ] as [String: Any],
        ]
        guard errors.isEmpty else {
            context["error"] = errors.joined(separator: "; ")
            context["rows"] = [[String: Any]]()
            return try await render("history", context, status: .badRequest)
        }
        let entries = try await history.entries(matching: query)
        context["rows"] = entries.map { entry -> [String: Any] in
            let job = entry.job
            return [
                "id": job.id, "type": job.type, "userId": job.userId, "finished": job.finished?.iso8601Milliseconds ?? "-",
                "outcome": Self.outcome(job), "attempt": job.attempt, "from": job.rescheduledFromJob.map(String.init) ?? "-",
            ]
        }
        return try await render("history", context)
    }
}
