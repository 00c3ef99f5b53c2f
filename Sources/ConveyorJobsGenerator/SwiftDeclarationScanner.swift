// A deliberately small Swift scanner: just enough to find the top-level type
// declarations and extensions of a file, and what they conform to.
// swift-syntax would be exact but takes minutes to build; job files are plain
// enough that skipping comments and literals and counting braces suffices.

/// A top-level `struct`, `class`, `enum`, `actor` or `extension` found in a source file.
struct TypeDeclaration: Equatable, Sendable {
    enum Kind: String, Sendable {
        case `struct`, `class`, `enum`, `actor`, `extension`
    }

    var kind: Kind
    /// The declared name; for an extension, the extended type as written (`A.B`).
    var name: String
    /// Whether the declaration has generic parameters (`struct Foo<T>`).
    var isGeneric: Bool = false
    /// The access and other modifiers written before the keyword (`public`, `final`, ...).
    var modifiers: [String] = []
    /// The inheritance clause, one entry per type, attributes such as `@unchecked` dropped.
    var inheritedTypes: [String] = []
    var line: Int = 1
    var column: Int = 1

    /// Whether the inheritance clause names Conveyor's `Job` protocol.
    var conformsToJob: Bool {
        inheritedTypes.contains { $0 == "Job" || $0 == "Conveyor.Job" }
    }

    /// Whether other files of the module cannot see the type.
    var isFilePrivate: Bool {
        modifiers.contains("private") || modifiers.contains("fileprivate")
    }
}

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

/// Finds top-level type declarations in Swift source without parsing it.
enum SwiftDeclarationScanner {
    private static let typeKeywords: Set<String> = ["struct", "class", "enum", "actor", "extension"]
    private static let modifierWords: Set<String> = [
        "public", "package", "internal", "fileprivate", "private", "open",
        "final", "indirect", "nonisolated",
    ]

    /// The top-level type declarations and extensions of `source`, in source order.
    ///
    /// Declarations nested in braces or parentheses are skipped: a nested `SendEmail`
    /// is `Outer.SendEmail`, which the generated file could not name as `SendEmail`.
    static func topLevelDeclarations(in source: String) -> [TypeDeclaration] {
        let tokens = SwiftLexer.tokenize(source)
        var declarations: [TypeDeclaration] = []
        var braceDepth = 0
        var parenDepth = 0
        for index in tokens.indices {
            let token = tokens[index]
            switch token.kind {
            case .punctuation(UInt8(ascii: "{")): braceDepth += 1
            case .punctuation(UInt8(ascii: "}")): braceDepth = max(0, braceDepth - 1)
            case .punctuation(UInt8(ascii: "(")), .punctuation(UInt8(ascii: "[")): parenDepth += 1
            case .punctuation(UInt8(ascii: ")")), .punctuation(UInt8(ascii: "]")): parenDepth = max(0, parenDepth - 1)
            case .word(let word) where braceDepth == 0 && parenDepth == 0 && typeKeywords.contains(word):
                if let declaration = declaration(at: index, in: tokens) {
                    declarations.append(declaration)
                }
            default:
                break
            }
        }
        return declarations
    }

    /// Reads the declaration whose keyword is `tokens[start]`, or nil if the keyword
    /// is used otherwise (`import struct M.T`, `x.class`, `protocol P: class`, `let actor = ...`).
    private static func declaration(at start: Int, in tokens: [SourceToken]) -> TypeDeclaration? {
        guard let keyword = tokens[start].word, let kind = TypeDeclaration.Kind(rawValue: keyword) else { return nil }
        if start > 0 {
            let previous = tokens[start - 1]
            if previous.isPunctuation(".") || previous.word == "import" { return nil }
        }
        var index = start + 1
        guard index < tokens.count, var name = tokens[index].word else { return nil }
        index += 1
        // `extension Module.Type` names a qualified type.
        while kind == .extension, index + 1 < tokens.count, tokens[index].isPunctuation("."),
            let part = tokens[index + 1].word
        {
            name += "." + part
            index += 2
        }

        var declaration = TypeDeclaration(
            kind: kind, name: name, line: tokens[start].line, column: tokens[start].column)
        var modifierIndex = start - 1
        while modifierIndex >= 0, let word = tokens[modifierIndex].word, modifierWords.contains(word) {
            declaration.modifiers.insert(word, at: 0)
            modifierIndex -= 1
        }
        if declaration.modifiers.first != nil {
            declaration.line = tokens[modifierIndex + 1].line
            declaration.column = tokens[modifierIndex + 1].column
        }

        if index < tokens.count, tokens[index].isPunctuation("<") {
            declaration.isGeneric = true
            index = indexAfterAngleBrackets(from: index, in: tokens)
        }
        if index < tokens.count, tokens[index].isPunctuation(":") {
            declaration.inheritedTypes = inheritanceClause(from: index + 1, in: tokens)
        }
        return declaration
    }

    /// The index after the `>` that closes the `<` at `start`.
    private static func indexAfterAngleBrackets(from start: Int, in tokens: [SourceToken]) -> Int {
        var depth = 0
        var index = start
        while index < tokens.count {
            if tokens[index].isPunctuation("<") {
                depth += 1
            } else if tokens[index].isPunctuation(">") {
                depth -= 1
                if depth == 0 { return index + 1 }
            } else if tokens[index].isPunctuation("{") {
                return index
            }
            index += 1
        }
        return index
    }

    /// The types of an inheritance clause starting at `start`, up to `{` or `where`.
    /// Splits on `,` and `&` (a composition `Job & Codable` conforms to both).
    private static func inheritanceClause(from start: Int, in tokens: [SourceToken]) -> [String] {
        var types: [String] = []
        var current: [SourceToken] = []
        var nesting = 0
        func flush() {
            if let type = typeName(of: current) { types.append(type) }
            current.removeAll()
        }
        var index = start
        while index < tokens.count {
            let token = tokens[index]
            if token.isPunctuation("{") || (nesting == 0 && token.word == "where") { break }
            if token.isPunctuation("<") || token.isPunctuation("(") {
                nesting += 1
            } else if token.isPunctuation(">") || token.isPunctuation(")") {
                nesting -= 1
            }
            if nesting == 0 && (token.isPunctuation(",") || token.isPunctuation("&")) {
                flush()
            } else {
                current.append(token)
            }
            index += 1
        }
        flush()
        return types
    }

    /// One inheritance entry as text, without attributes (`@unchecked Sendable` → `Sendable`);
    /// nil for suppressions such as `~Copyable`.
    private static func typeName(of tokens: [SourceToken]) -> String? {
        var text = ""
        var index = 0
        while index < tokens.count {
            let token = tokens[index]
            if token.isPunctuation("~") { return nil }
            if token.isPunctuation("@") {
                index += 2  // the attribute's name
                if index < tokens.count, tokens[index].isPunctuation("(") {
                    var depth = 0
                    repeat {
                        if tokens[index].isPunctuation("(") { depth += 1 }
                        if tokens[index].isPunctuation(")") { depth -= 1 }
                        index += 1
                    } while index < tokens.count && depth > 0
                }
                continue
            }
            switch token.kind {
            case .word(let word): text += word
            case .punctuation(let byte): text += String(UnicodeScalar(byte))
            }
            index += 1
        }
        return text.isEmpty ? nil : text
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
