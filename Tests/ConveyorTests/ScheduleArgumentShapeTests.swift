import ConveyorRedis
import Foundation
import Testing

@testable import Conveyor

/// `scheduleJobs` takes 4 arguments per job when every job of the call takes
/// the defaults of the other nine (issue 14): the short form must store exactly
/// what the long one does, and the scheduler must pick it only when it may.
@Suite("Schedule arguments: the short form for plain jobs")
struct ScheduleArgumentShapeTests {
    private static func email(_ userId: Int, removeDelay: Int = 0, retry: Bool = false) -> WorkerJobConfig<SendEmailTestJob> {
        WorkerJobConfig(
            SendEmailTestJob.self, userId: userId, delay: .seconds(5), data: .init(to: "u\(userId)", subject: "s"),
            autoRescheduleOnFailure: retry, removeDelay: removeDelay)
    }

    @Test("a job sent with 4 arguments is stored field for field as the same job sent with all 13")
    func shortFormStoresTheSame() async throws {
        try await TestRedis.withClient { client, ns in
            let keys = try ConveyorKeys(namespace: ns, partitionCount: 1)
            let p = keys.partition(0)
            let head: [any RESPArgument] = ["1000", 3_600_000, 1, 0, 2]
            let data = #"{"to":"x"}"#
            let short = try await client.eval(
                ScriptSignature.scheduleJobs.call(p, head + [4, "t", 1, data, "+250", "t", 2, "", ""] + ["tc-1"]))
            let long = try await client.eval(
                ScriptSignature.scheduleJobs.call(
                    p,
                    head + [13, "t", 3, data, "+250", "", "", "", "", "", "", "", "", ""]
                        + ["t", 4, "", "", "", "", "0", "0", "0", "", "1", "", ""] + ["tc-1"]))
            let shortIds = (short.array ?? []).compactMap(\.int).dropFirst()
            let longIds = (long.array ?? []).compactMap(\.int).dropFirst()
            try #require(shortIds.count == 4 && longIds.count == 4, "\(short) \(long)")
            for (shortId, longId) in zip([shortIds.first!, shortIds.dropFirst(2).first!], [longIds.first!, longIds.dropFirst(2).first!]) {
                var shortHash = try await Self.hash(client, p.job(shortId))
                var longHash = try await Self.hash(client, p.job(longId))
                #expect(shortHash.removeValue(forKey: "u") != longHash.removeValue(forKey: "u"))
                #expect(shortHash == longHash)
                #expect(
                    try await client.send("ZSCORE", p.due, String(shortId)).string
                        == client.send("ZSCORE", p.due, String(longId)).string)
            }
            #expect(try await client.send("HLEN", p.pending).int == 4)
        }
    }

    /// insertJob builds a plain job's HSET in one table constructor when it is due now; a
    /// job due later takes the general path. Both must store the same fields, in the order
    /// claimJobs reads (t, u first), with data over 64 bytes in parts so the hash stays a listpack.
    @Test("a plain job due now is stored as the same job due later is, but for dd", arguments: [0, 10, 64, 65, 100, 126, 127, 300])
    func plainJobDueNowStoresTheSame(dataLength: Int) async throws {
        try await TestRedis.withClient { client, ns in
            let p = try ConveyorKeys(namespace: ns, partitionCount: 1).partition(0)
            let data = dataLength == 0 ? "" : "\"" + String(repeating: "x", count: dataLength - 2) + "\""
            let reply = try await client.eval(
                ScriptSignature.scheduleJobs.call(p, ["1000", 3_600_000, 1, 0, 2, 4, "t", 1, data, "", "t", 2, data, "+250"]))
            let ids = (reply.array ?? []).compactMap(\.int)
            try #require(ids.count == 5, "\(reply)")
            let (dueNow, dueLater) = (ids[1], ids[3])
            var nowHash = try await Self.hash(client, p.job(dueNow))
            var laterHash = try await Self.hash(client, p.job(dueLater))
            #expect(laterHash.removeValue(forKey: "dd") == "250")
            #expect(nowHash.removeValue(forKey: "u") == "1" && laterHash.removeValue(forKey: "u") == "2")
            #expect(nowHash == laterHash)
            #expect(nowHash["d2"] != nil || dataLength <= 64)
            for id in [dueNow, dueLater] {
                let flat = try #require(try await client.send("HGETALL", p.job(id)).array).compactMap(\.string)
                #expect(Array(flat.prefix(4).enumerated().filter { $0.offset % 2 == 0 }.map(\.element)) == ["t", "u"])
                #expect(try await client.send("OBJECT", "ENCODING", p.job(id)).string == "listpack")
            }
        }
    }

    @Test("fieldsPerJob other than 4 or 13, or a count that does not match it, is refused and writes nothing")
    func fieldsPerJobChecked() async throws {
        try await TestRedis.withClient { client, ns in
            let p = try ConveyorKeys(namespace: ns, partitionCount: 1).partition(0)
            let head: [any RESPArgument] = ["1000", 3_600_000, 1, 0, 1]
            let calls: [(String, [any RESPArgument])] = [
                ("fieldsPerJob must be 4 or 13", head + [5, "t", 1, "", "", ""]),
                ("expected 6 + fieldsPerJob * N", head + [4, "t", 1, "", "", "", "", ""]),
                ("expected 6 + fieldsPerJob * N", head + [13, "t", 1, "", ""]),
                ("fieldsPerJob is missing", head),
            ]
            for (message, arguments) in calls {
                await #expect("\(message)") {
                    try await client.eval(ScriptSignature.scheduleJobs.call(p, arguments))
                } throws: { error in
                    "\(error)".contains(message)
                }
            }
            #expect(try await TestRedis.keys(client, namespace: ns).isEmpty, "nothing written")
        }
    }

    @Test("the scheduler sends the short form only when every job of the batch takes the defaults")
    func scheduleArgumentsPickTheForm() async throws {
        try await SchedulerHarness.run { h in
            func argumentCount(_ configs: [WorkerJobConfig<SendEmailTestJob>], traceContext: String? = nil) throws -> Int {
                let specs = try configs.map { config throws(ConveyorError) in try h.scheduler.spec(config, cron: nil) }
                return JobScheduler.scheduleArguments(
                    specs, batch: Array(specs.indices), scriptNow: "", staleAfterMs: 1, partitionCount: 1, partitionIndex: 0,
                    traceContext: traceContext
                ).count
            }
            let plain = try argumentCount([Self.email(1), Self.email(2)])
            let traced = try argumentCount([Self.email(1), Self.email(2)], traceContext: "tc")
            let withRetry = try argumentCount([Self.email(1), Self.email(2, retry: true)])
            let withRemoveDelay = try argumentCount([Self.email(1, removeDelay: 1)])
            #expect(plain == 6 + 2 * 4)
            #expect(traced == 6 + 2 * 4 + 1)
            #expect(withRetry == 6 + 2 * 13)
            #expect(withRemoveDelay == 6 + 13)
        }
    }

    @Test("a bulk call mixing plain jobs and one with options stores each job's own options")
    func mixedBatchKeepsOptions() async throws {
        try await SchedulerHarness.run { h in
            let plain = try await h.scheduler.scheduleJobs([Self.email(1), Self.email(2)])
            let mixed = try await h.scheduler.scheduleJobs([Self.email(3), Self.email(4, removeDelay: 60_000, retry: true)])
            for job in plain + [mixed[0]] {
                let stored = try await h.requireJob(job.id)
                #expect(!stored.autoRescheduleOnFailure && stored.removeDelay == 0 && stored.attempt == 1)
                #expect(stored.due == job.due && stored.dataJSON == job.dataJSON)
            }
            let optioned = try await h.requireJob(mixed[1].id)
            #expect(optioned.autoRescheduleOnFailure && optioned.removeDelay == 60_000)
        }
    }

    private static func hash(_ client: RedisClient, _ key: String) async throws -> [String: String] {
        let flat = try #require(try await client.send("HGETALL", key).array).compactMap(\.string)
        return Dictionary(uniqueKeysWithValues: stride(from: 0, to: flat.count, by: 2).map { (flat[$0], flat[$0 + 1]) })
    }
}
