@testable import Conveyor
import Foundation
import Testing

private typealias Support = ArchiverTestSupport

/// Redis's clock now, in ms.
func redisTimeMs(_ client: RedisClient) async throws -> Int {
    try await JobInspector.redisTime(client).milliseconds
}

@Suite("Archiver on Redis's clock")
struct ArchiverClockTests {
    @Test("claimArchiveBatch takes now from Redis (TIME) when sent \"\", reports the time it used, and takes an integer only as given")
    func scriptNow() async throws {
        try await TestRedis.withClient { client, ns in
            let keys = try ConveyorKeys(namespace: ns)
            let p = keys.partition(0)
            let store = ArchiveStore(client: client, keys: keys)
            let due = try await Support.makeFinishedJobs(client, keys: keys, count: 3, removeDelay: 0)
            let later = try await Support.makeFinishedJobs(client, keys: keys, count: 1, firstUser: 100, removeDelay: 60_000)
            let removeAtLater = try #require(later[0].removeAt).milliseconds

            // A test-given now in the future: every job is due by it, and the reply says so.
            let given = removeAtLater + 1
            let future = try await store.claim(partition: p, now: given, archiverId: "given", maxCount: 10)
            #expect(future.now == given && Set(future.ids) == Set((due + later).map(\.id)))
            _ = try await Archiver.releaseIdentity("given", client: client, keys: keys)

            let before = try await redisTimeMs(client)
            let claim = try await store.claim(partition: p, now: nil, archiverId: "redis", maxCount: 10)
            let after = try await redisTimeMs(client)
            #expect((before...after).contains(claim.now), "now \(claim.now) is Redis's, read between \(before) and \(after)")
            #expect(Set(claim.ids) == Set(due.map(\.id)), "the job due in a minute by Redis's clock is not claimed")
            #expect(claim.nextRemoveAt == removeAtLater)
        }
    }

    @Test(
        "an archiver whose clock is 5 minutes fast or slow archives each job once its removeAt has passed by Redis's clock, not before, and leaves none behind",
        arguments: [300_000, -300_000]
    )
    func skewedArchiver(skewMs: Int) async throws {
        try await TestRedis.withClient { client, ns in
            let keys = try ConveyorKeys(namespace: ns)
            let directory = Support.temporaryDirectory()
            defer { try? FileManager.default.removeItem(atPath: directory) }
            var configuration = Support.configuration(directory, keys: keys, archiverId: "skewed")
            // Only the archiver's own decisions see the wrong clock; the script reads TIME.
            configuration.testHostClock = { Date().addingTimeInterval(Double(skewMs) / 1000) }
            // A long pass interval: the archiver must wake for the removeAt
            // itself (on Redis's clock), not when the interval ends.
            configuration.passInterval = .seconds(120)
            let jobs = try await Support.makeFinishedJobs(client, keys: keys, count: 4, removeDelay: 3_000)
            let removeAts = jobs.compactMap { $0.removeAt?.milliseconds }
            let firstRemoveAt = try #require(removeAts.min())
            let events = ArchiverEventLog()
            try await Support.withArchiver(client, configuration, events: events) { _ async throws in
                var looked = 0
                while try await redisTimeMs(client) < firstRemoveAt - 200 {
                    looked += 1
                    #expect(try await client.send("ZCARD", keys.partition(0).finished).int == 4, "archived before its removeAt")
                    try await Task.sleep(for: .milliseconds(100))
                }
                #expect(looked > 5, "the jobs were watched while not due")
                // Well under the pass interval: it woke for the removeAt.
                let archived = try await eventually(timeout: .seconds(30)) { try await Support.isClean(client, keys: keys) }
                #expect(archived, "a job due by Redis's clock was left behind")
            }
            #expect(Set(events.archivedIds) == Set(jobs.map(\.id)))
            // archivedAt is Redis's time (estimated), not the skewed local clock.
            let records = try await HistoryLog(directory: directory).entries(matching: HistoryQuery(limit: nil))
            let redisNow = try await redisTimeMs(client)
            for record in records {
                let archivedAt = try #require(record.archivedAt).milliseconds
                let removeAt = try #require(record.job.removeAt).milliseconds
                #expect(archivedAt >= removeAt - 50, "archivedAt \(archivedAt) before removeAt \(removeAt)")
                #expect(abs(redisNow - archivedAt) < 60_000, "archivedAt \(archivedAt) is not near Redis's time \(redisNow)")
            }
        }
    }
}
