import ArgumentParser
import Conveyor
import Foundation

/// One line of `conveyor schedule --from FILE`: a JSON object with the
/// fields the `schedule` flags have, checked as the scheduler checks them so
/// that a bad line is reported by number before anything is sent.
struct JobLine: Decodable {
    var type: String
    var user: Int?
    var userId: Int?
    var due: String?
    var autoRetry: Bool?
    var retryDelay: Int?
    var maxAttempts: Int?
    var backoffMaxDelay: Int?
    var removeDelay: Int?

    /// Every field a line may have; anything else is refused (a misspelt
    /// `retrydelay` must not be dropped silently).
    static let fields: Set<String> = [
        "type", "user", "userId", "data", "due", "autoRetry", "retryDelay", "maxAttempts", "backoffMaxDelay", "removeDelay",
    ]

    /// The scheduler's own bounds (`JobScheduler`): Lua numbers are doubles.
    static let maxUserId = 9_007_199_254_740_991
    static let maxDelay = 100 * 365 * 86_400_000

    /// Parses and checks one line against `configuration` (known types,
    /// payload size, the registry's input check).
    /// - Throws: ``CLIError`` with a message that does not repeat the data.
    static func config(_ line: ArraySlice<UInt8>, configuration: JobScheduler.Configuration) throws -> UntypedJobConfig {
        let data = Data(line)
        guard let value = try? JSONDecoder().decode(JSONValue.self, from: data) else {
            throw CLIError("not valid JSON")
        }
        guard case .object(let members) = value else { throw CLIError("expected a JSON object") }
        let unknown = Set(members.keys).subtracting(Self.fields)
        guard unknown.isEmpty else {
            throw CLIError("unknown field \(unknown.sorted().map { "\"\($0)\"" }.joined(separator: ", ")); fields: \(fields.sorted().joined(separator: ", "))")
        }
        let decoded: JobLine
        do {
            decoded = try JSONDecoder().decode(JobLine.self, from: data)
        } catch let DecodingError.keyNotFound(key, _) {
            throw CLIError("missing field \"\(key.stringValue)\"")
        } catch let DecodingError.typeMismatch(type, context), let DecodingError.valueNotFound(type, context) {
            let name = context.codingPath.first?.stringValue ?? "?"
            throw CLIError("field \"\(name)\" must be \(type == Bool.self ? "true or false" : type == String.self ? "a string" : "an integer")")
        } catch let DecodingError.dataCorrupted(context) {
            throw CLIError("field \"\(context.codingPath.first?.stringValue ?? "?")\" must be an integer")
        }
        return try decoded.config(dataJSON: RawJSONMembers.rawValue(of: "data", in: line), configuration: configuration)
    }

    func config(dataJSON: String?, configuration: JobScheduler.Configuration) throws -> UntypedJobConfig {
        if let known = configuration.knownJobTypes, !known.contains(type) {
            throw CLIError("unknown job type \"\(type)\"; known types: \(known.sorted().joined(separator: ", "))")
        }
        guard !type.isEmpty, !type.utf8.contains(UInt8(ascii: ":")), type.utf8.count <= 200 else {
            throw CLIError("job type \"\(type)\" must be 1–200 bytes without ':'")
        }
        if user != nil, userId != nil { throw CLIError("give \"user\" or \"userId\", not both") }
        guard let user = user ?? userId else { throw CLIError("missing field \"user\" (0 for system jobs)") }
        guard (0...Self.maxUserId).contains(user) else { throw CLIError("\"user\" must be between 0 (system) and 2^53 − 1, got \(user)") }
        for (name, value) in [("retryDelay", retryDelay), ("removeDelay", removeDelay)] {
            if let value, !(0...Self.maxDelay).contains(value) {
                throw CLIError("\"\(name)\" must be between 0 and 100 years in ms, got \(value)")
            }
        }
        if let maxAttempts, maxAttempts < 1 { throw CLIError("\"maxAttempts\" must be at least 1, got \(maxAttempts)") }
        if let backoffMaxDelay, !(1...Self.maxDelay).contains(backoffMaxDelay) {
            throw CLIError("\"backoffMaxDelay\" must be between 1 ms and 100 years, got \(backoffMaxDelay)")
        }
        var config = UntypedJobConfig(
            type: type, userId: user, dataJSON: dataJSON, autoRescheduleOnFailure: autoRetry ?? false,
            autoRescheduleOnFailureDelay: retryDelay ?? 0, autoRescheduleOnFailureMaxAttempts: maxAttempts,
            autoRescheduleOnFailureBackoff: backoffMaxDelay.map { .exponential(maxDelay: .milliseconds($0)) } ?? .fixed,
            removeDelay: removeDelay ?? 0
        )
        if let due {
            // An offset counts from Redis's clock, as with --due.
            if let delay = try? parseDelay(due) {
                guard (0...Self.maxDelay).contains(delay.wholeMilliseconds) else { throw CLIError("\"due\" \"\(due)\" is more than 100 years ahead") }
                config.delay = delay
            } else if !due.hasPrefix("+"), let date = Date(iso8601Milliseconds: due) {
                guard date.timeIntervalSince1970 >= 0, date.timeIntervalSince1970 < 253_402_300_800 else {
                    throw CLIError("\"due\" \"\(due)\" is not between 1970 and 9999")
                }
                config.due = date
            } else {
                throw CLIError("\"due\" \"\(due)\": expected ISO 8601 (2026-12-01T09:00:00Z) or an offset such as +10s, +5m, +2h, +1d")
            }
        }
        if let dataJSON, dataJSON.utf8.count > configuration.maxPayloadBytes {
            throw CLIError("\"data\" is \(dataJSON.utf8.count) bytes; the limit is \(configuration.maxPayloadBytes)")
        }
        if let check = configuration.inputCheck {
            do {
                try check(type, dataJSON)
            } catch {
                throw CLIError(CLIExit.line(error))
            }
        }
        return config
    }
}

extension Duration {
    fileprivate var wholeMilliseconds: Int {
        let (seconds, attoseconds) = components
        return Int(seconds) * 1000 + Int(attoseconds / 1_000_000_000_000_000)
    }
}

/// The text of a top-level member of a JSON object exactly as written, so
/// that `data` is stored as the line has it (re-encoding would change numbers
/// such as 12345678901234567890). Only for text already parsed as a JSON object.
enum RawJSONMembers {
    /// The raw value of `key`, or `nil` when absent or `null` (the last one
    /// wins, as for the decoder).
    static func rawValue(of key: String, in bytes: ArraySlice<UInt8>) -> String? {
        var scanner = Scanner(bytes: bytes)
        var found: String?
        scanner.skipWhitespace()
        guard scanner.take(UInt8(ascii: "{")) else { return nil }
        while true {
            scanner.skipWhitespace()
            guard let keyRange = scanner.string() else { return found }
            scanner.skipWhitespace()
            _ = scanner.take(UInt8(ascii: ":"))
            scanner.skipWhitespace()
            let valueStart = scanner.index
            scanner.value()
            if decodedKey(bytes[keyRange]) == key {
                let text = String(decoding: bytes[valueStart..<scanner.index], as: UTF8.self)
                found = text == "null" ? nil : text
            }
            scanner.skipWhitespace()
            guard scanner.take(UInt8(ascii: ",")) else { return found }
        }
    }

    private static func decodedKey(_ quoted: ArraySlice<UInt8>) -> String? {
        guard quoted.contains(UInt8(ascii: "\\")) else { return String(decoding: quoted.dropFirst().dropLast(), as: UTF8.self) }
        return try? JSONDecoder().decode(String.self, from: Data(quoted))
    }

    private struct Scanner {
        let bytes: ArraySlice<UInt8>
        var index: Int

        init(bytes: ArraySlice<UInt8>) {
            self.bytes = bytes
            self.index = bytes.startIndex
        }

        mutating func skipWhitespace() {
            while index < bytes.endIndex, [0x20, 0x09, 0x0A, 0x0D].contains(bytes[index]) { index += 1 }
        }

        mutating func take(_ byte: UInt8) -> Bool {
            guard index < bytes.endIndex, bytes[index] == byte else { return false }
            index += 1
            return true
        }

        /// Skips a string; returns its range with the quotes.
        mutating func string() -> Range<Int>? {
            let start = index
            guard take(UInt8(ascii: "\"")) else { return nil }
            while index < bytes.endIndex {
                let byte = bytes[index]
                index += byte == UInt8(ascii: "\\") ? 2 : 1
                if byte == UInt8(ascii: "\"") { return start..<index }
            }
            return start..<index
        }

        /// Skips one value of any kind.
        mutating func value() {
            guard index < bytes.endIndex else { return }
            switch bytes[index] {
            case UInt8(ascii: "\""):
                _ = string()
            case UInt8(ascii: "{"), UInt8(ascii: "["):
                var depth = 0
                while index < bytes.endIndex {
                    switch bytes[index] {
                    case UInt8(ascii: "\""):
                        _ = string()
                        continue
                    case UInt8(ascii: "{"), UInt8(ascii: "["): depth += 1
                    case UInt8(ascii: "}"), UInt8(ascii: "]"): depth -= 1
                    default: break
                    }
                    index += 1
                    if depth == 0 { return }
                }
            default:
                while index < bytes.endIndex, ![UInt8(ascii: ","), UInt8(ascii: "}"), UInt8(ascii: "]"), 0x20, 0x09, 0x0A, 0x0D].contains(bytes[index]) {
                    index += 1
                }
            }
        }
    }
}
