import Foundation

/// One `*.swift` file from a target's `Jobs/` folder.
struct JobSourceFile: Sendable {
    /// The absolute path, used in diagnostics.
    var path: String
    var contents: String

    /// The file name without `.swift`, which must be the job's type name.
    var baseName: String {
        let name = URL(fileURLWithPath: path).lastPathComponent
        return name.hasSuffix(".swift") ? String(name.dropLast(".swift".count)) : name
    }

    /// The path as the user thinks of it: `Jobs/SendEmail.swift`.
    var displayPath: String {
        "Jobs/" + URL(fileURLWithPath: path).lastPathComponent
    }
}

/// A job type found in `Jobs/` and the name it is stored under in Redis.
struct JobBinding: Equatable, Sendable {
    var typeName: String
    var storedName: String
}

/// A message in the compiler's format, so that `swift build` and IDEs show it at the file.
struct GeneratorDiagnostic: Error, Equatable, Sendable, CustomStringConvertible {
    enum Severity: String, Sendable {
        case error, warning
    }

    var path: String
    /// Nil for a diagnostic about a folder rather than a place in a file.
    var line: Int?
    var column: Int?
    var severity: Severity
    var message: String

    var description: String {
        if let line, let column {
            "\(path):\(line):\(column): \(severity.rawValue): \(message)"
        } else {
            "\(path): \(severity.rawValue): \(message)"
        }
    }
}

/// What a run of the generator produced.
struct GenerationResult: Sendable {
    /// The contents of `WorkerJobs.generated.swift`; nil when there are errors.
    var source: String?
    var diagnostics: [GeneratorDiagnostic]
}

/// Turns the files of a target's `Jobs/` folder into `WorkerJobs.generated.swift`.
///
/// Each file `Jobs/SendEmail.swift` must define a top-level, non-generic, non-private
/// struct, class, enum or actor `SendEmail` that conforms to `Job`, either in its
/// declaration or in an `extension SendEmail: Job` in the same file.
enum JobsGenerator {
    /// The file the plugin declares as its output.
    static let outputFileName = "WorkerJobs.generated.swift"

    /// Names a job type cannot take: Swift reserves the first ones, and the rest would
    /// shadow the names the generated file relies on.
    static let reservedTypeNames: Set<String> = [
        "Self", "Any", "Type", "Protocol", "Job", "JobRegistry", "WorkerJobType",
    ]

    /// Reserved words that must be backticked to be used as an enum case name.
    private static let swiftKeywords: Set<String> = [
        "associatedtype", "borrowing", "class", "consuming", "deinit", "enum", "extension",
        "fileprivate", "func", "import", "init", "inout", "internal", "let", "open", "operator",
        "package", "private", "precedencegroup", "protocol", "public", "rethrows", "static",
        "struct", "subscript", "typealias", "var", "break", "case", "catch", "continue",
        "default", "defer", "do", "else", "fallthrough", "for", "guard", "if", "in", "repeat",
        "return", "throw", "switch", "where", "while", "as", "await", "false", "is", "nil",
        "self", "super", "throws", "true", "try",
    ]

    // MARK: Names

    /// The name stored in Redis for a job type: its lowerCamelCase form.
    ///
    /// The leading run of uppercase letters is lowercased, as the Swift API design
    /// guidelines do for acronyms, except that when the run is longer than one
    /// letter and a lowercase letter follows it, the run's last letter starts the
    /// next word and stays uppercase: `SendEmail` → `sendEmail`, `URLFetch` →
    /// `urlFetch`, `HTTP2Ping` → `http2Ping`, `URL` → `url`, `Noop` → `noop`.
    /// (So `IDsSync` → `iDsSync`: plurals of acronyms are not special-cased.)
    static func storedName(forTypeName typeName: String) -> String {
        let characters = Array(typeName)
        var runLength = 0
        while runLength < characters.count, characters[runLength].isASCII, characters[runLength].isUppercase {
            runLength += 1
        }
        var lowered = runLength
        if runLength > 1, runLength < characters.count, characters[runLength].isLowercase {
            lowered -= 1
        }
        return characters[..<lowered].map { $0.lowercased() }.joined() + String(characters[lowered...])
    }

    /// Why `name` cannot be a job type name, or nil if it can.
    ///
    /// A job type name is an UpperCamelCase Swift identifier: an ASCII uppercase
    /// letter, then ASCII letters and digits, and not a reserved name.
    static func problem(withTypeName name: String) -> String? {
        let isValid =
            name.first.map { $0.isASCII && $0.isUppercase } == true
            && name.allSatisfy { $0.isASCII && ($0.isLetter || $0.isNumber) }
        if !isValid {
            return "'\(name)' is not an UpperCamelCase Swift identifier (an uppercase letter A-Z, "
                + "then letters and digits, e.g. 'SendEmail')"
        }
        if reservedTypeNames.contains(name) {
            return "'\(name)' is reserved; choose another job type name"
        }
        return nil
    }

    // MARK: Checking files

    /// The job defined by `file`, or the error that says what is wrong with it.
    static func check(_ file: JobSourceFile) -> Result<JobBinding, GeneratorDiagnostic> {
        let typeName = file.baseName
        func failure(_ message: String, line: Int = 1, column: Int = 1) -> Result<JobBinding, GeneratorDiagnostic> {
            .failure(
                GeneratorDiagnostic(path: file.path, line: line, column: column, severity: .error, message: message))
        }
        if let problem = problem(withTypeName: typeName) {
            return failure(
                "\(file.displayPath) must be named after the job type it defines: \(problem)")
        }

        let expected = "\(file.displayPath) must define a type named '\(typeName)' conforming to 'Job'"
        let declarations = SwiftDeclarationScanner.topLevelDeclarations(in: file.contents)
        let candidates = declarations.filter { $0.kind != .extension && $0.name == typeName }
        guard let first = candidates.first else {
            return failure("\(expected) (found: \(summary(of: declarations)))")
        }
        let usable = candidates.filter { !$0.isGeneric && !$0.isFilePrivate }
        guard !usable.isEmpty else {
            let reason =
                first.isGeneric
                ? "generic \(first.kind.rawValue) '\(typeName)<...>', which the generated file cannot name without type arguments"
                : "\(first.modifiers.filter { $0.hasSuffix("private") }.joined(separator: " ")) "
                    + "\(first.kind.rawValue) '\(typeName)', which the generated file cannot see"
            return failure("\(expected) (found: \(reason))", line: first.line, column: first.column)
        }
        let conforms =
            usable.contains(where: \.conformsToJob)
            || declarations.contains { $0.kind == .extension && $0.name == typeName && $0.conformsToJob }
        guard conforms else {
            return failure(
                "\(expected) (found: \(usable[0].kind.rawValue) '\(typeName)' without ': Job' "
                    + "in its declaration or an 'extension \(typeName): Job')",
                line: usable[0].line, column: usable[0].column)
        }
        return .success(JobBinding(typeName: typeName, storedName: storedName(forTypeName: typeName)))
    }

    /// What a file declares, for an error message: `struct 'SendMail' conforming to 'Job', enum 'Helper'`.
    private static func summary(of declarations: [TypeDeclaration]) -> String {
        guard !declarations.isEmpty else { return "no top-level struct, class, enum, actor or extension" }
        return declarations.map { declaration in
            "\(declaration.kind.rawValue) '\(declaration.name)'"
                + (declaration.conformsToJob ? " conforming to 'Job'" : "")
        }.joined(separator: ", ")
    }

    // MARK: Generating

    /// Checks every file and renders the bindings, reporting every bad file rather than the first.
    ///
    /// - Parameters:
    ///   - jobsDirectory: The `Jobs/` folder, named in the warning when it has no files.
    ///   - files: The `*.swift` files directly inside it, in any order.
    static func generate(jobsDirectory: String, files: [JobSourceFile]) -> GenerationResult {
        var diagnostics: [GeneratorDiagnostic] = []
        var bindings: [(file: JobSourceFile, binding: JobBinding)] = []
        for file in files.sorted(by: { $0.path < $1.path }) {
            switch check(file) {
            case .success(let binding): bindings.append((file, binding))
            case .failure(let diagnostic): diagnostics.append(diagnostic)
            }
        }

        // Two types whose names differ only in the case of an acronym share a stored name.
        let byStoredName = Dictionary(grouping: bindings, by: \.binding.storedName)
        for (storedName, group) in byStoredName.sorted(by: { $0.key < $1.key }) where group.count > 1 {
            let paths = group.map(\.file.displayPath)
            let (names, fix) =
                paths.count == 2
                ? ("\(paths[0]) and \(paths[1]) both", "rename one of them")
                : (
                    paths.dropLast().joined(separator: ", ") + " and \(paths[paths.count - 1]) all",
                    "rename all but one"
                )
            for entry in group {
                diagnostics.append(
                    GeneratorDiagnostic(
                        path: entry.file.path, line: 1, column: 1, severity: .error,
                        message: "\(names) map to the stored job type name '\(storedName)'; \(fix)"))
            }
        }
        if diagnostics.contains(where: { $0.severity == .error }) {
            return GenerationResult(source: nil, diagnostics: diagnostics)
        }

        if bindings.isEmpty {
            diagnostics.append(
                GeneratorDiagnostic(
                    path: jobsDirectory, severity: .warning,
                    message: "no job files in Jobs/; WorkerJobType has no cases and no registry(). "
                        + "Add a file such as Jobs/SendEmail.swift defining 'struct SendEmail: Job'"))
        }
        var locations: [String: SourceLocation] = [:]
        for (file, binding) in bindings {
            let declaration = SwiftDeclarationScanner.topLevelDeclarations(in: file.contents)
                .first { $0.kind != .extension && $0.name == binding.typeName }
            locations[binding.typeName] = SourceLocation(path: file.path, line: declaration?.line ?? 1)
        }
        let reference = referenceJob(bindings.map { ($0.binding.typeName, $0.file.contents) })
        return GenerationResult(
            source: render(bindings.map(\.binding), locations: locations, reference: reference), diagnostics: diagnostics)
    }

    /// The job whose `App` the registry takes: one whose `App`, as its source
    /// spells it, most jobs share, so that a mismatch is reported at the odd
    /// job's file rather than at every other one. Ties and jobs whose `App`
    /// cannot be read from the text go by type name; the compiler decides.
    static func referenceJob(_ jobs: [(typeName: String, contents: String)]) -> String? {
        let sorted = jobs.sorted { $0.typeName < $1.typeName }
        let guesses = sorted.map { (typeName: $0.typeName, app: appTypeName(in: $0.contents)) }
        var counts: [String: Int] = [:]
        for guess in guesses { if let app = guess.app { counts[app, default: 0] += 1 } }
        guard let top = counts.values.max() else { return sorted.first?.typeName }
        return guesses.first { $0.app.map { counts[$0] == top } ?? false }?.typeName
    }

    /// The `App` a job file names: `typealias App = X`, else the first
    /// argument of `JobParams<X, ...>`; nil when neither is written.
    static func appTypeName(in contents: String) -> String? {
        let patterns = [
            #"typealias\s+App\s*=\s*([A-Za-z_][A-Za-z0-9_.]*)"#,
            #"JobParams\s*<\s*([A-Za-z_][A-Za-z0-9_.]*)\s*,"#,
        ]
        for pattern in patterns {
            guard let regex = try? NSRegularExpression(pattern: pattern),
                let match = regex.firstMatch(in: contents, range: NSRange(contents.startIndex..., in: contents)),
                let range = Range(match.range(at: 1), in: contents)
            else { continue }
            return String(contents[range])
        }
        return nil
    }

    /// Where a job type is declared, for the compiler to report a mismatched `App` there.
    struct SourceLocation: Sendable {
        var path: String
        var line: Int
    }

    /// A string literal for `#sourceLocation(file:)`.
    private static func literal(_ path: String) -> String {
        "\"" + path.replacingOccurrences(of: "\\", with: "\\\\").replacingOccurrences(of: "\"", with: "\\\"") + "\""
    }

    /// The contents of `WorkerJobs.generated.swift`, with the jobs sorted by type name.
    ///
    /// Every job but the reference (see ``referenceJob(_:)``) is registered under a `#sourceLocation` of its own
    /// file, so that a job whose `App` differs from the others fails the build at
    /// `Jobs/ThatJob.swift`, saying which `App` it has and which was expected.
    static func render(_ jobs: [JobBinding], locations: [String: SourceLocation] = [:], reference: String? = nil) -> String {
        let jobs = jobs.sorted { $0.typeName < $1.typeName }
        var lines = [
            "// \(outputFileName): generated by ConveyorJobsPlugin from the files in Jobs/.",
            "// Do not edit: it is rewritten on each build. Add, rename or delete a file in Jobs/ instead.",
            "",
            "import Conveyor",
            "",
        ]
        guard let first = jobs.first(where: { $0.typeName == reference }) ?? jobs.first else {
            lines += [
                "/// The job types of this target: one case per file in `Jobs/`, which has none.",
                "enum WorkerJobType: CaseIterable, Sendable {",
                "    /// The `Job` type that runs jobs of this type.",
                "    var jobType: any Job.Type {",
                "        switch self {}",
                "    }",
                "}",
            ]
            return lines.joined(separator: "\n") + "\n"
        }

        func caseName(_ job: JobBinding) -> String {
            swiftKeywords.contains(job.storedName) ? "`\(job.storedName)`" : job.storedName
        }
        lines += [
            "/// The job types of this target: one case per file in `Jobs/`.",
            "enum WorkerJobType: String, CaseIterable, Sendable, Codable {",
        ]
        lines += jobs.map { "    case \(caseName($0)) = \"\($0.storedName)\"" }
        lines += [
            "",
            "    /// The `Job` type that runs jobs of this type.",
            "    var jobType: any Job.Type {",
            "        switch self {",
        ]
        lines += jobs.map { "        case .\(caseName($0)): \($0.typeName).self" }
        lines += [
            "        }",
            "    }",
            "",
            "    /// A registry of every job type in `Jobs/`, for a worker pool.",
            "    ///",
            "    /// Its `App` is the one most jobs name; every job must use the same `App`,",
            "    /// which is checked at compile time, at the file of a job that differs.",
            "    static func registry() -> JobRegistry<\(first.typeName).App> {",
            "        var registry = JobRegistry<\(first.typeName).App>()",
        ]
        lines.append("        registry.register(\(first.typeName).self)")
        for job in jobs where job != first {
            let register = "        registry.register(\(job.typeName).self, withTheSameAppAs: \(first.typeName).self)"
            if let location = locations[job.typeName] {
                lines += ["#sourceLocation(file: \(literal(location.path)), line: \(location.line))", register, "#sourceLocation()"]
            } else {
                lines.append(register)
            }
        }
        lines += [
            "        return registry",
            "    }",
            "}",
        ]
        if jobs.count > 1 {
            lines += [
                "",
                "extension JobRegistry {",
                "    /// Registers `job`, whose `App` must be `first`'s: every job in `Jobs/`",
                "    /// receives the same app context from the worker pool.",
                "    fileprivate mutating func register<J: Job, First: Job>(",
                "        _ job: J.Type, withTheSameAppAs first: First.Type",
                "    ) where J.App == App {",
                "        register(job)",
                "    }",
                "}",
            ]
        }
        for job in jobs {
            lines += [
                "",
                "extension \(job.typeName) {",
                "    /// The name stored in Redis for this job type.",
                "    public static var typeName: String { \"\(job.storedName)\" }",
                "}",
            ]
        }
        return lines.joined(separator: "\n") + "\n"
    }
}
