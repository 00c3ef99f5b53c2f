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
