import ConveyorRedis
import ConveyorTesting
import Foundation
import Testing

@testable import Conveyor

/// The Redis password, from the URL, a file or the environment, never shows in
/// what `conveyor` prints: errors, logs (at trace level), `--help`, `--json`.
@Suite("Secrets", .serialized)
struct SecretTests {
    static func file(_ content: String) throws -> String {
        let path = FileManager.default.temporaryDirectory.appendingPathComponent("conveyor-secret-\(UUID().uuidString)").path
        try content.write(toFile: path, atomically: true, encoding: .utf8)
        return path
    }

    /// Runs `conveyor` and checks that none of `secrets` is in its output.
    static func run(
        _ arguments: [String], environment: [String: String] = [:], secrets: [String], sourceLocation: SourceLocation = #_sourceLocation
    ) async throws -> String {
        let output = try await ConveyorProcess.output(arguments, environment: environment)
        for secret in secrets {
            #expect(
                !output.contains(secret), "`conveyor \(arguments.prefix(2).joined(separator: " "))` printed a password: \(output)",
                sourceLocation: sourceLocation)
        }
        return output
    }

    @Test("wrong passwords (URL, --redis-password-file, REDIS_PASSWORD_FILE, REDIS_PASSWORD), failing connections and file errors never print the password")
    func failures() async throws {
        let server = try await RedisServerProcess.start()
        defer { Task { await server.stop() } }
        let right = "Right-\(UUID().uuidString)"
        let wrong = "Wrong-\(UUID().uuidString)"
        let admin = RedisClient(configuration: try RedisConfiguration(url: server.socketURL))
        _ = try await admin.send("ACL", "SETUSER", "app", "on", ">" + right, "~*", "+@all")
        _ = try await admin.send("ACL", "SETUSER", "default", "on", ">" + right)
        await admin.shutdown()
        let secrets = [right, wrong]
        let userURL = "redis://127.0.0.1:\(server.port)?user=app"
        let wrongFile = try Self.file(wrong + "\n")
        let rightFile = try Self.file(right + "\r\n")

        let cases: [(arguments: [String], environment: [String: String], expected: String)] = [
            (["ping", "--redis", "redis://app:\(wrong)@127.0.0.1:\(server.port)"], [:], "authenticationFailed"),
            (["ping", "--redis", userURL, "--redis-password-file", wrongFile], [:], "authenticationFailed"),
            (["jobs", "counts", "--redis", userURL], ["REDIS_PASSWORD_FILE": wrongFile], "authenticationFailed"),
            (["jobs", "list", "--json", "--redis", "redis://app:@127.0.0.1:\(server.port)"], ["REDIS_PASSWORD": wrong], "authenticationFailed"),
            (["schedule", "echo", "--user", "1", "--json", "--redis", "redis://127.0.0.1:\(server.port)"], [:], "requires a password"),
            // The right password, but nothing listens: the error names the endpoint only.
            (["ping", "--redis", "redis://127.0.0.1:1?user=app", "--redis-password-file", rightFile], [:], "connectionRefused"),
            (["ping", "--redis", "redis://app:\(right)@127.0.0.1:1"], [:], "connectionRefused"),
            (["ping", "--redis", "redis://app:\(right)@127.0.0.1:\(server.port)", "--redis-password-file", rightFile], [:], "given twice"),
            (["ping", "--redis", userURL, "--redis-password-file", "/nonexistent/\(right)"], [:], "does not exist"),
            (["ping", "--redis", userURL, "--redis-password-file", try Self.file(right + "\n" + wrong + "\n")], [:], "on one line"),
            (["ping", "--redis", "redis://app:\(right)@127.0.0.1:port"], [:], "port must be a number"),
            (["ping", "--redis", "redis://app:\(right)@127.0.0.1:\(server.port)", "--count", "x"], [:], "count"),
        ]
        for (arguments, environment, expected) in cases {
            var secretsHere = secrets
            // The nonexistent file's path contains the password by construction; its name must be shown.
            if arguments.contains("/nonexistent/\(right)") { secretsHere = [wrong] }
            let output = try await Self.run(arguments, environment: environment, secrets: secretsHere)
            #expect(output.contains(expected), "\(arguments.prefix(2)) printed: \(output)")
        }
    }

    @Test("with the right password from a file: ping, --json output, a worker and an archiver logging at trace level never print it; --help neither")
    func success() async throws {
        let server = try await RedisServerProcess.start()
        defer { Task { await server.stop() } }
        let password = "Pw-\(UUID().uuidString)"
        let admin = RedisClient(configuration: try RedisConfiguration(url: server.socketURL))
        _ = try await admin.send("ACL", "SETUSER", "app", "on", ">" + password, "~*", "+@all")
        let passwordFile = try Self.file(password + "\n")
        let namespace = "secret-\(UUID().uuidString)"
        let url = "redis://127.0.0.1:\(server.port)?user=app"
        let common = ["--redis", url, "--redis-password-file", passwordFile, "--namespace", namespace]

        let ping = try await Self.run(["ping", "--count", "1"] + common, secrets: [password])
        #expect(ping.contains("PONG") && ping.contains("server: redis://app:***@127.0.0.1:\(server.port)/0"), "\(ping)")
        let scheduled = try await Self.run(["schedule", "echo", "--user", "1", "--data", #"{"a":1}"#, "--json"] + common, secrets: [password])
        #expect(scheduled.contains(#""type":"echo""#), "\(scheduled)")
        // The password in the URL and in the environment behaves the same.
        let byEnvironment = try await Self.run(
            ["jobs", "list", "--json", "--namespace", namespace], environment: ["REDIS_URL": url, "REDIS_PASSWORD": password], secrets: [password]
        )
        #expect(byEnvironment.contains(#""type":"echo""#), "\(byEnvironment)")

        let historyDirectory = ArchiverTestSupport.temporaryDirectory("secret-history")
        let worker = try ConveyorProcess.start(
            ["worker", "--log-level", "trace", "--archiver", "--history-dir", historyDirectory] + common
        )
        let client = RedisClient(configuration: try RedisConfiguration(url: "redis://app:\(password)@127.0.0.1:\(server.port)"))
        let scheduler = JobScheduler(client: client, configuration: .init(keys: try ConveyorKeys(namespace: namespace)))
        let archived = try await eventually(timeout: .seconds(30)) { try await scheduler.counts().values.allSatisfy { $0 == 0 } }
        #expect(archived, "worker log: \(worker.log)")
        worker.signal(SIGTERM)
        await worker.waitForExit(timeout: .seconds(15))
        #expect(!worker.log.contains(password), "the worker's trace log holds the password")
        #expect(worker.log.contains("worker running"), "\(worker.log)")
        let status = try await Self.run(["archiver", "--status", "--history-dir", historyDirectory] + common, secrets: [password])
        #expect(!status.isEmpty)

        for command in [["--help"], ["worker", "--help"], ["ping", "--help"], ["jobs", "list", "--help"], ["demo", "--help"]] {
            let help = try await Self.run(command, environment: ["REDIS_URL": "redis://app:\(password)@h", "REDIS_PASSWORD": password], secrets: [password])
            #expect(help.contains("USAGE") || help.contains("SUBCOMMANDS"), "\(help)")
            if command.count > 1 {
                #expect(help.contains("--redis-password-file") && help.contains("--tls-ca-file"), "\(command): \(help)")
            }
        }
        await client.shutdown()
        await admin.shutdown()
    }
}
