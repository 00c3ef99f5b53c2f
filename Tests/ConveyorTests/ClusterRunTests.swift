import ConveyorRedis
import Foundation
import Synchronization
import Testing

@testable import Conveyor
@testable import ConveyorCLI

/// Scheduling, workers and the archiver on a real local Redis Cluster
/// (3 masters, 3 replicas) started by `scripts/with-redis-cluster.sh`, which
/// exports `REDIS_CLUSTER_URL` (`make test` runs the suite under it).
@Suite("Redis Cluster runs", .serialized)
struct ClusterRunTests {
    /// Runs `body` with a cluster client and a fresh namespace whose keys are
    /// deleted afterwards on every master; records an issue (a failure, never a
    /// silent skip) when no cluster is configured.
    static func withCluster(
        poolSize: Int = 4, _ body: (RedisClient, _ namespace: String) async throws -> Void
    ) async throws {
        guard let url = ProcessInfo.processInfo.environment["REDIS_CLUSTER_URL"], !url.isEmpty else {
            Issue.record("REDIS_CLUSTER_URL is not set: run the suite under scripts/with-redis-cluster.sh (make test does)")
            return
        }
        var configuration = try RedisConfiguration(url: url)
        configuration.poolSize = poolSize
        configuration.commandTimeout = .seconds(30)
        let client = RedisClient(configuration: configuration)
        let namespace = "test-\(UUID().uuidString)"
        do {
            try await body(client, namespace)
        } catch {
            await cleanUp(client, namespace)
            throw error
        }
        await cleanUp(client, namespace)
    }

    /// The namespace's keys on each master (`SCAN` runs per master on a cluster).
    static func keysByMaster(_ client: RedisClient, namespace: String) async throws -> [(RedisClusterNode, [String])] {
        var result: [(RedisClusterNode, [String])] = []
        for node in try await client.clusterMasters() {
            var cursor = "0"
            var found: [String] = []
            repeat {
                let reply = try await client.send(RedisCommand("SCAN", arguments: [cursor, "MATCH", "\(namespace):*", "COUNT", 1000]), to: node)
                cursor = reply.array?.first?.string ?? "0"
                found += reply.array?.dropFirst().first?.array?.compactMap(\.string) ?? []
            } while cursor != "0"
            result.append((node, found))
        }
        return result
    }

    private static func cleanUp(_ client: RedisClient, _ namespace: String) async {
        if let byMaster = try? await keysByMaster(client, namespace: namespace) {
            let commands = byMaster.flatMap(\.1).map { RedisCommand("DEL", routingKey: $0, arguments: [$0]) }
            for start in stride(from: 0, to: commands.count, by: 500) {
                _ = try? await client.pipeline(Array(commands[start..<min(start + 500, commands.count)]))
            }
        }
        await client.shutdown()
    }

    /// Polls until `condition` holds or `timeout` passes.
    static func waitFor(timeout: Duration, _ condition: () async throws -> Bool) async throws -> Bool {
        let deadline = ContinuousClock.now + timeout
        while ContinuousClock.now < deadline {
            if try await condition() { return true }
            try await Task.sleep(for: .milliseconds(50))
        }
        return try await condition()
    }

    @Test("spread tags on 3 masters: jobs land on every master, every job runs once, the archive is complete")
    func scheduleRunArchive() async throws {
        try await Self.withCluster(poolSize: 8) { client, ns in
            let masters = try await client.clusterMasters()
            #expect(masters.count == 3)
            let keys = try ConveyorKeys(namespace: ns, partitionCount: 6, partitionTags: .slotSpread)
            let owners = keys.partitions.map { partition in
                masters.firstIndex { $0.owns(slot: RedisCluster.slot(forKey: partition.due)) } ?? -1
            }
            #expect(masters.indices.map { master in owners.filter { $0 == master }.count } == [2, 2, 2], "\(owners)")
            for partition in keys.partitions {
                let slot = try await client.send(RedisCommand("CLUSTER", routingKey: nil, arguments: ["KEYSLOT", partition.due])).int
                #expect(slot == RedisCluster.slot(forKey: partition.due), "the server agrees on \(partition.due)'s slot")
            }

            let scheduler = JobScheduler(client: client, configuration: .init(keys: keys))
            let count = 600
            let configs = (1...count).map { WorkerJobConfig(WorkerEchoJob.self, userId: $0, data: .integer(Int64($0))) }
            let scheduled = try await scheduler.scheduleJobs(configs)
            #expect(scheduled.count == count)
            let ids = Set(scheduled.map(\.id))
            #expect(ids.count == count)
            let jobKeysPerMaster = try await Self.keysByMaster(client, namespace: ns).map { $0.1.filter { $0.contains(":job:") }.count }
            #expect(jobKeysPerMaster.count == 3 && jobKeysPerMaster.allSatisfy { $0 > count / 6 }, "job hashes per master: \(jobKeysPerMaster)")
            #expect(try await JobInspector(client: client, keys: keys).counts()[.pending] == count)

            let directory = ArchiverTestSupport.temporaryDirectory("cluster")
            defer { try? FileManager.default.removeItem(atPath: directory) }
            let archiverEvents = ArchiverEventLog()
            let config = ArchiverTestSupport.configuration(directory, keys: keys, archiverId: "cluster-archiver")
            try await ArchiverTestSupport.withArchiver(client, config, events: archiverEvents) { _ in
                let executions: [Int: Int] = try await withWorkerPool(
                    client, namespace: ns,
                    configure: {
                        $0.keys = keys
                        $0.concurrency = 16
                    }
                ) { _, app, events, _ in
                    let done = try await Self.waitFor(timeout: .seconds(90)) { events.withLock { $0.count } >= count }
                    #expect(done, "\(events.withLock { $0.count }) of \(count) jobs ran")
                    return app.executions.withLock { $0 }
                }
                #expect(Set(executions.keys) == ids, "every scheduled job ran")
                #expect(executions.values.allSatisfy { $0 == 1 }, "no job ran twice without a failure")
                let archived = try await Self.waitFor(timeout: .seconds(60)) {
                    try await Archiver.backlog(client: client, keys: keys) == 0
                }
                #expect(archived, "the archiver's backlog did not drain")
            }
            #expect(archiverEvents.failures.isEmpty, "\(archiverEvents.failures)")
            let logged = try ArchiverTestSupport.loggedIds(directory)
            #expect(Set(logged) == ids, "the history holds every job: \(Set(logged).symmetricDifference(ids).count) differ")
            #expect(ArchiverTestSupport.duplicates(logged).isEmpty)
            let left = try await Self.keysByMaster(client, namespace: ns).flatMap(\.1).filter { $0.contains(":job:") }
            #expect(left.isEmpty, "job hashes left: \(left.prefix(5))")
        }
    }

    @Test("an idle worker is woken on a cluster (per-partition BLPOP, no CROSSSLOT) long before its idle timer")
    func wakeUpAcrossMasters() async throws {
        try await Self.withCluster { client, ns in
            let keys = try ConveyorKeys(namespace: ns, partitionCount: 6, partitionTags: .slotSpread)
            try await withWorkerPool(
                client, namespace: ns,
                configure: {
                    $0.keys = keys
                    // Without a wake-up, jobs would wait for this timer.
                    $0.maxIdleWait = .seconds(60)
                }
            ) { _, app, events, _ in
                // The helper's scheduler uses one partition; this one the pool's layout.
                let scheduler = JobScheduler(client: client, configuration: .init(keys: keys))
                // Let the pool claim once, find nothing and go idle.
                try await Task.sleep(for: .milliseconds(500))
                var scheduled: [Int] = []
                for userId in 1...12 {
                    scheduled.append(try await scheduler.scheduleJob(WorkerJobConfig(WorkerEchoJob.self, userId: userId, data: .null)).id)
                }
                #expect(Set(scheduled.map { keys.partition(ofJob: $0).index }).count > 3, "jobs in several partitions")
                let ran = try await Self.waitFor(timeout: .seconds(20)) { events.withLock { $0.count } >= scheduled.count }
                #expect(ran, "woken jobs ran: \(events.withLock { $0.count }) of \(scheduled.count)")
                #expect(Set(app.executions.withLock { $0.keys }) == Set(scheduled))
            }
        }
    }

    @Test("the CLI defaults to spread tags for a new namespace on redis+cluster://, and keeps what a namespace records")
    func cliDefaultsToSpreadOnCluster() async throws {
        try await Self.withCluster { client, ns in
            let options = try RedisOptions.parse(["--namespace", ns, "--partitions", "3"])
            let keys = try await options.keys(for: client)
            #expect(keys.partitionTags == .slotSpread)
            // cluster-status: one spread partition per master; indexed {p0}…{p2} leave one idle.
            let masters = try await client.clusterMasters()
            #expect(ClusterStatusCommand.layout(keys: keys, masters: masters).map(\.partitions.count) == [1, 1, 1])
            let indexed = try ConveyorKeys(namespace: ns, partitionCount: 3)
            #expect(ClusterStatusCommand.layout(keys: indexed, masters: masters).map(\.partitions.count).contains(0))
            let other = try RedisOptions.parse(["--namespace", ns + "-old", "--partitions", "3"])
            let old = try ConveyorKeys(namespace: ns + "-old", partitionCount: 3)
            try await old.verifyLayout(client: client)
            #expect(try await other.keys(for: client).partitionTags == .indexed, "an indexed namespace stays indexed")
            _ = try await client.send(RedisCommand("DEL", routingKey: old.layout, arguments: [old.layout]))
        }
    }

    /// Jobs of the failover run: a few thousand in `make test`;
    /// `CONVEYOR_CLUSTER_FAILOVER_JOBS=20000` (what `make chaos-cluster` sets) for the issue's run.
    static var failoverJobCount: Int {
        ProcessInfo.processInfo.environment["CONVEYOR_CLUSTER_FAILOVER_JOBS"].flatMap(Int.init) ?? 3000
    }

    /// The producer's `replicaAcknowledgements` in the failover run
    /// (`CONVEYOR_CLUSTER_FAILOVER_REPLICA_ACKS`, default 0: no `WAIT`) and its
    /// `replicaTimeout` (`CONVEYOR_CLUSTER_FAILOVER_REPLICA_TIMEOUT_MS`, default 100).
    static var failoverReplicaSettings: (acks: Int, timeout: Duration) {
        let environment = ProcessInfo.processInfo.environment
        let acks = environment["CONVEYOR_CLUSTER_FAILOVER_REPLICA_ACKS"].flatMap(Int.init) ?? 0
        let timeoutMs = environment["CONVEYOR_CLUSTER_FAILOVER_REPLICA_TIMEOUT_MS"].flatMap(Int.init) ?? 100
        return (acks, .milliseconds(timeoutMs))
    }

    @Test("a master SIGKILLed mid-run: its replica takes over, every acknowledged job that survived runs, nothing is stuck, the archive is complete")
    func failover() async throws {
        guard let clusterDir = ProcessInfo.processInfo.environment["REDIS_CLUSTER_DIR"], !clusterDir.isEmpty else {
            Issue.record("REDIS_CLUSTER_DIR is not set: run the suite under scripts/with-redis-cluster.sh (make test does)")
            return
        }
        try await Self.withCluster(poolSize: 8) { client, ns in
            let keys = try ConveyorKeys(namespace: ns, partitionCount: 6, partitionTags: .slotSpread)
            let masters = try await client.clusterMasters()
            let victim = try #require(masters.first { $0.owns(slot: RedisCluster.slot(forKey: keys.partition(0).due)) })
            guard case .tcp(_, let victimPort) = victim.endpoint else {
                Issue.record("unexpected endpoint \(victim.endpoint)")
                return
            }
            let victimPartitions = Set(keys.partitions.filter { victim.owns(slot: RedisCluster.slot(forKey: $0.due)) }.map(\.index))
            let count = Self.failoverJobCount
            var schedulerConfiguration = JobScheduler.Configuration(keys: keys)
            (schedulerConfiguration.replicaAcknowledgements, schedulerConfiguration.replicaTimeout) = Self.failoverReplicaSettings
            let scheduler = JobScheduler(client: client, configuration: schedulerConfiguration)
            let directory = ArchiverTestSupport.temporaryDirectory("cluster-failover")
            defer { try? FileManager.default.removeItem(atPath: directory) }
            let config = ArchiverTestSupport.configuration(directory, keys: keys, archiverId: "failover-archiver", batchSize: 500)
            var outcome: FailoverReport?
            try await ArchiverTestSupport.withArchiver(client, config) { _ in
                outcome = try await withWorkerPool(
                    client, namespace: ns,
                    configure: {
                        $0.keys = keys
                        $0.concurrency = 32
                        $0.leaseDuration = .seconds(3)
                        $0.leaseRenewInterval = .seconds(1)
                        $0.recoveryInterval = .seconds(1)
                        $0.recoveryGracePeriod = .milliseconds(1500)
                    }
                ) { _, _, events, _ in
                    try await Self.failoverRun(
                        client: client, scheduler: scheduler, keys: keys, events: events, count: count,
                        kill: { try Self.sigkill(port: victimPort, clusterDir: clusterDir) }
                    )
                }
            }
            let report = try #require(outcome)
            // The history (read after the archiver stopped) holds every job that ran.
            let logged = Set(try ArchiverTestSupport.loggedIds(directory))
            let leftPending = try await JobInspector(client: client, keys: keys).counts()
            let notReplicatedLost = report.lost.filter { report.notReplicatedIds.contains($0.id) }.count
            print(
                "cluster failover: \(count) jobs, \(report.acknowledged.count) acknowledged, \(report.failedBatches) batches failed, "
                    + "\(report.lost.count) acknowledged lost from scheduling (all on the killed master's partitions), "
                    + "\(report.ranTwice) ran more than once, longest wait for a schedule after the kill \(report.failoverMs) ms; "
                    + "replicaAcknowledgements \(schedulerConfiguration.replicaAcknowledgements): \(report.notReplicatedIds.count) "
                    + "reported not replicated (\(notReplicatedLost) of the lost); producer \(report.producerJobsPerSecond) jobs/s"
            )
            #expect(report.lost.allSatisfy { victimPartitions.contains(keys.partition(ofJob: $0.id).index) }, "losses only where the master died")
            #expect(report.lost.count < count / 10, "lost \(report.lost.count)")
            #expect(leftPending[.pending] == 0 && leftPending[.running] == 0, "nothing stuck: \(leftPending)")
            #expect(report.ranIds.subtracting(logged).isEmpty, "\(report.ranIds.subtracting(logged).count) ran but are not in the history")
            try await Self.restart(port: victimPort, clusterDir: clusterDir)
        }
    }

    @Test("WAIT 1 on the cluster: a replica acknowledges every scheduling call, single and bulk (prints the producer's jobs/s with and without)")
    func replicaAcknowledgementCost() async throws {
        let single = ProcessInfo.processInfo.environment["CONVEYOR_CLUSTER_WAIT_COST_JOBS"].flatMap(Int.init) ?? 200
        try await Self.withCluster { client, ns in
            let keys = try ConveyorKeys(namespace: ns, partitionCount: 6, partitionTags: .slotSpread)
            var rates: [Int: [(single: Int, bulk: Int)]] = [0: [], 1: []]
            var nextUser = 1
            // Interleaved, so load from other processes on this machine hits both alike.
            for acks in [0, 1, 0, 1] {
                var configuration = JobScheduler.Configuration(keys: keys)
                configuration.replicaAcknowledgements = acks
                configuration.replicaTimeout = .seconds(5)
                let scheduler = JobScheduler(client: client, configuration: configuration)
                let one = try await Self.produce(scheduler, users: nextUser..<nextUser + single, perCall: 1)
                nextUser += single
                let bulk = try await Self.produce(scheduler, users: nextUser..<nextUser + single * 10, perCall: 100)
                nextUser += single * 10
                #expect(one.short == 0 && bulk.short == 0, "calls reported not replicated: \(one.short) single, \(bulk.short) bulk")
                #expect(one.reported == (acks > 0) && bulk.reported == (acks > 0), "a replication report exactly when asked for")
                rates[acks]!.append((one.jobsPerSecond, bulk.jobsPerSecond))
            }
            print(
                "cluster WAIT cost: \(single) single calls, \(single * 10) jobs in calls of 100, per round (jobs/s): "
                    + "without WAIT \(rates[0]!.map { "\($0.single) single, \($0.bulk) bulk" }.joined(separator: "; ")); "
                    + "with WAIT 1 \(rates[1]!.map { "\($0.single) single, \($0.bulk) bulk" }.joined(separator: "; "))"
            )
        }
    }

    /// Schedules one job per user of `users`, `perCall` per awaited call; the
    /// calls that came back short of replicas, whether a report came, and jobs/s.
    static func produce(
        _ scheduler: JobScheduler, users: Range<Int>, perCall: Int
    ) async throws -> (short: Int, reported: Bool, jobsPerSecond: Int) {
        var short = 0
        var reported = true
        let start = ContinuousClock.now
        for first in stride(from: users.lowerBound, to: users.upperBound, by: perCall) {
            let configs = (first..<min(first + perCall, users.upperBound)).map {
                WorkerJobConfig(WorkerEchoJob.self, userId: $0, data: .integer(Int64($0)))
            }
            let scheduled = try await scheduler.scheduleJobsReportingReplication(configs)
            if scheduled.replication == nil { reported = false }
            if scheduled.replication?.isReplicated == false { short += 1 }
        }
        let seconds = (ContinuousClock.now - start) / .seconds(1)
        return (short, reported, Int(Double(users.count) / max(seconds, 0.001)))
    }

    final class ProgressCounter: Sendable {
        let value = Atomic<Int>(0)
    }

    struct FailoverReport: Sendable {
        /// Jobs `scheduleJobs` acknowledged (id, user).
        var acknowledged: [(id: Int, userId: Int)]
        /// Acknowledged jobs that never ran: lost with the master's unreplicated writes.
        var lost: [(id: Int, userId: Int)]
        var ranIds: Set<Int>
        var ranTwice: Int
        var failedBatches: Int
        var failoverMs: Int
        /// Acknowledged jobs whose call reported fewer replicas than asked for.
        var notReplicatedIds: Set<Int>
        /// Acknowledged jobs per second of the producer's whole loop (retries and the failover included).
        var producerJobsPerSecond: Int
    }

    /// Schedules `count` jobs in batches (users 1…count, one job each), kills
    /// the master after a third, and waits until every acknowledged job ran
    /// or is gone from Redis, and nothing is pending or running.
    static func failoverRun(
        client: RedisClient, scheduler: JobScheduler, keys: ConveyorKeys, events: EventLog, count: Int,
        kill: @escaping @Sendable () throws -> Void
    ) async throws -> FailoverReport {
        var acknowledged: [(id: Int, userId: Int)] = []
        var failedBatches = 0
        var notReplicatedIds: Set<Int> = []
        var completions: [ContinuousClock.Instant] = []
        // The kill comes from another task once a third is acknowledged, so it
        // lands while the producer (and the workers) have writes in flight.
        let progress = ProgressCounter()
        let killer = Task { () throws -> ContinuousClock.Instant in
            while progress.value.load(ordering: .relaxed) < count / 3 { try await Task.sleep(for: .milliseconds(1)) }
            try kill()
            return .now
        }
        let producerStart = ContinuousClock.now
        for start in stride(from: 1, through: count, by: 100) {
            let configs = (start..<min(start + 100, count + 1)).map { WorkerJobConfig(WorkerEchoJob.self, userId: $0, data: .integer(Int64($0))) }
            var tries = 0
            while true {
                do {
                    // Too few replicas is reported, not retried: the promoted master has none until the end.
                    let scheduled = try await scheduler.scheduleJobsReportingReplication(configs)
                    let jobs = scheduled.jobs
                    if scheduled.replication?.isReplicated == false { notReplicatedIds.formUnion(jobs.map(\.id)) }
                    acknowledged += jobs.map { ($0.id, $0.userId) }
                    progress.value.store(acknowledged.count, ordering: .relaxed)
                    completions.append(.now)
                    break
                } catch {
                    // Not acknowledged: some of the batch may exist; sent again
                    // (one pending job per (type, user): a resent job replaces the first).
                    failedBatches += 1
                    tries += 1
                    if tries > 100 { throw error }
                    try await Task.sleep(for: .milliseconds(100))
                }
            }
        }
        let producerSeconds = (ContinuousClock.now - producerStart) / .seconds(1)
        let killedAt = try await killer.value
        // Done when nothing more can run. Not as soon as every acknowledged job
        // has run: a completion the dead master acknowledged but never replicated
        // leaves its job `running` on the promoted replica, and recovery finishes
        // it (and re-runs it) only after its lease; that is at-least-once at work.
        _ = try await waitFor(timeout: .seconds(180)) {
            let counts = try await JobInspector(client: client, keys: keys).counts()
            return counts[.pending] == 0 && counts[.running] == 0
        }
        _ = try await waitFor(timeout: .seconds(60)) { try await Archiver.backlog(client: client, keys: keys) == 0 }
        let ranEvents = events.withLock { $0 }
        let ranUsers = Set(ranEvents.map(\.job.userId))
        var perUser: [Int: Int] = [:]
        for event in ranEvents { perUser[event.job.userId, default: 0] += 1 }
        // The producer's longest wait for an acknowledgement after the kill: the failover as callers see it.
        let afterKill = [killedAt] + completions.filter { $0 > killedAt }
        let failoverMs = zip(afterKill, afterKill.dropFirst()).map { Int(($1 - $0) / .milliseconds(1)) }.max() ?? -1
        return FailoverReport(
            acknowledged: acknowledged, lost: acknowledged.filter { !ranUsers.contains($0.userId) },
            ranIds: Set(ranEvents.filter(\.written).map(\.job.id)), ranTwice: perUser.values.filter { $0 > 1 }.count,
            failedBatches: failedBatches, failoverMs: failoverMs, notReplicatedIds: notReplicatedIds,
            producerJobsPerSecond: Int(Double(acknowledged.count) / max(producerSeconds, 0.001))
        )
    }

    /// SIGKILLs the cluster node listening on `port` (its pid from `REDIS_CLUSTER_DIR`).
    static func sigkill(port: Int, clusterDir: String) throws {
        let text = try String(contentsOfFile: "\(clusterDir)/\(port)/redis.pid", encoding: .utf8)
        let pid = try #require(Int32(text.trimmingCharacters(in: .whitespacesAndNewlines)))
        #expect(kill(pid, SIGKILL) == 0)
    }

    /// Runs `path` with an empty signal mask and default handlers: the test
    /// process blocks SIGTERM (for its signal handling), and a child would
    /// inherit that, so the cluster script's SIGTERM could not stop the node.
    static func spawnWithDefaultSignals(_ path: String) throws {
        var attributes = posix_spawnattr_t()
        posix_spawnattr_init(&attributes)
        defer { posix_spawnattr_destroy(&attributes) }
        var empty = sigset_t()
        sigemptyset(&empty)
        var all = sigset_t()
        sigfillset(&all)
        posix_spawnattr_setsigmask(&attributes, &empty)
        posix_spawnattr_setsigdefault(&attributes, &all)
        posix_spawnattr_setflags(&attributes, Int16(POSIX_SPAWN_SETSIGMASK | POSIX_SPAWN_SETSIGDEF))
        var pid: pid_t = 0
        let argv: [UnsafeMutablePointer<CChar>?] = [strdup(path), nil]
        defer { for argument in argv { free(argument) } }
        let status = posix_spawn(&pid, path, nil, &attributes, argv, environ)
        guard status == 0 else { throw POSIXError(POSIXErrorCode(rawValue: status) ?? .EIO) }
        var exitStatus: Int32 = 0
        waitpid(pid, &exitStatus, 0)  // the script exits once redis-server daemonized
    }

    /// Starts the killed node again (it rejoins as a replica) and waits until
    /// it reports `cluster_state:ok`, so later tests get a whole cluster.
    static func restart(port: Int, clusterDir: String) async throws {
        try spawnWithDefaultSignals("\(clusterDir)/\(port)/start.sh")
        let node = RedisClient(configuration: try RedisConfiguration(url: "redis://127.0.0.1:\(port)"))
        defer { Task { await node.shutdown() } }
        let ok = try await waitFor(timeout: .seconds(30)) {
            let info = (try? await node.send("CLUSTER", "INFO"))?.string ?? ""
            return info.contains("cluster_state:ok")
        }
        #expect(ok, "node \(port) rejoined")
    }
}
