import Foundation

/// Fields of a query string or an `application/x-www-form-urlencoded` body
/// (`+` is a space, `%XX` a byte); the first value of a repeated name wins.
struct FormFields: Sendable {
    private(set) var values: [String: String] = [:]

    init(_ text: String?) {
        guard let text else { return }
        for pair in text.split(separator: "&", omittingEmptySubsequences: true) {
            let parts = pair.split(separator: "=", maxSplits: 1, omittingEmptySubsequences: false)
            let name = Self.decode(parts[0])
            guard values[name] == nil else { continue }
            values[name] = parts.count > 1 ? Self.decode(parts[1]) : ""
        }
    }

    subscript(_ name: String) -> String? {
        guard let value = values[name]?.trimmingWhitespace, !value.isEmpty else { return nil }
        return value
    }

    static func decode(_ text: Substring) -> String {
        let spaced = text.replacingOccurrences(of: "+", with: " ")
        return spaced.removingPercentEncoding ?? spaced
    }
}

extension String {
    var trimmingWhitespace: String {
        var scalars = Substring(self)
        while let first = scalars.first, first.isWhitespace { scalars.removeFirst() }
        while let last = scalars.last, last.isWhitespace { scalars.removeLast() }
        return String(scalars)
    }
}
