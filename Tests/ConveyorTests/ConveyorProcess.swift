import ConveyorTesting
import ConveyorRedis
import Foundation

/// The `conveyor` example binary, run as a real process by crash tests.
struct ConveyorProcess: Sendable {
    let child: ChildProcess
    let logPath: String

    /// The built `conveyor` next to this test bundle (`swift build --build-tests`
    /// builds it too).
    static var executable: String {
        var directory = URL(fileURLWithPath: CommandLine.arguments[0]).deletingLastPathComponent()
        for _ in 0..<4 {
            let candidate = directory.appendingPathComponent("conveyor").path
            if FileManager.default.isExecutableFile(atPath: candidate) { return candidate }
            directory.deleteLastPathComponent()
        }
        return ".build/debug/conveyor"
    }

    /// Starts `conveyor <arguments>`; output goes to a log file for diagnosis.
    static func start(_ arguments: [String]) throws -> ConveyorProcess {
        let logPath = FileManager.default.temporaryDirectory.appendingPathComponent("conveyor-test-\(UUID().uuidString).log").path
        let child = try ChildProcess.spawn(executable, arguments: arguments, standardOutput: logPath)
        return ConveyorProcess(child: child, logPath: logPath)
    }

    /// Starts `conveyor <arguments>` with extra environment variables (through `/usr/bin/env`).
    static func start(_ arguments: [String], environment: [String: String]) throws -> ConveyorProcess {
        let logPath = FileManager.default.temporaryDirectory.appendingPathComponent("conveyor-test-\(UUID().uuidString).log").path
        let assignments = environment.sorted { $0.key < $1.key }.map { "\($0.key)=\($0.value)" }
        let child = try ChildProcess.spawn("/usr/bin/env", arguments: assignments + [executable] + arguments, standardOutput: logPath)
        return ConveyorProcess(child: child, logPath: logPath)
    }

    /// Runs `conveyor <arguments>` to its end and returns what it printed.
    static func output(_ arguments: [String], environment: [String: String] = [:], timeout: Duration = .seconds(30)) async throws -> String {
        let process = try start(arguments, environment: environment)
        await process.waitForExit(timeout: timeout)
        defer { try? FileManager.default.removeItem(atPath: process.logPath) }
        return process.log
    }

    /// Sends a signal (SIGKILL to crash, SIGTERM to stop gracefully).
    func signal(_ signal: Int32) { child.signal(signal) }

    /// Waits for exit, killing after `timeout`.
    func waitForExit(timeout: Duration = .seconds(30)) async { await child.waitForExit(timeout: timeout) }

    /// What the process printed.
    var log: String { (try? String(contentsOfFile: logPath, encoding: .utf8)) ?? "" }
}
