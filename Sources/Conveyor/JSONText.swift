/// JSON string escaping for the records written by hand (the history log's
/// job records and raw records, `--json` output), shared so that every writer
/// escapes alike.
enum JSONText {
    /// Appends `value` as a JSON string: `"` and `\` escaped, control
    /// characters as `\u00XX`, everything else as its UTF-8 bytes.
    static func appendString(_ value: String, to bytes: inout [UInt8]) {
        bytes.append(UInt8(ascii: "\""))
        // Fast path: a native string's contiguous UTF-8 with nothing to escape.
        let copied =
            value.utf8.withContiguousStorageIfAvailable { utf8 -> Bool in
                guard !utf8.contains(where: needsEscape) else { return false }
                bytes.append(contentsOf: utf8)
                return true
            } ?? false
        if !copied {
            for byte in value.utf8 {
                switch byte {
                case UInt8(ascii: "\""), UInt8(ascii: "\\"): bytes.append(contentsOf: [92, byte])
                case 0..<0x20:
                    let hex = Array("0123456789abcdef".utf8)
                    bytes.append(contentsOf: [92, UInt8(ascii: "u"), 48, 48, hex[Int(byte >> 4)], hex[Int(byte & 15)]])
                default: bytes.append(byte)
                }
            }
        }
        bytes.append(UInt8(ascii: "\""))
    }

    private static func needsEscape(_ byte: UInt8) -> Bool {
        byte < 0x20 || byte == UInt8(ascii: "\"") || byte == UInt8(ascii: "\\")
    }
}
