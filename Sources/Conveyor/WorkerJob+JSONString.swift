extension WorkerJob {
    /// The job as the CLI's `--json` prints it and the history log stores it:
    /// one JSON object with the API field names and sorted keys, dates as ISO
    /// 8601 UTC with milliseconds, `data` and `result` exactly as stored.
    ///
    /// The `Codable` encoding has the same fields and dates with any
    /// `JSONEncoder`, but passes `data` and `result` through ``JSONValue``,
    /// which can round numbers beyond 2^53 and `-0.0`; this text does not.
    ///
    /// ```swift
    /// if let job = try await scheduler.job(id: 42) { print(job.jsonString()) }
    /// ```
    /// - Parameter pretty: Indented over several lines, for people.
    public func jsonString(pretty: Bool = false) -> String {
        var bytes: [UInt8] = []
        appendJSON(to: &bytes)
        return String(decoding: pretty ? Self.indented(bytes) : bytes, as: UTF8.self)
    }

    /// Indents compact JSON two spaces per level, leaving every token as it is.
    static func indented(_ json: [UInt8]) -> [UInt8] {
        var out: [UInt8] = []
        out.reserveCapacity(json.count * 2)
        var depth = 0
        var inString = false
        var escaped = false
        func newline() {
            out.append(0x0A)
            out.append(contentsOf: repeatElement(UInt8(ascii: " "), count: depth * 2))
        }
        var index = 0
        while index < json.count {
            let byte = json[index]
            index += 1
            if inString {
                out.append(byte)
                if escaped {
                    escaped = false
                } else if byte == UInt8(ascii: "\\") {
                    escaped = true
                } else if byte == UInt8(ascii: "\"") {
                    inString = false
                }
                continue
            }
            switch byte {
            case UInt8(ascii: "\""):
                inString = true
                out.append(byte)
            case UInt8(ascii: "{"), UInt8(ascii: "["):
                let close = byte == UInt8(ascii: "{") ? UInt8(ascii: "}") : UInt8(ascii: "]")
                // An empty object or array stays `{}` / `[]`.
                var next = index
                while next < json.count, [0x20, 0x09, 0x0A, 0x0D].contains(json[next]) { next += 1 }
                if next < json.count, json[next] == close {
                    out += [byte, close]
                    index = next + 1
                } else {
                    out.append(byte)
                    depth += 1
                    newline()
                }
            case UInt8(ascii: "}"), UInt8(ascii: "]"):
                depth -= 1
                newline()
                out.append(byte)
            case UInt8(ascii: ","):
                out.append(byte)
                newline()
            case UInt8(ascii: ":"):
                out += [byte, UInt8(ascii: " ")]
            case 0x20, 0x09, 0x0A, 0x0D:
                continue  // whitespace between tokens is replaced by the layout
            default:
                out.append(byte)
            }
        }
        return out
    }
}
