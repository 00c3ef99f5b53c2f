// The tokenizer under SwiftDeclarationScanner: Swift source as words and punctuation,
// without comments and literals, each token with its line and column.

/// A token of Swift source outside comments and string literals.
struct SourceToken: Equatable, Sendable {
    enum Kind: Equatable, Sendable {
        /// A keyword, identifier or number; backticked names lose their backticks.
        case word(String)
        case punctuation(UInt8)
    }

    var kind: Kind
    var line: Int
    var column: Int

    func isPunctuation(_ character: Unicode.Scalar) -> Bool {
        kind == .punctuation(UInt8(character.value))
    }

    var word: String? {
        if case .word(let word) = kind { word } else { nil }
    }
}

/// Splits Swift source into words and punctuation, dropping whitespace, comments
/// (line, block, nested block), string literals (single-line, multi-line, raw,
/// with interpolations) and `#/.../#` regex literals.
///
/// Works on UTF-8 bytes: every byte that matters to it is ASCII, and bytes of
/// non-ASCII characters only ever continue a word.
struct SwiftLexer {
    private let bytes: [UInt8]
    private var index = 0
    private var line = 1
    private var lineStart = 0
    private var tokens: [SourceToken] = []

    private init(_ source: String) {
        bytes = Array(source.utf8)
    }

    /// The tokens of `source` in order.
    static func tokenize(_ source: String) -> [SourceToken] {
        var lexer = SwiftLexer(source)
        lexer.scanTokens()
        return lexer.tokens
    }

    private static let newline = UInt8(ascii: "\n")
    private static let quote = UInt8(ascii: "\"")
    private static let hash = UInt8(ascii: "#")
    private static let slash = UInt8(ascii: "/")
    private static let star = UInt8(ascii: "*")
    private static let backslash = UInt8(ascii: "\\")
    private static let backtick = UInt8(ascii: "`")

    private func byte(at offset: Int = 0) -> UInt8? {
        let position = index + offset
        return position < bytes.count ? bytes[position] : nil
    }

    private var column: Int { index - lineStart + 1 }

    private mutating func advance(_ count: Int = 1) {
        for _ in 0..<count where index < bytes.count {
            if bytes[index] == Self.newline {
                line += 1
                lineStart = index + 1
            }
            index += 1
        }
    }

    /// The number of `#` starting `offset` bytes ahead.
    private func hashCount(at offset: Int) -> Int {
        var count = 0
        while byte(at: offset + count) == Self.hash { count += 1 }
        return count
    }

    private static func isWordByte(_ byte: UInt8) -> Bool {
        switch byte {
        case UInt8(ascii: "a")...UInt8(ascii: "z"), UInt8(ascii: "A")...UInt8(ascii: "Z"),
            UInt8(ascii: "0")...UInt8(ascii: "9"), UInt8(ascii: "_"), UInt8(ascii: "$"), 0x80...:
            true
        default:
            false
        }
    }

    private mutating func scanTokens() {
        while let current = byte() {
            if current == Self.slash && byte(at: 1) == Self.slash {
                skipLineComment()
            } else if current == Self.slash && byte(at: 1) == Self.star {
                skipBlockComment()
            } else if current == Self.quote {
                skipString(hashes: 0)
            } else if current == Self.hash, skipRawLiteralIfAny() {
                continue
            } else if current == Self.backtick {
                scanBacktickedWord()
            } else if Self.isWordByte(current) {
                let start = index
                let startColumn = column
                while let next = byte(), Self.isWordByte(next) { advance() }
                let word = String(decoding: bytes[start..<index], as: UTF8.self)
                tokens.append(SourceToken(kind: .word(word), line: line, column: startColumn))
            } else if current == UInt8(ascii: " ") || current == UInt8(ascii: "\t")
                || current == Self.newline || current == UInt8(ascii: "\r")
            {
                advance()
            } else {
                tokens.append(SourceToken(kind: .punctuation(current), line: line, column: column))
                advance()
            }
        }
    }

    private mutating func skipLineComment() {
        while let current = byte(), current != Self.newline { advance() }
    }

    /// Skips a block comment; Swift block comments nest.
    private mutating func skipBlockComment() {
        var depth = 0
        while byte() != nil {
            if byte() == Self.slash && byte(at: 1) == Self.star {
                depth += 1
                advance(2)
            } else if byte() == Self.star && byte(at: 1) == Self.slash {
                depth -= 1
                advance(2)
                if depth == 0 { return }
            } else {
                advance()
            }
        }
    }

    /// At a `#`: skips a raw string (`#"..."#`) or extended regex (`#/.../#`) and
    /// returns true, or returns false for any other `#` (`#if`, `#available`).
    private mutating func skipRawLiteralIfAny() -> Bool {
        let hashes = hashCount(at: 0)
        switch byte(at: hashes) {
        case Self.quote:
            advance(hashes)
            skipString(hashes: hashes)
            return true
        case Self.slash:
            advance(hashes + 1)
            while byte() != nil {
                if byte() == Self.slash && hashCount(at: 1) >= hashes {
                    advance(1 + hashes)
                    return true
                }
                advance(byte() == Self.backslash ? 2 : 1)
            }
            return true
        default:
            return false
        }
    }

    /// Skips a string literal whose opening quote is at the current byte, after
    /// `hashes` raw-string delimiters.
    private mutating func skipString(hashes: Int) {
        let isMultiline = byte(at: 1) == Self.quote && byte(at: 2) == Self.quote
        advance(isMultiline ? 3 : 1)
        while let current = byte() {
            if current == Self.backslash && hashCount(at: 1) >= hashes {
                advance(1 + hashes)
                if byte() == UInt8(ascii: "(") {
                    advance()
                    skipInterpolation()
                } else {
                    advance()  // the escaped character, or the newline of a line continuation
                }
            } else if current == Self.quote {
                let closingQuotes = isMultiline ? 3 : 1
                if !isMultiline || (byte(at: 1) == Self.quote && byte(at: 2) == Self.quote),
                    hashCount(at: closingQuotes) >= hashes
                {
                    advance(closingQuotes + hashes)
                    return
                }
                advance()
            } else if current == Self.newline && !isMultiline {
                return  // unterminated: let the compiler report it
            } else {
                advance()
            }
        }
    }

    /// Skips the expression of a `\( ... )` interpolation, after its `(`; it may
    /// itself contain parentheses, strings and comments.
    private mutating func skipInterpolation() {
        var depth = 1
        while let current = byte() {
            if current == UInt8(ascii: "(") {
                depth += 1
                advance()
            } else if current == UInt8(ascii: ")") {
                depth -= 1
                advance()
                if depth == 0 { return }
            } else if current == Self.quote {
                skipString(hashes: 0)
            } else if current == Self.hash, skipRawLiteralIfAny() {
                continue
            } else if current == Self.slash && byte(at: 1) == Self.star {
                skipBlockComment()
            } else if current == Self.slash && byte(at: 1) == Self.slash {
                skipLineComment()
            } else {
                advance()
            }
        }
    }

    /// Reads `` `name` `` as the word `name`.
    private mutating func scanBacktickedWord() {
        let startColumn = column
        advance()
        let start = index
        while let current = byte(), current != Self.backtick, current != Self.newline { advance() }
        let word = String(decoding: bytes[start..<index], as: UTF8.self)
        if byte() == Self.backtick { advance() }
        tokens.append(SourceToken(kind: .word(word), line: line, column: startColumn))
    }
}
