import ArgumentParser
import Conveyor
import ConveyorRedis
import Foundation

/// `cluster-move-partition`: moves one partition's hash slot to another master
/// while the namespace keeps running (docs/cluster.md §7), through
/// ``ClusterPartitionMover``.
struct ClusterMovePartitionCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "cluster-move-partition",
        abstract: "Move one partition's hash slot to another Redis Cluster master, live.",
        discussion: """
            Pauses the partition (its scripts answer TRYAGAIN and clients retry), moves every key \
            of its slot with MIGRATE, hands the slot to the target with CLUSTER SETSLOT on every \
            master, and unpauses it. Workers, producers and archivers keep running; calls on that \
            partition wait for the move (usually well under a second; the client retries within \
            its command timeout). An admin operation: the Redis user needs CLUSTER and MIGRATE \
            (docs/production-redis.md). Refuses, changing nothing, when the server is not a \
            cluster, the partition or node is unknown, the target is a replica or already owns \
            the slot, or the slot is already being migrated. If a step fails, the error says how \
            to finish, and running the same command again resumes the move. \
            `conveyor cluster-status` lists each partition's slot and master. With --json, one \
            object: partition, slot, from and to ({id, endpoint}), keysMoved, pausedMs, resumed.

            Never move a slot that holds a Conveyor partition with `redis-cli --cluster reshard` \
            or `rebalance` alone: they do not pause the partition. Use this command, or wrap \
            them in cluster-pause-partition / cluster-resume-partition.

            Examples:
              conveyor cluster-move-partition --redis redis+cluster://10.0.0.1:6379 --partitions 6 --partition 0 --to 10.0.0.3:6379
              conveyor cluster-move-partition --partitions 6 --partition 2 --to 3f1c9a0e --json
            """
    )

    @OptionGroup var redis: RedisOptions
    @Option(name: .long, help: "The partition to move (0-based; see cluster-status).") var partition: Int
    @Option(
        name: .long,
        help: ArgumentHelp(
            "The target master: host:port as the cluster announces it, or a node id (or a unique prefix of 8+ characters).", valueName: "host:port|node-id"))
    var to: String
    @Flag(name: .long, help: "Print JSON.") var json = false

    func validate() throws {
        guard partition >= 0 else { throw ValidationError("--partition must be 0 or more, got \(partition)") }
        guard !to.isEmpty else { throw ValidationError("--to must name a master (host:port or node id)") }
    }

    func run() async throws {
        let client = try await redis.client()
        let move: ClusterPartitionMover.Move
        do {
            let keys = try await ClusterPartitionCommands.keys(redis, client)
            move = try await ClusterPartitionMover(client: client, keys: keys).move(partition: partition, to: to)
            await client.shutdown()
        } catch {
            await client.shutdown()
            try ClusterPartitionCommands.report(error)
        }
        let pausedMs = Int(move.paused / .milliseconds(1))
        if json {
            func node(_ node: RedisClusterNode) -> String {
                #"{"id":\#(JSONValue.string(node.id).jsonText),"endpoint":\#(JSONValue.string("\(node.endpoint)").jsonText)}"#
            }
            print(
                #"{"partition":\#(move.partition),"slot":\#(move.slot),"from":\#(node(move.from)),"to":\#(node(move.to)),"#
                    + #""keysMoved":\#(move.keysMoved),"pausedMs":\#(pausedMs),"resumed":\#(move.resumed)}"#
            )
        } else {
            print(
                "partition \(move.partition) (slot \(move.slot)) moved from \(move.from) to \(move.to)\(move.resumed ? " (resumed)" : ""): "
                    + "\(move.keysMoved) keys, paused \(pausedMs) ms"
            )
        }
    }
}

/// `cluster-pause-partition`: pauses one partition's scripts (they answer
/// `TRYAGAIN`, clients retry) for an operator who moves its slot with other tools.
struct ClusterPausePartitionCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "cluster-pause-partition",
        abstract: "Pause one partition (its scripts answer TRYAGAIN) while its slot is moved by other tools.",
        discussion: """
            Sets the partition's pause key with a TTL: every Conveyor script on that partition \
            answers TRYAGAIN until cluster-resume-partition or the TTL. Clients retry within their \
            command timeout (10 s by default), then report the error and try again later, so keep \
            pauses short. Use it around `redis-cli --cluster reshard` of a slot that holds a \
            partition (cluster-status lists them); cluster-move-partition does all of it itself.

            Example:
              conveyor cluster-pause-partition --partitions 6 --partition 0 --ttl 120
              redis-cli --cluster reshard ... ; conveyor cluster-resume-partition --partitions 6 --partition 0
            """
    )

    @OptionGroup var redis: RedisOptions
    @Option(name: .long, help: "The partition to pause (0-based).") var partition: Int
    @Option(name: .long, help: "Seconds until the pause expires by itself (1...3600).") var ttl = 60

    func validate() throws {
        guard partition >= 0 else { throw ValidationError("--partition must be 0 or more, got \(partition)") }
        guard (1...3600).contains(ttl) else { throw ValidationError("--ttl must be 1...3600 seconds, got \(ttl)") }
    }

    func run() async throws {
        let client = try await redis.client()
        do {
            let keys = try await ClusterPartitionCommands.keys(redis, client, partition: partition)
            let paused = keys.partition(partition).paused
            _ = try await client.send(RedisCommand("SET", routingKey: paused, arguments: [paused, "operator", "PX", ttl * 1000]))
            await client.shutdown()
            print("partition \(partition) paused for \(ttl) s (\(paused))")
        } catch {
            await client.shutdown()
            try ClusterPartitionCommands.report(error)
        }
    }
}

/// `cluster-resume-partition`: ends a pause.
struct ClusterResumePartitionCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "cluster-resume-partition",
        abstract: "End a partition's pause (cluster-pause-partition, or one a stopped move left).",
        discussion: """
            Deletes the partition's pause key. Resume only once the slot is stable again \
            (redis-cli --cluster check): a script that runs while the slot's keys are split between \
            two masters can fail half-way (docs/cluster.md §7).

            Example:
              conveyor cluster-resume-partition --partitions 6 --partition 0
            """
    )

    @OptionGroup var redis: RedisOptions
    @Option(name: .long, help: "The partition to resume (0-based).") var partition: Int

    func validate() throws {
        guard partition >= 0 else { throw ValidationError("--partition must be 0 or more, got \(partition)") }
    }

    func run() async throws {
        let client = try await redis.client()
        do {
            let keys = try await ClusterPartitionCommands.keys(redis, client, partition: partition)
            let paused = keys.partition(partition).paused
            let deleted = try await client.send(RedisCommand("DEL", routingKey: paused, arguments: [paused])).int ?? 0
            await client.shutdown()
            print(deleted == 1 ? "partition \(partition) resumed" : "partition \(partition) was not paused")
        } catch {
            await client.shutdown()
            try ClusterPartitionCommands.report(error)
        }
    }
}

/// What the partition commands share.
enum ClusterPartitionCommands {
    /// The namespace's recorded layout: a namespace no process used has no
    /// partitions to move, and a wrong `--partitions` would name other slots.
    static func keys(_ redis: RedisOptions, _ client: RedisClient, partition: Int? = nil) async throws -> ConveyorKeys {
        let keys = try await redis.keys(for: client)
        guard try await keys.recordedPartitionTags(client: client) != nil else {
            throw CLIError("namespace \"\(keys.namespace)\" has no layout in Redis (no Conveyor process used it): nothing to do")
        }
        try await keys.verifyLayout(client: client)
        if let partition, partition >= keys.partitionCount {
            throw CLIError("no partition \(partition): the namespace has partitions 0...\(keys.partitionCount - 1)")
        }
        return keys
    }

    /// Prints a failure in full (a stopped move's error lists the commands
    /// that finish it, one per line) and exits with status 1.
    static func report(_ error: any Error) throws -> Never {
        FileHandle.standardError.write(Data("error: \(error)\n".utf8))
        throw ExitCode(CLIExit.failure)
    }
}
