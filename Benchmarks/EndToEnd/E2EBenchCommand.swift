import ArgumentParser
import Conveyor
import ConveyorRedis
import Foundation
#if canImport(Glibc)
import Glibc
#endif

/// The entry point (a type, not `main.swift`: top-level `await Command.main()`
/// would pick ArgumentParser's synchronous `main`).
@main
enum E2EBenchMain {
    static func main() async {
        await E2EBenchCommand.main()
    }
}

/// `conveyor-e2e-bench`: the goals table of issue 6, measured in one run.
/// Results are in docs/benchmarks.md, "End to end".
struct E2EBenchCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "conveyor-e2e-bench",
        abstract: "Conveyor end to end: scheduling, worker processes, start latency, claim cost, memory.",
        discussion: """
            Starts a private redis-server (or uses --redis URL; then only keys of its own namespaces \
            are written and deleted) and runs `conveyor worker` processes of the release build found \
            next to this executable (or --conveyor PATH). Measures, selectable with --only/--skip:
              set      redis-benchmark -t set -c 50 -n 200000 -q on the same server: the yardstick
              memory   Redis used_memory per pending job with a --payload-bytes payload (echo, due in 1 h)
              bulk     bulk scheduling of --jobs no-op jobs (scheduleJobs calls of --bulk-chunk)
              e2e      those jobs processed by 1 worker process, then by 2 (jobs/s from the first claim \
            to the last finish; Redis CPU from INFO cpu per 1,000 jobs; worker RSS of the 1-process run)
              single   one producer scheduling --single-jobs jobs one at a time, awaiting each
              latency  start minus due on an idle pool: --latency-jobs stamp jobs due now, then due in 1 s
              load     start minus due with stamp jobs arriving at --load-fraction of the 1-process rate
              claim    end to end with --future-jobs jobs due tomorrow waiting, against the figure with none
            Workers run with --concurrency runners each and, unless --no-archiver, the first one also \
            runs the archiver, so finished jobs leave Redis as in production. A progress line goes to \
            stderr, the table (medians of --repeat runs) or --json to stdout.
            """
    )

    @Option(name: .customLong("redis"), help: "Redis URL to use instead of a private redis-server.")
    var redisURL: String?

    @Option(name: .customLong("conveyor"), help: "The `conveyor` executable (default: next to this one).")
    var conveyorPath: String?

    @Option(help: "Only these measures, comma-separated: set, memory, bulk, e2e, single, latency, load, claim.")
    var only: String?

    @Option(help: "Skip these measures, comma-separated.")
    var skip: String?

    @Option(help: "No-op jobs for bulk scheduling and end to end (N).")
    var jobs: Int = 100_000

    @Option(help: "Runners per worker process.")
    var concurrency: Int = 50

    @Option(name: .customLong("worker-processes"), help: "Worker process counts for e2e, comma-separated, in order.")
    var workerProcesses: String = "1,2"

    @Option(name: .customLong("bulk-chunk"), help: "Jobs per scheduleJobs call when scheduling in bulk.")
    var bulkChunk: Int = 10_000

    @Option(name: .customLong("bulk-in-flight"), help: "scheduleJobs calls outstanding at once when scheduling in bulk.")
    var bulkInFlight: Int = 2

    @Option(name: .customLong("single-jobs"), help: "Jobs scheduled one at a time.")
    var singleJobs: Int = 20_000

    @Flag(
        name: .customLong("producer-on-event-loop"), inversion: .prefixedNo,
        help: "Run the one-at-a-time producer on the Redis client's event loop (RedisClient.taskExecutor)."
    )
    var producerOnEventLoop = true

    @Option(name: .customLong("latency-jobs"), help: "Stamp jobs per idle-latency series (due now; due in 1 s).")
    var latencyJobs: Int = 200

    @Option(name: .customLong("latency-spacing-ms"), help: "Pause between two idle-latency jobs, ms.")
    var latencySpacingMs: Int = 5

    @Option(name: .customLong("load-fraction"), help: "Load as a fraction of the 1-process end-to-end rate.")
    var loadFraction: Double = 0.5

    @Option(name: .customLong("load-rate"), help: "Load in jobs/s (overrides --load-fraction).")
    var loadRate: Double?

    @Option(name: .customLong("load-seconds"), help: "How long the load is applied, s.")
    var loadSeconds: Double = 6

    @Option(name: .customLong("load-warmup-seconds"), help: "Jobs of the load's first seconds are not counted.")
    var loadWarmupSeconds: Double = 1

    @Option(name: .customLong("future-jobs"), help: "Jobs due tomorrow waiting during the claim-cost run (issue 6 asks about 1,000,000).")
    var futureJobs: Int = 200_000

    @Option(name: .customLong("memory-jobs"), help: "Pending jobs for the memory measure.")
    var memoryJobs: Int = 100_000

    @Option(name: .customLong("payload-bytes"), help: "Size of the memory measure's payload (a JSON string), bytes.")
    var payloadBytes: Int = 100

    @Flag(inversion: .prefixedNo, help: "Run an archiver in the first worker process (production setup).")
    var archiver = true

    @Flag(help: "Schedule with a tracer (ids, attributes and a traceparent per span, no exporter), so every job carries a trace context; workers run without one.")
    var trace = false

    @Option(name: .customLong("set-clients"), help: "redis-benchmark clients (-c).")
    var setClients: Int = 50

    @Option(name: .customLong("set-requests"), help: "redis-benchmark requests (-n).")
    var setRequests: Int = 200_000

    @Option(help: "Run everything this many times and report the medians.")
    var `repeat`: Int = 1

    @Flag(help: "Print the results as JSON instead of a table.")
    var json = false

    func validate() throws {
        _ = try measures()
        _ = try processCounts()
        guard jobs >= 1, concurrency >= 1, bulkChunk >= 1, bulkInFlight >= 1, singleJobs >= 1, latencyJobs >= 1,
            latencySpacingMs >= 0, futureJobs >= 0, memoryJobs >= 1, payloadBytes >= 2, setClients >= 1, setRequests >= 1,
            `repeat` >= 1
        else { throw ValidationError("counts must be positive (--payload-bytes at least 2, --future-jobs and --latency-spacing-ms at least 0)") }
        guard loadFraction > 0, loadSeconds > loadWarmupSeconds, loadWarmupSeconds >= 0, (loadRate ?? 1) > 0 else {
            throw ValidationError("--load-fraction and --load-rate must be positive, --load-seconds above --load-warmup-seconds")
        }
    }

    func processCounts() throws -> [Int] {
        let counts = workerProcesses.split(separator: ",").map { Int($0.trimmingCharacters(in: .whitespaces)) }
        guard !counts.isEmpty, counts.allSatisfy({ ($0 ?? 0) >= 1 }) else {
            throw ValidationError("--worker-processes must be positive integers, comma-separated, e.g. 1,2")
        }
        return counts.map { $0! }
    }

    func measures() throws -> Set<Measure> {
        func parse(_ text: String) throws -> Set<Measure> {
            Set(try text.split(separator: ",").map { word in
                let name = word.trimmingCharacters(in: .whitespaces)
                guard let measure = Measure(rawValue: name) else {
                    throw ValidationError("unknown measure \"\(name)\"; known: \(Measure.allCases.map(\.rawValue).joined(separator: ", "))")
                }
                return measure
            })
        }
        var selected = try only.map(parse) ?? Set(Measure.allCases)
        if let skip { selected.subtract(try parse(skip)) }
        return selected
    }

    func run() async throws {
        let binary = conveyorPath ?? Self.siblingExecutable("conveyor")
        guard FileManager.default.isExecutableFile(atPath: binary) else {
            throw BenchError("\(binary) is missing: build it with `swift build -c release --product conveyor` (or pass --conveyor PATH)")
        }
        let scratch = FileManager.default.temporaryDirectory.appendingPathComponent("conveyor-e2e-bench-\(getpid())").path
        try FileManager.default.createDirectory(atPath: scratch, withIntermediateDirectories: true)
        let settings = Settings(
            measures: try measures(), jobs: jobs, concurrency: concurrency, workerProcesses: try processCounts(), bulkChunk: bulkChunk, bulkInFlight: bulkInFlight,
            singleJobs: singleJobs, producerOnEventLoop: producerOnEventLoop, latencyJobs: latencyJobs, latencySpacing: .milliseconds(latencySpacingMs),
            loadFraction: loadFraction, loadRate: loadRate, loadDuration: .milliseconds(Int(loadSeconds * 1_000)),
            loadWarmup: .milliseconds(Int(loadWarmupSeconds * 1_000)), futureJobs: futureJobs, memoryJobs: memoryJobs,
            payloadBytes: payloadBytes, archiver: archiver, trace: trace, setClients: setClients, setRequests: setRequests,
            binary: binary, scratch: scratch
        )
        let loadBefore = Self.loadAverage()
        let target = try await Target.open(url: redisURL)
        var runs: [[String: Double]] = []
        var notes: [String] = []
        do {
            for repetition in 1...`repeat` {
                let bench = Bench(target: target, settings: settings, repetition: repetition)
                try await bench.runAll()
                runs.append(bench.results)
                if repetition == 1 { notes = bench.notes }
            }
        } catch {
            await target.close()
            FileHandle.standardError.write(Data("error: \(error)\nworker logs are in \(scratch)\n".utf8))
            throw ExitCode.failure
        }
        let report = E2EReport(
            settings: settings, runs: runs, notes: notes, redisVersion: await target.version(),
            server: redisURL == nil ? "private redis-server (\(target.url))" : "redis at \(target.configuration.redactedURL)",
            loadAverage: "\(loadBefore) before, \(Self.loadAverage()) after",
            command: CommandLine.arguments.joined(separator: " "),
            setCommand: RedisBenchmark.printable(for: target.configuration, clients: setClients, requests: setRequests),
            workerCommand: "\(binary) worker --redis <url> --namespace <ns> --concurrency \(concurrency) --grace-period 5 --log-level warning"
                + (archiver ? " [--archiver --history-dir <dir> on the first]" : "")
        )
        await target.close()
        try? FileManager.default.removeItem(atPath: scratch)
        print(json ? report.json() : report.table())
    }

    /// The 1, 5 and 15 minute load averages (`/proc/loadavg`), to judge how quiet the machine was.
    static func loadAverage() -> String {
        guard let text = try? String(contentsOfFile: "/proc/loadavg", encoding: .utf8) else { return "?" }
        return text.split(separator: " ").prefix(3).joined(separator: " ")
    }

    /// `name` in the directory of this executable (`/proc/self/exe`, else argv[0]).
    static func siblingExecutable(_ name: String) -> String {
        let own = (try? FileManager.default.destinationOfSymbolicLink(atPath: "/proc/self/exe")) ?? CommandLine.arguments[0]
        return URL(fileURLWithPath: own).deletingLastPathComponent().appendingPathComponent(name).path
    }
}
