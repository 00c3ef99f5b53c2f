/// The top-level fields of one history record that queries filter and sort
/// on, found by one pass over the line's bytes, without decoding the JSON.
///
/// A full `JSONDecoder` decode costs far more than reading the line; a query
/// that must look at every record (a time range, an export) reads only these
/// fields, and decodes just the records it returns. Nested values (`data`,
/// `result`) are skipped as a whole, so a payload can never be mistaken for a
/// top-level field. Ranges are byte offsets into the buffer that was parsed;
/// string ranges hold the string's content, still JSON-escaped.
struct HistoryLineFields {
    var id: Int?
    var userId: Int?
    var rescheduledFromJob: Int?
    /// `nil` for `null` or a missing field.
    var success: Bool?
    var type: Range<Int>?
    var finished: Range<Int>?
    var archivedAt: Range<Int>?
    var createdAt: Range<Int>?

    /// Parses the object in `buffer[start..<end]`; `nil` when it is not one.
    static func parse(_ buffer: UnsafeBufferPointer<UInt8>, _ start: Int, _ end: Int) -> HistoryLineFields? {
        var fields = HistoryLineFields()
        var index = start
        @inline(__always) func skipSpace() {
            while index < end, buffer[index] == 0x20 || buffer[index] == 0x09 || buffer[index] == 0x0D { index += 1 }
        }
        /// Moves past a string whose opening quote is at `index`; returns its content range.
        @inline(__always) func string() -> Range<Int>? {
            let contentStart = index + 1
            var cursor = contentStart
            while cursor < end {
                let byte = buffer[cursor]
                if byte == UInt8(ascii: "\"") {
                    index = cursor + 1
                    return contentStart..<cursor
                }
                cursor += byte == UInt8(ascii: "\\") ? 2 : 1
            }
            return nil
        }
        /// Moves past an object or array (strings inside may hold brackets).
        func nested() -> Bool {
            var depth = 0
            while index < end {
                let byte = buffer[index]
                switch byte {
                case UInt8(ascii: "\""):
                    guard string() != nil else { return false }
                    continue
                case UInt8(ascii: "{"), UInt8(ascii: "["): depth += 1
                case UInt8(ascii: "}"), UInt8(ascii: "]"):
                    depth -= 1
                    if depth == 0 {
                        index += 1
                        return true
                    }
                default: break
                }
                index += 1
            }
            return false
        }
        func integer(_ range: Range<Int>) -> Int? {
            var cursor = range.lowerBound
            var negative = false
            if cursor < range.upperBound, buffer[cursor] == UInt8(ascii: "-") {
                negative = true
                cursor += 1
            }
            guard cursor < range.upperBound, range.upperBound - cursor <= 18 else { return nil }
            var value = 0
            while cursor < range.upperBound {
                let digit = Int(buffer[cursor]) - 48
                guard digit >= 0 && digit <= 9 else { return nil }
                value = value * 10 + digit
                cursor += 1
            }
            return negative ? -value : value
        }
        func keyIs(_ key: Range<Int>, _ name: StaticString) -> Bool {
            guard key.count == name.utf8CodeUnitCount else { return false }
            let pointer = name.utf8Start
            for offset in 0..<key.count where buffer[key.lowerBound + offset] != pointer[offset] { return false }
            return true
        }

        skipSpace()
        guard index < end, buffer[index] == UInt8(ascii: "{") else { return nil }
        index += 1
        while true {
            skipSpace()
            guard index < end else { return nil }
            if buffer[index] == UInt8(ascii: "}") { return fields }
            guard buffer[index] == UInt8(ascii: "\""), let key = string() else { return nil }
            skipSpace()
            guard index < end, buffer[index] == UInt8(ascii: ":") else { return nil }
            index += 1
            skipSpace()
            guard index < end else { return nil }
            let first = buffer[index]
            if first == UInt8(ascii: "\"") {
                guard let value = string() else { return nil }
                switch key.count {
                case 4 where keyIs(key, "type"): fields.type = value
                case 8 where keyIs(key, "finished"): fields.finished = value
                case 10 where keyIs(key, "archivedAt"): fields.archivedAt = value
                case 9 where keyIs(key, "createdAt"): fields.createdAt = value
                default: break
                }
            } else if first == UInt8(ascii: "{") || first == UInt8(ascii: "[") {
                guard nested() else { return nil }
            } else {
                let valueStart = index
                while index < end {
                    let byte = buffer[index]
                    if byte == UInt8(ascii: ",") || byte == UInt8(ascii: "}") || byte == 0x20 { break }
                    index += 1
                }
                let value = valueStart..<index
                switch key.count {
                case 2 where keyIs(key, "id"): fields.id = integer(value)
                case 6 where keyIs(key, "userId"): fields.userId = integer(value)
                case 7 where keyIs(key, "success"):
                    fields.success = value.count == 4 && buffer[valueStart] == UInt8(ascii: "t") ? true
                        : value.count == 5 && buffer[valueStart] == UInt8(ascii: "f") ? false : nil
                case 18 where keyIs(key, "rescheduledFromJob"): fields.rescheduledFromJob = integer(value)
                default: break
                }
            }
            skipSpace()
            guard index < end else { return nil }
            if buffer[index] == UInt8(ascii: ",") {
                index += 1
            } else if buffer[index] != UInt8(ascii: "}") {
                return nil
            }
        }
    }
}

extension UnsafeBufferPointer<UInt8> {
    /// Compares `self[range]` with `other` as bytes (the order of ISO 8601 UTC times of one width).
    func compare(_ range: Range<Int>, _ other: [UInt8]) -> Int {
        let count = Swift.min(range.count, other.count)
        for offset in 0..<count {
            let a = self[range.lowerBound + offset]
            let b = other[offset]
            if a != b { return a < b ? -1 : 1 }
        }
        return range.count == other.count ? 0 : (range.count < other.count ? -1 : 1)
    }

    func string(_ range: Range<Int>) -> String {
        String(decoding: UnsafeBufferPointer(rebasing: self[range]), as: UTF8.self)
    }

    func bytes(_ range: Range<Int>) -> [UInt8] { Array(self[range]) }
}
