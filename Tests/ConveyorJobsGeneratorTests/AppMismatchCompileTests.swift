import Foundation
import Testing

@testable import ConveyorJobsGenerator

/// Compiles generated bindings with the real Swift compiler against a minimal
/// stand-in for the `Conveyor` module (the same `Job` and `JobRegistry`
/// signatures), to see the error a user gets when two jobs take different `App`s.
@Suite("Generated bindings compile, or fail at the job's file")
struct AppMismatchCompileTests {
    static let conveyorStandIn = """
        public protocol Job: Sendable {
            associatedtype App: Sendable
            associatedtype Input: Codable & Sendable
            associatedtype Output: Codable & Sendable
            static var typeName: String { get }
            init()
        }
        public struct JobRegistry<App: Sendable>: Sendable {
            public init() {}
            public mutating func register<J: Job>(_ type: J.Type) where J.App == App {}
        }
        """

    static func job(_ name: String, app: String) -> String {
        """
        import Conveyor

        struct \(app): Sendable {}

        struct \(name): Job {
            typealias App = \(app)
            typealias Input = Int
            typealias Output = Int
        }
        """
    }

    /// Writes the job files and the generated file, type-checks them, and
    /// returns the compiler's exit status and output.
    static func typecheck(_ jobs: [(name: String, source: String)]) throws -> (status: Int32, output: String, jobsDirectory: String) {
        let root = FileManager.default.temporaryDirectory.appendingPathComponent("jobs-generator-\(UUID().uuidString)")
        let jobsDirectory = root.appendingPathComponent("Sources/App/Jobs")
        try FileManager.default.createDirectory(at: jobsDirectory, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(at: root) }
        let files = jobs.map { JobSourceFile(path: jobsDirectory.appendingPathComponent("\($0.name).swift").path, contents: $0.source) }
        for file in files { try file.contents.write(toFile: file.path, atomically: true, encoding: .utf8) }
        let result = JobsGenerator.generate(jobsDirectory: jobsDirectory.path, files: files)
        let generated = root.appendingPathComponent("WorkerJobs.generated.swift").path
        try #require(result.source).write(toFile: generated, atomically: true, encoding: .utf8)
        let standIn = root.appendingPathComponent("Conveyor.swift").path
        try conveyorStandIn.write(toFile: standIn, atomically: true, encoding: .utf8)
        let modules = root.appendingPathComponent("modules").path
        let emitted = try run([
            "swiftc", "-parse-as-library", "-module-name", "Conveyor", "-emit-module", "-emit-module-path",
            modules + "/Conveyor.swiftmodule", standIn,
        ])
        try #require(emitted.status == 0, "the stand-in module failed to compile: \(emitted.output)")
        let checked = try run(["swiftc", "-typecheck", "-I", modules] + files.map(\.path) + [generated])
        return (checked.status, checked.output, jobsDirectory.path)
    }

    static func run(_ arguments: [String]) throws -> (status: Int32, output: String) {
        let process = Process()
        process.executableURL = URL(fileURLWithPath: "/usr/bin/env")
        process.arguments = arguments
        let pipe = Pipe()
        process.standardOutput = pipe
        process.standardError = pipe
        try process.run()
        let output = pipe.fileHandleForReading.readDataToEndOfFile()
        process.waitUntilExit()
        return (process.terminationStatus, String(decoding: output, as: UTF8.self))
    }

    @Test("jobs sharing one App compile")
    func sameApp() throws {
        let shared = Self.job("NightlyReport", app: "MyApp")
        let second = "import Conveyor\n\nstruct SendEmail: Job {\n    typealias App = MyApp\n    typealias Input = Int\n    typealias Output = Int\n}\n"
        let result = try Self.typecheck([("NightlyReport", shared), ("SendEmail", second)])
        #expect(result.status == 0, "\(result.output)")
    }

    @Test("a job with another App fails the build at its own file, naming both App types")
    func otherApp() throws {
        let result = try Self.typecheck([
            ("NightlyReport", Self.job("NightlyReport", app: "MyApp")), ("Other", Self.job("Other", app: "OtherCtx")),
        ])
        #expect(result.status != 0)
        let errors = result.output.split(separator: "\n").filter { $0.contains(": error: ") }
        // Line 5 of Jobs/Other.swift declares `struct Other: Job`.
        let error = try #require(errors.first, "\(result.output)")
        #expect(error.hasPrefix("\(result.jobsDirectory)/Other.swift:5:"), "\(result.output)")
        #expect(error.contains("withTheSameAppAs"))
        #expect(error.contains("'OtherCtx'") && error.contains("'MyApp'"))
        #expect(errors.allSatisfy { $0.hasPrefix("\(result.jobsDirectory)/Other.swift:") }, "\(result.output)")
    }

    @Test("the odd job is the one reported, also when its name sorts first")
    func oddJobSortsFirst() throws {
        let result = try Self.typecheck([
            ("Alpha", Self.job("Alpha", app: "OtherCtx")),
            ("Beta", Self.job("Beta", app: "MyApp").replacingOccurrences(of: "struct MyApp: Sendable {}", with: "")),
            ("Gamma", Self.job("Gamma", app: "MyApp")),
        ])
        #expect(result.status != 0)
        let errors = result.output.split(separator: "\n").filter { $0.contains(": error: ") }
        #expect(!errors.isEmpty)
        #expect(errors.allSatisfy { $0.hasPrefix("\(result.jobsDirectory)/Alpha.swift:5:") }, "\(result.output)")
    }

    @Test(
        "the App a job file names",
        arguments: [
            ("struct A: Job {\n    typealias App = Ctx\n}", "Ctx"),
            ("struct A: Job {\n    func run(_ params: JobParams<My.Ctx, Input>) async throws -> Nothing { Nothing() }\n}", "My.Ctx"),
            ("struct A: Job {}", nil),
        ] as [(String, String?)])
    func appTypeName(source: String, expected: String?) {
        #expect(JobsGenerator.appTypeName(in: source) == expected)
    }
}
