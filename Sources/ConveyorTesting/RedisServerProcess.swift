import ConveyorRedis
import Foundation
import Synchronization
import Logging
#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif

/// A private `redis-server` child process, for the CLI's default path and for tests.
///
/// The server listens on a free loopback port and on a Unix socket in its own
/// data directory, with persistence off. It is stopped by ``stop()``, and also
/// when the parent dies without stopping it — even by `SIGKILL`: the server
/// runs under a tiny shell guardian that reads the parent's end of a pipe and
/// kills the server when that pipe closes, so no orphan servers pile up.
public final class RedisServerProcess: Sendable {
    /// Options for starting a server.
    public struct Options: Sendable {
        /// TCP port; `nil` picks a free one.
        public var port: Int?
        /// Directory for the socket and any data; `nil` makes a temporary one.
        public var directory: String?
        /// Extra `redis-server` arguments, e.g. `["--requirepass", "secret"]`.
        public var extraArguments: [String]
        /// How long to wait for the first `PING` reply.
        public var startTimeout: Duration
        /// Serve TLS only on the TCP port (the Unix socket stays plain, for setup).
        public var tls: TLS?

        /// Creates options.
        public init(
            port: Int? = nil, directory: String? = nil, extraArguments: [String] = [], startTimeout: Duration = .seconds(15),
            tls: TLS? = nil
        ) {
            self.port = port
            self.directory = directory
            self.extraArguments = extraArguments
            self.startTimeout = startTimeout
            self.tls = tls
        }
    }

    /// The server side of TLS: its certificate and key, the CA that signs
    /// client certificates, and whether a client certificate is required.
    public struct TLS: Sendable {
        /// PEM certificate the server presents.
        public var certificateFile: String
        /// PEM private key of the certificate.
        public var keyFile: String
        /// PEM CA that client certificates must chain to.
        public var caFile: String
        /// `--tls-auth-clients yes` (mutual TLS) or `no`.
        public var requireClientCertificates: Bool

        /// Creates server TLS settings.
        public init(certificateFile: String, keyFile: String, caFile: String, requireClientCertificates: Bool = false) {
            self.certificateFile = certificateFile
            self.keyFile = keyFile
            self.caFile = caFile
            self.requireClientCertificates = requireClientCertificates
        }
    }

    /// The loopback TCP port.
    public let port: Int
    /// The Unix socket path.
    public let socketPath: String
    /// The data directory.
    public let directory: String
    /// Whether the TCP port speaks TLS (then ``url`` is `rediss://`).
    public let usesTLS: Bool
    private let guardian: ChildProcess
    private let guardianInput: Mutex<Int32?>

    /// `redis://127.0.0.1:<port>`, or `rediss://` when the port speaks TLS.
    public var url: String { "\(usesTLS ? "rediss" : "redis")://127.0.0.1:\(port)" }

    /// `unix://<socket>`: always plain, also for a TLS server.
    public var socketURL: String { "unix://\(socketPath)" }

    private init(port: Int, socketPath: String, directory: String, usesTLS: Bool, guardian: ChildProcess, guardianInput: Int32) {
        self.port = port
        self.socketPath = socketPath
        self.directory = directory
        self.usesTLS = usesTLS
        self.guardian = guardian
        self.guardianInput = Mutex(guardianInput)
    }

    /// Starts a server and waits until it answers `PING`.
    /// - Throws: ``RedisError`` with code `connectionFailed` if `redis-server` is
    ///   missing, exits early or does not answer in time.
    public static func start(_ options: Options = Options()) async throws(RedisError) -> RedisServerProcess {
        guard let executable = findExecutable("redis-server") else {
            throw RedisError(
                .connectionFailed,
                message: "redis-server not found on PATH; install it (apt-get install redis-server) or pass a Redis URL"
            )
        }
        let directory: String
        if let given = options.directory {
            directory = given
        } else {
            directory = FileManager.default.temporaryDirectory
                .appendingPathComponent("conveyor-redis-\(ProcessInfo.processInfo.processIdentifier)-\(UInt32.random(in: 0...UInt32.max))").path
        }
        do {
            try FileManager.default.createDirectory(atPath: directory, withIntermediateDirectories: true)
        } catch {
            throw RedisError(.connectionFailed, message: "cannot create redis data directory \(directory)", underlying: error)
        }
        // Port races (another process grabbing the port between probe and
        // bind) are retried with a fresh port.
        var lastError: RedisError?
        for _ in 0..<(options.port == nil ? 5 : 1) {
            let port: Int
            if let fixed = options.port { port = fixed } else { port = try freeLoopbackPort() }
            do throws(RedisError) {
                return try await launch(executable: executable, port: port, directory: directory, options: options)
            } catch {
                lastError = error
            }
        }
        throw lastError!
    }

    private static func launch(executable: String, port: Int, directory: String, options: Options) async throws(RedisError) -> RedisServerProcess {
        let socketPath = directory + "/redis.sock"
        var portArguments = ["--port", String(port)]
        if let tls = options.tls {
            portArguments = [
                "--port", "0", "--tls-port", String(port), "--tls-cert-file", tls.certificateFile, "--tls-key-file", tls.keyFile,
                "--tls-ca-cert-file", tls.caFile, "--tls-auth-clients", tls.requireClientCertificates ? "yes" : "no",
            ]
        }
        let serverArguments =
            portArguments + [
                "--bind", "127.0.0.1", "--unixsocket", socketPath, "--unixsocketperm", "700",
                "--dir", directory, "--save", "", "--appendonly", "no", "--daemonize", "no",
                "--loglevel", "warning", "--logfile", directory + "/redis.log",
            ] + options.extraArguments
        // The guardian: start the server, then block reading stdin. EOF means
        // the parent closed its end or died; either way the server must go.
        let script = """
            "$0" "$@" &
            pid=$!
            while read -r _; do :; done
            kill -TERM $pid 2>/dev/null
            wait $pid
            """
        // The guardian's stdin is the read end of a pipe whose write end only
        // this process holds (close-on-exec keeps it out of other children).
        var fds: [Int32] = [0, 0]
        guard pipe(&fds) == 0 else { throw RedisError(.connectionFailed, message: "cannot create a pipe for redis-server") }
        _ = fcntl(fds[1], F_SETFD, FD_CLOEXEC)
        let process: ChildProcess
        do {
            process = try ChildProcess.spawn(
                "/bin/sh", arguments: ["-c", script, executable] + serverArguments, standardInput: fds[0]
            )
        } catch {
            close(fds[0])
            close(fds[1])
            throw error
        }
        close(fds[0])
        let server = RedisServerProcess(
            port: port, socketPath: socketPath, directory: directory, usesTLS: options.tls != nil, guardian: process, guardianInput: fds[1]
        )
        let deadline = ContinuousClock.now + options.startTimeout
        // A TLS server is probed on its plain socket; the port's TLS is the tests' business.
        var configuration = RedisConfiguration(
            endpoint: options.tls == nil ? .tcp(host: "127.0.0.1", port: port) : .unixSocket(path: socketPath)
        )
        configuration.connectTimeout = .seconds(1)
        if let index = options.extraArguments.firstIndex(of: "--requirepass"), index + 1 < options.extraArguments.count {
            configuration.password = options.extraArguments[index + 1]
        }
        while ContinuousClock.now < deadline {
            if process.hasExited() {
                let log = (try? String(contentsOfFile: directory + "/redis.log", encoding: .utf8)) ?? ""
                throw RedisError(.connectionFailed, message: "redis-server exited at start on port \(port): \(log.suffix(300))")
            }
            if let connection = try? await RedisConnection.connect(configuration: configuration) {
                await connection.close()
                return server
            }
            try? await Task.sleep(for: .milliseconds(20))
        }
        await server.stop()
        throw RedisError(.connectionFailed, message: "redis-server on port \(port) did not answer PING within \(options.startTimeout)")
    }

    /// Stops the server (through its guardian) and waits for it to exit.
    public func stop() async {
        closeGuardianInput()
        await guardian.waitForExit()
    }

    /// Kills the server at once (`SIGKILL`), as a crash would, and then its guardian.
    public func kill() async {
        if let pid = serverPID() {
            ChildProcess(pid: pid).signal(SIGKILL)
        }
        closeGuardianInput()
        await guardian.waitForExit()
    }

    private func closeGuardianInput() {
        // Only the first close counts: a second could close a descriptor
        // number that has since been reused for something else.
        guardianInput.withLock { descriptor in
            if let open = descriptor { close(open) }
            descriptor = nil
        }
    }

    /// The redis-server's own process id (the guardian's only child).
    private func serverPID() -> pid_t? {
        let path = "/proc/\(guardian.pid)/task/\(guardian.pid)/children"
        guard let text = try? String(contentsOfFile: path, encoding: .utf8) else { return nil }
        return text.split(separator: " ").first.flatMap { pid_t($0.trimmingCharacters(in: .whitespacesAndNewlines)) }
    }

    /// The first executable called `name` on `PATH` (then /usr/bin, /usr/sbin,
    /// /usr/local/bin, /opt/homebrew/bin), or `nil`.
    public static func findExecutable(_ name: String) -> String? {
        let path = ProcessInfo.processInfo.environment["PATH"] ?? ""
        let directories = path.split(separator: ":").map(String.init) + ["/usr/bin", "/usr/sbin", "/usr/local/bin", "/opt/homebrew/bin"]
        for directory in directories {
            let candidate = directory + "/" + name
            if FileManager.default.isExecutableFile(atPath: candidate) { return candidate }
        }
        return nil
    }

    /// A port the kernel reports free on 127.0.0.1 right now (bind to port 0,
    /// read the port back, close). Plain syscalls: nothing here blocks.
    static func freeLoopbackPort() throws(RedisError) -> Int {
        #if canImport(Glibc)
        let socketType = Int32(SOCK_STREAM.rawValue)
        #else
        let socketType = SOCK_STREAM
        #endif
        let descriptor = socket(AF_INET, socketType, 0)
        guard descriptor >= 0 else { throw RedisError(.connectionFailed, message: "cannot open a socket to find a free port") }
        defer { close(descriptor) }
        var address = sockaddr_in()
        address.sin_family = sa_family_t(AF_INET)
        address.sin_port = 0
        address.sin_addr.s_addr = inet_addr("127.0.0.1")
        var length = socklen_t(MemoryLayout<sockaddr_in>.size)
        let bound = withUnsafeMutablePointer(to: &address) { pointer in
            pointer.withMemoryRebound(to: sockaddr.self, capacity: 1) { generic in
                bind(descriptor, generic, length) == 0 && getsockname(descriptor, generic, &length) == 0
            }
        }
        guard bound else { throw RedisError(.connectionFailed, message: "cannot bind a loopback socket to find a free port") }
        return Int(UInt16(bigEndian: address.sin_port))
    }
}
