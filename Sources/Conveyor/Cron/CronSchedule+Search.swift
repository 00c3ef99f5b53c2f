import Foundation

// Computing the next occurrence: the field-by-field search over wall-clock time and the
// calendar and time zone helpers it needs (the rules are on `CronSchedule`).
extension CronSchedule {
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
        let days =
            dayOfMonthRestricted && dayOfWeekRestricted
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
