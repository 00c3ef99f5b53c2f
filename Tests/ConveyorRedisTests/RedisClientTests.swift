import ConveyorTesting
import ConveyorRedis
import ConveyorTestSupport
import Foundation
import NIOCore
import Testing

@Suite("Redis client against a real server")
struct RedisClientTests {
    @Test("every reply type round-trips")
    func replyTypes() async throws {
        try await TestRedis.withClient { client, ns in
            #expect(try await client.send("PING") == .simpleString("PONG"))
            #expect(try await client.send("SET", "\(ns):s", "value") == .simpleString("OK"))
            #expect(try await client.send("GET", "\(ns):s").string == "value")
            #expect(try await client.send("INCRBY", "\(ns):n", 41) == .integer(41))
            #expect(try await client.send("GET", "\(ns):missing") == .null)
            _ = try await client.send("RPUSH", "\(ns):l", "a", "b", "c")
            #expect(try await client.send("LRANGE", "\(ns):l", 0, -1).array?.compactMap(\.string) == ["a", "b", "c"])
            let nested = try await client.send("EVAL", "return {1, {'two', {3}}, redis.status_reply('ok')}", 0)
            #expect(nested == .array([.integer(1), .array([.bulkString(ByteBuffer(string: "two")), .array([.integer(3)])]), .simpleString("ok")]))
        }
    }

    @Test("a server error reply throws a server error with its prefix")
    func serverError() async throws {
        try await TestRedis.withClient { client, ns in
            _ = try await client.send("SET", "\(ns):s", "text")
            do {
                _ = try await client.send("LPUSH", "\(ns):s", "x")
                Issue.record("expected WRONGTYPE")
            } catch {
                #expect((error as? RedisError)?.code == .server)
                #expect((error as? RedisError)?.serverErrorPrefix == "WRONGTYPE")
            }
            // The connection stays usable after an error reply.
            #expect(try await client.send("PING") == .simpleString("PONG"))
        }
    }

    @Test("bulk strings are binary-safe, including NUL bytes and 1 MiB values")
    func binarySafety() async throws {
        try await TestRedis.withClient { client, ns in
            let binary: [UInt8] = [0, 0, 13, 10, 36, 42, 255, 0]
            _ = try await client.send("SET", "\(ns):bin", binary)
            #expect(try await client.send("GET", "\(ns):bin").bytes == binary)

            var big = [UInt8](repeating: 0, count: 1 << 20)
            for index in big.indices { big[index] = UInt8(truncatingIfNeeded: index &* 2_654_435_761 >> 7) }
            _ = try await client.send("SET", "\(ns):big", big)
            #expect(try await client.send("STRLEN", "\(ns):big") == .integer(1 << 20))
            #expect(try await client.send("GET", "\(ns):big").bytes == big)
        }
    }

    @Test("10,000 pipelined commands on one connection complete in order")
    func pipelineInOrder() async throws {
        try await TestRedis.withClient(poolSize: 1) { client, ns in
            let commands = (0..<10_000).map { _ in RedisCommand("INCR", "\(ns):counter") }
            let replies = try await client.pipeline(commands)
            #expect(replies == (1...10_000).map { .integer($0) })
        }
    }

    @Test("a task preferring the client's task executor runs on its event loop, also after each awaited reply")
    func taskExecutorRunsOnTheEventLoop() async throws {
        try await TestRedis.withClient(poolSize: 4) { client, ns in
            let executor = client.taskExecutor
            let (results, onLoop) = try await withTaskExecutorPreference(executor) {
                var results: [RESPValue] = []
                var onLoop = executor.eventLoop.inEventLoop
                for _ in 0..<200 {
                    results.append(try await client.send("INCR", "\(ns):counter"))
                    onLoop = onLoop && executor.eventLoop.inEventLoop
                }
                return (results, onLoop)
            }
            #expect(onLoop)
            #expect(results == (1...200).map { .integer($0) })
            #expect(!executor.eventLoop.inEventLoop)
        }
    }

    @Test("10,000 concurrent senders sharing one connection each get their own reply")
    func concurrentSendersOneConnection() async throws {
        try await TestRedis.withClient(poolSize: 1) { client, ns in
            try await withThrowingTaskGroup(of: Bool.self) { group in
                for index in 0..<10_000 {
                    group.addTask {
                        let reply = try await client.send("ECHO", "\(ns)-\(index)")
                        return reply.string == "\(ns)-\(index)"
                    }
                }
                var matched = 0
                for try await ok in group where ok { matched += 1 }
                #expect(matched == 10_000)
            }
        }
    }

    @Test("SCRIPT FLUSH mid-run: the next script call reloads and succeeds")
    func noscriptRecovery() async throws {
        // A private server: flushing the shared one would disturb other tests.
        let server = try await RedisServerProcess.start()
        defer { Task { await server.stop() } }
        let client = RedisClient(configuration: try RedisConfiguration(url: server.url))
        defer { Task { await client.shutdown() } }
        let ns = "flush"
        do {
            let script = RedisScript(name: "incrTwice", source: "redis.call('INCR', KEYS[1]); return redis.call('INCR', KEYS[1])")
            let call = RedisScriptCall(script, keys: ["\(ns):k"], arguments: [])
            #expect(try await client.eval(call) == .integer(2))
            _ = try await client.send("SCRIPT", "FLUSH")
            #expect(try await client.eval(call) == .integer(4))
            _ = try await client.send("SCRIPT", "FLUSH")
            let replies = try await client.evalPipelined(Array(repeating: call, count: 3))
            #expect(replies == [.integer(6), .integer(8), .integer(10)])
        }
    }

    @Test("a blocking command on its dedicated connection does not stall others")
    func blockingIsolated() async throws {
        try await TestRedis.withClient(poolSize: 1) { client, ns in
            async let popped = client.send(RedisCommand("BLPOP", "\(ns):queue", 30), timeout: .seconds(40))
            try await Task.sleep(for: .milliseconds(100))
            // These run on the pooled connection while BLPOP blocks its own.
            for _ in 0..<100 { _ = try await client.send("PING") }
            _ = try await client.send("RPUSH", "\(ns):queue", "job")
            #expect(try await popped.array?.compactMap(\.string) == ["\(ns):queue", "job"])
        }
    }

    @Test("a late reply times out with a timeout error; the connection closes and the pool recovers")
    func commandTimeout() async throws {
        let connection = try await RedisConnection.connect(configuration: try await TestRedis.configuration())
        let clock = ContinuousClock()
        let started = clock.now
        do {
            _ = try await connection.send(RedisCommand("BLPOP", "conveyor-test-never-pushed-\(UUID())", 10), timeout: .milliseconds(100))
            Issue.record("expected a timeout")
        } catch {
            #expect(error.code == .timeout)
        }
        #expect(clock.now - started < .seconds(5), "the timeout, not the server's 10 s block, ended the wait")
        try await Task.sleep(for: .milliseconds(50))
        #expect(!connection.isActive, "a connection whose replies are out of step must close")

        try await TestRedis.withClient(poolSize: 1) { client, _ in
            // A busy script keeps the reply back without blocking the server's clock.
            let slow = RedisCommand("EVAL", "local x = 0; for i = 1, 60000000 do x = x + i end; return 1", 0)
            do {
                _ = try await client.send(slow, timeout: .milliseconds(20))
                Issue.record("expected a timeout")
            } catch {
                #expect((error as? RedisError)?.code == .timeout)
            }
            var recovered = false
            for _ in 0..<100 where !recovered {
                recovered = (try? await client.send("PING")) == .simpleString("PONG")
                if !recovered { try await Task.sleep(for: .milliseconds(50)) }
            }
            #expect(recovered)
        }
    }
}

@Suite("Connection failures", .serialized)
struct RedisConnectionFailureTests {
    @Test("a wrong password fails authentication without leaking it")
    func wrongPassword() async throws {
        let server = try await RedisServerProcess.start(.init(extraArguments: ["--requirepass", "right-password"]))
        defer { Task { await server.stop() } }
        let wrong = try RedisConfiguration(url: "redis://:wrong-password@127.0.0.1:\(server.port)")
        do {
            _ = try await RedisConnection.connect(configuration: wrong)
            Issue.record("expected authenticationFailed")
        } catch {
            #expect(error.code == .authenticationFailed)
            #expect(!"\(error)".contains("wrong-password") && !String(reflecting: error).contains("wrong-password"))
        }
        let none = try RedisConfiguration(url: "redis://127.0.0.1:\(server.port)")
        await #expect(throws: RedisError.self) { _ = try await RedisConnection.connect(configuration: none) }
        let right = try RedisConfiguration(url: "redis://:right-password@127.0.0.1:\(server.port)")
        let connection = try await RedisConnection.connect(configuration: right)
        #expect(try await connection.send(RedisCommand("PING")) == .simpleString("PONG"))
        await connection.close()
        await server.stop()
    }

    @Test("an unknown host fails with hostNotFound")
    func unknownHost() async throws {
        let configuration = try RedisConfiguration(url: "redis://no-such-host.invalid:6379")
        do {
            _ = try await RedisConnection.connect(configuration: configuration)
            Issue.record("expected hostNotFound")
        } catch {
            #expect(error.code == .hostNotFound)
        }
    }

    @Test("nothing listening fails with connectionRefused")
    func refused() async throws {
        let port = try await { () async throws -> Int in
            let server = try await RedisServerProcess.start()
            await server.stop()
            return server.port
        }()
        let configuration = try RedisConfiguration(url: "redis://127.0.0.1:\(port)")
        do {
            _ = try await RedisConnection.connect(configuration: configuration)
            Issue.record("expected connectionRefused")
        } catch {
            #expect(error.code == .connectionRefused)
        }
        let missingSocket = try RedisConfiguration(url: "unix:///nonexistent/redis.sock")
        do {
            _ = try await RedisConnection.connect(configuration: missingSocket)
            Issue.record("expected connectionRefused")
        } catch {
            #expect(error.code == .connectionRefused)
        }
    }

    @Test("unix socket and SELECT work")
    func unixSocketAndDatabase() async throws {
        let server = try await RedisServerProcess.start()
        let client = RedisClient(configuration: try RedisConfiguration(url: "unix://\(server.socketPath)?db=5"))
        _ = try await client.send("SET", "where", "db5")
        let tcp = RedisClient(configuration: try RedisConfiguration(url: "\(server.url)/5"))
        #expect(try await tcp.send("GET", "where").string == "db5")
        let db0 = RedisClient(configuration: try RedisConfiguration(url: server.url))
        #expect(try await db0.send("GET", "where") == .null)
        await client.shutdown()
        await tcp.shutdown()
        await db0.shutdown()
        await server.stop()
    }

    @Test("server restarted mid-run: commands fail fast during the outage, then the client reconnects")
    func serverRestart() async throws {
        let server = try await RedisServerProcess.start()
        var configuration = try RedisConfiguration(url: server.url)
        configuration.poolSize = 2
        configuration.reconnectBaseDelay = .milliseconds(20)
        configuration.reconnectMaxDelay = .milliseconds(200)
        configuration.connectTimeout = .seconds(1)
        let client = RedisClient(configuration: configuration)
        #expect(try await client.send("SET", "k", "before") == .simpleString("OK"))

        await server.kill()
        let clock = ContinuousClock()
        for _ in 0..<20 {
            let started = clock.now
            do {
                _ = try await client.send("PING")
                Issue.record("a command succeeded while the server was down")
            } catch {
                #expect([.connectionClosed, .connectionRefused].contains(error.code), "got \(error)")
            }
            #expect(clock.now - started < .seconds(2), "a command hung during the outage")
        }

        let restarted = try await RedisServerProcess.start(.init(port: server.port, directory: server.directory))
        var recovered = false
        for _ in 0..<100 where !recovered {
            if (try? await client.send("PING")) == .simpleString("PONG") { recovered = true }
            try await Task.sleep(for: .milliseconds(50))
        }
        #expect(recovered)
        #expect(try await client.send("SET", "k", "after") == .simpleString("OK"))
        await client.shutdown()
        await restarted.stop()
    }
}
