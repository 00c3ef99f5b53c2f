@testable import Conveyor
import Foundation
import Testing

/// The seed's replace rule: scheduling a job first cancels every *matching
/// pending* job — same type and userId, and not started, or started more than
/// an hour ago and not finished. Time is driven by the harness clock.
@Suite("JobScheduler replace rule")
struct JobSchedulerReplaceRuleTests {
    private static let hour = 3_600_000

    private func email(_ userId: Int, _ subject: String = "hello", due: Date? = nil) -> WorkerJobConfig<SendEmailTestJob> {
        WorkerJobConfig(SendEmailTestJob.self, userId: userId, due: due, data: .init(to: "u\(userId)@example.com", subject: subject))
    }

    @Test("a job that has not started is cancelled: finished, success false, replacedBy the new id")
    func notStartedIsCancelled() async throws {
        try await SchedulerHarness.run { h in
            // Due later: not started, even though it is not due yet.
            let old = try await h.scheduler.scheduleJob(email(7, "first", due: h.clock.now.addingTimeInterval(600)))
            h.clock.advance(milliseconds: 1_500)
            let new = try await h.scheduler.scheduleJob(email(7, "second"))
            #expect(new.id != old.id)

            let cancelled = try await h.requireJob(old.id)
            #expect(cancelled.state == .finished)
            #expect(cancelled.success == false)
            #expect(cancelled.resultJSON == replacedResult(by: new.id))
            #expect(cancelled.result == .object(["cancelled": .bool(true), "replacedBy": .integer(Int64(new.id))]))
            #expect(cancelled.finished == h.clock.now)
            #expect(cancelled.started == nil)
            #expect(cancelled.workerId == nil)
            // Everything that was scheduled is unchanged.
            #expect(cancelled.dataJSON == old.dataJSON)
            #expect(cancelled.due == old.due)
            #expect(cancelled.createdAt == old.createdAt)

            let pending = try await h.requireJob(new.id)
            #expect(pending.state == .pending)
            #expect(pending == new)
            #expect(try await h.scheduler.jobs(state: .pending, type: SendEmailTestJob.typeName, userId: 7).map(\.id) == [new.id])
            #expect(try await h.scheduler.counts() == [.pending: 1, .running: 0, .finished: 1])

            // A third job replaces the second only; the first stays as it was.
            h.clock.advance(milliseconds: 1_000)
            let third = try await h.scheduler.scheduleJob(email(7, "third"))
            #expect(try await h.requireJob(old.id) == cancelled)
            #expect(try await h.requireJob(new.id).resultJSON == replacedResult(by: third.id))
            #expect(try await h.scheduler.counts() == [.pending: 1, .running: 0, .finished: 2])
        }
    }

    @Test("a job started less than (or exactly) an hour ago and not finished is kept", arguments: [0, 1, 59 * 60_000, 3_600_000])
    func recentlyStartedIsKept(elapsedMilliseconds: Int) async throws {
        try await SchedulerHarness.run { h in
            let running = try await h.scheduler.scheduleJob(email(7))
            let claimed = try await h.claim()
            #expect(claimed.map(\.id) == [running.id])
            let before = try await h.requireJob(running.id)
            #expect(before.state == .running)
            #expect(before.started == h.clock.now)
            #expect(before.workerId == "worker-1")

            h.clock.advance(milliseconds: elapsedMilliseconds)
            let new = try await h.scheduler.scheduleJob(email(7, "again"))

            #expect(try await h.requireJob(running.id) == before, "the running job must be untouched")
            #expect(try await h.requireJob(new.id).state == .pending)
            #expect(try await h.scheduler.counts() == [.pending: 1, .running: 1, .finished: 0])
            // Its worker can still complete it.
            #expect(try await h.complete(running.id, success: true, resultJSON: #"{"sent":true}"#).outcome == 1)
            let done = try await h.requireJob(running.id)
            #expect(done.success == true)
            #expect(done.resultJSON == #"{"sent":true}"#)
        }
    }

    @Test("a job started more than an hour ago and not finished is cancelled; its worker then loses it", arguments: [3_600_001, 2 * 3_600_000])
    func staleRunningIsCancelled(elapsedMilliseconds: Int) async throws {
        try await SchedulerHarness.run { h in
            let stale = try await h.scheduler.scheduleJob(email(7))
            try await h.claim()
            // A pending job of the same pair, scheduled meanwhile (the stale one was kept then).
            h.clock.advance(milliseconds: 60_000)
            let pending = try await h.scheduler.scheduleJob(email(7, "meanwhile", due: h.clock.now.addingTimeInterval(86_400)))
            #expect(try await h.requireJob(stale.id).state == .running)

            h.clock.advance(milliseconds: elapsedMilliseconds - 60_000)
            let new = try await h.scheduler.scheduleJob(email(7, "new"))

            let cancelled = try await h.requireJob(stale.id)
            #expect(cancelled.state == .finished)
            #expect(cancelled.success == false)
            #expect(cancelled.resultJSON == replacedResult(by: new.id))
            #expect(cancelled.finished == h.clock.now)
            #expect(cancelled.started == dateAt(milliseconds: schedulerTestStart))
            #expect(cancelled.workerId == "worker-1")
            // The not-started one of the same pair goes too.
            let pendingAfter = try await h.requireJob(pending.id)
            #expect(pendingAfter.success == false)
            #expect(pendingAfter.resultJSON == replacedResult(by: new.id))
            #expect(try await h.scheduler.jobs(state: .pending, type: SendEmailTestJob.typeName, userId: 7).map(\.id) == [new.id])
            #expect(try await h.scheduler.counts() == [.pending: 1, .running: 0, .finished: 2])

            // The late worker's completion is refused and writes nothing.
            h.clock.advance(milliseconds: 5)
            #expect(try await h.complete(stale.id, success: true, resultJSON: #"{"sent":true}"#).outcome == 2)
            #expect(try await h.requireJob(stale.id) == cancelled)
        }
    }

    @Test("finished jobs are never touched, however long ago they started")
    func finishedIsUntouched() async throws {
        try await SchedulerHarness.run { h in
            // One succeeded, one failed (without retry), one cancelled by request.
            let succeeded = try await h.scheduler.scheduleJob(email(7, "ok"))
            try await h.claim()
            h.clock.advance(milliseconds: 1_000)
            #expect(try await h.complete(succeeded.id, success: true, resultJSON: #"{"sent":1}"#).outcome == 1)

            let failed = try await h.scheduler.scheduleJob(email(7, "fails"))
            try await h.claim()
            h.clock.advance(milliseconds: 1_000)
            #expect(try await h.complete(failed.id, success: false, resultJSON: #"{"error":"smtp down"}"#).outcome == 1)

            let cancelledByRequest = try await h.scheduler.scheduleJob(email(7, "cancel me"))
            #expect(try await h.scheduler.cancelJob(id: cancelledByRequest.id, reason: "test") == .cancelled)

            let before = try await h.scheduler.jobs(ids: [succeeded.id, failed.id, cancelledByRequest.id])
            #expect(before.count == 3)
            #expect(before.allSatisfy { $0.state == .finished })

            h.clock.advance(milliseconds: 3 * Self.hour)
            let new = try await h.scheduler.scheduleJob(email(7, "later"))
            #expect(try await h.scheduler.jobs(ids: [succeeded.id, failed.id, cancelledByRequest.id]) == before)
            #expect(try await h.requireJob(new.id).state == .pending)
            #expect(try await h.scheduler.counts() == [.pending: 1, .running: 0, .finished: 3])
        }
    }

    @Test("jobs of another user or another type are never cancelled, pending or stale")
    func otherPairsAreIndependent() async throws {
        try await SchedulerHarness.run { h in
            // Stale running jobs of three other pairs.
            let staleOtherUser = try await h.scheduler.scheduleJob(email(8))
            let staleOtherType = try await h.scheduler.scheduleJob(WorkerJobConfig(SyncInboxTestJob.self, userId: 7))
            let staleSystem = try await h.scheduler.scheduleJob(email(0))
            #expect(try await h.claim().count == 3)
            h.clock.advance(milliseconds: 2 * Self.hour)
            // Pending jobs of other pairs; 70 and 17 share digits with 7.
            let pendingOthers = [
                try await h.scheduler.scheduleJob(email(70)),
                try await h.scheduler.scheduleJob(email(17)),
                try await h.scheduler.scheduleJob(WorkerJobConfig(SyncInboxTestJob.self, userId: 70)),
                try await h.scheduler.scheduleJob(WorkerJobConfig(MeasureTestJob.self, userId: 7, data: .init(value: 1.5))),
                try await h.scheduler.scheduleJob(UntypedJobConfig(type: "sendEmail2", userId: 7, dataJSON: "{}")),
            ]
            let runningBefore = try await h.scheduler.jobs(ids: [staleOtherUser.id, staleOtherType.id, staleSystem.id])
            let pendingBefore = try await h.scheduler.jobs(ids: pendingOthers.map(\.id))

            let first = try await h.scheduler.scheduleJob(email(7))
            let second = try await h.scheduler.scheduleJob(email(7))

            #expect(try await h.scheduler.jobs(ids: [staleOtherUser.id, staleOtherType.id, staleSystem.id]) == runningBefore)
            #expect(runningBefore.allSatisfy { $0.state == .running })
            #expect(try await h.scheduler.jobs(ids: pendingOthers.map(\.id)) == pendingBefore)
            #expect(pendingBefore.allSatisfy { $0.state == .pending })
            #expect(try await h.requireJob(first.id).resultJSON == replacedResult(by: second.id))
            #expect(try await h.scheduler.counts() == [.pending: 6, .running: 3, .finished: 1])
        }
    }

    @Test("the replace rule works the same with several partitions")
    func partitioned() async throws {
        try await SchedulerHarness.run(partitionCount: 4) { h in
            var firsts: [WorkerJob] = []
            for userId in 1...12 { firsts.append(try await h.scheduler.scheduleJob(email(userId))) }
            // Claim user 1's job wherever it lives, then let it go stale.
            let partition = h.keys.partition(type: SendEmailTestJob.typeName, userId: 1).index
            let claimed = try await h.claim(partition: partition)
            #expect(claimed.contains { $0.id == firsts[0].id })
            h.clock.advance(milliseconds: Self.hour + 1)
            var seconds: [WorkerJob] = []
            for userId in 1...12 { seconds.append(try await h.scheduler.scheduleJob(email(userId))) }
            for (first, second) in zip(firsts, seconds) {
                #expect(first.id % 4 == second.id % 4, "one pair, one partition")
                let old = try await h.requireJob(first.id)
                #expect(old.success == false)
                #expect(old.resultJSON == replacedResult(by: second.id))
            }
            #expect(try await h.scheduler.counts() == [.pending: 12, .running: 0, .finished: 12])
        }
    }

    @Test("a staleAfter with a sub-second part is honoured to the millisecond")
    func subSecondStaleAfter() async throws {
        try await SchedulerHarness.run(configure: { $0.staleAfter = .milliseconds(1_500) }) { h in
            let job = try await h.scheduler.scheduleJob(email(7))
            try await h.claim()
            h.clock.advance(milliseconds: 1_200)
            let kept = try await h.scheduler.scheduleJob(email(7))
            #expect(try await h.requireJob(job.id).state == .running, "started 1.2 s ago, staleAfter is 1.5 s: must be kept")
            h.clock.advance(milliseconds: 301)
            let replacing = try await h.scheduler.scheduleJob(email(7))
            let stale = try await h.requireJob(job.id)
            #expect(stale.resultJSON == replacedResult(by: replacing.id), "started 1.501 s ago: must be cancelled")
            #expect(try await h.requireJob(kept.id).resultJSON == replacedResult(by: replacing.id))
        }
    }

    @Test("50 concurrent scheduleJob calls for one pair leave exactly one pending job and 49 cancelled")
    func concurrentScheduling() async throws {
        try await SchedulerHarness.run(poolSize: 8) { h in
            let created = try await withThrowingTaskGroup(of: WorkerJob.self, returning: [WorkerJob].self) { group in
                for index in 0..<50 {
                    group.addTask {
                        try await h.scheduler.scheduleJob(
                            WorkerJobConfig(SendEmailTestJob.self, userId: 42, data: .init(to: "x@example.com", subject: "n\(index)"))
                        )
                    }
                }
                var all: [WorkerJob] = []
                for try await job in group { all.append(job) }
                return all
            }
            let ids = created.map(\.id).sorted()
            #expect(Set(ids).count == 50)

            let pending = try await h.scheduler.jobs(state: .pending, type: SendEmailTestJob.typeName, userId: 42)
            #expect(pending.map(\.id) == [ids.last!], "the last one inserted wins")
            #expect(try await h.scheduler.counts() == [.pending: 1, .running: 0, .finished: 49])

            // Inserts are serialised by Redis, so each job was cancelled by the next one inserted.
            let stored = try await h.scheduler.jobs(ids: ids)
            #expect(stored.count == 50)
            for (job, next) in zip(stored, stored.dropFirst()) {
                #expect(job.state == .finished)
                #expect(job.success == false)
                #expect(job.resultJSON == replacedResult(by: next.id))
            }
            let finished = try await h.scheduler.jobs(state: .finished, type: SendEmailTestJob.typeName, userId: 42)
            #expect(finished.count == 49)
            #expect(finished.allSatisfy { $0.result["cancelled"] == .bool(true) && $0.success == false })
        }
    }

    @Test("a retry does not replace a job the app scheduled after the failed one started: the newer schedule wins and the failed job says so")
    func retryDoesNotReplaceNewerSchedule() async throws {
        try await SchedulerHarness.run { h in
            let old = try await h.scheduler.scheduleJob(WorkerJobConfig(
                SendEmailTestJob.self, userId: 7, data: .init(to: "u7@example.com", subject: "old"), autoRescheduleOnFailure: true
            ))
            try await h.claim()
            h.clock.advance(milliseconds: 10)
            let newer = try await h.scheduler.scheduleJob(email(7, "newer"))
            h.clock.advance(milliseconds: 10)
            let completed = try await h.complete(old.id, success: false, resultJSON: #"{"error":"boom"}"#)
            #expect(completed.outcome == 1 && completed.newJobId == 0, "no retry")
            let failed = try await h.requireJob(old.id)
            #expect(failed.followUpSupersededBy == newer.id)
            #expect(try await h.requireJob(newer.id).state == .pending, "the app's job is kept")
            #expect(try await h.scheduler.jobs(state: .pending, type: SendEmailTestJob.typeName, userId: 7).map(\.id) == [newer.id])
        }
    }

    @Test("a cron job re-registered with a new expression during a run keeps the new expression")
    func cronReRegisteredDuringRun() async throws {
        try await SchedulerHarness.run { h in
            let running = try await h.scheduler.scheduleCronJob(email(7, "every minute"), cron: "* * * * *")
            h.clock.advance(milliseconds: 60_000)
            #expect(try await h.claim().map(\.id) == [running.id])
            let reRegistered = try await h.scheduler.scheduleCronJob(email(7, "hourly"), cron: "0 * * * *")
            let done = try await h.complete(running.id, success: true, cronNextDue: h.clock.nowMilliseconds + 60_000)
            #expect(done.newJobId == 0, "the old expression's next run is dropped")
            #expect(try await h.requireJob(running.id).followUpSupersededBy == reRegistered.id)
            let pending = try await h.scheduler.jobs(state: .pending, type: SendEmailTestJob.typeName, userId: 7)
            #expect(pending.map(\.id) == [reRegistered.id] && pending.first?.cronSchedule == "0 * * * *")
        }
    }

    @Test("a follow-up still replaces a pending job that was scheduled before the ending job started")
    func followUpReplacesOlderPending() async throws {
        try await SchedulerHarness.run { h in
            // An older job of the pair that a worker gave back (unknown type) is pending
            // again, with a creation time before the running job started.
            let older = try await h.scheduler.scheduleJob(email(7, "older"))
            try await h.claim(workerId: "other")
            h.clock.advance(milliseconds: 10)
            let current = try await h.scheduler.scheduleJob(WorkerJobConfig(
                SendEmailTestJob.self, userId: 7, data: .init(to: "u7@example.com", subject: "current"), autoRescheduleOnFailure: true
            ))
            h.clock.advance(milliseconds: 10)
            try await h.claim()
            let store = JobStore(client: h.client, keys: h.keys, staleAfterMs: 3_600_000)
            _ = try await store.release(ids: [older.id], partition: h.keys.partition(0), now: h.clock.nowMilliseconds, workerId: "other")
            #expect(try await h.requireJob(older.id).state == .pending)
            let failed = try await h.complete(current.id, success: false)
            #expect(failed.newJobId != 0, "retried")
            #expect(try await h.requireJob(older.id).resultJSON == replacedResult(by: failed.newJobId))
        }
    }
}
