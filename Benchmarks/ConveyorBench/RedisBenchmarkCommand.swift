import ConveyorTesting
import ArgumentParser
import ConveyorRedis
import Foundation
import NIOCore
import NIOPosix

/// `conveyor-bench redis`: the Conveyor Redis client against `redis-benchmark`,
/// on one server, with equal concurrency, pipelining and request count.
struct RedisBenchmarkCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "redis",
        abstract: "Compare the Conveyor Redis client with redis-benchmark (PING and EVALSHA).",
        discussion: """
            Starts a private redis-server (or uses --redis URL) and, for every command, \
            concurrency and pipeline depth, measures the Conveyor client and then \
            `redis-benchmark -c C -n N -P P --csv <command>` with the same C, P and N. \
            With more than one caller the client is measured at every --pool-sizes value \
            and the best is reported. A warm-up precedes every measurement.
            """
    )

    @Option(name: .customLong("redis"), help: "Redis URL to benchmark against instead of a private redis-server.")
    var redisURL: String?

    @Option(help: "Commands to measure, comma-separated: ping, evalsha.")
    var commands: CommaSeparated<BenchmarkCommand> = CommaSeparated([.ping, .evalsha])

    @Option(help: "Concurrent callers (redis-benchmark clients), comma-separated.")
    var concurrency: CommaSeparated<Int> = CommaSeparated([1, 50])

    @Option(help: "Pipeline depths, comma-separated; 1 means every caller awaits each reply.")
    var pipeline: CommaSeparated<Int> = CommaSeparated([1, 16])

    @Option(help: "Client pool sizes tried when there is more than one caller; the best is reported.")
    var poolSizes: CommaSeparated<Int> = CommaSeparated([1, 2, 4])

    @Option(help: "Total requests per measurement, for both tools (default: 50k to 1M, by scenario).")
    var requests: Int?

    @Option(help: "Warm-up requests before each measurement (default: a tenth of the requests).")
    var warmup: Int?

    @Option(help: "Measure everything this many times, interleaved, and report the medians.")
    var `repeat`: Int = 1

    @Option(help: "NIO event loop threads for the client (default: NIO's shared group, one per core).")
    var eventLoopThreads: Int?

    @Flag(help: """
        Run Swift concurrency on NIO's event loops (NIOSingletons' global-executor take-over), \
        so callers and socket I/O share threads; an application-level choice, shown for comparison.
        """)
    var nioExecutor = false

    @Flag(inversion: .prefixedNo, help: """
        Pin the private redis-server to CPU 0 and this process (client threads and redis-benchmark) \
        to the other CPUs, with taskset, so both tools get the same cores and never share the \
        server's. Ignored with --redis or on a single CPU.
        """)
    var pin = true

    @Flag(help: "Print the results as JSON instead of a table.")
    var json = false

    func validate() throws {
        guard `repeat` >= 1 else { throw ValidationError("--repeat must be at least 1") }
        guard concurrency.values.allSatisfy({ $0 >= 1 }), pipeline.values.allSatisfy({ $0 >= 1 }),
            poolSizes.values.allSatisfy({ $0 >= 1 })
        else { throw ValidationError("concurrency, pipeline and pool sizes must be at least 1") }
        if let requests, requests < 1 { throw ValidationError("--requests must be at least 1") }
        if let eventLoopThreads, eventLoopThreads < 1 { throw ValidationError("--event-loop-threads must be at least 1") }
    }

    func run() async throws {
        let server: RedisServerProcess?
        let configuration: RedisConfiguration
        if let redisURL {
            server = nil
            configuration = try RedisConfiguration(url: redisURL)
        } else {
            let started = try await RedisServerProcess.start()
            server = started
            configuration = try RedisConfiguration(url: started.url)
        }
        let pinned = pin && server != nil && ProcessInfo.processInfo.activeProcessorCount >= 2
        if pinned, let server {
            do {
                try await pinCPUs(server: server)
            } catch {
                await server.stop()
                throw error
            }
        }
        let group: MultiThreadedEventLoopGroup? = eventLoopThreads.map { MultiThreadedEventLoopGroup(numberOfThreads: $0) }
        let result: Result<Report, any Error>
        do {
            result = .success(try await measure(configuration: configuration, eventLoopGroup: group ?? .singleton, pinned: pinned))
        } catch {
            result = .failure(error)
        }
        try? await group?.shutdownGracefully()
        await server?.stop()
        let report = try result.get()
        print(json ? report.json() : report.table())
    }

    private func measure(configuration: RedisConfiguration, eventLoopGroup: any EventLoopGroup, pinned: Bool) async throws -> Report {
        let tool = try RedisBenchmarkTool(configuration: configuration)
        // One hash tag for the benchmark's only key, as every Conveyor key has.
        let key = "conveyor-bench:{bench}:counter"
        let script = RedisScript(name: "benchIncr", source: BenchmarkCommand.luaSource)
        let call = RedisScriptCall(script, keys: [key], arguments: [])

        let setup = RedisClient(configuration: configuration, eventLoopGroup: eventLoopGroup)
        let serverVersion: String
        let sha: String
        do {
            try await setup.load(script)
            guard let loaded = script.sha else { throw BenchmarkError("SCRIPT LOAD returned no SHA") }
            sha = loaded
            let info = try await setup.send("INFO", "server").string ?? ""
            serverVersion = info.split(whereSeparator: \.isNewline)
                .first { $0.hasPrefix("redis_version:") }
                .map { String($0.dropFirst("redis_version:".count)) } ?? "unknown"
        } catch {
            await setup.shutdown()
            throw error
        }

        var scenarios: [Scenario] = []
        for command in commands.values {
            for callers in concurrency.values {
                for depth in pipeline.values {
                    scenarios.append(Scenario(
                        command: command, concurrency: callers, pipeline: depth,
                        requests: requests ?? Scenario.defaultRequests(concurrency: callers, pipeline: depth)
                    ))
                }
            }
        }
        func pools(_ scenario: Scenario) -> [Int] { scenario.concurrency > 1 ? poolSizes.values : [1] }
        func redisBenchmarkCommand(_ scenario: Scenario) -> [String] {
            switch scenario.command {
            case .ping: ["PING"]
            case .evalsha: ["EVALSHA", sha, "1", key]
            }
        }

        var clientSamples: [Scenario: [Int: [ClientSample]]] = [:]
        var toolSamples: [Scenario: [RedisBenchmarkSample]] = [:]
        let total = `repeat` * scenarios.reduce(0) { $0 + pools($1).count + 1 }
        var step = 0
        func progress(_ text: String) {
            step += 1
            FileHandle.standardError.write(Data("[\(step)/\(total)] \(text)\n".utf8))
        }

        for round in 1...`repeat` {
            for scenario in scenarios {
                let warmupRequests = warmup ?? max(scenario.requests / 10, scenario.concurrency * scenario.pipeline)
                for poolSize in pools(scenario) {
                    var clientConfiguration = configuration
                    clientConfiguration.poolSize = poolSize
                    let client = RedisClient(configuration: clientConfiguration, eventLoopGroup: eventLoopGroup)
                    let runner = ClientRunner(client: client, call: call)
                    let sample: ClientSample
                    do {
                        _ = try await runner.run(scenario, requests: warmupRequests)
                        sample = try await runner.run(scenario, requests: scenario.requests)
                    } catch {
                        await client.shutdown()
                        throw error
                    }
                    await client.shutdown()
                    clientSamples[scenario, default: [:]][poolSize, default: []].append(sample)
                    progress("run \(round) \(scenario.label) pool=\(poolSize) Conveyor: \(formatRate(sample.opsPerSecond)) ops/s")
                }
                let command = redisBenchmarkCommand(scenario)
                _ = try await tool.run(clients: scenario.concurrency, requests: warmupRequests, pipeline: scenario.pipeline, command: command)
                let sample = try await tool.run(
                    clients: scenario.concurrency, requests: scenario.requests, pipeline: scenario.pipeline, command: command
                )
                toolSamples[scenario, default: []].append(sample)
                progress("run \(round) \(scenario.label) redis-benchmark: \(formatRate(sample.opsPerSecond)) ops/s")
            }
        }
        _ = try? await setup.send("DEL", key)
        await setup.shutdown()

        var rows: [Report.Row] = []
        var sweep: [Report.PoolRow] = []
        for scenario in scenarios {
            let reference = toolSamples[scenario] ?? []
            let referenceRate = median(reference.map(\.opsPerSecond))
            var best: Report.Row?
            for poolSize in pools(scenario) {
                let samples = clientSamples[scenario]?[poolSize] ?? []
                let rate = median(samples.map(\.opsPerSecond))
                sweep.append(Report.PoolRow(
                    benchmark: scenario.command.displayName, concurrency: scenario.concurrency, pipeline: scenario.pipeline,
                    poolSize: poolSize, conveyorOpsPerSecond: rate, ratio: rate / referenceRate,
                    conveyorRuns: samples.map(\.opsPerSecond)
                ))
                let row = Report.Row(
                    benchmark: scenario.command.displayName, concurrency: scenario.concurrency, pipeline: scenario.pipeline,
                    requests: scenario.requests, poolSize: poolSize,
                    conveyorOpsPerSecond: rate, redisBenchmarkOpsPerSecond: referenceRate, ratio: rate / referenceRate,
                    pairedRatio: median(zip(samples, reference).map { $0.opsPerSecond / $1.opsPerSecond }),
                    conveyorP50Microseconds: median(samples.map(\.p50Microseconds)),
                    conveyorP99Microseconds: median(samples.map(\.p99Microseconds)),
                    redisBenchmarkP50Microseconds: median(reference.map(\.p50Microseconds)),
                    conveyorRuns: samples.map(\.opsPerSecond), redisBenchmarkRuns: reference.map(\.opsPerSecond),
                    redisBenchmarkCommand: tool.printable(
                        clients: scenario.concurrency, requests: scenario.requests, pipeline: scenario.pipeline,
                        command: redisBenchmarkCommand(scenario)
                    )
                )
                if best == nil || rate > best!.conveyorOpsPerSecond { best = row }
            }
            if let best { rows.append(best) }
        }
        return Report(
            cores: ProcessInfo.processInfo.activeProcessorCount,
            redisVersion: serverVersion,
            server: configuration.redactedURL,
            eventLoopThreads: eventLoopThreads ?? System.coreCount,
            pinned: pinned ? "redis-server on CPU 0, client and redis-benchmark on CPU \(otherCPUs)" : nil,
            executor: nioExecutor ? "NIO event loops (global-executor take-over)" : "Swift default (cooperative pool)",
            repeats: `repeat`,
            rows: rows,
            poolSweep: sweep.filter { $0.concurrency > 1 }
        )
    }
}

extension RedisBenchmarkCommand {
    /// Every CPU but 0, in taskset's list syntax.
    private var otherCPUs: String {
        let last = ProcessInfo.processInfo.activeProcessorCount - 1
        return last == 1 ? "1" : "1-\(last)"
    }

    /// Pins the server to CPU 0 and every thread of this process to the
    /// other CPUs. Threads created later, and redis-benchmark (a child),
    /// inherit the mask.
    private func pinCPUs(server: RedisServerProcess) async throws {
        guard let taskset = RedisServerProcess.findExecutable("taskset") else {
            throw BenchmarkError("--pin needs taskset (Debian package util-linux)")
        }
        let probe = RedisClient(configuration: try RedisConfiguration(url: server.url))
        let info = (try? await probe.send("INFO", "server").string) ?? ""
        await probe.shutdown()
        guard let line = info.split(whereSeparator: \.isNewline).first(where: { $0.hasPrefix("process_id:") }),
            let serverPID = Int(line.dropFirst("process_id:".count))
        else { throw BenchmarkError("cannot learn redis-server's process id from INFO") }
        for arguments in [["-p", "-c", "0", String(serverPID)], ["-a", "-p", "-c", otherCPUs, String(getpid())]] {
            let process = try ChildProcess.spawn(taskset, arguments: arguments)
            await process.waitForExit(timeout: .seconds(10))
        }
    }
}

/// A comma-separated option value, e.g. `--concurrency 1,50`.
struct CommaSeparated<Element: ExpressibleByArgument & Sendable>: ExpressibleByArgument, Sendable {
    var values: [Element]

    init(_ values: [Element]) {
        self.values = values
    }

    init?(argument: String) {
        var values: [Element] = []
        for part in argument.split(separator: ",") {
            guard let value = Element(argument: part.trimmingCharacters(in: .whitespaces)) else { return nil }
            values.append(value)
        }
        guard !values.isEmpty else { return nil }
        self.values = values
    }

    var defaultValueDescription: String {
        values.map { "\($0)" }.joined(separator: ",")
    }
}
