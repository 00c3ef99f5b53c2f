import ArgumentParser
import Conveyor
import Foundation
import Logging
import ServiceLifecycle
import Synchronization

struct DemoCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "demo",
        abstract: "Schedule example jobs (a retrying one and a */2-second cron job among them) and run a worker, printing what runs, until Ctrl-C.",
        discussion: """
            Examples:
              conveyor demo
              conveyor demo --duration 20 --redis redis://localhost:6379
            """
    )

    /// The types the demo schedules; the command exists only in apps that run them all.
    static let jobTypes: Set<String> = ["echo", "sleep", "flaky", "fail", "noop"]

    @Option(name: .long, help: ArgumentHelp("Stop after this many seconds (default: run until Ctrl-C).", valueName: "s"))
    var duration: Double?

    @Option(name: .long, help: "Key namespace for the demo's jobs.")
    var namespace: String = "conveyor-demo"

    /// Without a URL: 127.0.0.1:6379 if it answers, else a private redis-server.
    @OptionGroup var connection: RedisConnectionOptions

    func run() async throws {
        var logger = Logger(label: "conveyor.demo")
        logger.logLevel = .notice
        let environment = CLIEnvironment.installed
        var options = try RedisOptions.parse(["--namespace", namespace])
        options.connection = connection
        let (client, server) = try await options.clientOrEmbeddedServer { print("• \($0)") }
        let keys = try await options.keys(for: client)
        print("• Redis: \(client.configuration.redactedURL), namespace \"\(namespace)\"")
        print("• job types: \(environment.jobTypeNames.joined(separator: ", "))")

        let scheduler = JobScheduler(
            client: client, configuration: .init(keys: keys, knownJobTypes: Set(environment.jobTypeNames))
        )
        .checkingInput(environment.inputCheck)
        // A fresh start: the demo's own namespace only, with SCAN (the server
        // may be a shared 127.0.0.1:6379, where KEYS would block everyone).
        // On a cluster each master holds some partitions: SCAN runs on every one.
        for node in try await client.clusterMasters() {
            for partition in keys.partitions {
                var cursor = "0"
                repeat {
                    let scan = RedisCommand("SCAN", arguments: [cursor, "MATCH", partition.prefix + "*", "COUNT", 1000])
                    let reply = try await client.send(scan, to: node).array ?? []
                    cursor = reply.first?.string ?? "0"
                    let stale = reply.dropFirst().first?.array?.compactMap(\.string) ?? []
                    // All of one partition's keys share its hash tag: one slot, one DEL.
                    if !stale.isEmpty { try await client.send(RedisCommand("DEL", routingKey: partition.prefix, arguments: stale)) }
                } while cursor != "0"
            }
        }

        let start = Date()
        var scheduled: [(String, WorkerJob)] = []
        scheduled.append(("echo returns its input", try await scheduler.scheduleJob(UntypedJobConfig(type: "echo", userId: 1, dataJSON: #"{"hello":"world"}"#))))
        scheduled.append(("sleep for 300 ms", try await scheduler.scheduleJob(UntypedJobConfig(type: "sleep", userId: 1, dataJSON: #"{"ms":300}"#))))
        scheduled.append(("due in 3 s", try await scheduler.scheduleJob(UntypedJobConfig(type: "echo", userId: 2, due: start.addingTimeInterval(3), dataJSON: #"{"late":true}"#))))
        scheduled.append(("flaky: fails twice, auto-retries every 500 ms", try await scheduler.scheduleJob(UntypedJobConfig(type: "flaky", userId: 1, dataJSON: #"{"succeedOnAttempt":3}"#, autoRescheduleOnFailure: true, autoRescheduleOnFailureDelay: 500))))
        scheduled.append(("fails, no retry", try await scheduler.scheduleJob(UntypedJobConfig(type: "fail", userId: 1, dataJSON: #"{"message":"boom"}"#))))
        scheduled.append(("cron */2 * * * * *", try await scheduler.scheduleCronJob(UntypedJobConfig(type: "noop", userId: 0), cron: "*/2 * * * * *")))
        let replaced = try await scheduler.scheduleJob(UntypedJobConfig(type: "echo", userId: 2, due: start.addingTimeInterval(3), dataJSON: #"{"late":"replaced"}"#))
        scheduled.append(("same type and user: replaces the pending job \(scheduled[2].1.id)", replaced))
        print("• scheduled:")
        for (what, job) in scheduled {
            print("    job \(job.id) \(job.type) user \(job.userId) due +\(Int(job.due.timeIntervalSince(start) * 1000)) ms — \(what)")
        }
        print("• worker running (Ctrl-C to stop)\n")

        let clock = ContinuousClock()
        let began = clock.now
        let pool = try await environment.makePool(client, WorkerPoolConfiguration(concurrency: 4, keys: keys), logger) { event in
            let at = String(format: "%7.3f s", Double((clock.now - began).components.attoseconds) / 1e18 + Double((clock.now - began).components.seconds))
            let job = event.job
            let chain = job.rescheduledFromJob.map { " (from job \($0))" } ?? ""
            let mark = event.success ? "✔" : "✘"
            var line = "\(at)  \(mark) job \(job.id) \(job.type) user \(job.userId) attempt \(job.attempt)\(chain): "
            line += (event.success ? "result " : "failed ") + (event.resultJSON ?? "null")
            if let next = event.followUpJobId {
                line += job.cronSchedule != nil && event.success ? "  → next cron run: job \(next)" : "  → retry: job \(next)"
            }
            print(line)
        }
        let group = ServiceGroup(
            configuration: .init(
                // Shut down in reverse order: the pool before the client it writes with.
                services: [.init(service: client), .init(service: pool)],
                gracefulShutdownSignals: [.sigterm, .sigint],
                logger: logger
            )
        )
        if let duration {
            try await withThrowingTaskGroup(of: Void.self) { tasks in
                tasks.addTask { try await group.run() }
                tasks.addTask {
                    try await Task.sleep(for: .milliseconds(Int(duration * 1000)))
                    await group.triggerGracefulShutdown()
                }
                try await tasks.next()
                tasks.cancelAll()
            }
        } else {
            try await group.run()
        }
        print("\n• stopped")
        await server?.stop()
    }
}
