import Conveyor
import ConveyorDashboard
import ConveyorTestSupport
import Foundation
import HTTPTypes
import Hummingbird
import HummingbirdTesting
import Synchronization
import Testing

/// The dashboard's routes over HTTP (HummingbirdTesting's in-process router
/// client) against a real Redis: escaping, CSRF, access token, actions.
/// The browser tests (Tests/browser) drive the same pages in Chromium.
@Suite("Dashboard over HTTP against a real server")
struct DashboardHTTPTests {
    static let hostile = "<script>alert(1)</script>"

    func withDashboard(
        token: String? = nil, history: String? = nil, partitions: Int = 1,
        prepare: (RedisClient, ConveyorKeys) async throws -> Void = { _, _ in },
        _ body: @Sendable (JobScheduler, any TestClientProtocol) async throws -> Void
    ) async throws {
        try await TestRedis.withClient { client, ns in
            let keys = try ConveyorKeys(namespace: ns, partitionCount: partitions)
            try await prepare(client, keys)
            let dashboard = try Dashboard(
                client: client, configuration: DashboardConfiguration(token: token, historyDirectory: history, keys: keys, pageSize: 5)
            )
            let scheduler = JobScheduler(client: client, configuration: .init(keys: keys))
            let app = Application(router: dashboard.makeRouter())
            try await app.test(.router) { testClient in try await body(scheduler, testClient) }
        }
    }

    static func get(_ client: any TestClientProtocol, _ uri: String, headers: HTTPFields = [:]) async throws -> (HTTPResponse.Status, String) {
        try await client.execute(uri: uri, method: .get, headers: headers) { ($0.status, String(buffer: $0.body)) }
    }

    static func post(_ client: any TestClientProtocol, _ uri: String, form: String) async throws -> (HTTPResponse.Status, String?) {
        var headers = HTTPFields()
        headers[.contentType] = "application/x-www-form-urlencoded"
        return try await client.execute(uri: uri, method: .post, headers: headers, body: ByteBuffer(string: form)) {
            ($0.status, $0.headers[.location])
        }
    }

    static func csrf(in page: String) throws -> String {
        let match = try #require(page.firstMatch(of: /name="csrf" value="([0-9a-f]{64})"/))
        return String(match.1)
    }

    @Test("job data and type names are escaped on every page, and the pages allow no script")
    func escaping() async throws {
        try await withDashboard { scheduler, client in
            let job = try await scheduler.scheduleJob(
                UntypedJobConfig(type: Self.hostile, userId: 7, dataJSON: #"{"note":"\#(Self.hostile)"}"#)
            )
            for uri in ["/", "/jobs?state=pending", "/jobs?state=pending&type=%3Cscript%3Ealert(1)%3C%2Fscript%3E", "/jobs/\(job.id)"] {
                let (status, page) = try await Self.get(client, uri)
                #expect(status == .ok, "\(uri)")
                #expect(!page.contains("<script"), "\(uri) has a raw <script")
                #expect(page.contains("&lt;script&gt;alert(1)&lt;/script&gt;"), "\(uri) shows the type escaped")
            }
            let headers = try await client.execute(uri: "/", method: .get) { $0.headers }
            #expect(headers[.contentSecurityPolicy]?.contains("default-src 'none'") == true)
        }
    }

    @Test("actions need the page's CSRF token: without it nothing changes")
    func csrfRequired() async throws {
        try await withDashboard { scheduler, client in
            let job = try await scheduler.scheduleJob(UntypedJobConfig(type: "mail", userId: 1, due: Date().addingTimeInterval(600)))
            #expect(try await Self.post(client, "/jobs/\(job.id)/cancel", form: "").0 == .forbidden)
            #expect(try await Self.post(client, "/jobs/\(job.id)/cancel", form: "csrf=" + String(repeating: "0", count: 64)).0 == .forbidden)
            #expect(try await scheduler.job(id: job.id)?.state == .pending)
            let (_, page) = try await Self.get(client, "/jobs/\(job.id)")
            let token = try Self.csrf(in: page)
            let (status, location) = try await Self.post(client, "/jobs/\(job.id)/cancel", form: "csrf=\(token)")
            #expect(status == .seeOther && location == "/jobs/\(job.id)?done=cancelled")
            let cancelled = try #require(try await scheduler.job(id: job.id))
            #expect(cancelled.state == .finished && cancelled.success == false)
            // Now finished and failed: run it again, then delete the original.
            let (rerunStatus, rerunLocation) = try await Self.post(client, "/jobs/\(job.id)/rerun", form: "csrf=\(token)")
            #expect(rerunStatus == .seeOther)
            let newId = try #require(rerunLocation?.firstMatch(of: /^\/jobs\/(\d+)\?done=rerun$/).flatMap { Int($0.1) })
            #expect(try await scheduler.job(id: newId)?.rescheduledFromJob == job.id)
            let (_, rerunPage) = try await Self.get(client, "/jobs/\(newId)")
            #expect(rerunPage.contains(#"<a href="/jobs/\#(job.id)">\#(job.id)</a>"#), "the chain links to the original")
            #expect(try await Self.post(client, "/jobs/\(newId)/delete", form: "csrf=\(token)").0 == .conflict, "pending: not deleted")
            #expect(try await Self.post(client, "/jobs/\(job.id)/delete", form: "csrf=\(token)").0 == .seeOther)
            #expect(try await scheduler.job(id: job.id) == nil)
        }
    }

    @Test("with a token, every request needs it, as a bearer token or a basic-auth password")
    func tokenRequired() async throws {
        let token = "0123456789abcdef-token"
        try await withDashboard(token: token) { (_: JobScheduler, client: any TestClientProtocol) async throws in
            #expect(try await Self.get(client, "/").0 == .unauthorized)
            #expect(try await Self.get(client, "/jobs?state=pending").0 == .unauthorized)
            #expect(try await Self.get(client, "/", headers: [.authorization: "Bearer wrong-token-0000000"]).0 == .unauthorized)
            #expect(try await Self.get(client, "/", headers: [.authorization: "Bearer \(token)"]).0 == .ok)
            let basic = Data("ops:\(token)".utf8).base64EncodedString()
            #expect(try await Self.get(client, "/", headers: [.authorization: "Basic \(basic)"]).0 == .ok)
        }
    }

    @Test("binding beyond loopback without a token is refused before anything listens")
    func nonLoopbackNeedsToken() throws {
        #expect(throws: DashboardError.self) { try DashboardConfiguration(bindAddress: "0.0.0.0").validate() }
        #expect(throws: DashboardError.self) { try DashboardConfiguration(bindAddress: "0.0.0.0", token: "short").validate() }
        try DashboardConfiguration(bindAddress: "0.0.0.0", token: "0123456789abcdef").validate()
        try DashboardConfiguration(bindAddress: "127.0.0.1").validate()
        try DashboardConfiguration(bindAddress: "::1").validate()
    }

    @Test("the job list filters by type and user and pages by index; bad filters are refused")
    func jobList() async throws {
        try await withDashboard { scheduler, client in
            var configs: [UntypedJobConfig] = []
            for user in 1...12 {
                // Distinct due times: jobs due at the same ms come in id text order.
                let due = Date(timeIntervalSince1970: 2_000_000_000 + Double(user))
                configs.append(UntypedJobConfig(type: user % 2 == 0 ? "even" : "odd", userId: user, due: due))
            }
            let jobs = try await scheduler.scheduleJobs(configs)
            let (_, first) = try await Self.get(client, "/jobs?state=pending")
            #expect(first.contains("12 pending jobs") && first.contains(#"id="next-page""#))
            #expect(first.contains(#"href="/jobs/\#(jobs[4].id)""#) && !first.contains(#"href="/jobs/\#(jobs[5].id)""#))
            let (_, third) = try await Self.get(client, "/jobs?state=pending&offset=10")
            #expect(third.contains(#"href="/jobs/\#(jobs[11].id)""#) && !third.contains(#"id="next-page""#))
            let (_, even) = try await Self.get(client, "/jobs?state=pending&type=even")
            #expect(even.contains(#"href="/jobs/\#(jobs[1].id)""#) && !even.contains(#"href="/jobs/\#(jobs[0].id)""#))
            let (_, user3) = try await Self.get(client, "/jobs?state=pending&type=odd&user=3")
            #expect(user3.contains(#"href="/jobs/\#(jobs[2].id)""#) && !user3.contains(#"href="/jobs/\#(jobs[0].id)""#))
            #expect(try await Self.get(client, "/jobs?state=bogus").0 == .badRequest)
            #expect(try await Self.get(client, "/jobs?state=pending&user=-1").0 == .badRequest)
            #expect(try await Self.get(client, "/jobs/0").0 == .badRequest)
            #expect(try await Self.get(client, "/jobs/999999").0 == .notFound)
        }
    }

    @Test("cron lists cron jobs with their next runs; history searches the log; a chain reaches into the log")
    func cronHistoryAndArchivedChain() async throws {
        let directory = FileManager.default.temporaryDirectory.appendingPathComponent("dashboard-history-\(UUID().uuidString)").path
        try FileManager.default.createDirectory(atPath: directory, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(atPath: directory) }
        let ids = IdBox()
        try await withDashboard(
            history: directory,
            prepare: { client, keys in
                let scheduler = JobScheduler(client: client, configuration: .init(keys: keys))
                let archived = try await scheduler.scheduleJob(UntypedJobConfig(type: "report", userId: 1, due: Date().addingTimeInterval(3600)))
                #expect(try await scheduler.cancelJob(id: archived.id) == .cancelled)
                let rerun = try await scheduler.rerunJob(id: archived.id)
                let cron = try await scheduler.scheduleCronJob(UntypedJobConfig(type: "digest", userId: 2), cron: "0 9 * * *")
                let archiver = Archiver(
                    client: client, configuration: ArchiverConfiguration(historyDirectory: directory, keys: keys, passInterval: .milliseconds(50))
                )
                let running = Task { try await archiver.run() }
                let deadline = ContinuousClock.now + .seconds(20)
                while try await scheduler.job(id: archived.id) != nil, ContinuousClock.now < deadline {
                    try await Task.sleep(for: .milliseconds(50))
                }
                archiver.beginShutdown()
                try await running.value
                #expect(try await scheduler.job(id: archived.id) == nil, "archived")
                ids.set(archived: archived.id, rerun: rerun.id, cron: cron.id)
            }
        ) { _, client in
            let (archived, rerun, cron) = ids.get()
            let (_, cronPage) = try await Self.get(client, "/cron")
            #expect(cronPage.contains(#"href="/jobs/\#(cron)""#) && cronPage.contains("0 9 * * *"))
            #expect(!cronPage.contains(#"href="/jobs/\#(rerun)""#), "not a cron job")
            #expect(cronPage.contains("T09:00:00.000Z"), "next runs at 09:00 UTC")
            let (_, history) = try await Self.get(client, "/history?type=report")
            #expect(history.contains(#"href="/jobs/\#(archived)""#) && history.contains("cancelled"))
            let (_, none) = try await Self.get(client, "/history?type=digest")
            #expect(!none.contains(#"href="/jobs/"#) && none.contains("no archived jobs match"))
            #expect(try await Self.get(client, "/history?since=yesterday").0 == .badRequest)
            let (_, chain) = try await Self.get(client, "/jobs/\(rerun)")
            #expect(chain.contains(#"<td><a href="/jobs/\#(archived)">\#(archived)</a></td><td>history</td>"#), "the archived parent, from the log")
            let (status, archivedPage) = try await Self.get(client, "/jobs/\(archived)")
            #expect(status == .ok && archivedPage.contains("Archived: read from the history log."))
        }
    }

    @Test("with several partitions the job list shows one partition at a time, chosen by a field")
    func partitions() async throws {
        try await withDashboard(partitions: 3) { scheduler, client in
            var byPartition: [Int: [Int]] = [:]
            for user in 1...9 {
                let job = try await scheduler.scheduleJob(UntypedJobConfig(type: "mail", userId: user))
                byPartition[job.id % 3, default: []].append(job.id)
            }
            for partition in 0..<3 {
                let (_, page) = try await Self.get(client, "/jobs?state=pending&partition=\(partition)")
                let listed = Set(page.matches(of: /<tr><td><a href="\/jobs\/(\d+)">/).compactMap { Int($0.1) })
                #expect(listed == Set(byPartition[partition] ?? []), "partition \(partition)")
            }
            #expect(try await Self.get(client, "/jobs?state=pending&partition=3").0 == .badRequest)
        }
    }
}

/// Ids a test's preparation hands to its checks.
final class IdBox: Sendable {
    private let ids = Mutex((0, 0, 0))
    func set(archived: Int, rerun: Int, cron: Int) { ids.withLock { $0 = (archived, rerun, cron) } }
    func get() -> (Int, Int, Int) { ids.withLock { $0 } }
}
