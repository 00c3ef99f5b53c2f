import ArgumentParser
import Conveyor
import Foundation

/// `--replica-acks` and `--replica-timeout` of `schedule` and `cron`: wait for
/// replicas to acknowledge the scheduled jobs (`WAIT`, docs/cluster.md §5).
struct ReplicaOptions: ParsableArguments {
    @Option(
        name: .customLong("replica-acks"),
        help: ArgumentHelp(
            "Replicas that must acknowledge the scheduled jobs (default: $CONVEYOR_REPLICA_ACKS, else 0: none). "
                + "If fewer do within --replica-timeout, the jobs stay scheduled on the master, the command exits 1, "
                + "and --json prints \"replicated\": false.",
            valueName: "n"
        )
    )
    var replicaAcks: Int?

    @Option(
        name: .customLong("replica-timeout"),
        help: ArgumentHelp(
            "How long to wait for the replicas' acknowledgements (default: $CONVEYOR_REPLICA_TIMEOUT_MS, else 1000).",
            valueName: "ms"
        )
    )
    var replicaTimeout: Int?

    /// The replica count and timeout from the flags, else the environment, else 0 and 1000 ms.
    func settings(
        environment: [String: String] = ProcessInfo.processInfo.environment
    ) throws -> (acks: Int, timeoutMs: Int) {
        func value(_ flag: Int?, _ name: String, _ variable: String, default fallback: Int) throws -> Int {
            if let flag { return flag }
            guard let text = environment[variable], !text.isEmpty else { return fallback }
            guard let number = Int(text) else { throw ValidationError("\(variable)=\"\(text)\": expected a whole number for \(name)") }
            return number
        }
        let acks = try value(replicaAcks, "--replica-acks", "CONVEYOR_REPLICA_ACKS", default: 0)
        let timeoutMs = try value(replicaTimeout, "--replica-timeout", "CONVEYOR_REPLICA_TIMEOUT_MS", default: 1000)
        guard (0...JobScheduler.maxReplicaAcknowledgements).contains(acks) else {
            throw ValidationError("--replica-acks must be 0...\(JobScheduler.maxReplicaAcknowledgements), got \(acks)")
        }
        guard (1...60_000).contains(timeoutMs) else {
            throw ValidationError("--replica-timeout must be 1...60000 ms, got \(timeoutMs)")
        }
        return (acks, timeoutMs)
    }

    func validate() throws {
        _ = try settings()
    }

    /// `scheduler` waiting for the replicas these options ask for.
    func apply(to scheduler: JobScheduler) throws -> JobScheduler {
        let (acks, timeoutMs) = try settings()
        var configuration = scheduler.configuration
        configuration.replicaAcknowledgements = acks
        configuration.replicaTimeout = .milliseconds(timeoutMs)
        return JobScheduler(client: scheduler.client, configuration: configuration)
    }

    /// A job's `--json` line with `"replicated"` and `"replicasAcknowledged"`
    /// when replicas were asked for.
    static func jsonLine(_ job: WorkerJob, _ replication: JobScheduler.Replication?) -> String {
        let json = job.jsonString()
        guard let replication, json.hasSuffix("}") else { return json }
        return String(json.dropLast())
            + ",\"replicated\":\(replication.isReplicated),\"replicasAcknowledged\":\(replication.acknowledged)}"
    }

    /// The failure of a command whose jobs reached too few replicas.
    static func shortfall(_ jobs: Int, _ replication: JobScheduler.Replication, timeoutMs: Int) -> CLIError {
        CLIError(
            "\(jobs) job\(jobs == 1 ? "" : "s") scheduled on the master, but acknowledged by \(replication.acknowledged) of "
                + "\(replication.required) required replica\(replication.required == 1 ? "" : "s") within \(timeoutMs) ms: "
                + "a failover before they replicate loses them; scheduling them again replaces them"
        )
    }
}
