import Testing

@testable import ConveyorJobsGenerator

@Suite("Declaration scanner")
struct SwiftDeclarationScannerTests {
    private func names(in source: String) -> [String] {
        SwiftDeclarationScanner.topLevelDeclarations(in: source).map { "\($0.kind.rawValue) \($0.name)" }
    }

    @Test("finds each kind of top-level declaration with its inheritance clause")
    func kinds() {
        let source = """
            import Conveyor
            struct A: Job {}
            public final class B: NSObject, Job, @unchecked Sendable {}
            indirect enum C: Job { case a }
            actor D: Conveyor.Job {}
            extension E: Codable & Job where T: Hashable {}
            """
        let declarations = SwiftDeclarationScanner.topLevelDeclarations(in: source)
        #expect(declarations.map(\.name) == ["A", "B", "C", "D", "E"])
        #expect(declarations.map(\.kind) == [.struct, .class, .enum, .actor, .extension])
        #expect(declarations[1].modifiers == ["public", "final"])
        #expect(declarations[1].inheritedTypes == ["NSObject", "Job", "Sendable"])
        #expect(declarations[4].inheritedTypes == ["Codable", "Job"])
        #expect(declarations.allSatisfy { $0.conformsToJob })
        #expect(declarations[1].line == 3 && declarations[1].column == 1)
    }

    @Test("skips nested declarations and keyword look-alikes")
    func nestedAndLookAlikes() {
        let source = """
            import struct Foundation.Date
            enum Outer {
                struct Inner: Job {}
            }
            protocol P: class {}
            let actor = 1
            func run(actor x: Int) { let y = x.class }
            struct Last {}
            """
        #expect(names(in: source) == ["enum Outer", "struct Last"])
    }

    @Test("marks generic and private types")
    func genericAndPrivate() {
        let declarations = SwiftDeclarationScanner.topLevelDeclarations(
            in: "struct G<T: Codable>: Job {}\nfileprivate struct F: Job {}\n")
        #expect(declarations[0].isGeneric && declarations[0].inheritedTypes == ["Job"])
        #expect(declarations[1].isFilePrivate && !declarations[1].isGeneric)
    }

    @Test("ignores comments, including nested block comments")
    func comments() {
        let source = """
            // struct InLine: Job {}
            /* struct InBlock: Job {} /* nested */ struct StillInBlock: Job {} */
            /** doc { */
            struct Real: Job {}
            """
        #expect(names(in: source) == ["struct Real"])
    }

    @Test("ignores string literals of every form, and braces inside them")
    func strings() {
        let source = ###"""
            let a = "struct InString: Job { \" }"
            let b = """
                struct InMultiline: Job {
                \(value("struct InInterpolation: Job {"))
                """
            let c = #"struct InRaw: Job {" \#(x) "#
            let d = ##"""
                "# struct InRawMultiline: Job { "#
                """##
            let e = #/struct InRegex { /#
            let f = ""
            struct Real: Job {}
            """###
        #expect(names(in: source) == ["struct Real"])
    }

    @Test("reads backticked names without backticks")
    func backticks() {
        #expect(names(in: "struct `Default`: Job {}") == ["struct Default"])
    }

    @Test("reports lines and columns of declarations")
    func positions() {
        let declarations = SwiftDeclarationScanner.topLevelDeclarations(
            in: "/* a\n b */ let s = \"\"\"\n x\n \"\"\"\n  @MainActor public struct S {}\n")
        #expect(declarations.first.map { [$0.line, $0.column] } == [5, 14])
    }
}
