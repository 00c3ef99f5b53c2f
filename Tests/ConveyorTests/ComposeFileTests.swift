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
        #expect(built.keys.contains("worker") && built.keys.contains("archiver") && built.keys.contains("dashboard"))
        for (name, value) in built {
            let service = try #require(value as? [String: Any])
            let command = try #require(service["command"] as? [String], "\(name) has no command list")
            try Self.validate(command)
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

    /// Parses `command` with the CLI's parser; a `--token-file` under
    /// /run/secrets (which exists only inside the container) is replaced by
    /// a temporary file holding a token, since `dashboard` reads it to validate.
    static func validate(_ command: [String]) throws {
        var command = command
        guard let index = command.firstIndex(of: "--token-file"), command[index + 1].hasPrefix("/run/secrets/") else {
            return try ConveyorCLI.validate(arguments: command)
        }
        let file = FileManager.default.temporaryDirectory.appendingPathComponent("compose-token-\(UUID().uuidString)")
        try Data("0123456789abcdef0123456789abcdef\n".utf8).write(to: file)
        defer { try? FileManager.default.removeItem(at: file) }
        command[index + 1] = file.path
        try ConveyorCLI.validate(arguments: command)
    }

    @Test("the dashboard is published on loopback only, listens on all addresses in its container, and has a token secret")
    func dashboardService() throws {
        let compose = try Self.compose()
        let services = try #require(compose["services"] as? [String: Any])
        let dashboard = try #require(services["dashboard"] as? [String: Any])
        let command = try #require(dashboard["command"] as? [String])
        #expect(command.first == "dashboard")
        func value(_ flag: String) -> String? { command.firstIndex(of: flag).map { command[$0 + 1] } }
        #expect(value("--bind") == "0.0.0.0", "reachable through the published port")
        let port = try #require(value("--port"))
        #expect(dashboard["ports"] as? [String] == ["127.0.0.1:\(port):\(port)"], "published on the host's loopback only")
        // The token: a compose secret, declared with a file and mounted where --token-file reads it.
        let secretNames = try #require(dashboard["secrets"] as? [String])
        let tokenFile = try #require(value("--token-file"))
        #expect(secretNames.contains { tokenFile == "/run/secrets/\($0)" })
        let secrets = try #require(compose["secrets"] as? [String: Any])
        for name in secretNames {
            let secret = try #require(secrets[name] as? [String: Any], "secret \(name) is not declared")
            #expect((secret["file"] as? String)?.isEmpty == false)
        }
        let ignored = try String(contentsOf: Self.repositoryRoot.appendingPathComponent(".gitignore"), encoding: .utf8)
        for name in secretNames {
            let file = try #require((secrets[name] as? [String: Any])?["file"] as? String)
            let bare = file.hasPrefix("./") ? String(file.dropFirst(2)) : file
            #expect(ignored.split(separator: "\n").contains { $0 == bare || $0 == "/" + bare }, "the token file is not committed")
        }
        // The history pages read the archiver's volume.
        let historyDirectory = try #require(value("--history-dir"))
        let volumes = try #require(dashboard["volumes"] as? [String])
        #expect(volumes.contains { $0.split(separator: ":").dropFirst().first.map(String.init) == historyDirectory })
        // Without the token the command is refused: binding beyond loopback needs one.
        var withoutToken = command
        if let index = withoutToken.firstIndex(of: "--token-file") { withoutToken.removeSubrange(index...(index + 1)) }
        #expect(throws: (any Error).self) { try ConveyorCLI.validate(arguments: withoutToken) }
    }

    @Test("two worker replicas")
    func workerReplicas() throws {
        let services = try #require(try Self.compose()["services"] as? [String: Any])
        let worker = try #require(services["worker"] as? [String: Any])
        let deploy = try #require(worker["deploy"] as? [String: Any])
        #expect(deploy["replicas"] as? Int == 2)
        #expect(worker["ports"] == nil, "replicas cannot share a published port")
    }
}
