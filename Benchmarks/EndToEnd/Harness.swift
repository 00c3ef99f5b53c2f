import ConveyorTesting
import Conveyor
import ConveyorRedis
import Foundation
#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif

/// A failure of the benchmark harness or of a run it watches.
struct BenchError: Error, CustomStringConvertible {
    var description: String
    init(_ description: String) { self.description = description }
}

/// Wall-clock time, the same clock the `stamp` job reads (`CLOCK_REALTIME`).
enum WallClock {
    static func micros() -> Int64 {
        var now = timespec()
        clock_gettime(CLOCK_REALTIME, &now)
        return Int64(now.tv_sec) * 1_000_000 + Int64(now.tv_nsec) / 1_000
    }

    static func millis() -> Int { Int(micros() / 1_000) }
}

/// User + system CPU seconds of this process so far.
func ownCPUSeconds() -> Double {
    var usage = rusage()
    #if canImport(Glibc)
    getrusage(__rusage_who_t(RUSAGE_SELF.rawValue), &usage)
    #else
    getrusage(RUSAGE_SELF, &usage)
    #endif
    return Double(usage.ru_utime.tv_sec + usage.ru_stime.tv_sec) + Double(usage.ru_utime.tv_usec + usage.ru_stime.tv_usec) / 1e6
}

/// A progress line on stderr: rewritten in place on a terminal, else at most one line a second.
final class Progress: @unchecked Sendable {
    // Only the benchmark's single driving task calls `update`/`done` (never
    // concurrently), so the two stored properties need no lock.
    private let isTerminal = isatty(2) == 1
    private var lastLine = ContinuousClock.now - .seconds(10)
    private var pending = false

    func update(_ text: String) {
        let now = ContinuousClock.now
        if isTerminal {
            guard now - lastLine >= .milliseconds(200) else { return }
            write("\r\u{1B}[2K" + text)
            pending = true
        } else {
            guard now - lastLine >= .seconds(1) else { return }
            write(text + "\n")
        }
        lastLine = now
    }

    /// Ends a phase: prints its final line.
    func done(_ text: String) {
        write((isTerminal && pending ? "\r\u{1B}[2K" : "") + text + "\n")
        pending = false
        lastLine = ContinuousClock.now - .seconds(10)
    }

    private func write(_ text: String) {
        FileHandle.standardError.write(Data(text.utf8))
    }
}

/// The Redis server under test: a private one this process started, or `--redis URL`.
final class Target: Sendable {
    let url: String
    let configuration: RedisConfiguration
    let client: RedisClient
    /// Set when this process started the server; it may then be flushed.
    let server: RedisServerProcess?

    private init(url: String, configuration: RedisConfiguration, server: RedisServerProcess?) {
        self.url = url
        self.configuration = configuration
        self.client = RedisClient(configuration: configuration)
        self.server = server
    }

    static func open(url: String?) async throws -> Target {
        if let url {
            return Target(url: url, configuration: try RedisConfiguration(url: url), server: nil)
        }
        let server = try await RedisServerProcess.start()
        return Target(url: server.url, configuration: try RedisConfiguration(url: server.url), server: server)
    }

    func close() async {
        await client.shutdown()
        await server?.stop()
    }

    /// `INFO <section>` as a dictionary.
    func info(_ section: String) async throws -> [String: String] {
        guard let text = try await client.send("INFO", section).string else {
            throw BenchError("INFO \(section) returned no text")
        }
        var fields: [String: String] = [:]
        for line in text.split(whereSeparator: \.isNewline) {
            guard let colon = line.firstIndex(of: ":") else { continue }
            fields[String(line[..<colon])] = String(line[line.index(after: colon)...])
        }
        return fields
    }

    /// `used_cpu_sys + used_cpu_user` of the server, in seconds.
    func cpuSeconds() async throws -> Double {
        let cpu = try await info("cpu")
        guard let system = cpu["used_cpu_sys"].flatMap(Double.init), let user = cpu["used_cpu_user"].flatMap(Double.init) else {
            throw BenchError("INFO cpu has no used_cpu_sys/used_cpu_user")
        }
        return system + user
    }

    /// `used_memory`, once lazy frees of earlier phases are done.
    func usedMemory() async throws -> Int {
        for _ in 0..<500 {
            let memory = try await info("memory")
            if (memory["lazyfree_pending_objects"].flatMap(Int.init) ?? 0) == 0, let used = memory["used_memory"].flatMap(Int.init) {
                return used
            }
            try await Task.sleep(for: .milliseconds(20))
        }
        throw BenchError("redis-server still has lazy frees pending after 10 s")
    }

    func version() async -> String {
        (try? await info("server")["redis_version"]) ?? "unknown"
    }

    /// Removes a namespace's keys: `FLUSHALL SYNC` on a private server, else
    /// `SCAN MATCH <namespace>:*` and `UNLINK`, so nothing else on a shared server is touched.
    func clean(namespace: String) async throws {
        if server != nil {
            try await client.send("FLUSHALL", "SYNC")
            return
        }
        var cursor = "0"
        repeat {
            let reply = try await client.send("SCAN", cursor, "MATCH", "\(namespace):*", "COUNT", 1000)
            guard let parts = reply.array, parts.count == 2, let next = parts[0].string else {
                throw BenchError("SCAN returned \(reply)")
            }
            let keys = parts[1].array?.compactMap(\.string) ?? []
            if !keys.isEmpty { try await client.send(RedisCommand("UNLINK", arguments: keys)) }
            cursor = next
        } while cursor != "0"
    }
}

/// `conveyor worker` processes of the release build.
struct Workers {
    struct Member {
        var process: ChildProcess
        var log: String
    }

    let members: [Member]

    /// Spawns `count` workers; with `archiverDirectory` the first also runs an archiver.
    static func spawn(
        count: Int, binary: String, url: String, namespace: String, concurrency: Int, archiverDirectory: String?, logDirectory: String
    ) throws -> Workers {
        var members: [Member] = []
        for index in 0..<count {
            var arguments = [
                "worker", "--redis", url, "--namespace", namespace, "--concurrency", String(concurrency),
                "--grace-period", "5", "--log-level", "warning",
            ]
            if index == 0, let archiverDirectory { arguments += ["--archiver", "--history-dir", archiverDirectory] }
            let log = logDirectory + "/worker-\(namespace)-\(index).log"
            do {
                members.append(Member(process: try ChildProcess.spawn(binary, arguments: arguments, standardOutput: log), log: log))
            } catch {
                for member in members { member.process.signal(SIGKILL) }
                throw BenchError("cannot start \(binary): \(error)")
            }
        }
        return Workers(members: members)
    }

    /// Throws, with the end of its log, if a worker has exited.
    func checkAlive() throws {
        for member in members where member.process.hasExited() {
            let log = (try? String(contentsOfFile: member.log, encoding: .utf8)) ?? ""
            throw BenchError("worker \(member.process.pid) exited; its log ends with:\n\(log.suffix(1500))")
        }
    }

    /// Graceful stop (SIGTERM), then SIGKILL after 20 s.
    func stop() async {
        for member in members { member.process.signal(SIGTERM) }
        for member in members { await member.process.waitForExit(timeout: .seconds(20)) }
    }

    /// User + system CPU seconds of a worker so far (`/proc/<pid>/stat`).
    static func cpuSeconds(of pid: pid_t) -> Double? {
        guard let stat = try? String(contentsOfFile: "/proc/\(pid)/stat", encoding: .utf8),
            let close = stat.lastIndex(of: ")")
        else { return nil }
        // Fields after "(comm)": state is field 3, utime 14, stime 15.
        let fields = stat[stat.index(after: close)...].split(separator: " ")
        guard fields.count > 13, let user = Double(fields[11]), let system = Double(fields[12]) else { return nil }
        return (user + system) / Double(sysconf(Int32(_SC_CLK_TCK)))
    }

    /// `VmRSS` and `VmHWM` of a worker in bytes.
    static func memory(of pid: pid_t) -> (rss: Int, peak: Int)? {
        guard let status = try? String(contentsOfFile: "/proc/\(pid)/status", encoding: .utf8) else { return nil }
        func kib(_ field: String) -> Int? {
            guard let line = status.split(separator: "\n").first(where: { $0.hasPrefix(field + ":") }) else { return nil }
            return line.split(separator: " ", omittingEmptySubsequences: true).dropFirst().first.flatMap { Int($0) }
        }
        guard let rss = kib("VmRSS"), let peak = kib("VmHWM") else { return nil }
        return (rss * 1024, peak * 1024)
    }
}

/// `redis-benchmark -t set -c 50 -n 200000 -q` on the same server.
enum RedisBenchmark {
    static func arguments(for configuration: RedisConfiguration, clients: Int, requests: Int) -> [String] {
        configuration.commandLineArguments + ["-t", "set", "-c", String(clients), "-n", String(requests), "-q"]
    }

    static func printable(for configuration: RedisConfiguration, clients: Int, requests: Int) -> String {
        var words = ["redis-benchmark"] + arguments(for: configuration, clients: clients, requests: requests)
        if let index = words.firstIndex(of: "-a"), index + 1 < words.count { words[index + 1] = "***" }
        return words.joined(separator: " ")
    }

    /// Runs it and returns `SET` requests per second.
    static func setRate(configuration: RedisConfiguration, clients: Int, requests: Int, scratch: String) async throws -> Double {
        try await rate(arguments: arguments(for: configuration, clients: clients, requests: requests), scratch: scratch)
    }

    /// `redis-benchmark -c 1 -n N -q EVALSHA <sha> 1 <key>` of a one-command
    /// script: one awaited script call at a time, the floor of a producer that
    /// awaits each `scheduleJob`.
    static func evalshaArguments(for configuration: RedisConfiguration, requests: Int, sha: String, key: String) -> [String] {
        configuration.commandLineArguments + ["-c", "1", "-n", String(requests), "-q", "EVALSHA", sha, "1", key]
    }

    /// Runs redis-benchmark with `arguments` (ending in `-q`, one test) and returns its requests per second.
    static func rate(arguments: [String], scratch: String) async throws -> Double {
        guard let executable = RedisServerProcess.findExecutable("redis-benchmark") else {
            throw BenchError("redis-benchmark not found on PATH; install redis-tools (make deps does)")
        }
        let output = scratch + "/redis-benchmark-\(UInt32.random(in: 0...UInt32.max)).txt"
        defer { try? FileManager.default.removeItem(atPath: output) }
        let process = try ChildProcess.spawn(executable, arguments: arguments, standardOutput: output)
        await process.waitForExit(timeout: .seconds(600))
        let text = (try? String(contentsOfFile: output, encoding: .utf8)) ?? ""
        // `-q` prints "SET: rps=..." progress lines ended by \r, then
        // "SET: 81234.56 requests per second, p50=0.303 msec" (a custom
        // command's line starts with the command instead of "SET").
        let line = text.split(whereSeparator: { $0 == "\r" || $0 == "\n" }).last { $0.contains("requests per second") }
        guard let line, let marker = line.range(of: " requests per second"),
            let rate = line[..<marker.lowerBound].split(separator: " ").last.flatMap({ Double($0) })
        else {
            throw BenchError("cannot read redis-benchmark's output: \(text.suffix(300))")
        }
        return rate
    }
}

extension JobScheduler {
    /// Schedules `count` jobs built by `make` in `scheduleJobs` calls of
    /// `chunk` jobs, keeping up to `inFlight` calls outstanding; returns the
    /// created jobs' ids and due times (ms) in order when `keep` is set.
    func scheduleInChunks(
        count: Int, chunk: Int, inFlight: Int, keep: Bool = false, progress: ((Int) -> Void)? = nil,
        _ make: @escaping @Sendable (Int) -> UntypedJobConfig
    ) async throws -> [(id: Int, dueMs: Int)] {
        let ranges = stride(from: 0, to: count, by: chunk).map { $0..<min($0 + chunk, count) }
        var results = [[(id: Int, dueMs: Int)]](repeating: [], count: ranges.count)
        var done = 0
        try await withThrowingTaskGroup(of: (Int, [(id: Int, dueMs: Int)]).self) { group in
            var next = 0
            func add() {
                guard next < ranges.count else { return }
                let index = next, range = ranges[index]
                next += 1
                group.addTask {
                    let jobs = try await self.scheduleJobs(range.map(make))
                    return (index, keep ? jobs.map { ($0.id, Int(($0.due.timeIntervalSince1970 * 1000).rounded())) } : [])
                }
            }
            for _ in 0..<max(1, inFlight) { add() }
            while let (index, jobs) = try await group.next() {
                results[index] = jobs
                done += ranges[index].count
                progress?(done)
                add()
            }
        }
        return results.flatMap { $0 }
    }

    /// The finished jobs among `ids`, read in calls of 1,000.
    func finishedJobs(ids: [Int]) async throws -> [WorkerJob] {
        var jobs: [WorkerJob] = []
        for start in stride(from: 0, to: ids.count, by: 1_000) {
            jobs += try await self.jobs(ids: Array(ids[start..<min(start + 1_000, ids.count)])).filter { $0.finished != nil }
        }
        return jobs
    }
}

/// `stamp`'s result: `{"startedAtMicros": <µs since the epoch when the run started>}`.
func startedAtMicros(_ job: WorkerJob) -> Int64? {
    guard let text = job.resultJSON, let object = try? JSONSerialization.jsonObject(with: Data(text.utf8)) as? [String: Any],
        let value = object["startedAtMicros"] as? NSNumber
    else { return nil }
    return value.int64Value
}
