import Testing

@testable import ConveyorJobsGenerator

private func jobFile(_ name: String, _ contents: String) -> JobSourceFile {
    JobSourceFile(path: "/app/Sources/Worker/Jobs/\(name).swift", contents: contents)
}

/// The diagnostic `check` returns for a file that should be rejected, or nil if it was accepted.
private func rejection(_ name: String, _ contents: String) -> GeneratorDiagnostic? {
    if case .failure(let diagnostic) = JobsGenerator.check(jobFile(name, contents)) { diagnostic } else { nil }
}

@Suite("Checking job files")
struct JobFileCheckTests {
    @Test(
        "accepts a type named after the file that conforms to Job",
        arguments: [
            "struct SendEmail: Job {}",
            "public final class SendEmail: Job {}",
            "enum SendEmail: Job {}",
            "actor SendEmail: Job {}",
            "struct SendEmail: Codable, Job, Sendable {}",
            "struct SendEmail: Conveyor.Job {}",
            "struct SendEmail {}\nextension SendEmail: Job {}",
            "extension SendEmail: Job {}\n@available(macOS 13, *)\npublic struct SendEmail {}",
            "@available(macOS 13, *) @MainActor\npublic final class SendEmail: @unchecked Sendable, Job {}",
            "#if DEBUG\nstruct SendEmail: Job {}\n#else\nstruct SendEmail: Job { let x = 1 }\n#endif",
            "struct SendEmail: Job where Input == String {}",
        ])
    func accepts(source: String) throws {
        let binding = try JobsGenerator.check(jobFile("SendEmail", source)).get()
        #expect(binding == JobBinding(typeName: "SendEmail", storedName: "sendEmail"))
    }

    @Test("rejects a file with no type, saying what it expected and found")
    func missingType() throws {
        let diagnostic = try #require(rejection("SendEmail", "import Conveyor\nfunc sendEmail() {}\n"))
        #expect(
            diagnostic.description
                == "/app/Sources/Worker/Jobs/SendEmail.swift:1:1: error: Jobs/SendEmail.swift must define a type "
                + "named 'SendEmail' conforming to 'Job' (found: no top-level struct, class, enum, actor or extension)")
    }

    @Test("rejects a type with another name")
    func wrongName() throws {
        let diagnostic = try #require(rejection("SendEmail", "struct SendMail: Job {}\nenum Helper {}"))
        #expect(diagnostic.line == 1 && diagnostic.column == 1)
        #expect(
            diagnostic.message.hasSuffix("(found: struct 'SendMail' conforming to 'Job', enum 'Helper')"))
    }

    @Test("rejects a type that does not conform to Job, pointing at it")
    func notConforming() throws {
        let diagnostic = try #require(rejection("SendEmail", "import Conveyor\n\npublic struct SendEmail: Sendable {}"))
        #expect(diagnostic.line == 3 && diagnostic.column == 1)
        #expect(
            diagnostic.message
                == "Jobs/SendEmail.swift must define a type named 'SendEmail' conforming to 'Job' "
                + "(found: struct 'SendEmail' without ': Job' in its declaration or an 'extension SendEmail: Job')")
    }

    @Test(
        "rejects a type named only inside a comment or a string",
        arguments: [
            "// struct SendEmail: Job {}",
            "/* /* */ struct SendEmail: Job {} */",
            "let s = \"struct SendEmail: Job {}\"",
            "let s = \"\"\"\nstruct SendEmail: Job {}\n\"\"\"",
            "let s = #\"struct SendEmail: Job {}\"#",
        ])
    func onlyInCommentOrString(source: String) {
        #expect(rejection("SendEmail", source) != nil)
    }

    @Test(
        "rejects other near misses",
        arguments: [
            "extension SendEmail: Job {}",  // the type itself is declared elsewhere
            "enum Outer { struct SendEmail: Job {} }",  // nested: Outer.SendEmail
            "struct SendEmail<T>: Job {}",
            "private struct SendEmail: Job {}",
            "protocol SendEmail: Job {}",
            "typealias SendEmail = Other",
            "struct SendEmail: EmailJob {}",  // conformance through another protocol is not seen
            "struct SendEmail {}\nextension Other: Job {}",
        ])
    func nearMisses(source: String) {
        #expect(rejection("SendEmail", source) != nil)
    }

    @Test(
        "says what it found instead",
        arguments: [
            ("extension SendEmail: Job {}", "(found: extension 'SendEmail' conforming to 'Job')"),
            (
                "\n  private struct SendEmail: Job {}",
                "(found: private struct 'SendEmail', which the generated file cannot see)"
            ),
            (
                "enum SendEmail<T>: Job {}",
                "(found: generic enum 'SendEmail<...>', which the generated file cannot name without type arguments)"
            ),
        ])
    func found(source: String, expectedEnding: String) throws {
        let diagnostic = try #require(rejection("SendEmail", source))
        #expect(diagnostic.message.hasSuffix(expectedEnding))
    }

    @Test("points at a private type's declaration")
    func privateTypeLocation() throws {
        let diagnostic = try #require(
            rejection("SendEmail", "import Conveyor\n\n  fileprivate struct SendEmail: Job {}"))
        #expect(diagnostic.line == 3 && diagnostic.column == 3)
    }

    @Test("rejects invalid file names", arguments: ["send_email", "sendEmail", "Send-Email", "SendEmail+Retry", "Job"])
    func invalidFileName(name: String) throws {
        let diagnostic = try #require(rejection(name, "struct \(name): Job {}"))
        #expect(diagnostic.message.hasPrefix("Jobs/\(name).swift must be named after the job type it defines: "))
        #expect(diagnostic.line == 1 && diagnostic.column == 1)
    }
}

@Suite("Generating WorkerJobs.generated.swift")
struct JobsGeneratorTests {
    @Test("renders the bindings sorted by type name")
    func generatedSource() throws {
        let result = JobsGenerator.generate(
            jobsDirectory: "/app/Sources/Worker/Jobs",
            files: [
                jobFile("SendEmail", "struct SendEmail: Job {}"),
                jobFile("Echo", "struct Echo {}\nextension Echo: Job {}"),
            ])
        #expect(result.diagnostics.isEmpty)
        let expected = """
            // WorkerJobs.generated.swift: generated by ConveyorJobsPlugin from the files in Jobs/.
            // Do not edit: it is rewritten on each build. Add, rename or delete a file in Jobs/ instead.

            import Conveyor

            /// The job types of this target: one case per file in `Jobs/`.
            enum WorkerJobType: String, CaseIterable, Sendable, Codable {
                case echo = "echo"
                case sendEmail = "sendEmail"

                /// The `Job` type that runs jobs of this type.
                var jobType: any Job.Type {
                    switch self {
                    case .echo: Echo.self
                    case .sendEmail: SendEmail.self
                    }
                }

                /// A registry of every job type in `Jobs/`, for a worker pool.
                ///
                /// Its `App` is the one most jobs name; every job must use the same `App`,
                /// which is checked at compile time, at the file of a job that differs.
                static func registry() -> JobRegistry<Echo.App> {
                    var registry = JobRegistry<Echo.App>()
                    registry.register(Echo.self)
            #sourceLocation(file: "/app/Sources/Worker/Jobs/SendEmail.swift", line: 1)
                    registry.register(SendEmail.self, withTheSameAppAs: Echo.self)
            #sourceLocation()
                    return registry
                }
            }

            extension JobRegistry {
                /// Registers `job`, whose `App` must be `first`'s: every job in `Jobs/`
                /// receives the same app context from the worker pool.
                fileprivate mutating func register<J: Job, First: Job>(
                    _ job: J.Type, withTheSameAppAs first: First.Type
                ) where J.App == App {
                    register(job)
                }
            }

            extension Echo {
                /// The name stored in Redis for this job type.
                public static var typeName: String { "echo" }
            }

            extension SendEmail {
                /// The name stored in Redis for this job type.
                public static var typeName: String { "sendEmail" }
            }

            """
        #expect(try #require(result.source) == expected)
    }

    @Test("an empty Jobs/ folder still compiles, with a warning")
    func emptyFolder() throws {
        let result = JobsGenerator.generate(jobsDirectory: "/app/Sources/Worker/Jobs", files: [])
        let expected = """
            // WorkerJobs.generated.swift: generated by ConveyorJobsPlugin from the files in Jobs/.
            // Do not edit: it is rewritten on each build. Add, rename or delete a file in Jobs/ instead.

            import Conveyor

            /// The job types of this target: one case per file in `Jobs/`, which has none.
            enum WorkerJobType: CaseIterable, Sendable {
                /// The `Job` type that runs jobs of this type.
                var jobType: any Job.Type {
                    switch self {}
                }
            }

            """
        #expect(try #require(result.source) == expected)
        #expect(result.diagnostics.count == 1)
        #expect(result.diagnostics.first?.severity == .warning)
        #expect(result.diagnostics.first?.description.hasPrefix("/app/Sources/Worker/Jobs: warning: ") == true)
    }

    @Test("output does not depend on the order of the files")
    func deterministic() {
        let files = ["Beta", "Alpha", "Gamma"].map { jobFile($0, "struct \($0): Job {}") }
        let forward = JobsGenerator.generate(jobsDirectory: "/j", files: files).source
        let backward = JobsGenerator.generate(jobsDirectory: "/j", files: files.reversed()).source
        #expect(forward != nil && forward == backward)
    }

    @Test("backticks stored names that are Swift keywords")
    func keywordCaseNames() throws {
        let source = try #require(
            JobsGenerator.generate(jobsDirectory: "/j", files: [jobFile("Default", "struct Default: Job {}")]).source)
        #expect(source.contains("    case `default` = \"default\"\n"))
        #expect(source.contains("        case .`default`: Default.self\n"))
        #expect(source.contains("public static var typeName: String { \"default\" }"))
    }

    @Test("reports every bad file, not just the first, and generates nothing")
    func everyError() {
        let result = JobsGenerator.generate(
            jobsDirectory: "/app/Sources/Worker/Jobs",
            files: [
                jobFile("Good", "struct Good: Job {}"),
                jobFile("Bad", "struct Bad {}"),
                jobFile("worse", "struct worse: Job {}"),
            ])
        #expect(result.source == nil)
        #expect(
            result.diagnostics.map(\.path) == [
                "/app/Sources/Worker/Jobs/Bad.swift", "/app/Sources/Worker/Jobs/worse.swift",
            ])
        #expect(result.diagnostics.allSatisfy { $0.severity == .error })
    }

    @Test("rejects two files with the same stored name, naming both")
    func duplicateStoredNames() {
        let result = JobsGenerator.generate(
            jobsDirectory: "/j",
            files: [
                jobFile("URLFetch", "struct URLFetch: Job {}"),
                jobFile("UrlFetch", "struct UrlFetch: Job {}"),
                jobFile("Echo", "struct Echo: Job {}"),
            ])
        #expect(result.source == nil)
        #expect(
            result.diagnostics.map(\.path) == [
                "/app/Sources/Worker/Jobs/URLFetch.swift", "/app/Sources/Worker/Jobs/UrlFetch.swift",
            ])
        #expect(
            result.diagnostics.first?.message
                == "Jobs/URLFetch.swift and Jobs/UrlFetch.swift both map to the stored job type name 'urlFetch'; "
                + "rename one of them")
    }
}
