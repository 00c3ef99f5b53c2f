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
        let label =
            switch field {
            case "dayOfMonth": "day-of-month field"
            case "dayOfWeek": "day-of-week field"
            case "timeZone": "time zone"
            default: "\(field) field"
            }
        return "\(prefix): \(label) \"\(fieldText)\": \(reason)"
    }
}
