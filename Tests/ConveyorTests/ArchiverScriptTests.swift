@testable import Conveyor
import Foundation
import Testing

private typealias Support = ArchiverTestSupport

/// The archiver's scripts, seed → run → assert.
@Suite("Archiver scripts")
struct ArchiverScriptTests {
    @Test("claimArchiveBatch: due jobs in removeAt order, others' claims skipped, the held batch returned again, nextRemoveAt")
    func claim() async throws {
        try await TestRedis.withClient { client, ns in
            let keys = try ConveyorKeys(namespace: ns)
            let p = keys.partition(0)
            let store = ArchiveStore(client: client, keys: keys)
            let jobs = try await Support.makeFinishedJobs(client, keys: keys, count: 10, removeDelay: 0)
            let later = try await Support.makeFinishedJobs(client, keys: keys, count: 1, firstUser: 500, removeDelay: 3_600_000)
            let now = Date().milliseconds + 5

            let first = try await store.claim(partition: p, now: now, archiverId: "a", maxCount: 4)
            #expect(!first.resumed && first.ids.count == 4 && first.jobs.count == 4)
            #expect(first.jobs.allSatisfy { $0.finished != nil && $0.type == "archiveTest" })
            let second = try await store.claim(partition: p, now: now, archiverId: "b", maxCount: 100)
            #expect(!second.resumed && second.ids.count == 6 && Set(second.ids).isDisjoint(with: first.ids))
            #expect(Set(first.ids + second.ids) == Set(jobs.map(\.id)), "the job due in an hour is not claimed")
            #expect(second.nextRemoveAt == later[0].removeAt?.milliseconds)

            let again = try await store.claim(partition: p, now: now, archiverId: "a", maxCount: 100)
            #expect(again.resumed && again.ids == first.ids.sorted(), "the held batch, nothing new")
            let onlyHeld = try await store.claim(partition: p, now: now, archiverId: "c", maxCount: 0)
            #expect(!onlyHeld.resumed && onlyHeld.ids.isEmpty, "maxCount 0 claims nothing")
            #expect(try await client.send("HLEN", p.archiving).int == 10)
            #expect(try await client.send("ZCARD", p.finished).int == 11, "claimed jobs stay in finished")

            // A claimed job whose hash disappeared comes back as {id}.
            _ = try await client.send("DEL", p.job(first.ids[0]))
            let gone = try await store.claim(partition: p, now: now, archiverId: "a", maxCount: 0)
            #expect(gone.ids.count == 4 && gone.jobs.count == 3)

            for arguments: [any RESPArgument] in [[now, "", 1], [now, "a", -1], [now, "a", 1001], ["soon", "a", 1]] {
                await #expect(throws: RedisError.self) {
                    _ = try await client.eval(ScriptSignature.claimArchiveBatch.call(p, arguments))
                }
            }
        }
    }

    @Test("deleteArchivedJobs deletes only the caller's claims; releaseArchiveClaims drops one archiver's claims")
    func deleteAndRelease() async throws {
        try await TestRedis.withClient { client, ns in
            let keys = try ConveyorKeys(namespace: ns)
            let p = keys.partition(0)
            let store = ArchiveStore(client: client, keys: keys)
            try await Support.makeFinishedJobs(client, keys: keys, count: 6)
            let now = Date().milliseconds + 5
            let a = try await store.claim(partition: p, now: now, archiverId: "a", maxCount: 3)
            let b = try await store.claim(partition: p, now: now, archiverId: "b", maxCount: 3)
            #expect(try await store.delete(ids: b.ids + [a.ids[0]], partition: p, archiverId: "a") == [a.ids[0]])
            #expect(try await client.send("EXISTS", p.job(a.ids[0])).int == 0)
            #expect(try await client.send("ZSCORE", p.finished, a.ids[0]).isNull)
            #expect(try await client.send("HEXISTS", p.archiving, a.ids[0]).int == 0)
            #expect(try await client.send("EXISTS", p.job(b.ids[0])).int == 1, "b's job untouched")
            #expect(try await Archiver.claims(client: client, keys: keys) == ["a": 2, "b": 3])
            #expect(try await Archiver.releaseIdentity("b", client: client, keys: keys) == 3)
            #expect(try await Archiver.claims(client: client, keys: keys) == ["a": 2])
            let c = try await store.claim(partition: p, now: now, archiverId: "c", maxCount: 10)
            #expect(Set(c.ids) == Set(b.ids), "released jobs are claimable again")
        }
    }
}
