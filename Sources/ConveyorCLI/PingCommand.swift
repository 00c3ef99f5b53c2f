import ArgumentParser
import Conveyor
import Foundation

struct PingCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "ping",
        abstract: "Check the Redis connection and show round-trip times.",
        discussion: """
            Examples:
              conveyor ping
              conveyor ping --count 20 --redis rediss://user@redis.example.com:6380
            """
    )

    @Option(name: .long, help: "Number of PINGs.") var count: Int = 5
    @OptionGroup var redis: RedisOptions

    func run() async throws {
        let client = try await redis.client()
        let clock = ContinuousClock()
        for index in 1...max(1, count) {
            let started = clock.now
            let reply = try await client.send("PING")
            let elapsed = clock.now - started
            print("\(index): \(reply) in \(elapsed.formatted(.units(allowed: [.milliseconds, .microseconds], width: .narrow)))")
        }
        print("server: \(client.configuration.redactedURL)")
        await client.shutdown()
    }
}
