@testable import Conveyor
import Foundation
import Testing

private typealias Support = ArchiverTestSupport

@Suite("Worker side: running jobs whose hash does not parse")
struct UnparseableRecoveryTests {
    @Test("are recovered as lost (and then archived raw) instead of staying in running; one without t or u is finished as unreadable without failing the pass")
    func recovered() async throws {
        try await TestRedis.withClient { client, ns in
            let keys = try ConveyorKeys(namespace: ns)
            let p = keys.partition(0)
            let now = Date().milliseconds
            // 120 running jobs of an older version (ca not an integer), leases
            // expired: more than one pass reads (100).
            var stale: [Int] = []
            for index in 0..<120 {
                let id = 8_000_000 + index
                let fields: [any RESPArgument] = [p.job(id), "t", "legacy", "u", "\(index)", "ca", "yesterday", "st", now - 100_000, "w", "gone"]
                _ = try await client.send(RedisCommand("HSET", arguments: fields))
                _ = try await client.send("ZADD", p.running, now - 100_000, id)
                _ = try await client.send("ZADD", p.leases, now - 90_000 + index, id)
                stale.append(id)
            }
            // And one without a user, at the head of the leases.
            _ = try await client.send("HSET", p.job(7_999_999), "t", "legacy", "ca", now, "st", now - 100_000)
            _ = try await client.send("ZADD", p.running, now - 100_000, 7_999_999)
            _ = try await client.send("ZADD", p.leases, now - 95_000, 7_999_999)
            // Failed jobs go to the archiver at once (the worker's default keeps them 7 days).
            let store = JobStore(client: client, keys: keys, staleAfterMs: 3_600_000, failedRetention: .init(ms: 0))
            var passes: [JobStore.RecoveryPass] = []
            for _ in 0..<4 {
                passes.append(try await store.recoveryPass(partition: p, now: nil, estimatedNow: now, graceMs: 0, maxInterruptions: 3))
            }
            #expect(passes.map(\.recovered).reduce(0, +) == 121, "\(passes)")
            #expect(try await client.send("ZCARD", p.running).int == 0)
            // Each is finished as lost and re-run (a clean hash: ca is written anew).
            let finished = Set(try await client.send("ZRANGE", p.finished, 0, -1).array?.compactMap(\.int) ?? [])
            #expect(finished == Set(stale + [7_999_999]))
            #expect(try await client.send("HGET", p.job(7_999_999), "r").string == #"{"error":"unreadable job hash"}"#)
            let reruns = try await client.send("ZCARD", p.due).int
            #expect(reruns == 120)
            let directory = Support.temporaryDirectory()
            defer { try? FileManager.default.removeItem(atPath: directory) }
            try await Support.withArchiver(client, Support.configuration(directory, keys: keys, archiverId: "rec")) { _ async throws in
                #expect(try await eventually { try await client.send("ZCARD", p.finished).int == 0 })
            }
            let entries = try await HistoryLog(directory: directory).entries(matching: HistoryQuery(limit: nil))
            #expect(entries.count == 121 && entries.allSatisfy { $0.raw?.fields["ok"] == "0" })
            #expect(entries.filter { $0.raw?.reason == "ca is not an integer" }.count == 120)
        }
    }

    @Test("a due job whose hash lacks t or u is finished as unreadable by the claim; the valid jobs of the batch are claimed, none is lost")
    func unreadableDueJobs() async throws {
        try await TestRedis.withClient { client, ns in
            let keys = try ConveyorKeys(namespace: ns)
            let p = keys.partition(0)
            let scheduler = JobScheduler(client: client, configuration: .init(keys: keys))
            let valid = try await scheduler.scheduleJobs((1...4).map { WorkerJobConfig(WorkerEchoJob.self, userId: $0, data: .null) })
            let now = Date().milliseconds
            // Foreign hashes due before the valid jobs: one without u, one without t, one id without a hash.
            _ = try await client.send("HSET", p.job(5), "t", "legacy", "ca", now)
            _ = try await client.send("HSET", p.job(6), "u", "3", "ca", now)
            _ = try await client.send("ZADD", p.due, 0, 5, 0, 6, 0, 7)
            let store = JobStore(client: client, keys: keys, staleAfterMs: 3_600_000)
            let claimed = try await store.claim(partition: p, now: nil, workerId: "w", maxCount: 10, leaseMs: 30_000)
            #expect(claimed.jobs.map(\.id) == valid.map(\.id))
            #expect(try await client.send("ZCARD", p.due).int == 0)
            #expect(try await client.send("ZRANGE", p.running, 0, -1).array?.compactMap(\.int).sorted() == valid.map(\.id).sorted())
            #expect(try await client.send("ZRANGE", p.finished, 0, -1).array?.compactMap(\.int).sorted() == [5, 6])
            for id in [5, 6] {
                #expect(try await client.send("HGET", p.job(id), "r").string == #"{"error":"unreadable job hash"}"#)
            }
            #expect(try await client.send("EXISTS", p.job(7)).int == 0, "no hash is made up for an id without one")
        }
    }
}
