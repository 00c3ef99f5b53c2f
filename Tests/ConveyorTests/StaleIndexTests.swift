import ConveyorRedis
import Foundation
import Testing

@testable import Conveyor

/// The replace rule's index of stale running jobs (`includes/sweepStaleRunning`):
/// a schedule finds its pair's stale jobs without looking at every stale job.
@Suite("Stale running jobs index", .serialized)
struct StaleIndexTests {
    /// Calls of `command` the server holding `key` has run so far (scripts' calls included).
    static func calls(_ client: RedisClient, _ command: String, serverOf key: String) async throws -> Int {
        let info = try await TestRedis.info(client, "commandstats", serverOf: key)
        guard let line = info.split(whereSeparator: \.isNewline).first(where: { $0.hasPrefix("cmdstat_\(command):") }),
            let calls = line.split(separator: "=").dropFirst().first?.split(separator: ",").first.flatMap({ Int($0) })
        else { return 0 }
        return calls
    }

    @Test("with 20,000 running jobs started over an hour ago, each schedule reads its pair's stale jobs only; the first sweep reads each job once")
    func scheduleCostIsConstant() async throws {
        try await SchedulerHarness.run { h in
            let count = 20_000
            let jobs = try await h.scheduler.scheduleJobs(
                (1...count).map { WorkerJobConfig(SendEmailTestJob.self, userId: $0, data: .init(to: "u", subject: "s")) }
            )
            var claimed = 0
            while claimed < count {
                claimed += try await h.claim(maxCount: 1_000).count
            }
            h.clock.advance(milliseconds: 2 * 3_600_000)

            let beforeSweep = try await Self.calls(h.client, "hmget", serverOf: h.keys.partition(0).due)
            let first = try await h.scheduler.scheduleJob(WorkerJobConfig(SendEmailTestJob.self, userId: 1, data: .init(to: "u", subject: "new")))
            let sweep = try await Self.calls(h.client, "hmget", serverOf: h.keys.partition(0).due) - beforeSweep
            #expect(sweep >= count && sweep <= count + 10, "the first schedule after the jobs went stale read each once: \(sweep) HMGETs")
            #expect(try await h.requireJob(jobs[0].id).resultJSON == replacedResult(by: first.id))

            for user in 2...11 {
                let before = try await Self.calls(h.client, "hmget", serverOf: h.keys.partition(0).due)
                let new = try await h.scheduler.scheduleJob(
                    WorkerJobConfig(SendEmailTestJob.self, userId: user, data: .init(to: "u", subject: "new"))
                )
                let reads = try await Self.calls(h.client, "hmget", serverOf: h.keys.partition(0).due) - before
                #expect(reads <= 6, "user \(user): \(reads) HMGETs")
                #expect(try await h.requireJob(jobs[user - 1].id).resultJSON == replacedResult(by: new.id))
            }
            #expect(try await h.scheduler.counts()[.running] == count - 11, "the other stale jobs are untouched")
            let p = h.keys.partition(0)
            #expect(try await h.client.send("HLEN", p.stale).int == count - 11 + 1, "one field per stale pair, and @swept")

            // A stale job that ends by itself leaves the index.
            let ending = jobs[20]
            #expect(try await h.complete(ending.id, success: true).outcome == 1)
            #expect(try await h.client.send("HEXISTS", p.stale, "\(SendEmailTestJob.typeName):\(ending.userId)").int == 0)
        }
    }

    @Test(
        "a foreign running hash without a user is skipped by the sweep: the schedule still goes through (the sweep runs after the first write, so it must not raise)"
    )
    func foreignRunningHash() async throws {
        try await SchedulerHarness.run { h in
            let p = h.keys.partition(0)
            let old = h.clock.nowMilliseconds - 2 * 3_600_000
            _ = try await h.client.send("HSET", p.job(7), "t", "legacy", "ca", old, "st", old)
            _ = try await h.client.send("ZADD", p.running, old, 7)
            let job = try await h.scheduler.scheduleJob(WorkerJobConfig(SendEmailTestJob.self, userId: 1, data: .init(to: "u", subject: "s")))
            #expect(try await h.requireJob(job.id).state == .pending)
            #expect(try await h.client.send("HEXISTS", p.stale, "legacy:").int == 0)
        }
    }
}
