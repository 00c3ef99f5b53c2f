import ConveyorRedis
import Foundation

/// Keeps a pool's leases and looks after other workers' lost jobs: renews the
/// leases of every job the pool holds until its completion is written,
/// interrupts jobs past their timeout, and recovers jobs whose lease expired.
struct LeaseKeeper<App: Sendable>: Sendable {
    let pool: WorkerPool<App>

    private var configuration: WorkerPoolConfiguration { pool.configuration }

    /// Runs until cancelled.
    func run() async {
        let clock = ContinuousClock()
        var nextRenew = clock.now + configuration.leaseRenewInterval
        var nextRecovery = clock.now
        // One timeout check for all jobs instead of a timer task per job;
        // granularity is a tenth of the shortest timeout, 10 ms to 1 s.
        let shortestTimeout = ([configuration.jobTimeout] + configuration.jobTimeoutByType.values).min()!
        let timeoutCheck = min(max(shortestTimeout / 10, .milliseconds(10)), .seconds(1))
        var nextTimeoutCheck = clock.now + timeoutCheck
        let gaugeInterval = pool.metrics.isEnabled ? configuration.gaugeRefreshInterval : nil
        var nextGauges = gaugeInterval.map { _ in clock.now }
        while !Task.isCancelled {
            let now = clock.now
            if now >= nextTimeoutCheck {
                let overdue = pool.running.withLock { running in running.filter { $0.value.deadline.map { $0 <= now } ?? false }.map(\.key) }
                for id in overdue { pool.interrupt(id, .timedOut) }
                nextTimeoutCheck = now + timeoutCheck
            }
            if now >= nextRenew {
                let renewed = await renewLeases()
                // After a failure, try again soon: after an outage every
                // lease looks expired and recovery waits only its grace period.
                nextRenew = now + (renewed ? configuration.leaseRenewInterval : min(configuration.leaseRenewInterval, .seconds(1)))
            }
            if now >= nextRecovery {
                await recover()
                nextRecovery = now + configuration.recoveryInterval
            }
            if let gaugeInterval, let due = nextGauges, now >= due {
                await refreshGauges()
                nextGauges = now + gaugeInterval
            }
            try? await Task.sleep(until: min(nextRenew, nextRecovery, nextTimeoutCheck, nextGauges ?? nextRenew))
        }
    }

    /// Renews every held job's lease: one call per partition (and per
    /// ``JobStore/maxBatch`` jobs), each in its own task with its own timeout,
    /// so one that fails or hangs does not hold up the others. A job that is
    /// not renewed because another worker took it is cancelled at once.
    /// - Returns: Whether every call succeeded.
    private func renewLeases() async -> Bool {
        let ids = pool.held.withLock { $0.sorted() }
        guard !ids.isEmpty else { return true }
        let partitionCount = configuration.keys.partitionCount
        var batches: [(partition: Int, ids: [Int])] = []
        for (partition, partitionIds) in Dictionary(grouping: ids, by: { $0 % partitionCount }) {
            for start in stride(from: 0, to: partitionIds.count, by: JobStore.maxBatch) {
                batches.append((partition, Array(partitionIds[start..<min(start + JobStore.maxBatch, partitionIds.count)])))
            }
        }
        // A renewal slower than the interval is as good as lost.
        let timeout = max(configuration.leaseRenewInterval, .milliseconds(500))
        return await withTaskGroup(of: Bool.self) { group in
            for batch in batches {
                group.addTask {
                    do {
                        let lost = try await pool.store.renew(
                            ids: batch.ids, partition: configuration.keys.partition(batch.partition), now: pool.clock.scriptNow,
                            workerId: configuration.workerId, leaseMs: WorkerPool<App>.ms(configuration.leaseDuration),
                            timeout: timeout
                        )
                        for id in lost {
                            pool.interrupt(id, .leaseLost)
                        }
                        // Lost jobs whose task has ended: nothing more to renew.
                        let ended = pool.running.withLock { running in lost.filter { running[$0] == nil } }
                        if !ended.isEmpty { pool.release(held: ended) }
                        pool.trouble.succeeded("renewal", logger: pool.logger, "worker renews leases again")
                        return true
                    } catch {
                        // Leases run out only after leaseDuration (and recovery
                        // waits its grace period); the next renewal may succeed.
                        pool.trouble.failed(
                            "renewal", "worker cannot renew its leases; retrying", logger: pool.logger,
                            metadata: ["conveyor.jobs": "\(batch.ids.count)", "conveyor.error": "\(error)"]
                        )
                        return false
                    }
                }
            }
            var allRenewed = true
            for await renewed in group { allRenewed = allRenewed && renewed }
            return allRenewed
        }
    }

    /// One recovery pass per partition (whoever wins a short lock runs it).
    private func recover() async {
        for partition in configuration.keys.partitions {
            do {
                let pass = try await pool.store.recoveryPass(
                    partition: partition, now: pool.clock.scriptNow, estimatedNow: pool.clock.nowMs,
                    graceMs: WorkerPool<App>.ms(configuration.recoveryGracePeriod),
                    maxInterruptions: configuration.maxConsecutiveInterruptions,
                    lockOwner: configuration.workerId, lockMs: max(100, WorkerPool<App>.ms(configuration.recoveryInterval) / 2)
                )
                if pass.recovered > 0 {
                    pool.metrics.increment(.recovered, types: pass.recoveredTypes.lazy)
                    pool.logger.info("recovered jobs of lost workers; they run again", metadata: ["conveyor.recovered": "\(pass.recovered)"])
                }
                if !pass.unparseable.isEmpty {
                    pool.logger.info(
                        "running jobs whose hash does not parse (an older or foreign version wrote them) are recovered as lost (without a type or user: finished as unreadable); the archiver keeps them raw",
                        metadata: ["conveyor.partition": "\(partition.index)", "conveyor.job.ids": "\(pass.unparseable.prefix(20))"]
                    )
                }
            } catch {
                pool.logger.debug("recovery pass failed", metadata: ["conveyor.error": "\(error)"])
            }
        }
    }

    /// Reads the per-partition gauges: four counts per partition in one
    /// pipelined round trip (O(log n) each in Redis). "Due now" uses the
    /// estimate of Redis's clock.
    private func refreshGauges() async {
        let partitions = configuration.keys.partitions
        let now = pool.clock.nowMs
        var commands: [RedisCommand] = []
        for partition in partitions {
            commands += [
                RedisCommand("ZCARD", key: partition.due), RedisCommand("ZCOUNT", key: partition.due, "-inf", now),
                RedisCommand("ZCARD", key: partition.running), RedisCommand("ZCARD", key: partition.finished),
            ]
        }
        guard let replies = try? await pool.client.pipeline(commands), replies.count == commands.count else {
            pool.logger.debug("job gauges not refreshed: Redis did not answer")
            return
        }
        for (offset, partition) in partitions.enumerated() {
            let counts = replies[4 * offset..<4 * offset + 4].map { $0.int ?? 0 }
            pool.metrics.record(.pending, partition: partition.index, counts[0])
            pool.metrics.record(.dueNow, partition: partition.index, counts[1])
            pool.metrics.record(.running, partition: partition.index, counts[2])
            pool.metrics.record(.awaitingArchive, partition: partition.index, counts[3])
        }
    }
}
