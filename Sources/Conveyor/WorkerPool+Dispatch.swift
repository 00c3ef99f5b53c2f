import Foundation
import Synchronization

extension WorkerPool {
    /// Claims jobs for free runners. Claims run as child tasks, so more can
    /// be on their way while one is in flight (for runners freed meanwhile):
    /// Redis does not wait for this process's round trips. No job is claimed
    /// without a free runner for it, except the few claimed ahead while jobs
    /// are short (``ClaimAhead``).
    func dispatch(into group: inout DiscardingTaskGroup) async {
        var signals = freeSlots.makeAsyncIterator()
        let concurrency = configuration.concurrency
        // Up to 3 claims in flight; another one only for a worthwhile batch
        // (both measured best of 1–3 and concurrency/4–/8 end to end).
        let maxClaimsInFlight = 3
        let pipelinedBatch = max(1, concurrency / 8)
        while !isStopping {
            // Jobs claimed ahead (waiting for a runner) are in `running` too.
            let busy = running.withLock { $0.count }
            let ahead = claimAhead.current
            let step: DispatchStep = claims.withLock { state in
                let free = concurrency + ahead - busy - state.reserved
                if let pause = state.pause {
                    return state.inFlight == 0 ? .pause(pause) : .waitForSignal
                }
                guard free > 0, state.inFlight < maxClaimsInFlight, state.inFlight == 0 || free >= pipelinedBatch else {
                    return .waitForSignal
                }
                state.inFlight += 1
                state.reserved += free
                return .claim(free)
            }
            switch step {
            case .claim(let count):
                group.addTask { await self.claimAndStart(count) }
            case .waitForSignal:
                _ = await signals.next()
                // Jobs that end together free their runners one task after
                // another: let those that are ready run first, so one claim
                // fills them all instead of one claim per freed runner.
                await Task.yield()
            case .pause(let duration):
                await wakeup.wait(upTo: duration)
                claims.withLock { $0.pause = nil }
            }
        }
    }

    /// Waits until no claim is in flight (each ends by starting its jobs).
    func waitForClaimsInFlight() async {
        while claims.withLock({ $0.inFlight > 0 }) {
            await settled.wait(upTo: .milliseconds(50))
        }
    }

    /// One claim of up to `count` jobs over the partitions, the jobs started,
    /// and the dispatcher told whether to claim again at once or to pause
    /// until a wake marker, the next due time or the end of an error backoff.
    private func claimAndStart(_ count: Int) async {
        var claimed = 0
        var earliest: Int?
        var failure: (any Error)?
        // Start at a different partition each time, so none waits behind a
        // backlog in another.
        let partitions = configuration.keys.partitions
        let first = claims.withLock { state in
            defer { state.nextPartition = (state.nextPartition + 1) % partitions.count }
            return state.nextPartition
        }
        do {
            for offset in partitions.indices where claimed < count {
                let partition = partitions[(first + offset) % partitions.count]
                let batch = min(count - claimed, JobStore.maxBatch)
                let (jobs, nextDue) = try await claim(partition: partition, maxCount: batch)
                claimed += jobs.count
                await startOrRelease(jobs, partition: partition)
                if let nextDue { earliest = min(earliest ?? nextDue, nextDue) }
            }
        } catch {
            failure = error
        }
        let now = clock.nowMs
        let backoff: Duration? = claims.withLock { state in
            state.inFlight -= 1
            state.reserved -= count
            if failure != nil {
                state.pause = state.backoff
                defer { state.backoff = min(state.backoff * 2, .seconds(5)) }
                return state.backoff
            }
            state.backoff = .milliseconds(50)
            if claimed == count {
                state.pause = nil  // maybe more is due: claim again
            } else if let earliest, earliest <= now {
                state.pause = nil  // became due meanwhile
            } else {
                // Nothing more is due: wait for a wake marker or the next due time.
                state.pause = min(earliest.map { .milliseconds($0 - now) } ?? configuration.maxIdleWait, configuration.maxIdleWait)
            }
            return nil
        }
        if let failure, let backoff, !isStopping {
            logger.debug("worker stopped claiming after a failed claim", metadata: ["conveyor.error": "\(failure)", "conveyor.retry_ms": "\(Self.ms(backoff))"])
        }
        freeSlotsContinuation.yield()
        settled.signal()
    }

    /// One `claimJobs` call, sent again with the same token until it gets a
    /// reply: when a reply is lost (the connection dropped, or another command
    /// on it timed out) the script may have claimed jobs; the replay returns
    /// them instead of leaving them claimed by a worker that does not know.
    /// Gives up only when shutting down, after a few more tries; jobs it might
    /// have claimed are then recovered after their lease, and re-run.
    private func claim(partition: ConveyorKeys.Partition, maxCount: Int) async throws -> (jobs: [WorkerJob], nextDue: Int?) {
        let token = String(claimTokens.add(1, ordering: .relaxed).newValue)
        // Tokens whose replies arrived: this claim has Redis forget them (sent
        // again with it on a retry, so none is lost to a failed call).
        let acknowledged = acknowledgedClaims.withLock { byPartition in
            let taken = Array(byPartition[partition.index, default: []].prefix(100))
            byPartition[partition.index]?.removeFirst(taken.count)
            return taken
        }
        var delay = Duration.milliseconds(50)
        var triesWhileStopping = 0
        while true {
            let sentAt = clock.hostNowMs
            do {
                let (jobs, nextDue, redisNow) = try await store.claim(
                    partition: partition, now: clock.scriptNow, workerId: configuration.workerId, maxCount: maxCount,
                    leaseMs: Self.ms(configuration.leaseDuration), token: token, acknowledged: acknowledged
                )
                clock.observe(redisMs: redisNow, sentAt: sentAt)
                trouble.succeeded("claim", logger: logger, "worker claims jobs again")
                acknowledgedClaims.withLock { $0[partition.index, default: []].append(token) }
                if !jobs.isEmpty {
                    held.withLock { held in
                        for job in jobs { held.insert(job.id) }
                    }
                }
                return (jobs, nextDue)
            } catch {
                if isStopping {
                    triesWhileStopping += 1
                    if triesWhileStopping > 3 { throw error }
                }
                trouble.failed(
                    "claim", "worker cannot claim jobs; sending the claim again", logger: logger,
                    metadata: ["conveyor.error": "\(error)", "conveyor.retry_ms": "\(Self.ms(delay))"]
                )
                try? await Task.sleep(for: delay)
                delay = min(delay * 2, .seconds(2))
            }
        }
    }

    /// Starts the jobs this pool knows; gives the others back to `due`.
    private func startOrRelease(_ jobs: [WorkerJob], partition: ConveyorKeys.Partition) async {
        var unknown: [WorkerJob] = []
        for job in jobs {
            if let runner = registry.runner(for: job.type) {
                start(job, runner: runner)
            } else {
                unknown.append(job)
            }
        }
        guard !unknown.isEmpty else { return }
        let newTypes = unknownTypesWarned.withLock { warned in
            Set(unknown.map(\.type)).filter { warned.insert($0).inserted }
        }
        for type in newTypes.sorted() {
            logger.warning(
                "job type not run by this worker; such jobs are given back for a worker that runs it",
                metadata: ["conveyor.job.type": "\(type)", "conveyor.worker.types": "\(registry.typeNames.joined(separator: ","))"]
            )
        }
        let ids = unknown.map(\.id)
        var delay = Duration.milliseconds(50)
        for attempt in 1...10 {
            do {
                _ = try await store.release(ids: ids, partition: partition, now: clock.scriptNow, workerId: configuration.workerId)
                trouble.succeeded("release", logger: logger, "worker gives back jobs of unknown types again")
                break
            } catch {
                // Still held (leases renewed) while this retries; given up, the
                // jobs are recovered after their lease and re-run.
                trouble.failed(
                    "release", "worker cannot give back jobs of unknown types; retrying", logger: logger,
                    metadata: ["conveyor.attempt": "\(attempt)", "conveyor.error": "\(error)"]
                )
                try? await Task.sleep(for: delay)
                delay = min(delay * 2, .seconds(2))
            }
        }
        release(held: ids)
    }

    /// Keeps a `BLPOP` on the partitions' wake lists outstanding and turns
    /// each marker into a wake-up of the dispatcher.
    ///
    /// On a single node: one `BLPOP` over every partition's wake list. On a
    /// Redis Cluster, where a multi-key `BLPOP` across slots is refused
    /// (`CROSSSLOT`), one `BLPOP` per partition, each on a connection to the
    /// master owning that partition (docs/cluster.md §4): markers keep their
    /// meaning (they persist while no worker listens, one wakes one worker),
    /// at the cost of one blocked connection per partition per worker.
    ///
    /// The dispatcher's timer for the next due job is local (``Wakeup``), not
    /// the `BLPOP` timeout: Redis times out blocked clients only on its `hz`
    /// tick (every 100 ms by default), which made jobs due later start up to
    /// 100 ms late.
    func listenForWakeMarkers() async {
        let partitions = configuration.keys.partitions
        guard client.isCluster, partitions.count > 1 else {
            await listenForWakeMarkers(on: partitions.map(\.wake), listener: 0)
            return
        }
        await withDiscardingTaskGroup { group in
            for partition in partitions {
                group.addTask { await self.listenForWakeMarkers(on: [partition.wake], listener: partition.index) }
            }
        }
    }

    /// One listener: `BLPOP` on `wakeKeys` (all in one slot) until stopping.
    private func listenForWakeMarkers(on wakeKeys: [String], listener: Int) async {
        let seconds = max(1, Double(Self.ms(configuration.maxIdleWait)) / 1000)
        var arguments: [any RESPArgument] = wakeKeys
        arguments.append(String(format: "%.3f", seconds))
        let command = RedisCommand("BLPOP", routingKey: wakeKeys[0], arguments: arguments)
        var backoff = Duration.milliseconds(50)
        while !isStopping {
            do {
                try await client.withDedicatedConnection(routingKey: wakeKeys[0]) { connection throws(RedisError) in
                    blockedOn.withLock { $0[listener] = connection }
                    defer { _ = blockedOn.withLock { $0.removeValue(forKey: listener) } }
                    while !isStopping {
                        let reply = try await connection.send(command, timeout: .seconds(seconds + 5))
                        if !reply.isNull { wakeup.signal() }
                    }
                }
                backoff = .milliseconds(50)
            } catch {
                if isStopping { break }
                logger.debug("wake listener reconnecting", metadata: ["conveyor.error": "\(error)"])
                // Without a listener the dispatcher still wakes on its timer
                // (at most maxIdleWait), so nothing is lost meanwhile.
                wakeup.signal()
                try? await Task.sleep(for: backoff)
                backoff = min(backoff * 2, .seconds(2))
            }
        }
    }
}

/// The dispatcher's claims in flight.
struct ClaimState {
    /// `claimJobs` calls in flight (at most 3).
    var inFlight = 0
    /// Runner slots those calls may fill.
    var reserved = 0
    /// Set when the last claim found nothing more due, or failed: how long to
    /// wait (for a wake marker, the next due time, or the retry) before claiming.
    var pause: Duration?
    /// The next retry delay after a failed claim.
    var backoff = Duration.milliseconds(50)
    /// The partition the next claim starts with (modulo the count): random
    /// at start, so workers started together do not all begin with partition
    /// 0 (on a cluster, the same master).
    var nextPartition = Int.random(in: 0..<65536)
}

enum DispatchStep {
    case claim(Int)
    case waitForSignal
    case pause(Duration)
}
