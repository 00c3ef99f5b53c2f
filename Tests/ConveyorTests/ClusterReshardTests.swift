import ConveyorRedis
import ConveyorTestSupport
import Foundation
import Logging
import Synchronization
import Testing

@testable import Conveyor
@testable import ConveyorCLI

/// Moving partitions between masters while Conveyor runs (docs/cluster.md §7),
/// on the cluster of `scripts/with-redis-cluster.sh` (`REDIS_CLUSTER_URL`).
@Suite("Cluster resharding", .serialized)
struct ClusterReshardTests {
    /// Jobs of the live-move run: a small run in `make test`;
    /// `CONVEYOR_CLUSTER_RESHARD_JOBS` (set by `make chaos-cluster`) for a longer one.
    static var jobCount: Int {
        ProcessInfo.processInfo.environment["CONVEYOR_CLUSTER_RESHARD_JOBS"].flatMap(Int.init) ?? 1500
    }

    /// Set once the producer is done.
    final class Flag: Sendable {
        let value = Atomic<Bool>(false)
    }

    /// Every error a worker pool or archiver logged (`conveyor.error` metadata), with its message.
    final class ErrorLog: Sendable {
        private let lines = Mutex<[String]>([])
        func append(_ line: String) { lines.withLock { $0.append(line) } }
        var all: [String] { lines.withLock { $0 } }
    }

    struct ErrorCapture: LogHandler {
        let sink: ErrorLog
        var metadata: Logger.Metadata = [:]
        var logLevel: Logger.Level = .trace

        subscript(metadataKey key: String) -> Logger.Metadata.Value? {
            get { metadata[key] }
            set { metadata[key] = newValue }
        }

        func log(event: LogEvent) {
            if let error = event.metadata?["conveyor.error"] ?? metadata["conveyor.error"] {
                sink.append("\(event.message): \(error)")
            }
        }
    }

    /// The master that owns `slot` now, read from the nodes themselves (not a client's cached map).
    static func owner(of slot: Int, client: RedisClient) async throws -> ClusterPartitionMover.NodeLine? {
        var owners: [ClusterPartitionMover.NodeLine] = []
        for master in try await client.clusterMasters() {
            let lines = ClusterPartitionMover.parseNodes(try await client.send(RedisCommand("CLUSTER", "NODES"), to: master).string ?? "")
            if let me = lines.first(where: { $0.flags.contains("myself") }), me.node.owns(slot: slot) { owners.append(me) }
        }
        return owners.count == 1 ? owners[0] : nil
    }

    /// Moves `partitions` to another master and back, `rounds` times at least
    /// and until `done()`; returns the moves.
    static func shuffle(
        client: RedisClient, keys: ConveyorKeys, partitions: [Int], rounds: Int, done: @Sendable () -> Bool
    ) async throws -> [ClusterPartitionMover.Move] {
        var mover = ClusterPartitionMover(client: client, keys: keys)
        // Small batches: the slot's keys stay split between two masters for many
        // round trips, which is when an unpaused script goes wrong.
        mover.batchSize = 5
        let masters = try await client.clusterMasters().map(\.id)
        var moves: [ClusterPartitionMover.Move] = []
        var round = 0
        while round < rounds || !done() {
            for index in partitions {
                let slot = RedisCluster.slot(forKey: keys.partition(index).prefix)
                let home = try #require(try await owner(of: slot, client: client)).id
                let away = try #require(masters.first { $0 != home })
                moves.append(try await mover.move(partition: index, to: away))
                try await Task.sleep(for: .milliseconds(150))
                moves.append(try await mover.move(partition: index, to: home))
                try await Task.sleep(for: .milliseconds(150))
            }
            round += 1
        }
        return moves
    }

    @Test(
        "a run (producer, workers with retries, archiver) while partitions 0 and 1 move between masters: every job runs, nothing is stuck, the history is complete"
    )
    func liveMoves() async throws {
        try await ClusterRunTests.withCluster(poolSize: 8) { client, ns in
            let keys = try ConveyorKeys(namespace: ns, partitionCount: 6, partitionTags: .slotSpread)
            try await keys.verifyLayout(client: client)
            let homes = try await keys.partitions.asyncMap { try await Self.owner(of: RedisCluster.slot(forKey: $0.prefix), client: client)?.id }
            let errors = ErrorLog()
            let logger = Logger(label: "reshard") { _ in ErrorCapture(sink: errors) }
            let count = Self.jobCount
            let scheduler = JobScheduler(client: client, configuration: .init(keys: keys))
            let directory = ArchiverTestSupport.temporaryDirectory("cluster-reshard")
            defer { try? FileManager.default.removeItem(atPath: directory) }
            let archiverEvents = ArchiverEventLog()
            let archiver = Archiver(
                client: client, configuration: ArchiverTestSupport.configuration(directory, keys: keys, archiverId: "reshard-archiver"),
                logger: logger
            ) { archiverEvents.append($0) }
            var registry = JobRegistry<WorkerTestApp>()
            registry.register(WorkerEchoJob.self)
            registry.register(WorkerFlakyJob.self)
            var configuration = WorkerPoolConfiguration(concurrency: 16, keys: keys)
            configuration.maxIdleWait = .milliseconds(200)
            configuration.leaseDuration = .seconds(5)
            configuration.leaseRenewInterval = .seconds(1)
            configuration.recoveryInterval = .seconds(1)
            // The flaky jobs' failed first attempts are archived right away, like the rest.
            configuration.failedJobRetention = .milliseconds(1)
            let events = EventLog()
            let pool = WorkerPool(client: client, registry: registry, app: WorkerTestApp(), configuration: configuration, logger: logger) {
                events.append($0)
            }
            // Jobs due in an hour, in the partitions that move: read with getJobs
            // throughout the moves, they must never read as missing (on the
            // importing master a hash still on the source would).
            let future = try await scheduler.scheduleJobs(
                (1...60).map { WorkerJobConfig(WorkerEchoJob.self, userId: 1_000_000 + $0, delay: .seconds(3600), data: .null) }
            ).map(\.id)
            let watched = future.filter { [0, 1].contains(keys.partition(ofJob: $0).index) }
            let archiving = Task { try await archiver.run() }
            let working = Task { try await pool.run() }
            let produced = Flag()
            let shuffling = Task {
                try await Self.shuffle(client: client, keys: keys, partitions: [0, 1], rounds: 2) { produced.value.load(ordering: .relaxed) }
            }
            // Every 10th user's job fails once and is retried by completeJobs (a follow-up written during the moves).
            let reading = Task {
                try await Self.watch(watched, inspector: JobInspector(client: client, keys: keys)) { produced.value.load(ordering: .relaxed) }
            }
            let producing = Task { try await Self.produce(scheduler: scheduler, count: count) }
            let outcome = await producing.result
            produced.value.store(true, ordering: .relaxed)
            let moves = await shuffling.result
            let (echoUsers, flakyUsers) = try outcome.get()
            let (reads, missingReads) = try await reading.value
            for id in future { _ = try await scheduler.cancelJob(id: id) }
            let ran = try await ClusterRunTests.waitFor(timeout: .seconds(120)) {
                events.withLock { events in
                    let succeeded = Set(events.filter(\.success).map(\.job.userId))
                    return echoUsers.union(flakyUsers).isSubset(of: succeeded)
                }
            }
            let counts = try await JobInspector(client: client, keys: keys).counts()
            let drained = try await ClusterRunTests.waitFor(timeout: .seconds(60)) { try await Archiver.backlog(client: client, keys: keys) == 0 }
            pool.beginShutdown()
            archiver.beginShutdown()
            try await working.value
            try await archiving.value

            let done = try moves.get()
            print(
                "cluster reshard: \(count) jobs, \(reads) getJobs reads of \(watched.count) jobs (\(missingReads.count) missed some), \(done.count) moves of partitions 0 and 1, \(done.map(\.keysMoved).reduce(0, +)) keys migrated, "
                    + "longest pause \(done.map { Int($0.paused / .milliseconds(1)) }.max() ?? 0) ms, \(errors.all.count) logged errors"
                    + errors.all.prefix(10).map { "\n  " + $0 }.joined()
            )
            #expect(done.count >= 8 && done.allSatisfy { $0.keysMoved > 0 }, "\(done.count) moves")
            let succeeded = events.withLock { Set($0.filter(\.success).map(\.job.userId)) }
            #expect(ran, "\(echoUsers.union(flakyUsers).subtracting(succeeded).count) acknowledged users never succeeded")
            #expect(flakyUsers.isSubset(of: Set(events.withLock { $0.filter { !$0.success }.map(\.job.userId) })), "the flaky jobs failed once")
            #expect(counts[.pending] == 0 && counts[.running] == 0, "nothing stuck: \(counts)")
            #expect(drained, "the archiver's backlog drained")
            #expect(archiverEvents.failures.isEmpty, "\(archiverEvents.failures.prefix(5))")
            let logged = Set(try ArchiverTestSupport.loggedIds(directory))
            let ranIds = events.withLock { Set($0.filter(\.written).map(\.job.id)) }
            #expect(ranIds.subtracting(logged).isEmpty, "\(ranIds.subtracting(logged).count) ran but are not in the history")
            #expect(
                !watched.isEmpty && reads > 0 && missingReads.isEmpty,
                "\(missingReads.count) of \(reads) getJobs reads missed jobs that exist: \(missingReads.prefix(5))")
            let scriptErrors = errors.all.filter { ($0.contains("EVAL") || $0.contains("script")) && !$0.contains("TRYAGAIN") }
            #expect(scriptErrors.isEmpty, "script errors other than TRYAGAIN: \(scriptErrors.prefix(5))")
            let after = try await keys.partitions.asyncMap { try await Self.owner(of: RedisCluster.slot(forKey: $0.prefix), client: client)?.id }
            #expect(after == homes, "every partition is back on its master")
        }
    }

    /// Reads `ids` with getJobs until `done()`; returns the reads and, for each
    /// read that missed jobs, how many it missed.
    static func watch(_ ids: [Int], inspector: JobInspector, done: @Sendable () -> Bool) async throws -> (Int, [Int]) {
        var reads = 0
        var missed: [Int] = []
        while !done() {
            let found = try await inspector.jobs(ids: ids).count
            reads += 1
            if found != ids.count { missed.append(ids.count - found) }
            try await Task.sleep(for: .milliseconds(2))
        }
        return (reads, missed)
    }

    /// Schedules users 1…count in batches of 50 (every 10th a flaky job that
    /// succeeds on its second attempt); returns the acknowledged users.
    static func produce(scheduler: JobScheduler, count: Int) async throws -> (echo: Set<Int>, flaky: Set<Int>) {
        var echo = Set<Int>()
        var flaky = Set<Int>()
        for start in stride(from: 1, through: count, by: 50) {
            let users = Array(start..<min(start + 50, count + 1))
            let plain = users.filter { $0 % 10 != 0 }
            let retried = users.filter { $0 % 10 == 0 }
            echo.formUnion(
                try await scheduler.scheduleJobs(plain.map { WorkerJobConfig(WorkerEchoJob.self, userId: $0, data: .integer(Int64($0)), removeDelay: 1_000) })
                    .map(\.userId))
            for user in retried {
                let config = WorkerJobConfig(WorkerFlakyJob.self, userId: user, data: .init(succeedOnAttempt: 2), autoRescheduleOnFailure: true)
                flaky.insert(try await scheduler.scheduleJob(config).userId)
            }
            try await Task.sleep(for: .milliseconds(20))
        }
        return (echo, flaky)
    }

    @Test(
        "the mover refuses, changing nothing: a single Redis, unknown partition or node, a replica, the owner itself, a slot already migrating, a paused partition"
    )
    func refusals() async throws {
        try await ClusterRunTests.withCluster { client, ns in
            let keys = try ConveyorKeys(namespace: ns, partitionCount: 3, partitionTags: .slotSpread)
            let mover = ClusterPartitionMover(client: client, keys: keys)
            let slot = RedisCluster.slot(forKey: keys.partition(0).prefix)
            let owner = try #require(try await Self.owner(of: slot, client: client))
            let masters = try await client.clusterMasters()
            let other = try #require(masters.first { $0.id != owner.id })
            let nodes = ClusterPartitionMover.parseNodes(try await client.send(RedisCommand("CLUSTER", "NODES"), to: masters[0]).string ?? "")
            let replica = try #require(nodes.first { !$0.isMaster })

            func refused(_ target: String, partition: Int = 0, _ code: ConveyorError.Code, _ text: String) async {
                do {
                    _ = try await mover.move(partition: partition, to: target)
                    Issue.record("moving \(partition) to \(target) was not refused")
                } catch {
                    #expect(error.code == code && error.message.contains(text), "\(error)")
                }
            }
            await refused(other.id, partition: 3, .invalidArgument, "no partition 3")
            await refused("127.0.0.1:1", .invalidArgument, "no cluster node")
            await refused(replica.address, .invalidArgument, "a replica")
            await refused(owner.address, .invalidState, "already owns slot \(slot)")
            // Another migration of the slot (to a third master) is in progress.
            let third = try #require(masters.first { $0.id != owner.id && $0.id != other.id })
            _ = try await client.send(RedisCommand("CLUSTER", "SETSLOT", slot, "MIGRATING", third.id), to: owner.node)
            await refused(other.id, .invalidState, "another migration of slot \(slot)")
            _ = try await client.send(RedisCommand("CLUSTER", "SETSLOT", slot, "STABLE"), to: owner.node)
            // Paused by an operator.
            let paused = keys.partition(0).paused
            _ = try await client.send(RedisCommand("SET", routingKey: paused, arguments: [paused, "operator", "PX", 60_000]))
            await refused(other.id, .invalidState, "exists")
            _ = try await client.send(RedisCommand("DEL", routingKey: paused, arguments: [paused]))

            #expect(try await Self.owner(of: slot, client: client)?.id == owner.id, "the slot did not move")
            // A single Redis (the check needs no connection): nothing to move.
            let single = RedisClient(configuration: try RedisConfiguration(url: "redis://127.0.0.1:1"))
            await #expect {
                _ = try await ClusterPartitionMover(client: single, keys: keys).move(partition: 0, to: other.id)
            } throws: { error in
                (error as? ConveyorError)?.code == .invalidState && "\(error)".contains("not a Redis Cluster")
            }
            await single.shutdown()
            let own = ClusterPartitionMover.parseNodes(try await client.send(RedisCommand("CLUSTER", "NODES"), to: owner.node).string ?? "")
            #expect(own.first { $0.flags.contains("myself") }?.migrating.isEmpty == true, "the slot is stable")
            #expect(try await client.send(RedisCommand("EXISTS", routingKey: paused, arguments: [paused])).int == 0, "not paused")
        }
    }

    @Test("a move a crashed mover left half-done (paused, slot MIGRATING/IMPORTING, some keys moved) is resumed by the same move")
    func resumesHalfDoneMove() async throws {
        try await ClusterRunTests.withCluster { client, ns in
            let keys = try ConveyorKeys(namespace: ns, partitionCount: 3, partitionTags: .slotSpread)
            let scheduler = JobScheduler(client: client, configuration: .init(keys: keys))
            let ids = try await scheduler.scheduleJobs((1...60).map { WorkerJobConfig(WorkerEchoJob.self, userId: $0, delay: .seconds(3600), data: .null) })
                .map(\.id).filter { keys.partition(ofJob: $0).index == 0 }
            let partition = keys.partition(0)
            let slot = RedisCluster.slot(forKey: partition.prefix)
            let source = try #require(try await Self.owner(of: slot, client: client))
            let masters = try await client.clusterMasters()
            let target = try #require(masters.first { $0.id != source.id })
            guard case .tcp(let host, let port) = target.endpoint else {
                Issue.record("unexpected endpoint \(target.endpoint)")
                return
            }
            // What a mover that died after its first MIGRATE leaves behind.
            _ = try await client.send(RedisCommand("SET", routingKey: partition.paused, arguments: [partition.paused, "crashed", "PX", 60_000]))
            _ = try await client.send(RedisCommand("CLUSTER", "SETSLOT", slot, "IMPORTING", source.id), to: target)
            _ = try await client.send(RedisCommand("CLUSTER", "SETSLOT", slot, "MIGRATING", target.id), to: source.node)
            let some =
                try await client.send(RedisCommand("CLUSTER", "GETKEYSINSLOT", slot, 20), to: source.node).array?.compactMap(\.string)
                .filter { $0 != partition.paused }.prefix(5) ?? []
            #expect(!some.isEmpty)
            _ = try await client.send(RedisCommand("MIGRATE", argumentList: [host, String(port), "", "0", "5000", "KEYS"] + some), to: source.node)

            let mover = ClusterPartitionMover(client: client, keys: keys)
            let move = try await mover.move(partition: 0, to: "\(host):\(port)")
            #expect(move.resumed && move.to.id == target.id && move.keysMoved > 0)
            #expect(try await Self.owner(of: slot, client: client)?.id == target.id)
            #expect(try await client.send(RedisCommand("EXISTS", routingKey: partition.paused, arguments: [partition.paused])).int == 0)
            #expect(try await client.send(RedisCommand("CLUSTER", "COUNTKEYSINSLOT", slot), to: source.node).int == 0)
            #expect(try await JobInspector(client: client, keys: keys).jobs(ids: ids).count == ids.count, "every job of the partition is there")
            let back = try await mover.move(partition: 0, to: source.id)
            #expect(!back.resumed && back.to.id == source.id)
        }
    }

    @Test("a paused partition's scripts answer TRYAGAIN and write nothing; the client retries until the pause ends")
    func pausedScriptsWait() async throws {
        try await ClusterRunTests.withCluster { client, ns in
            let keys = try ConveyorKeys(namespace: ns, partitionCount: 1, partitionTags: .slotSpread)
            let partition = keys.partition(0)
            let scheduler = JobScheduler(client: client, configuration: .init(keys: keys))
            _ = try await client.send(RedisCommand("SET", routingKey: partition.paused, arguments: [partition.paused, "test", "PX", 60_000]))
            // One raw call with a short retry budget: the reply itself, as an error.
            let call = ScriptSignature.getJobs.call(partition, [1])
            let arguments: [any RESPArgument] = [call.script.source, call.keys.count] + call.keys + ["1"]
            await #expect {
                _ = try await client.send(RedisCommand("EVAL", routingKey: partition.paused, arguments: arguments), timeout: .milliseconds(300))
            } throws: { error in
                "\(error)".contains("TRYAGAIN conveyor: partition paused")
            }
            // A schedule waits (retried with backoff) and lands once the pause ends.
            let scheduling = Task { try await scheduler.scheduleJob(WorkerJobConfig(WorkerEchoJob.self, userId: 1, data: .null)) }
            try await Task.sleep(for: .milliseconds(600))
            #expect(
                try await client.send(RedisCommand("ZCARD", routingKey: partition.due, arguments: [partition.due])).int == 0, "nothing written while paused")
            _ = try await client.send(RedisCommand("DEL", routingKey: partition.paused, arguments: [partition.paused]))
            let job = try await scheduling.value
            #expect(try await client.send(RedisCommand("ZSCORE", routingKey: partition.due, arguments: [partition.due, job.id])).string != nil)
        }
    }

    @Test("cluster-move-partition moves a partition away and back through the CLI (by node id, then by host:port)")
    func cliCommand() async throws {
        try await ClusterRunTests.withCluster { client, ns in
            let keys = try ConveyorKeys(namespace: ns, partitionCount: 3, partitionTags: .slotSpread)
            try await keys.verifyLayout(client: client)
            _ = try await JobScheduler(client: client, configuration: .init(keys: keys)).scheduleJob(
                WorkerJobConfig(WorkerEchoJob.self, userId: 3, data: .null)
            )
            let slot = RedisCluster.slot(forKey: keys.partition(0).prefix)
            let home = try #require(try await Self.owner(of: slot, client: client))
            let away = try #require(try await client.clusterMasters().first { $0.id != home.id })
            let url = try #require(ProcessInfo.processInfo.environment["REDIS_CLUSTER_URL"])
            for target in [away.id, home.address] {
                var command = try ClusterMovePartitionCommand.parse([
                    "--redis", url, "--namespace", ns, "--partitions", "3", "--partition", "0", "--to", target, "--json",
                ])
                try await command.run()
                #expect(try await Self.owner(of: slot, client: client)?.id == (target == away.id ? away.id : home.id))
            }
            #expect(throws: (any Error).self) {
                _ = try ClusterMovePartitionCommand.parse(["--partition", "-1", "--to", "x"])
            }
        }
    }
}

extension Sequence {
    func asyncMap<T>(_ transform: (Element) async throws -> T) async rethrows -> [T] {
        var result: [T] = []
        for element in self { result.append(try await transform(element)) }
        return result
    }
}
