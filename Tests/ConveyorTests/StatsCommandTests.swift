import ConveyorRedis
import Foundation
import Testing

@testable import Conveyor

/// `conveyor stats` as a real process against a real server.
@Suite("conveyor stats")
struct StatsCommandTests {
    @Test("--json prints the documented fields with what Redis holds")
    func json() async throws {
        try await TestRedis.withClient { client, ns in
            let url = try await TestRedis.url()
            let scheduler = JobScheduler(client: client, configuration: .init(keys: try ConveyorKeys(namespace: ns)))
            let late = try await scheduler.scheduleJob(UntypedJobConfig(type: "echo", userId: 1, due: Date().addingTimeInterval(-5)))
            _ = try await scheduler.scheduleJob(UntypedJobConfig(type: "noop", userId: 2, due: Date().addingTimeInterval(600)))
            let process = try ConveyorProcess.start(["stats", "--json", "--minutes", "3", "--redis", url, "--namespace", ns])
            await process.waitForExit()
            let object = try #require(try JSONSerialization.jsonObject(with: Data(process.log.utf8)) as? [String: Any], "\(process.log)")
            #expect(Set(object.keys) == ["time", "counts", "byType", "byTypeComplete", "oldestDue", "minutes", "workers"])
            #expect(object["counts"] as? [String: Int] == ["pending": 2, "running": 0, "finished": 0])
            let byType = try #require(object["byType"] as? [[String: Any]])
            #expect(byType.map { $0["type"] as? String } == ["echo", "noop"])
            let oldest = try #require(object["oldestDue"] as? [String: Any])
            #expect(oldest["id"] as? Int == late.id && (oldest["latenessMs"] as? Int ?? 0) >= 4000)
            #expect(Set(oldest.keys) == ["id", "type", "userId", "due", "latenessMs"])
            let minutes = try #require(object["minutes"] as? [[String: Any]])
            #expect(minutes.count == 3 && Set(minutes[0].keys) == ["minute", "ok", "failed", "interrupted"])
            #expect((object["workers"] as? [Any])?.isEmpty == true)
        }
    }

    @Test("--watch repeats plain blocks when the output is not a terminal; bad options are refused")
    func watch() async throws {
        try await TestRedis.withClient { _, ns in
            let url = try await TestRedis.url()
            let process = try ConveyorProcess.start(["stats", "--watch", "--interval", "0.2", "--redis", url, "--namespace", ns])
            try await Task.sleep(for: .seconds(2))
            process.signal(SIGTERM)
            await process.waitForExit()
            let blocks = process.log.components(separatedBy: "Conveyor at ").count - 1
            #expect(blocks >= 2, "\(process.log)")
            #expect(!process.log.contains("\u{1B}["), "no terminal control codes into a file")
            #expect(process.log.contains("live workers: 0"))
            let bad = try ConveyorProcess.start(["stats", "--minutes", "0", "--redis", url, "--namespace", ns])
            await bad.waitForExit()
            #expect(bad.log.contains("--minutes must be between 1 and 60"))
        }
    }
}
