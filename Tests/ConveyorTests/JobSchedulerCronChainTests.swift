@testable import Conveyor
import Foundation
import Testing

/// Cron chains continued by `completeJobs` (lua/README.md "Chain rules"), with the
/// harness clock: the next run's due time and attempt, failures, retries before the
/// next run, the end of a chain, and the replace rule for follow-ups.
@Suite("JobScheduler cron chains")
struct JobSchedulerCronChainTests {
    // 2026-11-29 (UTC), the harness's day.
    private static let at010210 = 1_795_914_130_000
    private static let at010220 = 1_795_914_140_000
    private static let at010230 = 1_795_914_150_000
    private static let at010300 = 1_795_914_180_000
    private static let at020000 = 1_795_917_600_000
    private static let at030000 = 1_795_921_200_000

    private func email(_ subject: String, userId: Int = 7, autoRescheduleOnFailure: Bool = false, retryDelay: Int = 0, removeDelay: Int = 0)
        -> WorkerJobConfig<SendEmailTestJob>
    {
        WorkerJobConfig(
            SendEmailTestJob.self, userId: userId, data: .init(to: "u\(userId)@example.com", subject: subject),
            autoRescheduleOnFailure: autoRescheduleOnFailure, autoRescheduleOnFailureDelay: retryDelay, removeDelay: removeDelay
        )
    }

    /// Claims the one due job, which must be `id`, and returns it as claimed.
    private func claimOnly(_ h: SchedulerHarness, _ id: Int, sourceLocation: SourceLocation = #_sourceLocation) async throws -> WorkerJob {
        let claimed = try await h.claim()
        try #require(claimed.map(\.id) == [id], "claimed \(claimed.map(\.id)), expected [\(id)]", sourceLocation: sourceLocation)
        return claimed[0]
    }

    @Test("after a successful run the next cron run is due at cronNextDue, attempt 1, rescheduledFromJob the run, with the run's settings; the chain goes on")
    func nextRunAfterSuccess() async throws {
        try await SchedulerHarness.run { h in
            let first = try await h.scheduler.scheduleCronJob(email("tick", removeDelay: 5_000), cron: "*/10 * * * * *", timeZone: "Europe/Berlin")
            #expect(epochMilliseconds(first.due) == Self.at010210)
            h.clock.set(milliseconds: Self.at010210 + 1_500)
            let running = try await claimOnly(h, first.id)
            // The worker's computation of cronNextDue: the next match after now (the run is late, not past a slot).
            let nextDue = try #require(running.nextCronDue(after: h.clock.now))
            #expect(nextDue == Self.at010220)
            h.clock.advance(milliseconds: 2_000)
            let done = try await h.complete(first.id, success: true, resultJSON: #""sent""#, cronNextDue: nextDue)
            #expect(done.outcome == 1)
            #expect(done.newJobId != 0 && done.newJobId != first.id)

            let finished = try await h.requireJob(first.id)
            #expect(finished.state == .finished && finished.success == true && finished.resultJSON == #""sent""#)
            #expect(finished.finished == h.clock.now)
            #expect(finished.followUpSupersededBy == nil)
            let next = try await h.requireJob(done.newJobId)
            #expect(next.state == .pending && next.started == nil && next.finished == nil)
            #expect(epochMilliseconds(next.due) == Self.at010220)
            #expect(next.attempt == 1)
            #expect(next.rescheduledFromJob == first.id)
            #expect(next.createdAt == h.clock.now)
            #expect(next.type == first.type && next.userId == first.userId && next.dataJSON == first.dataJSON)
            #expect(next.cronSchedule == "*/10 * * * * *" && next.cronTimeZone == "Europe/Berlin")
            #expect(next.removeDelay == 5_000 && next.autoRescheduleOnFailure == false)
            #expect(try await h.scheduler.counts() == [.pending: 1, .running: 0, .finished: 1])

            // Not claimable before its due time; at it, it runs and continues the chain in turn.
            h.clock.set(milliseconds: Self.at010220 - 1)
            #expect(try await h.claim().isEmpty)
            h.clock.set(milliseconds: Self.at010220)
            let second = try await claimOnly(h, next.id)
            #expect(second.nextCronDue(after: h.clock.now) == Self.at010230, "a run exactly at its slot is followed by the next slot")
            let secondDone = try await h.complete(next.id, success: true, cronNextDue: Self.at010230)
            let third = try await h.requireJob(secondDone.newJobId)
            #expect(epochMilliseconds(third.due) == Self.at010230 && third.attempt == 1 && third.rescheduledFromJob == next.id)
            #expect(try await h.scheduler.counts() == [.pending: 1, .running: 0, .finished: 2])
        }
    }

    @Test("a run that starts after later slots passed is followed by the first slot after now, not by the missed ones")
    func lateRunSkipsMissedSlots() async throws {
        try await SchedulerHarness.run { h in
            let first = try await h.scheduler.scheduleCronJob(email("tick"), cron: "*/10 * * * * *")
            #expect(epochMilliseconds(first.due) == Self.at010210)
            // Claimed 45 s late: the slots :20, :30, :40, :50 have passed.
            h.clock.set(milliseconds: Self.at010210 + 45_000)
            let running = try await claimOnly(h, first.id)
            let nextDue = try #require(running.nextCronDue(after: h.clock.now))
            #expect(nextDue == Self.at010300)
            let done = try await h.complete(first.id, success: true, cronNextDue: nextDue)
            let next = try await h.requireJob(done.newJobId)
            #expect(epochMilliseconds(next.due) == Self.at010300 && next.attempt == 1)
        }
    }

    @Test("a failed cron run without autoRescheduleOnFailure is followed by the next cron run (attempt 1), so one failure never ends the chain")
    func nextRunAfterFailure() async throws {
        try await SchedulerHarness.run { h in
            let first = try await h.scheduler.scheduleCronJob(email("hourly"), cron: "0 * * * *")
            #expect(epochMilliseconds(first.due) == Self.at020000)
            h.clock.set(milliseconds: Self.at020000 + 250)
            let running = try await claimOnly(h, first.id)
            let nextDue = try #require(running.nextCronDue(after: h.clock.now))
            #expect(nextDue == Self.at030000)
            let done = try await h.complete(first.id, success: false, resultJSON: #"{"error":"smtp down"}"#, cronNextDue: nextDue)
            #expect(done.outcome == 1 && done.newJobId != 0)
            let failed = try await h.requireJob(first.id)
            #expect(failed.success == false && failed.result["error"] == .string("smtp down"))
            let next = try await h.requireJob(done.newJobId)
            #expect(next.state == .pending)
            #expect(epochMilliseconds(next.due) == Self.at030000)
            #expect(next.attempt == 1, "the next cron run is a new run, not a retry")
            #expect(next.rescheduledFromJob == first.id)
            #expect(next.cronSchedule == "0 * * * *")
        }
    }

    @Test(
        "a failed cron run with autoRescheduleOnFailure is retried first (due now + delay, attempt + 1, cronNextDue ignored); the retry keeps the cron, and after it the chain goes on at attempt 1"
    )
    func retryTakesPrecedenceOverNextRun() async throws {
        try await SchedulerHarness.run { h in
            let first = try await h.scheduler.scheduleCronJob(email("hourly", autoRescheduleOnFailure: true, retryDelay: 5_000), cron: "0 * * * *")
            h.clock.set(milliseconds: Self.at020000 + 250)
            _ = try await claimOnly(h, first.id)
            let failed = try await h.complete(first.id, success: false, resultJSON: #"{"error":"boom"}"#, cronNextDue: Self.at030000)
            let retry = try await h.requireJob(failed.newJobId)
            #expect(epochMilliseconds(retry.due) == Self.at020000 + 250 + 5_000, "due now + autoRescheduleOnFailureDelay, not at the next cron slot")
            #expect(retry.attempt == 2)
            #expect(retry.rescheduledFromJob == first.id)
            #expect(retry.cronSchedule == "0 * * * *" && retry.autoRescheduleOnFailure && retry.autoRescheduleOnFailureDelay == 5_000)
            #expect(
                try await h.scheduler.jobs(state: .pending, type: SendEmailTestJob.typeName, userId: 7).map(\.id) == [retry.id], "no cron run besides the retry"
            )

            // The retry fails too: retried again, attempt 3.
            h.clock.advance(milliseconds: 5_000)
            let retrying = try await claimOnly(h, retry.id)
            #expect(retrying.nextCronDue(after: h.clock.now) == Self.at030000)
            let failedAgain = try await h.complete(retry.id, success: false, resultJSON: #"{"error":"boom"}"#, cronNextDue: Self.at030000)
            let secondRetry = try await h.requireJob(failedAgain.newJobId)
            #expect(secondRetry.attempt == 3 && secondRetry.rescheduledFromJob == retry.id)
            #expect(epochMilliseconds(secondRetry.due) == h.clock.nowMilliseconds + 5_000)

            // It succeeds: the next cron run, attempt 1 again.
            h.clock.advance(milliseconds: 5_000)
            _ = try await claimOnly(h, secondRetry.id)
            let succeeded = try await h.complete(secondRetry.id, success: true, cronNextDue: Self.at030000)
            let next = try await h.requireJob(succeeded.newJobId)
            #expect(epochMilliseconds(next.due) == Self.at030000)
            #expect(next.attempt == 1)
            #expect(next.rescheduledFromJob == secondRetry.id)
            #expect(try await h.scheduler.counts() == [.pending: 1, .running: 0, .finished: 3])
        }
    }

    @Test("no next run without a cron: cronNextDue is ignored for a one-off job, and an empty cronNextDue (no next date) ends a chain")
    func noNextRun() async throws {
        try await SchedulerHarness.run { h in
            let oneOff = try await h.scheduler.scheduleJob(email("once", userId: 1))
            _ = try await claimOnly(h, oneOff.id)
            let oneOffDone = try await h.complete(oneOff.id, success: true, cronNextDue: Self.at030000)
            #expect(oneOffDone.outcome == 1 && oneOffDone.newJobId == 0)

            let cron = try await h.scheduler.scheduleCronJob(email("hourly", userId: 2), cron: "0 * * * *")
            h.clock.set(milliseconds: Self.at020000)
            _ = try await claimOnly(h, cron.id)
            let cronDone = try await h.complete(cron.id, success: true, cronNextDue: nil)
            #expect(cronDone.outcome == 1 && cronDone.newJobId == 0)
            #expect(try await h.requireJob(cron.id).followUpSupersededBy == nil)
            #expect(try await h.scheduler.counts() == [.pending: 0, .running: 0, .finished: 2])
        }
    }

    @Test(
        "a job of the pair the app schedules in the same millisecond the cron run started (createdAt == started) wins: no next run, followUpSupersededBy names it",
        arguments: [true, false])
    func nextRunDroppedForScheduleAtStart(success: Bool) async throws {
        try await SchedulerHarness.run { h in
            let cron = try await h.scheduler.scheduleCronJob(email("hourly"), cron: "0 * * * *")
            h.clock.set(milliseconds: Self.at020000)
            let running = try await claimOnly(h, cron.id)
            #expect(running.started == h.clock.now)
            // A one-off job, not a cron job: the app's schedule replaces the chain.
            let newer = try await h.scheduler.scheduleJob(email("one-off"))
            #expect(newer.createdAt == running.started)
            #expect(try await h.requireJob(cron.id).state == .running, "a running job is not replaced")
            h.clock.advance(milliseconds: 1_000)
            let done = try await h.complete(cron.id, success: success, cronNextDue: Self.at030000)
            #expect(done.outcome == 1 && done.newJobId == 0, "the next cron run is dropped")
            let ended = try await h.requireJob(cron.id)
            #expect(ended.success == success && ended.followUpSupersededBy == newer.id)
            let pending = try await h.scheduler.jobs(state: .pending, type: SendEmailTestJob.typeName, userId: 7)
            #expect(pending.map(\.id) == [newer.id] && pending.first?.cronSchedule == nil)
            #expect(try await h.requireJob(newer.id) == newer, "the app's job is untouched")
        }
    }

    @Test("a pending job of the pair created one millisecond before the cron run started is replaced by the next run")
    func nextRunReplacesPendingFromBeforeStart() async throws {
        try await SchedulerHarness.run { h in
            // `older` runs on another worker while the cron job is scheduled (a running job is
            // not replaced), then is given back: pending again, created before the cron run started.
            h.clock.set(milliseconds: Self.at020000 - 1)
            let older = try await h.scheduler.scheduleJob(email("older"))
            _ = try await h.claim(workerId: "other")
            let cron = try await h.scheduler.scheduleCronJob(email("hourly"), cron: "0 * * * *")
            #expect(try await h.requireJob(older.id).state == .running)
            h.clock.set(milliseconds: Self.at020000)
            let running = try await claimOnly(h, cron.id)
            let store = JobStore(client: h.client, keys: h.keys, staleAfterMs: 3_600_000)
            _ = try await store.release(ids: [older.id], partition: h.keys.partition(0), now: h.clock.nowMilliseconds, workerId: "other")
            let given = try await h.requireJob(older.id)
            #expect(given.state == .pending)
            #expect(epochMilliseconds(given.createdAt) == epochMilliseconds(try #require(running.started)) - 1)

            let done = try await h.complete(cron.id, success: true, cronNextDue: Self.at030000)
            #expect(done.newJobId != 0, "the next run is scheduled")
            #expect(try await h.requireJob(cron.id).followUpSupersededBy == nil)
            #expect(try await h.requireJob(older.id).resultJSON == replacedResult(by: done.newJobId))
            let pending = try await h.scheduler.jobs(state: .pending, type: SendEmailTestJob.typeName, userId: 7)
            #expect(pending.map(\.id) == [done.newJobId])
            #expect(pending.first.map { epochMilliseconds($0.due) } == Self.at030000 && pending.first?.attempt == 1)
        }
    }
}
