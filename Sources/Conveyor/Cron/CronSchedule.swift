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
    let seconds: UInt64
    let minutes: UInt64
    let hours: UInt64
    let daysOfMonth: UInt64  // bits 1...31
    let months: UInt64       // bits 1...12
    let daysOfWeek: UInt64   // bits 0...6, Sunday = 0
    let dayOfMonthRestricted: Bool
    let dayOfWeekRestricted: Bool
    let hourIsWildcard: Bool
    let withSeconds: Bool
    /// False when no month can ever contain a matching day (`0 0 30 2 *`), so `next` can
    /// return nil without searching.
    let canMatch: Bool

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
