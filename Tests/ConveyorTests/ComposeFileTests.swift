import ConveyorCLI
import Foundation
import Testing
import Yams

/// Docker does not run on our machines; this checks what can be checked
/// without it: the compose file's shape, and that every `conveyor` service
/// command parses with the CLI's own argument parser.
@Suite("docker-compose.yml")
struct ComposeFileTests {
    static var repositoryRoot: URL {
        URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent().deletingLastPathComponent()
    }

    static func compose() throws -> [String: Any] {
        let text = try String(contentsOf: repositoryRoot.appendingPathComponent("docker-compose.yml"), encoding: .utf8)
        return try #require(try Yams.load(yaml: text) as? [String: Any])
    }

    @Test("redis runs with AOF and noeviction")
    func redisService() throws {
        let services = try #require(try Self.compose()["services"] as? [String: Any])
        let redis = try #require(services["redis"] as? [String: Any])
        let command = try #require(redis["command"] as? [String])
        #expect((redis["image"] as? String)?.hasPrefix("redis:") == true)
        #expect(command.joined(separator: " ").contains("--appendonly yes"))
        #expect(command.joined(separator: " ").contains("--maxmemory-policy noeviction"))
    }

    @Test("every service built from the Dockerfile runs a valid conveyor command against REDIS_URL")
    func conveyorServices() throws {
        let services = try #require(try Self.compose()["services"] as? [String: Any])
        let built = services.filter { ($0.value as? [String: Any])?["build"] != nil }
        #expect(built.keys.contains("worker") && built.keys.contains("archiver"))
        for (name, value) in built {
            let service = try #require(value as? [String: Any])
            let command = try #require(service["command"] as? [String], "\(name) has no command list")
            try ConveyorCLI.validate(arguments: command)
            let environment = try #require(service["environment"] as? [String: Any], "\(name) has no environment")
            let url = try #require(environment["REDIS_URL"] as? String)
            #expect(url.hasPrefix("redis://redis:"), "\(name) must reach the compose redis service")
        }
        let archiver = try #require(services["archiver"] as? [String: Any])
        let volumes = try #require(archiver["volumes"] as? [String])
        let command = try #require(archiver["command"] as? [String])
        let historyDirectory = try #require(command.firstIndex(of: "--history-dir").map { command[$0 + 1] })
        #expect(volumes.contains { $0.hasSuffix(":" + historyDirectory) && !$0.hasPrefix("/") && !$0.hasPrefix(".") }, "the history is on a named volume")
        let named = try #require(try Self.compose()["volumes"] as? [String: Any])
        #expect(volumes.allSatisfy { named.keys.contains(String($0.split(separator: ":")[0])) })
        let dockerfile = try String(contentsOf: Self.repositoryRoot.appendingPathComponent("Dockerfile"), encoding: .utf8)
        #expect(dockerfile.contains("libhiredis-dev") && dockerfile.contains("libhiredis0.14"))
        #expect(dockerfile.contains("ENTRYPOINT [\"conveyor\"]"))
    }
}
