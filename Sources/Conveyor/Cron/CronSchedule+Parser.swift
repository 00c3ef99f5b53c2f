// Parsing an expression into the bit sets of `CronSchedule` (the syntax is on `CronSchedule`).
extension CronSchedule {
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
                    throw expressionError(
                        "unknown macro \"\(text)\"; expected one of "
                            + "@yearly, @annually, @monthly, @weekly, @daily, @midnight, @hourly")
                }
                text = expansion
            }
            let parts = text.split(whereSeparator: \.isWhitespace)
            guard parts.count == 5 || parts.count == 6 else {
                throw expressionError(
                    "expected 5 fields (minute hour day-of-month month day-of-week) "
                        + "or 6 with a leading seconds field, got \(parts.count)")
            }
            let fields: [Field] =
                parts.count == 6
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
