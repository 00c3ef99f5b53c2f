import ConveyorTesting
import ConveyorRedis
import Foundation
import NIOCore
import NIOPosix
import Synchronization
#if canImport(Glibc)
import Glibc
#endif

/// A redis-server for one chaos scenario that can be killed, restarted on the same port and
/// directory (so it reloads its append-only file), frozen and thawed.
public final class ChaosRedisServer: Sendable {
    /// Its loopback port; the same across restarts.
    public let port: Int
    /// Its data directory (AOF, log).
    public let directory: String
    private let extraArguments: [String]
    private let process: Mutex<GuardedProcess?>
    private let incarnation = Mutex(0)

    /// `redis://127.0.0.1:<port>`.
    public var url: String { "redis://127.0.0.1:\(port)" }

    private init(port: Int, directory: String, extraArguments: [String], process: GuardedProcess) {
        self.port = port
        self.directory = directory
        self.extraArguments = extraArguments
        self.process = Mutex(process)
    }

    /// Starts a server on a free loopback port in `directory` with `extraArguments` (e.g.
    /// `--appendonly yes --appendfsync always`), waiting until it answers `PING`.
    public static func start(directory: String, extraArguments: [String] = []) async throws -> ChaosRedisServer {
        var lastError: (any Error)?
        for _ in 0..<5 {
            let port = try await freeLoopbackPort()
            do {
                let process = try await launch(port: port, directory: directory, extraArguments: extraArguments, incarnation: 0)
                return ChaosRedisServer(port: port, directory: directory, extraArguments: extraArguments, process: process)
            } catch {
                lastError = error  // the port was taken meanwhile: another one
            }
        }
        throw lastError ?? ChaosError("cannot start redis-server")
    }

    /// SIGKILLs the server, as a crash would.
    public func kill() async {
        await process.withLock { $0 }?.kill()
    }

    /// Starts the server again on the same port and directory after ``kill()``.
    public func restart() async throws {
        let next = incarnation.withLock { $0 += 1; return $0 }
        // The port may linger for a moment after the kill; retry for a few seconds.
        let deadline = ContinuousClock.now + .seconds(10)
        while true {
            do {
                let started = try await Self.launch(port: port, directory: directory, extraArguments: extraArguments, incarnation: next)
                process.withLock { $0 = started }
                return
            } catch {
                if ContinuousClock.now > deadline { throw error }
                try await Task.sleep(for: .milliseconds(100))
            }
        }
    }

    /// SIGSTOP: the server keeps its sockets and answers nothing until ``thaw()``.
    public func freeze() {
        process.withLock { $0 }?.signal(SIGSTOP)
    }

    /// SIGCONT after ``freeze()``.
    public func thaw() {
        process.withLock { $0 }?.signal(SIGCONT)
    }

    /// Stops the server (SIGTERM, then SIGKILL after 10 s).
    public func stop() async {
        await process.withLock { $0 }?.stop()
    }

    private static func launch(port: Int, directory: String, extraArguments: [String], incarnation: Int) async throws -> GuardedProcess {
        guard let executable = RedisServerProcess.findExecutable("redis-server") else {
            throw ChaosError("redis-server not found on PATH (scripts/install-deps.sh installs it)")
        }
        let arguments = [
            "--port", String(port), "--bind", "127.0.0.1", "--dir", directory, "--save", "", "--appendonly", "no",
            "--daemonize", "no", "--loglevel", "warning", "--logfile", directory + "/redis.log",
        ] + extraArguments
        let process = try await GuardedProcess.start(executable, arguments, logPath: directory + "/redis-\(incarnation).out")
        var configuration = RedisConfiguration(endpoint: .tcp(host: "127.0.0.1", port: port))
        configuration.connectTimeout = .seconds(1)
        let deadline = ContinuousClock.now + .seconds(30)  // loading a large AOF takes a while
        while ContinuousClock.now < deadline, !process.hasExited {
            if let connection = try? await RedisConnection.connect(configuration: configuration),
               (try? await connection.send(RedisCommand("PING"), timeout: .seconds(1)))?.string == "PONG" {
                await connection.close()
                return process
            }
            try await Task.sleep(for: .milliseconds(20))
        }
        await process.kill()
        throw ChaosError("redis-server on port \(port) did not answer PING (log: \(directory)/redis.log)")
    }

    /// A port free on 127.0.0.1 right now.
    static func freeLoopbackPort() async throws -> Int {
        let channel = try await ServerBootstrap(group: MultiThreadedEventLoopGroup.singleton).bind(host: "127.0.0.1", port: 0).get()
        let port = channel.localAddress?.port
        try await channel.close()
        guard let port else { throw ChaosError("cannot find a free loopback port") }
        return port
    }
}
