import ConveyorRedis
import Foundation
import Testing

@testable import Conveyor

/// Auto-retry limits and backoff, and how long failed jobs stay in Redis
/// (`includes/retryDelay`, `includes/keepFailed`), on a hand-moved clock.
@Suite("Retries and failed-job retention")
struct RetryAndRetentionTests {
    private func email(
        _ userId: Int = 7, maxAttempts: Int? = nil, backoff: RetryBackoff = .fixed, retryDelay: Int = 0, removeDelay: Int = 0
    ) -> WorkerJobConfig<SendEmailTestJob> {
        WorkerJobConfig(
            SendEmailTestJob.self, userId: userId, data: .init(to: "u\(userId)@example.com", subject: "s"),
            autoRescheduleOnFailure: true, autoRescheduleOnFailureDelay: retryDelay,
            autoRescheduleOnFailureMaxAttempts: maxAttempts, autoRescheduleOnFailureBackoff: backoff, removeDelay: removeDelay
        )
    }

    /// Claims the one due job, checks it is `id`, fails it; returns the retry's id (0: none).
    private func fail(_ h: SchedulerHarness, _ id: Int, sourceLocation: SourceLocation = #_sourceLocation) async throws -> Int {
        let claimed = try await h.claim()
        try #require(claimed.map(\.id) == [id], "claimed \(claimed.map(\.id)), expected [\(id)]", sourceLocation: sourceLocation)
        let done = try await h.complete(id, success: false, resultJSON: #"{"error":"boom"}"#)
        try #require(done.outcome == 1, sourceLocation: sourceLocation)
        return done.newJobId
    }

    @Test("an always-failing job with delay 0 and at most 3 attempts runs 3 times, then stays failed; without a limit it is retried as the seed says")
    func attemptLimit() async throws {
        try await SchedulerHarness.run { h in
            var id = try await h.scheduler.scheduleJob(email(maxAttempts: 3)).id
            var attempts: [Int] = []
            while id != 0 {
                let job = try await h.requireJob(id)
                attempts.append(job.attempt)
                #expect(job.autoRescheduleOnFailureMaxAttempts == 3, "the limit goes down the chain")
                id = try await fail(h, id)
                try #require(attempts.count <= 3, "a 4th attempt was scheduled")
            }
            #expect(attempts == [1, 2, 3])
            #expect(try await h.scheduler.counts()[.pending] ?? 0 == 0)

            // No limit: the seed's behaviour, a retry after every failure.
            var unlimited = try await h.scheduler.scheduleJob(email(8)).id
            for attempt in 1...5 {
                #expect(try await h.requireJob(unlimited).attempt == attempt)
                unlimited = try await fail(h, unlimited)
                #expect(unlimited != 0)
            }
        }
    }

    @Test("exponential backoff: the retry after attempt n is due min(cap, max(delay, 1 s) · 2^(n−1)) after the failure, less at most half")
    func exponentialBackoff() async throws {
        try await SchedulerHarness.run { h in
            var id = try await h.scheduler.scheduleJob(email(backoff: .exponential(maxDelay: .seconds(8)), retryDelay: 1_000)).id
            var delays: [Int] = []
            for attempt in 1...6 {
                let retry = try await fail(h, id)
                let job = try await h.requireJob(retry)
                #expect(job.attempt == attempt + 1)
                #expect(job.autoRescheduleOnFailureBackoff == .exponential(maxDelay: .seconds(8)))
                let delay = epochMilliseconds(job.due) - h.clock.nowMilliseconds
                let full = min(8_000, 1_000 << (attempt - 1))
                #expect(delay >= full / 2 && delay <= full, "attempt \(attempt): \(delay) ms, full \(full) ms")
                delays.append(delay)
                h.clock.set(milliseconds: epochMilliseconds(job.due))
                id = retry
            }
            #expect(delays.last! >= 4_000, "capped at 8 s, less at most half: \(delays)")
            #expect(try await h.scheduler.cancelJob(id: id) == .cancelled)
            // Delay 0 still backs off from 1 s, so a failing job cannot spin.
            let zero = try await h.scheduler.scheduleJob(email(9, backoff: .exponential(maxDelay: .seconds(60)), retryDelay: 0))
            let retry = try await h.requireJob(try await fail(h, zero.id))
            let delay = epochMilliseconds(retry.due) - h.clock.nowMilliseconds
            #expect(delay >= 500 && delay <= 1_000, "\(delay) ms")
        }
    }

    @Test("limits and backoff are checked before anything is written")
    func badRetrySettings() async throws {
        try await SchedulerHarness.run { h in
            let pending = try await h.scheduler.scheduleJob(email(10))
            for config in [email(10, maxAttempts: 0), email(10, backoff: .exponential(maxDelay: .zero))] {
                await #expect(throws: ConveyorError.self) { try await h.scheduler.scheduleJob(config) }
            }
            var delayed = email(10)
            delayed.delay = .milliseconds(-1)
            await #expect(throws: ConveyorError.self) { try await h.scheduler.scheduleJob(delayed) }
            #expect(try await h.requireJob(pending.id).state == .pending, "the rejected calls cancelled nothing")
        }
    }

    @Test(
        "removeDelay is for successes: a failed job stays for the retention (removeAt = finished + failedRetention); cancelled and successful ones leave after removeDelay"
    )
    func failedJobsKept() async throws {
        try await SchedulerHarness.run { h in
            let p = h.keys.partition(0)
            let failing = try await h.scheduler.scheduleJob(
                WorkerJobConfig(SendEmailTestJob.self, userId: 1, data: .init(to: "a", subject: "s"), removeDelay: 1_000)
            )
            #expect(try await fail(h, failing.id) == 0)
            let failed = try await h.requireJob(failing.id)
            #expect(failed.failedRetention == 7 * 86_400_000)
            #expect(failed.removeAt == failed.finished!.addingTimeInterval(7 * 86_400))
            #expect(try await h.client.send("ZSCORE", p.finished, failing.id).string == String(epochMilliseconds(failed.removeAt!)))
            #expect(try await h.client.send("ZSCORE", p.failed, failing.id).string == String(epochMilliseconds(failed.finished!)))

            let succeeding = try await h.scheduler.scheduleJob(
                WorkerJobConfig(SendEmailTestJob.self, userId: 2, data: .init(to: "b", subject: "s"), removeDelay: 1_000)
            )
            _ = try await h.claim()
            _ = try await h.complete(succeeding.id, success: true)
            let succeeded = try await h.requireJob(succeeding.id)
            #expect(succeeded.failedRetention == nil)
            #expect(succeeded.removeAt == succeeded.finished!.addingTimeInterval(1))

            let cancelling = try await h.scheduler.scheduleJob(
                WorkerJobConfig(SendEmailTestJob.self, userId: 3, data: .init(to: "c", subject: "s"), removeDelay: 1_000)
            )
            #expect(try await h.scheduler.cancelJob(id: cancelling.id) == .cancelled)
            let cancelled = try await h.requireJob(cancelling.id)
            #expect(cancelled.failedRetention == nil && cancelled.removeAt == cancelled.finished!.addingTimeInterval(1))
            #expect(try await h.client.send("ZCARD", p.failed).int == 1, "only the failure is indexed")
        }
    }

    @Test("at most maxFailed failed jobs are kept per partition: the oldest go to the archiver at once")
    func failedJobsCapped() async throws {
        try await SchedulerHarness.run { h in
            let p = h.keys.partition(0)
            var ids: [Int] = []
            for user in 1...5 {
                let job = try await h.scheduler.scheduleJob(
                    WorkerJobConfig(SendEmailTestJob.self, userId: user, data: .init(to: "u", subject: "s"))
                )
                _ = try await h.claim()
                #expect(try await h.complete(job.id, success: false, maxFailed: 3).outcome == 1)
                ids.append(job.id)
                h.clock.advance(milliseconds: 1_000)
            }
            let kept = try await h.client.send("ZRANGE", p.failed, 0, -1).array?.compactMap(\.int) ?? []
            #expect(kept == Array(ids.suffix(3)))
            for (index, id) in ids.enumerated() {
                let job = try await h.requireJob(id)
                let removeAt = try #require(try await h.client.send("ZSCORE", p.finished, id).string.flatMap(Int.init))
                #expect(removeAt == epochMilliseconds(try #require(job.removeAt)), "job \(id): the record matches its score")
                if index < 2 {
                    // Released by the failure 3 jobs (3 s) later: the 4th releases the 1st, the 5th the 2nd.
                    #expect(removeAt == epochMilliseconds(job.finished!) + 3_000)
                } else {
                    #expect(removeAt == epochMilliseconds(job.finished!) + 7 * 86_400_000)
                }
            }
        }
    }

    @Test(
        "a failed job that leaves Redis before its retention ends (deleted by an operator, or archived after a shorter retention) leaves the failed index too, so it cannot count against maxFailed and release a kept job early",
        arguments: [false, true]
    )
    func failedIndexFollowsDeletes(archived: Bool) async throws {
        try await SchedulerHarness.run { h in
            let p = h.keys.partition(0)
            let week = 7 * 86_400_000
            func failOne(_ userId: Int, keepMs: Int) async throws -> WorkerJob {
                let job = try await h.scheduler.scheduleJob(
                    WorkerJobConfig(SendEmailTestJob.self, userId: userId, data: .init(to: "u", subject: "s"))
                )
                try #require(try await h.claim().map(\.id) == [job.id])
                try #require(try await h.complete(job.id, success: false, failedKeepMs: keepMs, maxFailed: 2).outcome == 1)
                return try await h.requireJob(job.id)
            }
            let kept = try await failOne(1, keepMs: week)
            h.clock.advance(milliseconds: 1_000)
            // Another worker keeps failed jobs 5 s; the operator's delete needs no retention.
            let gone = try await failOne(2, keepMs: archived ? 5_000 : week)
            if archived {
                h.clock.advance(milliseconds: 5_000)
                let store = ArchiveStore(client: h.client, keys: h.keys)
                let claim = try await store.claim(partition: p, now: h.clock.nowMilliseconds, archiverId: "a1", maxCount: 10)
                try #require(claim.ids == [gone.id])
                #expect(try await store.delete(ids: claim.ids, partition: p, archiverId: "a1") == [gone.id])
            } else {
                #expect(try await h.scheduler.deleteFinishedJob(id: gone.id) == .deleted)
            }
            #expect(try await h.client.send("ZSCORE", p.failed, gone.id) == .null, "the index holds no job that is gone")
            h.clock.advance(milliseconds: 1_000)
            let last = try await failOne(3, keepMs: week)
            // Two failed jobs are in Redis, the cap: the first keeps its whole retention.
            let removeAt = try await h.client.send("ZSCORE", p.finished, kept.id).string.flatMap(Int.init)
            #expect(removeAt == epochMilliseconds(try #require(kept.finished)) + week, "released early")
            #expect(try await h.client.send("ZRANGE", p.failed, 0, -1).array?.compactMap(\.int) == [kept.id, last.id])
        }
    }
}
