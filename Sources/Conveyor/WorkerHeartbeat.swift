import ConveyorRedis
import Foundation
import Logging

/// Announces a pool as a ``LiveWorker``: writes its record with a time to
/// live of three heartbeat intervals, so a worker that dies disappears
/// within that time, and removes it at graceful shutdown.
struct WorkerHeartbeat<App: Sendable>: Sendable {
    let pool: WorkerPool<App>
    let started: Date
    let host = String(ProcessInfo.processInfo.hostName.prefix(200))

    init(pool: WorkerPool<App>) {
        self.pool = pool
        self.started = pool.clock.now
    }

    private var configuration: WorkerPoolConfiguration { pool.configuration }
    private var keys: ConveyorKeys { configuration.keys }

    /// Beats until cancelled; a failed beat is retried at the next interval
    /// (the record lives three intervals, so one lost beat is harmless).
    func run() async {
        while !Task.isCancelled {
            await beat()
            try? await Task.sleep(for: configuration.heartbeatInterval)
        }
    }

    func record() -> LiveWorker {
        LiveWorker(
            id: configuration.workerId, host: host,
            pid: Int(ProcessInfo.processInfo.processIdentifier), concurrency: configuration.concurrency,
            jobTypes: pool.registry.typeNames, started: started, lastHeartbeat: pool.clock.now,
            // Jobs claimed ahead, still waiting for a runner, do not run yet.
            jobsRunning: max(0, pool.running.withLock { $0.count } - pool.runnerSlots.waiting)
        )
    }

    /// Writes the record and adds the id to the index; drops from the index
    /// the ids whose records expired (workers that died), so it stays small.
    func beat() async {
        let ttl = max(configuration.heartbeatInterval * 3, .milliseconds(10)).wholeMilliseconds
        // A beat slower than the interval is as good as lost; never hold the loop longer.
        let timeout = max(configuration.heartbeatInterval, .milliseconds(500))
        guard let json = try? String(decoding: JSONEncoder().encode(record()), as: UTF8.self) else { return }
        do throws(RedisError) {
            let id = configuration.workerId
            _ = try await pool.client.pipeline(
                [RedisCommand("SET", key: keys.worker(id), json, "PX", ttl), RedisCommand("SADD", key: keys.workers, id)], timeout: timeout
            )
            let members = try await pool.client.send(RedisCommand("SMEMBERS", key: keys.workers), timeout: timeout).array?.compactMap(\.string) ?? []
            let others = members.filter { $0 != id }
            guard !others.isEmpty else { return }
            let exists = try await pool.client.pipeline(others.map { RedisCommand("EXISTS", key: keys.worker($0)) }, timeout: timeout)
            let dead = zip(others, exists).filter { $0.1.int == 0 }.map(\.0)
            if !dead.isEmpty {
                _ = try await pool.client.send(RedisCommand("SREM", key: keys.workers, arguments: dead), timeout: timeout)
            }
        } catch {
            pool.logger.debug("worker heartbeat failed", metadata: ["conveyor.worker.id": "\(configuration.workerId)", "error": "\(error)"])
        }
    }

    /// Removes the record: the worker stopped on purpose. Bounded by a short
    /// timeout, so an unreachable Redis does not hold up shutdown (the record
    /// then expires by itself).
    func remove() async {
        let id = configuration.workerId
        _ = try? await pool.client.pipeline(
            [RedisCommand("DEL", key: keys.worker(id)), RedisCommand("SREM", key: keys.workers, id)], timeout: .seconds(2)
        )
    }
}
