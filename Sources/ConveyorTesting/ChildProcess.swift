import ConveyorRedis

#if canImport(Glibc)
import Glibc
#elseif canImport(Musl)
import Musl
#elseif canImport(Darwin)
import Darwin
#endif

/// A child process spawned with `posix_spawn` and a clean signal state.
///
/// Foundation's `Process` passes on the spawning thread's signal mask, and
/// threads of a Swift process block most signals, so its children cannot be
/// stopped with `SIGTERM` and shells among them never see `SIGCHLD`. Here the
/// child starts with an empty mask and default dispositions, as a process
/// started from a terminal would.
public struct ChildProcess: Sendable {
    /// The child's process id.
    public let pid: pid_t

    /// Refers to an existing child (or any process) by id.
    public init(pid: pid_t) {
        self.pid = pid
    }

    /// Spawns `executable` with `arguments`.
    /// - Parameters:
    ///   - standardInput: A descriptor to become the child's stdin (`nil`: /dev/null).
    ///   - standardOutput: A path for stdout and stderr (`nil`: /dev/null).
    /// - Throws: ``RedisError`` with code `connectionFailed` naming the executable.
    public static func spawn(
        _ executable: String,
        arguments: [String],
        standardInput: Int32? = nil,
        standardOutput: String? = nil
    ) throws(RedisError) -> ChildProcess {
        var attributes = posix_spawnattr_t()
        posix_spawnattr_init(&attributes)
        defer { posix_spawnattr_destroy(&attributes) }
        var emptyMask = sigset_t()
        sigemptyset(&emptyMask)
        var allSignals = sigset_t()
        sigfillset(&allSignals)
        posix_spawnattr_setsigmask(&attributes, &emptyMask)
        posix_spawnattr_setsigdefault(&attributes, &allSignals)
        posix_spawnattr_setflags(&attributes, Int16(POSIX_SPAWN_SETSIGMASK | POSIX_SPAWN_SETSIGDEF))

        var actions = posix_spawn_file_actions_t()
        posix_spawn_file_actions_init(&actions)
        defer { posix_spawn_file_actions_destroy(&actions) }
        if let standardInput {
            posix_spawn_file_actions_adddup2(&actions, standardInput, 0)
        } else {
            posix_spawn_file_actions_addopen(&actions, 0, "/dev/null", O_RDONLY, 0)
        }
        // Never inherit the parent's stdout/stderr: a test runner waits for
        // EOF on those and would wait for this child too.
        posix_spawn_file_actions_addopen(&actions, 1, standardOutput ?? "/dev/null", O_WRONLY | O_CREAT | O_APPEND, 0o644)
        posix_spawn_file_actions_adddup2(&actions, 1, 2)

        let argv: [UnsafeMutablePointer<CChar>?] = ([executable] + arguments).map { strdup($0) } + [nil]
        defer { argv.forEach { free($0) } }
        var pid: pid_t = 0
        let status = posix_spawn(&pid, executable, &actions, &attributes, argv, environ)
        guard status == 0 else {
            throw RedisError(.connectionFailed, message: "cannot start \(executable): \(String(cString: strerror(status)))")
        }
        return ChildProcess(pid: pid)
    }

    /// Whether the child has exited; reaps it if so (never blocks).
    public func hasExited() -> Bool {
        var status: Int32 = 0
        let result = waitpid(pid, &status, WNOHANG)
        return result == pid || (result == -1 && errno == ECHILD)
    }

    /// Sends a signal.
    public func signal(_ signal: Int32) {
        kill(pid, signal)
    }

    /// Waits for the child to exit, polling so no thread blocks; sends
    /// `SIGKILL` if it has not exited after `timeout`.
    public func waitForExit(timeout: Duration = .seconds(5)) async {
        let deadline = ContinuousClock.now + timeout
        var killed = false
        while !hasExited() {
            if !killed, ContinuousClock.now >= deadline {
                signal(SIGKILL)
                killed = true
            }
            try? await Task.sleep(for: .milliseconds(5))
        }
    }
}
