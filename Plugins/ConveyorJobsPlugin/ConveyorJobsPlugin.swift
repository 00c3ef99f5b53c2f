import Foundation
import PackagePlugin

/// Generates `WorkerJobs.generated.swift` for a target from the files in its `Jobs/` folder.
///
/// Every `*.swift` file directly inside `<target>/Jobs/` is one job: `Jobs/SendEmail.swift`
/// must define a type `SendEmail` conforming to `Job`. The generated file adds a
/// `WorkerJobType` enum with one case per job, a `registry()` of all of them, and each
/// job's `typeName` (the name stored in Redis).
///
/// SwiftPM calls this on every build and lists the target's current source files, so
/// adding, renaming or deleting a job file changes the command's inputs and arguments,
/// and the generator reruns; when nothing in `Jobs/` changed, the build skips it.
@main
struct ConveyorJobsPlugin: BuildToolPlugin {
    func createBuildCommands(context: PluginContext, target: Target) async throws -> [Command] {
        guard let sourceTarget = target as? SourceModuleTarget else { return [] }
        // Tools 6.0 has no `Target.directoryURL` (it came in 6.1) and deprecates `Path`'s
        // accessors; `Target.directory` itself is only deprecated from 6.1, and a `Path`
        // describes itself as its path string.
        let targetDirectory = URL(fileURLWithPath: String(describing: target.directory), isDirectory: true)
        let jobsDirectory = targetDirectory.appending(path: "Jobs", directoryHint: .isDirectory)
        let jobsPath = Self.folderPath(jobsDirectory)

        // The target's own source list, not a directory listing: it is exactly what
        // the compiler sees, and it is refreshed by SwiftPM on every build.
        let jobFiles = sourceTarget.sourceFiles(withSuffix: "swift")
            .map(\.url)
            .filter { Self.folderPath($0.deletingLastPathComponent()) == jobsPath }
            .sorted { $0.path(percentEncoded: false) < $1.path(percentEncoded: false) }

        let output = context.pluginWorkDirectoryURL.appending(path: "WorkerJobs.generated.swift")
        let arguments =
            ["--jobs-dir", jobsPath, "--output", output.path(percentEncoded: false)]
            + jobFiles.map { $0.path(percentEncoded: false) }
        return [
            .buildCommand(
                displayName: "Generating job bindings for \(sourceTarget.name) from \(jobFiles.count) file(s) in Jobs/",
                executable: try context.tool(named: "ConveyorJobsGenerator").url,
                arguments: arguments,
                inputFiles: jobFiles,
                outputFiles: [output]
            )
        ]
    }

    /// A folder's path in one spelling, whether or not its URL ends in `/`.
    private static func folderPath(_ url: URL) -> String {
        var path = url.standardizedFileURL.path(percentEncoded: false)
        while path.count > 1 && path.hasSuffix("/") { path.removeLast() }
        return path
    }
}
