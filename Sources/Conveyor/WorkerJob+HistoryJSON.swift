import Foundation

extension WorkerJob {
    /// Appends this record as one compact JSON object with sorted keys, the
    /// same fields and values as its `Codable` encoding, plus `extra` members
    /// (already-encoded JSON values). Hand-written because the history log
    /// writes one per archived job and `JSONEncoder` cost ~40 µs each;
    /// `data` and `result` are copied in as stored (they are JSON already).
    func appendJSON(to bytes: inout [UInt8], extra: [(key: String, json: String)] = []) {
        func string(_ value: String) { JSONText.appendString(value, to: &bytes) }
        func text(_ value: String?) {
            if let value { string(value) } else { bytes.append(contentsOf: "null".utf8) }
        }
        func date(_ value: Date?) {
            guard let value else { return bytes.append(contentsOf: "null".utf8) }
            bytes.append(UInt8(ascii: "\""))
            Date.appendISO8601(milliseconds: value.milliseconds, to: &bytes)
            bytes.append(UInt8(ascii: "\""))
        }
        // Data is stored as the scheduler was given it, so it may hold line
        // breaks; in valid JSON they can only be whitespace between tokens
        // (inside strings they are escaped), and a space keeps the record one line.
        func raw(_ json: String?) {
            let utf8 = (json ?? "null").utf8
            if utf8.contains(where: { $0 == 0x0A || $0 == 0x0D }) {
                bytes.append(contentsOf: utf8.map { $0 == 0x0A || $0 == 0x0D ? UInt8(ascii: " ") : $0 })
            } else {
                bytes.append(contentsOf: utf8)
            }
        }
        func bool(_ value: Bool?) { raw(value.map { $0 ? "true" : "false" }) }
        func int(_ value: Int?) {
            guard let value else { return raw(nil) }
            if value < 0 { bytes.append(UInt8(ascii: "-")) }
            var magnitude = value.magnitude
            var digits: (UInt8, UInt8, UInt8, UInt8, UInt8, UInt8, UInt8, UInt8, UInt8, UInt8,
                         UInt8, UInt8, UInt8, UInt8, UInt8, UInt8, UInt8, UInt8, UInt8, UInt8) =
                (0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0)
            withUnsafeMutableBytes(of: &digits) { buffer in
                var start = buffer.count
                repeat {
                    start -= 1
                    buffer[start] = UInt8(ascii: "0") + UInt8(magnitude % 10)
                    magnitude /= 10
                } while magnitude > 0
                bytes.append(contentsOf: buffer[start...])
            }
        }
        // Members in key order, as JSONEncoder's .sortedKeys writes them;
        // `extra` members are merged in at their place.
        let extras = extra.sorted { $0.key < $1.key }
        var nextExtra = 0
        var first = true
        func extrasBefore(_ name: String?) {
            while nextExtra < extras.count, name.map({ extras[nextExtra].key < $0 }) ?? true {
                member(extras[nextExtra].key)
                raw(extras[nextExtra].json)
                nextExtra += 1
            }
        }
        func key(_ name: String) {
            extrasBefore(name)
            member(name)
        }
        func member(_ name: String) {
            if !first { bytes.append(UInt8(ascii: ",")) }
            first = false
            string(name)
            bytes.append(UInt8(ascii: ":"))
        }
        bytes.append(UInt8(ascii: "{"))
        key("attempt"); int(attempt)
        key("autoRescheduleOnFailure"); bool(autoRescheduleOnFailure)
        key("autoRescheduleOnFailureDelay"); int(autoRescheduleOnFailureDelay)
        if let maxAttempts = autoRescheduleOnFailureMaxAttempts { key("autoRescheduleOnFailureMaxAttempts"); int(maxAttempts) }
        if let maxDelay = autoRescheduleOnFailureBackoff.maxDelayMilliseconds { key("autoRescheduleOnFailureMaxDelay"); int(maxDelay) }
        key("createdAt"); date(createdAt)
        key("cronSchedule"); text(cronSchedule)
        key("cronTimeZone"); text(cronTimeZone)
        key("data"); raw(dataJSON)
        key("due"); date(due)
        if let failedRetention { key("failedRetention"); int(failedRetention) }
        key("finished"); date(finished)
        if let followUpSupersededBy { key("followUpSupersededBy"); int(followUpSupersededBy) }
        key("id"); int(id)
        key("removeAt"); date(removeAt)
        key("removeDelay"); int(removeDelay)
        key("rescheduledFromJob"); int(rescheduledFromJob)
        key("result"); raw(resultJSON)
        key("started"); date(started)
        key("state"); string(state.rawValue)
        key("success"); bool(success)
        key("type"); string(type)
        key("updatedAt"); date(updatedAt)
        key("userId"); int(userId)
        key("workerId"); text(workerId)
        extrasBefore(nil)
        bytes.append(UInt8(ascii: "}"))
    }
}
