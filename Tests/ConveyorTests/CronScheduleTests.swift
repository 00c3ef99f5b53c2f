import Conveyor
import Foundation
import Testing

// MARK: - Fixtures

/// One row of the `next(after:)` table: times are ISO 8601 with explicit offsets so a
/// DST row states which side of the transition it means.
struct CronNextCase: Sendable, CustomTestStringConvertible {
    let expression: String
    let zone: String
    let from: String
    let expected: String?

    init(_ expression: String, _ zone: String = "UTC", from: String, _ expected: String?) {
        self.expression = expression
        self.zone = zone
        self.from = from
        self.expected = expected
    }

    var testDescription: String { "\"\(expression)\" [\(zone)] after \(from)" }
}

struct CronInvalidCase: Sendable, CustomTestStringConvertible {
    let expression: String
    let field: String
    let reasonContains: String

    init(_ expression: String, _ field: String, _ reasonContains: String) {
        self.expression = expression
        self.field = field
        self.reasonContains = reasonContains
    }

    var testDescription: String { "\"\(expression)\"" }
}

private func iso(_ text: String) throws -> Date {
    try Date(text, strategy: .iso8601)
}

/// Thursday, used as the start of most UTC rows.
private let thursday = "2026-01-15T10:20:30Z"
private let newYork = "America/New_York"
private let berlin = "Europe/Berlin"
private let lordHowe = "Australia/Lord_Howe"
private let apia = "Pacific/Apia"

private let nextCases: [CronNextCase] = [
    // Plain fields, steps, lists, ranges.
    .init("* * * * *", from: thursday, "2026-01-15T10:21:00Z"),
    .init("* * * * *", from: "2026-01-15T10:20:00Z", "2026-01-15T10:21:00Z"),
    .init("* * * * *", from: "2026-01-15T10:20:59.900Z", "2026-01-15T10:21:00Z"),
    .init("*/15 * * * *", from: thursday, "2026-01-15T10:30:00Z"),
    .init("5 * * * *", from: thursday, "2026-01-15T11:05:00Z"),
    .init("0 12 * * *", from: thursday, "2026-01-15T12:00:00Z"),
    .init("0 9 * * *", from: thursday, "2026-01-16T09:00:00Z"),
    .init("30 10 * * *", from: thursday, "2026-01-15T10:30:00Z"),
    .init("1-30/2 * * * *", from: thursday, "2026-01-15T10:21:00Z"),
    .init("5/10 * * * *", from: thursday, "2026-01-15T10:25:00Z"),
    .init("0,20,40 * * * *", from: thursday, "2026-01-15T10:40:00Z"),
    .init("10-20 * * * *", from: thursday, "2026-01-15T11:10:00Z"),
    .init("0 8-10,14 * * *", from: thursday, "2026-01-15T14:00:00Z"),
    .init("0 */6 * * *", from: thursday, "2026-01-15T12:00:00Z"),
    .init("  0   12 * * *  ", from: thursday, "2026-01-15T12:00:00Z"),
    // Day-of-week: names, ranges, 0 and 7 as Sunday.
    .init("0 0 * * MON", from: thursday, "2026-01-19T00:00:00Z"),
    .init("0 0 * * mon-fri", from: thursday, "2026-01-16T00:00:00Z"),
    .init("0 0 * * SAT,SUN", from: thursday, "2026-01-17T00:00:00Z"),
    .init("0 0 * * Tue", from: thursday, "2026-01-20T00:00:00Z"),
    .init("0 0 * * 0", from: thursday, "2026-01-18T00:00:00Z"),
    .init("0 0 * * 7", from: thursday, "2026-01-18T00:00:00Z"),
    .init("0 0 * * 5-7", from: "2026-01-17T01:00:00Z", "2026-01-18T00:00:00Z"),
    .init("0 0 * * FRI-SUN", from: "2026-01-17T01:00:00Z", "2026-01-18T00:00:00Z"),
    // Months and month ends.
    .init("0 0 1 * *", from: thursday, "2026-02-01T00:00:00Z"),
    .init("0 0 1 JAN *", from: thursday, "2027-01-01T00:00:00Z"),
    .init("0 0 1 jan-mar *", from: thursday, "2026-02-01T00:00:00Z"),
    .init("0 0 1 */3 *", from: thursday, "2026-04-01T00:00:00Z"),
    .init("0 0 1 Dec *", from: thursday, "2026-12-01T00:00:00Z"),
    .init("0 0 * FEB sun", from: thursday, "2026-02-01T00:00:00Z"),
    .init("0 0 31 * *", from: "2026-01-31T01:00:00Z", "2026-03-31T00:00:00Z"),
    .init("0 0 31 * *", from: "2026-03-31T00:00:00Z", "2026-05-31T00:00:00Z"),
    .init("0 0 30 * *", from: "2026-01-30T12:00:00Z", "2026-03-30T00:00:00Z"),
    // Leap years, including the skipped leap day of 2100.
    .init("0 0 29 2 *", from: "2025-03-01T00:00:00Z", "2028-02-29T00:00:00Z"),
    .init("0 0 29 2 *", from: "2024-01-01T00:00:00Z", "2024-02-29T00:00:00Z"),
    .init("0 0 29 2 *", from: "2096-03-01T00:00:00Z", "2104-02-29T00:00:00Z"),
    // Impossible dates.
    .init("0 0 30 2 *", from: thursday, nil),
    .init("0 0 31 4,6,9,11 *", from: thursday, nil),
    // Vixie rule: both day fields restricted means either may match.
    .init("0 0 13 * FRI", from: thursday, "2026-01-16T00:00:00Z"),
    .init("0 0 13 * MON", from: "2026-02-10T00:00:00Z", "2026-02-13T00:00:00Z"),
    .init("0 0 13 * MON", from: "2026-02-13T00:00:00Z", "2026-02-16T00:00:00Z"),
    .init("0 0 1,15 * 3", from: thursday, "2026-01-21T00:00:00Z"),
    // ...but a day field starting with `*` means both must match (odd days that are Tuesdays).
    .init("0 0 */2 * 2", from: thursday, "2026-01-27T00:00:00Z"),
    .init("0 0 15 * *", from: thursday, "2026-02-15T00:00:00Z"),
    .init("0 0 ? * MON", from: thursday, "2026-01-19T00:00:00Z"),
    .init("0 0 13 * ?", from: thursday, "2026-02-13T00:00:00Z"),
    // Seconds field.
    .init("*/3 * * * * *", from: thursday, "2026-01-15T10:20:33Z"),
    .init("0 * * * * *", from: thursday, "2026-01-15T10:21:00Z"),
    .init("30 0 12 * * *", from: thursday, "2026-01-15T12:00:30Z"),
    .init("15,45 * * * * *", from: thursday, "2026-01-15T10:20:45Z"),
    .init("* * * * * *", from: "2026-01-15T10:20:30.500Z", "2026-01-15T10:20:31Z"),
    .init("10-20/5 30 10 * * *", from: thursday, "2026-01-15T10:30:10Z"),
    .init("0 0 0 1 1 *", from: thursday, "2027-01-01T00:00:00Z"),
    // Macros.
    .init("@yearly", from: thursday, "2027-01-01T00:00:00Z"),
    .init("@annually", from: thursday, "2027-01-01T00:00:00Z"),
    .init("@monthly", from: thursday, "2026-02-01T00:00:00Z"),
    .init("@weekly", from: thursday, "2026-01-18T00:00:00Z"),
    .init("@daily", from: thursday, "2026-01-16T00:00:00Z"),
    .init("@midnight", from: thursday, "2026-01-16T00:00:00Z"),
    .init("@hourly", from: thursday, "2026-01-15T11:00:00Z"),
    .init("@Daily", from: thursday, "2026-01-16T00:00:00Z"),
    // Year rollover.
    .init("59 23 31 12 *", from: "2026-12-31T23:59:00Z", "2027-12-31T23:59:00Z"),
    .init("0 0 * * *", from: "2026-12-31T23:59:59Z", "2027-01-01T00:00:00Z"),
    .init("*/10 * * * * *", from: "2026-12-31T23:59:55Z", "2027-01-01T00:00:00Z"),
    .init("0 0 1 1 *", from: "2026-12-31T23:59:59.999Z", "2027-01-01T00:00:00Z"),
    // Fixed-offset zone: matching uses local wall time.
    .init("0 9 * * *", "Asia/Kolkata", from: thursday, "2026-01-16T09:00:00+05:30"),
    // New York spring forward, 2026-03-08 02:00 EST -> 03:00 EDT: 02:xx runs at 03:00.
    .init("30 2 * * *", newYork, from: "2026-03-08T01:00:00-05:00", "2026-03-08T03:00:00-04:00"),
    .init("30 2 * * *", newYork, from: "2026-03-08T03:00:00-04:00", "2026-03-09T02:30:00-04:00"),
    .init("30 2 * * *", newYork, from: "2026-03-08T06:59:59.500Z", "2026-03-08T07:00:00Z"),
    .init("0 30 2 * * *", newYork, from: "2026-03-08T01:00:00-05:00", "2026-03-08T03:00:00-04:00"),
    .init("0 3 * * *", newYork, from: "2026-03-08T01:00:00-05:00", "2026-03-08T03:00:00-04:00"),
    .init("*/15 * * * *", newYork, from: "2026-03-08T01:50:00-05:00", "2026-03-08T03:00:00-04:00"),
    .init("30 * * * *", newYork, from: "2026-03-08T01:45:00-05:00", "2026-03-08T03:00:00-04:00"),
    .init("30 * * * *", newYork, from: "2026-03-08T03:00:00-04:00", "2026-03-08T03:30:00-04:00"),
    .init("* * * * *", newYork, from: "2026-03-08T01:59:30-05:00", "2026-03-08T03:00:00-04:00"),
    .init("0 9 * * *", newYork, from: "2026-03-07T10:00:00-05:00", "2026-03-08T09:00:00-04:00"),
    // New York fall back, 2026-11-01 02:00 EDT -> 01:00 EST: fixed hours run once,
    // `*` hours run in both passes.
    .init("30 1 * * *", newYork, from: "2026-11-01T00:00:00-04:00", "2026-11-01T01:30:00-04:00"),
    .init("30 1 * * *", newYork, from: "2026-11-01T01:30:00-04:00", "2026-11-02T01:30:00-05:00"),
    .init("30 1 * * *", newYork, from: "2026-11-01T01:10:00-05:00", "2026-11-02T01:30:00-05:00"),
    .init("* 1 * * *", newYork, from: "2026-11-01T01:59:00-04:00", "2026-11-02T01:00:00-05:00"),
    .init("0 2 * * *", newYork, from: "2026-11-01T01:59:00-04:00", "2026-11-01T02:00:00-05:00"),
    .init("*/30 * * * *", newYork, from: "2026-11-01T01:30:00-04:00", "2026-11-01T01:00:00-05:00"),
    .init("*/30 * * * *", newYork, from: "2026-11-01T01:00:00-05:00", "2026-11-01T01:30:00-05:00"),
    .init("0 * * * *", newYork, from: "2026-11-01T01:00:00-04:00", "2026-11-01T01:00:00-05:00"),
    .init("* * * * * *", newYork, from: "2026-11-01T01:59:59-04:00", "2026-11-01T01:00:00-05:00"),
    .init("0 9 * * *", newYork, from: "2026-10-31T10:00:00-04:00", "2026-11-01T09:00:00-05:00"),
    // Berlin spring forward, 2026-03-29 02:00 CET -> 03:00 CEST.
    .init("30 2 * * *", berlin, from: "2026-03-29T00:00:00+01:00", "2026-03-29T03:00:00+02:00"),
    .init("30 2 * * *", berlin, from: "2026-03-29T03:00:00+02:00", "2026-03-30T02:30:00+02:00"),
    .init("0 2 * * *", berlin, from: "2026-03-28T12:00:00+01:00", "2026-03-29T03:00:00+02:00"),
    .init("*/20 * * * *", berlin, from: "2026-03-29T01:50:00+01:00", "2026-03-29T03:00:00+02:00"),
    .init("0 2 29 3 *", berlin, from: "2026-01-01T00:00:00+01:00", "2026-03-29T03:00:00+02:00"),
    // Berlin fall back, 2026-10-25 03:00 CEST -> 02:00 CET.
    .init("30 2 * * *", berlin, from: "2026-10-25T00:00:00+02:00", "2026-10-25T02:30:00+02:00"),
    .init("30 2 * * *", berlin, from: "2026-10-25T02:30:00+02:00", "2026-10-26T02:30:00+01:00"),
    .init("*/30 * * * *", berlin, from: "2026-10-25T02:30:00+02:00", "2026-10-25T02:00:00+01:00"),
    .init("0 * * * *", berlin, from: "2026-10-25T02:00:00+02:00", "2026-10-25T02:00:00+01:00"),
    .init("0 * * * *", berlin, from: "2026-10-25T02:00:00+01:00", "2026-10-25T03:00:00+01:00"),
    .init("0 3 * * *", berlin, from: "2026-10-25T02:30:00+02:00", "2026-10-25T03:00:00+01:00"),
    // Lord Howe shifts by 30 minutes: 02:00 -> 02:30 in October, 02:00 -> 01:30 in April.
    .init("15 2 * * *", lordHowe, from: "2026-10-04T01:00:00+10:30", "2026-10-04T02:30:00+11:00"),
    .init("45 1 * * *", lordHowe, from: "2026-04-05T01:50:00+11:00", "2026-04-06T01:45:00+10:30"),
    .init("*/15 * * * *", lordHowe, from: "2026-04-05T01:50:00+11:00", "2026-04-05T01:30:00+10:30"),
    // Samoa skipped all of 2011-12-30: anything due that day runs when it ends.
    .init("0 12 30 12 *", apia, from: "2011-12-29T12:00:00-10:00", "2011-12-31T00:00:00+14:00"),
    .init("0 12 * * *", apia, from: "2011-12-29T13:00:00-10:00", "2011-12-31T00:00:00+14:00"),
    .init("0 12 * * *", apia, from: "2011-12-31T00:00:00+14:00", "2011-12-31T12:00:00+14:00"),
]

private let invalidCases: [CronInvalidCase] = [
    .init("", "expression", "expression is empty"),
    .init("   ", "expression", "expression is empty"),
    .init("* * * *", "expression", "got 4"),
    .init("* * * * * * *", "expression", "got 7"),
    .init("@fortnightly", "expression", "unknown macro \"@fortnightly\""),
    .init("@reboot", "expression", "@reboot is not supported"),
    .init("61 * * * *", "minute", "61 is out of range 0–59"),
    .init("* 24 * * *", "hour", "24 is out of range 0–23"),
    .init("* * 0 * *", "dayOfMonth", "0 is out of range 1–31"),
    .init("* * 32 * *", "dayOfMonth", "32 is out of range 1–31"),
    .init("* * * 13 *", "month", "13 is out of range 1–12"),
    .init("* * * 0 *", "month", "0 is out of range 1–12"),
    .init("* * * * 8", "dayOfWeek", "8 is out of range 0–7"),
    .init("60 * * * * *", "second", "60 is out of range 0–59"),
    .init("0 0 1 1 * 2026", "dayOfWeek", "2026 is out of range 0–7"),
    .init("99999999999 * * * *", "minute", "99999999999 is out of range 0–59"),
    .init("1-99 * * * *", "minute", "99 is out of range 0–59"),
    .init("*/0 * * * *", "minute", "step must be at least 1"),
    .init("*/x * * * *", "minute", "step \"x\" is not a number"),
    .init("*/ * * * *", "minute", "missing step after \"/\""),
    .init("*/60 * * * *", "minute", "step 60 is out of range 1–59"),
    .init("0 */25 * * *", "hour", "step 25 is out of range 1–23"),
    .init("1/2/3 * * * *", "minute", "more than one \"/\""),
    .init("/5 * * * *", "minute", "missing value before \"/\""),
    .init("30-10 * * * *", "minute", "range \"30-10\" is reversed"),
    .init("* * * * FRI-MON", "dayOfWeek", "range \"FRI-MON\" is reversed"),
    .init("* * * DEC-JAN *", "month", "range \"DEC-JAN\" is reversed"),
    .init("* * * FOO *", "month", "unknown month name \"FOO\""),
    .init("* * * * FUNDAY", "dayOfWeek", "unknown day-of-week name \"FUNDAY\""),
    .init("MON * * * *", "minute", "names are only allowed in the month and day-of-week fields"),
    .init("* * L * *", "dayOfMonth", "names are only allowed in the month and day-of-week fields"),
    .init("1,,2 * * * *", "minute", "empty list element"),
    .init("1, * * * *", "minute", "empty list element"),
    .init("* * * * 1#2", "dayOfWeek", "unexpected character \"#\""),
    .init("* * * * * 1.5", "dayOfWeek", "unexpected character \".\""),
    .init("* * 1é * *", "dayOfMonth", "unexpected character \"é\""),
    .init("5x * * * *", "minute", "invalid value \"5x\""),
    .init("1-2-3 * * * *", "minute", "\"1-2-3\" is not a valid range"),
    .init("-5 * * * *", "minute", "range \"-5\" is missing its start"),
    .init("5- * * * *", "minute", "range \"5-\" is missing its end"),
    .init("? * * * *", "minute", "\"?\" is only allowed in the day-of-month and day-of-week fields"),
    .init("* * ?/2 * *", "dayOfMonth", "\"?\" cannot take a step"),
    .init("** * * * *", "minute", "must stand alone"),
    .init("*5 * * * *", "minute", "must stand alone"),
]

// MARK: - Table tests

@Suite("CronSchedule")
struct CronScheduleTests {
    @Test("next(after:) matches the expected table", arguments: nextCases)
    func nextOccurrence(_ row: CronNextCase) throws {
        let schedule = try CronSchedule(row.expression, timeZoneIdentifier: row.zone)
        let actual = schedule.next(after: try iso(row.from))
        let expected = try row.expected.map(iso)
        #expect(actual == expected, "got \(actual.map { "\($0)" } ?? "nil")")
        if let actual {
            #expect(actual > (try iso(row.from)))
        }
    }

    @Test("invalid expressions name the field and say why", arguments: invalidCases)
    func invalidExpression(_ row: CronInvalidCase) {
        let error = #expect(throws: CronParseError.self) {
            try CronSchedule(row.expression)
        }
        #expect(error?.field == row.field)
        #expect(error?.reason.contains(row.reasonContains) == true, "reason: \(error?.reason ?? "none")")
        #expect(error?.expression == row.expression)
    }

    @Test func errorDescriptionNamesFieldAndValue() {
        do {
            _ = try CronSchedule("61 * * * *")
            Issue.record("expected an error")
        } catch {
            #expect(error.description
                == "invalid cron expression \"61 * * * *\": minute field \"61\": 61 is out of range 0–59")
        }
        do {
            _ = try CronSchedule("* * * *")
            Issue.record("expected an error")
        } catch {
            #expect(error.description.hasPrefix("invalid cron expression \"* * * *\": expected 5 fields"))
        }
    }

    @Test func unknownTimeZoneIsReported() {
        do {
            _ = try CronSchedule("0 9 * * *", timeZoneIdentifier: "Mars/Olympus_Mons")
            Issue.record("expected an error")
        } catch {
            #expect(error.field == "timeZone")
            #expect(error.reason.contains("unknown time zone"))
            #expect(error.description.contains("\"Mars/Olympus_Mons\""))
        }
    }

    @Test func propertiesAndDescription() throws {
        let five = try CronSchedule("*/5 * * * *")
        let six = try CronSchedule("*/5 * * * * *", timeZoneIdentifier: berlin)
        #expect(!five.hasSeconds)
        #expect(six.hasSeconds)
        #expect(try !CronSchedule("@hourly").hasSeconds)
        #expect(five.expression == "*/5 * * * *")
        // Foundation may canonicalise "UTC" (to "GMT" on Linux), so compare zones, not names.
        #expect(five.timeZone == TimeZone(identifier: "UTC")!)
        #expect(six.timeZone.identifier == berlin)
        #expect(five.description == "*/5 * * * * (\(TimeZone(identifier: "UTC")!.identifier))")
        #expect(six.description == "*/5 * * * * * (Europe/Berlin)")
    }

    @Test func equalityAndHashing() throws {
        let a = try CronSchedule("0 9 * * MON-FRI")
        let b = try CronSchedule("0 9 * * MON-FRI", timeZone: TimeZone(identifier: "UTC")!)
        let c = try CronSchedule("0 9 * * MON-FRI", timeZoneIdentifier: berlin)
        #expect(a == b)
        #expect(a != c)
        #expect(Set([a, b, c]).count == 2)
    }

    @Test("macros behave like their expansions", arguments: [
        ("@yearly", "0 0 1 1 *"), ("@annually", "0 0 1 1 *"), ("@monthly", "0 0 1 * *"),
        ("@weekly", "0 0 * * 0"), ("@daily", "0 0 * * *"), ("@midnight", "0 0 * * *"),
        ("@hourly", "0 * * * *"),
    ])
    func macroExpansion(_ macro: String, _ expansion: String) throws {
        let a = try CronSchedule(macro, timeZoneIdentifier: newYork)
        let b = try CronSchedule(expansion, timeZoneIdentifier: newYork)
        var date = try iso("2026-01-01T00:00:00Z")
        for _ in 0..<30 {
            // Every macro fires forever: a nil here is a failure, not the end of the check.
            let next = try #require(a.next(after: date), "\(macro) has no next date after \(date)")
            #expect(next == b.next(after: date), "\(macro) vs \(expansion) after \(date)")
            date = next
        }
    }

    /// Iterating `next` across a whole DST year must be strictly increasing and, for an
    /// hour-wildcard schedule, keep an exact real-time cadence through both transitions.
    @Test func quarterHourlyKeepsRealTimeCadenceThroughDST() throws {
        for zone in [newYork, berlin] {
            let schedule = try CronSchedule("*/15 * * * *", timeZoneIdentifier: zone)
            var date = try iso("2026-01-01T00:00:00Z")
            for _ in 0..<(365 * 96) {
                let next = try #require(schedule.next(after: date))
                #expect(next.timeIntervalSince(date) == 900, "\(zone) after \(date)")
                date = next
            }
        }
    }

    /// A fixed daily time runs exactly once per local calendar day, every day of the year.
    @Test(arguments: [(newYork, "30 1 * * *"), (newYork, "30 2 * * *"), (berlin, "30 2 * * *")])
    func dailyFixedTimeRunsOncePerLocalDay(_ zone: String, _ expression: String) throws {
        let schedule = try CronSchedule(expression, timeZoneIdentifier: zone)
        var calendar = Calendar(identifier: .gregorian)
        calendar.timeZone = TimeZone(identifier: zone)!
        var date = try iso("2026-01-01T12:00:00Z")
        var days = Set<DateComponents>()
        for _ in 0..<365 {
            let next = try #require(schedule.next(after: date))
            let day = calendar.dateComponents([.year, .month, .day], from: next)
            #expect(days.insert(day).inserted, "\(expression) ran twice on \(day)")
            date = next
        }
        #expect(days.count == 365)
    }

    @Test func farFutureAndInvalidDates() throws {
        let schedule = try CronSchedule("* * * * *")
        #expect(schedule.next(after: .distantFuture) == Date.distantFuture + 60)
        #expect(schedule.next(after: Date(timeIntervalSince1970: 1e15)) == nil)
        #expect(schedule.next(after: Date(timeIntervalSince1970: .nan)) == nil)
        #expect(schedule.next(after: Date(timeIntervalSince1970: -86_400)) == Date(timeIntervalSince1970: -86_340))
    }

    /// Loose guard that `next` jumps rather than scans; the bound is generous because
    /// tests run in debug builds on shared machines.
    @Test func nextIsFast() throws {
        let schedules = try [
            CronSchedule("*/5 * * * *", timeZoneIdentifier: newYork),
            CronSchedule("0 0 29 2 *"),
            CronSchedule("0 0 13 * FRI", timeZoneIdentifier: berlin),
            CronSchedule("0 0 0 1 1 *"),
        ]
        let clock = ContinuousClock()
        var date = try iso("2026-01-01T00:00:00Z")
        let elapsed = clock.measure {
            for i in 0..<20_000 {
                _ = schedules[i % schedules.count].next(after: date)
                date += 37
            }
        }
        #expect(elapsed < .seconds(5), "20,000 calls took \(elapsed)")
    }
}

// MARK: - Property tests against brute force

/// SplitMix64: tiny, fast and deterministic, so a failing case can be replayed from its seed.
struct SplitMix64: RandomNumberGenerator {
    private var state: UInt64
    init(seed: UInt64) { state = seed }
    mutating func next() -> UInt64 {
        state &+= 0x9E37_79B9_7F4A_7C15
        var z = state
        z = (z ^ (z >> 30)) &* 0xBF58_476D_1CE4_E5B9
        z = (z ^ (z >> 27)) &* 0x94D0_49BB_1331_11EB
        return z ^ (z >> 31)
    }
}

/// A randomly generated expression together with the values each field must match,
/// computed independently of the parser.
struct GeneratedCron: CustomStringConvertible {
    var seconds: UInt64 = 1
    var minutes: UInt64 = 0
    var hours: UInt64 = 0
    var daysOfMonth: UInt64 = 0
    var months: UInt64 = 0
    var daysOfWeek: UInt64 = 0
    var dayOfMonthRestricted = false
    var dayOfWeekRestricted = false
    var hourIsWildcard = false
    var fields: [String] = []
    var hasSeconds = false

    var description: String { fields.joined(separator: " ") }

    func matches(second: Int, minute: Int, hour: Int, day: Int, month: Int, weekday: Int) -> Bool {
        func has(_ mask: UInt64, _ value: Int) -> Bool { mask & (1 << UInt64(value)) != 0 }
        guard has(seconds, second), has(minutes, minute), has(hours, hour), has(months, month) else { return false }
        let domOK = has(daysOfMonth, day)
        let dowOK = has(daysOfWeek, weekday)
        return dayOfMonthRestricted && dayOfWeekRestricted ? (domOK || dowOK) : (domOK && dowOK)
    }
}

enum CronGenerator {
    static let monthNames = ["JAN", "FEB", "MAR", "APR", "MAY", "JUN", "JUL", "AUG", "SEP", "OCT", "NOV", "DEC"]
    static let dayNames = ["SUN", "MON", "TUE", "WED", "THU", "FRI", "SAT"]

    /// `wildcardBias` is the chance of a plain `*`; higher keeps occurrences close so the
    /// brute force stays cheap.
    static func field(
        _ range: ClosedRange<Int>, names: [String]? = nil, allowQuestion: Bool = false,
        wildcardBias: Double, using rng: inout SplitMix64
    ) -> (text: String, mask: UInt64) {
        let lo = range.lowerBound, hi = range.upperBound
        func spell(_ value: Int) -> String {
            guard let names, Double.random(in: 0..<1, using: &rng) < 0.4 else { return String(value) }
            let index = value - (names.count == 12 ? 1 : 0)
            guard names.indices.contains(index) else { return String(value) }
            let name = names[index]
            return Bool.random(using: &rng) ? name : name.lowercased()
        }
        func bits(_ from: Int, _ to: Int, _ step: Int) -> UInt64 {
            var mask: UInt64 = 0
            for v in stride(from: from, through: to, by: step) { mask |= 1 << UInt64(v) }
            return mask
        }
        func item() -> (String, UInt64) {
            let a = Int.random(in: range, using: &rng)
            let b = Int.random(in: a...hi, using: &rng)
            let step = Int.random(in: 1...max(1, min(hi, (hi - lo) / 2)), using: &rng)
            switch Int.random(in: 0..<5, using: &rng) {
            case 0, 1: return (spell(a), bits(a, a, 1))
            case 2: return ("\(spell(a))-\(spell(b))", bits(a, b, 1))
            case 3: return ("\(a)-\(b)/\(step)", bits(a, b, step))
            default: return ("\(a)/\(step)", bits(a, hi, step))
            }
        }
        let roll = Double.random(in: 0..<1, using: &rng)
        if roll < wildcardBias {
            if allowQuestion, Bool.random(using: &rng) { return ("?", bits(lo, hi, 1)) }
            return ("*", bits(lo, hi, 1))
        }
        if roll < wildcardBias + (1 - wildcardBias) / 3 {
            let step = Int.random(in: 1...max(1, (hi - lo + 1) / 3), using: &rng)
            return ("*/\(step)", bits(lo, hi, step))
        }
        var texts: [String] = []
        var mask: UInt64 = 0
        for _ in 0..<Int.random(in: 1...3, using: &rng) {
            let (text, bits) = item()
            texts.append(text)
            mask |= bits
        }
        return (texts.joined(separator: ","), mask)
    }

    static func expression(withSeconds: Bool, dense: Bool, using rng: inout SplitMix64) -> GeneratedCron {
        var cron = GeneratedCron()
        cron.hasSeconds = withSeconds
        if withSeconds {
            let s = field(0...59, wildcardBias: 0.3, using: &rng)
            cron.seconds = s.mask
            cron.fields.append(s.text)
        }
        let minute = field(0...59, wildcardBias: dense ? 0.4 : 0.25, using: &rng)
        let hour = field(0...23, wildcardBias: dense ? 0.6 : 0.4, using: &rng)
        let dom = field(1...31, allowQuestion: true, wildcardBias: dense ? 0.9 : 0.6, using: &rng)
        let month = field(1...12, names: monthNames, wildcardBias: dense ? 0.95 : 0.75, using: &rng)
        let dow = field(0...7, names: dayNames, allowQuestion: true, wildcardBias: dense ? 0.9 : 0.6, using: &rng)
        cron.minutes = minute.mask
        cron.hours = hour.mask
        cron.daysOfMonth = dom.mask
        cron.months = month.mask
        // 7 is another spelling of Sunday.
        cron.daysOfWeek = dow.mask & (1 << 7) != 0 ? (dow.mask & ~(1 << 7)) | 1 : dow.mask
        cron.dayOfMonthRestricted = !(dom.text.hasPrefix("*") || dom.text.hasPrefix("?"))
        cron.dayOfWeekRestricted = !(dow.text.hasPrefix("*") || dow.text.hasPrefix("?"))
        cron.hourIsWildcard = hour.text.hasPrefix("*")
        cron.fields += [minute.text, hour.text, dom.text, month.text, dow.text]
        return cron
    }
}

/// Wall-clock fields that can be stepped one second or minute at a time.
struct SteppingClock {
    var year, month, day, hour, minute, second, weekday: Int

    init(_ date: Date, calendar: Calendar) {
        let c = calendar.dateComponents([.year, .month, .day, .hour, .minute, .second, .weekday], from: date)
        (year, month, day, hour, minute, second) = (c.year!, c.month!, c.day!, c.hour!, c.minute!, c.second!)
        weekday = c.weekday! - 1
    }

    mutating func advance(seconds: Int) {
        second += seconds
        guard second >= 60 else { return }
        second -= 60
        minute += 1
        guard minute == 60 else { return }
        minute = 0
        hour += 1
        guard hour == 24 else { return }
        hour = 0
        day += 1
        weekday = (weekday + 1) % 7
        let leap = year % 4 == 0 && (year % 100 != 0 || year % 400 == 0)
        let length = [31, leap ? 29 : 28, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31][month - 1]
        guard day > length else { return }
        day = 1
        month += 1
        guard month == 13 else { return }
        month = 1
        year += 1
    }

    func matches(_ cron: GeneratedCron) -> Bool {
        cron.matches(second: second, minute: minute, hour: hour, day: day, month: month, weekday: weekday)
    }
}

@Suite("CronSchedule property tests")
struct CronSchedulePropertyTests {
    static let utcCalendar: Calendar = {
        var calendar = Calendar(identifier: .gregorian)
        calendar.timeZone = TimeZone(identifier: "UTC")!
        return calendar
    }()

    /// Brute force in UTC: step one second (six fields) or one minute (five fields) and
    /// test every field directly. Returns nil if nothing matches within `limit` steps.
    static func bruteForceNext(_ cron: GeneratedCron, after date: Date, limit: Int) -> Date? {
        let stepSize = cron.hasSeconds ? 1 : 60
        var instant = Int(date.timeIntervalSince1970.rounded(.down)) + 1
        let remainder = ((instant % stepSize) + stepSize) % stepSize
        if remainder != 0 { instant += stepSize - remainder }
        var clock = SteppingClock(Date(timeIntervalSince1970: Double(instant)), calendar: utcCalendar)
        for _ in 0..<limit {
            if clock.matches(cron) { return Date(timeIntervalSince1970: Double(instant)) }
            clock.advance(seconds: stepSize)
            instant += stepSize
        }
        return nil
    }

    @Test("random UTC expressions agree with a brute-force scan", arguments: [
        (seed: UInt64(0xC0FF_EE00_1234_5678), withSeconds: false, count: 600),
        (seed: UInt64(0x5EED_0000_0000_0006), withSeconds: true, count: 400),
    ])
    func randomExpressionsMatchBruteForce(seed: UInt64, withSeconds: Bool, count: Int) throws {
        var rng = SplitMix64(seed: seed)
        // Five-field scans go minute by minute for up to ~45 days; six-field ones second by
        // second for up to 2 days. Rarer schedules are skipped and counted.
        let limit = withSeconds ? 2 * 86_400 : 45 * 1_440
        var skipped = 0
        for index in 0..<count {
            let cron = CronGenerator.expression(withSeconds: withSeconds, dense: withSeconds, using: &rng)
            // 2000-01-01 ... 2040-01-01, sometimes with a fractional second.
            var start = Double(Int.random(in: 946_684_800...2_208_988_800, using: &rng))
            if Bool.random(using: &rng) { start += Double.random(in: 0..<1, using: &rng) }
            let startDate = Date(timeIntervalSince1970: start)
            let context: Comment = "seed \(seed) case \(index): \"\(cron)\" after \(start)"

            let schedule = try CronSchedule(cron.description)
            guard let expected = Self.bruteForceNext(cron, after: startDate, limit: limit) else {
                skipped += 1
                // Beyond the scan window the fast path must still be later than the window.
                if let actual = schedule.next(after: startDate) {
                    #expect(actual.timeIntervalSince(startDate) >= Double(limit * (withSeconds ? 1 : 60)) - 60, context)
                }
                continue
            }
            #expect(schedule.next(after: startDate) == expected, context)
        }
        #expect(skipped < count / 5, "skipped \(skipped) of \(count) (seed \(seed))")
    }

    /// Brute force in zones with DST, scanning real minutes and applying the documented
    /// rule literally: fire where the local wall clock matches, except for the second pass
    /// of a fixed-hour schedule through a fall-back overlap; fire at the end of a
    /// spring-forward gap if any skipped wall-clock minute matches.
    static func bruteForceNext(
        _ cron: GeneratedCron, after date: Date, zone: TimeZone, limitMinutes: Int
    ) -> Date? {
        var calendar = Calendar(identifier: .gregorian)
        calendar.timeZone = zone
        func offset(_ instant: Int) -> Int { zone.secondsFromGMT(for: Date(timeIntervalSince1970: Double(instant))) }
        func wallMatches(_ components: DateComponents) -> Bool {
            cron.matches(second: 0, minute: components.minute!, hour: components.hour!,
                         day: components.day!, month: components.month!, weekday: components.weekday! - 1)
        }
        let fields: Set<Calendar.Component> = [.month, .day, .hour, .minute, .weekday]
        var instant = (Int(date.timeIntervalSince1970.rounded(.down)) / 60 + 1) * 60
        for _ in 0..<limitMinutes {
            let current = offset(instant)
            let before = offset(instant - 1)
            if before < current {
                // Wall-clock minutes in [instant + before, instant + current) never happened.
                for wall in stride(from: instant + before, to: instant + current, by: 60) {
                    let skipped = utcCalendar.dateComponents(fields, from: Date(timeIntervalSince1970: Double(wall)))
                    if wallMatches(skipped) { return Date(timeIntervalSince1970: Double(instant)) }
                }
            }
            let minute = ((instant + current) / 60) % 60
            if cron.minutes & (1 << UInt64(minute)) != 0,
               wallMatches(calendar.dateComponents(fields, from: Date(timeIntervalSince1970: Double(instant)))) {
                let secondPass = [1_800, 3_600, 7_200].contains { offset(instant - $0) == current + $0 }
                if !secondPass || cron.hourIsWildcard { return Date(timeIntervalSince1970: Double(instant)) }
            }
            instant += 60
        }
        return nil
    }

    @Test("random expressions around DST transitions agree with a brute-force scan")
    func randomExpressionsAroundTransitions() throws {
        let seed: UInt64 = 0xD57_2026
        var rng = SplitMix64(seed: seed)
        var transitions: [(zone: String, instant: Date)] = []
        for zone in [newYork, berlin, lordHowe, "Australia/Sydney"] {
            let tz = TimeZone(identifier: zone)!
            var date = try iso("2024-01-01T00:00:00Z")
            while let next = tz.nextDaylightSavingTimeTransition(after: date), next < (try iso("2030-01-01T00:00:00Z")) {
                transitions.append((zone, next))
                date = next
            }
        }
        #expect(transitions.count >= 40)
        let limitMinutes = 2 * 1_440
        var skipped = 0
        let count = 300
        for index in 0..<count {
            let (zone, transition) = transitions[Int.random(in: transitions.indices, using: &rng)]
            var cron = CronGenerator.expression(withSeconds: false, dense: true, using: &rng)
            // Keep days unrestricted so the next run is within the scan window; the hour
            // field is often pinned near the transition to exercise the gap and overlap.
            cron.daysOfMonth = (1 << 32) - 2
            cron.months = (1 << 13) - 2
            cron.daysOfWeek = (1 << 7) - 1
            cron.dayOfMonthRestricted = false
            cron.dayOfWeekRestricted = false
            cron.fields[2...4] = ["*", "*", "*"]
            if Bool.random(using: &rng) {
                let hour = Int.random(in: 0...3, using: &rng)
                cron.hours = 1 << UInt64(hour)
                cron.hourIsWildcard = false
                cron.fields[1] = String(hour)
            }
            // Mostly start within a few hours of the transition so runs land in the gap or
            // overlap; sometimes a day earlier to cross it from afar.
            let window = Double.random(in: 0..<1, using: &rng) < 0.75 ? -3 * 3_600...3 * 3_600 : -20 * 3_600...4 * 3_600
            let start = transition.addingTimeInterval(Double(Int.random(in: window, using: &rng)))
            let context: Comment = "seed \(seed) case \(index): \"\(cron)\" [\(zone)] after \(start)"
            let schedule = try CronSchedule(cron.description, timeZoneIdentifier: zone)
            guard let expected = Self.bruteForceNext(
                cron, after: start, zone: TimeZone(identifier: zone)!, limitMinutes: limitMinutes)
            else {
                skipped += 1
                continue
            }
            #expect(schedule.next(after: start) == expected, context)
        }
        #expect(skipped < count / 10, "skipped \(skipped) of \(count) (seed \(seed))")
    }
}
