import ConveyorRedis
import ConveyorTestSupport
import ConveyorTesting
import Foundation
import Testing

@testable import Conveyor

/// `replicaAcknowledgements`: `WAIT` after the scheduling scripts, against a
/// real master with a real replica (and, in the cluster run, the local
/// cluster's replicas).
@Suite("Replica acknowledgements")
struct ReplicaAcknowledgementTests {
    private static func config(_ userId: Int) -> WorkerJobConfig<SyncInboxTestJob> {
        WorkerJobConfig(SyncInboxTestJob.self, userId: userId, data: Nothing())
    }

    private static func scheduler(_ client: RedisClient, _ keys: ConveyorKeys, acks: Int, timeout: Duration = .seconds(5)) -> JobScheduler {
        var configuration = JobScheduler.Configuration(keys: keys)
        configuration.replicaAcknowledgements = acks
        configuration.replicaTimeout = timeout
        return JobScheduler(client: client, configuration: configuration)
    }

    /// The `process_id` of the server `client` talks to.
    private static func serverPID(_ client: RedisClient) async throws -> pid_t {
        let info = try await client.send("INFO", "server").string ?? ""
        let line = info.split(whereSeparator: \.isNewline).first { $0.hasPrefix("process_id:") }
        return try #require(line.flatMap { pid_t($0.dropFirst("process_id:".count)) })
    }

    /// Whether the master sees `count` replicas online.
    private static func replicasOnline(_ master: RedisClient, _ count: Int) async throws -> Bool {
        let info = try await master.send("INFO", "replication").string ?? ""
        let online = info.split(whereSeparator: \.isNewline).filter { $0.hasPrefix("slave") && $0.contains("state=online") }
        return online.count >= count
    }

    @Test("single node with one replica: replicated while it runs; not replicated (the job still exists) while it is stopped")
    func singleNodeReplica() async throws {
        let master = try await RedisServerProcess.start()
        let replica = try await RedisServerProcess.start(.init(extraArguments: ["--replicaof", "127.0.0.1", String(master.port)]))
        let client = RedisClient(configuration: try RedisConfiguration(url: master.url))
        let replicaClient = RedisClient(configuration: try RedisConfiguration(url: replica.url))
        var stoppedPID: pid_t?
        do {
            let online = try await eventually(timeout: .seconds(20)) { try await Self.replicasOnline(client, 1) }
            try #require(online, "the replica never came online")
            let keys = try ConveyorKeys(namespace: "acks", partitionCount: 3)

            // Bad settings are refused before anything is written.
            let negative = Self.scheduler(client, keys, acks: -1)
            let badCount = await #expect(throws: ConveyorError.self) { try await negative.scheduleJob(Self.config(1)) }
            #expect(badCount?.code == .invalidArgument)
            let zeroTimeout = Self.scheduler(client, keys, acks: 1, timeout: .zero)
            let badTimeout = await #expect(throws: ConveyorError.self) { try await zeroTimeout.scheduleJob(Self.config(1)) }
            #expect(badTimeout?.code == .invalidArgument)
            #expect(try await client.send("DBSIZE").int == 0, "nothing written")

            let scheduler = Self.scheduler(client, keys, acks: 1)
            let single = try await scheduler.scheduleJobsReportingReplication([Self.config(1)])
            #expect(single.replication == JobScheduler.Replication(required: 1, acknowledged: 1))
            let bulk = try await scheduler.scheduleJobsReportingReplication((1...300).map(Self.config))
            #expect(bulk.jobs.count == 300)
            #expect(bulk.replication?.isReplicated == true)
            let cron = try await scheduler.scheduleCronJobReportingReplication(Self.config(7), cron: "0 3 * * *")
            #expect(cron.replication?.acknowledged == 1)
            // The plain methods return normally when replicated.
            let plain = try await scheduler.scheduleJob(Self.config(2))
            // Replicated means on the replica: it reads the job.
            let onReplica = JobInspector(client: replicaClient, keys: keys)
            #expect(try await onReplica.job(id: plain.id)?.id == plain.id)
            // The CLI: --json gains the fields; exit 0 when replicated, no fields without --replica-acks.
            let cli = ["--redis", master.url, "--namespace", "acks-cli", "--json"]
            let replicated = try await BulkScheduleTests.run(["schedule", "echo", "--user", "1", "--replica-acks", "1"] + cli, input: "")
            #expect(replicated.status == 0, "\(replicated.output)")
            #expect(replicated.output.contains(#""replicated":true,"replicasAcknowledged":1}"#), "\(replicated.output)")
            let plainCLI = try await BulkScheduleTests.run(["schedule", "echo", "--user", "2"] + cli, input: "")
            #expect(plainCLI.status == 0 && !plainCLI.output.contains("replicated"), "\(plainCLI.output)")
            let badEnvironment = try await BulkScheduleTests.run(
                ["CONVEYOR_REPLICA_ACKS=-1", ConveyorProcess.executable, "schedule", "echo", "--user", "3"] + cli, input: "",
                executable: "/usr/bin/env"
            )
            #expect(badEnvironment.status == 2 && badEnvironment.output.contains("--replica-acks must be 0...100"), "\(badEnvironment.output)")
            // Without replicaAcknowledgements nothing is waited for or reported.
            #expect(try await Self.scheduler(client, keys, acks: 0).scheduleJobsReportingReplication([Self.config(3)]).replication == nil)
            // Asking for more replicas than exist: the count says how many did.
            let two = try await Self.scheduler(client, keys, acks: 2, timeout: .milliseconds(200))
                .scheduleJobsReportingReplication([Self.config(4)])
            #expect(two.replication == JobScheduler.Replication(required: 2, acknowledged: 1))

            // The replica stops acknowledging: WAIT returns 0 after the timeout.
            let pid = try await Self.serverPID(replicaClient)
            ChildProcess(pid: pid).signal(SIGSTOP)
            stoppedPID = pid
            let short = Self.scheduler(client, keys, acks: 1, timeout: .milliseconds(300))
            let reported = try await short.scheduleJobsReportingReplication((10...12).map(Self.config))
            #expect(reported.replication == JobScheduler.Replication(required: 1, acknowledged: 0))
            #expect(reported.replication?.isReplicated == false)
            let onMaster = try await JobInspector(client: client, keys: keys).jobs(ids: reported.jobs.map(\.id))
            #expect(onMaster.map(\.id) == reported.jobs.map(\.id), "the jobs exist on the master")
            let error = await #expect(throws: ConveyorError.self) { try await short.scheduleJob(Self.config(20)) }
            #expect(error?.code == .notReplicated)
            #expect(error?.message.contains("acknowledged by 0 of 1 required replica") == true, "\(String(describing: error))")
            let pending = try await JobInspector(client: client, keys: keys).jobs(state: .pending, type: SyncInboxTestJob.typeName, userId: 20)
            #expect(pending.count == 1, "the job of the failed call exists on the master")
            // The CLI exits 1 naming the shortfall, after printing the jobs with "replicated": false.
            let short1 = try await BulkScheduleTests.run(
                ["cron", "echo", "0 3 * * *", "--user", "4", "--replica-acks", "1", "--replica-timeout", "200"] + cli, input: "")
            #expect(short1.status == 1, "\(short1.output)")
            #expect(short1.output.contains(#""replicated":false,"replicasAcknowledged":0}"#), "\(short1.output)")
            #expect(
                short1.output.contains("error: 1 job scheduled on the master, but acknowledged by 0 of 1 required replica within 200 ms"), "\(short1.output)")
            let lines = (10...12).map { #"{"type":"echo","user":\#($0)}"# }.joined(separator: "\n")
            let shortBulk = try await BulkScheduleTests.run(
                ["schedule", "--from", "-", "--replica-acks", "1", "--replica-timeout", "200"] + cli, input: lines)
            #expect(shortBulk.status == 1, "\(shortBulk.output)")
            #expect(shortBulk.output.components(separatedBy: #""replicated":false"#).count == 4, "\(shortBulk.output)")
            #expect(shortBulk.output.contains("error: 3 jobs scheduled on the master"), "\(shortBulk.output)")
            let cliKeys = try ConveyorKeys(namespace: "acks-cli")
            #expect(try await JobInspector(client: client, keys: cliKeys).counts()[.pending] == 6, "users 1, 2, 4, 10, 11, 12: all scheduled")

            ChildProcess(pid: pid).signal(SIGCONT)
            stoppedPID = nil
            let again = try await eventually(timeout: .seconds(20)) {
                try await short.scheduleJobsReportingReplication([Self.config(30)]).replication?.isReplicated == true
            }
            #expect(again, "acknowledged again once the replica runs")
        } catch {
            if let stoppedPID { ChildProcess(pid: stoppedPID).signal(SIGCONT) }
            await client.shutdown()
            await replicaClient.shutdown()
            await replica.stop()
            await master.stop()
            throw error
        }
        await client.shutdown()
        await replicaClient.shutdown()
        await replica.stop()
        await master.stop()
    }

    @Test("on the cluster every master's replica acknowledges", .enabled(if: TestRedis.isCluster))
    func clusterReplicas() async throws {
        try await TestRedis.withClient { client, ns in
            let keys = try ConveyorKeys(namespace: ns, partitionCount: 6, partitionTags: .slotSpread)
            let scheduler = Self.scheduler(client, keys, acks: 1)
            // 600 jobs over 6 partitions on 3 masters: one pipeline per master, a WAIT per partition.
            let bulk = try await scheduler.scheduleJobsReportingReplication((1...600).map(Self.config))
            #expect(bulk.replication == JobScheduler.Replication(required: 1, acknowledged: 1))
            let partitions = Set(bulk.jobs.map { keys.partition(ofJob: $0.id).index })
            #expect(partitions.count == 6)
            let single = try await scheduler.scheduleJob(Self.config(1000))
            #expect(try await scheduler.job(id: single.id) != nil)
            let two = try await Self.scheduler(client, keys, acks: 2, timeout: .milliseconds(200))
                .scheduleJobsReportingReplication([Self.config(1001)])
            #expect(two.replication == JobScheduler.Replication(required: 2, acknowledged: 1), "one replica per master")
        }
    }
}
