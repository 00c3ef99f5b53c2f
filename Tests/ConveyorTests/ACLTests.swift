import ConveyorRedis
import ConveyorTesting
import Foundation
import Testing

@testable import Conveyor

/// The ACL line README's "Production Redis" section documents, applied word
/// for word to a private redis-server: it must be enough for everything
/// Conveyor does, and nothing outside the namespace.
@Suite("ACL users", .serialized)
struct ACLTests {
    static let repository = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent().deletingLastPathComponent()

    /// The words of README's one `ACL SETUSER` line.
    static func documentedLine() throws -> [String] {
        let text = try String(contentsOf: repository.appendingPathComponent("README.md"), encoding: .utf8)
        let lines = text.split(separator: "\n").filter { $0.hasPrefix("ACL SETUSER ") }
        try #require(lines.count == 1, "README must show exactly one ACL SETUSER line, found \(lines.count)")
        return lines[0].split(separator: " ").map(String.init)
    }

    /// The documented line for another user, password and namespace (glob
    /// characters in the namespace escaped, as the docs say to).
    static func line(user: String, password: String, namespace: String, dropping: Set<String> = []) throws -> [String] {
        let words = try documentedLine()
        try #require(words[2] == "conveyor" && words.contains(">change-me") && words.contains("~conveyor:*"))
        return words.enumerated().compactMap { index, word in
            if dropping.contains(word) { return nil }
            if index == 2 { return user }
            if word == ">change-me" { return ">" + password }
            if word == "~conveyor:*" { return "~" + globEscaped(namespace) + ":*" }
            return word
        }
    }

    static func globEscaped(_ text: String) -> String {
        String(text.flatMap { "*?[]\\".contains($0) ? ["\\", $0] : [$0] })
    }

    /// A private server with the documented user created on it; `body` gets an
    /// admin client (the default user, on the plain socket) and the restricted one.
    static func withRestrictedUser(
        namespace: String, dropping: Set<String> = [], _ body: (_ admin: RedisClient, _ restricted: RedisClient) async throws -> Void
    ) async throws {
        try await withRestrictedUser(namespace: namespace, dropping: dropping) { admin, restricted, _ in try await body(admin, restricted) }
    }

    /// As above; `body` also gets the restricted user's URL, for `conveyor` processes.
    static func withRestrictedUser(
        namespace: String, dropping: Set<String> = [],
        _ body: (_ admin: RedisClient, _ restricted: RedisClient, _ url: String) async throws -> Void
    ) async throws {
        let server = try await RedisServerProcess.start()
        let admin = RedisClient(configuration: try RedisConfiguration(url: server.socketURL))
        let password = "pw-\(UUID().uuidString)"
        let words = try line(user: "conveyor-app", password: password, namespace: namespace, dropping: dropping)
        #expect(try await admin.send(RedisCommand("ACL", argumentList: Array(words.dropFirst()))) == .simpleString("OK"))
        var configuration = try RedisConfiguration(url: "redis://conveyor-app:\(password)@127.0.0.1:\(server.port)")
        configuration.commandTimeout = .seconds(30)
        let restricted = RedisClient(configuration: configuration)
        do {
            try await body(admin, restricted, "redis://conveyor-app:\(password)@127.0.0.1:\(server.port)")
        } catch {
            await restricted.shutdown()
            await admin.shutdown()
            await server.stop()
            throw error
        }
        await restricted.shutdown()
        await admin.shutdown()
        await server.stop()
    }

    static func isDenied(_ client: RedisClient, _ command: RedisCommand) async -> Bool {
        do {
            _ = try await client.send(command)
            return false
        } catch {
            return error.code == .server
                && (error.serverErrorPrefix == "NOPERM" || error.message.contains("can't run") || error.message.contains("can't access"))
        }
    }

    @Test(
        "schedule, worker (claims, leases, recovery, retries), cancel, inspection and archiver run as a user restricted to the documented line; nothing was denied"
    )
    func pathAsRestrictedUser() async throws {
        let namespace = "acl-\(UUID().uuidString)"
        try await Self.withRestrictedUser(namespace: namespace) { admin, restricted in
            _ = try await admin.send("ACL", "LOG", "RESET")
            let outcome = try await ProductionPath.run(restricted, namespace: namespace)
            ProductionPath.expectComplete(outcome)
            // Any command the line lacks would have been refused and logged.
            let denied = try await admin.send("ACL", "LOG").array ?? []
            #expect(denied.isEmpty, "denied: \(denied)")
        }
    }

    @Test(
        "the CLI as the restricted user: schedule, cron, jobs show/list/counts/cancel, ping, a worker with its archiver, archiver --status/--claims; nothing was denied"
    )
    func commandLineAsRestrictedUser() async throws {
        let namespace = "acl-\(UUID().uuidString)"
        try await Self.withRestrictedUser(namespace: namespace) { admin, restricted, url in
            _ = try await admin.send("ACL", "LOG", "RESET")
            let common = ["--redis", url, "--namespace", namespace]
            let history = ArchiverTestSupport.temporaryDirectory("acl-history")
            defer { try? FileManager.default.removeItem(atPath: history) }
            var outputs: [String] = []
            for arguments in [
                ["ping", "--count", "1"], ["schedule", "echo", "--user", "1", "--data", #"{"a":1}"#, "--json"],
                ["schedule", "echo", "--user", "2", "--due", "+1h", "--json"], ["cron", "echo", "0 9 * * *", "--user", "3", "--json"],
                ["jobs", "list", "--json"], ["jobs", "counts"],
            ] {
                outputs.append(try await ConveyorProcess.output(arguments + common))
            }
            #expect(outputs[0].contains("PONG"), "\(outputs[0])")
            let scheduler = JobScheduler(client: restricted, configuration: .init(keys: try ConveyorKeys(namespace: namespace)))
            let pending = try await scheduler.jobs(state: .pending, limit: 10)
            #expect(pending.count == 3, "\(outputs)")
            let later = try #require(pending.first { $0.userId == 2 })
            let cron = try #require(pending.first { $0.userId == 3 })
            outputs.append(try await ConveyorProcess.output(["jobs", "show", "\(later.id)", "--json"] + common))
            outputs.append(try await ConveyorProcess.output(["jobs", "cancel", "\(later.id)"] + common))
            outputs.append(try await ConveyorProcess.output(["jobs", "cancel", "\(cron.id)"] + common))
            let worker = try ConveyorProcess.start(["worker", "--archiver", "--history-dir", history] + common)
            let drained = try await eventually(timeout: .seconds(30)) { try await scheduler.counts().values.allSatisfy { $0 == 0 } }
            #expect(drained, "worker log: \(worker.log)")
            worker.signal(SIGTERM)
            await worker.waitForExit(timeout: .seconds(15))
            outputs.append(try await ConveyorProcess.output(["archiver", "--status", "--history-dir", history] + common))
            outputs.append(try await ConveyorProcess.output(["archiver", "--claims"] + common))
            #expect(outputs.last?.contains("no claims") == true, "\(outputs.last ?? "")")
            for output in outputs { #expect(!output.contains("Error"), "\(output)") }
            let denied = try await admin.send("ACL", "LOG").array ?? []
            #expect(denied.isEmpty, "denied: \(denied)")
        }
    }

    @Test("the restricted user cannot touch a key outside its namespace, not even through a script, nor run admin commands")
    func nothingOutside() async throws {
        let namespace = "acl-\(UUID().uuidString)"
        try await Self.withRestrictedUser(namespace: namespace) { admin, restricted in
            _ = try await admin.send("SET", "other:victim", "untouched")
            _ = try await admin.send("HSET", "\(namespace)x:{p0}:job:1", "type", "neighbour")
            let outside: [RedisCommand] = [
                RedisCommand("GET", "other:victim"), RedisCommand("SET", "other:victim", "changed"), RedisCommand("DEL", "other:victim"),
                RedisCommand("HSET", "\(namespace)x:{p0}:job:1", "type", "changed"), RedisCommand("HGETALL", "\(namespace)x:{p0}:job:1"),
                RedisCommand("EVAL", "return redis.call('SET', 'other:victim', 'changed')", 1, "\(namespace):k"),
                RedisCommand("EVAL", "return redis.call('DEL', KEYS[1])", 1, "other:victim"),
                RedisCommand("KEYS", "*"), RedisCommand("SCAN", 0), RedisCommand("FLUSHALL"), RedisCommand("FLUSHDB"),
                RedisCommand("CONFIG", "GET", "*"), RedisCommand("SCRIPT", "FLUSH"), RedisCommand("ACL", "LIST"),
                RedisCommand("SUBSCRIBE", "x"), RedisCommand("SHUTDOWN"),
            ]
            for command in outside {
                #expect(await Self.isDenied(restricted, command), "\(command.name) was allowed")
            }
            // Inside the namespace the same kinds of commands work.
            #expect(try await restricted.send("SET", "\(namespace):probe", "1") == .simpleString("OK"))
            #expect(try await restricted.send("EVAL", "return redis.call('DEL', KEYS[1])", 1, "\(namespace):probe") == .integer(1))
            #expect(try await admin.send("GET", "other:victim").string == "untouched")
            #expect(try await admin.send("HGET", "\(namespace)x:{p0}:job:1", "type").string == "neighbour")
        }
    }

    @Test("TIME, which the scripts call, needs its own grant: without +time nothing is scheduled or claimed and ACL LOG names TIME")
    func timeNeedsAGrant() async throws {
        let namespace = "acl-\(UUID().uuidString)"
        try await Self.withRestrictedUser(namespace: namespace, dropping: ["+time"]) { admin, restricted in
            let keys = try ConveyorKeys(namespace: namespace)
            // Scheduling reads Redis's clock too: refused before any write.
            let refused = JobScheduler(client: restricted, configuration: .init(keys: keys))
            await #expect(throws: ConveyorError.self) {
                try await refused.scheduleJob(UntypedJobConfig(type: KeyLikeNameJob.typeName, userId: 2, dataJSON: "{}"))
            }
            #expect(try await admin.send("ZCARD", keys.partition(0).due).int == 0, "nothing was scheduled")
            let scheduler = JobScheduler(client: admin, configuration: .init(keys: keys))
            let job = try await scheduler.scheduleJob(UntypedJobConfig(type: KeyLikeNameJob.typeName, userId: 1, dataJSON: "{}"))
            var registry = JobRegistry<WorkerTestApp>()
            registry.register(KeyLikeNameJob.self)
            var configuration = WorkerPoolConfiguration(concurrency: 1, keys: keys)
            configuration.maxIdleWait = .milliseconds(100)
            let pool = WorkerPool(client: restricted, registry: registry, app: WorkerTestApp(), configuration: configuration)
            let running = Task { try await pool.run() }
            let denied = try await eventually(timeout: .seconds(10)) {
                let log = try await admin.send("ACL", "LOG").array ?? []
                return log.contains { entry in
                    let fields = entry.array?.compactMap(\.string) ?? []
                    return zip(fields, fields.dropFirst()).contains { $0 == "object" && $1.lowercased() == "time" }
                }
            }
            #expect(denied, "ACL LOG shows no TIME denial")
            #expect(try await scheduler.job(id: job.id)?.state == .pending)
            pool.beginShutdown()
            try? await running.value
        }
    }

    @Test("every command the Lua scripts call is granted by the documented line")
    func scriptsCommandsGranted() throws {
        let granted = Set(try Self.documentedLine().filter { $0.hasPrefix("+") }.map { $0.dropFirst().lowercased() })
        let lua = Self.repository.appendingPathComponent("lua")
        var files = try FileManager.default.contentsOfDirectory(atPath: lua.path).filter { $0.hasSuffix(".lua") }.map { "lua/" + $0 }
        files += try FileManager.default.contentsOfDirectory(atPath: lua.appendingPathComponent("includes").path)
            .filter { $0.hasSuffix(".lua") }.map { "lua/includes/" + $0 }
        var called: [String: String] = [:]
        let pattern = /(?:rcall|redis\.call|redis\.pcall)\(\s*['"]([A-Za-z]+)['"]/
        for file in files {
            let source = try String(contentsOf: Self.repository.appendingPathComponent(file), encoding: .utf8)
            for match in source.matches(of: pattern) { called[String(match.1).lowercased()] = file }
            // A call whose command is not a literal could hide anything: there must be none.
            #expect(!source.contains(/(?:rcall|redis\.call|redis\.pcall)\(\s*[^'"\s]/), "\(file) calls Redis with a computed command name")
        }
        #expect(!called.isEmpty)
        for (command, file) in called.sorted(by: { $0.key < $1.key }) {
            #expect(granted.contains(command), "\(file) calls \(command.uppercased()), which the README's ACL line does not grant")
        }
    }
}
