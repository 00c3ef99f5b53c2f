@testable import Conveyor
@testable import ConveyorCLI
import Foundation
import NIOCore
import Testing

private typealias Support = ArchiverTestSupport

/// A job hash as an older or foreign version might have left it.
struct ForeignHash: Sendable {
    var id: Int
    var fields: [(name: String, value: [UInt8])]
    /// A part of the reason the archiver must give.
    var reason: String

    init(_ id: Int, _ fields: [(String, String)], reason: String, binary: [(String, [UInt8])] = []) {
        self.id = id
        self.fields = fields.map { ($0.0, Array($0.1.utf8)) } + binary
        self.reason = reason
    }

    /// Writes the hash and lists it in `finished`, due for archiving.
    func seed(_ client: RedisClient, _ partition: ConveyorKeys.Partition, removeAt: Int) async throws {
        var arguments: [any RESPArgument] = [partition.job(id)]
        for (name, value) in fields { arguments += [name, value] }
        _ = try await client.send(RedisCommand("HSET", arguments: arguments))
        _ = try await client.send("ZADD", partition.finished, removeAt, id)
    }

    static func all(now: Int) -> [ForeignHash] {
        let n = "\(now)"
        return [
            ForeignHash(10_000_001, [("u", "5"), ("ca", n), ("fi", n), ("ok", "1")], reason: "field t is missing"),
            ForeignHash(10_000_002, [("t", "legacy"), ("u", "6"), ("ca", "yesterday"), ("fi", n), ("ok", "1")], reason: "ca is not an integer"),
            ForeignHash(10_000_003, [("t", "legacy"), ("u", "7"), ("ca", n), ("fi", n), ("ok", "1"), ("prio", "high")], reason: "unknown field \"prio\""),
            ForeignHash(10_000_004, [("t", "legacy"), ("u", "8"), ("ca", n), ("fi", "soon")], reason: "fi is not an integer"),
            ForeignHash(10_000_005, [("t", "legacy"), ("u", "9"), ("ca", n), ("fi", n), ("d", "{not json")], reason: "d is not single-line JSON"),
            ForeignHash(10_000_006, [("t", "legacy"), ("u", "10"), ("ca", n), ("fi", n), ("r", "{\"a\":\n1}")], reason: "r is not single-line JSON"),
            ForeignHash(10_000_007, [("t", "legacy"), ("u", "11"), ("ca", n), ("fi", n)], reason: "w is not UTF-8", binary: [("w", [0xFF, 0xFE])]),
            ForeignHash(10_000_008, [("t", "legacy"), ("u", "12"), ("ca", n), ("fi", n), ("d2", "[1]")], reason: "the parts of d are not numbered"),
            ForeignHash(10_000_009, [("t", "legacy"), ("u", "007"), ("ca", n), ("fi", n)], reason: "u is not a canonical integer"),
        ]
    }
}

@Suite("Job hashes that do not parse")
struct ArchiverRawHashTests {
    @Test("are archived raw, every field as a string, never dropped, and the rest of the partition is archived as usual")
    func archivedRaw() async throws {
        try await TestRedis.withClient { client, ns in
            let keys = try ConveyorKeys(namespace: ns)
            let p = keys.partition(0)
            let directory = Support.temporaryDirectory()
            defer { try? FileManager.default.removeItem(atPath: directory) }
            let normal = try await Support.makeFinishedJobs(client, keys: keys, count: 30, firstUser: 1_000)
            let now = Date().milliseconds
            let foreign = ForeignHash.all(now: now)
            for hash in foreign { try await hash.seed(client, p, removeAt: now - 1_000) }

            let events = ArchiverEventLog()
            // Small batches: foreign and normal jobs share batches.
            try await Support.withArchiver(client, Support.configuration(directory, keys: keys, archiverId: "raw", batchSize: 7), events: events) {
                _ async throws in
                #expect(try await eventually { try await Support.isClean(client, keys: keys) })
            }
            // Every line is a record with an id (no line that does not parse), each job once.
            let ids = try Support.loggedIds(directory)
            #expect(ids.count == normal.count + foreign.count, "duplicates: \(Support.duplicates(ids))")
            #expect(Set(ids) == Set(normal.map(\.id) + foreign.map(\.id)))
            #expect(events.failures.isEmpty, "\(events.failures)")

            let log = HistoryLog(directory: directory)
            let entries = try await log.entries(matching: HistoryQuery(limit: nil))
            #expect(entries.count == normal.count + foreign.count)
            for hash in foreign {
                let entry = try #require(entries.first { $0.job.id == hash.id })
                let raw = try #require(entry.raw, "job \(hash.id) is raw")
                #expect(raw.reason.contains(hash.reason), "job \(hash.id): \(raw.reason)")
                for (name, value) in hash.fields {
                    if let text = String(validating: value, as: UTF8.self) {
                        #expect(raw.fields[name] == text, "job \(hash.id) field \(name)")
                    } else {
                        #expect(raw.base64Fields[Data(name.utf8).base64EncodedString()] == Data(value).base64EncodedString())
                    }
                }
                #expect(raw.fields.count + raw.base64Fields.count == hash.fields.count, "every field, nothing added")
                #expect(entry.archivedAt != nil)
            }
            for job in normal {
                let entry = try #require(entries.first { $0.job.id == job.id })
                #expect(entry.raw == nil && entry.job == job, "a job of this version is archived as a record")
            }
            // Queries: by id; by type, user and time when those could be read; jobs(matching:) has no raw ones.
            #expect(try await log.entries(matching: HistoryQuery(id: 10_000_001)).map(\.raw?.id) == [10_000_001])
            #expect(try await log.job(id: 10_000_001) == nil, "a raw record is not a job")
            let legacy = try await log.entries(matching: HistoryQuery(type: "legacy", limit: nil))
            #expect(Set(legacy.map(\.job.id)) == Set(foreign.filter { $0.fields.contains { $0.name == "t" } }.map(\.id)))
            #expect(try await log.entries(matching: HistoryQuery(userId: 8)).map(\.job.id) == [10_000_004])
            let recent = try await log.entries(matching: HistoryQuery(since: Date(milliseconds: now), limit: nil))
            #expect(Set(recent.compactMap(\.raw?.id)) == Set(foreign.map(\.id)).subtracting([10_000_004]), "fi \"soon\" has no time")
            #expect(try await log.jobs(matching: HistoryQuery(limit: nil)).count == normal.count)
            // The CLI's table shows them.
            let table = HistoryCommand.table(entries, showState: false)
            #expect(table.contains("10000005") && table.contains("raw (d is not single-line JSON)"))
        }
    }

    @Test("a resumed batch with raw records is reconciled like any other: nothing is written twice")
    func resumedRaw() async throws {
        try await TestRedis.withClient { client, ns in
            let keys = try ConveyorKeys(namespace: ns)
            let p = keys.partition(0)
            let directory = Support.temporaryDirectory()
            defer { try? FileManager.default.removeItem(atPath: directory) }
            let normal = try await Support.makeFinishedJobs(client, keys: keys, count: 10)
            let now = Date().milliseconds
            let foreign = ForeignHash.all(now: now)
            for hash in foreign { try await hash.seed(client, p, removeAt: now - 1_000) }
            let store = ArchiveStore(client: client, keys: keys)
            let writer = try HistoryWriter.open(directory: directory, archiverId: "rr", maxFileSize: 1 << 20)
            _ = try await store.bind(archiverId: "rr", token: writer.token)
            let claim = try await store.claim(partition: p, now: nil, archiverId: "rr", maxCount: 100)
            #expect(claim.jobs.count == normal.count && claim.raw.count == foreign.count)
            let entries = claim.jobs.map { HistoryEntry(job: $0, archivedAt: Date()) } + claim.raw.map { HistoryEntry(raw: $0, archivedAt: Date()) }
            try writer.append(try HistoryEntry.lines(Array(entries.prefix(15))), now: Date())
            writer.close()  // killed after 15 of the 19 records
            let events = ArchiverEventLog()
            try await Support.withArchiver(client, Support.configuration(directory, keys: keys, archiverId: "rr"), events: events) { _ async throws in
                #expect(try await eventually { try await Support.isClean(client, keys: keys) })
            }
            let ids = try Support.loggedIds(directory)
            #expect(ids.count == normal.count + foreign.count, "duplicates: \(Support.duplicates(ids))")
            #expect(events.resumes.first.map { $0.alreadyInLog == 15 && $0.written == 4 } == true, "\(events.resumes)")
        }
    }

    @Test("the hashes the scripts write parse exactly: a failed job with a split payload and result, and its retry")
    func scriptHashesParse() async throws {
        try await TestRedis.withClient { client, ns in
            let keys = try ConveyorKeys(namespace: ns)
            let p = keys.partition(0)
            let scheduler = JobScheduler(client: client, configuration: .init(keys: keys))
            let long = String(repeating: "é", count: 200)
            let created = try await scheduler.schedule([
                JobSpec(
                    type: "parse", userId: 42, dataJSON: #"{"text":"\#(long)"}"#, due: nil, cron: nil,
                    autoRescheduleOnFailure: true, autoRescheduleOnFailureDelay: 10, removeDelay: 5
                )
            ])
            let store = JobStore(client: client, keys: keys, staleAfterMs: 3_600_000)
            let (claimed, _, _) = try await store.claim(partition: p, now: nil, workerId: "w", maxCount: 10, leaseMs: 60_000)
            #expect(claimed.map(\.id) == created.map(\.id))
            let completed = try await store.complete(
                [JobStore.Completion(id: created[0].id, success: false, resultJSON: #"{"error":"\#(long)"}"#, cronNextDue: nil)],
                partition: p, now: nil, workerId: "w"
            )
            let retry = try #require(completed.first?.followUp)
            // The finished job and its retry (rf, a = 2), as stored.
            for id in [created[0].id, retry] {
                let hash = try await client.send("HGETALL", p.job(id)).array ?? []
                #expect(hash.count > 8)
                #expect(RawJobHash.problem(in: hash) == nil, "job \(id): \(hash)")
                if case .job(let job)? = RawJobHash.archivable(id: id, hashFields: hash) {
                    #expect(job.type == "parse" && job.userId == 42)
                } else {
                    Issue.record("job \(id) is not archived as a record")
                }
            }
        }
    }

    @Test("what does not parse, and why", arguments: ForeignHash.all(now: 1_700_000_000_000))
    func problems(hash: ForeignHash) throws {
        let fields = hash.fields.flatMap { [RESPValue.bulkString(ByteBuffer(string: $0.name)), .bulkString(ByteBuffer(bytes: $0.value))] }
        let problem = try #require(RawJobHash.problem(in: fields))
        #expect(problem.contains(hash.reason), "\(problem)")
        guard case .raw(let raw)? = RawJobHash.archivable(id: hash.id, hashFields: fields) else {
            Issue.record("not raw")
            return
        }
        // The record is one line of JSON that reads back as the same hash.
        var line: [UInt8] = []
        raw.appendJSON(to: &line, archivedAtJSON: "\"2026-11-29T00:00:00.000Z\"")
        #expect(!line.contains(0x0A) && JSONSyntax.isSingleLineValue(line))
        let entry = try JSONDecoder().decode(HistoryEntry.self, from: Data(line))
        #expect(entry.raw == raw && entry.job.id == hash.id)
        #expect(try JSONDecoder().decode(HistoryRecordID.self, from: Data(line)).id == hash.id)
    }

    @Test("a value split inside a character is checked joined, in any field order; a part alone, a gap, a type not UTF-8 are problems")
    func splitValueChecked() {
        let bytes = Array("[\"\(String(repeating: "é", count: 40))\"]".utf8)  // 84 bytes; bytes 62-63 are one "é", split by the parts
        let fields: [(String, [UInt8])] = [
            ("d2", Array(bytes[63...])), ("t", Array("split".utf8)), ("u", Array("1".utf8)), ("d", Array(bytes[..<63])),
            ("ca", Array("1764380000000".utf8)),
        ]
        let hash = fields.flatMap { [RESPValue.bulkString(ByteBuffer(string: $0.0)), .bulkString(ByteBuffer(bytes: $0.1))] }
        #expect(RawJobHash.problem(in: hash) == nil)
        let firstPartOnly = Array(hash[2...])  // d2 left out: d alone ends inside a string
        #expect(RawJobHash.problem(in: firstPartOnly)?.contains("d is not single-line JSON") == true)
        // A part missing in the middle; a type that is not UTF-8.
        let gap = firstPartOnly + [.bulkString(ByteBuffer(string: "d3")), .bulkString(ByteBuffer(string: "]"))]
        #expect(RawJobHash.problem(in: gap)?.contains("the parts of d are not numbered") == true)
        var badType = Array(hash[2...])
        badType[1] = .bulkString(ByteBuffer(bytes: [0x6C, 0xC3]))
        #expect(RawJobHash.problem(in: badType)?.contains("t is empty or not UTF-8") == true)
    }

    @Test("JSONSyntax accepts single-line JSON and refuses everything else")
    func jsonSyntax() {
        let valid = [
            "{}", "[]", "\"a\"", "0", "-0.5e+3", "true", "null", " {\"a\" : [1, 2.5, {\"b\":null}], \"c\":\"\\u00e9\\n\\\"\"} ",
            "\"é✓😀\"", "[\"\\/\",1E9]",
        ]
        for text in valid { #expect(JSONSyntax.isSingleLineValue(Array(text.utf8)), "\(text)") }
        let invalid: [[UInt8]] = [
            [], Array("{".utf8), Array("{\"a\":1,}".utf8), Array("01".utf8), Array("1.".utf8), Array("nul".utf8), Array("1 2".utf8),
            Array("{\"a\":\n1}".utf8), Array("[1,\r2]".utf8), Array("\"\u{01}\"".utf8), Array("\"\\x\"".utf8), Array("\"\\u12\"".utf8),
            [0x22, 0xFF, 0x22], [0x22, 0xED, 0xA0, 0x80, 0x22], [0x22, 0xC3, 0x22], Array("{a:1}".utf8),
            Array(repeating: UInt8(ascii: "["), count: 600) + Array(repeating: UInt8(ascii: "]"), count: 600),
        ]
        for bytes in invalid { #expect(!JSONSyntax.isSingleLineValue(bytes), "\(String(decoding: bytes.prefix(20), as: UTF8.self))") }
    }
}

@Suite("Members of finished that are not ids")
struct ForeignFinishedMemberTests {
    @Test("are left alone: the jobs around them are archived, and the archiver neither resumes them forever nor wakes for them")
    func foreignMember() async throws {
        try await TestRedis.withClient { client, ns in
            let keys = try ConveyorKeys(namespace: ns)
            let p = keys.partition(0)
            let directory = Support.temporaryDirectory()
            defer { try? FileManager.default.removeItem(atPath: directory) }
            let now = Date().milliseconds
            _ = try await client.send("ZADD", p.finished, now - 60_000, "legacy-7")
            _ = try await client.send("HSET", p.job(0) + "legacy-7", "t", "legacy")
            let jobs = try await Support.makeFinishedJobs(client, keys: keys, count: 12)
            var configuration = Support.configuration(directory, keys: keys, archiverId: "fm", batchSize: 5)
            configuration.passInterval = .seconds(1)
            let events = ArchiverEventLog()
            try await Support.withArchiver(client, configuration, events: events) { _ async throws in
                #expect(try await eventually { try await client.send("ZCARD", p.finished).int == 1 })
                // Idle now: about one claim a second, not one per 20 ms.
                let before = try await Self.evalCalls(client, serverOf: p.finished)
                try await Task.sleep(for: .seconds(2))
                let calls = try await Self.evalCalls(client, serverOf: p.finished) - before
                #expect(calls <= 10, "\(calls) script calls in 2 s while idle")
            }
            #expect(Set(events.archivedIds) == Set(jobs.map(\.id)))
            #expect(try await client.send("ZRANGE", p.finished, 0, -1).array?.compactMap(\.string) == ["legacy-7"])
            #expect(try await client.send("HLEN", p.archiving).int == 0, "never claimed")
        }
    }

    static func evalCalls(_ client: RedisClient, serverOf key: String) async throws -> Int {
        let info = try await TestRedis.info(client, "commandstats", serverOf: key)
        return info.split(whereSeparator: \.isNewline).filter { $0.hasPrefix("cmdstat_evalsha:") || $0.hasPrefix("cmdstat_eval:") }
            .compactMap { line in line.split(separator: "calls=").last?.split(separator: ",").first.flatMap { Int($0) } }
            .reduce(0, +)
    }
}
