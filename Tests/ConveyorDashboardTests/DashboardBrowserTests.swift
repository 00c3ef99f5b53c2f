import Conveyor
import ConveyorTestSupport
import ConveyorTesting
import Foundation
import Testing

/// Where the browser tests' Python lives: `CONVEYOR_BROWSER_PYTHON` (set by
/// `make test` after scripts/install-browser-deps.sh), else the venv that
/// script makes. Without one the browser test is skipped (reported as skipped).
/// Screenshots go to `CONVEYOR_SCREENSHOT_DIR` (docs/ when refreshing the
/// README's pictures), else next to the test's logs.
enum BrowserEnvironment {
    static var packageRoot: URL {
        URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent().deletingLastPathComponent()
    }

    static var python: String? {
        if let path = ProcessInfo.processInfo.environment["CONVEYOR_BROWSER_PYTHON"], !path.isEmpty { return path }
        let venv = packageRoot.appendingPathComponent(".build/browser-venv/bin/python").path
        return FileManager.default.isExecutableFile(atPath: venv) ? venv : nil
    }

    /// The `conveyor` binary next to the test bundle (`swift build --build-tests` builds it).
    static var conveyor: String {
        var directory = URL(fileURLWithPath: CommandLine.arguments[0]).deletingLastPathComponent()
        for _ in 0..<4 {
            let candidate = directory.appendingPathComponent("conveyor").path
            if FileManager.default.isExecutableFile(atPath: candidate) { return candidate }
            directory.deleteLastPathComponent()
        }
        return packageRoot.appendingPathComponent(".build/debug/conveyor").path
    }
}

@Suite("Dashboard in a real browser (Chromium, selenium)")
struct DashboardBrowserTests {
    static let hostileType = "<script>window.__conveyorXSS=1;alert(1)</script>"
    static let hostileText = "<img src=x onerror=alert(2)><script>alert(3)</script>"

    @Test(
        "pages render real data from a real worker; filters, chain, cancel, rerun, delete, CSRF and escaping in Chromium",
        .enabled(if: BrowserEnvironment.python != nil, "no browser environment: run scripts/install-browser-deps.sh")
    )
    func browser() async throws {
        let python = try #require(BrowserEnvironment.python)
        try await TestRedis.withClient { client, ns in
            let url = try await TestRedis.url()
            let keys = try ConveyorKeys(namespace: ns)
            let scheduler = JobScheduler(client: client, configuration: .init(keys: keys))
            let logDirectory = FileManager.default.temporaryDirectory.appendingPathComponent("conveyor-browser-\(UUID().uuidString)")
            try FileManager.default.createDirectory(at: logDirectory, withIntermediateDirectories: true)
            let common = ["--redis", url, "--namespace", ns]
            let worker = try ChildProcess.spawn(
                BrowserEnvironment.conveyor, arguments: ["worker", "--concurrency", "4"] + common,
                standardOutput: logDirectory.appendingPathComponent("worker.log").path
            )
            defer { worker.signal(SIGKILL) }
            let later = Date().addingTimeInterval(3600)
            // A retry chain of three (fails twice), a failed job, a succeeded job.
            let flaky = try await scheduler.scheduleJob(
                UntypedJobConfig(type: "flaky", userId: 1, dataJSON: #"{"succeedOnAttempt":3}"#, autoRescheduleOnFailure: true, removeDelay: 3_600_000)
            )
            let failed = try await scheduler.scheduleJob(UntypedJobConfig(type: "fail", userId: 2, dataJSON: "{}", removeDelay: 3_600_000))
            let succeeded = try await scheduler.scheduleJob(UntypedJobConfig(type: "echo", userId: 3, dataJSON: "{}", removeDelay: 3_600_000))
            // Pending (due in an hour): hostile type and data, three of one type, one to cancel.
            let hostile = try await scheduler.scheduleJob(
                UntypedJobConfig(type: Self.hostileType, userId: 4, due: later, dataJSON: try Self.json(["note": Self.hostileText]))
            )
            for user in 10...12 { _ = try await scheduler.scheduleJob(UntypedJobConfig(type: "sleep", userId: user, due: later, dataJSON: #"{"ms":1}"#)) }
            let toCancel = try await scheduler.scheduleJob(UntypedJobConfig(type: "echo", userId: 20, due: later, dataJSON: "{}"))

            let inspector = scheduler.inspector
            let settled = try await Self.eventually {
                let finished = try await inspector.counts()[.finished]
                let workers = try await inspector.liveWorkers().count
                return finished == 5 && workers == 1
            }
            #expect(settled, "the worker ran the chain and the two jobs, and announced itself")
            // In creation order, as the page shows it (finished order differs: failed jobs are kept longer).
            let chain = try await inspector.jobs(state: .finished, type: "flaky", userId: 1)
                .sorted { ($0.createdAt, $0.id) < ($1.createdAt, $1.id) }.map(\.id)
            #expect(chain.count == 3 && chain.first == flaky.id)
            let workerId = try #require(try await inspector.liveWorkers().first?.id)
            let counts = try await inspector.counts()

            let dashboardLog = logDirectory.appendingPathComponent("dashboard.log").path
            let dashboard = try ChildProcess.spawn(
                BrowserEnvironment.conveyor, arguments: ["dashboard", "--port", "0"] + common, standardOutput: dashboardLog
            )
            defer { dashboard.signal(SIGKILL) }
            var base: String?
            let listening = try await Self.eventually {
                let log = (try? String(contentsOfFile: dashboardLog, encoding: .utf8)) ?? ""
                base = log.firstMatch(of: /listening on (http:\/\/127\.0\.0\.1:\d+)\//).map { String($0.1) }
                return base != nil
            }
            #expect(listening, "dashboard did not start: \((try? String(contentsOfFile: dashboardLog, encoding: .utf8)) ?? "")")
            // A second dashboard that requires a token.
            let token = "browser-test-token-\(UInt64.random(in: 0...UInt64.max))"
            let tokenPath = logDirectory.appendingPathComponent("token").path
            FileManager.default.createFile(atPath: tokenPath, contents: Data(token.utf8))
            let guardedLog = logDirectory.appendingPathComponent("dashboard-token.log").path
            let guarded = try ChildProcess.spawn(
                BrowserEnvironment.conveyor, arguments: ["dashboard", "--port", "0", "--token-file", tokenPath] + common,
                standardOutput: guardedLog
            )
            defer { guarded.signal(SIGKILL) }
            var guardedBase: String?
            let guardedListening = try await Self.eventually {
                let log = (try? String(contentsOfFile: guardedLog, encoding: .utf8)) ?? ""
                guardedBase = log.firstMatch(of: /listening on (http:\/\/127\.0\.0\.1:\d+)\//).map { String($0.1) }
                return guardedBase != nil
            }
            #expect(guardedListening)
            let scenario: [String: Any] = [
                "url": try #require(base), "screenshots": ProcessInfo.processInfo.environment["CONVEYOR_SCREENSHOT_DIR"] ?? logDirectory.path,
                "hostileType": Self.hostileType, "hostileText": Self.hostileText, "hostileJobId": hostile.id,
                "counts": ["pending": counts[.pending]!, "running": counts[.running]!, "finished": counts[.finished]!],
                "workerId": workerId, "filterType": "sleep", "filterTypeCount": 3, "filterUser": 11, "chain": chain,
                "cancelJobId": toCancel.id, "rerunJobId": failed.id, "deleteJobId": succeeded.id,
                "tokenUrl": try #require(guardedBase), "token": token,
            ]
            let scenarioPath = logDirectory.appendingPathComponent("scenario.json")
            try JSONSerialization.data(withJSONObject: scenario).write(to: scenarioPath)
            let script = BrowserEnvironment.packageRoot.appendingPathComponent("Tests/browser/dashboard_browser.py").path
            let (status, output) = try await Self.run(python, [script, scenarioPath.path], log: logDirectory.appendingPathComponent("browser.log"))
            #expect(status == 0, "browser checks failed:\n\(output)")
            let lastLine = output.split(separator: "\n").last.map(String.init) ?? "{}"
            let done = (try? JSONSerialization.jsonObject(with: Data(lastLine.utf8))) as? [String: Int] ?? [:]

            // What the clicks changed in Redis.
            let cancelled = try #require(try await scheduler.job(id: toCancel.id))
            #expect(cancelled.state == .finished && cancelled.success == false && cancelled.result["cancelled"] == .bool(true))
            let rerunId = try #require(done["rerunNewJobId"])
            let rerun = try #require(try await scheduler.job(id: rerunId))
            #expect(rerun.rescheduledFromJob == failed.id && rerun.type == "fail")
            #expect(try await scheduler.job(id: succeeded.id) == nil, "deleted")
            #expect(try await scheduler.job(id: hostile.id)?.state == .pending, "hostile job untouched")
            dashboard.signal(SIGTERM)
            await dashboard.waitForExit(timeout: .seconds(10))
            worker.signal(SIGTERM)
            await worker.waitForExit(timeout: .seconds(20))
        }
    }

    static func json(_ object: [String: String]) throws -> String {
        String(decoding: try JSONSerialization.data(withJSONObject: object), as: UTF8.self)
    }

    static func eventually(timeout: Duration = .seconds(30), _ condition: () async throws -> Bool) async throws -> Bool {
        let deadline = ContinuousClock.now + timeout
        while ContinuousClock.now < deadline {
            if try await condition() { return true }
            try await Task.sleep(for: .milliseconds(50))
        }
        return try await condition()
    }

    /// Runs a process to its end without blocking a thread; output (stdout
    /// and stderr) goes through a file.
    static func run(_ executable: String, _ arguments: [String], log: URL) async throws -> (Int32, String) {
        FileManager.default.createFile(atPath: log.path, contents: nil)
        let handle = try FileHandle(forWritingTo: log)
        let process = Process()
        process.executableURL = URL(fileURLWithPath: executable)
        process.arguments = arguments
        process.standardOutput = handle
        process.standardError = handle
        let status: Int32 = try await withCheckedThrowingContinuation { continuation in
            process.terminationHandler = { continuation.resume(returning: $0.terminationStatus) }
            do {
                try process.run()
            } catch {
                process.terminationHandler = nil
                continuation.resume(throwing: error)
            }
        }
        try handle.close()
        return (status, (try? String(contentsOf: log, encoding: .utf8)) ?? "")
    }
}
