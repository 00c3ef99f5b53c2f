import ConveyorRedis
import Foundation
import Testing

@testable import Conveyor

/// The Redis commands a `scheduleJobs` call runs (issue 14): the replace rule's
/// reads happen once per call, not once per job, and the indexes are written
/// only when something changed. Counted from `INFO commandstats`, which includes
/// the commands a script runs.
@Suite("Schedule commands per call", .serialized)
struct ScheduleCommandCountTests {
    static func deltas(
        _ client: RedisClient, _ commands: [String], serverOf key: String, around body: () async throws -> Void
    ) async throws -> [String: Int] {
        var before: [String: Int] = [:]
        for command in commands { before[command] = try await StaleIndexTests.calls(client, command, serverOf: key) }
        try await body()
        var result: [String: Int] = [:]
        for command in commands { result[command] = try await StaleIndexTests.calls(client, command, serverOf: key) - before[command]! }
        return result
    }

    @Test("a bulk call of 100 jobs reads `pending` with one HMGET and the stale index with one HGET and one HLEN")
    func bulkReadsOncePerCall() async throws {
        try await SchedulerHarness.run { h in
            // The first call also checks the namespace's layout (an HMGET): not counted.
            _ = try await h.scheduler.scheduleJob(WorkerJobConfig(SendEmailTestJob.self, userId: 1_000, data: .init(to: "u", subject: "s")))
            let configs = (1...100).map { WorkerJobConfig(SendEmailTestJob.self, userId: $0, data: .init(to: "u", subject: "s")) }
            let counts = try await Self.deltas(h.client, ["hget", "hmget", "hlen"], serverOf: h.keys.partition(0).due) {
                _ = try await h.scheduler.scheduleJobs(configs)
            }
            #expect(counts == ["hget": 1, "hmget": 1, "hlen": 1], "\(counts)")
            #expect(try await h.scheduler.counts()[.pending] == 101)
        }
    }

    @Test("the call's one read of `pending` still applies the replace rule: to a job pending before the call, and within the call")
    func bulkReplaceRule() async throws {
        try await SchedulerHarness.run { h in
            let old = try await h.scheduler.scheduleJob(WorkerJobConfig(SendEmailTestJob.self, userId: 1, data: .init(to: "u", subject: "old")))
            let jobs = try await h.scheduler.scheduleJobs([
                WorkerJobConfig(SendEmailTestJob.self, userId: 1, data: .init(to: "u", subject: "a")),
                WorkerJobConfig(SendEmailTestJob.self, userId: 2, data: .init(to: "u", subject: "b")),
                WorkerJobConfig(SendEmailTestJob.self, userId: 2, data: .init(to: "u", subject: "c")),
                WorkerJobConfig(SendEmailTestJob.self, userId: 1, data: .init(to: "u", subject: "d")),
            ])
            #expect(try await h.requireJob(old.id).resultJSON == replacedResult(by: jobs[0].id))
            #expect(try await h.requireJob(jobs[0].id).resultJSON == replacedResult(by: jobs[3].id))
            #expect(try await h.requireJob(jobs[1].id).resultJSON == replacedResult(by: jobs[2].id))
            #expect(try await h.requireJob(jobs[2].id).state == .pending)
            #expect(try await h.requireJob(jobs[3].id).state == .pending)
            let pending = try #require(try await h.client.send("HGETALL", h.keys.partition(0).pending).array).compactMap(\.string)
            #expect(Set(pending) == ["\(SendEmailTestJob.typeName):1", "\(jobs[3].id)", "\(SendEmailTestJob.typeName):2", "\(jobs[2].id)"])
            #expect(try await h.scheduler.counts()[.pending] == 2)
        }
    }

    @Test("with no running job, schedules leave the stale index unwritten")
    func sweepWithNothingWritesNothing() async throws {
        try await SchedulerHarness.run { h in
            let p = h.keys.partition(0)
            for user in 1...3 {
                _ = try await h.scheduler.scheduleJob(WorkerJobConfig(SendEmailTestJob.self, userId: user, data: .init(to: "u", subject: "s")))
                h.clock.advance(milliseconds: 7_200_000)
            }
            #expect(try await h.client.send("EXISTS", p.stale).int == 0)
        }
    }

    @Test("a wake is one LPUSH; LTRIM runs only when the list passes 1000 markers, and keeps it at 1000")
    func wakeTrimsOnlyWhenLong() async throws {
        try await SchedulerHarness.run { h in
            let p = h.keys.partition(0)
            _ = try await h.scheduler.scheduleJob(WorkerJobConfig(SendEmailTestJob.self, userId: 1_000, data: .init(to: "u", subject: "s")))
            let short = try await Self.deltas(h.client, ["lpush", "ltrim"], serverOf: h.keys.partition(0).due) {
                _ = try await h.scheduler.scheduleJob(WorkerJobConfig(SendEmailTestJob.self, userId: 1, data: .init(to: "u", subject: "s")))
            }
            #expect(short == ["lpush": 1, "ltrim": 0], "\(short)")
            let have = try #require(try await h.client.send("LLEN", p.wake).int)
            _ = try await h.client.send(RedisCommand("RPUSH", argumentList: [p.wake] + Array(repeating: "1", count: 1000 - have)))
            #expect(try await h.client.send("LLEN", p.wake).int == 1000)
            let long = try await Self.deltas(h.client, ["lpush", "ltrim"], serverOf: h.keys.partition(0).due) {
                _ = try await h.scheduler.scheduleJob(WorkerJobConfig(SendEmailTestJob.self, userId: 2, data: .init(to: "u", subject: "s")))
            }
            #expect(long == ["lpush": 1, "ltrim": 1], "\(long)")
            #expect(try await h.client.send("LLEN", p.wake).int == 1000)
        }
    }
}
