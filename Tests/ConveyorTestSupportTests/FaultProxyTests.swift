import ConveyorRedis
import ConveyorTestSupport
import Foundation
import Synchronization
import Testing

/// The fault-injecting proxy, in front of the real test redis-server.
@Suite("FaultProxy")
struct FaultProxyTests {
    /// A proxy in front of the shared test server and a client that goes through it.
    static func withProxy(_ body: (FaultProxy, RedisClient, RedisClient, String) async throws -> Void) async throws {
        let direct = RedisClient(configuration: try await TestRedis.configuration(poolSize: 1))
        guard case .tcp(_, let port) = direct.configuration.endpoint else {
            Issue.record("the test server is not on TCP")
            return
        }
        let proxy = try await FaultProxy.start(upstreamPort: port)
        var configuration = try RedisConfiguration(url: proxy.url)
        configuration.poolSize = 1
        // Short: a command caught on a connection as it is reset times out and
        // is sent again well within sendEventually's 10 s.
        configuration.commandTimeout = .seconds(2)
        configuration.reconnectMaxDelay = .milliseconds(200)
        let client = RedisClient(configuration: configuration)
        let key = "test-\(UUID().uuidString):proxy"
        do {
            try await body(proxy, client, direct, key)
        } catch {
            Issue.record(error)
        }
        _ = try? await direct.send("DEL", key)
        await client.shutdown()
        await direct.shutdown()
        await proxy.stop()
    }

    /// Sends until a reply comes (the client fails fast while it reconnects), for at most 10 s.
    static func sendEventually(_ client: RedisClient, _ name: String, _ arguments: any RESPArgument...) async throws -> RESPValue {
        let deadline = ContinuousClock.now + .seconds(10)
        while true {
            do {
                return try await client.send(RedisCommand(name, arguments: arguments))
            } catch {
                if ContinuousClock.now > deadline { throw error }
                try await Task.sleep(for: .milliseconds(20))
            }
        }
    }

    @Test("commands and a 200-command pipeline pass through unchanged")
    func passThrough() async throws {
        try await Self.withProxy { proxy, client, direct, key async throws in
            try await client.send("SET", key, "through the proxy")
            #expect(try await direct.send("GET", key).string == "through the proxy")
            let replies = try await client.pipeline((1...200).map { _ in RedisCommand("INCR", arguments: [key + ":n"]) })
            #expect(replies.compactMap(\.int) == Array(1...200))
            _ = try await direct.send("DEL", key + ":n")
            #expect(proxy.faults.total == 0)
            #expect(proxy.openConnections == 1)
        }
    }

    @Test("a dropped reply fails the command on the client although the server ran it; the client then reconnects")
    func droppedReply() async throws {
        try await Self.withProxy { proxy, client, direct, key async throws in
            #expect(try await client.send("PING").string == "PONG")
            proxy.dropNextReplies()
            var failure: (any Error)?
            do { try await client.send("INCR", key) } catch { failure = error }
            #expect(failure != nil, "the lost reply surfaces as an error")
            #expect(try await direct.send("GET", key).string == "1", "the command ran; only its reply was lost")
            #expect(proxy.faults.droppedReplies == 1)
            #expect(try await Self.sendEventually(client, "INCR", key).int == 2)
            #expect(proxy.acceptedConnections == 2, "a new connection after the drop")
        }
    }

    @Test("reset closes every connection (RST); the client reconnects")
    func reset() async throws {
        try await Self.withProxy { proxy, client, _, key async throws in
            #expect(try await client.send("INCR", key).int == 1)
            let other = RedisClient(configuration: client.configuration)
            #expect(try await other.send("PING").string == "PONG")
            #expect(proxy.openConnections == 2)
            #expect(proxy.reset() == 2)
            #expect(proxy.faults.resets == 1)
            // ≥ 2: an INCR that reached Redis just as its connection was reset
            // may have run although its reply was lost, and is sent again.
            #expect(try await Self.sendEventually(client, "INCR", key).int ?? 0 >= 2)
            #expect(try await Self.sendEventually(other, "PING").string == "PONG")
            #expect(proxy.acceptedConnections == 4)
            await other.shutdown()
        }
    }

    @Test("a stall holds a reply until it ends; pause holds traffic until resume, nothing lost")
    func stallAndPause() async throws {
        try await Self.withProxy { proxy, client, _, key async throws in
            #expect(try await client.send("PING").string == "PONG")
            let start = ContinuousClock.now
            proxy.stall(for: .milliseconds(600))
            #expect(try await client.send("INCR", key).int == 1)
            #expect(ContinuousClock.now - start >= .milliseconds(550), "the reply waited for the stall")
            #expect(proxy.faults.stalls == 1)

            proxy.pause()
            let answered = Mutex(false)
            let pending = Task {
                let reply = try await client.send("INCR", key)
                answered.withLock { $0 = true }
                return reply
            }
            try await Task.sleep(for: .milliseconds(300))
            #expect(!answered.withLock { $0 }, "no reply while paused")
            proxy.resume()
            #expect(try await pending.value.int == 2)
            #expect(proxy.faults.total == 1, "pause is not a fault")
        }
    }

    @Test("random faults: bounded by count and time, the same seed gives the same faults, the client keeps working")
    func randomFaults() async throws {
        try await Self.withProxy { proxy, client, direct, key async throws in
            var configuration = FaultProxy.RandomFaults(seed: 42, meanInterval: .milliseconds(20), duration: .seconds(5), maxFaults: 6)
            configuration.weights = (drop: 0, stall: 1, reset: 1)
            configuration.stallMilliseconds = 1...5
            // No connection open: resets close none, so both runs see the same world.
            let first = await proxy.runRandomFaults(configuration)
            let second = await proxy.runRandomFaults(configuration)
            #expect(first.count == 6)
            #expect(first == second)
            configuration.seed = 43
            #expect(await proxy.runRandomFaults(configuration) != first)

            // Under drops, stalls and resets, INCRs with retries all land at least once.
            let faults = Task {
                await proxy.runRandomFaults(.init(seed: 7, meanInterval: .milliseconds(100), duration: .seconds(3), maxFaults: 10))
            }
            var acknowledged = 0
            for _ in 0..<50 {
                _ = try await Self.sendEventually(client, "INCR", key)
                acknowledged += 1
            }
            let injected = await faults.value
            #expect(!injected.isEmpty)
            #expect(acknowledged == 50)
            #expect(try await direct.send("GET", key).string.flatMap { Int($0) } ?? 0 >= 50)
        }
    }
}
