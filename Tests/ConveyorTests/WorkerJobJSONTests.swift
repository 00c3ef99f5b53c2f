import Foundation
import Testing

@testable import Conveyor

@Suite("WorkerJob JSON")
struct WorkerJobJSONTests {
    /// A record with a random time (from `generator`) and fields chosen by `index`.
    static func sample(_ index: Int, using generator: inout SeededRandom) -> WorkerJob {
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
        let seed = try TestSeed.value(default: 0x1717_5EED)
        print("WorkerJob JSON: random times from seed \(seed) (\(TestSeed.environmentVariable) replays another)")
        var generator = SeededRandom(seed: seed)
        for index in 0..<500 {
            let job = Self.sample(index, using: &generator)
            var fast: [UInt8] = []
            job.appendJSON(to: &fast, extra: [("archivedAt", "\"2026-11-29T00:00:00.000Z\"")])
            let fastValue = try JSONDecoder().decode(JSONValue.self, from: Data(fast))
            var reference = try JSONDecoder().decode(JSONValue.self, from: encoder.encode(job))
            if case .object(var members) = reference {
                members["archivedAt"] = .string("2026-11-29T00:00:00.000Z")
                reference = .object(members)
            }
            #expect(fastValue == reference, "seed \(seed), job \(index): \(String(decoding: fast, as: UTF8.self))")
            // And it reads back as the same record.
            #expect(try JSONDecoder().decode(WorkerJob.self, from: Data(fast)) == job, "seed \(seed), job \(index)")
        }
    }

    // Every day to 9999 would be 2.9 million dates, ~1.7 s of formatting alone in a debug build:
    // every day of the first 230 years (2000 a leap year, 2100 not), then every 97th day.
    @Test("ISO 8601 dates match Foundation's calendar for every day from 1970 to 2199, and every 97th day to 9999")
    func isoDatesMatchCalendar() throws {
        var calendar = Calendar(identifier: .gregorian)
        calendar.timeZone = try #require(TimeZone(identifier: "UTC"))
        // A civil date stepped one day at a time gives each checked day's expected text.
        // Foundation pins the stepping: on the first of every month to 9999 (96,360 months)
        // its calendar must name the same date and time, so a wrong month length or leap
        // year shows there.
        var (year, month, dayOfMonth) = (1970, 1, 1)
        func monthLength(_ year: Int, _ month: Int) -> Int {
            switch month {
            case 2: (year % 4 == 0 && year % 100 != 0) || year % 400 == 0 ? 29 : 28
            case 4, 6, 9, 11: 30
            default: 31
            }
        }
        func appendDigits(_ value: Int, _ count: Int, to bytes: inout [UInt8]) {
            var divisor = 1
            for _ in 1..<count { divisor *= 10 }
            while divisor > 0 {
                bytes.append(UInt8(48 + value / divisor % 10))
                divisor /= 10
            }
        }
        var expected: [UInt8] = []
        expected.reserveCapacity(24)
        var actual: [UInt8] = []
        actual.reserveCapacity(24)
        var wrong: [String] = []
        var wrongCount = 0
        var calendarChecks = 0
        var checkedDays = 0
        var days = 0
        while year <= 9999 {
            // A different time of day every day, so every hour, minute, second and millisecond value occurs.
            let msOfDay = (days &* 7_919) % 86_400_000
            let ms = days * 86_400_000 + msOfDay
            if year < 2200 || days % 97 == 0 {
                checkedDays += 1
                actual.removeAll(keepingCapacity: true)
                Date.appendISO8601(milliseconds: ms, to: &actual)
                expected.removeAll(keepingCapacity: true)
                appendDigits(year, 4, to: &expected)
                expected.append(UInt8(ascii: "-"))
                appendDigits(month, 2, to: &expected)
                expected.append(UInt8(ascii: "-"))
                appendDigits(dayOfMonth, 2, to: &expected)
                expected.append(UInt8(ascii: "T"))
                appendDigits(msOfDay / 3_600_000, 2, to: &expected)
                expected.append(UInt8(ascii: ":"))
                appendDigits(msOfDay / 60_000 % 60, 2, to: &expected)
                expected.append(UInt8(ascii: ":"))
                appendDigits(msOfDay / 1000 % 60, 2, to: &expected)
                expected.append(UInt8(ascii: "."))
                appendDigits(msOfDay % 1000, 3, to: &expected)
                expected.append(UInt8(ascii: "Z"))
                if actual != expected {
                    wrongCount += 1
                    if wrong.count < 5 {
                        wrong.append("day \(days): \(String(decoding: actual, as: UTF8.self)), expected \(String(decoding: expected, as: UTF8.self))")
                    }
                }
            }
            if dayOfMonth == 1 {
                let parts = calendar.dateComponents([.year, .month, .day, .hour, .minute, .second, .nanosecond], from: Date(milliseconds: ms))
                let foundation = [
                    parts.year, parts.month, parts.day, parts.hour, parts.minute, parts.second, parts.nanosecond.map { ($0 + 500_000) / 1_000_000 },
                ]
                let stepped = [year, month, dayOfMonth, msOfDay / 3_600_000, msOfDay / 60_000 % 60, msOfDay / 1000 % 60, msOfDay % 1000]
                try #require(foundation == stepped, "day \(days): Foundation says \(foundation.map { $0 ?? -1 }), the stepped date \(stepped)")
                calendarChecks += 1
            }
            days += 1
            dayOfMonth += 1
            if dayOfMonth > monthLength(year, month) {
                dayOfMonth = 1
                month += 1
                if month > 12 { (year, month) = (year + 1, 1) }
            }
        }
        #expect(days == 2_932_897, "days from 1970-01-01 to 9999-12-31")
        #expect(calendarChecks == 8_030 * 12)
        // 1970-01-01 to 2199-12-31 is 84,006 days; then the multiples of 97 from 84,006 on.
        #expect(checkedDays == 84_006 + (2_932_897 - 1) / 97 - (84_006 - 1) / 97)
        #expect(wrongCount == 0, "\(wrongCount) days print wrongly, e.g. \(wrong)")
    }
}
