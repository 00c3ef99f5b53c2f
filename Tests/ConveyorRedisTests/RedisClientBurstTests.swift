import ConveyorTesting
import Foundation
import Logging
import NIOCore
import NIOPosix
import Testing

@testable import ConveyorRedis

/// The pool sends the commands of a burst on one connection (issue 14), so they
/// reach Redis in few writes; successive bursts take the connections in turn.
/// Each test has its own redis-server: `CLIENT ID` and `CLIENT KILL` name the
/// connections that carried the commands.
@Suite("Redis client: one connection per burst")
struct RedisClientBurstTests {
    private static func client(_ server: RedisServerProcess, burstWindow: TimeAmount) throws -> RedisClient {
        var configuration = try RedisConfiguration(url: server.url)
        configuration.poolSize = 4
        return RedisClient(
            configuration: configuration, eventLoopGroup: MultiThreadedEventLoopGroup.singleton,
            logger: Logger(label: "test"), burstWindow: burstWindow)
    }

    private static func connectionId(_ client: RedisClient) async throws -> Int {
        try #require(try await client.send("CLIENT", "ID").int)
    }

    @Test("the commands of one burst, awaited in turn or sent together, share one connection; without bursts they take all four")
    func burstSharesAConnection() async throws {
        let server = try await RedisServerProcess.start()
        let sticky = try Self.client(server, burstWindow: .hours(1))
        var ids: Set<Int> = []
        for _ in 0..<10 { ids.insert(try await Self.connectionId(sticky)) }
        let together = try await withThrowingTaskGroup(of: Int.self) { group in
            for _ in 0..<20 { group.addTask { try await Self.connectionId(sticky) } }
            return try await group.reduce(into: Set<Int>()) { $0.insert($1) }
        }
        #expect(ids.count == 1)
        #expect(together == ids, "concurrent commands joined the burst's connection")

        let rotating = try Self.client(server, burstWindow: .zero)
        var rotated: [Int] = []
        for _ in 0..<8 { rotated.append(try await Self.connectionId(rotating)) }
        #expect(Set(rotated).count == 4, "\(rotated)")
        #expect(Array(rotated[0..<4]) == Array(rotated[4..<8]), "in turn: \(rotated)")
        await sticky.shutdown()
        await rotating.shutdown()
        await server.stop()
    }

    @Test("a burst's connection killed by the server: later commands of the burst go to a live one")
    func brokenConnectionIsLeft() async throws {
        let server = try await RedisServerProcess.start()
        let client = try Self.client(server, burstWindow: .hours(1))
        let killer = RedisClient(configuration: try RedisConfiguration(url: server.url))
        let first = try await Self.connectionId(client)
        #expect(try await killer.send("CLIENT", "KILL", "ID", first).int == 1)
        // A command written before the client saw the close may fail; once it
        // has, every command must succeed on another connection.
        var failures = 0
        var next: Int?
        for _ in 0..<100 where next == nil {
            do {
                next = try await Self.connectionId(client)
            } catch {
                failures += 1
                try await Task.sleep(for: .milliseconds(10))
            }
        }
        let moved = try #require(next, "no command succeeded after the kill")
        #expect(moved != first)
        #expect(failures <= 1, "\(failures) commands failed after the kill")
        for _ in 0..<10 { #expect(try await Self.connectionId(client) == moved) }
        await client.shutdown()
        await killer.shutdown()
        await server.stop()
    }
}
