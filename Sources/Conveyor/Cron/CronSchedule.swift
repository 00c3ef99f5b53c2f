import Foundation

/// A parsed cron expression that computes when a recurring job is next due.
///
/// An expression has five fields, `minute hour day-of-month month day-of-week`, or six
/// with a leading `second` field (`*/3 * * * * *`). Each field accepts `*`, single values,
/// lists (`1,15,30`), ranges (`1-5`), steps (`*/5`, `1-30/2`, and `5/10`, which means
/// "from 5 to the field maximum, every 10"). Months accept `JAN`–`DEC` and days of the week
/// accept `SUN`–`SAT`, case-insensitively; day-of-week `0` and `7` both mean Sunday, and a
/// range may end in `SUN` (`FRI-SUN`). `?` means the same as `*` in the two day fields.
/// The macros `@yearly`, `@annually`, `@monthly`, `@weekly`, `@daily`, `@midnight` and
/// `@hourly` stand for their usual five-field expansions.
///
/// Day matching follows Vixie cron: when both day-of-month and day-of-week are restricted
/// (neither field starts with `*` or `?`), a day matches if *either* field matches, so
/// `0 0 13 * FRI` runs on every 13th and every Friday. Otherwise both must match.
///
/// ## Time zones and daylight saving time
///
/// Fields are matched against the local wall-clock time in ``timeZone``, so `0 9 * * *`
/// means 09:00 local time all year. Where the wall clock jumps, these rules apply:
///
/// 1. **Spring forward (gap).** A matching wall-clock time that does not exist runs once,
///    at the first instant after the gap, as in cronie and Vixie cron. For example
///    `30 2 * * *` in America/New_York runs at 03:00 EDT on 2026-03-08. This applies to
///    every schedule; several skipped matches collapse into that single run.
/// 2. **Fall back (overlap).** If the hour field is fixed (does not start with `*`), a
///    wall-clock time that occurs twice runs only at its first occurrence, so
///    `30 1 * * *` runs once on 2026-11-01 in America/New_York. If the hour field starts
///    with `*` (`* * * * *`, `*/15 * * * *`, `@hourly`), the schedule runs at every real
///    instant whose wall-clock time matches, in both passes, so it keeps its real-time
///    cadence and neither skips nor doubles beyond what the wall clock shows.
///
/// Computing the next occurrence jumps field by field rather than scanning, so
/// ``next(after:)`` is cheap enough for a worker's hot path.
public struct CronSchedule: Sendable, Hashable, CustomStringConvertible {
    /// The expression exactly as it was passed to the initializer.
    public let expression: String

    /// The time zone whose wall clock the fields are matched against.
    public let timeZone: TimeZone

    /// Whether the expression has a leading seconds field (six fields instead of five).
    ///
    /// Five-field schedules fire at second 0 of each matching minute.
    public var hasSeconds: Bool { withSeconds }

    // Each field is a bitmask: bit n set means value n matches. Bits outside a field's
    // valid range are always clear, which lets the search carry into the next larger
    // unit simply by asking for a bit past the end.
    private let seconds: UInt64
    private let minutes: UInt64
    private let hours: UInt64
    private let daysOfMonth: UInt64  // bits 1...31
    private let months: UInt64       // bits 1...12
    private let daysOfWeek: UInt64   // bits 0...6, Sunday = 0
    private let dayOfMonthRestricted: Bool
    private let dayOfWeekRestricted: Bool
    private let hourIsWildcard: Bool
    private let withSeconds: Bool
    /// False when no month can ever contain a matching day (`0 0 30 2 *`), so `next` can
    /// return nil without searching.
    private let canMatch: Bool

    /// Parses a cron expression to be evaluated in the given time zone.
    ///
    /// - Parameters:
    ///   - expression: Five or six whitespace-separated fields, or a macro such as `@daily`.
    ///   - timeZone: The zone whose wall clock the schedule follows. Defaults to UTC.
    /// - Throws: ``CronParseError`` naming the offending field and why it is invalid.
    public init(_ expression: String, timeZone: TimeZone = TimeZone(identifier: "UTC")!) throws(CronParseError) {
        let parsed = try Parser(expression: expression).parse()
        self.expression = expression
        self.timeZone = timeZone
        self.seconds = parsed.seconds
        self.minutes = parsed.minutes
        self.hours = parsed.hours
        self.daysOfMonth = parsed.daysOfMonth
        self.months = parsed.months
        self.daysOfWeek = parsed.daysOfWeek
        self.dayOfMonthRestricted = parsed.dayOfMonthRestricted
        self.dayOfWeekRestricted = parsed.dayOfWeekRestricted
        self.hourIsWildcard = parsed.hourIsWildcard
        self.withSeconds = parsed.withSeconds
        self.canMatch = Self.canEverMatch(
            daysOfMonth: parsed.daysOfMonth, months: parsed.months,
            bothDayFieldsRestricted: parsed.dayOfMonthRestricted && parsed.dayOfWeekRestricted)
    }

    /// Parses a cron expression to be evaluated in the time zone with the given IANA name.
    ///
    /// Convenient when the zone comes from configuration or a job payload as a string.
    ///
    /// - Parameters:
    ///   - expression: Five or six whitespace-separated fields, or a macro such as `@daily`.
    ///   - timeZoneIdentifier: An IANA zone name such as `"Europe/Berlin"`.
    /// - Throws: ``CronParseError`` with field `"timeZone"` if the zone is unknown, or
    ///   naming the offending cron field if the expression is invalid.
    public init(_ expression: String, timeZoneIdentifier: String) throws(CronParseError) {
        guard let zone = TimeZone(identifier: timeZoneIdentifier) else {
            throw CronParseError(
                expression: expression, field: "timeZone",
                reason: "unknown time zone identifier; expected an IANA name such as \"Europe/Berlin\"",
                fieldText: timeZoneIdentifier)
        }
        try self.init(expression, timeZone: zone)
    }

    /// The expression followed by its time zone, e.g. `0 9 * * MON-FRI (Europe/Berlin)`.
    ///
    /// The zone is always included because the same expression fires at different
    /// instants in different zones.
    public var description: String { "\(expression) (\(timeZone.identifier))" }

    /// Returns the first time the schedule fires strictly after `date`.
    ///
    /// Occurrences fall on a matching second of the local wall clock (second 0 for
    /// five-field schedules), except that a run displaced by a spring-forward gap happens
    /// at the instant the gap ends.
    /// Daylight-saving transitions are handled as described on ``CronSchedule``.
    ///
    /// - Parameter date: The instant to search from; it is never returned itself.
    /// - Returns: The next occurrence, or `nil` if there is none within about eight years
    ///   (long enough for `0 0 29 2 *` to reach the next leap day even across 2100), for
    ///   example for `0 0 30 2 *`.
    public func next(after date: Date) -> Date? {
        guard canMatch else { return nil }
        let interval = date.timeIntervalSince1970
        // ±3e11 s is roughly ±9,500 years: far beyond any real schedule, well inside Int.
        guard interval.isFinite, abs(interval) < 3e11 else { return nil }
        // First whole second strictly after `date`.
        var start = Int(interval.rounded(.down)) + 1

        var offset = utcOffset(at: start)
        // Find the latest transition at or before `start` (a fall-back overlap can only
        // affect `start` if it began recently) and the first one after it.
        var previousTransition: Int?
        var upcoming = transition(after: start - Self.overlapLookback)
        while let instant = upcoming, instant <= start {
            previousTransition = instant
            upcoming = transition(after: instant)
        }
        var previousOffset = previousTransition.map { utcOffset(at: $0 - 1) } ?? offset
        let limitYear = CivilCalendar.civil(fromDays: (start + offset).floorDivided(by: 86_400)).year + Self.searchYears

        // A spring-forward gap ending exactly at `start` fires at `start` if it hid a match.
        if let gapEnd = previousTransition, gapEnd == start, offset > previousOffset,
           let hidden = nextWallTime(atOrAfter: gapEnd + previousOffset, throughYear: limitYear),
           hidden < gapEnd + offset {
            return Self.date(gapEnd)
        }

        // Each pass either returns or moves past one transition, so this is bounded by the
        // number of transitions in the search horizon; the cap only guards against a
        // misbehaving time zone database.
        for _ in 0..<1_000 {
            var wallStart = start + offset
            if let overlapStart = previousTransition, previousOffset > offset, !hourIsWildcard {
                // Fixed-hour schedules already ran these wall-clock times in the first pass.
                wallStart = max(wallStart, overlapStart + previousOffset)
            }
            guard let wall = nextWallTime(atOrAfter: wallStart, throughYear: limitYear) else { return nil }
            let instant = wall - offset
            guard let transitionInstant = upcoming, instant >= transitionInstant else {
                return Self.date(instant)
            }
            // The candidate lies beyond the next offset change: re-evaluate from there.
            let newOffset = utcOffset(at: transitionInstant)
            if newOffset > offset, wall < transitionInstant + newOffset {
                // `wall` is in the spring-forward gap and never occurs: run when it ends.
                return Self.date(transitionInstant)
            }
            previousTransition = transitionInstant
            previousOffset = offset
            offset = newOffset
            start = transitionInstant
            upcoming = transition(after: transitionInstant)
        }
        return nil
    }
}

// MARK: - Search

private extension CronSchedule {
    /// Years searched before `next(after:)` gives up. Eight covers the longest gap between
    /// leap days (2096 → 2104), so a valid Feb 29 schedule always finds its next run.
    static let searchYears = 8
    /// How far back to look for a transition whose fall-back overlap may contain the start.
    /// Real overlaps are at most a few hours; two days leaves ample margin.
    static let overlapLookback = 2 * 86_400
    /// Bits 0, 7, 14, 21, 28: shifted by a weekday's first day of the month, it marks
    /// every day of the month that falls on that weekday.
    static let weeklyPattern: UInt64 = 1 | 1 << 7 | 1 << 14 | 1 << 21 | 1 << 28

    /// Finds the first wall-clock time (seconds since 1970-01-01T00:00 local) at or after
    /// `start` that matches every field, or nil if it would fall after `limitYear`.
    func nextWallTime(atOrAfter start: Int, throughYear limitYear: Int) -> Int? {
        let startDay = start.floorDivided(by: 86_400)
        let secondOfDay = start - startDay * 86_400
        var (year, month, day) = CivilCalendar.civil(fromDays: startDay)
        var hour = secondOfDay / 3_600
        var minute = secondOfDay / 60 % 60
        var second = secondOfDay % 60

        // When a unit has no match left, bump the next larger unit and reset the smaller
        // ones; an out-of-range value (month 13, day 32, hour 24, ...) never matches a
        // bit, so the carry propagates on the next pass.
        while year <= limitYear {
            guard let matchedMonth = Self.nextBit(months, atOrAfter: month) else {
                year += 1; month = 1; day = 1; hour = 0; minute = 0; second = 0
                continue
            }
            if matchedMonth != month { month = matchedMonth; day = 1; hour = 0; minute = 0; second = 0 }
            guard let matchedDay = Self.nextBit(matchingDays(year: year, month: month), atOrAfter: day) else {
                month += 1; day = 1; hour = 0; minute = 0; second = 0
                continue
            }
            if matchedDay != day { day = matchedDay; hour = 0; minute = 0; second = 0 }
            guard let matchedHour = Self.nextBit(hours, atOrAfter: hour) else {
                day += 1; hour = 0; minute = 0; second = 0
                continue
            }
            if matchedHour != hour { hour = matchedHour; minute = 0; second = 0 }
            guard let matchedMinute = Self.nextBit(minutes, atOrAfter: minute) else {
                hour += 1; minute = 0; second = 0
                continue
            }
            if matchedMinute != minute { minute = matchedMinute; second = 0 }
            guard let matchedSecond = Self.nextBit(seconds, atOrAfter: second) else {
                minute += 1; second = 0
                continue
            }
            return CivilCalendar.days(fromCivilYear: year, month: month, day: day) * 86_400
                + hour * 3_600 + minute * 60 + matchedSecond
        }
        return nil
    }

    /// The days of `month` that match, as a bitmask (bit d = day d), applying the
    /// Vixie OR/AND rule for day-of-month and day-of-week.
    func matchingDays(year: Int, month: Int) -> UInt64 {
        let length = Self.daysInMonth(year: year, month: month)
        let validDays: UInt64 = ((1 << UInt64(length + 1)) - 1) & ~1
        let firstWeekday = Self.weekday(ofDays: CivilCalendar.days(fromCivilYear: year, month: month, day: 1))
        var weekdayDays: UInt64 = 0
        for weekday in 0..<7 where daysOfWeek & (1 << UInt64(weekday)) != 0 {
            let firstDay = (weekday - firstWeekday + 7) % 7 + 1
            weekdayDays |= Self.weeklyPattern << UInt64(firstDay)
        }
        let days = dayOfMonthRestricted && dayOfWeekRestricted
            ? daysOfMonth | weekdayDays
            : daysOfMonth & weekdayDays
        return days & validDays
    }

    /// Whether any month in `months` can contain a matching day at all.
    static func canEverMatch(daysOfMonth: UInt64, months: UInt64, bothDayFieldsRestricted: Bool) -> Bool {
        // Every month contains every weekday, so the OR rule always finds a day.
        if bothDayFieldsRestricted { return true }
        // Otherwise a day-of-month must fit in some selected month (February counted as 29
        // days). Any day-of-month falls on every weekday eventually, so the weekday never
        // makes a schedule impossible.
        for month in 1...12 where months & (1 << UInt64(month)) != 0 {
            let longest = month == 2 ? 29 : daysInMonth(year: 2001, month: month)
            if daysOfMonth & ((1 << UInt64(longest + 1)) - 1) != 0 { return true }
        }
        return false
    }

    func utcOffset(at instant: Int) -> Int {
        timeZone.secondsFromGMT(for: Self.date(instant))
    }

    /// The next instant, strictly after `instant`, at which the zone's UTC offset changes.
    func transition(after instant: Int) -> Int? {
        guard let next = timeZone.nextDaylightSavingTimeTransition(after: Self.date(instant)) else { return nil }
        // Rounding up keeps the result strictly after `instant`, so callers cannot loop.
        return Int(next.timeIntervalSince1970.rounded(.up))
    }

    static func date(_ instant: Int) -> Date {
        Date(timeIntervalSince1970: TimeInterval(instant))
    }

    static func nextBit(_ mask: UInt64, atOrAfter index: Int) -> Int? {
        guard index < 64 else { return nil }
        let remaining = mask & (UInt64.max << UInt64(index))
        return remaining == 0 ? nil : remaining.trailingZeroBitCount
    }

    static func isLeapYear(_ year: Int) -> Bool {
        year % 4 == 0 && (year % 100 != 0 || year % 400 == 0)
    }

    static func daysInMonth(year: Int, month: Int) -> Int {
        switch month {
        case 2: return isLeapYear(year) ? 29 : 28
        case 4, 6, 9, 11: return 30
        default: return 31
        }
    }

    /// Day of the week for a day count since 1970-01-01 (a Thursday), Sunday = 0.
    static func weekday(ofDays days: Int) -> Int {
        let remainder = (days + 4) % 7
        return remainder < 0 ? remainder + 7 : remainder
    }

}

// MARK: - Parsing

private extension CronSchedule {
    enum Field {
        case second, minute, hour, dayOfMonth, month, dayOfWeek

        /// The name reported in ``CronParseError/field``.
        var name: String {
            switch self {
            case .second: "second"
            case .minute: "minute"
            case .hour: "hour"
            case .dayOfMonth: "dayOfMonth"
            case .month: "month"
            case .dayOfWeek: "dayOfWeek"
            }
        }

        /// Accepted values; day-of-week allows 7 as a second spelling of Sunday.
        var bounds: ClosedRange<Int> {
            switch self {
            case .second, .minute: 0...59
            case .hour: 0...23
            case .dayOfMonth: 1...31
            case .month: 1...12
            case .dayOfWeek: 0...7
            }
        }

        /// Three-letter names, indexed from the field's lowest value.
        var names: [String]? {
            switch self {
            case .month: ["JAN", "FEB", "MAR", "APR", "MAY", "JUN", "JUL", "AUG", "SEP", "OCT", "NOV", "DEC"]
            case .dayOfWeek: ["SUN", "MON", "TUE", "WED", "THU", "FRI", "SAT"]
            default: nil
            }
        }

        var isDayField: Bool { self == .dayOfMonth || self == .dayOfWeek }
    }

    struct Parsed {
        var seconds: UInt64 = 1  // second 0 only, for five-field expressions
        var minutes: UInt64 = 0
        var hours: UInt64 = 0
        var daysOfMonth: UInt64 = 0
        var months: UInt64 = 0
        var daysOfWeek: UInt64 = 0
        var dayOfMonthRestricted = false
        var dayOfWeekRestricted = false
        var hourIsWildcard = false
        var withSeconds = false
    }

    struct Parser {
        let expression: String

        static let macros: [String: String] = [
            "@yearly": "0 0 1 1 *",
            "@annually": "0 0 1 1 *",
            "@monthly": "0 0 1 * *",
            "@weekly": "0 0 * * 0",
            "@daily": "0 0 * * *",
            "@midnight": "0 0 * * *",
            "@hourly": "0 * * * *",
        ]

        func parse() throws(CronParseError) -> Parsed {
            var text = expression.trimmingCharacters(in: .whitespacesAndNewlines)
            guard !text.isEmpty else { throw expressionError("expression is empty") }
            if text.hasPrefix("@") {
                let macro = text.lowercased()
                if macro == "@reboot" {
                    throw expressionError("@reboot is not supported: it has no time-based schedule")
                }
                guard let expansion = Self.macros[macro] else {
                    throw expressionError("unknown macro \"\(text)\"; expected one of "
                        + "@yearly, @annually, @monthly, @weekly, @daily, @midnight, @hourly")
                }
                text = expansion
            }
            let parts = text.split(whereSeparator: \.isWhitespace)
            guard parts.count == 5 || parts.count == 6 else {
                throw expressionError("expected 5 fields (minute hour day-of-month month day-of-week) "
                    + "or 6 with a leading seconds field, got \(parts.count)")
            }
            let fields: [Field] = parts.count == 6
                ? [.second, .minute, .hour, .dayOfMonth, .month, .dayOfWeek]
                : [.minute, .hour, .dayOfMonth, .month, .dayOfWeek]

            var parsed = Parsed()
            parsed.withSeconds = parts.count == 6
            for (field, part) in zip(fields, parts) {
                let mask = try parseField(part, as: field)
                // Vixie cron decides "restricted" by the first character, so `*/2` counts
                // as unrestricted for the day-of-month/day-of-week OR rule.
                let isWildcard = part.hasPrefix("*") || part.hasPrefix("?")
                switch field {
                case .second: parsed.seconds = mask
                case .minute: parsed.minutes = mask
                case .hour:
                    parsed.hours = mask
                    parsed.hourIsWildcard = part.hasPrefix("*")
                case .dayOfMonth:
                    parsed.daysOfMonth = mask
                    parsed.dayOfMonthRestricted = !isWildcard
                case .month: parsed.months = mask
                case .dayOfWeek:
                    parsed.daysOfWeek = mask
                    parsed.dayOfWeekRestricted = !isWildcard
                }
            }
            return parsed
        }

        func parseField(_ text: Substring, as field: Field) throws(CronParseError) -> UInt64 {
            if let bad = text.unicodeScalars.first(where: { !Self.isAllowed($0) }) {
                throw error(field, text, "unexpected character \"\(bad)\"")
            }
            var mask: UInt64 = 0
            for item in text.split(separator: ",", omittingEmptySubsequences: false) {
                mask |= try parseItem(item, in: text, as: field)
            }
            if field == .dayOfWeek, mask & (1 << 7) != 0 {
                mask = (mask & ~(1 << 7)) | 1  // 7 is Sunday, stored as 0
            }
            return mask
        }

        func parseItem(_ item: Substring, in text: Substring, as field: Field) throws(CronParseError) -> UInt64 {
            guard !item.isEmpty else { throw error(field, text, "empty list element (stray comma)") }
            let pieces = item.split(separator: "/", omittingEmptySubsequences: false)
            guard pieces.count <= 2 else { throw error(field, text, "more than one \"/\" in \"\(item)\"") }
            let base = pieces[0]
            let bounds = field.bounds

            var step = 1
            if pieces.count == 2 {
                let stepText = pieces[1]
                guard !stepText.isEmpty else { throw error(field, text, "missing step after \"/\" in \"\(item)\"") }
                guard stepText.allSatisfy(\.isASCIIDigit) else {
                    throw error(field, text, "step \"\(stepText)\" is not a number")
                }
                let digits = stepText.drop(while: { $0 == "0" })
                guard digits.count <= 6, let value = Int(digits.isEmpty ? "0" : digits) else {
                    throw error(field, text, "step \(digits) is out of range 1–\(bounds.upperBound)")
                }
                guard value >= 1 else { throw error(field, text, "step must be at least 1, got \(value)") }
                guard value <= bounds.upperBound else {
                    throw error(field, text, "step \(value) is out of range 1–\(bounds.upperBound)")
                }
                step = value
            }
            guard !base.isEmpty else { throw error(field, text, "missing value before \"/\" in \"\(item)\"") }

            let low: Int
            let high: Int
            if base == "*" {
                (low, high) = (bounds.lowerBound, bounds.upperBound)
            } else if base == "?" {
                guard field.isDayField else {
                    throw error(field, text, "\"?\" is only allowed in the day-of-month and day-of-week fields")
                }
                guard pieces.count == 1 else { throw error(field, text, "\"?\" cannot take a step") }
                (low, high) = (bounds.lowerBound, bounds.upperBound)
            } else if base.contains("*") || base.contains("?") {
                throw error(field, text, "\"\(base)\": \"*\" and \"?\" must stand alone, optionally followed by a step as in \"*/5\"")
            } else {
                let ends = base.split(separator: "-", omittingEmptySubsequences: false)
                switch ends.count {
                case 1:
                    low = try parseValue(base, in: text, as: field)
                    // `5/10` means every 10 from 5 up to the field maximum.
                    high = pieces.count == 2 ? bounds.upperBound : low
                case 2:
                    guard !ends[0].isEmpty else { throw error(field, text, "range \"\(base)\" is missing its start") }
                    guard !ends[1].isEmpty else { throw error(field, text, "range \"\(base)\" is missing its end") }
                    low = try parseValue(ends[0], in: text, as: field)
                    var end = try parseValue(ends[1], in: text, as: field)
                    // Let `FRI-SUN` mean Friday through Sunday rather than a reversed range.
                    if field == .dayOfWeek, end == 0, low > 0, !ends[1].allSatisfy(\.isASCIIDigit) { end = 7 }
                    guard low <= end else {
                        throw error(field, text, "range \"\(base)\" is reversed: start \(low) is after end \(end)")
                    }
                    high = end
                default:
                    throw error(field, text, "\"\(base)\" is not a valid range; expected start-end")
                }
            }

            var mask: UInt64 = 0
            for value in stride(from: low, through: high, by: step) { mask |= 1 << UInt64(value) }
            return mask
        }

        func parseValue(_ token: Substring, in text: Substring, as field: Field) throws(CronParseError) -> Int {
            let bounds = field.bounds
            if token.allSatisfy(\.isASCIIDigit) {
                let digits = token.drop(while: { $0 == "0" })
                guard digits.count <= 6, let value = Int(digits.isEmpty ? "0" : digits), bounds.contains(value) else {
                    throw error(field, text, "\(digits.isEmpty ? "0" : digits) is out of range \(bounds.lowerBound)–\(bounds.upperBound)")
                }
                return value
            }
            if token.allSatisfy(\.isASCIILetter) {
                guard let names = field.names else {
                    throw error(field, text, "\"\(token)\" is not a number; names are only allowed in the month and day-of-week fields")
                }
                guard let index = names.firstIndex(of: token.uppercased()) else {
                    let expected = field == .month ? "month name \"\(token)\"; expected JAN–DEC" : "day-of-week name \"\(token)\"; expected SUN–SAT"
                    throw error(field, text, "unknown \(expected)")
                }
                return bounds.lowerBound + index
            }
            throw error(field, text, "invalid value \"\(token)\"; expected a number\(field.names == nil ? "" : " or a name")")
        }

        static func isAllowed(_ scalar: Unicode.Scalar) -> Bool {
            switch scalar {
            case "0"..."9", "a"..."z", "A"..."Z", "*", "?", ",", "-", "/": true
            default: false
            }
        }

        func expressionError(_ reason: String) -> CronParseError {
            CronParseError(expression: expression, field: "expression", reason: reason, fieldText: nil)
        }

        func error(_ field: Field, _ text: Substring, _ reason: String) -> CronParseError {
            CronParseError(expression: expression, field: field.name, reason: reason, fieldText: String(text))
        }
    }
}

extension Character {
    fileprivate var isASCIIDigit: Bool { isASCII && isNumber }
    fileprivate var isASCIILetter: Bool { isASCII && isLetter }
}

/// An error describing why a cron expression or its time zone could not be parsed.
///
/// The error names the field at fault so that an API accepting schedules can point the
/// user at the exact part to fix.
public struct CronParseError: Error, Sendable, Hashable, CustomStringConvertible {
    /// The full expression that failed to parse.
    public let expression: String

    /// The part at fault: `"second"`, `"minute"`, `"hour"`, `"dayOfMonth"`, `"month"`,
    /// `"dayOfWeek"`, `"expression"` (the overall shape, e.g. the field count or an unknown
    /// macro) or `"timeZone"`.
    public let field: String

    /// What is wrong, specific enough to fix it, e.g. `61 is out of range 0–59`.
    public let reason: String

    /// The offending field's text (or the time zone identifier), for ``description``.
    let fieldText: String?

    /// A one-line message, e.g.
    /// `invalid cron expression "61 * * * *": minute field "61": 61 is out of range 0–59`.
    public var description: String {
        let prefix = "invalid cron expression \"\(expression)\""
        guard let fieldText else { return "\(prefix): \(reason)" }
        let label = switch field {
        case "dayOfMonth": "day-of-month field"
        case "dayOfWeek": "day-of-week field"
        case "timeZone": "time zone"
        default: "\(field) field"
        }
        return "\(prefix): \(label) \"\(fieldText)\": \(reason)"
    }
}
