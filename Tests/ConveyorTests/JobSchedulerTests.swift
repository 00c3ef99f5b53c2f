@testable import Conveyor
import Foundation
import Testing

@Suite("JobScheduler")
struct JobSchedulerTests {
    // MARK: Round trip

    @Test("every field set at scheduling reads back unchanged")
    func everyFieldRoundTrips() async throws {
        try await SchedulerHarness.run { h in
            // Due in the future, with a sub-millisecond part that is cut off (ms is the stored unit).
            let dueMilliseconds = schedulerTestStart + 90_061_789
            let due = Date(timeIntervalSince1970: Double(dueMilliseconds) / 1000 + 0.0004)
            // Longer than 64 bytes (stored in parts) with multi-byte characters across the part boundaries.
            let input = SendEmailTestJob.Input(
                to: "zoë@example.com",
                subject: "Grüße aus Köln — 🎉 " + String(repeating: "äöü€𝄞", count: 40) + " \"quoted\" \\ / end",
                tags: ["a/b", "ünïcode", ""],
                attempts: 3
            )
            let created = try await h.scheduler.scheduleJob(WorkerJobConfig(
                SendEmailTestJob.self, userId: 123_456_789, due: due, data: input,
                autoRescheduleOnFailure: true, autoRescheduleOnFailureDelay: 45_000, removeDelay: 86_400_000
            ))
            let read = try await h.requireJob(created.id)

            #expect(read.id == created.id)
            #expect(read.id > 0)
            #expect(read.type == "sendEmail")
            #expect(read.userId == 123_456_789)
            #expect(epochMilliseconds(read.due) == dueMilliseconds)
            #expect(read.due == dateAt(milliseconds: dueMilliseconds))
            #expect(read.createdAt == h.clock.now)
            #expect(epochMilliseconds(read.createdAt) == schedulerTestStart)
            #expect(read.updatedAt == read.createdAt)
            #expect(read.started == nil)
            #expect(read.finished == nil)
            #expect(read.success == nil)
            #expect(read.resultJSON == nil)
            #expect(read.result == .null)
            #expect(read.removeAt == nil)
            #expect(read.cronSchedule == nil)
            #expect(read.cronTimeZone == nil)
            #expect(read.autoRescheduleOnFailure == true)
            #expect(read.autoRescheduleOnFailureDelay == 45_000)
            #expect(read.removeDelay == 86_400_000)
            #expect(read.rescheduledFromJob == nil)
            #expect(read.attempt == 1)
            #expect(read.workerId == nil)
            #expect(read.state == .pending)
            #expect(try read.decodeData(as: SendEmailTestJob.Input.self) == input)
            #expect(read.data["to"] == .string("zoë@example.com"))
            #expect(read.data["attempts"] == .integer(3))
            #expect(read.dataJSON == String(decoding: try JSONEncoder.conveyor.encode(input), as: UTF8.self))
            // The returned job is exactly what is stored.
            #expect(read == created)
            #expect(try await h.scheduler.jobs(ids: [created.id, 999_999, created.id]) == [read, read])
        }
    }

    @Test("defaults: due now, no data, no retry, no delays")
    func defaultsRoundTrip() async throws {
        try await SchedulerHarness.run { h in
            let created = try await h.scheduler.scheduleJob(WorkerJobConfig(SyncInboxTestJob.self, userId: 0))
            let read = try await h.requireJob(created.id)
            #expect(read == created)
            #expect(read.type == "syncInbox")
            #expect(read.userId == 0)
            #expect(read.due == h.clock.now)
            #expect(read.createdAt == h.clock.now)
            #expect(read.data == .null)
            #expect(read.autoRescheduleOnFailure == false)
            #expect(read.autoRescheduleOnFailureDelay == 0)
            #expect(read.removeDelay == 0)
            #expect(read.attempt == 1)

            // Untyped, with JSON text: validated, then stored as written (UntypedDataTests).
            let untyped = try await h.scheduler.scheduleJob(UntypedJobConfig(
                type: "sendEmail", userId: 5, due: h.clock.now.addingTimeInterval(-30),
                dataJSON: #" { "to" : "a@example.com", "subject": "hi", "n": 12345678901234567 } "#
            ))
            let untypedRead = try await h.requireJob(untyped.id)
            #expect(untypedRead == untyped)
            #expect(untypedRead.dataJSON == #" { "to" : "a@example.com", "subject": "hi", "n": 12345678901234567 } "#)
            #expect(epochMilliseconds(untypedRead.due) == schedulerTestStart - 30_000)
        }
    }

    @Test("payloads of every length around the 63-byte parts read back whole", arguments: [2, 3, 50, 63, 64, 65, 125, 126, 127, 128, 129, 6_000, 6_047, 6_048, 6_049, 6_144, 20_000])
    func payloadLengths(length: Int) async throws {
        try await SchedulerHarness.run { h in
            // The data is a JSON string of exactly `length` bytes, with two- and four-byte
            // characters so that parts split inside characters.
            var text = ""
            let pieces = ["a", "é", "𝄞", "z", "€"]
            var counter = 0
            while text.utf8.count < length - 2 {
                let piece = pieces[counter % pieces.count]
                text += text.utf8.count + piece.utf8.count <= length - 2 ? piece : "a"
                counter += 1
            }
            let created = try await h.scheduler.scheduleJob(WorkerJobConfig(NoteTestJob.self, userId: 1, data: text))
            #expect(created.dataJSON?.utf8.count == length)
            let read = try await h.requireJob(created.id)
            #expect(read.dataJSON == created.dataJSON)
            #expect(try read.decodeData(as: String.self) == text)
            // claimJobs and claimArchiveBatch hand over the stored parts; the client joins them.
            let claimed = try await h.claim()
            #expect(claimed.map(\.dataJSON) == [created.dataJSON])
            let resultJSON = "[" + (created.dataJSON ?? "") + "]"
            #expect(try await h.complete(created.id, success: true, resultJSON: resultJSON).outcome == 1)
            let archived = try await ArchiveStore(client: h.client, keys: h.keys).claim(
                partition: h.keys.partition(0), now: h.clock.nowMilliseconds, archiverId: "archiver-test", maxCount: 10
            )
            #expect(archived.jobs.map(\.dataJSON) == [created.dataJSON])
            #expect(archived.jobs.map(\.resultJSON) == [resultJSON])
        }
    }

    // MARK: JSON encoding

    // Regression: Foundation's formatter truncated, printing …919 ms as …918.
    @Test("WorkerJob encodes with the API field names and ISO 8601 UTC dates with milliseconds")
    func jsonEncoding() async throws {
        try await SchedulerHarness.run { h in
            // 2026-11-29T01:02:03.456Z; due 2026-11-30T00:53:27.919Z.
            let created = try await h.scheduler.scheduleJob(WorkerJobConfig(
                SendEmailTestJob.self, userId: 42, due: dateAt(milliseconds: 1_796_000_007_919),
                data: .init(to: "a@example.com", subject: "s"), autoRescheduleOnFailure: true,
                autoRescheduleOnFailureDelay: 5_000, removeDelay: 86_400_000
            ))
            h.clock.set(milliseconds: 1_796_000_023_757)  // 2026-11-30T00:53:43.757Z
            #expect(try await h.claim(workerId: "worker-7").map(\.id) == [created.id])
            h.clock.set(milliseconds: 1_796_000_047_514)  // 2026-11-30T00:54:07.514Z
            // Succeeds, so no retry follows.
            #expect(try await h.complete(created.id, success: true, resultJSON: #"{"messageId":"m-1"}"#, workerId: "worker-7").outcome == 1)
            let job = try await h.requireJob(created.id)

            let encoded = try JSONEncoder().encode(job)
            let object = try #require(try JSONSerialization.jsonObject(with: encoded) as? [String: Any])
            #expect(Set(object.keys) == [
                "id", "type", "userId", "data", "due", "started", "finished", "success", "result", "cronSchedule",
                "cronTimeZone", "autoRescheduleOnFailure", "autoRescheduleOnFailureDelay", "removeDelay", "removeAt",
                "rescheduledFromJob", "attempt", "createdAt", "updatedAt", "workerId", "state",
            ])
            let json = try JSONDecoder().decode(JSONValue.self, from: encoded)
            #expect(json["id"] == .integer(Int64(created.id)))
            #expect(json["type"] == .string("sendEmail"))
            #expect(json["userId"] == .integer(42))
            #expect(json["data"] == .object(["to": .string("a@example.com"), "subject": .string("s"), "tags": .array([]), "attempts": .integer(0)]))
            #expect(json["createdAt"] == .string("2026-11-29T01:02:03.456Z"))
            #expect(json["due"] == .string("2026-11-30T00:53:27.919Z"))
            #expect(json["started"] == .string("2026-11-30T00:53:43.757Z"))
            #expect(json["finished"] == .string("2026-11-30T00:54:07.514Z"))
            #expect(json["updatedAt"] == .string("2026-11-30T00:54:07.514Z"))
            #expect(json["removeAt"] == .string("2026-12-01T00:54:07.514Z"))
            #expect(json["success"] == .bool(true))
            #expect(json["result"] == .object(["messageId": .string("m-1")]))
            #expect(json["autoRescheduleOnFailure"] == .bool(true))
            #expect(json["autoRescheduleOnFailureDelay"] == .integer(5_000))
            #expect(json["removeDelay"] == .integer(86_400_000))
            #expect(json["rescheduledFromJob"] == .null)
            #expect(json["cronSchedule"] == .null)
            #expect(json["attempt"] == .integer(1))
            #expect(json["workerId"] == .string("worker-7"))
            #expect(json["state"] == .string("finished"))

            // And it decodes back to the same job.
            #expect(try JSONDecoder().decode(WorkerJob.self, from: encoded) == job)
        }
    }

    @Test("ISO 8601 output keeps the exact millisecond of every stored time")
    func iso8601MillisecondsAreExact() throws {
        // Stored times are whole milliseconds; none may print (or parse back) one lower.
        var wrong: [String] = []
        var wrongParse: [String] = []
        for step in 0..<2_000 {
            let milliseconds = schedulerTestStart + step * 7_919
            let date = dateAt(milliseconds: milliseconds)
            let text = date.iso8601Milliseconds
            if !text.hasSuffix(String(format: ".%03dZ", milliseconds % 1000)) { wrong.append("\(milliseconds) → \(text)") }
            let reparsed = String(format: "%@.%03dZ", String(text.prefix(19)), milliseconds % 1000)
            let parsed = try #require(Date(iso8601Milliseconds: reparsed), "\(reparsed) does not parse")
            if epochMilliseconds(parsed) != milliseconds { wrongParse.append("\(milliseconds)") }
        }
        #expect(wrong.count == 0, "times print one millisecond low, e.g. \(wrong.prefix(3))")
        #expect(wrongParse.count == 0, "times parse back one millisecond low, e.g. \(wrongParse.prefix(3))")
    }

    // MARK: Cron

    @Test("a cron job is due at the next match strictly after now", arguments: [
        (1_768_472_431_500, 1_768_472_433_000),  // 10:20:31.500 → 10:20:33
        (1_768_472_430_000, 1_768_472_433_000),  // 10:20:30.000 (a match) → 10:20:33
        (1_768_472_432_999, 1_768_472_433_000),
    ])
    func cronDue(nowMilliseconds: Int, expectedDue: Int) async throws {
        try await SchedulerHarness.run(startMilliseconds: nowMilliseconds) { h in
            let created = try await h.scheduler.scheduleCronJob(
                WorkerJobConfig(SendEmailTestJob.self, userId: 3, data: .init(to: "a", subject: "cron")), cron: "*/3 * * * * *"
            )
            #expect(epochMilliseconds(created.due) == expectedDue)
            let read = try await h.requireJob(created.id)
            #expect(read == created)
            #expect(epochMilliseconds(read.due) == expectedDue)
            #expect(read.cronSchedule == "*/3 * * * * *")
            #expect(read.cronTimeZone == nil, "UTC is the default and is not stored")
            #expect(read.createdAt == h.clock.now)
            #expect(read.state == .pending)
        }
    }

    @Test("a cron job in a time zone follows that zone's wall clock and stores the zone")
    func cronTimeZone() async throws {
        // 2026-01-15T10:20:31.500Z is 11:20 in Berlin: next 09:00 Berlin is 2026-01-16T08:00Z.
        try await SchedulerHarness.run(startMilliseconds: 1_768_472_431_500) { h in
            let berlin = try await h.scheduler.scheduleCronJob(
                WorkerJobConfig(SyncInboxTestJob.self, userId: 1), cron: "0 9 * * *", timeZone: "Europe/Berlin"
            )
            #expect(epochMilliseconds(berlin.due) == 1_768_550_400_000)
            let read = try await h.requireJob(berlin.id)
            #expect(read == berlin)
            #expect(read.cronSchedule == "0 9 * * *")
            #expect(read.cronTimeZone == "Europe/Berlin")

            let newYork = try await h.scheduler.scheduleCronJob(
                WorkerJobConfig(SyncInboxTestJob.self, userId: 2), cron: "*/3 * * * * *", timeZone: "America/New_York"
            )
            #expect(epochMilliseconds(newYork.due) == 1_768_472_433_000)
            #expect(try await h.requireJob(newYork.id).cronTimeZone == "America/New_York")

            // A due later than now: the first match after it. 2026-01-20T00:00:00.100Z → 09:00Z.
            let later = try await h.scheduler.scheduleCronJob(
                WorkerJobConfig(SyncInboxTestJob.self, userId: 3, due: dateAt(milliseconds: 1_768_867_200_100)), cron: "0 9 * * *"
            )
            #expect(epochMilliseconds(later.due) == 1_768_899_600_000)
            #expect(try await h.requireJob(later.id) == later)

            // Untyped cron, and the replace rule applies to cron jobs too.
            let replacing = try await h.scheduler.scheduleCronJob(
                UntypedJobConfig(type: "syncInbox", userId: 1), cron: "@hourly", timeZone: "Europe/Berlin"
            )
            #expect(try await h.requireJob(berlin.id).resultJSON == replacedResult(by: replacing.id))
            #expect(epochMilliseconds(replacing.due) == 1_768_474_800_000)  // 11:00Z
            #expect(try await h.requireJob(replacing.id).cronSchedule == "@hourly")
            #expect(try await h.scheduler.counts() == [.pending: 3, .running: 0, .finished: 1])
        }
    }

    // MARK: Bad input

    enum BadInput: String, CaseIterable, Sendable {
        case unknownTypeName, unencodableData, invalidJSONText, negativeRetryDelay, negativeRemoveDelay
        case nanDue, infiniteDue, dueBefore1970, payloadTooLarge, untypedPayloadTooLarge
        case cronMinuteOutOfRange, cronSecondOutOfRange, cronUnknownTimeZone, cronNeverFires, cronWrongFieldCount
        case negativeUserId, emptyTypeName, typeNameWithColon, oneBadJobInABulk
        // Beyond 2^53 the Lua scripts cannot hold the number exactly and reject it.
        // They are rejected before anything is sent, so a bulk writes nothing either.
        case hugeUserId, hugeRemoveDelay, hugeRetryDelay, hugeUserIdInABulkOfBatchesOfOne
    }

    @Test("bad input throws the right code and writes nothing", arguments: BadInput.allCases)
    func badInputWritesNothing(_ input: BadInput) async throws {
        try await SchedulerHarness.run(configure: {
            $0.knownJobTypes = ["sendEmail", "syncInbox", "measure"]
            $0.maxPayloadBytes = 64
        }) { h in
            let s = h.scheduler
            let ok = SendEmailTestJob.Input(to: "a", subject: "b")
            // A pending job for every (type, userId) pair a case names that can exist, so a
            // rejected call that cancelled (replaced) one before failing would show.
            let seeded = try await s.scheduler(knowing: nil).scheduleJobs(
                ["sendEmail", "syncInbox", "measure", "sendEmial"].flatMap { type in
                    (1...3).map { UntypedJobConfig(type: type, userId: $0, due: h.clock.now.addingTimeInterval(60), dataJSON: #"{"seed":true}"#) }
                }
            )
            let before = try await h.namespaceSnapshot()
            #expect(before.count > seeded.count, "job hashes and indexes")
            h.clock.advance(milliseconds: 1_000)
            let error = await conveyorError {
                switch input {
                case .unknownTypeName:
                    _ = try await s.scheduleJob(UntypedJobConfig(type: "sendEmial", userId: 1, dataJSON: "{}"))
                case .unencodableData:
                    _ = try await s.scheduleJob(WorkerJobConfig(MeasureTestJob.self, userId: 1, data: .init(value: .nan)))
                case .invalidJSONText:
                    _ = try await s.scheduleJob(UntypedJobConfig(type: "sendEmail", userId: 1, dataJSON: #"{"to": "a", "secret": "hunter2""#))
                case .negativeRetryDelay:
                    _ = try await s.scheduleJob(WorkerJobConfig(SendEmailTestJob.self, userId: 1, data: ok, autoRescheduleOnFailure: true, autoRescheduleOnFailureDelay: -1))
                case .negativeRemoveDelay:
                    _ = try await s.scheduleJob(WorkerJobConfig(SendEmailTestJob.self, userId: 1, data: ok, removeDelay: -1))
                case .nanDue:
                    _ = try await s.scheduleJob(WorkerJobConfig(SendEmailTestJob.self, userId: 1, due: Date(timeIntervalSince1970: .nan), data: ok))
                case .infiniteDue:
                    _ = try await s.scheduleJob(WorkerJobConfig(SendEmailTestJob.self, userId: 1, due: Date(timeIntervalSince1970: .infinity), data: ok))
                case .dueBefore1970:
                    _ = try await s.scheduleJob(WorkerJobConfig(SendEmailTestJob.self, userId: 1, due: Date(timeIntervalSince1970: -1), data: ok))
                case .payloadTooLarge:
                    _ = try await s.scheduleJob(WorkerJobConfig(SendEmailTestJob.self, userId: 1, data: .init(to: "a", subject: String(repeating: "x", count: 100))))
                case .untypedPayloadTooLarge:
                    _ = try await s.scheduleJob(UntypedJobConfig(type: "sendEmail", userId: 1, dataJSON: "[\(String(repeating: "1,", count: 40))1]"))
                case .cronMinuteOutOfRange:
                    _ = try await s.scheduleCronJob(WorkerJobConfig(SyncInboxTestJob.self, userId: 1), cron: "61 * * * *")
                case .cronSecondOutOfRange:
                    _ = try await s.scheduleCronJob(WorkerJobConfig(SyncInboxTestJob.self, userId: 1), cron: "60 * * * * *")
                case .cronUnknownTimeZone:
                    _ = try await s.scheduleCronJob(WorkerJobConfig(SyncInboxTestJob.self, userId: 1), cron: "0 9 * * *", timeZone: "Mars/Olympus_Mons")
                case .cronNeverFires:
                    _ = try await s.scheduleCronJob(WorkerJobConfig(SyncInboxTestJob.self, userId: 1), cron: "0 0 30 2 *")
                case .cronWrongFieldCount:
                    _ = try await s.scheduleCronJob(UntypedJobConfig(type: "syncInbox", userId: 1), cron: "* * *")
                case .negativeUserId:
                    _ = try await s.scheduleJob(WorkerJobConfig(SyncInboxTestJob.self, userId: -1))
                case .emptyTypeName:
                    _ = try await s.scheduler(knowing: nil).scheduleJob(UntypedJobConfig(type: "", userId: 1))
                case .typeNameWithColon:
                    _ = try await s.scheduler(knowing: nil).scheduleJob(UntypedJobConfig(type: "send:email", userId: 1))
                case .hugeUserId:
                    _ = try await s.scheduleJob(WorkerJobConfig(SyncInboxTestJob.self, userId: Int.max))
                case .hugeRemoveDelay:
                    _ = try await s.scheduleJob(WorkerJobConfig(SyncInboxTestJob.self, userId: 1, removeDelay: 1 << 60))
                case .hugeRetryDelay:
                    _ = try await s.scheduleJob(WorkerJobConfig(SyncInboxTestJob.self, userId: 1, autoRescheduleOnFailure: true, autoRescheduleOnFailureDelay: 1 << 60))
                case .hugeUserIdInABulkOfBatchesOfOne:
                    _ = try await s.scheduler { $0.bulkBatchSize = 1 }.scheduleJobs([
                        WorkerJobConfig(SyncInboxTestJob.self, userId: 1),
                        WorkerJobConfig(SyncInboxTestJob.self, userId: 2),
                        WorkerJobConfig(SyncInboxTestJob.self, userId: 1 << 62),
                    ])
                case .oneBadJobInABulk:
                    _ = try await s.scheduleJobs([
                        WorkerJobConfig(SendEmailTestJob.self, userId: 1, data: ok),
                        WorkerJobConfig(SendEmailTestJob.self, userId: 2, data: ok),
                        WorkerJobConfig(SendEmailTestJob.self, userId: 3, data: ok, removeDelay: -5),
                    ])
                }
            }
            let (code, mentions): (ConveyorError.Code, String) = switch input {
            case .unknownTypeName: (.unknownJobType, "sendEmial")
            case .unencodableData: (.invalidData, "measure")
            case .invalidJSONText: (.invalidData, "sendEmail")
            case .negativeRetryDelay: (.invalidArgument, "autoRescheduleOnFailureDelay")
            case .negativeRemoveDelay, .oneBadJobInABulk: (.invalidArgument, "removeDelay")
            case .nanDue, .infiniteDue, .dueBefore1970: (.invalidArgument, "due")
            case .payloadTooLarge, .untypedPayloadTooLarge: (.payloadTooLarge, "64")
            case .cronMinuteOutOfRange: (.invalidCron, "minute")
            case .cronSecondOutOfRange: (.invalidCron, "second")
            case .cronUnknownTimeZone: (.invalidCron, "time zone")
            case .cronNeverFires: (.invalidCron, "0 0 30 2 *")
            case .cronWrongFieldCount: (.invalidCron, "fields")
            case .negativeUserId: (.invalidArgument, "userId")
            case .emptyTypeName, .typeNameWithColon: (.invalidArgument, "type")
            case .hugeUserId, .hugeUserIdInABulkOfBatchesOfOne: (.invalidArgument, "userId")
            case .hugeRemoveDelay: (.invalidArgument, "removeDelay")
            case .hugeRetryDelay: (.invalidArgument, "autoRescheduleOnFailureDelay")
            }
            let thrown = try #require(error)
            #expect(thrown.code == code, "\(thrown)")
            #expect(thrown.message.contains(mentions), "\(thrown.message)")
            #expect(!thrown.description.contains("hunter2"), "an error must not print the payload")
            let after = try await h.namespaceSnapshot()
            let changed = Set(before.keys).union(after.keys).filter { before[$0] != after[$0] }.sorted()
            #expect(changed.isEmpty, "nothing may be written; changed keys: \(changed)")
            for job in seeded {
                #expect(try await h.requireJob(job.id) == job, "the pending \(job.type):\(job.userId) is untouched")
            }
            #expect(try await h.scheduler.counts() == [.pending: seeded.count, .running: 0, .finished: 0])
        }
    }

    @Test("a payload of exactly maxPayloadBytes is accepted")
    func payloadAtTheLimit() async throws {
        try await SchedulerHarness.run(configure: { $0.maxPayloadBytes = 64 }) { h in
            let text = "[" + String(repeating: "1,", count: 30) + "12]"  // 64 bytes
            #expect(text.utf8.count == 64)
            let job = try await h.scheduler.scheduleJob(UntypedJobConfig(type: "anything", userId: 1, dataJSON: text))
            #expect(try await h.requireJob(job.id).dataJSON == text)
        }
    }

    // MARK: Bulk

    @Test("scheduleJobs of 1,000 jobs returns them in input order with distinct increasing ids")
    func bulkThousand() async throws {
        try await SchedulerHarness.run { h in
            let configs = (1...1_000).map { userId in
                WorkerJobConfig(SendEmailTestJob.self, userId: userId, data: .init(to: "u\(userId)", subject: "bulk"))
            }
            let created = try await h.scheduler.scheduleJobs(configs)
            #expect(created.count == 1_000)
            #expect(created.map(\.userId) == Array(1...1_000))
            #expect(created.map(\.dataJSON) == configs.map { String(decoding: try! JSONEncoder.conveyor.encode($0.data), as: UTF8.self) })
            let ids = created.map(\.id)
            #expect(Set(ids).count == 1_000)
            #expect(zip(ids, ids.dropFirst()).allSatisfy { $0 < $1 }, "ids increase in input order")
            #expect(try await h.scheduler.counts() == [.pending: 1_000, .running: 0, .finished: 0])
            #expect(try await h.scheduler.jobs(ids: ids) == created)
            #expect(try await h.scheduler.jobs(state: .pending, limit: 2_000).count == 1_000)
            #expect(try await h.scheduler.scheduleJobs([WorkerJobConfig<SendEmailTestJob>]()) == [])
        }
    }

    @Test("scheduleJobs with duplicates for one pair keeps only the last pending", arguments: [1, 2, 100])
    func bulkDuplicates(batchSize: Int) async throws {
        try await SchedulerHarness.run(configure: { $0.bulkBatchSize = batchSize }) { h in
            let configs = [(1, "a"), (2, "b"), (1, "c"), (3, "d"), (1, "e"), (2, "f")].map { userId, subject in
                WorkerJobConfig(SendEmailTestJob.self, userId: userId, data: .init(to: "x", subject: subject))
            }
            let created = try await h.scheduler.scheduleJobs(configs)
            #expect(created.map(\.userId) == [1, 2, 1, 3, 1, 2])
            let stored = try await h.scheduler.jobs(ids: created.map(\.id))
            let subjects = try stored.map { try $0.decodeData(as: SendEmailTestJob.Input.self).subject }
            #expect(subjects == ["a", "b", "c", "d", "e", "f"])
            #expect(stored[0].resultJSON == replacedResult(by: created[2].id))
            #expect(stored[2].resultJSON == replacedResult(by: created[4].id))
            #expect(stored[1].resultJSON == replacedResult(by: created[5].id))
            #expect([stored[3], stored[4], stored[5]].allSatisfy { $0.state == .pending })
            #expect([stored[0], stored[1], stored[2]].allSatisfy { $0.state == .finished && $0.success == false })
            #expect(try await h.scheduler.jobs(state: .pending, type: "sendEmail", userId: 1).map(\.id) == [created[4].id])
            #expect(try await h.scheduler.counts() == [.pending: 3, .running: 0, .finished: 3])
        }
    }

    /// A pipeline retries calls that hit NOSCRIPT after the others, so a pair's
    /// jobs in two calls must not share a pipeline (JobScheduler.rounds).
    @Test("a bulk call's script calls go in rounds: a call repeating a pair of an earlier call in its round starts the next")
    func bulkRounds() async throws {
        try await SchedulerHarness.run { h in
            func specs(_ users: [Int]) throws -> [JobSpec] {
                try users.map { userId throws(ConveyorError) in
                    try h.scheduler.spec(WorkerJobConfig(SendEmailTestJob.self, userId: userId, data: .init(to: "x", subject: "s")), cron: nil)
                }
            }
            func callsOf(_ size: Int, _ count: Int) -> [[Int]] {
                stride(from: 0, to: count, by: size).map { Array($0..<min($0 + size, count)) }
            }
            let repeated = try specs([1, 2, 3, 4, 1, 5, 6, 2, 7])
            #expect(JobScheduler.rounds(repeated, callMembers: callsOf(2, 9)) == [0..<2, 2..<5])
            #expect(JobScheduler.rounds(repeated, callMembers: callsOf(9, 9)) == [0..<1], "repeats inside one call keep their order")
            #expect(JobScheduler.rounds(try specs(Array(0..<250)), callMembers: callsOf(100, 250)) == [0..<3])
            let otherType = try h.scheduler.spec(WorkerJobConfig(SyncInboxTestJob.self, userId: 1), cron: nil)
            #expect(JobScheduler.rounds(try specs([1]) + [otherType], callMembers: [[0], [1]]) == [0..<2], "same user, other type")
            #expect(
                JobScheduler.rounds(try specs([1]) + [otherType, otherType], callMembers: [[0, 1], [2]]) == [0..<1, 1..<2],
                "a user's second type repeated")
            #expect(JobScheduler.rounds([], callMembers: []) == [0..<0])
        }
    }

    @Test("a bulk call after SCRIPT FLUSH reloads the script and still lets a pair's last job win")
    func bulkAfterScriptFlush() async throws {
        try await SchedulerHarness.run(configure: { $0.bulkBatchSize = 2 }) { h in
            _ = try await h.client.send("SCRIPT", "FLUSH")
            let configs = [1, 2, 3, 1, 4, 2].enumerated().map { index, userId in
                WorkerJobConfig(SendEmailTestJob.self, userId: userId, data: .init(to: "x", subject: "s\(index)"))
            }
            let created = try await h.scheduler.scheduleJobs(configs)
            let pending = try await h.scheduler.jobs(state: .pending, type: "sendEmail")
            #expect(Set(pending.map(\.id)) == Set([created[2], created[3], created[4], created[5]].map(\.id)))
            #expect(try await h.requireJob(created[0].id).resultJSON == replacedResult(by: created[3].id))
            #expect(try await h.requireJob(created[1].id).resultJSON == replacedResult(by: created[5].id))
        }
    }

    /// The fault JobScheduler.rounds guards against, for real: another client flushes and
    /// reloads the script cache while bulk calls of large jobs run, so a call can hit
    /// NOSCRIPT while the next one, read later by Redis, finds the script.
    @Test("a pair's last job wins while another client flushes and reloads the script cache")
    func bulkUnderScriptCacheChurn() async throws {
        try await SchedulerHarness.run(configure: { $0.bulkBatchSize = 2 }) { h in
            let churnClient = RedisClient(configuration: try await TestRedis.configuration(poolSize: 1))
            let source = ScriptSignature.scheduleJobs.script.source
            let churn = Task {
                while !Task.isCancelled {
                    _ = try? await churnClient.send("SCRIPT", "FLUSH")
                    _ = try? await churnClient.send("SCRIPT", "LOAD", source)
                }
            }
            defer { churn.cancel() }  // also when a call throws: later tests must not run under churn
            let large = String(repeating: "x", count: 40_000)
            for round in 0..<30 {
                let configs = [1, 2, 1, 3].enumerated().map { index, userId in
                    WorkerJobConfig(SendEmailTestJob.self, userId: userId, data: .init(to: "x", subject: "\(round).\(index) \(large)"))
                }
                let created = try await h.scheduler.scheduleJobs(configs)
                let pending = try await h.scheduler.jobs(state: .pending, type: "sendEmail", userId: 1)
                #expect(pending.map(\.id) == [created[2].id], "round \(round)")
            }
            churn.cancel()
            _ = await churn.result
            await churnClient.shutdown()
        }
    }

    @Test("with 4 partitions, id % 4 is the pair's partition and job(id:) finds every job")
    func bulkPartitioned() async throws {
        try await SchedulerHarness.run(partitionCount: 4, configure: { $0.bulkBatchSize = 7 }) { h in
            let emails = (0..<100).map { WorkerJobConfig(SendEmailTestJob.self, userId: $0, data: .init(to: "u\($0)", subject: "first")) }
            let syncs = (0..<100).map { WorkerJobConfig(SyncInboxTestJob.self, userId: $0) }
            // Duplicates of ten pairs: they replace the first ones.
            let again = (0..<10).map { WorkerJobConfig(SendEmailTestJob.self, userId: $0, data: .init(to: "u\($0)", subject: "again")) }
            let created = try await h.scheduler.scheduleJobs(emails) + (try await h.scheduler.scheduleJobs(syncs))
                + (try await h.scheduler.scheduleJobs(again))
            #expect(created.count == 210)
            #expect(created.map(\.userId) == Array(0..<100) + Array(0..<100) + Array(0..<10), "input order")
            #expect(Set(created.map(\.id)).count == created.count)

            var partitionsUsed = Set<Int>()
            for job in created {
                let partition = h.keys.partition(type: job.type, userId: job.userId)
                #expect(job.id % 4 == partition.index, "job \(job.id) (\(job.type):\(job.userId))")
                partitionsUsed.insert(partition.index)
                let found = try await h.requireJob(job.id)
                #expect(found.type == job.type)
                #expect(found.userId == job.userId)
                #expect(try await h.client.send("EXISTS", partition.job(job.id)).int == 1)
            }
            #expect(partitionsUsed == [0, 1, 2, 3])
            let pending = try await h.scheduler.jobs(state: .pending, limit: 1_000)
            let finished = try await h.scheduler.jobs(state: .finished, limit: 1_000)
            #expect(pending.count == 200)
            #expect(finished.count == 10)
            #expect(Set(finished.map(\.id)) == Set(created.prefix(10).map(\.id)))
            for (old, new) in zip(created.prefix(10), created.suffix(10)) {
                #expect(finished.first { $0.id == old.id }?.resultJSON == replacedResult(by: new.id))
            }
            #expect(try await h.scheduler.counts() == [.pending: 200, .running: 0, .finished: 10])
            // Exactly one pending job per pair.
            #expect(Set(pending.map { "\($0.type):\($0.userId)" }).count == pending.count)
        }
    }

    // MARK: Cancelling

    @Test("cancelJob: pending → cancelled, again → alreadyFinished, unknown → notFound, claimed → alreadyRunning", arguments: [1, 4])
    func cancelJob(partitionCount: Int) async throws {
        try await SchedulerHarness.run(partitionCount: partitionCount) { h in
            let running = try await h.scheduler.scheduleJob(WorkerJobConfig(SyncInboxTestJob.self, userId: 9))
            for partition in h.keys.partitions { try await h.claim(partition: partition.index) }
            let pending = try await h.scheduler.scheduleJob(WorkerJobConfig(
                SendEmailTestJob.self, userId: 9, due: h.clock.now.addingTimeInterval(3_600),
                data: .init(to: "a", subject: "b"), removeDelay: 60_000
            ))
            h.clock.advance(milliseconds: 2_500)

            #expect(try await h.scheduler.cancelJob(id: pending.id, reason: "no longer needed") == .cancelled)
            let cancelled = try await h.requireJob(pending.id)
            #expect(cancelled.state == .finished)
            #expect(cancelled.success == false)
            #expect(cancelled.finished == h.clock.now)
            #expect(cancelled.removeAt == h.clock.now.addingTimeInterval(60))
            #expect(cancelled.result == .object(["cancelled": .bool(true), "reason": .string("no longer needed")]))
            #expect(try await h.scheduler.jobs(state: .pending, type: "sendEmail", userId: 9) == [])

            h.clock.advance(milliseconds: 1_000)
            #expect(try await h.scheduler.cancelJob(id: pending.id) == .alreadyFinished)
            #expect(try await h.requireJob(pending.id) == cancelled, "a second cancel writes nothing")

            #expect(try await h.scheduler.cancelJob(id: 9_999_999) == .notFound)
            #expect(try await h.scheduler.cancelJob(id: 0) == .notFound)
            #expect(try await h.scheduler.cancelJob(id: -4) == .notFound)

            let runningBefore = try await h.requireJob(running.id)
            #expect(runningBefore.state == .running)
            #expect(try await h.scheduler.cancelJob(id: running.id) == .alreadyRunning)
            #expect(try await h.requireJob(running.id) == runningBefore)

            #expect(try await h.scheduler.counts() == [.pending: 0, .running: 1, .finished: 1])
            #expect(try await h.namespaceKeys().allSatisfy { !$0.hasSuffix(":pending") }, "the pair index is empty")

            // A new job for the pair is not affected by the cancelled one.
            let next = try await h.scheduler.scheduleJob(WorkerJobConfig(SendEmailTestJob.self, userId: 9, data: .init(to: "a", subject: "c")))
            #expect(try await h.requireJob(pending.id) == cancelled)
            #expect(try await h.requireJob(next.id).state == .pending)
        }
    }

    @Test("cancelJob stores the reason as JSON: default, empty and with characters to escape", arguments: [
        (nil, #"{"cancelled":true,"reason":"cancelled by request"}"#),
        ("", #"{"cancelled":true}"#),
        (#"say "hi" \ ünï / 🎉"#, nil),
    ] as [(String?, String?)])
    func cancelReason(reason: String?, expectedJSON: String?) async throws {
        try await SchedulerHarness.run { h in
            let job = try await h.scheduler.scheduleJob(WorkerJobConfig(SyncInboxTestJob.self, userId: 1))
            if let reason {
                #expect(try await h.scheduler.cancelJob(id: job.id, reason: reason) == .cancelled)
            } else {
                #expect(try await h.scheduler.cancelJob(id: job.id) == .cancelled)
            }
            let cancelled = try await h.requireJob(job.id)
            if let expectedJSON {
                #expect(cancelled.resultJSON == expectedJSON)
            }
            var expected: [String: JSONValue] = ["cancelled": .bool(true)]
            if let reason, !reason.isEmpty { expected["reason"] = .string(reason) }
            if reason == nil { expected["reason"] = .string("cancelled by request") }
            #expect(cancelled.result == .object(expected))
        }
    }

    // MARK: Listing and counting

    @Test("jobs(state:type:userId:) filters across states and counts() matches", arguments: [1, 4])
    func listingAndCounts(partitionCount: Int) async throws {
        try await SchedulerHarness.run(partitionCount: partitionCount) { h in
            let s = h.scheduler
            // A, B: due now, claimed (running); A then completes (finished).
            let a = try await s.scheduleJob(WorkerJobConfig(SendEmailTestJob.self, userId: 1, data: .init(to: "a", subject: "A")))
            let b = try await s.scheduleJob(WorkerJobConfig(SyncInboxTestJob.self, userId: 1))
            for partition in h.keys.partitions { try await h.claim(partition: partition.index) }
            h.clock.advance(milliseconds: 1_000)
            #expect(try await h.complete(a.id, success: true).outcome == 1)
            // C, D, E pending with different due times.
            let c = try await s.scheduleJob(WorkerJobConfig(SendEmailTestJob.self, userId: 1, due: h.clock.now.addingTimeInterval(3_600), data: .init(to: "c", subject: "C")))
            let d = try await s.scheduleJob(WorkerJobConfig(SendEmailTestJob.self, userId: 2, due: h.clock.now.addingTimeInterval(7_200), data: .init(to: "d", subject: "D")))
            let e = try await s.scheduleJob(WorkerJobConfig(SyncInboxTestJob.self, userId: 2, due: h.clock.now.addingTimeInterval(1_800)))
            // F cancelled (finished after A).
            h.clock.advance(milliseconds: 1_000)
            let f = try await s.scheduleJob(WorkerJobConfig(MeasureTestJob.self, userId: 3, data: .init(value: 2.5)))
            #expect(try await s.cancelJob(id: f.id) == .cancelled)

            func ids(_ state: WorkerJob.State?, _ type: String? = nil, _ userId: Int? = nil, limit: Int = 100) async throws -> [Int] {
                let jobs = try await s.jobs(state: state, type: type, userId: userId, limit: limit)
                if let state { #expect(jobs.allSatisfy { $0.state == state }, "\(state)") }
                #expect(jobs.allSatisfy { job in (type == nil || job.type == type) && (userId == nil || job.userId == userId) })
                return jobs.map(\.id)
            }
            // Sets across partitions; with one partition the documented order too.
            #expect(Set(try await ids(.pending)) == [c.id, d.id, e.id])
            #expect(Set(try await ids(.running)) == [b.id])
            #expect(Set(try await ids(.finished)) == [a.id, f.id])
            #expect(Set(try await ids(.pending, "sendEmail")) == [c.id, d.id])
            #expect(try await ids(.pending, "sendEmail", 2) == [d.id])
            #expect(try await ids(.pending, "sendEmail", 1) == [c.id])
            #expect(Set(try await ids(.pending, nil, 2)) == [d.id, e.id])
            #expect(try await ids(.pending, "syncInbox", 1) == [], "B is running, not pending")
            #expect(try await ids(.running, "syncInbox", 1) == [b.id])
            #expect(try await ids(.running, "sendEmail") == [])
            #expect(try await ids(.finished, "sendEmail", 1) == [a.id])
            #expect(try await ids(.finished, "measure") == [f.id])
            #expect(try await ids(.pending, "measure", 3) == [])
            #expect(Set(try await ids(nil, nil, 1)) == [a.id, b.id, c.id])
            #expect(Set(try await ids(nil, "sendEmail", 1)) == [a.id, c.id])
            #expect(Set(try await ids(nil)) == [a.id, b.id, c.id, d.id, e.id, f.id])
            #expect(try await ids(nil, "nope") == [])
            #expect(try await ids(nil, nil, 99) == [])
            #expect(try await ids(.pending, limit: 2).count == 2)
            if partitionCount == 1 {
                #expect(try await ids(.pending) == [e.id, c.id, d.id], "due order")
                #expect(try await ids(.pending, limit: 2) == [e.id, c.id])
                #expect(try await ids(.finished) == [a.id, f.id], "removal order")
                #expect(try await ids(.pending, nil, 2) == [e.id, d.id])
            }

            let counts = try await s.counts()
            #expect(counts == [.pending: 3, .running: 1, .finished: 2])
            for state in WorkerJob.State.allCases {
                #expect(counts[state] == (try await s.jobs(state: state).count))
            }
        }
    }
}

extension JobScheduler {
    /// The same scheduler with another `knownJobTypes`.
    func scheduler(knowing types: Set<String>?) -> JobScheduler {
        scheduler { $0.knownJobTypes = types }
    }

    /// The same scheduler with a changed configuration.
    func scheduler(_ change: (inout Configuration) -> Void) -> JobScheduler {
        var configuration = configuration
        change(&configuration)
        return JobScheduler(client: client, configuration: configuration)
    }
}
