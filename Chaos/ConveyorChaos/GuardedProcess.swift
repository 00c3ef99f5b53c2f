import ConveyorTesting
import ConveyorRedis
import Foundation
import Synchronization
#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif

/// A child process (a redis-server or a `conveyor` worker) that cannot outlive the runner.
///
/// It runs under a small shell guardian that holds the read end of a pipe whose write end only
/// this process has: when the runner exits or dies, even by SIGKILL, the pipe closes and the
/// guardian SIGKILLs the child, so no orphan keeps writing to Redis. The guardian exits when the
/// child does, so waiting for the guardian is waiting for the child. Signals (SIGKILL, SIGSTOP,
/// SIGCONT, SIGTERM) go to the child itself, whose pid the guardian writes to a file.
public final class GuardedProcess: Sendable {
    /// The command's own process id.
    public let pid: pid_t
    /// Where its stdout and stderr go.
    public let logPath: String
    private let guardian: ChildProcess
    private let guardianInput: Mutex<Int32?>

    private init(pid: pid_t, logPath: String, guardian: ChildProcess, guardianInput: Int32) {
        self.pid = pid
        self.logPath = logPath
        self.guardian = guardian
        self.guardianInput = Mutex(guardianInput)
    }

    /// Starts `executable arguments`, output to `logPath`, and waits until its pid is known.
    public static func start(_ executable: String, _ arguments: [String], logPath: String) async throws -> GuardedProcess {
        let pidFile = logPath + ".pid"
        try? FileManager.default.removeItem(atPath: pidFile)
        // A background list's stdin is /dev/null unless redirected: hence fd 3 for the watcher.
        let script = """
            pidfile=$1; shift
            exec 3<&0
            "$@" </dev/null &
            pid=$!
            echo $pid > "$pidfile.tmp" && mv "$pidfile.tmp" "$pidfile"
            ( while read -r _; do :; done; kill -KILL $pid 2>/dev/null ) <&3 &
            exec 3<&-
            wait $pid
            """
        var fds: [Int32] = [0, 0]
        guard pipe(&fds) == 0 else { throw ChaosError("cannot create a pipe") }
        _ = fcntl(fds[1], F_SETFD, FD_CLOEXEC)
        let guardian: ChildProcess
        do {
            guardian = try ChildProcess.spawn(
                "/bin/sh", arguments: ["-c", script, "guardian", pidFile, executable] + arguments,
                standardInput: fds[0], standardOutput: logPath
            )
        } catch {
            close(fds[0])
            close(fds[1])
            throw error
        }
        close(fds[0])
        let deadline = ContinuousClock.now + .seconds(10)
        while ContinuousClock.now < deadline {
            if let text = try? String(contentsOfFile: pidFile, encoding: .utf8),
               let pid = pid_t(text.trimmingCharacters(in: .whitespacesAndNewlines)) {
                try? FileManager.default.removeItem(atPath: pidFile)
                return GuardedProcess(pid: pid, logPath: logPath, guardian: guardian, guardianInput: fds[1])
            }
            try await Task.sleep(for: .milliseconds(5))
        }
        close(fds[1])
        await guardian.waitForExit()
        throw ChaosError("\(executable) did not start within 10 s")
    }

    /// Sends `signal` to the command.
    public func signal(_ signal: Int32) {
        ChildProcess(pid: pid).signal(signal)
    }

    /// Whether the command has exited (never blocks).
    public var hasExited: Bool { guardian.hasExited() }

    /// SIGKILLs the command, as a crash, and waits until it is gone.
    public func kill() async {
        signal(SIGKILL)
        await finish(timeout: .seconds(10))
    }

    /// SIGTERM (and SIGCONT, in case it is stopped), then SIGKILL after `timeout`.
    public func stop(timeout: Duration = .seconds(10)) async {
        signal(SIGTERM)
        signal(SIGCONT)
        await finish(timeout: timeout)
    }

    private func finish(timeout: Duration) async {
        let deadline = ContinuousClock.now + timeout
        while !guardian.hasExited(), ContinuousClock.now < deadline {
            try? await Task.sleep(for: .milliseconds(5))
        }
        // Closing the pipe makes the watcher SIGKILL the command if it is still there.
        // Only the first close counts: the number may be reused by then.
        guardianInput.withLock { descriptor in
            if let open = descriptor { close(open) }
            descriptor = nil
        }
        await guardian.waitForExit(timeout: .seconds(5))
    }

    /// What the command printed.
    public var log: String { (try? String(contentsOfFile: logPath, encoding: .utf8)) ?? "" }
}

/// A failure of the chaos machinery itself (not a finding of a run).
public struct ChaosError: Error, CustomStringConvertible {
    public var description: String
    public init(_ description: String) { self.description = description }
}
