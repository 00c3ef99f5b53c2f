import Foundation
import Testing

@testable import Conveyor

@Suite("WorkerJob JSON")
struct WorkerJobJSONTests {
    static func sample(_ index: Int) -> WorkerJob {
        var generator = SystemRandomNumberGenerator()
        let base = Int.random(in: 0...253_402_300_799_999, using: &generator)
        let tricky = ["plain", "quote \" and \\ backslash", "tab\tnew\nline\u{1}", "ünïcødé ✓ 🚀", "/slash/"]
        return WorkerJob(
            id: index + 1, type: tricky[index % tricky.count], userId: index, dataJSON: index % 3 == 0 ? nil : #"{"a":[1,2.5,"x\"y"],"b":null}"#,
            due: Date(milliseconds: base), started: index % 2 == 0 ? nil : Date(milliseconds: base + 7),
            finished: index % 4 == 0 ? nil : Date(milliseconds: base + 1_001), success: index % 4 == 0 ? nil : index % 8 == 1,
            resultJSON: index % 5 == 0 ? nil : #""done""#, cronSchedule: index % 2 == 0 ? "*/2 * * * * *" : nil,
            cronTimeZone: index % 6 == 0 ? "Europe/Berlin" : nil, autoRescheduleOnFailure: index % 2 == 1,
            autoRescheduleOnFailureDelay: index * 10, removeDelay: index * 100, rescheduledFromJob: index % 3 == 0 ? nil : index,
            attempt: 1 + index % 4, createdAt: Date(milliseconds: base - 5), workerId: index % 2 == 0 ? nil : tricky[(index + 1) % tricky.count]
        )
    }

    @Test("the hand-written encoder says exactly what JSONEncoder says")
    func matchesJSONEncoder() throws {
        let encoder = JSONEncoder()
        encoder.outputFormatting = [.sortedKeys]
        for index in 0..<500 {
            let job = Self.sample(index)
            var fast: [UInt8] = []
            job.appendJSON(to: &fast, extra: [("archivedAt", "\"2026-11-29T00:00:00.000Z\"")])
            let fastValue = try JSONDecoder().decode(JSONValue.self, from: Data(fast))
            var reference = try JSONDecoder().decode(JSONValue.self, from: encoder.encode(job))
            if case .object(var members) = reference {
                members["archivedAt"] = .string("2026-11-29T00:00:00.000Z")
                reference = .object(members)
            }
            #expect(fastValue == reference, "job \(index): \(String(decoding: fast, as: UTF8.self))")
            // And it reads back as the same record.
            #expect(try JSONDecoder().decode(WorkerJob.self, from: Data(fast)) == job)
        }
    }

    @Test("ISO 8601 dates match Foundation's calendar for every day from 1970 to 9999")
    func isoDatesMatchCalendar() {
        var calendar = Calendar(identifier: .gregorian)
        calendar.timeZone = TimeZone(identifier: "UTC")!
        for day in stride(from: 0, to: 2_932_897, by: 97) {
            let ms = day * 86_400_000 + (day * 7_919) % 86_400_000
            let date = Date(milliseconds: ms)
            let parts = calendar.dateComponents([.year, .month, .day, .hour, .minute, .second], from: date)
            let expected = String(
                format: "%04d-%02d-%02dT%02d:%02d:%02d.%03dZ", parts.year!, parts.month!, parts.day!, parts.hour!, parts.minute!,
                parts.second!, ms % 1000
            )
            #expect(date.iso8601Milliseconds == expected)
        }
    }
}
