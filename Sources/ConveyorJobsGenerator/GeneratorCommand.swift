import Foundation

/// The executable ConveyorJobsPlugin runs on each build that changes `Jobs/`:
///
///     ConveyorJobsGenerator --jobs-dir <Jobs folder> --output <file> [<Jobs/*.swift> ...]
///
/// Prints diagnostics in the compiler's format to standard error; exits 1 if any
/// job file is invalid (failing the build), 2 on a usage error.
@main
struct GeneratorCommand {
    static func main() {
        var arguments = CommandLine.arguments.dropFirst()
        var jobsDirectory: String?
        var outputPath: String?
        var inputPaths: [String] = []
        while let argument = arguments.popFirst() {
            switch argument {
            case "--jobs-dir": jobsDirectory = arguments.popFirst()
            case "--output": outputPath = arguments.popFirst()
            default: inputPaths.append(argument)
            }
        }
        guard let jobsDirectory, let outputPath else {
            printToStandardError(
                "error: usage: ConveyorJobsGenerator --jobs-dir <dir> --output <file> [<file.swift> ...]")
            exit(2)
        }

        var files: [JobSourceFile] = []
        var readErrors: [GeneratorDiagnostic] = []
        for path in inputPaths {
            do {
                files.append(JobSourceFile(path: path, contents: try String(contentsOfFile: path, encoding: .utf8)))
            } catch {
                readErrors.append(
                    GeneratorDiagnostic(
                        path: path, line: 1, column: 1, severity: .error,
                        message: "cannot read job file as UTF-8: \(error.localizedDescription)"))
            }
        }

        let result = JobsGenerator.generate(jobsDirectory: jobsDirectory, files: files)
        let diagnostics = readErrors + result.diagnostics
        for diagnostic in diagnostics {
            printToStandardError(diagnostic.description)
        }
        guard readErrors.isEmpty, let source = result.source else { exit(1) }

        // Leave an unchanged file untouched so the compiler need not rebuild it.
        if (try? String(contentsOfFile: outputPath, encoding: .utf8)) == source { return }
        do {
            try source.write(toFile: outputPath, atomically: true, encoding: .utf8)
        } catch {
            printToStandardError("\(outputPath): error: cannot write generated jobs: \(error.localizedDescription)")
            exit(1)
        }
    }

    private static func printToStandardError(_ line: String) {
        FileHandle.standardError.write(Data((line + "\n").utf8))
    }
}
