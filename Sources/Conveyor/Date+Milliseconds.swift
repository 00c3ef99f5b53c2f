import Foundation

extension Date {
    /// Milliseconds since the Unix epoch, the unit of every time in Redis.
    /// Rounded to the nearest millisecond: a `Date` holds seconds as a
    /// `Double`, so `Date(milliseconds: n)` times 1000 may come out as
    /// n − 0.000001, which rounding down would turn into n − 1.
    var milliseconds: Int { Int((timeIntervalSince1970 * 1000).rounded()) }

    init(milliseconds: Int) {
        self.init(timeIntervalSince1970: Double(milliseconds) / 1000)
    }

    /// `2026-11-29T01:02:03.456Z`: UTC, always with milliseconds. Computed from
    /// whole milliseconds by integer arithmetic (Foundation's formatter both
    /// truncated binary fractions, printing …919 ms as …918, and cost ~7 µs a
    /// date on the archiver's hot path).
    public var iso8601Milliseconds: String {
        var bytes: [UInt8] = []
        bytes.reserveCapacity(24)
        Self.appendISO8601(milliseconds: milliseconds, to: &bytes)
        return String(decoding: bytes, as: UTF8.self)
    }

    /// Appends `YYYY-MM-DDTHH:MM:SS.mmmZ` for a time in ms since the epoch.
    static func appendISO8601(milliseconds: Int, to bytes: inout [UInt8]) {
        let days = milliseconds.floorDivided(by: 86_400_000)
        let msOfDay = milliseconds - days * 86_400_000
        let (year, month, day) = CivilCalendar.civil(fromDays: days)
        // Years 0–9999 (every time the archiver and `--json` print): the 24
        // bytes written into one fixed buffer and appended once (the history
        // line encoder calls this 4–5 times per record).
        if (0...9999).contains(year) {
            var text: (UInt64, UInt64, UInt64) = (0, 0, 0)
            withUnsafeMutableBytes(of: &text) { out in
                func put(_ value: Int, at start: Int, count: Int) {
                    var rest = value
                    var index = start + count
                    while index > start {
                        index -= 1
                        out[index] = UInt8(truncatingIfNeeded: 48 + rest % 10)
                        rest /= 10
                    }
                }
                put(year, at: 0, count: 4)
                out[4] = UInt8(ascii: "-")
                put(month, at: 5, count: 2)
                out[7] = UInt8(ascii: "-")
                put(day, at: 8, count: 2)
                out[10] = UInt8(ascii: "T")
                put(msOfDay / 3_600_000, at: 11, count: 2)
                out[13] = UInt8(ascii: ":")
                put(msOfDay / 60_000 % 60, at: 14, count: 2)
                out[16] = UInt8(ascii: ":")
                put(msOfDay / 1000 % 60, at: 17, count: 2)
                out[19] = UInt8(ascii: ".")
                put(msOfDay % 1000, at: 20, count: 3)
                out[23] = UInt8(ascii: "Z")
                bytes.append(contentsOf: out)
            }
            return
        }
        func digits(_ value: Int, _ count: Int) {
            var divisor = 1
            for _ in 1..<count { divisor *= 10 }
            var rest = value
            while divisor > 0 {
                bytes.append(UInt8(48 + rest / divisor))
                rest %= divisor
                divisor /= 10
            }
        }
        digits(year, 4)
        bytes.append(UInt8(ascii: "-"))
        digits(month, 2)
        bytes.append(UInt8(ascii: "-"))
        digits(day, 2)
        bytes.append(UInt8(ascii: "T"))
        digits(msOfDay / 3_600_000, 2)
        bytes.append(UInt8(ascii: ":"))
        digits(msOfDay / 60_000 % 60, 2)
        bytes.append(UInt8(ascii: ":"))
        digits(msOfDay / 1000 % 60, 2)
        bytes.append(UInt8(ascii: "."))
        digits(msOfDay % 1000, 3)
        bytes.append(UInt8(ascii: "Z"))
    }

    /// Parses ISO 8601 with or without fractional seconds, to the nearest millisecond.
    public init?(iso8601Milliseconds text: String) {
        let parsed: Date
        if let value = try? Date.ISO8601FormatStyle(includingFractionalSeconds: true).parse(text) {
            parsed = value
        } else if let value = try? Date.ISO8601FormatStyle().parse(text) {
            parsed = value
        } else {
            return nil
        }
        self.init(milliseconds: Int((parsed.timeIntervalSince1970 * 1000).rounded()))
    }
}

extension Int {
    func floorDivided(by divisor: Int) -> Int {
        let quotient = self / divisor
        return (self % divisor < 0) ? quotient - 1 : quotient
    }

    func floorModulo(_ divisor: Int) -> Int {
        let remainder = self % divisor
        return remainder < 0 ? remainder + divisor : remainder
    }
}

extension Duration {
    /// Whole milliseconds, the unit the scripts take.
    var wholeMilliseconds: Int {
        let (seconds, attoseconds) = components
        return Int(seconds) * 1000 + Int(attoseconds / 1_000_000_000_000_000)
    }

    /// Whole nanoseconds, for timers.
    var nanoseconds: Int64 {
        let (seconds, attoseconds) = components
        return seconds * 1_000_000_000 + attoseconds / 1_000_000_000
    }
}
