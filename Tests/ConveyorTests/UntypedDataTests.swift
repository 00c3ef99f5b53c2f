import Foundation
import Testing

@testable import Conveyor

/// The registry of the scheduler tests' job types, for `inputCheck`.
private func testRegistry() -> JobRegistry<SchedulerTestApp> {
    var registry = JobRegistry<SchedulerTestApp>()
    registry.register(SendEmailTestJob.self)
    registry.register(SyncInboxTestJob.self)
    registry.register(NoteTestJob.self)
    return registry
}

@Suite("Untyped data: checked against the job's Input, stored as written")
struct UntypedDataTests {
    @Test(
        "data is stored, read back and printed byte for byte",
        arguments: [
            #"{"big":12345678901234567890,"neg":-0.0}"#,
            #" { "to" : "a@example.com", "x": 1.10, "y": 1E2 } "#,
            "{\n  \"multi\": [1,\n 2],\n  \"s\": \"a\\nb\"\n}",
            "0.1000000000000000055511151231257827",
        ])
    func storedAsWritten(text: String) async throws {
        try await SchedulerHarness.run { h in
            let created = try await h.scheduler.scheduleJob(UntypedJobConfig(type: "anything", userId: 1, dataJSON: text))
            #expect(created.dataJSON == text)
            let read = try await h.requireJob(created.id)
            #expect(read.dataJSON == text)
            // The CLI's --json: the data as written (line breaks are JSON whitespace there).
            let json = read.jsonString()
            #expect(json.contains("\"data\":\(text.replacingOccurrences(of: "\n", with: " ")),\"due\""), "\(json)")
            #expect(!json.contains("\n"), "one line")
            #expect(try JSONValue(jsonText: json)["data"] == JSONValue(jsonText: text))
        }
    }

    @Test("a scheduler made with a registry checks that the data decodes as the type's Input")
    func registryScheduler() async throws {
        try await TestRedis.withClient { client, namespace in
            let scheduler = JobScheduler(
                client: client, registry: testRegistry(), configuration: .init(keys: try ConveyorKeys(namespace: namespace))
            )
            let error = await conveyorError {
                _ = try await scheduler.scheduleJob(UntypedJobConfig(type: "sendEmail", userId: 1, dataJSON: #"{"to":"a"}"#))
            }
            #expect(error?.code == .invalidData)
            #expect(error?.message == #"data for sendEmail does not decode as its Input: missing key "subject""#)
            #expect(try await TestRedis.keys(client, namespace: namespace).isEmpty, "nothing written")
            let good = try await scheduler.scheduleJob(
                UntypedJobConfig(type: "sendEmail", userId: 1, dataJSON: #"{"to":"a","subject":"b","tags":[],"attempts":0,"extra":12345678901234567890}"#)
            )
            #expect(try await scheduler.job(id: good.id)?.dataJSON == #"{"to":"a","subject":"b","tags":[],"attempts":0,"extra":12345678901234567890}"#)
        }
    }

    enum BadData: String, CaseIterable, Sendable {
        case missing, missingKey, wrongType, wrongTypeNested, notAString, unknownType, notJSON
    }

    @Test("data the job could not decode is rejected with the decoding error, and nothing is written", arguments: BadData.allCases)
    func rejected(_ bad: BadData) async throws {
        let registry = testRegistry()
        try await SchedulerHarness.run(configure: {
            $0.knownJobTypes = Set(registry.typeNames)
            $0.inputCheck = { type, data throws(ConveyorError) in try registry.checkInput(typeName: type, dataJSON: data) }
        }) { h in
            // A pending job of the same type and user: a write would replace it.
            let seeded = try await h.scheduler.scheduleJob(
                WorkerJobConfig(SendEmailTestJob.self, userId: 1, due: h.clock.now.addingTimeInterval(60), data: .init(to: "a", subject: "b"))
            )
            let before = try await h.namespaceSnapshot()
            let (type, data): (String, String?) =
                switch bad {
                case .missing: ("sendEmail", nil)
                case .missingKey: ("sendEmail", #"{"to":"a"}"#)
                case .wrongType: ("sendEmail", #"{"to":1,"subject":"b"}"#)
                case .wrongTypeNested: ("sendEmail", #"{"to":"a","subject":"b","tags":["x",2]}"#)
                case .notAString: ("note", #"{"text":"hi"}"#)
                case .unknownType: ("sendMail", #"{"to":"a","subject":"b"}"#)
                case .notJSON: ("sendEmail", #"{"to":"a","subject":"secret-hunter2""#)
                }
            let error = await conveyorError {
                _ = try await h.scheduler.scheduleJob(UntypedJobConfig(type: type, userId: 1, dataJSON: data))
            }
            let expected: (ConveyorError.Code, String) =
                switch bad {
                case .missing: (.invalidData, "data for sendEmail does not decode as its Input: expected ")
                case .missingKey: (.invalidData, #"missing key "subject""#)
                case .wrongType: (.invalidData, "expected String at to")
                case .wrongTypeNested: (.invalidData, "expected String at tags[1]")
                case .notAString: (.invalidData, "data for note does not decode as its Input: expected String")
                case .unknownType: (.unknownJobType, "sendMail")
                case .notJSON: (.invalidData, "not valid JSON")
                }
            let thrown = try #require(error)
            #expect(thrown.code == expected.0, "\(thrown)")
            #expect(thrown.message.contains(expected.1), "\(thrown.message)")
            #expect(!thrown.description.contains("hunter2"))
            #expect(try await h.namespaceSnapshot() == before, "nothing written")
            #expect(try await h.requireJob(seeded.id) == seeded, "the pending job was not replaced")
        }
    }

    @Test("jobs without input accept no data")
    func nothingInput() throws {
        try testRegistry().checkInput(typeName: "syncInbox", dataJSON: nil)
        try testRegistry().checkInput(typeName: "note", dataJSON: #""hi""#)
    }
}

@Suite("WorkerJob.jsonString")
struct WorkerJobJSONStringTests {
    static let job = WorkerJob(
        id: 7, type: "sendEmail", userId: 3, dataJSON: #"{"to":"a/b","n":[1,2.5,{}],"e":[]}"#,
        due: Date(timeIntervalSince1970: 1_795_914_123.456), cronSchedule: "*/2 * * * * *", cronTimeZone: "Europe/Berlin",
        autoRescheduleOnFailure: true, autoRescheduleOnFailureDelay: 500, removeDelay: 1_000, rescheduledFromJob: 6,
        attempt: 2, createdAt: Date(timeIntervalSince1970: 1_795_914_120)
    )

    @Test("compact: the Codable encoding's fields and values, with the data as stored")
    func compact() throws {
        var job = Self.job
        job.started = Date(timeIntervalSince1970: 1_795_914_124)
        job.finished = Date(timeIntervalSince1970: 1_795_914_125.5)
        job.success = true
        job.resultJSON = #"{"ok":true}"#
        job.workerId = "w-1"
        let encoder = JSONEncoder()
        encoder.outputFormatting = [.sortedKeys, .withoutEscapingSlashes]
        let codable = String(decoding: try encoder.encode(job), as: UTF8.self)
        #expect(try JSONValue(jsonText: job.jsonString()) == JSONValue(jsonText: codable))
        #expect(job.jsonString().contains(#""data":{"to":"a/b","n":[1,2.5,{}],"e":[]},"#))
        #expect(job.jsonString().contains(#""due":"2026-11-29T01:02:03.456Z""#))
    }

    @Test("pretty: indented, every token unchanged")
    func pretty() throws {
        var job = Self.job
        job.dataJSON = #"{"big":12345678901234567890,"s":"x, {y}: \"z\"","e":{}}"#
        let pretty = job.jsonString(pretty: true)
        #expect(pretty.hasPrefix("{\n  \"attempt\": 2,\n  \"autoRescheduleOnFailure\": true,\n"))
        #expect(pretty.contains("  \"data\": {\n    \"big\": 12345678901234567890,\n    \"s\": \"x, {y}: \\\"z\\\"\",\n    \"e\": {}\n  },\n"))
        #expect(pretty.hasSuffix("\n}"))
        #expect(try JSONValue(jsonText: pretty) == JSONValue(jsonText: job.jsonString()))
    }
}
